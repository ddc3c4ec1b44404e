// The sums behind ticktape.compute.metrics.PerformanceStream: an equity
// curve's returns on several time grids, its drawdowns, mean and exposure,
// folded sample by sample (plain C++17, no Python; bound in
// kernel_bindings.cpp as ticktape._native.PerfCore).
//
// Every sum is sequential in time order, so the result depends only on the
// samples, never on how they were cut into pieces; a single run, a sweep
// and the pipeline's sink all feed this one fold. The definitions (which
// sample is a point of a grid, the drawdown spell, the exposure) are those
// documented in ticktape.compute.metrics.performance and docs/metrics.md;
// what is computed from these sums (annualization, the choice of the grid)
// stays in Python.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

namespace ticktape::metrics {

constexpr int64_t kDayNs = 86'400'000'000'000LL;

inline int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// The simple returns of the curve on one grid of width `width` ns: the
// points are the first sample and the last sample of every bucket
// [k * width, (k + 1) * width) that holds one; each return is a point's
// equity over the previous point's, minus 1.
struct GridReturns {
  int64_t width = 1;
  std::vector<double> rf;    // per-period risk-free rate of each candidate periods-per-year
  std::vector<double> down;  // Σ min(r - rf, 0)^2, per candidate
  int64_t n = 0;             // returns
  double mean = 0.0, m2 = 0.0;  // Welford's running mean and Σ (r - mean)^2
  double abs_r = 0.0;           // the largest |r|
  bool nonpositive = false;     // a point before the last <= 0
  int64_t closes = 0, weekend = 0;  // bucket closes, and those on a Saturday or Sunday (UTC)
  int64_t adjacent = 0;             // returns from a bucket to the next (or within the first)

  GridReturns(int64_t w, std::vector<double> rates) : width(w), rf(std::move(rates)), down(rf.size(), 0.0) {
    if (width < 1) throw std::invalid_argument("a return grid's width must be >= 1 ns");
  }

  // The next sample (time strictly increasing).
  void add(int64_t ts, double eq) {
    // the bucket: the current one while ts is inside it (no division per sample)
    if (!(ts >= lo_ && ts < hi_)) {
      cur_ = width == 1 ? ts : floor_div(ts, width);
      lo_ = cur_ * width;
      hi_ = lo_ + width;
    }
    const int64_t b = cur_;
    if (!started_) {  // the opening point
      started_ = true;
      prev_ = eq;
      bucket_ = b;
      opening_ = true;
    } else if (b != pend_bucket_) {  // the held sample was the last of its bucket
      point(pend_bucket_, pend_eq_);
    } else {
      opening_ = false;  // the opening sample is not the last of its bucket: the close is a return
    }
    pend_bucket_ = b;
    pend_eq_ = eq;
  }

  // The last sample closes the last bucket.
  void finish() {
    if (started_ && !finished_) {
      finished_ = true;
      point(pend_bucket_, pend_eq_);
    }
  }

 private:
  void point(int64_t b, double e) {
    ++closes;
    const int64_t start = b * width;
    if (!(start >= day_lo_ && start < day_hi_)) {  // a new day: is it a Saturday or Sunday (UTC)?
      const int64_t day = floor_div(start, kDayNs);
      day_lo_ = day * kDayNs;
      day_hi_ = day_lo_ + kDayNs;
      weekend_day_ = ((day + 3) % 7 + 7) % 7 >= 5;  // 1970-01-01 was a Thursday
    }
    if (weekend_day_) ++weekend;
    if (opening_) {  // the opening sample closes its bucket: a point, no return
      opening_ = false;
      return;
    }
    if (b - bucket_ <= 1) ++adjacent;
    bucket_ = b;
    if (prev_ <= 0.0) nonpositive = true;
    const double r = e / prev_ - 1.0;
    ++n;
    const double delta = r - mean;
    mean += delta / static_cast<double>(n);
    m2 += delta * (r - mean);
    if (std::fabs(r) > abs_r) abs_r = std::fabs(r);
    for (size_t k = 0; k < rf.size(); ++k) {
      const double d = std::min(r - rf[k], 0.0);
      down[k] += d * d;
    }
    prev_ = e;
  }

  int64_t lo_ = 1, hi_ = 0, cur_ = 0;          // the bucket of the latest sample: [lo_, hi_) (empty at first)
  int64_t day_lo_ = 1, day_hi_ = 0;             // the day of the latest close (empty at first)
  bool weekend_day_ = false;
  bool started_ = false, finished_ = false;
  bool opening_ = false;  // the opening sample is still the held one
  int64_t bucket_ = 0;    // bucket of the latest point
  double prev_ = 0.0;     // equity of the latest point
  int64_t pend_bucket_ = 0;
  double pend_eq_ = 0.0;  // the latest sample: a point if the next is in a later bucket
};

// Everything PerformanceStream keeps of the samples besides the grids.
struct PerfCore {
  std::vector<GridReturns> grids;
  int64_t samples = 0;
  int64_t first_ts = 0, last_ts = 0;
  double e0 = std::numeric_limits<double>::quiet_NaN(), e1 = std::numeric_limits<double>::quiet_NaN();
  double eq_sum = 0.0;
  double peak = 0.0, dd_abs = 0.0, dd_pct = 0.0;
  bool under = false;       // the last sample is below its peak
  int64_t spell_from = 0;   // ts of the sample before the current spell's first
  int64_t longest = 0;      // longest spell from a peak to the first sample back at it, ns
  int64_t held_ns = 0;      // time from each sample to the next with a non-zero gross position
  bool held_last = false;   // the last sample's gross is non-zero

  // The next samples (time strictly increasing across calls; the caller
  // checks); gross may be null (no exposure).
  void add(const int64_t* ts, const double* eq, const double* gross, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      const int64_t t = ts[i];
      const double e = eq[i];
      for (GridReturns& g : grids) g.add(t, e);
      eq_sum += e;
      if (samples == 0) {
        first_ts = t;
        e0 = e;
        peak = e;
      } else {
        if (e > peak) peak = e;
        if (gross != nullptr && held_last) held_ns += t - last_ts;
      }
      const double fall = peak - e;
      if (fall > dd_abs) dd_abs = fall;
      const double frac = peak > 0.0 ? fall / peak : 0.0;
      if (frac > dd_pct) dd_pct = frac;
      const bool below = fall > 0.0;
      if (below && !under) spell_from = samples == 0 ? t : last_ts;  // falls from the sample before
      if (!below && under) longest = std::max(longest, t - spell_from);
      under = below;
      if (gross != nullptr) held_last = gross[i] != 0.0;
      last_ts = t;
      e1 = e;
      ++samples;
    }
  }

  void finish() {
    for (GridReturns& g : grids) g.finish();
  }
};

}  // namespace ticktape::metrics
