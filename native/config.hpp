// The engine's configuration: every number a run's engine is built from
// (ticktape.model.spec's engine config, Engine(...) in Python), validated once.
// The models are chosen from it when the engine is constructed; it is the
// first part of the serialized state (state.hpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "units.hpp"

namespace ticktape {

struct EngineConfig {
  double tick_size = 0.01;
  double lot_size = 1.0;
  int64_t latency_ns = 0;  // entry latency
  double fee_bps = 0.0;    // taker fee
  double initial_cash = 1'000'000.0;
  int64_t equity_interval_ns = 1'000'000'000;
  int64_t response_latency_ns = 0;
  int64_t feed_latency_ns = 0;
  double maker_fee_bps = 0.0;
  double fee_per_unit = 0.0;
  int8_t queue_model = 0;
  double queue_power = 2.0;
  int8_t slippage_model = 0;
  double impact_bps = 0.0;
  // 0: a target is a position in units; 1: a signed fraction of the current
  // equity, turned into whole lots at the tick's mark when the decision is made
  int8_t target_mode = 0;
  // L2 depth: what the strategy took at a level shows again this long (event
  // time) after the level's last take, unless a diff set the level first;
  // -1: never (only a diff restores it)
  int64_t depth_refill_ns = -1;

  void validate() const {
    auto positive = [](const char* name, double v) {
      if (!(std::isfinite(v) && v > 0.0)) {
        throw std::invalid_argument(std::string(name) + " must be finite and > 0, got " +
                                    detail::fmt(v));
      }
    };
    auto finite = [](const char* name, double v) {
      if (!std::isfinite(v)) {
        throw std::invalid_argument(std::string(name) + " must be finite, got " + detail::fmt(v));
      }
    };
    auto nonneg = [](const char* name, int64_t v) {
      if (v < 0) throw std::invalid_argument(std::string(name) + " must be >= 0, got " + std::to_string(v));
    };
    positive("tick_size", tick_size);
    positive("lot_size", lot_size);
    nonneg("latency_ns", latency_ns);
    nonneg("response_latency_ns", response_latency_ns);
    nonneg("feed_latency_ns", feed_latency_ns);
    finite("fee_bps", fee_bps);
    finite("maker_fee_bps", maker_fee_bps);
    finite("fee_per_unit", fee_per_unit);
    finite("initial_cash", initial_cash);
    if (equity_interval_ns <= 0) {
      throw std::invalid_argument("equity_interval_ns must be > 0, got " +
                                  std::to_string(equity_interval_ns));
    }
    if (queue_model < 0 || queue_model > 2) {
      throw std::invalid_argument("queue_model must be 0 (none), 1 (risk-averse) or 2 (probabilistic), got " +
                                  std::to_string(queue_model));
    }
    positive("queue_power", queue_power);
    if (slippage_model < 0 || slippage_model > 1) {
      throw std::invalid_argument("slippage_model must be 0 (none) or 1 (impact), got " +
                                  std::to_string(slippage_model));
    }
    if (target_mode != 0 && target_mode != 1) {
      throw std::invalid_argument("target_mode must be 0 (units) or 1 (fraction of equity), got " +
                                  std::to_string(target_mode));
    }
    if (!(std::isfinite(impact_bps) && impact_bps >= 0.0)) {
      throw std::invalid_argument("impact_bps must be finite and >= 0, got " + detail::fmt(impact_bps));
    }
    if (depth_refill_ns < -1) {
      throw std::invalid_argument("depth_refill_ns must be >= 0 (or -1: never), got " +
                                  std::to_string(depth_refill_ns));
    }
  }
};

}  // namespace ticktape
