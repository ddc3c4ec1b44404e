// Slippage model of market orders on L1 data (see docs/native.md, "Slippage").
#pragma once

#include <cmath>
#include <cstdint>

namespace ticktape {

// Slippage of market orders on L1 data: the part beyond the displayed size
// fills at once at touch +- ceil(touch * impact_bps * 1e-4 * rest / shown)
// ticks (shown: the displayed lots at the touch, at least 1).
struct Impact {
  int8_t kind = 0;  // 0 none (the remainder waits), 1 linear impact
  double impact_bps = 0.0;
  int64_t extra_ticks(int64_t touch, int64_t rest, int64_t shown) const {
    const double mult = static_cast<double>(rest) / static_cast<double>(shown > 1 ? shown : 1);
    const double x = static_cast<double>(touch) * impact_bps * 1e-4 * mult;
    const double c = std::ceil(x);
    return c >= 4.0e18 ? static_cast<int64_t>(4.0e18) : static_cast<int64_t>(c);
  }
};

}  // namespace ticktape
