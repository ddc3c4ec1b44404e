// The engine's state as bytes (Engine.get_state / from_state, the
// `state` of a run's execution stage that Faust tables keep): the
// configuration, the L1 book, the portfolio, the open orders, requests and
// unknown fills, and the depth book with its bound. Loading checks every
// field (a corrupt or truncated state is an error, never undefined
// behaviour) and refuses other versions.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "engine.hpp"

namespace ticktape {

class EngineState {
 public:
  static std::string save(const Engine& e) {
    std::string s;
    put(s, kMagic);
    put(s, kVersion);
    put(s, e.cfg_.tick_size);
    put(s, e.cfg_.lot_size);
    put(s, e.cfg_.latency_ns);
    put(s, e.cfg_.fee_bps);
    put(s, e.cfg_.initial_cash);
    put(s, e.cfg_.equity_interval_ns);
    put(s, e.cfg_.response_latency_ns);
    put(s, e.cfg_.feed_latency_ns);
    put(s, e.cfg_.maker_fee_bps);
    put(s, e.cfg_.fee_per_unit);
    put(s, e.cfg_.queue_model);
    put(s, e.cfg_.queue_power);
    put(s, e.cfg_.slippage_model);
    put(s, e.cfg_.impact_bps);
    put(s, e.cfg_.target_mode);
    put(s, e.cfg_.depth_refill_ns);
    put(s, e.book_.valid);
    put(s, e.book_.bid_px);
    put(s, e.book_.bid_qty);
    put(s, e.book_.ask_px);
    put(s, e.book_.ask_qty);
    put(s, e.book_.bid_shown);
    put(s, e.book_.ask_shown);
    put(s, e.max_id_);
    put(s, e.position_);
    put(s, e.cash_);
    put(s, e.fees_);
    put(s, e.has_ts_);
    put(s, e.last_ts_);
    put(s, e.ticks_);
    put(s, e.quotes_ignored_);
    put(s, e.mark_);
    put(s, e.next_equity_ts_);
    put(s, e.equity_at_last_);
    put(s, static_cast<uint64_t>(e.id_ranges_.size()));
    for (const auto& [a, b] : e.id_ranges_) {
      put(s, a);
      put(s, b);
    }
    put(s, static_cast<uint64_t>(e.open_.size()));
    for (const SimOrder& o : e.open_) {
      put(s, o.id);
      put(s, o.ts_created);
      put(s, o.arrival_ts);
      put(s, o.created_tick);
      put(s, o.qty);
      put(s, o.filled);
      put(s, o.price);
      put(s, o.stop);
      put(s, o.queue.front);
      put(s, o.queue.cum_trade);
      put(s, o.queue.level_prev);
      put(s, o.side);
      put(s, o.type);
      put(s, o.exec_type);
      put(s, o.tif);
      put(s, o.state);
      put(s, o.from_target);
    }
    put(s, static_cast<uint64_t>(e.requests_.size()));
    for (const Request& r : e.requests_) {
      put(s, r.order_id);
      put(s, r.arrival_ts);
      put(s, r.created_tick);
      put(s, r.price);
      put(s, r.stop);
      put(s, r.qty);
      put(s, r.action);
      put(s, r.side);
      put(s, r.type);
      put(s, r.has_price);
      put(s, r.has_stop);
      put(s, r.has_qty);
    }
    put(s, static_cast<uint64_t>(e.unknown_.size()));
    for (const UnknownFill& u : e.unknown_) {
      put(s, u.known_at);
      put(s, u.lots);
      put(s, u.working);
    }
    put(s, e.l2_);
    put(s, e.depth_hidden_ticks_);
    put(s, e.depth_.bounded);
    put(s, e.depth_.bound_bid);
    put(s, e.depth_.bound_ask);
    for (const auto* m : {&e.depth_.bids, &e.depth_.asks}) {
      put(s, static_cast<uint64_t>(m->size()));
      for (const auto& [key, lv] : *m) {
        put(s, key);
        put(s, lv.qty);
        put(s, lv.used);
        put(s, lv.taken_ts);
      }
    }
    return s;
  }

