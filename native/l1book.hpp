// The displayed L1 liquidity of the current tick: the book the engine fills
// on until it is fed depth (then depthbook.hpp's DepthBook takes over).
//
// Aggressive strategy orders consume it (`avail`); the next tick's market
// data replaces it. `*_shown` keep what the data displayed (the queue and
// impact models read those).
#pragma once

#include <cstdint>

namespace ticktape {

struct L1Book {
  bool valid = false;
  int64_t bid_px = 0, bid_qty = 0, ask_px = 0, ask_qty = 0;
  int64_t bid_shown = 0, ask_shown = 0;

  void set(int64_t bp, int64_t bq, int64_t ap, int64_t aq) {
    valid = true;
    bid_px = bp;
    bid_qty = bid_shown = bq;
    ask_px = ap;
    ask_qty = ask_shown = aq;
  }
  void clear() { *this = L1Book{}; }
  // Price an aggressive order of `side` trades at (buy lifts the ask).
  int64_t touch(int side) const { return side > 0 ? ask_px : bid_px; }
  int64_t& avail(int side) { return side > 0 ? ask_qty : bid_qty; }
  int64_t shown(int side) const { return side > 0 ? ask_shown : bid_shown; }
  // Does a limit at `price` of `side` cross the opposite quote?
  bool crosses(int side, int64_t price) const {
    return valid && (side > 0 ? ask_px <= price : bid_px >= price);
  }
};

}  // namespace ticktape
