// Technical indicator kernels (plain C++17, no Python): the loops behind
// ticktape.compute.indicators. Inputs are validated by the Python layer (finite
// values, high >= low, volume >= 0, prices > 0 where a log is taken).
//
// Two kinds of kernel:
//
// * Recursive ones (EMA, RSI, ATR, MACD, session VWAP) keep their whole carry
//   in a small state struct and walk the input once, strictly in order, so a
//   batch-by-batch run performs exactly the same floating-point operations as
//   one run over the whole array.
//
// * Rolling-window ones (SMA, WMA, Bollinger, z-score, rolling VWAP, realized
//   volatility, highest/lowest channel) are stateless: the caller passes the
//   last n - 1 inputs it has seen (n for realized volatility and the channel)
//   followed by the new batch, and the global stream position of the first
//   of them. Every window [i - n + 1, i] is evaluated with the van Herk / Gil-Werman block decomposition on blocks
//   of n positions aligned to global stream position 0: the window is the
//   suffix [i - n + 1, b - 1] of the previous block plus the prefix [b, i] of
//   its own block (b = n * floor(i / n)). The suffix is accumulated backward
//   from b - 1, the prefix forward from b. Both depend only on the values and
//   their global positions, never on where a batch starts, so the output is
//   bit-identical for any split; the cost is O(1) per value for any n; and no
//   value is ever subtracted back out of a running total, so there is no
//   cancellation error growing with the stream length. Variances use Welford
//   updates on shifted values inside each part and Chan et al.'s pairwise
//   combination across the two parts (no E[x^2] - E[x]^2 cancellation).
//
// The build uses -ffp-contract=off: every a * b + c below is a rounded
// multiply followed by a rounded add, as written.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace ticktape::ind {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------- recursive

// One step of a TA-Lib-seeded EMA over a stream whose q-th value (q = 0, 1,
// ...) is x: the seed sum accumulates the first n values left to right, the
// first output (q = n - 1) is sum / n, then value = (x - value) * k + value.
// Returns NaN during warm-up.
inline double ema_step(double& sum, double& value, int64_t q, int64_t n, double k, double x) {
  if (q < n - 1) {
    sum += x;
    return kNaN;
  }
  if (q == n - 1) {
    sum += x;
    value = sum / static_cast<double>(n);
    return value;
  }
  value = (x - value) * k + value;
  return value;
}

inline double ema_alpha(int64_t n) { return 2.0 / static_cast<double>(n + 1); }

struct EmaState {
  int64_t n;
  int64_t seen = 0;
  double sum = 0.0;
  double value = kNaN;
  explicit EmaState(int64_t n_) : n(n_) {}

  void update(const double* x, int64_t m, double* out) {
    const double k = ema_alpha(n);
    for (int64_t i = 0; i < m; ++i, ++seen) out[i] = ema_step(sum, value, seen, n, k, x[i]);
  }
};

// RSI with Wilder smoothing and TA-Lib seeding: d_p = x_p - x_{p-1}; the
// first n changes are summed into gain (d >= 0) and loss (-d for d < 0) and
// divided by n at p = n (first output); afterwards
// avg = (avg * (n - 1) + part) / n, evaluated as three rounded steps.
// RSI = 100 * (gain / (gain + loss)); 50 when gain + loss == 0 (no movement).
struct RsiState {
  int64_t n;
  int64_t seen = 0;
  double prev = kNaN;
  double gain = 0.0;
  double loss = 0.0;
  explicit RsiState(int64_t n_) : n(n_) {}

  double rsi() const {
    const double total = gain + loss;
    return total == 0.0 ? 50.0 : 100.0 * (gain / total);
  }

