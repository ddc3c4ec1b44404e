// ticktape batch execution engine: walks L1 ticks in event order, simulates
// the strategy's orders against displayed liquidity, and keeps the portfolio.
//
// Pure C++17 (no Python): bindings.cpp exposes it as ticktape._native.Engine.
// The pure-Python twin that this must match exactly is ticktape.reference
// (ReferenceEngine); docs/native.md states every convention below in prose.
//
// Per tick i, in event order:
//   1. market data: the displayed L1 liquidity becomes (bid, bid_size) and
//      (ask, ask_size); an invalid quote (NaN / non-positive / crossed) shows
//      no liquidity and leaves the mark unchanged; (last, last_size) is the
//      tick's trade, if any;
//   2. release orders, then cancel/modify requests, whose arrival time is
//      <= ts[i] and that were created at an earlier tick;
//   3. match live orders, oldest first: stops trigger, aggressive orders
//      take the displayed top of book (what one order takes is gone for the
//      next order on the same tick), resting limit orders fill by the cross,
//      trade-through and queue rules;
//   4. the strategy's decisions of tick i: the target position (at most one
//      market order), then the explicit instructions with i == this tick;
//   5. emit an equity sample when ts[i] crosses the next boundary of the
//      event-time grid.
//
// Models (models/*.hpp), each an interface with small implementations,
// chosen once from the EngineConfig when the engine is built: LatencyModel
// (ConstantLatency: entry, feed, response; per-order entry latency from the
// instructions), FeeModel (BpsFees: maker / taker bps + per unit),
// QueueModel of resting orders (NoQueue, RiskAverseQueue, ProbQueue),
// ImpactModel (NoImpact, LinearImpact: slippage of market orders beyond the
// displayed L1 size). The books it fills on: L1Book (l1book.hpp) until it is
// fed depth, then DepthBook (depthbook.hpp). Its records: records.hpp; batch
// checks: validate.hpp; its state as bytes: state.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config.hpp"
#include "depthbook.hpp"
#include "l1book.hpp"
#include "models/fees.hpp"
#include "models/impact.hpp"
#include "models/latency.hpp"
#include "models/queue.hpp"
#include "orders.hpp"
#include "records.hpp"
#include "units.hpp"
#include "validate.hpp"

namespace ticktape {

// One batch of ticks checked once for the many engines of a sweep
// (Engine::process_checked): its columns (no targets, orders or depth), its
// prices in ticks and, per tick, contiguous, its time and the mid of its
// quote (NaN: not a valid quote), the mark step() would set.
struct CheckedBatch {
  Inputs in;
  PxScratch px;
  std::vector<int64_t> ts;
  std::vector<double> mid;
  double tick_size = 0.0, lot_size = 0.0;

  CheckedBatch(const Inputs& columns, double tick, double lot) : in(columns), tick_size(tick), lot_size(lot) {
    in.n_instr = 0;
    in.n_depth = 0;
    BatchCheck{tick, lot}.batch(in, false, 0, px);
    const Grid prices(tick);
    ts.resize(in.n);
    mid.resize(in.n);
    for (size_t i = 0; i < in.n; ++i) {
      ts[i] = in.ts[i];
      const int64_t bt = px.v[i].bid, at = px.v[i].ask;
      mid[i] = (bt != kNoPx && at != kNoPx && bt <= at) ? prices.to_float(bt + at) * 0.5
                                                        : std::numeric_limits<double>::quiet_NaN();
    }
  }
};

class Engine {
 public:

  explicit Engine(const EngineConfig& cfg) : cfg_(cfg) {
    cfg_.validate();
    init_models();
    cash_ = cfg_.initial_cash;
  }

  const EngineConfig& config() const { return cfg_; }
  double position() const { return lots_.to_float(position_); }
  double cash() const { return cash_; }
  double fees() const { return fees_; }
  double mark() const { return mark_; }
  double equity() const { return position_ == 0 ? cash_ : cash_ + position() * mark_; }
  uint64_t ticks_processed() const { return ticks_; }
  uint64_t quotes_ignored() const { return quotes_ignored_; }
  uint64_t depth_hidden_ticks() const { return depth_hidden_ticks_; }
  int64_t max_order_id() const { return max_id_; }
  const std::vector<SimOrder>& open_orders() const { return open_; }
  bool has_depth() const { return l2_; }
  const DepthBook& depth() const { return depth_; }
  size_t pending_requests() const { return requests_.size(); }

