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
// Models (small structs, chosen by EngineConfig): Latency (entry, feed,
// response; per-order entry latency from the instructions), Fees (maker /
// taker bps + per unit), the queue model of resting orders (none,
// risk-averse, probabilistic power), Impact (slippage of market orders
// beyond the displayed size).
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "orderbook.hpp"

namespace ticktape {

enum class OrderEvent : int8_t {
  Submitted = 0,
  Accepted = 1,
  PartiallyFilled = 2,
  Filled = 3,
  Cancelled = 4,
  Rejected = 5,
  Triggered = 6,
};

// Engine order types (OrderType of orderbook.hpp plus the stop types).
constexpr int8_t kMarket = 0, kLimit = 1, kStop = 2, kStopLimit = 3;
// Time in force.
constexpr int8_t kGTC = 0, kIOC = 1, kFOK = 2, kPostOnly = 3;
// Instruction actions.
constexpr int8_t kNew = 0, kCancel = 1, kModify = 2;
// Liquidity flag of a fill.
constexpr int8_t kTaker = 0, kMaker = 1;

// Bad input to the engine; the message names the field and the index.
class InputError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// ---------------------------------------------------------------- records
// Byte layouts of ticktape.batch.FILL_DTYPE / ORDER_DTYPE / EQUITY_DTYPE /
// ORDER_INSTR_DTYPE (numpy list-form dtypes are packed).
#pragma pack(push, 1)
struct FillRecord {
  int64_t ts;
  int64_t order_id;
  int8_t side;
  double price;
  double qty;
  double fee;
};
struct OrderRecord {
  int64_t ts;
  int64_t order_id;
  int8_t side;
  int8_t type;
  int8_t event;
  double price;
  double qty;
};
struct EquityRecord {
  int64_t ts;
  double cash;
  double position;
  double price;
  double equity;
};
struct OrderInstr {
  int64_t i;
  int8_t action;
  int64_t order_id;
  int8_t side;
  int8_t type;
  int8_t tif;
  double price;
  double stop_price;
  double qty;
  int64_t latency_ns;
};
struct DepthRow {  // ticktape.batch.DEPTH_DTYPE
  int64_t i;
  int8_t side;
  double price;
  double qty;
};
#pragma pack(pop)
static_assert(sizeof(FillRecord) == 41, "FILL_DTYPE is 41 bytes");
static_assert(sizeof(OrderRecord) == 35, "ORDER_DTYPE is 35 bytes");
static_assert(sizeof(EquityRecord) == 40, "EQUITY_DTYPE is 40 bytes");
static_assert(sizeof(OrderInstr) == 52, "ORDER_INSTR_DTYPE is 52 bytes");
static_assert(sizeof(DepthRow) == 25, "DEPTH_DTYPE is 25 bytes");

struct Outputs {
  std::vector<FillRecord> fills;
  std::vector<OrderRecord> orders;
  std::vector<EquityRecord> equity;
  std::vector<int8_t> fill_liquidity;   // kTaker / kMaker, one per fill
  std::vector<int64_t> fill_known_ts;   // when the strategy learns of the fill
};

// A strided, possibly unaligned, read-only column (e.g. a field of a numpy
// structured array): zero copy. Stride 0 repeats one value (an absent
// optional column is a single NaN).
template <class T>
struct Column {
  const char* base = nullptr;
  std::ptrdiff_t stride = sizeof(T);
  T operator[](size_t i) const {
    T v;
    std::memcpy(&v, base + static_cast<std::ptrdiff_t>(i) * stride, sizeof(T));
    return v;
  }
};

struct Inputs {
  size_t n = 0;
  Column<int64_t> ts;
  Column<double> bid, ask, bid_size, ask_size, target, last, last_size;
  const OrderInstr* instr = nullptr;
  size_t n_instr = 0;
  const DepthRow* depth = nullptr;  // L2 diffs, applied at tick depth[k].i
  size_t n_depth = 0;
};

// ---------------------------------------------------------------- helpers
namespace detail {

inline std::string fmt(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

// Round half away from zero, written so that Python computes the very same
// value (ticktape.reference.round_half_away, which also truncates through
// an int, so -0.4 gives 0.0 in both). |x| >= 2**52 is integral already
// (returned as is, like inf and NaN); below it the truncation is an int cast.
inline double round_half_away(double x) {
  if (!(std::fabs(x) < 4503599627370496.0)) return x;
  const double q = static_cast<double>(static_cast<int64_t>(x));
  const double frac = x - q;  // exact
  if (frac >= 0.5) return q + 1.0;
  if (frac <= -0.5) return q - 1.0;
  return q;
}

inline int64_t sat_add(int64_t a, int64_t b) {  // b >= 0
  return a > std::numeric_limits<int64_t>::max() - b ? std::numeric_limits<int64_t>::max() : a + b;
}

inline int64_t floor_div(int64_t a, int64_t b) {  // b > 0
  int64_t q = a / b;
  if ((a % b) != 0 && a < 0) --q;
  return q;
}

}  // namespace detail

// Integer steps <-> floats. When 1/step is an integer N (0.01, 0.25, ...),
// k / N is the float nearest to the decimal value (100.01, not
// 100.01000000000001); otherwise k * step.
struct Grid {
  double step = 1.0;
  double inv = 1.0;
  bool use_inv = false;