  void update(const double* x, int64_t m, double* out) {
    const double nn = static_cast<double>(n);
    const double n1 = static_cast<double>(n - 1);
    for (int64_t i = 0; i < m; ++i, ++seen) {
      if (seen == 0) {
        prev = x[i];
        out[i] = kNaN;
        continue;
      }
      const double d = x[i] - prev;
      prev = x[i];
      if (seen > n) {
        loss *= n1;
        gain *= n1;
      }
      if (d < 0.0)
        loss -= d;
      else
        gain += d;
      if (seen < n) {
        out[i] = kNaN;
        continue;
      }
      loss /= nn;
      gain /= nn;
      out[i] = rsi();
    }
  }
};

// ATR with Wilder smoothing and TA-Lib seeding. The true range at p >= 1 is
// max(high - low, |prev_close - high|, |prev_close - low|) (p = 0 has none);
// the first n true ranges (p = 1..n) are summed left to right and divided by
// n at p = n (first output); afterwards atr = ((atr * (n - 1)) + tr) / n.
struct AtrState {
  int64_t n;
  int64_t seen = 0;
  double prev_close = kNaN;
  double sum = 0.0;
  double value = kNaN;
  explicit AtrState(int64_t n_) : n(n_) {}

  void update(const double* high, const double* low, const double* close, int64_t m, double* out) {
    const double nn = static_cast<double>(n);
    const double n1 = static_cast<double>(n - 1);
    for (int64_t i = 0; i < m; ++i, ++seen) {
      if (seen == 0) {
        prev_close = close[i];
        out[i] = kNaN;
        continue;
      }
      double tr = high[i] - low[i];
      const double up = std::fabs(prev_close - high[i]);
      if (up > tr) tr = up;
      const double down = std::fabs(prev_close - low[i]);
      if (down > tr) tr = down;
      prev_close = close[i];
      const int64_t q = seen - 1;  // index in the true-range stream
      if (q < n - 1) {
        sum += tr;
        out[i] = kNaN;
      } else if (q == n - 1) {
        sum += tr;
        value = sum / nn;
        out[i] = value;
      } else {
        value *= n1;
        value += tr;
        value /= nn;
        out[i] = value;
      }
    }
  }
};

// MACD, TA-Lib convention: the slow EMA is seeded at p = slow - 1 with the
// mean of x[0 .. slow-1]; the fast EMA is seeded at the same position with
// the mean of the last `fast` values x[slow-fast .. slow-1] (it is not the
// stand-alone EMA(fast), which would start at fast - 1). macd = fast - slow
// from p = slow - 1; the signal is the TA-Lib-seeded EMA(signal) of that macd
// series; all three outputs start at p = slow + signal - 2, hist = macd - signal.
struct MacdState {
  int64_t fast, slow, signal;
  int64_t seen = 0;
  double fast_sum = 0.0, fast_ema = kNaN;
  double slow_sum = 0.0, slow_ema = kNaN;
  double signal_sum = 0.0, signal_ema = kNaN;
  MacdState(int64_t f, int64_t s, int64_t g) : fast(f), slow(s), signal(g) {}

  void update(const double* x, int64_t m, double* macd, double* sig, double* hist) {
    const double kf = ema_alpha(fast), ks = ema_alpha(slow), kg = ema_alpha(signal);
    const int64_t fast_start = slow - fast;
    for (int64_t i = 0; i < m; ++i, ++seen) {
      macd[i] = sig[i] = hist[i] = kNaN;
      const double s = ema_step(slow_sum, slow_ema, seen, slow, ks, x[i]);
      if (seen < fast_start) continue;
      const double f = ema_step(fast_sum, fast_ema, seen - fast_start, fast, kf, x[i]);
      if (seen < slow - 1) continue;
      const double line = f - s;
      const double g = ema_step(signal_sum, signal_ema, seen - (slow - 1), signal, kg, line);
      if (seen < slow + signal - 2) continue;
      macd[i] = line;
      sig[i] = g;
      hist[i] = line - g;
    }
  }
};

// Cumulative VWAP that restarts whenever the session id changes:
// pv += price * volume; v += volume; vwap = pv / v (NaN while v == 0).
struct VwapSessionState {
  bool started = false;
  int64_t session = 0;
  double pv = 0.0;
  double v = 0.0;