  // Validate the whole batch (throws InputError, state untouched), then run
  // it. Instructions can only be checked against the order ids while the
  // batch runs, so then it runs on a copy that replaces the state on success
  // (an error leaves the state untouched and `out` partly written).
  void process(const Inputs& in, Outputs& out) {
    BatchCheck{cfg_.tick_size, cfg_.lot_size}.batch(in, has_ts_, last_ts_, px_);
    const TickPx* px = px_.v.data();
    const DepthPx* dpx = px_.d.data();
    if (in.n_instr == 0) {
      dcursor_ = 0;
      for (size_t i = 0; i < in.n; ++i) step(in, px, dpx, i, out);
      return;
    }
    // On an error `out` holds a partial result: callers drop it.
    Engine work(*this);
    work.cursor_ = 0;
    work.dcursor_ = 0;
    out.orders.reserve(out.orders.size() + 2 * in.n_instr);
    for (size_t i = 0; i < in.n; ++i) work.step(in, px, dpx, i, out);
    *this = std::move(work);
  }

  // The target path over a batch checked once for many engines (a sweep's
  // parameter sets: CheckedBatch), with this engine's `target`. Checks the
  // batch against this engine (same grid, time not going back) and the
  // targets (InputError, state untouched), then gives exactly what
  // process() gives: while no order, request or unknown fill is pending (and
  // no depth was fed), the ticks whose target is NaN or asks for no change
  // only move the mark and the equity grid, so a tight loop steps them and
  // step() takes the others.
  void process_checked(const CheckedBatch& b, const Column<double>& target, Outputs& out) {
    if (b.tick_size != cfg_.tick_size || b.lot_size != cfg_.lot_size) {
      throw InputError("the batch was checked for tick_size " + detail::fmt(b.tick_size) + ", lot_size " +
                       detail::fmt(b.lot_size) + "; the engine has " + detail::fmt(cfg_.tick_size) + ", " +
                       detail::fmt(cfg_.lot_size));
    }
    const size_t n = b.in.n;
    if (n > 0 && has_ts_ && b.ts[0] < last_ts_) {
      fail("ts", 0, std::to_string(b.ts[0]), "goes backwards (previous " + std::to_string(last_ts_) + ")");
    }
    const BatchCheck check{cfg_.tick_size, cfg_.lot_size};
    if (target.stride == 0) {
      if (n > 0) check.check_target(0, target[0]);
    } else {
      // check_target's test on each target, its division only where it could fail
      const double safe = 0.5 * kMaxLots * cfg_.lot_size;
      for (size_t i = 0; i < n; ++i) {
        const double t = target[i];
        if (!(std::fabs(t) < safe) && !std::isnan(t)) check.check_target(i, t);
      }
    }
    Inputs in = b.in;
    in.target = target;
    const TickPx* px = b.px.v.data();
    const int64_t* ts = b.ts.data();
    const double* mid = b.mid.data();
    dcursor_ = 0;
    cursor_ = 0;
    const double half_lot = cfg_.lot_size / 2.0;
    size_t i = 0;
    while (i < n) {
      if (!(open_.empty() && requests_.empty() && unknown_.empty() && !l2_)) {
        step(in, px, nullptr, i, out);
        ++i;
        continue;
      }
      // idle: nothing pending, so a tick acts only through a target that changes the position;
      // the position stays, and the mark is the mid of the last valid quote (set when sampled)
      const size_t first = i;
      size_t valid = kNoTick;  // the last quiet tick with a valid quote
      bool sampled = false;    // at the last quiet tick
      const double pos = position();
      const bool fraction = cfg_.target_mode == 1;
      uint64_t ignored = 0;
      for (; i < n; ++i) {
        const double m = mid[i];
        const double t = target[i];
        if (!std::isnan(t)) {
          bool acts;
          if (fraction) {  // as decide(): whole lots of a fraction of equity at the mark
            const double mark = !std::isnan(m) ? m : valid != kNoTick ? mid[valid] : mark_;
            acts = false;
            if (mark > 0.0) {
              const double eq = position_ == 0 ? cash_ : cash_ + pos * mark;
              acts = std::fabs(std::trunc(t * eq / mark / cfg_.lot_size) * cfg_.lot_size - pos) >= half_lot;
            }
          } else {
            acts = std::fabs(t - pos) >= half_lot;
          }
          if (acts) break;
        }
        if (std::isnan(m)) {
          ++ignored;
        } else {
          valid = i;
        }
        sampled = ts[i] >= next_equity_ts_;
        if (sampled) {
          if (valid != kNoTick) mark_ = mid[valid];
          sample(ts[i], out);
        }
      }
      quotes_ignored_ += ignored;
      if (valid != kNoTick) mark_ = mid[valid];
      if (i > first) {  // the quiet ticks first .. i-1, as step() would have left the engine
        ticks_ += i - first;
        has_ts_ = true;
        last_ts_ = ts[i - 1];
        equity_at_last_ = sampled;
        settle_quiet(in, px, valid, i - 1);
      }
      if (i < n) {
        step(in, px, nullptr, i, out);
        ++i;
      }
    }
  }

  // Emit the final equity sample at the last seen tick (once).
  void finish(Outputs& out) {
    if (has_ts_ && !equity_at_last_) sample(last_ts_, out);
  }