  Grid() = default;
  explicit Grid(double s) : step(s) {
    const double r = std::round(1.0 / s);
    use_inv = s < 1.0 && r >= 1.0 && std::fabs(1.0 / s - r) <= 1e-9 * r;
    inv = use_inv ? r : 1.0 / s;
  }
  double to_float(int64_t k) const {
    return use_inv ? static_cast<double>(k) / inv : static_cast<double>(k) * step;
  }
};

// The displayed L1 liquidity of the current tick. Aggressive strategy orders
// consume it; the next tick's market data replaces it. `*_shown` keep what
// the data displayed (the queue and impact models read those).
struct L1Book {
  bool valid = false;
  int64_t bid_px = 0, bid_qty = 0, ask_px = 0, ask_qty = 0;
  int64_t bid_shown = 0, ask_shown = 0;

  void set(int64_t bp, int64_t bq, int64_t ap, int64_t aq) {
    valid = true;
    bid_px = bp;
    bid_qty = bid_shown = bq;
    ask_px = ap;
    ask_qty = ask_shown = aq;
  }
  void clear() { *this = L1Book{}; }
  // Price an aggressive order of `side` trades at (buy lifts the ask).
  int64_t touch(int side) const { return side > 0 ? ask_px : bid_px; }
  int64_t& avail(int side) { return side > 0 ? ask_qty : bid_qty; }
  int64_t shown(int side) const { return side > 0 ? ask_shown : bid_shown; }
  // Does a limit at `price` of `side` cross the opposite quote?
  bool crosses(int side, int64_t price) const {
    return valid && (side > 0 ? ask_px <= price : bid_px >= price);
  }
};

// The displayed L2 depth (fed by DepthRow diffs) with what the strategy's
// own aggressive orders took from each level. `used` stays until market data
// sets that level again, so no displayed lot is ever taken twice; with
// EngineConfig::depth_refill_ns >= 0 it also ends (the whole of it) once
// depth_refill_ns of event time have passed since the level's last take.
// Levels are keyed by price (bids by -price), the smallest key is the best
// level.
struct DepthLevel {
  int64_t qty = 0;       // displayed lots
  int64_t used = 0;      // lots the strategy took since the level was last set
  int64_t taken_ts = 0;  // event time of the last take (0 while used == 0)
  int64_t avail() const { return qty > used ? qty - used : 0; }
};
// One side's levels in a vector sorted by descending key, so the best level
// is at the back: diffs near the top of the book (nearly all of them) move
// few elements, and a walk reads memory in order. begin()/end() iterate
// best first.
struct DepthSide {
  using Entry = std::pair<int64_t, DepthLevel>;  // (key, level)
  std::vector<Entry> v;                          // descending key
  auto begin() { return v.rbegin(); }
  auto end() { return v.rend(); }
  auto begin() const { return v.rbegin(); }
  auto end() const { return v.rend(); }
  size_t size() const { return v.size(); }
  bool empty() const { return v.empty(); }
  // First element whose key is <= k (descending order), scanning from the
  // best end: levels near the top are found in a few steps.
  std::vector<Entry>::iterator find_pos(int64_t k) {
    auto it = v.end();
    for (int steps = 0; it != v.begin() && steps < 8; ++steps) {
      auto prev = it - 1;
      if (prev->first > k) return it;
      it = prev;
    }
    return std::lower_bound(v.begin(), it, k, [](const Entry& e, int64_t x) { return e.first > x; });
  }
};

// The L1 bound: the latest valid L1 quote is authoritative for the top of
// the depth book. Levels strictly better than it (bids above the quote's bid,
// asks below its ask) are hidden: they stay in the book (a later quote or
// diff can make them consistent again) but show no liquidity, are not walked
// and count for no best price, mark or queue. No bound before the first
// valid quote.
struct DepthBook {
  DepthSide bids, asks;
  bool bounded = false;
  int64_t bound_bid = 0, bound_ask = 0;  // ticks, when bounded

  static int64_t key(int side, int64_t px) { return side > 0 ? -px : px; }
  static int64_t price(int side, int64_t key) { return side > 0 ? -key : key; }
  DepthSide& levels(int side) { return side > 0 ? bids : asks; }
  const DepthSide& levels(int side) const { return side > 0 ? bids : asks; }

