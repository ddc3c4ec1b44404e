// Fee model (hftbacktest's FeeModel): the fee of one fill. Chosen once when
// the engine is built (make_fee_model); see docs/native.md, "Fees".
#pragma once

#include <memory>

namespace ticktape {

class FeeModel {
 public:
  virtual ~FeeModel() = default;
  // The fee of a fill of `qty` units at `price` (maker: a resting order's
  // passive fill); negative is a rebate.
  virtual double fee(bool maker, double price, double qty) const = 0;
};

// bps of the notional (maker or taker) plus a fee per unit (hftbacktest's
// TradingValueFeeModel and TradingQtyFeeModel added up).
class BpsFees final : public FeeModel {
 public:
  BpsFees(double maker_bps, double taker_bps, double per_unit)
      : maker_bps_(maker_bps), taker_bps_(taker_bps), per_unit_(per_unit) {}
  double fee(bool maker, double price, double qty) const override {
    double f = (maker ? maker_bps_ : taker_bps_) * 1e-4 * price * qty;
    if (per_unit_ != 0.0) f += per_unit_ * qty;
    return f;
  }

 private:
  double maker_bps_, taker_bps_, per_unit_;
};

inline std::shared_ptr<const FeeModel> make_fee_model(double maker_bps, double taker_bps, double per_unit) {
  return std::make_shared<BpsFees>(maker_bps, taker_bps, per_unit);
}

}  // namespace ticktape
