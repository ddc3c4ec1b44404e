// Per-tick kernels of the pipeline's Python stages that numpy would do in
// several passes: tick validation (ticktape.quality) and the entry/exit
// state machine of the templates (ticktape.templates.positions).
// Plain C++17, no Python; kernel_bindings.cpp exposes them.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

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

// The rules of ticktape.quality.validate, in one pass. ok[i] = 1 when tick i
// is accepted; counts[reason] += 1 otherwise (first failing reason wins, in
// the order bad_price, crossed, bad_size, out_of_order). `last_ts` is the
// latest accepted ts before the batch (has_last false: none) and is updated.
// Returns how many accepted ticks lack a usable quote or a quote size (those
// ticktape.quality.as_quotes rewrites).
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
// ticktape.templates.positions): the latest entry decides the side, an exit
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

}  // namespace ticktape::kern