  void update(const double* price, const double* volume, const int64_t* session_id, int64_t m,
              double* out) {
    for (int64_t i = 0; i < m; ++i) {
      if (!started || session_id[i] != session) {
        started = true;
        session = session_id[i];
        pv = 0.0;
        v = 0.0;
      }
      pv += price[i] * volume[i];
      v += volume[i];
      out[i] = v > 0.0 ? pv / v : kNaN;
    }
  }
};

// ----------------------------------------------------------- rolling window

// Walks the windows ending at global positions i in [max(from, n - 1), end)
// with end = g0 + len; get(p) returns the element at global position p
// (g0 <= p < end; the caller guarantees p >= from - n + 1 is available).
// emit(i, suffix, prefix): suffix is nullptr when the window is exactly one
// block (i = b + n - 1), else the accumulator of [i - n + 1, b - 1] built
// backward with push_front; prefix is the accumulator of [b, i] built forward
// with push_back.
template <class Acc, class Get, class Emit>
void sliding_blocks(int64_t g0, int64_t len, int64_t n, int64_t from, Get get, Emit emit) {
  const int64_t end = g0 + len;
  int64_t i = std::max(from, n - 1);
  std::vector<Acc> suffix(static_cast<size_t>(n));  // suffix[j]: [b - n + j, b - 1]
  while (i < end) {
    const int64_t b = i / n * n;
    const int64_t block_end = std::min(b + n, end);
    Acc back{};
    for (int64_t p = b - 1; p >= i - n + 1; --p) {
      back.push_front(get(p));
      suffix[static_cast<size_t>(p - (b - n))] = back;
    }
    Acc pre{};
    for (int64_t p = b; p < i; ++p) pre.push_back(get(p));
    for (; i < block_end; ++i) {
      pre.push_back(get(i));
      const int64_t s = i - n + 1;
      emit(i, s == b ? nullptr : &suffix[static_cast<size_t>(s - (b - n))], pre);
    }
  }
}

struct SumAcc {
  double s = 0.0;
  void push_back(double x) { s += x; }
  void push_front(double x) { s += x; }
};

inline double window_sum(const SumAcc* a, const SumAcc& b) { return a ? a->s + b.s : b.s; }

// Count, plain sum, and the Welford mean and sum of squared deviations of
// the values shifted by the first value pushed (k). The shift makes the
// deviations exact for a small spread on a large level (x - k is exact when
// x and k are within a factor 2, Sterbenz), so a 1e-4 spread on a 1e8 price
// keeps its digits; Welford on the raw values would not.
struct MomentsAcc {
  double c = 0.0, s = 0.0, k = 0.0, mean = 0.0, m2 = 0.0;
  void push_back(double x) {
    if (c == 0.0) k = x;
    c += 1.0;
    s += x;
    const double y = x - k;
    const double d = y - mean;
    mean += d / c;
    m2 += d * (y - mean);
  }
  void push_front(double x) { push_back(x); }
};

// Window sum (same operations as SumAcc, so mean = sum / n equals the SMA
// bit for bit), the window's sum of squared deviations from its mean, and
// that mean relative to the prefix's shift b.k (Chan et al.'s pairwise
// combination: ma = mean_a + (k_a - k_b), d = mean_b - ma,
// m2 = m2_a + m2_b + d * d * (c_a * c_b / (c_a + c_b)), rel = ma + d * (c_b / (c_a + c_b))).
inline void window_moments(const MomentsAcc* a, const MomentsAcc& b, double& sum, double& m2, double& rel) {
  if (!a) {
    sum = b.s;
    m2 = b.m2;
    rel = b.mean;
    return;
  }
  sum = a->s + b.s;
  const double ma = a->mean + (a->k - b.k);
  const double d = b.mean - ma;
  const double c = a->c + b.c;
  m2 = a->m2 + b.m2 + d * d * (a->c * b.c / c);
  rel = ma + d * (b.c / c);
}