 private:
  friend class EngineState;  // state.hpp

  void init_models() {
    prices_ = Grid(cfg_.tick_size);
    lots_ = Grid(cfg_.lot_size);
    latency_ = make_latency_model(cfg_.latency_ns, cfg_.feed_latency_ns, cfg_.response_latency_ns);
    fees_model_ = make_fee_model(cfg_.maker_fee_bps, cfg_.fee_bps, cfg_.fee_per_unit);
    queue_ = make_queue_model(cfg_.queue_model, cfg_.queue_power);
    impact_ = make_impact_model(cfg_.slippage_model, cfg_.impact_bps);
    track_unknown_ = latency_->reports_late();
  }

  void step(const Inputs& in, const TickPx* px, const DepthPx* dpx, size_t i, Outputs& out) {
    const int64_t ts = in.ts[i];
    const uint64_t tick = ticks_;

    // 1. market data (prices in ticks from validate): the L1 quote, then
    // this tick's depth diffs in array order
    const int64_t bt = px[i].bid, at = px[i].ask;
    const bool valid = bt != kNoPx && at != kNoPx && bt <= at;
    if (valid) {
      depth_.set_bound(bt, at);  // the latest valid quote bounds the depth book's top
    } else {
      ++quotes_ignored_;
    }
    // taken liquidity whose refill time has come shows again (before this
    // tick's diffs, which reset their levels anyway)
    if (ts >= next_refill_ts_ && cfg_.depth_refill_ns >= 0) refill(ts);
    if (dcursor_ < in.n_depth && static_cast<size_t>(in.depth[dcursor_].i) == i) {
      l2_ = true;
      do {
        depth_.set(in.depth[dcursor_].side, dpx[dcursor_].price, dpx[dcursor_].lots);
        ++dcursor_;
      } while (dcursor_ < in.n_depth && static_cast<size_t>(in.depth[dcursor_].i) == i);
    }
    if (l2_) {
      if (depth_.hides(kBuy) || depth_.hides(kSell)) ++depth_hidden_ticks_;
      // the mark: the mid of the latest valid L1 quote (the bound: the freshest
      // top, always within the shown depth's spread); before any valid quote,
      // the mid of the best levels (unchanged when one-sided or crossed)
      int64_t bb, ba;
      if (depth_.bounded) {
        mark_ = prices_.to_float(depth_.bound_bid + depth_.bound_ask) * 0.5;
      } else if (depth_.best(kBuy, bb) && depth_.best(kSell, ba) && bb <= ba) {
        mark_ = prices_.to_float(bb + ba) * 0.5;
      }
    } else if (valid) {
      book_.set(bt, to_lots_displayed(in.bid_size[i], cfg_.lot_size), at, to_lots_displayed(in.ask_size[i], cfg_.lot_size));
      mark_ = prices_.to_float(bt + at) * 0.5;
    } else {
      book_.clear();
    }
    trade_ = px[i].last != kNoPx;
    trade_px_ = trade_ ? px[i].last : 0;
    trade_left_ = trade_ ? to_lots_displayed(in.last_size[i], cfg_.lot_size) : 0;
    trade_lots_ = trade_left_;

    if (!open_.empty() || !requests_.empty()) {
      // 2. release arrived orders, then requests (never on the creating tick);
      // next_release_ts_ / next_request_ts_ are lower bounds of the pending
      // arrivals, so the scans are skipped while nothing can arrive.
      if (ts >= next_release_ts_) {
        int64_t next = kNever;
        for (SimOrder& o : open_) {
          if (o.state != static_cast<int8_t>(OrderState::Pending)) continue;
          if (o.created_tick < tick && o.arrival_ts <= ts) {
            release(o, ts, out);
          } else if (o.arrival_ts < next) {
            next = o.arrival_ts;
          }
        }
        next_release_ts_ = next;
      }
      if (!requests_.empty() && ts >= next_request_ts_) apply_requests(ts, tick, out);
      // 3. match live orders, oldest first
      for (SimOrder& o : open_) {
        if (o.open() > 0) match(o, ts, out);
      }
      if (done_) compact();
    }

    // 4. the strategy's decisions
    if (!unknown_.empty()) {
      const int64_t now = latency_->local(ts);
      while (!unknown_.empty() && unknown_.front().known_at <= now) unknown_.pop_front();
    }
    const double target = in.target[i];
    if (!std::isnan(target)) decide(target, ts, tick, out);
    while (cursor_ < in.n_instr && static_cast<size_t>(in.instr[cursor_].i) == i) {
      instruct(in.instr[cursor_], cursor_, ts, tick, out);
      ++cursor_;
    }

    ticks_ = tick + 1;
    has_ts_ = true;
    last_ts_ = ts;
    // 5. equity on the event-time grid
    equity_at_last_ = false;
    if (ts >= next_equity_ts_) sample(ts, out);
  }

