// ticktape batch execution engine: walks L1 ticks in event order, simulates
// the strategy's orders against displayed liquidity, and keeps the portfolio.
//
// Pure C++17 (no Python): bindings.cpp exposes it as ticktape._native.Engine.
// The pure-Python twin that this must match exactly is ticktape.reference.
//
// Per tick i, in event order:
//   1. market data: the displayed L1 liquidity becomes (bid, bid_size) and
//      (ask, ask_size); an invalid quote (NaN / non-positive / crossed) shows
//      no liquidity and leaves the mark unchanged;
//   2. release orders whose arrival time (latency model) is <= ts[i] and that
//      were created at an earlier tick;
//   3. match released orders against the displayed top of book (what one
//      order takes is gone for the next order on the same tick);
//   4. read target[i] and turn it into at most one market order;
//   5. emit an equity sample when ts[i] crosses the next boundary of the
//      event-time grid.
//
// Extension points (kept apart from the loop on purpose): L1Book (a deeper
// book can replace it), ConstantLatency (latency model), BpsFee (fee model).
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
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
};

// Bad input to the engine; the message names the field and the index.
class InputError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// ---------------------------------------------------------------- records
// Byte layouts of ticktape.batch.FILL_DTYPE / ORDER_DTYPE / EQUITY_DTYPE
// (numpy list-form dtypes are packed).
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
#pragma pack(pop)
static_assert(sizeof(FillRecord) == 41, "FILL_DTYPE is 41 bytes");
static_assert(sizeof(OrderRecord) == 35, "ORDER_DTYPE is 35 bytes");
static_assert(sizeof(EquityRecord) == 40, "EQUITY_DTYPE is 40 bytes");

struct Outputs {
  std::vector<FillRecord> fills;
  std::vector<OrderRecord> orders;
  std::vector<EquityRecord> equity;
};