  static Engine load(const std::string& s) {
    Reader r{s.data(), s.size(), 0};
    if (r.get<uint32_t>() != kMagic) throw std::invalid_argument("not a ticktape engine state");
    const uint32_t version = r.get<uint32_t>();
    if (version != kVersion) {
      throw std::invalid_argument("unsupported engine state version " + std::to_string(version) +
                                  " (this build reads version " + std::to_string(kVersion) + ")");
    }
    EngineConfig cfg;
    cfg.tick_size = r.get<double>();
    cfg.lot_size = r.get<double>();
    cfg.latency_ns = r.get<int64_t>();
    cfg.fee_bps = r.get<double>();
    cfg.initial_cash = r.get<double>();
    cfg.equity_interval_ns = r.get<int64_t>();
    cfg.response_latency_ns = r.get<int64_t>();
    cfg.feed_latency_ns = r.get<int64_t>();
    cfg.maker_fee_bps = r.get<double>();
    cfg.fee_per_unit = r.get<double>();
    cfg.queue_model = r.get<int8_t>();
    cfg.queue_power = r.get<double>();
    cfg.slippage_model = r.get<int8_t>();
    cfg.impact_bps = r.get<double>();
    cfg.target_mode = r.get<int8_t>();
    cfg.depth_refill_ns = r.get<int64_t>();
    Engine e(cfg);
    e.book_.valid = r.flag();
    e.book_.bid_px = r.get<int64_t>();
    e.book_.bid_qty = r.get<int64_t>();
    e.book_.ask_px = r.get<int64_t>();
    e.book_.ask_qty = r.get<int64_t>();
    e.book_.bid_shown = r.get<int64_t>();
    e.book_.ask_shown = r.get<int64_t>();
    e.max_id_ = r.get<int64_t>();
    e.position_ = r.get<int64_t>();
    e.cash_ = r.get<double>();
    e.fees_ = r.get<double>();
    e.has_ts_ = r.flag();
    e.last_ts_ = r.get<int64_t>();
    e.ticks_ = r.get<uint64_t>();
    e.quotes_ignored_ = r.get<uint64_t>();
    e.mark_ = r.get<double>();
    e.next_equity_ts_ = r.get<int64_t>();
    e.equity_at_last_ = r.flag();
    if (e.max_id_ < 0) throw std::invalid_argument("corrupt engine state (order ids)");
    const uint64_t nr = r.count(16);
    e.id_ranges_.resize(static_cast<size_t>(nr));
    int64_t prev = 0;
    for (auto& [a, b] : e.id_ranges_) {
      a = r.get<int64_t>();
      b = r.get<int64_t>();
      if (a <= prev || b < a || b > e.max_id_) throw std::invalid_argument("corrupt engine state (order ids)");
      prev = b;
    }
    const uint64_t n = r.count(kOrderBytes);
    e.open_.resize(static_cast<size_t>(n));
    int64_t prev_id = 0;
    for (SimOrder& o : e.open_) {
      o.id = r.get<int64_t>();
      o.ts_created = r.get<int64_t>();
      o.arrival_ts = r.get<int64_t>();
      o.created_tick = r.get<uint64_t>();
      o.qty = r.get<int64_t>();
      o.filled = r.get<int64_t>();
      o.price = r.get<int64_t>();
      o.stop = r.get<int64_t>();
      o.queue.front = r.get<double>();
      o.queue.cum_trade = r.get<double>();
      o.queue.level_prev = r.get<double>();
      o.side = r.get<int8_t>();
      o.type = r.get<int8_t>();
      o.exec_type = r.get<int8_t>();
      o.tif = r.get<int8_t>();
      o.state = r.get<int8_t>();
      o.from_target = r.flag();
      if ((o.side != kBuy && o.side != kSell) || o.qty <= 0 || o.qty > kMaxQty || o.filled < 0 ||
          o.filled >= o.qty || o.id <= prev_id || o.id > e.max_id_ || o.type < 0 || o.type > 3 ||
          (o.exec_type != kMarket && o.exec_type != kLimit) || o.tif < 0 || o.tif > 3 ||
          o.state < 0 || o.state > 3 || o.price < 0 || o.price >= kMaxPrice || o.stop < 0 ||
          o.stop >= kMaxPrice) {
        throw std::invalid_argument("corrupt engine state (open order)");
      }
      prev_id = o.id;
    }
    const uint64_t nq = r.count(kRequestBytes);
    e.requests_.resize(static_cast<size_t>(nq));
    for (Request& q : e.requests_) {
      q.order_id = r.get<int64_t>();
      q.arrival_ts = r.get<int64_t>();
      q.created_tick = r.get<uint64_t>();
      q.price = r.get<int64_t>();
      q.stop = r.get<int64_t>();
      q.qty = r.get<int64_t>();
      q.action = r.get<int8_t>();
      q.side = r.get<int8_t>();
      q.type = r.get<int8_t>();
      q.has_price = r.flag();
      q.has_stop = r.flag();
      q.has_qty = r.flag();
      if ((q.action != kCancel && q.action != kModify) || q.qty < 0 || q.qty > kMaxQty ||
          q.price < 0 || q.price >= kMaxPrice || q.stop < 0 || q.stop >= kMaxPrice) {
        throw std::invalid_argument("corrupt engine state (request)");
      }
    }
    const uint64_t nu = r.count(17);
    e.unknown_.resize(static_cast<size_t>(nu));
    for (UnknownFill& u : e.unknown_) {
      u.known_at = r.get<int64_t>();
      u.lots = r.get<int64_t>();
      u.working = r.flag();
      if (u.lots < -kMaxQty || u.lots > kMaxQty) throw std::invalid_argument("corrupt engine state (fill)");
    }
    e.l2_ = r.flag();
    e.depth_hidden_ticks_ = r.get<uint64_t>();
    e.depth_.bounded = r.flag();
    e.depth_.bound_bid = r.get<int64_t>();
    e.depth_.bound_ask = r.get<int64_t>();
    if (e.depth_.bounded && (e.depth_.bound_bid < 0 || e.depth_.bound_ask >= kMaxPrice ||
                             e.depth_.bound_bid > e.depth_.bound_ask)) {
      throw std::invalid_argument("corrupt engine state (depth bound)");
    }
    for (int side : {kBuy, kSell}) {
      auto& m = e.depth_.levels(side);
      const uint64_t nl = r.count(32);
      bool first = true;
      int64_t prev_key = 0;
      for (uint64_t k = 0; k < nl; ++k) {
        const int64_t key = r.get<int64_t>();
        DepthLevel lv;
        lv.qty = r.get<int64_t>();
        lv.used = r.get<int64_t>();
        lv.taken_ts = r.get<int64_t>();
        const int64_t px = DepthBook::price(side, key);
        if ((!first && key <= prev_key) || px <= 0 || px >= kMaxPrice || lv.qty <= 0 || lv.qty > kMaxQty ||
            lv.used < 0 || lv.used > lv.qty || (lv.used == 0 && lv.taken_ts != 0)) {
          throw std::invalid_argument("corrupt engine state (depth)");
        }
        m.v.emplace_back(key, lv);  // best first here; reversed below
        first = false;
        prev_key = key;
      }
      std::reverse(m.v.begin(), m.v.end());
    }
    if (r.pos != r.size) throw std::invalid_argument("corrupt engine state (trailing bytes)");
    return e;
  }