  // After short-path ticks up to `last` (process_checked): the book, the
  // depth bound and the trade of the last one, as step() would have left
  // them (`valid`: the last of them with a valid quote, kNoTick if none).
  static constexpr size_t kNoTick = static_cast<size_t>(-1);
  void settle_quiet(const Inputs& in, const TickPx* px, size_t valid, size_t last) {
    if (valid != kNoTick) depth_.set_bound(px[valid].bid, px[valid].ask);
    if (valid == last) {
      book_.set(px[last].bid, to_lots_displayed(in.bid_size[last], cfg_.lot_size), px[last].ask,
                to_lots_displayed(in.ask_size[last], cfg_.lot_size));
    } else {
      book_.clear();
    }
    trade_ = px[last].last != kNoPx;
    trade_px_ = trade_ ? px[last].last : 0;
    trade_left_ = trade_ ? to_lots_displayed(in.last_size[last], cfg_.lot_size) : 0;
    trade_lots_ = trade_left_;
  }

  // Drop completed orders (open() == 0 marks them).
  void compact() {
    done_ = false;
    size_t keep = 0;
    for (size_t k = 0; k < open_.size(); ++k) {
      if (open_[k].open() > 0) {
        if (keep != k) open_[keep] = open_[k];
        ++keep;
      }
    }
    open_.resize(keep);
  }

  // Ends an order: the unfilled rest is gone (cancelled / rejected).
  void kill(SimOrder& o, int64_t ts, OrderEvent ev, Outputs& out) {
    emit_order(out, ts, o, ev, kNaN, lots_.to_float(o.open()));
    o.filled = o.qty;  // open() == 0: removed by compact()
    done_ = true;
  }

  double limit_px(const SimOrder& o) const {
    return (o.type == kLimit || o.type == kStopLimit) ? prices_.to_float(o.price) : kNaN;
  }

  // The best displayed price an aggressive order of `side` trades against
  // (a buy: the ask), if there is one.
  bool opp_best(int side, int64_t& px) const {
    if (l2_) return depth_.best(-side, px);
    if (!book_.valid) return false;
    px = book_.touch(side);
    return true;
  }
  // Does a limit at `price` of `side` cross the opposite side?
  bool crosses(int side, int64_t price) const {
    int64_t px;
    return opp_best(side, px) && (side > 0 ? px <= price : px >= price);
  }

  void release(SimOrder& o, int64_t ts, Outputs& out) {
    if (o.tif == kPostOnly) {
      if (crosses(o.side, o.price)) {
        kill(o, ts, OrderEvent::Rejected, out);
        return;
      }
      emit_order(out, ts, o, OrderEvent::Accepted, limit_px(o), lots_.to_float(o.qty));
      rest(o);
      return;
    }
    emit_order(out, ts, o, OrderEvent::Accepted, limit_px(o), lots_.to_float(o.qty));
    o.state = static_cast<int8_t>((o.type == kStop || o.type == kStopLimit) ? OrderState::Untriggered
                                                                           : OrderState::Working);
  }

  // What the queue model sees of the level at a resting order's price now
  // (after this tick's market data): on depth every level is visible, the
  // displayed lots at its price (0: none); on L1 the displayed size when its
  // price is the same-side touch, 0 when the touch is behind it (the level
  // emptied, or the order improves the touch), NaN (not visible) when it is
  // behind the touch. False (and `level` untouched) when there is no valid
  // L1 quote this tick.
  bool level_at(const SimOrder& o, double& level) const {
    if (l2_) {
      level = static_cast<double>(depth_.displayed(o.side, o.price));
      return true;
    }
    if (!book_.valid) return false;
    const int64_t touch = o.side > 0 ? book_.bid_px : book_.ask_px;
    if (touch == o.price) {
      level = static_cast<double>(book_.shown(-o.side));
    } else if (o.side > 0 ? touch < o.price : touch > o.price) {
      level = 0.0;
    } else {
      level = kNaN;
    }
    return true;
  }

  // An order starts resting now (after this tick's market data): the queue
  // model places it (without a quote its level is not visible).
  void rest(SimOrder& o) {
    o.state = static_cast<int8_t>(OrderState::Resting);
    o.rested_tick = ticks_;
    double level = kNaN;
    if (queue_->reads_level()) level_at(o, level);
    queue_->rest(o.queue, level);
  }

