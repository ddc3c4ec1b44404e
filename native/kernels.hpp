// Per-tick kernels of the pipeline's Python stages that numpy would do in
// several passes: tick validation (ticktape.compute.quality), the entry/exit
// state machine of the templates (ticktape.strategy.templates.positions) and the
// round trips of a fill sequence (ticktape.compute.accounting.RoundTrips).
// Plain C++17, no Python; kernel_bindings.cpp exposes them.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

namespace ticktape::kern {

// A strided column (a field of a numpy structured array), zero copy.
template <class T>
struct Col {
  const char* base = nullptr;
  std::ptrdiff_t stride = sizeof(T);
  T operator[](int64_t i) const {
    T v;
    std::memcpy(&v, base + i * stride, sizeof(T));
    return v;
  }
};

enum Reason : int { kBadPrice = 0, kCrossed = 1, kBadSize = 2, kOutOfOrder = 3 };

// The rules of ticktape.compute.quality.validate, in one pass. ok[i] = 1 when tick i
// is accepted; counts[reason] += 1 otherwise (first failing reason wins, in
// the order bad_price, crossed, bad_size, out_of_order). `last_ts` is the
// latest accepted ts before the batch (has_last false: none) and is updated.
// Returns how many accepted ticks lack a usable quote or a quote size (those
// ticktape.compute.quality.as_quotes rewrites).
inline int64_t validate(int64_t n, Col<int64_t> ts, Col<double> bid, Col<double> ask, Col<double> bid_size,
                        Col<double> ask_size, Col<double> last, Col<double> last_size, bool& has_last,
                        int64_t& last_ts, uint8_t* ok, int64_t counts[4]) {
  int64_t to_fix = 0;
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    const double b = bid[i], a = ask[i], l = last[i];
    const bool quote = b > 0 && a > 0 && b < inf && a < inf;  // false for NaN
    const bool trade = l > 0 && l < inf;
    int reason = -1;
    if (!(quote || trade)) {
      reason = kBadPrice;
    } else if (quote && b > a) {
      reason = kCrossed;
    } else {
      const double bs = bid_size[i], as = ask_size[i], ls = last_size[i];
      if (bs < 0 || as < 0 || ls < 0 || bs == inf || as == inf || ls == inf) reason = kBadSize;
    }
    if (reason < 0) {
      const int64_t t = ts[i];
      if (has_last && t < last_ts) {
        reason = kOutOfOrder;
      } else {
        has_last = true;
        last_ts = t;
      }
    }
    ok[i] = reason < 0;
    if (reason >= 0) {
      ++counts[reason];
    } else if (!quote || std::isnan(bid_size[i]) || std::isnan(ask_size[i])) {
      ++to_fix;
    }
  }
  return to_fix;
}

// Position direction per tick from four event columns (see
// ticktape.strategy.templates.positions): the latest entry decides the side, an exit
// of that side after it makes the position flat; an entry wins over an exit
// on the same tick, a short entry over a long one. `dir` carries the direction in and out: NaN = none yet.
inline void positions(int64_t n, const uint8_t* el, const uint8_t* xl, const uint8_t* es, const uint8_t* xs,
                      double& dir, double* out) {
  double d = dir;
  for (int64_t i = 0; i < n; ++i) {
    if (es[i]) {  // a short entry; with a long entry on the same tick the short wins
      d = -1.0;
    } else if (el[i]) {
      d = 1.0;
    } else if ((d == 1.0 && xl[i]) || (d == -1.0 && xs[i]) || (std::isnan(d) && (xl[i] || xs[i]))) {
      d = 0.0;
    }
    out[i] = d;
  }
  dir = d;
}

// Python's min(a, b) / max(a, b): the first argument unless the second is
// strictly smaller / larger.
inline double py_min(double a, double b) { return b < a ? b : a; }
inline double py_max(double a, double b) { return b > a ? b : a; }

// The trades of a fill sequence under average-cost accounting, as columns,
// and the state after each fill (see RoundTrips in ticktape/accounting.py
// for the meaning of every column; the pure-Python specification is
// ticktape.reference.round_trips, which this matches bit for bit: the same
// double operations in the same order).
struct RoundTrips {
  std::vector<int64_t> entry_ts, exit_ts, side, n_fills;
  std::vector<double> size, entry_notional, exit_qty, exit_notional, pnl, fees, notional, lo, hi;
  std::vector<int64_t> st_trade;                 // per fill: the open trade, -1 none
  std::vector<double> st_real, st_pos, st_avg;  // per fill: its realized PnL, position, average
  double pos = 0.0, avg = std::numeric_limits<double>::quiet_NaN();