  // A diff: the level's displayed lots (0 removes it); what the strategy had
  // taken there is forgotten.
  void set(int side, int64_t px, int64_t lots) {
    auto& m = levels(side);
    const int64_t k = key(side, px);
    auto it = m.find_pos(k);
    const bool found = it != m.v.end() && it->first == k;
    if (lots <= 0) {
      if (found) m.v.erase(it);
    } else if (found) {
      it->second = DepthLevel{lots, 0, 0};
    } else {
      m.v.insert(it, DepthSide::Entry{k, DepthLevel{lots, 0, 0}});
    }
  }
  void set_bound(int64_t bid, int64_t ask) {
    bounded = true;
    bound_bid = bid;
    bound_ask = ask;
  }
  // The key of the bound on `side`: keys below it are hidden.
  int64_t bound_key(int side) const { return key(side, side > 0 ? bound_bid : bound_ask); }
  // Is the price of `side` beyond the bound (hidden)?
  bool beyond(int side, int64_t px) const {
    return bounded && (side > 0 ? px > bound_bid : px < bound_ask);
  }
  // Does the bound hide some level of `side` now?
  bool hides(int side) const {
    const auto& m = levels(side);
    return bounded && !m.empty() && m.v.back().first < bound_key(side);
  }
  // Where the hidden levels start in the side's vector: the shown levels are
  // [v.begin(), shown_end) (best shown at shown_end - 1).
  std::vector<DepthSide::Entry>::iterator shown_end(int side) {
    auto& m = levels(side);
    if (!hides(side)) return m.v.end();
    return m.find_pos(bound_key(side) - 1);  // the first key < the bound's
  }
  // The shown levels, best first.
  auto shown_begin(int side) { return std::make_reverse_iterator(shown_end(side)); }
  auto shown_stop(int side) { return levels(side).v.rend(); }
  // The best shown price of `side`, if any.
  bool best(int side, int64_t& px) const {
    auto& self = const_cast<DepthBook&>(*this);
    auto end = self.shown_end(side);
    if (end == self.levels(side).v.begin()) return false;
    px = price(side, (end - 1)->first);
    return true;
  }
  // The displayed lots at a price (0: no level there, or hidden).
  int64_t displayed(int side, int64_t px) const {
    if (beyond(side, px)) return 0;
    auto& m = const_cast<DepthSide&>(levels(side));
    const int64_t k = key(side, px);
    auto it = m.find_pos(k);
    return (it != m.v.end() && it->first == k) ? it->second.qty : 0;
  }
};

// Latency model. An order decided on tick i (local clock ts_i + feed, since
// market data reaches the strategy feed_ns late) reaches the exchange at
// ts_i + feed + entry (entry: the order's own latency_ns when given);
// exchange events reach the strategy response_ns after they happen.
struct Latency {
  int64_t entry_ns = 0, feed_ns = 0, response_ns = 0;
  int64_t arrival(int64_t ts_decided, int64_t own_entry) const {
    return detail::sat_add(detail::sat_add(ts_decided, feed_ns), own_entry >= 0 ? own_entry : entry_ns);
  }
  int64_t known(int64_t ts_event) const { return detail::sat_add(ts_event, response_ns); }
};

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

// Where an order is in its life.
enum class OrderState : int8_t {
  Pending = 0,    // sent, not yet at the exchange
  Working = 1,    // at the exchange, aggressive (takes liquidity when it can)
  Resting = 2,    // passive limit order in the queue
  Untriggered = 3 // stop order waiting for its trigger
};

// A strategy order inside the simulator.
struct SimOrder {
  int64_t id = 0;
  int64_t ts_created = 0;
  int64_t arrival_ts = 0;
  uint64_t created_tick = 0;  // global tick index of creation
  int64_t qty = 0;            // lots
  int64_t filled = 0;         // lots
  int64_t price = 0;          // limit price, ticks (LIMIT / STOP_LIMIT)
  int64_t stop = 0;           // stop price, ticks (STOP / STOP_LIMIT)
  double front = 0.0;         // queue ahead, lots (inf: unknown)
  double cum_trade = 0.0;     // lots traded at the price since the last depth update
  double level_prev = 0.0;    // level size at the last depth update (NaN: not seen)
  int8_t side = 0;
  int8_t type = 0;            // type as submitted (reported in order events)
  int8_t exec_type = 0;       // kMarket or kLimit (what a triggered stop became)
  int8_t tif = 0;
  int8_t state = 0;           // OrderState
  bool from_target = false;
  // The tick on which it started resting (only compared with the current
  // tick, so it is not part of the serialized state).
  uint64_t rested_tick = std::numeric_limits<uint64_t>::max();

  int64_t open() const { return qty - filled; }
};

// A cancel or modify on its way to the exchange.
struct Request {
  int64_t order_id = 0;
  int64_t arrival_ts = 0;
  uint64_t created_tick = 0;
  int64_t price = 0, stop = 0, qty = 0;  // new values (when has_*)
  int8_t action = 0;
  int8_t side = 0, type = 0;             // echoed in a REJECTED event
  bool has_price = false, has_stop = false, has_qty = false;
};

// A fill the strategy does not know of yet (response latency). `working`:
// of a target order the strategy still believes working (its quantity is
// then counted as working, not as position).
struct UnknownFill {
  int64_t known_at = 0;
  int64_t lots = 0;  // signed
  bool working = false;
};

// The prices of one batch in ticks, computed once while the batch is
// validated (kNoPx: not a usable price). Scratch, not state: a copy of the
// engine starts with an empty buffer and keeps its own on assignment.
struct TickPx {
  int64_t bid, ask, last;
};
constexpr int64_t kNoPx = std::numeric_limits<int64_t>::min();
struct DepthPx {
  int64_t price, lots;
};
struct PxScratch {
  std::vector<TickPx> v;
  std::vector<DepthPx> d;  // the depth rows' price in ticks and size in lots
  PxScratch() = default;
  PxScratch(const PxScratch&) {}
  PxScratch(PxScratch&&) noexcept {}
  PxScratch& operator=(const PxScratch&) { return *this; }
  PxScratch& operator=(PxScratch&&) noexcept { return *this; }
};

class Engine {
 public:
  static constexpr double kMaxLots = 9007199254740992.0;  // 2**53

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
    validate(in);
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

  // Emit the final equity sample at the last seen tick (once).
  void finish(Outputs& out) {
    if (has_ts_ && !equity_at_last_) sample(last_ts_, out);
  }

