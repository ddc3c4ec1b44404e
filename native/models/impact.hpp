// Slippage model of market orders on L1 data: what happens to the part of a
// market order beyond the displayed size. Chosen once when the engine is
// built (make_impact_model); on L2 depth orders walk the book instead and no
// impact model is used. See docs/native.md, "Slippage".
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "../units.hpp"

namespace ticktape {

class ImpactModel {
 public:
  virtual ~ImpactModel() = default;
  // A market order of `side` took the displayed lots at `touch` (ticks;
  // `shown`: the lots the quote displayed there) and still has `rest` > 0
  // lots: the price in ticks at which the rest fills at once, or none (it
  // waits for later ticks).
  virtual std::optional<int64_t> remainder_price(int side, int64_t touch, int64_t rest,
                                                 int64_t shown) const = 0;
};

// 0 NONE: the remainder waits.
class NoImpact final : public ImpactModel {
 public:
  std::optional<int64_t> remainder_price(int, int64_t, int64_t, int64_t) const override {
    return std::nullopt;
  }
};

// 1 IMPACT: the remainder fills at touch +- ceil(touch * impact_bps * 1e-4 *
// rest / shown) ticks (shown at least 1), worse for the order, within
// [1, kMaxPrice - 1].
class LinearImpact final : public ImpactModel {
 public:
  explicit LinearImpact(double impact_bps) : impact_bps_(impact_bps) {}
  std::optional<int64_t> remainder_price(int side, int64_t touch, int64_t rest,
                                         int64_t shown) const override {
    const int64_t extra = extra_ticks(touch, rest, shown);
    int64_t px = side > 0 ? std::min(touch + extra, kMaxPrice - 1) : touch - extra;
    if (px < 1) px = 1;
    return px;
  }

 private:
  int64_t extra_ticks(int64_t touch, int64_t rest, int64_t shown) const {
    const double mult = static_cast<double>(rest) / static_cast<double>(shown > 1 ? shown : 1);
    const double x = static_cast<double>(touch) * impact_bps_ * 1e-4 * mult;
    const double c = std::ceil(x);
    return c >= 4.0e18 ? static_cast<int64_t>(4.0e18) : static_cast<int64_t>(c);
  }
  double impact_bps_;
};

// EngineConfig::slippage_model: 0 NONE, 1 IMPACT.
inline std::shared_ptr<const ImpactModel> make_impact_model(int8_t kind, double impact_bps) {
  switch (kind) {
    case 0:
      return std::make_shared<NoImpact>();
    case 1:
      return std::make_shared<LinearImpact>(impact_bps);
  }
  throw std::invalid_argument("slippage_model must be 0 (none) or 1 (impact), got " + std::to_string(kind));
}

}  // namespace ticktape
