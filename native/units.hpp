// Integer prices and quantities: the units every book and the engine share.
//
// Inside native/ a price is int64 ticks and a quantity int64 lots. Both are
// bounded (kMaxPrice, kMaxQty) so that sums and negations never overflow.
// Floats are converted at the boundary; Grid turns ticks / lots back into the
// floats the engine reports, and round_half_away is the one rounding rule
// (the pure-Python twin, ticktape.reference, computes the very same values).
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace ticktape {

constexpr int64_t kMaxPrice = int64_t(1) << 62;  // |price| < kMaxPrice
constexpr int64_t kMaxQty = int64_t(1) << 53;    // 0 < qty <= kMaxQty
constexpr double kMaxLots = 9007199254740992.0;  // 2**53: lots beyond are clamped
constexpr int8_t kBuy = 1;
constexpr int8_t kSell = -1;

namespace detail {

inline std::string fmt(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

// Round half away from zero, written so that Python computes the very same
// value (ticktape.reference.round_half_away, which also truncates through
// an int, so -0.4 gives 0.0 in both). |x| >= 2**52 is integral already
// (returned as is, like inf and NaN); below it the truncation is an int cast.
inline double round_half_away(double x) {
  if (!(std::fabs(x) < 4503599627370496.0)) return x;
  const double q = static_cast<double>(static_cast<int64_t>(x));
  const double frac = x - q;  // exact
  if (frac >= 0.5) return q + 1.0;
  if (frac <= -0.5) return q - 1.0;
  return q;
}

inline int64_t sat_add(int64_t a, int64_t b) {  // b >= 0
  return a > std::numeric_limits<int64_t>::max() - b ? std::numeric_limits<int64_t>::max() : a + b;
}

inline int64_t floor_div(int64_t a, int64_t b) {  // b > 0
  int64_t q = a / b;
  if ((a % b) != 0 && a < 0) --q;
  return q;
}

}  // namespace detail

// A price on the tick grid in ticks (round half away from zero).
inline int64_t to_ticks(double price, double tick_size) {
  return static_cast<int64_t>(detail::round_half_away(price / tick_size));
}

// The whole lots a displayed size shows: floor(size / lot_size), with a
// 1e-9 lot of slack for sizes that are whole lots in decimal (0 for NaN or
// 0; at most 2**53).
inline int64_t to_lots_displayed(double size, double lot_size) {
  if (!(size > 0.0)) return 0;  // NaN or 0: nothing displayed
  const double x = size / lot_size + 1e-9;  // > 0: floor is the int cast below 2**53
  return x >= kMaxLots ? static_cast<int64_t>(kMaxLots) : static_cast<int64_t>(x);
}

// Integer steps <-> floats. When 1/step is an integer N (0.01, 0.25, ...),
// k / N is the float nearest to the decimal value (100.01, not
// 100.01000000000001); otherwise k * step.
struct Grid {
  double step = 1.0;
  double inv = 1.0;
  bool use_inv = false;

  Grid() = default;
  explicit Grid(double s) : step(s) {
    const double r = std::round(1.0 / s);
    use_inv = s < 1.0 && r >= 1.0 && std::fabs(1.0 / s - r) <= 1e-9 * r;
    inv = use_inv ? r : 1.0 / s;
  }
  double to_float(int64_t k) const {
    return use_inv ? static_cast<double>(k) / inv : static_cast<double>(k) * step;
  }
};

}  // namespace ticktape