  // ------------------------------------------------------------ state
  std::string get_state() const {
    std::string s;
    put(s, kMagic);
    put(s, kVersion);
    put(s, cfg_.tick_size);
    put(s, cfg_.lot_size);
    put(s, cfg_.latency_ns);
    put(s, cfg_.fee_bps);
    put(s, cfg_.initial_cash);
    put(s, cfg_.equity_interval_ns);
    put(s, cfg_.response_latency_ns);
    put(s, cfg_.feed_latency_ns);
    put(s, cfg_.maker_fee_bps);
    put(s, cfg_.fee_per_unit);
    put(s, cfg_.queue_model);
    put(s, cfg_.queue_power);
    put(s, cfg_.slippage_model);
    put(s, cfg_.impact_bps);
    put(s, cfg_.target_mode);
    put(s, cfg_.depth_refill_ns);
    put(s, book_.valid);
    put(s, book_.bid_px);
    put(s, book_.bid_qty);
    put(s, book_.ask_px);
    put(s, book_.ask_qty);
    put(s, book_.bid_shown);
    put(s, book_.ask_shown);
    put(s, max_id_);
    put(s, position_);
    put(s, cash_);
    put(s, fees_);
    put(s, has_ts_);
    put(s, last_ts_);
    put(s, ticks_);
    put(s, quotes_ignored_);
    put(s, mark_);
    put(s, next_equity_ts_);
    put(s, equity_at_last_);
    put(s, static_cast<uint64_t>(id_ranges_.size()));
    for (const auto& [a, b] : id_ranges_) {
      put(s, a);
      put(s, b);
    }
    put(s, static_cast<uint64_t>(open_.size()));
    for (const SimOrder& o : open_) {
      put(s, o.id);
      put(s, o.ts_created);
      put(s, o.arrival_ts);
      put(s, o.created_tick);
      put(s, o.qty);
      put(s, o.filled);
      put(s, o.price);
      put(s, o.stop);
      put(s, o.front);
      put(s, o.cum_trade);
      put(s, o.level_prev);
      put(s, o.side);
      put(s, o.type);
      put(s, o.exec_type);
      put(s, o.tif);
      put(s, o.state);
      put(s, o.from_target);
    }
    put(s, static_cast<uint64_t>(requests_.size()));
    for (const Request& r : requests_) {
      put(s, r.order_id);
      put(s, r.arrival_ts);
      put(s, r.created_tick);
      put(s, r.price);
      put(s, r.stop);
      put(s, r.qty);
      put(s, r.action);
      put(s, r.side);
      put(s, r.type);
      put(s, r.has_price);
      put(s, r.has_stop);
      put(s, r.has_qty);
    }
    put(s, static_cast<uint64_t>(unknown_.size()));
    for (const UnknownFill& u : unknown_) {
      put(s, u.known_at);
      put(s, u.lots);
      put(s, u.working);
    }
    put(s, l2_);
    put(s, depth_hidden_ticks_);
    put(s, depth_.bounded);
    put(s, depth_.bound_bid);
    put(s, depth_.bound_ask);
    for (const auto* m : {&depth_.bids, &depth_.asks}) {
      put(s, static_cast<uint64_t>(m->size()));
      for (const auto& [key, lv] : *m) {
        put(s, key);
        put(s, lv.qty);
        put(s, lv.used);
        put(s, lv.taken_ts);
      }
    }
    return s;
  }

