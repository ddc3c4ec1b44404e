// Latency model (hftbacktest's LatencyModel): when what the strategy sends
// reaches the exchange, and when what happens there reaches the strategy.
// Chosen once when the engine is built (make_latency_model); see
// docs/native.md, "Latency".
#pragma once

#include <cstdint>
#include <memory>

#include "../units.hpp"

namespace ticktape {

class LatencyModel {
 public:
  virtual ~LatencyModel() = default;
  // The strategy's clock when market data of event time `ts` reaches it.
  virtual int64_t local(int64_t ts) const = 0;
  // When an order (or a cancel / modify) decided on the data of `ts`
  // reaches the exchange; `own_entry` >= 0 is the instruction's own entry
  // latency, -1 the model's.
  virtual int64_t arrival(int64_t ts, int64_t own_entry) const = 0;
  // When the strategy hears of an exchange event (a fill) at `ts`.
  virtual int64_t known(int64_t ts) const = 0;
  // Can the strategy decide on data from after a fill before it hears of
  // the fill? Then the engine keeps the fills it does not know yet.
  virtual bool reports_late() const = 0;
};

// Constant latencies: market data reaches the strategy feed_ns late, so a
// decision on tick i is made at ts_i + feed and its order reaches the
// exchange at ts_i + feed + entry; exchange events reach the strategy
// response_ns after they happen. (Sums saturate at INT64_MAX.)
class ConstantLatency final : public LatencyModel {
 public:
  ConstantLatency(int64_t entry_ns, int64_t feed_ns, int64_t response_ns)
      : entry_ns_(entry_ns), feed_ns_(feed_ns), response_ns_(response_ns) {}
  int64_t local(int64_t ts) const override { return detail::sat_add(ts, feed_ns_); }
  int64_t arrival(int64_t ts, int64_t own_entry) const override {
    return detail::sat_add(detail::sat_add(ts, feed_ns_), own_entry >= 0 ? own_entry : entry_ns_);
  }
  int64_t known(int64_t ts) const override { return detail::sat_add(ts, response_ns_); }
  bool reports_late() const override { return response_ns_ > feed_ns_; }

 private:
  int64_t entry_ns_, feed_ns_, response_ns_;
};

inline std::shared_ptr<const LatencyModel> make_latency_model(int64_t entry_ns, int64_t feed_ns,
                                                              int64_t response_ns) {
  return std::make_shared<ConstantLatency>(entry_ns, feed_ns, response_ns);
}

}  // namespace ticktape