  // Fills valid (side +-1, price and qty finite > 0, fee finite), in event order.
  // With ``open_at_start`` the pass continues an earlier one: the columns
  // then hold that pass's open trade as their one row, and pos / avg its state.
  void run(int64_t n, Col<int64_t> ts, Col<int8_t> side_, Col<double> price, Col<double> qty, Col<double> fee,
           double qty_rtol, int64_t open_mark, bool open_at_start = false) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    bool open = open_at_start;  // the last trade is still open
    auto enter = [&](int64_t t, int s, double px, double amount, double f, double new_pos, double new_avg) {
      if (!open) {
        open = true;
        entry_ts.push_back(t);
        exit_ts.push_back(open_mark);
        side.push_back(s);
        n_fills.push_back(0);
        for (auto* col : {&size, &entry_notional, &exit_qty, &exit_notional, &pnl, &fees, &notional, &lo, &hi}) {
          col->push_back(0.0);
        }
      }
      size.back() += amount;
      entry_notional.back() += px * amount;
      notional.back() += px * amount;
      fees.back() += f;
      n_fills.back() += 1;
      const double running = pnl.back() + (px - new_avg) * new_pos;
      lo.back() = py_min(lo.back(), running);
      hi.back() = py_max(hi.back(), running);
    };
    st_trade.reserve(n);
    st_real.reserve(n);
    st_pos.reserve(n);
    st_avg.reserve(n);
    for (int64_t i = 0; i < n; ++i) {
      const int s = side_[i];
      const double px = price[i], q = qty[i], f = fee[i];
      const double sd = static_cast<double>(s);
      // the average-cost step (accounting._step)
      double new_pos, new_avg, closed, realized;
      const double held = std::fabs(pos);
      if (pos == 0.0 || (pos > 0.0) == (s > 0)) {  // opens or adds
        new_avg = pos == 0.0 ? px : (held * avg + q * px) / (held + q);
        new_pos = pos + sd * q;
        closed = realized = 0.0;
      } else {
        const double sign = pos > 0.0 ? 1.0 : -1.0;
        if (std::fabs(q - held) <= qty_rtol * py_max(q, held)) {  // closes exactly
          new_pos = 0.0, new_avg = nan, closed = held, realized = (px - avg) * held * sign;
        } else if (q < held) {  // reduces: the average is kept
          new_pos = pos + sd * q, new_avg = avg, closed = q, realized = (px - avg) * q * sign;
        } else {  // flips: close everything, open the remainder at the fill price
          new_pos = sd * (q - held), new_avg = px, closed = held, realized = (px - avg) * held * sign;
        }
      }
      if (closed == 0.0) {
        enter(ts[i], s, px, q, f, new_pos, new_avg);
      } else {  // reduces, closes or flips
        if (!open) throw std::logic_error("round_trips: a fill reduces a position no trade holds");
        const bool flip = new_pos != 0.0 && (new_pos > 0.0) == (s > 0);
        const double fee_close = flip ? f * (closed / q) : f;
        pnl.back() += realized;
        fees.back() += fee_close;
        exit_qty.back() += closed;
        exit_notional.back() += px * closed;
        notional.back() += px * closed;
        n_fills.back() += 1;
        const bool ends = new_pos == 0.0 || flip;
        const double running = pnl.back() + (ends ? 0.0 : (px - new_avg) * new_pos);
        lo.back() = py_min(lo.back(), running);
        hi.back() = py_max(hi.back(), running);
        if (ends) {
          exit_ts.back() = ts[i];
          open = false;
        }
        if (flip) enter(ts[i], s, px, q - closed, f - fee_close, new_pos, new_avg);
      }
      pos = new_pos;
      avg = new_avg;
      st_trade.push_back(open ? static_cast<int64_t>(entry_ts.size()) - 1 : -1);
      st_real.push_back(open ? pnl.back() : 0.0);
      st_pos.push_back(open ? pos : 0.0);
      st_avg.push_back(open ? avg : nan);
    }
  }
};

}  // namespace ticktape::kern