 private:
  static constexpr uint32_t kMagic = 0x31455454;  // "TTE1"
  static constexpr uint32_t kVersion = 6;
  // 4: + the L2 depth; 5: + its L1 bound; 6: + depth_refill_ns and each level's last take
  static constexpr size_t kOrderBytes = 11 * 8 + 6;
  static constexpr size_t kRequestBytes = 6 * 8 + 6;

  template <class T>
  static void put(std::string& s, T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s.append(b, sizeof(T));
  }
  struct Reader {
    const char* data;
    size_t size;
    size_t pos;
    template <class T>
    T get() {
      if (size - pos < sizeof(T)) throw std::invalid_argument("truncated engine state");
      T v;
      std::memcpy(&v, data + pos, sizeof(T));
      pos += sizeof(T);
      return v;
    }
    // A bool written as one byte; any other byte is corruption (loading it
    // into a bool directly would be undefined behaviour).
    bool flag() {
      const uint8_t b = get<uint8_t>();
      if (b > 1) throw std::invalid_argument("corrupt engine state (flag)");
      return b == 1;
    }
    // An element count, bounded by the bytes left.
    uint64_t count(size_t elem_bytes) {
      const uint64_t n = get<uint64_t>();
      if (n > (size - pos) / elem_bytes) throw std::invalid_argument("corrupt engine state");
      return n;
    }
  };
};

}  // namespace ticktape