// Linearly weighted sum with weights 1 (oldest) .. n (newest). Suffix
// [j, e]: W(j) = W(j + 1) + S(j) with S(j) = x_j + S(j + 1); prefix [b, i]:
// Q(i) = Q(i - 1) + (i - b + 1) * x_i. The window's weighted sum is
// W(s) + (Q(i) + L * P(i)) with L the suffix length and P the prefix sum.
struct WeightedAcc {
  double c = 0.0, s = 0.0, w = 0.0;
  void push_front(double x) {
    c += 1.0;
    s += x;
    w += s;
  }
  void push_back(double x) {
    c += 1.0;
    s += x;
    w += c * x;
  }
};

inline double window_weighted(const WeightedAcc* a, const WeightedAcc& b) {
  return a ? a->w + (b.w + a->c * b.s) : b.w;
}

struct PriceVolume {
  double p, v;
};

struct PvAcc {
  double pv = 0.0, v = 0.0;
  void push_back(const PriceVolume& e) {
    pv += e.p * e.v;
    v += e.v;
  }
  void push_front(const PriceVolume& e) { push_back(e); }
};

// All rolling kernels: buf[0 .. len) holds global positions g0 .. g0+len-1
// and out[0 .. g0+len-from) receives positions from .. g0+len-1 (NaN during
// warm-up). The caller guarantees from - g0 >= min(from, n - 1) values of
// history (n for realized_vol).

inline void fill_nan(double* out, int64_t count) { std::fill(out, out + count, kNaN); }

// Simple moving average: window sum / n.
inline void sma_window(const double* buf, int64_t len, int64_t g0, int64_t from, int64_t n, double* out) {
  fill_nan(out, g0 + len - from);
  const double nn = static_cast<double>(n);
  sliding_blocks<SumAcc>(
      g0, len, n, from, [&](int64_t p) { return buf[p - g0]; },
      [&](int64_t i, const SumAcc* a, const SumAcc& b) { out[i - from] = window_sum(a, b) / nn; });
}

// Weighted moving average: weighted sum / (n (n + 1) / 2).
inline void wma_window(const double* buf, int64_t len, int64_t g0, int64_t from, int64_t n, double* out) {
  fill_nan(out, g0 + len - from);
  const double denom = static_cast<double>(n * (n + 1) / 2);
  sliding_blocks<WeightedAcc>(
      g0, len, n, from, [&](int64_t p) { return buf[p - g0]; },
      [&](int64_t i, const WeightedAcc* a, const WeightedAcc& b) {
        out[i - from] = window_weighted(a, b) / denom;
      });
}

// Bollinger bands: middle = sum / n, sd = sqrt(m2 / n) (population),
// upper = middle + k * sd, lower = middle - k * sd.
inline void bollinger_window(const double* buf, int64_t len, int64_t g0, int64_t from, int64_t n, double k,
                             double* upper, double* middle, double* lower) {
  const int64_t count = g0 + len - from;
  fill_nan(upper, count);
  fill_nan(middle, count);
  fill_nan(lower, count);
  const double nn = static_cast<double>(n);
  sliding_blocks<MomentsAcc>(
      g0, len, n, from, [&](int64_t p) { return buf[p - g0]; },
      [&](int64_t i, const MomentsAcc* a, const MomentsAcc& b) {
        double sum, m2, rel;
        window_moments(a, b, sum, m2, rel);
        const double mid = sum / nn;
        const double band = k * std::sqrt(m2 / nn);
        upper[i - from] = mid + band;
        middle[i - from] = mid;
        lower[i - from] = mid - band;
      });
}

