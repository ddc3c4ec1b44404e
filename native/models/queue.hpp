// Queue position model of resting limit orders (see docs/native.md, "Queue models").
#pragma once

#include <cmath>
#include <cstdint>

namespace ticktape {

// Queue position model of resting limit orders (hftbacktest's definitions,
// on lots; `front` is the quantity ahead of the order).
struct QueueModel {
  int8_t kind = 0;  // 0 none (nothing ahead), 1 risk-averse, 2 probabilistic power
  double power = 2.0;

  // Probability that a decrease of the level came from behind the order:
  // f(back) / (f(back) + f(front)), f(x) = x ** power (both clamped at 0;
  // 1 when both are 0).
  double prob_back(double front, double back) const {
    const double fb = std::pow(back > 0.0 ? back : 0.0, power);
    const double ff = std::pow(front > 0.0 ? front : 0.0, power);
    const double den = fb + ff;
    if (!(den > 0.0) || std::isinf(den)) return std::isinf(fb) ? 1.0 : (den > 0.0 ? 0.0 : 1.0);
    return fb / den;
  }
};

}  // namespace ticktape