  static Engine from_state(const std::string& s) {
    Reader r{s.data(), s.size(), 0};
    if (r.get<uint32_t>() != kMagic) throw std::invalid_argument("not a ticktape engine state");
    const uint32_t version = r.get<uint32_t>();
    if (version != kVersion) {
      throw std::invalid_argument("unsupported engine state version " + std::to_string(version) +
                                  " (this build reads version " + std::to_string(kVersion) + ")");
    }
    EngineConfig cfg;
    cfg.tick_size = r.get<double>();
    cfg.lot_size = r.get<double>();
    cfg.latency_ns = r.get<int64_t>();
    cfg.fee_bps = r.get<double>();
    cfg.initial_cash = r.get<double>();
    cfg.equity_interval_ns = r.get<int64_t>();
    cfg.response_latency_ns = r.get<int64_t>();
    cfg.feed_latency_ns = r.get<int64_t>();
    cfg.maker_fee_bps = r.get<double>();
    cfg.fee_per_unit = r.get<double>();
    cfg.queue_model = r.get<int8_t>();
    cfg.queue_power = r.get<double>();
    cfg.slippage_model = r.get<int8_t>();
    cfg.impact_bps = r.get<double>();
    cfg.target_mode = r.get<int8_t>();
    cfg.depth_refill_ns = r.get<int64_t>();
    Engine e(cfg);
    e.book_.valid = r.flag();
    e.book_.bid_px = r.get<int64_t>();
    e.book_.bid_qty = r.get<int64_t>();
    e.book_.ask_px = r.get<int64_t>();
    e.book_.ask_qty = r.get<int64_t>();
    e.book_.bid_shown = r.get<int64_t>();
    e.book_.ask_shown = r.get<int64_t>();
    e.max_id_ = r.get<int64_t>();
    e.position_ = r.get<int64_t>();
    e.cash_ = r.get<double>();
    e.fees_ = r.get<double>();
    e.has_ts_ = r.flag();
    e.last_ts_ = r.get<int64_t>();
    e.ticks_ = r.get<uint64_t>();
    e.quotes_ignored_ = r.get<uint64_t>();
    e.mark_ = r.get<double>();
    e.next_equity_ts_ = r.get<int64_t>();
    e.equity_at_last_ = r.flag();
    if (e.max_id_ < 0) throw std::invalid_argument("corrupt engine state (order ids)");
    const uint64_t nr = r.count(16);
    e.id_ranges_.resize(static_cast<size_t>(nr));
    int64_t prev = 0;
    for (auto& [a, b] : e.id_ranges_) {
      a = r.get<int64_t>();
      b = r.get<int64_t>();
      if (a <= prev || b < a || b > e.max_id_) throw std::invalid_argument("corrupt engine state (order ids)");
      prev = b;
    }
    const uint64_t n = r.count(kOrderBytes);
    e.open_.resize(static_cast<size_t>(n));
    int64_t prev_id = 0;
    for (SimOrder& o : e.open_) {
      o.id = r.get<int64_t>();
      o.ts_created = r.get<int64_t>();
      o.arrival_ts = r.get<int64_t>();
      o.created_tick = r.get<uint64_t>();
      o.qty = r.get<int64_t>();
      o.filled = r.get<int64_t>();
      o.price = r.get<int64_t>();
      o.stop = r.get<int64_t>();
      o.front = r.get<double>();
      o.cum_trade = r.get<double>();
      o.level_prev = r.get<double>();
      o.side = r.get<int8_t>();
      o.type = r.get<int8_t>();
      o.exec_type = r.get<int8_t>();
      o.tif = r.get<int8_t>();
      o.state = r.get<int8_t>();
      o.from_target = r.flag();
      if ((o.side != kBuy && o.side != kSell) || o.qty <= 0 || o.qty > kMaxQty || o.filled < 0 ||
          o.filled >= o.qty || o.id <= prev_id || o.id > e.max_id_ || o.type < 0 || o.type > 3 ||
          (o.exec_type != kMarket && o.exec_type != kLimit) || o.tif < 0 || o.tif > 3 ||
          o.state < 0 || o.state > 3 || o.price < 0 || o.price >= kMaxPrice || o.stop < 0 ||
          o.stop >= kMaxPrice) {
        throw std::invalid_argument("corrupt engine state (open order)");
      }
      prev_id = o.id;
    }
    const uint64_t nq = r.count(kRequestBytes);
    e.requests_.resize(static_cast<size_t>(nq));
    for (Request& q : e.requests_) {
      q.order_id = r.get<int64_t>();
      q.arrival_ts = r.get<int64_t>();
      q.created_tick = r.get<uint64_t>();
      q.price = r.get<int64_t>();
      q.stop = r.get<int64_t>();
      q.qty = r.get<int64_t>();
      q.action = r.get<int8_t>();
      q.side = r.get<int8_t>();
      q.type = r.get<int8_t>();
      q.has_price = r.flag();
      q.has_stop = r.flag();
      q.has_qty = r.flag();
      if ((q.action != kCancel && q.action != kModify) || q.qty < 0 || q.qty > kMaxQty ||
          q.price < 0 || q.price >= kMaxPrice || q.stop < 0 || q.stop >= kMaxPrice) {
        throw std::invalid_argument("corrupt engine state (request)");
      }
    }
    const uint64_t nu = r.count(17);
    e.unknown_.resize(static_cast<size_t>(nu));
    for (UnknownFill& u : e.unknown_) {
      u.known_at = r.get<int64_t>();
      u.lots = r.get<int64_t>();
      u.working = r.flag();
      if (u.lots < -kMaxQty || u.lots > kMaxQty) throw std::invalid_argument("corrupt engine state (fill)");
    }
    e.l2_ = r.flag();
    e.depth_hidden_ticks_ = r.get<uint64_t>();
    e.depth_.bounded = r.flag();
    e.depth_.bound_bid = r.get<int64_t>();
    e.depth_.bound_ask = r.get<int64_t>();
    if (e.depth_.bounded && (e.depth_.bound_bid < 0 || e.depth_.bound_ask >= kMaxPrice ||
                             e.depth_.bound_bid > e.depth_.bound_ask)) {
      throw std::invalid_argument("corrupt engine state (depth bound)");
    }
    for (int side : {kBuy, kSell}) {
      auto& m = e.depth_.levels(side);
      const uint64_t nl = r.count(32);
      bool first = true;
      int64_t prev_key = 0;
      for (uint64_t k = 0; k < nl; ++k) {
        const int64_t key = r.get<int64_t>();
        DepthLevel lv;
        lv.qty = r.get<int64_t>();
        lv.used = r.get<int64_t>();
        lv.taken_ts = r.get<int64_t>();
        const int64_t px = DepthBook::price(side, key);
        if ((!first && key <= prev_key) || px <= 0 || px >= kMaxPrice || lv.qty <= 0 || lv.qty > kMaxQty ||
            lv.used < 0 || lv.used > lv.qty || (lv.used == 0 && lv.taken_ts != 0)) {
          throw std::invalid_argument("corrupt engine state (depth)");
        }
        m.v.emplace_back(key, lv);  // best first here; reversed below
        first = false;
        prev_key = key;
      }
      std::reverse(m.v.begin(), m.v.end());
    }
    if (r.pos != r.size) throw std::invalid_argument("corrupt engine state (trailing bytes)");
    return e;
  }

 private:
  static constexpr uint32_t kMagic = 0x31455454;  // "TTE1"
  static constexpr uint32_t kVersion = 6;
  // 4: + the L2 depth; 5: + its L1 bound; 6: + depth_refill_ns and each level's last take
  static constexpr size_t kOrderBytes = 11 * 8 + 6;
  static constexpr size_t kRequestBytes = 6 * 8 + 6;