// z-score: ((x_i - k) - rel) / sqrt(m2 / n), i.e. (x_i - mean) / sd with the
// deviation taken in shifted coordinates (k = the prefix's first value, exact
// difference for nearby values); NaN when m2 == 0 (a flat window).
inline void zscore_window(const double* buf, int64_t len, int64_t g0, int64_t from, int64_t n, double* out) {
  fill_nan(out, g0 + len - from);
  const double nn = static_cast<double>(n);
  sliding_blocks<MomentsAcc>(
      g0, len, n, from, [&](int64_t p) { return buf[p - g0]; },
      [&](int64_t i, const MomentsAcc* a, const MomentsAcc& b) {
        double sum, m2, rel;
        window_moments(a, b, sum, m2, rel);
        out[i - from] = m2 > 0.0 ? ((buf[i - g0] - b.k) - rel) / std::sqrt(m2 / nn) : kNaN;
      });
}

// Realized volatility at price position i >= n: sample standard deviation
// sqrt(m2 / (n - 1)) of the n log returns r_q = log(x_{q+1} / x_q) ending at
// r_{i-1}. Return q sits at position q of the return stream; buf holds prices.
inline void realized_vol_window(const double* buf, int64_t len, int64_t g0, int64_t from, int64_t n,
                                double* out) {
  fill_nan(out, g0 + len - from);
  if (len < 2) return;
  std::vector<double> r(static_cast<size_t>(len - 1));
  for (int64_t q = 0; q + 1 < len; ++q) r[static_cast<size_t>(q)] = std::log(buf[q + 1] / buf[q]);
  const double n1 = static_cast<double>(n - 1);
  sliding_blocks<MomentsAcc>(
      g0, len - 1, n, std::max<int64_t>(from - 1, 0), [&](int64_t q) { return r[static_cast<size_t>(q - g0)]; },
      [&](int64_t q, const MomentsAcc* a, const MomentsAcc& b) {
        double sum, m2, rel;
        window_moments(a, b, sum, m2, rel);
        if (q + 1 >= from) out[q + 1 - from] = std::sqrt(m2 / n1);
      });
}

// Rolling VWAP: window sum(price * volume) / window sum(volume); NaN when the
// window's volume is 0.
inline void vwap_window(const double* price, const double* volume, int64_t len, int64_t g0, int64_t from,
                        int64_t n, double* out) {
  fill_nan(out, g0 + len - from);
  sliding_blocks<PvAcc>(
      g0, len, n, from, [&](int64_t p) { return PriceVolume{price[p - g0], volume[p - g0]}; },
      [&](int64_t i, const PvAcc* a, const PvAcc& b) {
        const double pv = a ? a->pv + b.pv : b.pv;
        const double v = a ? a->v + b.v : b.v;
        out[i - from] = v > 0.0 ? pv / v : kNaN;
      });
}

// Channel: the highest (kMax) or lowest value of the n values before each
// position, x[i-n .. i-1] (the current value excluded), NaN for i < n. The
// window ending at q of the input stream is reported at q + 1; max and min
// are exact, so this is the textbook value in any association.
template <bool kMax>
struct ExtremeAcc {
  double m = kMax ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  void push_back(double x) {
    if (kMax ? x > m : x < m) m = x;
  }
  void push_front(double x) { push_back(x); }
};

template <bool kMax>
inline void channel_window(const double* buf, int64_t len, int64_t g0, int64_t from, int64_t n, double* out) {
  fill_nan(out, g0 + len - from);
  if (len < 2) return;
  using Acc = ExtremeAcc<kMax>;
  sliding_blocks<Acc>(
      g0, len - 1, n, std::max<int64_t>(from - 1, 0), [&](int64_t p) { return buf[p - g0]; },
      [&](int64_t q, const Acc* a, const Acc& b) {
        double v = b.m;
        if (a && (kMax ? a->m > v : a->m < v)) v = a->m;
        if (q + 1 >= from) out[q + 1 - from] = v;
      });
}

inline void highest_window(const double* buf, int64_t len, int64_t g0, int64_t from, int64_t n, double* out) {
  channel_window<true>(buf, len, g0, from, n, out);
}

inline void lowest_window(const double* buf, int64_t len, int64_t g0, int64_t from, int64_t n, double* out) {
  channel_window<false>(buf, len, g0, from, n, out);
}

}  // namespace ticktape::ind
