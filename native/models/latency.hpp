// Latency model (see docs/native.md, "Latency").
#pragma once

#include <cstdint>

#include "units.hpp"

namespace ticktape {

// Latency model. An order decided on tick i (local clock ts_i + feed, since
// market data reaches the strategy feed_ns late) reaches the exchange at
// ts_i + feed + entry (entry: the order's own latency_ns when given);
// exchange events reach the strategy response_ns after they happen.
struct Latency {
  int64_t entry_ns = 0, feed_ns = 0, response_ns = 0;
  int64_t arrival(int64_t ts_decided, int64_t own_entry) const {
    return detail::sat_add(detail::sat_add(ts_decided, feed_ns), own_entry >= 0 ? own_entry : entry_ns);
  }
  int64_t known(int64_t ts_event) const { return detail::sat_add(ts_event, response_ns); }
};

}  // namespace ticktape