  void apply_requests(int64_t ts, uint64_t tick, Outputs& out) {
    size_t keep = 0;
    int64_t next = kNever;
    for (size_t k = 0; k < requests_.size(); ++k) {
      const Request r = requests_[k];
      if (!(r.created_tick < tick && r.arrival_ts <= ts)) {
        requests_[keep++] = r;
        next = std::min(next, r.arrival_ts);
        continue;
      }
      SimOrder* o = find_live(r.order_id);
      if (o == nullptr || o->open() <= 0) {  // completed before the request arrived
        out.orders.push_back(OrderRecord{ts, r.order_id, r.side, r.type,
                                         static_cast<int8_t>(OrderEvent::Rejected), kNaN, kNaN});
        continue;
      }
      if (r.action == kCancel) {
        kill(*o, ts, OrderEvent::Cancelled, out);
        continue;
      }
      modify(*o, r, ts, out);
    }
    requests_.resize(keep);
    next_request_ts_ = next;
  }

  // A modify at the exchange: qty is the new total quantity (filled
  // included); a new limit price or a larger quantity loses the queue
  // position (the order is evaluated again, as if it had just arrived).
  void modify(SimOrder& o, const Request& r, int64_t ts, Outputs& out) {
    if (r.has_qty && r.qty <= o.filled) {
      kill(o, ts, OrderEvent::Cancelled, out);
      return;
    }
    const bool reprice = r.has_price && r.price != o.price;
    const bool grow = r.has_qty && r.qty > o.qty;
    if (r.has_price) o.price = r.price;
    if (r.has_stop) o.stop = r.stop;
    if (r.has_qty) o.qty = r.qty;
    emit_order(out, ts, o, OrderEvent::Accepted, limit_px(o), lots_.to_float(o.qty));
    if (o.state == static_cast<int8_t>(OrderState::Resting) && (reprice || grow)) {
      if (o.tif == kPostOnly) {
        if (crosses(o.side, o.price)) {
          kill(o, ts, OrderEvent::Rejected, out);
          return;
        }
        rest(o);
      } else {
        o.state = static_cast<int8_t>(OrderState::Working);
      }
    }
  }

  SimOrder* find_live(int64_t id) {
    auto it = std::lower_bound(open_.begin(), open_.end(), id,
                               [](const SimOrder& o, int64_t v) { return o.id < v; });
    return (it != open_.end() && it->id == id) ? &*it : nullptr;
  }

  bool issued(int64_t id) const {
    auto it = std::upper_bound(id_ranges_.begin(), id_ranges_.end(), id,
                               [](int64_t v, const std::pair<int64_t, int64_t>& r) { return v < r.first; });
    if (it == id_ranges_.begin()) return false;
    --it;
    return id <= it->second;
  }

  void use_id(int64_t id) {
    if (!id_ranges_.empty() && id_ranges_.back().second == id - 1) {
      id_ranges_.back().second = id;
    } else {
      id_ranges_.emplace_back(id, id);
    }
    max_id_ = id;
  }

  void fill(SimOrder& o, int64_t ts, int64_t px, int64_t q, bool maker, Outputs& out) {
    o.filled += q;
    if (o.filled == o.qty) done_ = true;
    position_ += o.side * q;
    const double price = prices_.to_float(px);
    const double qty = lots_.to_float(q);
    const double fee = fees_model_->fee(maker, price, qty);
    cash_ -= static_cast<double>(o.side) * price * qty;
    cash_ -= fee;
    fees_ += fee;
    out.fills.push_back(FillRecord{ts, o.id, o.side, price, qty, fee});
    out.fill_liquidity.push_back(maker ? kMaker : kTaker);
    const int64_t known = latency_->known(ts);
    out.fill_known_ts.push_back(known);
    if (track_unknown_) {
      unknown_.push_back(UnknownFill{known, o.side * q, o.from_target});
    }
    emit_order(out, ts, o, o.open() == 0 ? OrderEvent::Filled : OrderEvent::PartiallyFilled, price,
               qty);
  }

  // The strategy takes `q` > 0 lots of a depth level at event time `ts`:
  // taken until a diff sets the level, or (depth_refill_ns >= 0) until
  // depth_refill_ns after its last take, when all of it shows again.
  void taken(DepthLevel& lv, int64_t q, int64_t ts) {
    lv.used += q;
    lv.taken_ts = ts;
    if (cfg_.depth_refill_ns >= 0) {
      next_refill_ts_ = std::min(next_refill_ts_, detail::sat_add(ts, cfg_.depth_refill_ns));
    }
  }
  // Show again what was taken at levels whose last take is depth_refill_ns
  // or more before `ts`; next_refill_ts_ becomes the next such time.
  void refill(int64_t ts) {
    int64_t next = kNever;
    for (auto* m : {&depth_.bids, &depth_.asks}) {
      for (auto& e : m->v) {
        DepthLevel& lv = e.second;
        if (lv.used == 0) continue;
        const int64_t due = detail::sat_add(lv.taken_ts, cfg_.depth_refill_ns);
        if (ts >= due) {
          lv.used = 0;
          lv.taken_ts = 0;
        } else if (due < next) {
          next = due;
        }
      }
    }
    next_refill_ts_ = next;
  }