  template <class T>
  static void put(std::string& s, T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s.append(b, sizeof(T));
  }
  struct Reader {
    const char* data;
    size_t size;
    size_t pos;
    template <class T>
    T get() {
      if (size - pos < sizeof(T)) throw std::invalid_argument("truncated engine state");
      T v;
      std::memcpy(&v, data + pos, sizeof(T));
      pos += sizeof(T);
      return v;
    }
    // A bool written as one byte; any other byte is corruption (loading it
    // into a bool directly would be undefined behaviour).
    bool flag() {
      const uint8_t b = get<uint8_t>();
      if (b > 1) throw std::invalid_argument("corrupt engine state (flag)");
      return b == 1;
    }
    // An element count, bounded by the bytes left.
    uint64_t count(size_t elem_bytes) {
      const uint64_t n = get<uint64_t>();
      if (n > (size - pos) / elem_bytes) throw std::invalid_argument("corrupt engine state");
      return n;
    }
  };

  void init_models() {
    prices_ = Grid(cfg_.tick_size);
    lots_ = Grid(cfg_.lot_size);
    latency_ = Latency{cfg_.latency_ns, cfg_.feed_latency_ns, cfg_.response_latency_ns};
    fees_model_ = Fees{cfg_.maker_fee_bps, cfg_.fee_bps, cfg_.fee_per_unit};
    queue_ = QueueModel{cfg_.queue_model, cfg_.queue_power};
    impact_ = Impact{cfg_.slippage_model, cfg_.impact_bps};
  }

  [[noreturn]] static void fail(const std::string& field, size_t i, const std::string& value,
                                const std::string& why) {
    throw InputError(field + "[" + std::to_string(i) + "] = " + value + " " + why);
  }

  // A usable quote price: finite and > 0 (anything else: the quote is ignored).
  static bool usable(double p) { return std::isfinite(p) && p > 0.0; }

  int64_t to_ticks(double p) const {
    return static_cast<int64_t>(detail::round_half_away(p / cfg_.tick_size));
  }

  int64_t to_lots_displayed(double size) const {
    if (!(size > 0.0)) return 0;  // NaN or 0: nothing displayed
    const double x = size / cfg_.lot_size + 1e-9;  // > 0: floor is the int cast below 2**53
    return x >= kMaxLots ? static_cast<int64_t>(kMaxLots) : static_cast<int64_t>(x);
  }

  // A market-data price in ticks (kNoPx when not usable: the quote or trade
  // is then ignored); off the grid or out of range: an error.
  int64_t check_price(const char* field, size_t i, double p) const {
    if (!usable(p)) return kNoPx;
    const double x = p / cfg_.tick_size;
    if (!(x < 4.0e18)) fail(field, i, detail::fmt(p), "is out of range for the tick size");
    const double t = detail::round_half_away(x);
    if (std::fabs(x - t) > 1e-6) {
      fail(field, i, detail::fmt(p),
           "is not on the tick grid (tick_size " + detail::fmt(cfg_.tick_size) + ")");
    }
    return static_cast<int64_t>(t);
  }

  // An instruction price: NaN (absent) unless `required`; else finite, > 0,
  // on the grid.
  void check_instr_price(const char* name, size_t k, double p, bool required, bool allowed,
                         const char* what) const {
    // (no std::string is built unless the check fails: this runs per instruction)
    const char* field = name;  // "orders.<name>"
    if (std::isnan(p)) {
      if (required) fail(field, k, "nan", std::string("is required for ") + what);
      return;
    }
    if (!allowed) fail(field, k, detail::fmt(p), std::string("must be NaN for ") + what);
    if (!usable(p)) fail(field, k, detail::fmt(p), "must be finite and > 0");
    const double x = p / cfg_.tick_size;
    if (!(x < 1.0e18)) fail(field, k, detail::fmt(p), "is out of range for the tick size");
    check_price(field, k, p);
  }

  void check_instr_qty(size_t k, double q, bool required) const {
    if (std::isnan(q)) {
      if (required) fail("orders.qty", k, "nan", "is required for a NEW order");
      return;
    }
    if (!(std::isfinite(q) && q > 0.0)) fail("orders.qty", k, detail::fmt(q), "must be finite and > 0");
    const double x = q / cfg_.lot_size;
    if (!(x < kMaxLots)) fail("orders.qty", k, detail::fmt(q), "is out of range");
    if (std::fabs(x - detail::round_half_away(x)) > 1e-9 * (x > 1.0 ? x : 1.0) ||
        detail::round_half_away(x) < 1.0) {
      fail("orders.qty", k, detail::fmt(q),
           "is not a whole number of lots (lot_size " + detail::fmt(cfg_.lot_size) + ")");
    }
  }

  void check_target(size_t i, double t) const {
    if (std::isinf(t)) fail("target", i, detail::fmt(t), "is not finite (NaN means no decision)");
    if (!std::isnan(t) && !(std::fabs(t / cfg_.lot_size) < kMaxLots)) {
      fail("target", i, detail::fmt(t), "is out of range");
    }
  }