// A strided, possibly unaligned, read-only column (e.g. a field of a numpy
// structured array): zero copy.
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
  Column<double> bid, ask, bid_size, ask_size, target;
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
// value (ticktape.reference.round_half_away). |x| < 2**62.
inline double round_half_away(double x) {
  const double q = std::trunc(x);
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

// The displayed L1 liquidity of the current tick. Strategy orders consume
// it; the next tick's market data replaces it. (An L2/L3 book slots in here.)
struct L1Book {
  bool valid = false;
  int64_t bid_px = 0, bid_qty = 0, ask_px = 0, ask_qty = 0;

  void set(int64_t bp, int64_t bq, int64_t ap, int64_t aq) {
    valid = true;
    bid_px = bp;
    bid_qty = bq;
    ask_px = ap;
    ask_qty = aq;
  }
  void clear() { *this = L1Book{}; }

  // Take up to `want` lots for an order of `side` (buy lifts the ask, sell
  // hits the bid). Returns the quantity taken and sets `price`.
  int64_t take(int side, int64_t want, int64_t& price) {
    if (!valid) return 0;
    int64_t& avail = side > 0 ? ask_qty : bid_qty;
    price = side > 0 ? ask_px : bid_px;
    const int64_t q = want < avail ? want : avail;
    avail -= q;
    return q;
  }
};

// Latency model: every order arrives latency_ns after its creation.
struct ConstantLatency {
  int64_t latency_ns = 0;
  int64_t arrival(int64_t ts_created) const { return detail::sat_add(ts_created, latency_ns); }
};

// Fee model: fee_bps basis points of the notional.
struct BpsFee {
  double fee_bps = 0.0;
  double fee(double price, double qty) const { return fee_bps * 1e-4 * price * qty; }
};

struct EngineConfig {
  double tick_size = 0.01;
  double lot_size = 1.0;
  int64_t latency_ns = 0;
  double fee_bps = 0.0;
  double initial_cash = 1'000'000.0;
  int64_t equity_interval_ns = 1'000'000'000;

  void validate() const {
    auto positive = [](const char* name, double v) {
      if (!(std::isfinite(v) && v > 0.0)) {
        throw std::invalid_argument(std::string(name) + " must be finite and > 0, got " +
                                    detail::fmt(v));
      }
    };
    positive("tick_size", tick_size);
    positive("lot_size", lot_size);
    if (latency_ns < 0) {
      throw std::invalid_argument("latency_ns must be >= 0, got " + std::to_string(latency_ns));
    }
    if (!std::isfinite(fee_bps)) {
      throw std::invalid_argument("fee_bps must be finite, got " + detail::fmt(fee_bps));
    }
    if (!std::isfinite(initial_cash)) {
      throw std::invalid_argument("initial_cash must be finite, got " + detail::fmt(initial_cash));
    }
    if (equity_interval_ns <= 0) {
      throw std::invalid_argument("equity_interval_ns must be > 0, got " +
                                  std::to_string(equity_interval_ns));
    }
  }
};

// A strategy order inside the simulator.
struct SimOrder {
  int64_t id = 0;
  int64_t ts_created = 0;
  int64_t arrival_ts = 0;
  uint64_t created_tick = 0;  // global tick index of creation
  int64_t qty = 0;            // lots
  int64_t filled = 0;         // lots
  int8_t side = 0;
  int8_t type = 0;
  bool released = false;

  int64_t open() const { return qty - filled; }
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
  const std::vector<SimOrder>& open_orders() const { return open_; }

  // Validate the whole batch (throws InputError, state untouched), then run it.
  void process(const Inputs& in, Outputs& out) {
    validate(in);
    for (size_t i = 0; i < in.n; ++i) step(in, i, out);
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
    put(s, book_.valid);
    put(s, book_.bid_px);
    put(s, book_.bid_qty);
    put(s, book_.ask_px);
    put(s, book_.ask_qty);
    put(s, next_order_id_);
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
    put(s, static_cast<uint64_t>(open_.size()));
    for (const SimOrder& o : open_) {
      put(s, o.id);
      put(s, o.ts_created);
      put(s, o.arrival_ts);
      put(s, o.created_tick);
      put(s, o.qty);
      put(s, o.filled);
      put(s, o.side);
      put(s, o.type);
      put(s, o.released);
    }
    return s;
  }

  static Engine from_state(const std::string& s) {
    Reader r{s.data(), s.size(), 0};
    if (r.get<uint32_t>() != kMagic) throw std::invalid_argument("not a ticktape engine state");
    const uint32_t version = r.get<uint32_t>();
    if (version != kVersion) {
      throw std::invalid_argument("unsupported engine state version " + std::to_string(version));
    }
    EngineConfig cfg;
    cfg.tick_size = r.get<double>();
    cfg.lot_size = r.get<double>();
    cfg.latency_ns = r.get<int64_t>();
    cfg.fee_bps = r.get<double>();
    cfg.initial_cash = r.get<double>();
    cfg.equity_interval_ns = r.get<int64_t>();
    Engine e(cfg);
    e.book_.valid = r.flag();
    e.book_.bid_px = r.get<int64_t>();
    e.book_.bid_qty = r.get<int64_t>();
    e.book_.ask_px = r.get<int64_t>();
    e.book_.ask_qty = r.get<int64_t>();
    e.next_order_id_ = r.get<int64_t>();
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
    const uint64_t n = r.get<uint64_t>();
    if (n > (r.size - r.pos) / kOrderBytes) throw std::invalid_argument("corrupt engine state");
    e.open_.resize(static_cast<size_t>(n));
    for (SimOrder& o : e.open_) {
      o.id = r.get<int64_t>();
      o.ts_created = r.get<int64_t>();
      o.arrival_ts = r.get<int64_t>();
      o.created_tick = r.get<uint64_t>();
      o.qty = r.get<int64_t>();
      o.filled = r.get<int64_t>();
      o.side = r.get<int8_t>();
      o.type = r.get<int8_t>();
      o.released = r.flag();
      if ((o.side != kBuy && o.side != kSell) || o.qty <= 0 || o.filled < 0 || o.filled >= o.qty) {
        throw std::invalid_argument("corrupt engine state (open order)");
      }
    }
    if (r.pos != r.size) throw std::invalid_argument("corrupt engine state (trailing bytes)");
    return e;
  }

 private:
  static constexpr uint32_t kMagic = 0x31455454;  // "TTE1"
  static constexpr uint32_t kVersion = 1;
  static constexpr size_t kOrderBytes = 6 * 8 + 3;

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
  };

  void init_models() {
    prices_ = Grid(cfg_.tick_size);
    lots_ = Grid(cfg_.lot_size);
    latency_ = ConstantLatency{cfg_.latency_ns};
    fee_ = BpsFee{cfg_.fee_bps};
  }

  [[noreturn]] static void fail(const char* field, size_t i, const std::string& value,
                                const std::string& why) {
    throw InputError(std::string(field) + "[" + std::to_string(i) + "] = " + value + " " + why);
  }

  // A usable quote price: finite and > 0 (anything else: the quote is ignored).
  static bool usable(double p) { return std::isfinite(p) && p > 0.0; }

  int64_t to_ticks(double p) const {
    return static_cast<int64_t>(detail::round_half_away(p / cfg_.tick_size));
  }

  int64_t to_lots_displayed(double size) const {
    if (!(size > 0.0)) return 0;  // NaN or 0: nothing displayed
    const double x = std::floor(size / cfg_.lot_size + 1e-9);
    return x >= kMaxLots ? static_cast<int64_t>(kMaxLots) : static_cast<int64_t>(x);
  }

  void check_price(const char* field, size_t i, double p) const {
    if (!usable(p)) return;
    const double x = p / cfg_.tick_size;
    if (!(x < 4.0e18)) fail(field, i, detail::fmt(p), "is out of range for the tick size");
    const double t = detail::round_half_away(x);
    if (std::fabs(x - t) > 1e-6) {
      fail(field, i, detail::fmt(p),
           "is not on the tick grid (tick_size " + detail::fmt(cfg_.tick_size) + ")");
    }
  }

  void validate(const Inputs& in) const {
    bool has_prev = has_ts_;
    int64_t prev = last_ts_;
    for (size_t i = 0; i < in.n; ++i) {
      const int64_t ts = in.ts[i];
      if (has_prev && ts < prev) {
        fail("ts", i, std::to_string(ts), "goes backwards (previous " + std::to_string(prev) + ")");
      }
      has_prev = true;
      prev = ts;
      check_price("bid", i, in.bid[i]);
      check_price("ask", i, in.ask[i]);
      const double bs = in.bid_size[i];
      if (bs < 0.0) fail("bid_size", i, detail::fmt(bs), "is negative");
      const double as = in.ask_size[i];
      if (as < 0.0) fail("ask_size", i, detail::fmt(as), "is negative");
      const double t = in.target[i];
      if (std::isinf(t)) fail("target", i, detail::fmt(t), "is not finite (NaN means no decision)");
      if (!std::isnan(t) && !(std::fabs(t / cfg_.lot_size) < kMaxLots)) {
        fail("target", i, detail::fmt(t), "is out of range");
      }
    }
  }

  void step(const Inputs& in, size_t i, Outputs& out) {
    const int64_t ts = in.ts[i];
    const uint64_t tick = ticks_;

    // 1. market data
    const double bid = in.bid[i], ask = in.ask[i];
    bool valid = usable(bid) && usable(ask);
    int64_t bt = 0, at = 0;
    if (valid) {
      bt = to_ticks(bid);
      at = to_ticks(ask);
      valid = bt <= at;
    }
    if (valid) {
      book_.set(bt, to_lots_displayed(in.bid_size[i]), at, to_lots_displayed(in.ask_size[i]));
      mark_ = prices_.to_float(bt + at) * 0.5;
    } else {
      book_.clear();
      ++quotes_ignored_;
    }

    // 2. release arrived orders (never on the creating tick)
    for (SimOrder& o : open_) {
      if (!o.released && o.created_tick < tick && o.arrival_ts <= ts) {
        o.released = true;
        emit_order(out, ts, o, OrderEvent::Accepted, kNaN, lots_.to_float(o.qty));
      }
    }

    // 3. match released orders, oldest first
    if (book_.valid && !open_.empty()) {
      size_t keep = 0;
      for (size_t k = 0; k < open_.size(); ++k) {
        SimOrder& o = open_[k];
        if (o.released) match(o, ts, out);
        if (o.open() > 0) open_[keep++] = o;
      }
      open_.resize(keep);
    }

    // 4. the strategy's decision
    const double target = in.target[i];
    if (!std::isnan(target)) decide(target, ts, tick, out);

    ticks_ = tick + 1;
    has_ts_ = true;
    last_ts_ = ts;
    // 5. equity on the event-time grid
    equity_at_last_ = false;
    if (ts >= next_equity_ts_) sample(ts, out);
  }

  void match(SimOrder& o, int64_t ts, Outputs& out) {
    int64_t px = 0;
    const int64_t q = book_.take(o.side, o.open(), px);
    if (q <= 0) return;
    o.filled += q;
    position_ += o.side * q;
    const double price = prices_.to_float(px);
    const double qty = lots_.to_float(q);
    const double fee = fee_.fee(price, qty);
    cash_ -= static_cast<double>(o.side) * price * qty;
    cash_ -= fee;
    fees_ += fee;
    out.fills.push_back(FillRecord{ts, o.id, o.side, price, qty, fee});
    emit_order(out, ts, o, o.open() == 0 ? OrderEvent::Filled : OrderEvent::PartiallyFilled, price,
               qty);
  }

  void decide(double target, int64_t ts, uint64_t tick, Outputs& out) {
    int64_t working = 0;
    for (const SimOrder& o : open_) working += o.side * o.open();
    const double change = target - lots_.to_float(position_ + working);
    if (!(std::fabs(change) >= cfg_.lot_size / 2.0)) return;
    // Cancel whatever is working, then issue the new difference.
    for (const SimOrder& o : open_) {
      emit_order(out, ts, o, OrderEvent::Cancelled, kNaN, lots_.to_float(o.open()));
    }
    open_.clear();
    const double diff = target - lots_.to_float(position_);
    const int64_t lots = static_cast<int64_t>(detail::round_half_away(diff / cfg_.lot_size));
    if (lots == 0) return;
    SimOrder o;
    o.id = next_order_id_++;
    o.ts_created = ts;
    o.arrival_ts = latency_.arrival(ts);
    o.created_tick = tick;
    o.side = lots > 0 ? kBuy : kSell;
    o.qty = lots > 0 ? lots : -lots;
    o.type = static_cast<int8_t>(OrderType::Market);
    emit_order(out, ts, o, OrderEvent::Submitted, kNaN, lots_.to_float(o.qty));
    open_.push_back(o);
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
  ConstantLatency latency_;
  BpsFee fee_;
  L1Book book_;
  std::vector<SimOrder> open_;
  int64_t next_order_id_ = 1;
  int64_t position_ = 0;  // lots
  double cash_ = 0.0;
  double fees_ = 0.0;
  bool has_ts_ = false;
  int64_t last_ts_ = 0;
  uint64_t ticks_ = 0;
  uint64_t quotes_ignored_ = 0;
  double mark_ = kNaN;
  int64_t next_equity_ts_ = std::numeric_limits<int64_t>::min();
  bool equity_at_last_ = false;
};

}  // namespace ticktape
