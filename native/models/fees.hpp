// Fee model (see docs/native.md, "Fees").
#pragma once

namespace ticktape {

// Fee model: bps of the notional (maker or taker) plus a fee per unit.
// Negative values are rebates.
struct Fees {
  double maker_bps = 0.0, taker_bps = 0.0, per_unit = 0.0;
  double fee(bool maker, double price, double qty) const {
    double f = (maker ? maker_bps : taker_bps) * 1e-4 * price * qty;
    if (per_unit != 0.0) f += per_unit * qty;
    return f;
  }
};

}  // namespace ticktape
