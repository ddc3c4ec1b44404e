// Checks a batch before the engine runs any of it (InputError naming the
// field and the index; nothing changes), and converts its prices to ticks
// and its depth sizes to lots once, for the tick loop.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "records.hpp"
#include "units.hpp"

namespace ticktape {

// The prices of one batch in ticks, computed once while the batch is
// validated (kNoPx: not a usable price). Scratch, not state: a copy of the
// engine starts with an empty buffer and keeps its own on assignment.
struct TickPx {
  int64_t bid, ask, last;
};
constexpr int64_t kNoPx = std::numeric_limits<int64_t>::min();
struct DepthPx {
  int64_t price, lots;
};
struct PxScratch {
  std::vector<TickPx> v;
  std::vector<DepthPx> d;  // the depth rows' price in ticks and size in lots
  PxScratch() = default;
  PxScratch(const PxScratch&) {}
  PxScratch(PxScratch&&) noexcept {}
  PxScratch& operator=(const PxScratch&) { return *this; }
  PxScratch& operator=(PxScratch&&) noexcept { return *this; }
};


// The checks of one engine configuration (its tick and lot size).
struct BatchCheck {
  double tick_size = 0.01;
  double lot_size = 1.0;

  // A usable quote price: finite and > 0 (anything else: the quote is ignored).
  static bool usable(double p) { return std::isfinite(p) && p > 0.0; }

  // A market-data price in ticks (kNoPx when not usable: the quote or trade
  // is then ignored); off the grid or out of range: an error.
  int64_t check_price(const char* field, size_t i, double p) const {
    if (!usable(p)) return kNoPx;
    const double x = p / tick_size;
    if (!(x < 4.0e18)) fail(field, i, detail::fmt(p), "is out of range for the tick size");
    const double t = detail::round_half_away(x);
    if (std::fabs(x - t) > 1e-6) {
      fail(field, i, detail::fmt(p),
           "is not on the tick grid (tick_size " + detail::fmt(tick_size) + ")");
    }
    return static_cast<int64_t>(t);
  }

  // An instruction price: NaN (absent) unless `required`; else finite, > 0,
  // on the grid.
  void check_instr_price(const char* name, size_t k, double p, bool required, bool allowed,
                         const char* what) const {
    // (no std::string is built unless the check fails: this runs per instruction)
    const char* field = name;  // "orders.<name>"
    if (std::isnan(p)) {
      if (required) fail(field, k, "nan", std::string("is required for ") + what);
      return;
    }
    if (!allowed) fail(field, k, detail::fmt(p), std::string("must be NaN for ") + what);
    if (!usable(p)) fail(field, k, detail::fmt(p), "must be finite and > 0");
    const double x = p / tick_size;
    if (!(x < 1.0e18)) fail(field, k, detail::fmt(p), "is out of range for the tick size");
    check_price(field, k, p);
  }

  void check_instr_qty(size_t k, double q, bool required) const {
    if (std::isnan(q)) {
      if (required) fail("orders.qty", k, "nan", "is required for a NEW order");
      return;
    }
    if (!(std::isfinite(q) && q > 0.0)) fail("orders.qty", k, detail::fmt(q), "must be finite and > 0");
    const double x = q / lot_size;
    if (!(x < kMaxLots)) fail("orders.qty", k, detail::fmt(q), "is out of range");
    if (std::fabs(x - detail::round_half_away(x)) > 1e-9 * (x > 1.0 ? x : 1.0) ||
        detail::round_half_away(x) < 1.0) {
      fail("orders.qty", k, detail::fmt(q),
           "is not a whole number of lots (lot_size " + detail::fmt(lot_size) + ")");
    }
  }

  void check_target(size_t i, double t) const {
    if (std::isinf(t)) fail("target", i, detail::fmt(t), "is not finite (NaN means no decision)");
    if (!std::isnan(t) && !(std::fabs(t / lot_size) < kMaxLots)) {
      fail("target", i, detail::fmt(t), "is out of range");
    }
  }