  // Aggressive part on depth: walk the opposite shown levels best first, up
  // to the limit, one fill per level at its price; what is taken is gone
  // from the level until a diff sets it again.
  void take_l2(SimOrder& o, int64_t ts, Outputs& out) {
    const bool limit = o.exec_type == kLimit;
    const auto first = depth_.shown_begin(-o.side), stop = depth_.shown_stop(-o.side);
    auto within = [&](int64_t px) { return !limit || (o.side > 0 ? px <= o.price : px >= o.price); };
    if (o.tif == kFOK) {
      int64_t total = 0;
      for (auto it = first; it != stop && total < o.open(); ++it) {
        if (!within(DepthBook::price(-o.side, it->first))) break;
        total += it->second.avail();
      }
      if (total < o.open()) {
        kill(o, ts, OrderEvent::Cancelled, out);
        return;
      }
    }
    for (auto it = first; it != stop && o.open() > 0; ++it) {
      const int64_t px = DepthBook::price(-o.side, it->first);
      if (!within(px)) break;
      const int64_t q = std::min(o.open(), it->second.avail());
      if (q <= 0) continue;
      taken(it->second, q, ts);
      fill(o, ts, px, q, false, out);
    }
    if (o.open() <= 0) return;
    if (o.tif == kIOC) {
      kill(o, ts, OrderEvent::Cancelled, out);
    } else if (limit && !crosses(o.side, o.price)) {
      rest(o);
    }
    // else: a market order or a limit whose price is still displayed on the
    // other side keeps working (it takes what later diffs show)
  }

  // A resting order that the displayed opposite side reached: it fills at its
  // own price (maker) what is still available at or through that price, best
  // level first (taken from those levels), in one fill; the rest keeps resting.
  void cross_l2(SimOrder& o, int64_t ts, Outputs& out) {
    const auto stop = depth_.shown_stop(-o.side);
    int64_t q = 0;
    for (auto it = depth_.shown_begin(-o.side); it != stop && q < o.open(); ++it) {
      const int64_t px = DepthBook::price(-o.side, it->first);
      if (o.side > 0 ? px > o.price : px < o.price) break;
      const int64_t a = std::min(it->second.avail(), o.open() - q);
      if (a > 0) taken(it->second, a, ts);
      q += a;
    }
    if (q > 0) fill(o, ts, o.price, q, true, out);
  }

  // Aggressive part: take the displayed touch (up to the limit).
  void take(SimOrder& o, int64_t ts, Outputs& out) {
    if (l2_) {
      take_l2(o, ts, out);
      return;
    }
    const bool limit = o.exec_type == kLimit;
    const bool can = book_.valid && (!limit || book_.crosses(o.side, o.price));
    int64_t& avail = book_.avail(o.side);
    if (o.tif == kFOK && !(can && avail >= o.open())) {
      kill(o, ts, OrderEvent::Cancelled, out);
      return;
    }
    if (can) {
      const int64_t q = std::min(o.open(), avail);
      if (q > 0) {
        avail -= q;
        fill(o, ts, book_.touch(o.side), q, false, out);
      }
      if (!limit && o.open() > 0) {
        const auto px = impact_->remainder_price(o.side, book_.touch(o.side), o.open(), book_.shown(o.side));
        if (px) fill(o, ts, *px, o.open(), false, out);
      }
    }
    if (o.open() <= 0) return;
    if (o.tif == kIOC) {
      kill(o, ts, OrderEvent::Cancelled, out);
    } else if (limit && book_.valid && !book_.crosses(o.side, o.price)) {
      rest(o);
    }
    // else: a market order or a still-crossing limit keeps working; with no
    // valid quote it waits for one.
  }

  // Passive part: trade-through, trade at the price (queue), quote cross,
  // then the queue's depth update.
  void passive(SimOrder& o, int64_t ts, Outputs& out) {
    const int8_t s = o.side;
    if (trade_) {
      if (s > 0 ? trade_px_ < o.price : trade_px_ > o.price) {
        fill(o, ts, o.price, o.open(), true, out);
        return;
      }
      if (trade_px_ == o.price && trade_lots_ > 0) {
        // what is ahead is served first; one trade is never counted twice
        int64_t q = queue_->trade(o.queue, static_cast<double>(trade_lots_));
        q = std::min(std::min(q, o.open()), trade_left_);
        if (q > 0) {
          trade_left_ -= q;
          QueueModel::filled(o.queue, q);
          fill(o, ts, o.price, q, true, out);
          if (o.open() <= 0) return;
        }
      }
    }
    if (crosses(s, o.price)) {
      if (l2_) {
        cross_l2(o, ts, out);
      } else {
        fill(o, ts, o.price, o.open(), true, out);
      }
      return;
    }
    double level;
    if (queue_->reads_level() && level_at(o, level)) queue_->depth(o.queue, level);
  }

