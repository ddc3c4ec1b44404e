// Queue position models of resting limit orders (hftbacktest's QueueModel:
// RiskAdverseQueueModel, ProbQueueModel with PowerProbQueueFunc), on lots.
// Chosen once when the engine is built (make_queue_model); see
// docs/native.md, "Queue models".
//
// The engine tells the model what the book shows at the order's price (the
// level's displayed lots, NaN when the level is not visible: on L1 data,
// behind the touch) when the order starts resting and once per tick after
// the tick's trade; trades at the price advance the queue the same way in
// every model (QueueModel::trade).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "../units.hpp"

namespace ticktape {

// A resting order's place in its level's queue (part of the engine state).
struct QueuePos {
  double front = 0.0;       // lots ahead of the order (inf: unknown)
  double cum_trade = 0.0;   // lots traded at the price since the last depth update
  double level_prev = 0.0;  // the level's lots at the last depth update (NaN: not seen)
};

class QueueModel {
 public:
  virtual ~QueueModel() = default;

  // Does the model look at the book at all? When not, the engine does not
  // look the level up for it (rest() and depth() then get NaN).
  bool reads_level() const { return reads_level_; }

  // The order starts resting; `level`: the displayed lots at its price (NaN:
  // not visible).
  virtual void rest(QueuePos& q, double level) const = 0;

  // The depth update of a tick, after its trade: `level` as in rest().
  virtual void depth(QueuePos& q, double level) const = 0;

  // A trade of `lots` at the order's price serves what is ahead first.
  // Returns the lots of the order it reaches: floor(-ahead) once the ahead
  // quantity, rounded half away from zero, is below 0 (at most 2**53), else
  // 0. The engine fills at most that (and what is left of the trade) and
  // reports it with filled().
  int64_t trade(QueuePos& q, double lots) const {
    q.front -= lots;
    q.cum_trade += lots;
    if (!(detail::round_half_away(q.front) < 0.0)) return 0;
    const double x = std::floor(-q.front);
    return x >= kMaxLots ? static_cast<int64_t>(kMaxLots) : static_cast<int64_t>(x);
  }
  static void filled(QueuePos& q, int64_t lots) { q.front += static_cast<double>(lots); }

 protected:
  explicit QueueModel(bool reads_level) : reads_level_(reads_level) {}
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  static constexpr double kInf = std::numeric_limits<double>::infinity();

 private:
  bool reads_level_;
};

// 0 NONE (optimistic): nothing ahead on arrival and the book is never read;
// every trade at the price reaches the order.
class NoQueue final : public QueueModel {
 public:
  NoQueue() : QueueModel(false) {}
  void rest(QueuePos& q, double) const override { q = QueuePos{0.0, 0.0, kNaN}; }
  void depth(QueuePos&, double) const override {}
};

// 1 RISK_AVERSE: ahead starts at the displayed lots at the price (unknown,
// inf, when not visible); it advances only by trades at the price, and a
// level that shrinks below it caps it (ahead = min(ahead, level)): growth
// of the level is behind the order.
class RiskAverseQueue : public QueueModel {
 public:
  RiskAverseQueue() : QueueModel(true) {}
  void rest(QueuePos& q, double level) const override {
    q = QueuePos{std::isnan(level) ? kInf : level, 0.0, level};
  }
  void depth(QueuePos& q, double level) const override {
    if (std::isnan(level)) {
      forget(q);
      return;
    }
    q.front = std::min(q.front, level);
    seen(q, level);
  }

 protected:
  // The level is not visible now: what it was is no longer a reference.
  static void forget(QueuePos& q) {
    q.level_prev = kNaN;
    q.cum_trade = 0.0;
  }
  static void seen(QueuePos& q, double level) {
    q.cum_trade = 0.0;
    q.level_prev = level;
  }
};

// 2 PROBABILISTIC: as RISK_AVERSE for arrival and trades; a decrease of the
// level that this tick's trades do not explain (chg = prev - level - traded)
// is split between the front and the back of the queue with p = f(back) /
// (f(back) + f(front)), f(x) = x ** power, back = prev - front:
// ahead = min(front - (1 - p) * chg + min(back - p * chg, 0), level).
class ProbQueue final : public RiskAverseQueue {
 public:
  explicit ProbQueue(double power) : power_(power) {}
  void depth(QueuePos& q, double level) const override {
    if (std::isnan(level)) {
      forget(q);
      return;
    }
    if (std::isnan(q.level_prev)) {
      q.front = std::min(q.front, level);
    } else {
      const double chg = q.level_prev - level - q.cum_trade;
      if (chg < 0.0) {
        q.front = std::min(q.front, level);
      } else {
        const double front = q.front;
        const double back = q.level_prev - front;
        const double p = prob_back(front, back);
        const double est = front - (1.0 - p) * chg + std::min(back - p * chg, 0.0);
        q.front = std::min(est, level);
      }
    }
    seen(q, level);
  }

  // Probability that a decrease of the level came from behind the order:
  // f(back) / (f(back) + f(front)) (both clamped at 0; 1 when both are 0,
  // where hftbacktest would give NaN).
  double prob_back(double front, double back) const {
    const double fb = std::pow(back > 0.0 ? back : 0.0, power_);
    const double ff = std::pow(front > 0.0 ? front : 0.0, power_);
    const double den = fb + ff;
    if (!(den > 0.0) || std::isinf(den)) return std::isinf(fb) ? 1.0 : (den > 0.0 ? 0.0 : 1.0);
    return fb / den;
  }

 private:
  double power_;
};

// EngineConfig::queue_model: 0 NONE, 1 RISK_AVERSE, 2 PROBABILISTIC.
inline std::shared_ptr<const QueueModel> make_queue_model(int8_t kind, double power) {
  switch (kind) {
    case 0:
      return std::make_shared<NoQueue>();
    case 1:
      return std::make_shared<RiskAverseQueue>();
    case 2:
      return std::make_shared<ProbQueue>(power);
  }
  throw std::invalid_argument("queue_model must be 0 (none), 1 (risk-averse) or 2 (probabilistic), got " +
                              std::to_string(kind));
}

}  // namespace ticktape