  // Checks the batch and fills px_ (the prices in ticks). An absent
  // optional column is one value repeated (stride 0): checked once.
  void validate(const Inputs& in) {
    bool has_prev = has_ts_;
    int64_t prev = last_ts_;
    px_.v.resize(in.n);
    TickPx* px = px_.v.data();
    const bool last_const = in.last.stride == 0, ls_const = in.last_size.stride == 0;
    const bool target_const = in.target.stride == 0;
    int64_t last_px0 = kNoPx;
    if (in.n > 0) {
      if (last_const) last_px0 = check_price("last", 0, in.last[0]);
      if (ls_const && in.last_size[0] < 0.0) fail("last_size", 0, detail::fmt(in.last_size[0]), "is negative");
      if (target_const) check_target(0, in.target[0]);
    }
    for (size_t i = 0; i < in.n; ++i) {
      const int64_t ts = in.ts[i];
      if (has_prev && ts < prev) {
        fail("ts", i, std::to_string(ts), "goes backwards (previous " + std::to_string(prev) + ")");
      }
      has_prev = true;
      prev = ts;
      px[i].bid = check_price("bid", i, in.bid[i]);
      px[i].ask = check_price("ask", i, in.ask[i]);
      px[i].last = last_const ? last_px0 : check_price("last", i, in.last[i]);
      const double bs = in.bid_size[i];
      if (bs < 0.0) fail("bid_size", i, detail::fmt(bs), "is negative");
      const double as = in.ask_size[i];
      if (as < 0.0) fail("ask_size", i, detail::fmt(as), "is negative");
      if (!ls_const) {
        const double ls = in.last_size[i];
        if (ls < 0.0) fail("last_size", i, detail::fmt(ls), "is negative");
      }
      if (!target_const) check_target(i, in.target[i]);
    }
    int64_t prev_i = 0;
    for (size_t k = 0; k < in.n_instr; ++k) {
      const OrderInstr& x = in.instr[k];
      if (x.i < 0 || static_cast<uint64_t>(x.i) >= in.n) {
        fail("orders.i", k, std::to_string(x.i),
             "is not the index of a tick in this batch (0 .. " + std::to_string(in.n) + " - 1)");
      }
      if (x.i < prev_i) {
        fail("orders.i", k, std::to_string(x.i), "decreases (previous " + std::to_string(prev_i) + ")");
      }
      prev_i = x.i;
      if (x.order_id <= 0) fail("orders.order_id", k, std::to_string(x.order_id), "must be > 0");
      if (x.latency_ns < -1) {
        fail("orders.latency_ns", k, std::to_string(x.latency_ns), "must be >= 0 (or -1: the engine's)");
      }
      if (x.action == kNew) {
        if (x.side != kBuy && x.side != kSell) {
          fail("orders.side", k, std::to_string(x.side), "must be +1 (buy) or -1 (sell)");
        }
        if (x.type < kMarket || x.type > kStopLimit) {
          fail("orders.type", k, std::to_string(x.type),
               "must be 0 (MARKET), 1 (LIMIT), 2 (STOP) or 3 (STOP_LIMIT)");
        }
        if (x.tif < kGTC || x.tif > kPostOnly) {
          fail("orders.tif", k, std::to_string(x.tif),
               "must be 0 (GTC), 1 (IOC), 2 (FOK) or 3 (POST_ONLY)");
        }
        if (x.tif == kPostOnly && x.type != kLimit) {
          fail("orders.tif", k, "3", "(POST_ONLY) needs a LIMIT order");
        }
        const bool limit = x.type == kLimit || x.type == kStopLimit;
        const bool stop = x.type == kStop || x.type == kStopLimit;
        static const char* names[] = {"a MARKET order", "a LIMIT order", "a STOP order",
                                      "a STOP_LIMIT order"};
        check_instr_price("orders.price", k, x.price, limit, limit, names[x.type]);
        check_instr_price("orders.stop_price", k, x.stop_price, stop, stop, names[x.type]);
        check_instr_qty(k, x.qty, true);
      } else if (x.action == kModify) {
        check_instr_price("orders.price", k, x.price, false, true, "");
        check_instr_price("orders.stop_price", k, x.stop_price, false, true, "");
        check_instr_qty(k, x.qty, false);
      } else if (x.action != kCancel) {
        fail("orders.action", k, std::to_string(x.action), "must be 0 (NEW), 1 (CANCEL) or 2 (MODIFY)");
      }
    }
    px_.d.resize(in.n_depth);
    int64_t prev_di = 0;
    for (size_t k = 0; k < in.n_depth; ++k) {
      const DepthRow& r = in.depth[k];
      const int64_t di = r.i;
      if (di < 0 || static_cast<uint64_t>(di) >= in.n) {
        fail("depth.i", k, std::to_string(di),
             "is not the index of a tick in this batch (0 .. " + std::to_string(in.n) + " - 1)");
      }
      if (di < prev_di) fail("depth.i", k, std::to_string(di), "decreases (previous " + std::to_string(prev_di) + ")");
      prev_di = di;
      const int side = r.side;
      if (side != kBuy && side != kSell) fail("depth.side", k, std::to_string(side), "must be +1 (bid) or -1 (ask)");
      const double p = r.price;
      if (!usable(p)) fail("depth.price", k, detail::fmt(p), "must be finite and > 0");
      const double q = r.qty;
      if (!(std::isfinite(q) && q >= 0.0)) {
        fail("depth.qty", k, detail::fmt(q), "must be finite and >= 0 (0 removes the level)");
      }
      px_.d[k] = DepthPx{check_price("depth.price", k, p), to_lots_displayed(q)};
    }
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
      book_.set(bt, to_lots_displayed(in.bid_size[i]), at, to_lots_displayed(in.ask_size[i]));
      mark_ = prices_.to_float(bt + at) * 0.5;
    } else {
      book_.clear();
    }
    trade_ = px[i].last != kNoPx;
    trade_px_ = trade_ ? px[i].last : 0;
    trade_left_ = trade_ ? to_lots_displayed(in.last_size[i]) : 0;
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
      const int64_t now = detail::sat_add(ts, cfg_.feed_latency_ns);
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

