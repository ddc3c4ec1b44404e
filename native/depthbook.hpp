// The displayed L2 depth the engine fills on once it is fed depth diffs
// (ticktape.model.batch.DEPTH_DTYPE), with what the strategy's own aggressive
// orders took from each level.
//
// A diff sets a level's absolute displayed lots (0 removes it) and forgets
// what the strategy had taken there. `used` stays until market data sets
// that level again, so no displayed lot is ever taken twice; with
// EngineConfig::depth_refill_ns >= 0 it also ends (the whole of it) once
// depth_refill_ns of event time have passed since the level's last take
// (the engine runs that clock). Levels are keyed by price (bids by -price),
// the smallest key is the best level.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

namespace ticktape {

struct DepthLevel {
  int64_t qty = 0;       // displayed lots
  int64_t used = 0;      // lots the strategy took since the level was last set
  int64_t taken_ts = 0;  // event time of the last take (0 while used == 0)
  int64_t avail() const { return qty > used ? qty - used : 0; }
};
// One side's levels in a vector sorted by descending key, so the best level
// is at the back: diffs near the top of the book (nearly all of them) move
// few elements, and a walk reads memory in order. begin()/end() iterate
// best first.
struct DepthSide {
  using Entry = std::pair<int64_t, DepthLevel>;  // (key, level)
  std::vector<Entry> v;                          // descending key
  auto begin() { return v.rbegin(); }
  auto end() { return v.rend(); }
  auto begin() const { return v.rbegin(); }
  auto end() const { return v.rend(); }
  size_t size() const { return v.size(); }
  bool empty() const { return v.empty(); }
  // First element whose key is <= k (descending order), scanning from the
  // best end: levels near the top are found in a few steps.
  std::vector<Entry>::iterator find_pos(int64_t k) {
    auto it = v.end();
    for (int steps = 0; it != v.begin() && steps < 8; ++steps) {
      auto prev = it - 1;
      if (prev->first > k) return it;
      it = prev;
    }
    return std::lower_bound(v.begin(), it, k, [](const Entry& e, int64_t x) { return e.first > x; });
  }
};

// The L1 bound: the latest valid L1 quote is authoritative for the top of
// the depth book. Levels strictly better than it (bids above the quote's bid,
// asks below its ask) are hidden: they stay in the book (a later quote or
// diff can make them consistent again) but show no liquidity, are not walked
// and count for no best price, mark or queue. No bound before the first
// valid quote.
struct DepthBook {
  DepthSide bids, asks;
  bool bounded = false;
  int64_t bound_bid = 0, bound_ask = 0;  // ticks, when bounded

  static int64_t key(int side, int64_t px) { return side > 0 ? -px : px; }
  static int64_t price(int side, int64_t key) { return side > 0 ? -key : key; }
  DepthSide& levels(int side) { return side > 0 ? bids : asks; }
  const DepthSide& levels(int side) const { return side > 0 ? bids : asks; }

  // A diff: the level's displayed lots (0 removes it); what the strategy had
  // taken there is forgotten.
  void set(int side, int64_t px, int64_t lots) {
    auto& m = levels(side);
    const int64_t k = key(side, px);
    auto it = m.find_pos(k);
    const bool found = it != m.v.end() && it->first == k;
    if (lots <= 0) {
      if (found) m.v.erase(it);
    } else if (found) {
      it->second = DepthLevel{lots, 0, 0};
    } else {
      m.v.insert(it, DepthSide::Entry{k, DepthLevel{lots, 0, 0}});
    }
  }
  void set_bound(int64_t bid, int64_t ask) {
    bounded = true;
    bound_bid = bid;
    bound_ask = ask;
  }
  // The key of the bound on `side`: keys below it are hidden.
  int64_t bound_key(int side) const { return key(side, side > 0 ? bound_bid : bound_ask); }
  // Is the price of `side` beyond the bound (hidden)?
  bool beyond(int side, int64_t px) const {
    return bounded && (side > 0 ? px > bound_bid : px < bound_ask);
  }
  // Does the bound hide some level of `side` now?
  bool hides(int side) const {
    const auto& m = levels(side);
    return bounded && !m.empty() && m.v.back().first < bound_key(side);
  }
  // Where the hidden levels start in the side's vector: the shown levels are
  // [v.begin(), shown_end) (best shown at shown_end - 1).
  std::vector<DepthSide::Entry>::iterator shown_end(int side) {
    auto& m = levels(side);
    if (!hides(side)) return m.v.end();
    return m.find_pos(bound_key(side) - 1);  // the first key < the bound's
  }
  // The shown levels, best first.
  auto shown_begin(int side) { return std::make_reverse_iterator(shown_end(side)); }
  auto shown_stop(int side) { return levels(side).v.rend(); }
  // The best shown price of `side`, if any.
  bool best(int side, int64_t& px) const {
    auto& self = const_cast<DepthBook&>(*this);
    auto end = self.shown_end(side);
    if (end == self.levels(side).v.begin()) return false;
    px = price(side, (end - 1)->first);
    return true;
  }
  // The displayed lots at a price (0: no level there, or hidden).
  int64_t displayed(int side, int64_t px) const {
    if (beyond(side, px)) return 0;
    auto& m = const_cast<DepthSide&>(levels(side));
    const int64_t k = key(side, px);
    auto it = m.find_pos(k);
    return (it != m.v.end() && it->first == k) ? it->second.qty : 0;
  }
};

}  // namespace ticktape
