// A strategy's orders inside the simulator, its cancel / modify requests on
// their way to the exchange, and the fills it has not heard of yet.
#pragma once

#include <cstdint>
#include <limits>

#include "models/queue.hpp"

namespace ticktape {

// Where an order is in its life.
enum class OrderState : int8_t {
  Pending = 0,    // sent, not yet at the exchange
  Working = 1,    // at the exchange, aggressive (takes liquidity when it can)
  Resting = 2,    // passive limit order in the queue
  Untriggered = 3 // stop order waiting for its trigger
};

// A strategy order inside the simulator.
struct SimOrder {
  int64_t id = 0;
  int64_t ts_created = 0;
  int64_t arrival_ts = 0;
  uint64_t created_tick = 0;  // global tick index of creation
  int64_t qty = 0;            // lots
  int64_t filled = 0;         // lots
  int64_t price = 0;          // limit price, ticks (LIMIT / STOP_LIMIT)
  int64_t stop = 0;           // stop price, ticks (STOP / STOP_LIMIT)
  QueuePos queue;             // its place in the level's queue while resting
  int8_t side = 0;
  int8_t type = 0;            // type as submitted (reported in order events)
  int8_t exec_type = 0;       // kMarket or kLimit (what a triggered stop became)
  int8_t tif = 0;
  int8_t state = 0;           // OrderState
  bool from_target = false;
  // The tick on which it started resting (only compared with the current
  // tick, so it is not part of the serialized state).
  uint64_t rested_tick = std::numeric_limits<uint64_t>::max();

  int64_t open() const { return qty - filled; }
};

// A cancel or modify on its way to the exchange.
struct Request {
  int64_t order_id = 0;
  int64_t arrival_ts = 0;
  uint64_t created_tick = 0;
  int64_t price = 0, stop = 0, qty = 0;  // new values (when has_*)
  int8_t action = 0;
  int8_t side = 0, type = 0;             // echoed in a REJECTED event
  bool has_price = false, has_stop = false, has_qty = false;
};

// A fill the strategy does not know of yet (response latency). `working`:
// of a target order the strategy still believes working (its quantity is
// then counted as working, not as position).
struct UnknownFill {
  int64_t known_at = 0;
  int64_t lots = 0;  // signed
  bool working = false;
};

}  // namespace ticktape