  // Queue position of an order that starts resting now (after this tick's
  // market data): the displayed size at its price when its price is the
  // same-side touch, nothing ahead when it improves the touch, unknown (inf)
  // when it is behind the touch or there is no quote. Model 0: nothing ahead.
  void rest(SimOrder& o) {
    o.state = static_cast<int8_t>(OrderState::Resting);
    o.rested_tick = ticks_;
    o.cum_trade = 0.0;
    o.front = 0.0;
    o.level_prev = kNaN;
    if (queue_.kind == 0) return;
    double level = kNaN;
    if (l2_) {  // every level is visible: the displayed lots at its price (0: none)
      level = static_cast<double>(depth_.displayed(o.side, o.price));
    } else if (book_.valid) {
      const int64_t touch = o.side > 0 ? book_.bid_px : book_.ask_px;
      if (touch == o.price) {
        level = static_cast<double>(book_.shown(-o.side));
      } else if (o.side > 0 ? touch < o.price : touch > o.price) {
        level = 0.0;
      }
    }
    o.front = std::isnan(level) ? kInf : level;
    o.level_prev = level;
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
    const double fee = fees_model_.fee(maker, price, qty);
    cash_ -= static_cast<double>(o.side) * price * qty;
    cash_ -= fee;
    fees_ += fee;
    out.fills.push_back(FillRecord{ts, o.id, o.side, price, qty, fee});
    out.fill_liquidity.push_back(maker ? kMaker : kTaker);
    const int64_t known = latency_.known(ts);
    out.fill_known_ts.push_back(known);
    if (cfg_.response_latency_ns > cfg_.feed_latency_ns) {
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
      if (!limit && o.open() > 0 && impact_.kind == 1) {
        const int64_t touch = book_.touch(o.side);
        const int64_t extra = impact_.extra_ticks(touch, o.open(), book_.shown(o.side));
        int64_t px = o.side > 0 ? std::min(touch + extra, kMaxPrice - 1) : touch - extra;
        if (px < 1) px = 1;
        fill(o, ts, px, o.open(), false, out);
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
        const double t = static_cast<double>(trade_lots_);
        o.front -= t;
        o.cum_trade += t;
        if (detail::round_half_away(o.front) < 0.0) {
          const double x = std::floor(-o.front);
          int64_t q = x >= kMaxLots ? static_cast<int64_t>(kMaxLots) : static_cast<int64_t>(x);
          q = std::min(std::min(q, o.open()), trade_left_);
          if (q > 0) {
            trade_left_ -= q;
            o.front += static_cast<double>(q);
            fill(o, ts, o.price, q, true, out);
            if (o.open() <= 0) return;
          }
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
    if (queue_.kind == 0) return;
    double level;
    if (l2_) {
      level = static_cast<double>(depth_.displayed(s, o.price));
    } else if (!book_.valid) {
      return;
    } else if (const int64_t touch = s > 0 ? book_.bid_px : book_.ask_px; touch == o.price) {
      level = static_cast<double>(book_.shown(-s));
    } else if (s > 0 ? touch < o.price : touch > o.price) {
      level = 0.0;  // the level emptied: the touch moved behind it
    } else {
      o.level_prev = kNaN;  // behind the touch: not visible on L1
      o.cum_trade = 0.0;
      return;
    }
    if (queue_.kind == 1 || std::isnan(o.level_prev)) {
      o.front = std::min(o.front, level);
    } else {
      const double chg = o.level_prev - level - o.cum_trade;
      if (chg < 0.0) {
        o.front = std::min(o.front, level);
      } else {
        const double front = o.front;
        const double back = o.level_prev - front;
        const double p = queue_.prob_back(front, back);
        const double est = front - (1.0 - p) * chg + std::min(back - p * chg, 0.0);
        o.front = std::min(est, level);
      }
    }
    o.cum_trade = 0.0;
    o.level_prev = level;
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
    o.arrival_ts = latency_.arrival(ts, -1);
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
      o.arrival_ts = latency_.arrival(ts, x.latency_ns);
      o.created_tick = tick;
      o.side = x.side;
      o.type = x.type;
      o.exec_type = (x.type == kLimit || x.type == kStopLimit) ? kLimit : kMarket;
      o.tif = x.tif;
      o.qty = static_cast<int64_t>(detail::round_half_away(x.qty / cfg_.lot_size));
      if (o.exec_type == kLimit) o.price = to_ticks(x.price);
      if (x.type == kStop || x.type == kStopLimit) o.stop = to_ticks(x.stop_price);
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
    r.arrival_ts = latency_.arrival(ts, x.latency_ns);
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
      if (r.has_price) r.price = to_ticks(x.price);
      if (r.has_stop) r.stop = to_ticks(x.stop_price);
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
  static constexpr double kInf = std::numeric_limits<double>::infinity();

  EngineConfig cfg_;
  Grid prices_;
  Grid lots_;
  Latency latency_;
  Fees fees_model_;
  QueueModel queue_;
  Impact impact_;
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