  void match(SimOrder& o, int64_t ts, Outputs& out) {
    switch (static_cast<OrderState>(o.state)) {
      case OrderState::Pending:
        return;
      case OrderState::Untriggered: {
        int64_t opp = 0;
        const bool by_quote = opp_best(o.side, opp) && (o.side > 0 ? opp >= o.stop : opp <= o.stop);
        const bool by_trade = trade_ && (o.side > 0 ? trade_px_ >= o.stop : trade_px_ <= o.stop);
        if (!(by_quote || by_trade)) return;
        emit_order(out, ts, o, OrderEvent::Triggered, prices_.to_float(o.stop), lots_.to_float(o.open()));
        o.state = static_cast<int8_t>(OrderState::Working);
        take(o, ts, out);
        return;
      }
      case OrderState::Working:
        take(o, ts, out);
        return;
      case OrderState::Resting:
        // An order that started resting on this tick had its queue set from
        // this tick's (post-trade) data: it can fill passively from the next.
        if (o.rested_tick != ticks_) passive(o, ts, out);
        return;
    }
  }

  // Target position -> at most one market order (only target-derived orders
  // are considered and cancelled). The position used is the one the
  // strategy knows: fills reach it response_latency_ns after they happen.
  void decide(double target, int64_t ts, uint64_t tick, Outputs& out) {
    if (cfg_.target_mode == 1) {  // fraction of equity -> whole lots at the mark, toward zero
      if (!(mark_ > 0.0)) return;  // no price yet: no decision
      target = std::trunc(target * equity() / mark_ / cfg_.lot_size) * cfg_.lot_size;
    }
    int64_t unknown = 0, unknown_working = 0;
    for (const UnknownFill& u : unknown_) {
      unknown += u.lots;
      if (u.working) unknown_working += u.lots;
    }
    int64_t working = 0;
    for (const SimOrder& o : open_) {
      if (o.from_target) working += o.side * o.open();
    }
    const int64_t known_pos = position_ - unknown;
    const double change = target - lots_.to_float(known_pos + working + unknown_working);
    if (!(std::fabs(change) >= cfg_.lot_size / 2.0)) return;
    // Cancel whatever target order is working, then issue the new difference.
    // (Fills the strategy does not know of yet are now of cancelled orders.)
    for (SimOrder& o : open_) {
      if (o.from_target) kill(o, ts, OrderEvent::Cancelled, out);
    }
    for (UnknownFill& u : unknown_) u.working = false;
    compact();
    const double diff = target - lots_.to_float(known_pos);
    const int64_t lots = static_cast<int64_t>(detail::round_half_away(diff / cfg_.lot_size));
    if (lots == 0) return;
    SimOrder o;
    o.id = max_id_ + 1;
    use_id(o.id);
    o.ts_created = ts;
    o.arrival_ts = latency_->arrival(ts, -1);
    o.created_tick = tick;
    o.side = lots > 0 ? kBuy : kSell;
    o.qty = lots > 0 ? lots : -lots;
    o.type = o.exec_type = kMarket;
    o.from_target = true;
    emit_order(out, ts, o, OrderEvent::Submitted, kNaN, lots_.to_float(o.qty));
    open_.push_back(o);
    next_release_ts_ = std::min(next_release_ts_, o.arrival_ts);
  }

  const SimOrder* find_live_const(int64_t id) const { return const_cast<Engine*>(this)->find_live(id); }