  // Checks the batch (`has_prev`, `prev`: the last timestamp seen before
  // it) and fills `out` with its prices in ticks. An absent optional column
  // is one value repeated (stride 0): checked once.
  void batch(const Inputs& in, bool has_prev, int64_t prev, PxScratch& out) const {
    out.v.resize(in.n);
    TickPx* px = out.v.data();
    const bool last_const = in.last.stride == 0, ls_const = in.last_size.stride == 0;
    const bool target_const = in.target.stride == 0;
    int64_t last_px0 = kNoPx;
    if (in.n > 0) {
      if (last_const) last_px0 = check_price("last", 0, in.last[0]);
      if (ls_const && in.last_size[0] < 0.0) fail("last_size", 0, detail::fmt(in.last_size[0]), "is negative");
      if (target_const) check_target(0, in.target[0]);
    }
    for (size_t i = 0; i < in.n; ++i) {
      const int64_t ts = in.ts[i];
      if (has_prev && ts < prev) {
        fail("ts", i, std::to_string(ts), "goes backwards (previous " + std::to_string(prev) + ")");
      }
      has_prev = true;
      prev = ts;
      px[i].bid = check_price("bid", i, in.bid[i]);
      px[i].ask = check_price("ask", i, in.ask[i]);
      px[i].last = last_const ? last_px0 : check_price("last", i, in.last[i]);
      const double bs = in.bid_size[i];
      if (bs < 0.0) fail("bid_size", i, detail::fmt(bs), "is negative");
      const double as = in.ask_size[i];
      if (as < 0.0) fail("ask_size", i, detail::fmt(as), "is negative");
      if (!ls_const) {
        const double ls = in.last_size[i];
        if (ls < 0.0) fail("last_size", i, detail::fmt(ls), "is negative");
      }
      if (!target_const) check_target(i, in.target[i]);
    }
    int64_t prev_i = 0;
    for (size_t k = 0; k < in.n_instr; ++k) {
      const OrderInstr& x = in.instr[k];
      if (x.i < 0 || static_cast<uint64_t>(x.i) >= in.n) {
        fail("orders.i", k, std::to_string(x.i),
             "is not the index of a tick in this batch (0 .. " + std::to_string(in.n) + " - 1)");
      }
      if (x.i < prev_i) {
        fail("orders.i", k, std::to_string(x.i), "decreases (previous " + std::to_string(prev_i) + ")");
      }
      prev_i = x.i;
      if (x.order_id <= 0) fail("orders.order_id", k, std::to_string(x.order_id), "must be > 0");
      if (x.latency_ns < -1) {
        fail("orders.latency_ns", k, std::to_string(x.latency_ns), "must be >= 0 (or -1: the engine's)");
      }
      if (x.action == kNew) {
        if (x.side != kBuy && x.side != kSell) {
          fail("orders.side", k, std::to_string(x.side), "must be +1 (buy) or -1 (sell)");
        }
        if (x.type < kMarket || x.type > kStopLimit) {
          fail("orders.type", k, std::to_string(x.type),
               "must be 0 (MARKET), 1 (LIMIT), 2 (STOP) or 3 (STOP_LIMIT)");
        }
        if (x.tif < kGTC || x.tif > kPostOnly) {
          fail("orders.tif", k, std::to_string(x.tif),
               "must be 0 (GTC), 1 (IOC), 2 (FOK) or 3 (POST_ONLY)");
        }
        if (x.tif == kPostOnly && x.type != kLimit) {
          fail("orders.tif", k, "3", "(POST_ONLY) needs a LIMIT order");
        }
        const bool limit = x.type == kLimit || x.type == kStopLimit;
        const bool stop = x.type == kStop || x.type == kStopLimit;
        static const char* names[] = {"a MARKET order", "a LIMIT order", "a STOP order",
                                      "a STOP_LIMIT order"};
        check_instr_price("orders.price", k, x.price, limit, limit, names[x.type]);
        check_instr_price("orders.stop_price", k, x.stop_price, stop, stop, names[x.type]);
        check_instr_qty(k, x.qty, true);
      } else if (x.action == kModify) {
        check_instr_price("orders.price", k, x.price, false, true, "");
        check_instr_price("orders.stop_price", k, x.stop_price, false, true, "");
        check_instr_qty(k, x.qty, false);
      } else if (x.action != kCancel) {
        fail("orders.action", k, std::to_string(x.action), "must be 0 (NEW), 1 (CANCEL) or 2 (MODIFY)");
      }
    }
    out.d.resize(in.n_depth);
    int64_t prev_di = 0;
    for (size_t k = 0; k < in.n_depth; ++k) {
      const DepthRow& r = in.depth[k];
      const int64_t di = r.i;
      if (di < 0 || static_cast<uint64_t>(di) >= in.n) {
        fail("depth.i", k, std::to_string(di),
             "is not the index of a tick in this batch (0 .. " + std::to_string(in.n) + " - 1)");
      }
      if (di < prev_di) fail("depth.i", k, std::to_string(di), "decreases (previous " + std::to_string(prev_di) + ")");
      prev_di = di;
      const int side = r.side;
      if (side != kBuy && side != kSell) fail("depth.side", k, std::to_string(side), "must be +1 (bid) or -1 (ask)");
      const double p = r.price;
      if (!usable(p)) fail("depth.price", k, detail::fmt(p), "must be finite and > 0");
      const double q = r.qty;
      if (!(std::isfinite(q) && q >= 0.0)) {
        fail("depth.qty", k, detail::fmt(q), "must be finite and >= 0 (0 removes the level)");
      }
      out.d[k] = DepthPx{check_price("depth.price", k, p), to_lots_displayed(q, lot_size)};
    }
  }
};

}  // namespace ticktape