  void instruct(const OrderInstr& x, size_t k, int64_t ts, uint64_t tick, Outputs& out) {
    if (x.action == kNew) {
      if (x.order_id <= max_id_) {
        fail("orders.order_id", k, std::to_string(x.order_id),
             "must be greater than every order id used before (highest " + std::to_string(max_id_) + ")");
      }
      SimOrder o;
      o.id = x.order_id;
      use_id(o.id);
      o.ts_created = ts;
      o.arrival_ts = latency_->arrival(ts, x.latency_ns);
      o.created_tick = tick;
      o.side = x.side;
      o.type = x.type;
      o.exec_type = (x.type == kLimit || x.type == kStopLimit) ? kLimit : kMarket;
      o.tif = x.tif;
      o.qty = static_cast<int64_t>(detail::round_half_away(x.qty / cfg_.lot_size));
      if (o.exec_type == kLimit) o.price = to_ticks(x.price, cfg_.tick_size);
      if (x.type == kStop || x.type == kStopLimit) o.stop = to_ticks(x.stop_price, cfg_.tick_size);
      emit_order(out, ts, o, OrderEvent::Submitted, limit_px(o), lots_.to_float(o.qty));
      open_.push_back(o);
      next_release_ts_ = std::min(next_release_ts_, o.arrival_ts);
      return;
    }
    if (!issued(x.order_id)) {
      fail("orders.order_id", k, std::to_string(x.order_id),
           std::string("is not the id of any order of this engine (") +
               (x.action == kCancel ? "CANCEL" : "MODIFY") + ")");
    }
    Request r;
    r.order_id = x.order_id;
    r.action = x.action;
    r.side = x.side;
    r.type = x.type;
    r.created_tick = tick;
    r.arrival_ts = latency_->arrival(ts, x.latency_ns);
    const SimOrder* o = find_live_const(x.order_id);
    if (o != nullptr) {
      // A request never overtakes the order it refers to.
      r.arrival_ts = std::max(r.arrival_ts, o->arrival_ts);
      if (x.action == kModify) {
        const bool limit = o->type == kLimit || o->type == kStopLimit;
        const bool stop = o->type == kStop || o->type == kStopLimit;
        if (!std::isnan(x.price) && !limit) {
          fail("orders.price", k, detail::fmt(x.price),
               "cannot be modified: order " + std::to_string(o->id) + " has no limit price");
        }
        if (!std::isnan(x.stop_price) && !stop) {
          fail("orders.stop_price", k, detail::fmt(x.stop_price),
               "cannot be modified: order " + std::to_string(o->id) + " is not a stop order");
        }
      }
    }
    if (x.action == kModify) {
      r.has_price = !std::isnan(x.price);
      r.has_stop = !std::isnan(x.stop_price);
      r.has_qty = !std::isnan(x.qty);
      if (r.has_price) r.price = to_ticks(x.price, cfg_.tick_size);
      if (r.has_stop) r.stop = to_ticks(x.stop_price, cfg_.tick_size);
      if (r.has_qty) r.qty = static_cast<int64_t>(detail::round_half_away(x.qty / cfg_.lot_size));
    }
    requests_.push_back(r);
    next_request_ts_ = std::min(next_request_ts_, r.arrival_ts);
  }

  void sample(int64_t ts, Outputs& out) {
    out.equity.push_back(EquityRecord{ts, cash_, position(), mark_, equity()});
    equity_at_last_ = true;
    const int64_t b = detail::floor_div(ts, cfg_.equity_interval_ns);
    const int64_t start = b * cfg_.equity_interval_ns;  // <= ts, no overflow
    next_equity_ts_ = detail::sat_add(start, cfg_.equity_interval_ns);
  }

  static void emit_order(Outputs& out, int64_t ts, const SimOrder& o, OrderEvent ev, double price,
                         double qty) {
    out.orders.push_back(
        OrderRecord{ts, o.id, o.side, o.type, static_cast<int8_t>(ev), price, qty});
  }

  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

  EngineConfig cfg_;
  Grid prices_;
  Grid lots_;
  // the models, chosen once from cfg_ (immutable: copies of the engine share them)
  std::shared_ptr<const LatencyModel> latency_;
  std::shared_ptr<const FeeModel> fees_model_;
  std::shared_ptr<const QueueModel> queue_;
  std::shared_ptr<const ImpactModel> impact_;
  bool track_unknown_ = false;  // keep the fills the strategy does not know yet (latency_->reports_late())
  L1Book book_;
  std::vector<SimOrder> open_;            // live orders, ascending id (= creation order)
  std::vector<Request> requests_;         // cancels / modifies on their way
  std::deque<UnknownFill> unknown_;       // fills the strategy does not know yet
  std::vector<std::pair<int64_t, int64_t>> id_ranges_;  // every id ever used, as ranges
  int64_t max_id_ = 0;
  int64_t position_ = 0;  // lots
  double cash_ = 0.0;
  double fees_ = 0.0;
  bool has_ts_ = false;
  int64_t last_ts_ = 0;
  uint64_t ticks_ = 0;
  uint64_t quotes_ignored_ = 0;
  uint64_t depth_hidden_ticks_ = 0;  // L2 ticks at which the L1 bound hid some level
  double mark_ = kNaN;
  int64_t next_equity_ts_ = std::numeric_limits<int64_t>::min();
  bool equity_at_last_ = false;
  // per tick (not state)
  bool trade_ = false;
  int64_t trade_px_ = 0, trade_left_ = 0, trade_lots_ = 0;
  size_t cursor_ = 0;
  size_t dcursor_ = 0;
  // L2 mode: once any depth arrived, liquidity, best prices and the mark
  // come from depth_, whose top is bounded by the latest valid L1 quote
  // (levels beyond it are hidden); the L1 quote no longer gives liquidity.
  bool l2_ = false;
  DepthBook depth_;
  PxScratch px_;
  // derived, not serialized (a restored engine scans once)
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  int64_t next_release_ts_ = std::numeric_limits<int64_t>::min();
  int64_t next_request_ts_ = std::numeric_limits<int64_t>::min();
  int64_t next_refill_ts_ = std::numeric_limits<int64_t>::min();  // a lower bound of the next refill
  bool done_ = true;  // some order may be complete: compact() before the next scan
};

}  // namespace ticktape
