// ticktape order book: price-time priority over integer price ticks.
//
// Pure C++17 (no Python): bindings.cpp exposes it as ticktape._native.OrderBook.
//
// Layout
// ------
// * Price levels live in one std::map per side, keyed so that begin() is the
//   best level on both sides (asks by price, bids by -price). Map iterators
//   are stable, so every order keeps an iterator to its level and cancel /
//   execute never search.
// * Orders live in a pool (vector + free list) and form an intrusive FIFO
//   doubly linked list per level (time priority).
// * IdMap: open-addressing hash map order id -> pool slot.
//
// Quantities are int64 lots; prices are int64 ticks. Both are bounded by
// kMaxQty / kMaxPrice (units.hpp) so that sums and negations can never
// overflow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "units.hpp"

namespace ticktape {

enum class OrderType : int8_t { Market = 0, Limit = 1 };

// Kinds of events in a bulk L3 stream (OrderBook::apply_l3).
enum class L3Kind : int8_t { Add = 1, Reduce = 2, Delete = 3, Execute = 4 };

// An order id that is not resting in the book (bindings map it to KeyError).
class UnknownOrderError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One fill of an aggressive order against a resting (maker) order.
struct BookFill {
  int64_t maker_id;
  int64_t price;
  int64_t qty;
};

// Open-addressing hash map int64 -> int32 (linear probing, backward-shift
// deletion, no tombstones). INT64_MIN is reserved as the empty key.
class IdMap {
 public:
  static constexpr int64_t kEmpty = std::numeric_limits<int64_t>::min();

  IdMap() { reset(16); }

  int32_t find(int64_t key) const {
    for (size_t i = home(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return s.val;
      if (s.key == kEmpty) return -1;
    }
  }

  // Inserts key -> val; returns false (and changes nothing) if key exists.
  bool insert(int64_t key, int32_t val) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    size_t i = home(key);
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return false;
      if (slots_[i].key == kEmpty) break;
    }
    slots_[i] = Slot{key, val};
    ++size_;
    return true;
  }

  bool erase(int64_t key) {
    size_t i = home(key);
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].key == key) break;
      if (slots_[i].key == kEmpty) return false;
    }
    // Backward shift: pull later members of the probe run into the hole.
    for (size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
      if (slots_[j].key == kEmpty) break;
      const size_t h = home(slots_[j].key);
      // Move j into the hole i unless its home lies cyclically in (i, j].
      const bool in_range = (i <= j) ? (i < h && h <= j) : (i < h || h <= j);
      if (!in_range) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i].key = kEmpty;
    --size_;
    return true;
  }

  size_t size() const { return size_; }

  void clear() { reset(16); }

 private:
  struct Slot {
    int64_t key;
    int32_t val;
  };

  size_t home(int64_t key) const {
    return static_cast<size_t>((static_cast<uint64_t>(key) * 0x9E3779B97F4A7C15ull) >> shift_);
  }

  void reset(size_t cap) {
    slots_.assign(cap, Slot{kEmpty, -1});
    mask_ = cap - 1;
    shift_ = 64;
    for (size_t c = cap; c > 1; c >>= 1) --shift_;
    size_ = 0;
  }

  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    reset(old.size() * 2);
    for (const Slot& s : old) {
      if (s.key == kEmpty) continue;
      size_t i = home(s.key);
      while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
      slots_[i] = s;
      ++size_;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  unsigned shift_ = 64;
  size_t size_ = 0;
};

class OrderBook {
 public:
  OrderBook() = default;

  // A resting limit order from market data: no matching.
  void add(int64_t id, int side, int64_t price, int64_t qty) {
    check_id(id);
    check_side(side);
    check_price(price);
    check_qty(qty, "qty");
    if (ids_.find(id) >= 0) throw std::invalid_argument("duplicate order id " + std::to_string(id));
    rest(id, static_cast<int8_t>(side), price, qty);
  }

  // Reduce a resting order by qty (keeps its time priority), or delete it
  // when qty is absent or >= its resting quantity.
  void cancel(int64_t id, std::optional<int64_t> qty = std::nullopt) {
    if (qty && *qty <= 0) {
      throw std::invalid_argument("cancel qty must be > 0, got " + std::to_string(*qty));
    }
    const int32_t idx = ids_.find(id);
    if (idx < 0) throw UnknownOrderError("unknown order id " + std::to_string(id));
    if (!qty || *qty >= pool_[idx].qty) {
      remove(idx);
    } else {
      pool_[idx].qty -= *qty;
      pool_[idx].level->second.total -= *qty;
    }
  }

  // An execution of a resting order reported by market data.
  void execute(int64_t id, int64_t qty) {
    check_qty(qty, "execute qty");
    const int32_t idx = ids_.find(id);
    if (idx < 0) throw UnknownOrderError("unknown order id " + std::to_string(id));
    consume(idx, qty);
  }

  // An aggressive order: matches the opposite side in price-time priority.
  // A LIMIT remainder rests under `id`; a MARKET remainder is cancelled.
  // Fills are appended to `fills` in match order.
  void submit(int64_t id, int side, int type, int64_t price, int64_t qty,
              std::vector<BookFill>& fills) {
    check_id(id);
    check_side(side);
    if (type != static_cast<int>(OrderType::Market) && type != static_cast<int>(OrderType::Limit)) {
      throw std::invalid_argument("order type must be 0 (MARKET) or 1 (LIMIT), got " +
                                  std::to_string(type));
    }
    const bool limit = type == static_cast<int>(OrderType::Limit);
    if (limit) check_price(price);
    check_qty(qty, "qty");
    if (ids_.find(id) >= 0) throw std::invalid_argument("duplicate order id " + std::to_string(id));

    Levels& opp = side > 0 ? asks_ : bids_;
    while (qty > 0 && !opp.empty()) {
      auto lvl = opp.begin();
      const int64_t lvl_price = side > 0 ? lvl->first : -lvl->first;
      if (limit && (side > 0 ? lvl_price > price : lvl_price < price)) break;
      while (qty > 0) {
        const int32_t maker = lvl->second.head;
        const int64_t take = std::min(qty, pool_[maker].qty);
        fills.push_back(BookFill{pool_[maker].id, lvl_price, take});
        qty -= take;
        const bool level_gone = lvl->second.count == 1 && take == pool_[maker].qty;
        consume(maker, take);
        if (level_gone) break;
      }
    }
    if (limit && qty > 0) rest(id, static_cast<int8_t>(side), price, qty);
  }

  // An order with a time in force: 0 GTC (a LIMIT remainder rests), 1 IOC
  // (the remainder is cancelled), 2 FOK (all or nothing: rejected without
  // any fill unless the whole qty can trade now within the limit), 3
  // POST_ONLY (LIMIT only; rejected if it would trade on arrival, else
  // rests). Returns false when rejected (no fills, nothing rests).
  bool place(int64_t id, int side, int type, int64_t price, int64_t qty, int tif,
             std::vector<BookFill>& fills) {
    if (tif < 0 || tif > 3) {
      throw std::invalid_argument("tif must be 0 (GTC), 1 (IOC), 2 (FOK) or 3 (POST_ONLY), got " +
                                  std::to_string(tif));
    }
    const bool limit = type == static_cast<int>(OrderType::Limit);
    if (tif == 3 && !limit) throw std::invalid_argument("POST_ONLY needs a LIMIT order");
    check_id(id);
    check_side(side);
    if (limit) check_price(price);
    check_qty(qty, "qty");
    if (ids_.find(id) >= 0) throw std::invalid_argument("duplicate order id " + std::to_string(id));
    if (tif == 2 || tif == 3) {
      int64_t avail = 0;
      const Levels& opp = side > 0 ? asks_ : bids_;
      for (auto it = opp.begin(); it != opp.end() && avail < qty; ++it) {
        const int64_t p = side > 0 ? it->first : -it->first;
        if (limit && (side > 0 ? p > price : p < price)) break;
        avail += it->second.total;
      }
      if (tif == 3 && avail > 0) return false;
      if (tif == 2 && avail < qty) return false;
    }
    if (tif == 1 || (tif == 2 && limit)) {
      submit(id, side, type, price, qty, fills);
      const int32_t idx = ids_.find(id);
      if (idx >= 0) remove(idx);  // IOC: what did not trade is cancelled
      return true;
    }
    submit(id, side, type, price, qty, fills);
    return true;
  }

  // Changes a resting order's price and/or qty. Same price and a smaller
  // qty keeps its time priority; a new price or a larger qty loses it (the
  // order is re-entered at the back, and trades first if the new price
  // crosses). Fills of that re-entry are appended to `fills`.
  void modify(int64_t id, int64_t price, int64_t qty, std::vector<BookFill>& fills) {
    check_price(price);
    check_qty(qty, "qty");
    const int32_t idx = ids_.find(id);
    if (idx < 0) throw UnknownOrderError("unknown order id " + std::to_string(id));
    Order& o = pool_[idx];
    if (price == o.price && qty <= o.qty) {
      if (qty < o.qty) {
        o.level->second.total -= o.qty - qty;
        o.qty = qty;
      }
      return;
    }
    const int side = o.side;
    remove(idx);
    submit(id, side, static_cast<int>(OrderType::Limit), price, qty, fills);
  }

  // Bulk L3 stream. Unknown ids on reduce/delete/execute are ignored; any
  // other bad event throws std::invalid_argument naming its index (events
  // before it have been applied).
  void apply_l3(size_t n, const int8_t* kind, const int64_t* id, const int8_t* side,
                const int64_t* price, const int64_t* qty) {
    for (size_t i = 0; i < n; ++i) {
      switch (static_cast<L3Kind>(kind[i])) {
        case L3Kind::Add: {
          const int64_t oid = id[i];
          if (oid == IdMap::kEmpty) fail(i, "order_id", std::to_string(oid), "is reserved");
          if (side[i] != kBuy && side[i] != kSell)
            fail(i, "side", std::to_string(side[i]), "must be +1 (buy) or -1 (sell)");
          if (price[i] <= -kMaxPrice || price[i] >= kMaxPrice)
            fail(i, "price", std::to_string(price[i]), "is out of range");
          if (qty[i] <= 0 || qty[i] > kMaxQty)
            fail(i, "qty", std::to_string(qty[i]), "must be > 0 (and <= 2**53)");
          if (ids_.find(oid) >= 0)
            fail(i, "order_id", std::to_string(oid), "is a duplicate of a resting order");
          rest(oid, side[i], price[i], qty[i]);
          break;
        }
        case L3Kind::Reduce: {
          if (qty[i] <= 0) fail(i, "qty", std::to_string(qty[i]), "must be > 0");
          const int32_t idx = ids_.find(id[i]);
          if (idx < 0) break;
          if (qty[i] >= pool_[idx].qty) {
            remove(idx);
          } else {
            pool_[idx].qty -= qty[i];
            pool_[idx].level->second.total -= qty[i];
          }
          break;
        }
        case L3Kind::Delete: {
          const int32_t idx = ids_.find(id[i]);
          if (idx >= 0) remove(idx);
          break;
        }
        case L3Kind::Execute: {
          if (qty[i] <= 0) fail(i, "qty", std::to_string(qty[i]), "must be > 0");
          const int32_t idx = ids_.find(id[i]);
          if (idx < 0) break;
          if (qty[i] > pool_[idx].qty)
            fail(i, "qty", std::to_string(qty[i]),
                 "exceeds the resting qty " + std::to_string(pool_[idx].qty) + " of order " +
                     std::to_string(id[i]));
          consume(idx, qty[i]);
          break;
        }
        default:
          fail(i, "kind", std::to_string(kind[i]),
               "is not 1 (add), 2 (reduce), 3 (delete) or 4 (execute)");
      }
    }
  }

  // The id of the pseudo-order that stands for liquidity at (side, price)
  // whose orders were never seen (they rested before the data began or
  // arrived outside a depth-limited feed's window). Negative, so it never
  // collides with exchange ids >= 0; needs 0 <= price < 2**61.
  static int64_t pseudo_id(int side, int64_t price) {
    check_side(side);
    if (price < 0 || price >= (int64_t(1) << 61)) {
      throw std::invalid_argument("pseudo-order price must be in [0, 2**61), got " +
                                  std::to_string(price));
    }
    return -(2 * price + (side > 0 ? 1 : 0)) - 2;
  }

  // LOBSTER-style replay with verification, one event at a time from
  // `start`. kind 0 is a no-op (hidden execution, cross trade, halt).
  // Reduce/delete/execute of an id that is not resting take their qty from
  // the pseudo-order at (side, price) instead; what an event names beyond
  // what its order (or pseudo-order) holds comes off the level's oldest
  // orders, and what the level cannot supply is added to `shortfall`. After each event i the top `levels` levels are compared with
  // row i of `expected` (LOBSTER orderbook layout: ask price, ask size, bid
  // price, bid size per level, `ncols` = 4 * levels; size 0 = no level).
  // Returns the first i whose row differs (event i applied), or n.
  size_t replay_check(size_t start, size_t n, const int8_t* kind, const int64_t* id,
                      const int8_t* side, const int64_t* price, const int64_t* qty,
                      const int64_t* expected, size_t levels, int64_t& shortfall) {
    for (size_t i = start; i < n; ++i) {
      const int k = kind[i];
      if (k == 0) {
        // no book change
      } else if (k == static_cast<int>(L3Kind::Add)) {
        if (side[i] != kBuy && side[i] != kSell)
          fail(i, "side", std::to_string(side[i]), "must be +1 (buy) or -1 (sell)");
        if (price[i] <= -kMaxPrice || price[i] >= kMaxPrice)
          fail(i, "price", std::to_string(price[i]), "is out of range");
        if (qty[i] <= 0 || qty[i] > kMaxQty)
          fail(i, "qty", std::to_string(qty[i]), "must be > 0 (and <= 2**53)");
        if (id[i] == IdMap::kEmpty) fail(i, "order_id", std::to_string(id[i]), "is reserved");
        // An id that is still resting here went away unannounced (outside a
        // depth-limited feed's window) before the exchange reused it.
        const int32_t old = ids_.find(id[i]);
        if (old >= 0) remove(old);
        rest(id[i], side[i], price[i], qty[i]);
      } else if (k >= 2 && k <= 4) {
        if (qty[i] <= 0) fail(i, "qty", std::to_string(qty[i]), "must be > 0");
        int32_t idx = ids_.find(id[i]);
        int64_t want = qty[i];
        if (idx >= 0) {
          // A known order: what the event names beyond its resting qty
          // went away unannounced at its level (see take_from_level).
          const int64_t take = std::min(want, pool_[idx].qty);
          const int8_t s = pool_[idx].side;
          const int64_t p = pool_[idx].price;
          if (k == static_cast<int>(L3Kind::Delete)) {
            remove(idx);
          } else {
            consume(idx, take);
          }
          shortfall += take_from_level(s, p, want - take);
        } else {
          if (side[i] != kBuy && side[i] != kSell)
            fail(i, "side", std::to_string(side[i]), "must be +1 (buy) or -1 (sell)");
          if (price[i] < 0 || price[i] >= (int64_t(1) << 61))
            fail(i, "price", std::to_string(price[i]), "is out of range");
          idx = ids_.find(pseudo_id(side[i], price[i]));
          if (idx >= 0) {
            const int64_t take = std::min(want, pool_[idx].qty);
            consume(idx, take);
            want -= take;
          }
          // More than the pseudo-order holds: the feed did not announce
          // that known orders at this level went away (a depth-limited
          // feed is silent beyond its window). Take it from the level's
          // oldest orders, which keeps the level's aggregate right.
          want = take_from_level(side[i], price[i], want);
          shortfall += want;
        }
      } else {
        fail(i, "kind", std::to_string(k),
             "is not 0 (none), 1 (add), 2 (reduce), 3 (delete) or 4 (execute)");
      }
      if (!row_matches(expected + i * 4 * levels, levels)) return i;
    }
    return n;
  }

  // Takes up to qty from the orders of a level, oldest first; returns what
  // the level could not supply.
  int64_t take_from_level(int side, int64_t price, int64_t qty) {
    if (qty <= 0) return qty;
    Levels& lv = side > 0 ? bids_ : asks_;
    auto it = lv.find(side > 0 ? -price : price);
    while (qty > 0 && it != lv.end()) {
      const int32_t head = it->second.head;
      const int64_t take = std::min(qty, pool_[head].qty);
      const bool gone = it->second.count == 1 && take == pool_[head].qty;
      consume(head, take);
      qty -= take;
      if (gone) break;
    }
    return qty;
  }

  // Whether the top `levels` levels equal one LOBSTER orderbook row.
  bool row_matches(const int64_t* row, size_t levels) const {
    auto a = asks_.begin();
    auto b = bids_.begin();
    for (size_t l = 0; l < levels; ++l, row += 4) {
      if (row[1] > 0) {
        if (a == asks_.end() || a->first != row[0] || a->second.total != row[1]) return false;
        ++a;
      } else if (a != asks_.end()) {
        return false;
      }
      if (row[3] > 0) {
        if (b == bids_.end() || -b->first != row[2] || b->second.total != row[3]) return false;
        ++b;
      } else if (b != bids_.end()) {
        return false;
      }
    }
    return true;
  }

  // (price, total qty) of the best level of a side.
  std::optional<std::pair<int64_t, int64_t>> best(int side) const {
    check_side(side);
    const Levels& lv = side > 0 ? bids_ : asks_;
    if (lv.empty()) return std::nullopt;
    auto it = lv.begin();
    return std::make_pair(side > 0 ? -it->first : it->first, it->second.total);
  }

  // Up to n levels (price, qty) of a side, best first.
  std::vector<std::pair<int64_t, int64_t>> depth(int side, int64_t n) const {
    check_side(side);
    if (n < 0) throw std::invalid_argument("depth n must be >= 0, got " + std::to_string(n));
    const Levels& lv = side > 0 ? bids_ : asks_;
    std::vector<std::pair<int64_t, int64_t>> out;
    out.reserve(static_cast<size_t>(std::min<int64_t>(n, static_cast<int64_t>(lv.size()))));
    for (auto it = lv.begin(); it != lv.end() && static_cast<int64_t>(out.size()) < n; ++it) {
      out.emplace_back(side > 0 ? -it->first : it->first, it->second.total);
    }
    return out;
  }

  int64_t volume_at(int side, int64_t price) const {
    check_side(side);
    if (price <= -kMaxPrice || price >= kMaxPrice) return 0;
    const Levels& lv = side > 0 ? bids_ : asks_;
    auto it = lv.find(side > 0 ? -price : price);
    return it == lv.end() ? 0 : it->second.total;
  }

  // (side, price, qty) of a resting order.
  std::optional<std::tuple<int, int64_t, int64_t>> order(int64_t id) const {
    const int32_t idx = ids_.find(id);
    if (idx < 0) return std::nullopt;
    const Order& o = pool_[idx];
    return std::make_tuple(static_cast<int>(o.side), o.price, o.qty);
  }

  // Resting orders of one level in priority order: (id, price, qty).
  std::vector<std::tuple<int64_t, int64_t, int64_t>> orders_at(int side, int64_t price) const {
    check_side(side);
    std::vector<std::tuple<int64_t, int64_t, int64_t>> out;
    if (price <= -kMaxPrice || price >= kMaxPrice) return out;
    const Levels& lv = side > 0 ? bids_ : asks_;
    auto it = lv.find(side > 0 ? -price : price);
    if (it == lv.end()) return out;
    for (int32_t i = it->second.head; i >= 0; i = pool_[i].next) {
      out.emplace_back(pool_[i].id, pool_[i].price, pool_[i].qty);
    }
    return out;
  }

  size_t size() const { return ids_.size(); }
  size_t levels(int side) const {
    check_side(side);
    return (side > 0 ? bids_ : asks_).size();
  }

  void clear() {
    bids_.clear();
    asks_.clear();
    pool_.clear();
    free_ = -1;
    ids_.clear();
  }

  // Resting orders of a side in priority order: (id, price, qty).
  std::vector<std::tuple<int64_t, int64_t, int64_t>> orders(int side) const {
    check_side(side);
    std::vector<std::tuple<int64_t, int64_t, int64_t>> out;
    const Levels& lv = side > 0 ? bids_ : asks_;
    for (const auto& kv : lv) {
      for (int32_t i = kv.second.head; i >= 0; i = pool_[i].next) {
        out.emplace_back(pool_[i].id, pool_[i].price, pool_[i].qty);
      }
    }
    return out;
  }

 private:
  struct Level {
    int64_t total = 0;
    int32_t head = -1;
    int32_t tail = -1;
    int32_t count = 0;
  };
  using Levels = std::map<int64_t, Level>;  // begin() = best on both sides

  struct Order {
    int64_t id;
    int64_t price;
    int64_t qty;
    Levels::iterator level;
    int32_t prev;
    int32_t next;
    int8_t side;
  };

  [[noreturn]] static void fail(size_t i, const char* field, const std::string& value,
                                const std::string& why) {
    throw std::invalid_argument(std::string(field) + "[" + std::to_string(i) + "] = " + value +
                                " " + why);
  }
  static void check_id(int64_t id) {
    if (id == IdMap::kEmpty) throw std::invalid_argument("order id -2**63 is reserved");
  }
  static void check_side(int side) {
    if (side != kBuy && side != kSell) {
      throw std::invalid_argument("side must be +1 (buy) or -1 (sell), got " +
                                  std::to_string(side));
    }
  }
  static void check_price(int64_t price) {
    if (price <= -kMaxPrice || price >= kMaxPrice) {
      throw std::invalid_argument("price " + std::to_string(price) + " is out of range");
    }
  }
  static void check_qty(int64_t qty, const char* what) {
    if (qty <= 0 || qty > kMaxQty) {
      throw std::invalid_argument(std::string(what) + " must be > 0 (and <= 2**53), got " +
                                  std::to_string(qty));
    }
  }

  void rest(int64_t id, int8_t side, int64_t price, int64_t qty) {
    Levels& lv = side > 0 ? bids_ : asks_;
    auto lvl = lv.try_emplace(side > 0 ? -price : price).first;
    int32_t idx;
    if (free_ >= 0) {
      idx = free_;
      free_ = pool_[idx].next;
    } else {
      if (pool_.size() >= static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
        throw std::length_error("order book is full");
      }
      idx = static_cast<int32_t>(pool_.size());
      pool_.emplace_back();
    }
    Order& o = pool_[idx];
    o.id = id;
    o.price = price;
    o.qty = qty;
    o.level = lvl;
    o.side = side;
    o.next = -1;
    o.prev = lvl->second.tail;
    if (lvl->second.tail >= 0) {
      pool_[lvl->second.tail].next = idx;
    } else {
      lvl->second.head = idx;
    }
    lvl->second.tail = idx;
    lvl->second.total += qty;
    ++lvl->second.count;
    ids_.insert(id, idx);
  }

  // Take qty (<= resting) off a resting order; delete it when it reaches 0.
  void consume(int32_t idx, int64_t qty) {
    Order& o = pool_[idx];
    if (qty > o.qty) {
      throw std::invalid_argument("execute qty " + std::to_string(qty) +
                                  " exceeds the resting qty " + std::to_string(o.qty) +
                                  " of order " + std::to_string(o.id));
    }
    if (qty == o.qty) {
      remove(idx);
    } else {
      o.qty -= qty;
      o.level->second.total -= qty;
    }
  }

  void remove(int32_t idx) {
    Order& o = pool_[idx];
    Level& l = o.level->second;
    if (o.prev >= 0) {
      pool_[o.prev].next = o.next;
    } else {
      l.head = o.next;
    }
    if (o.next >= 0) {
      pool_[o.next].prev = o.prev;
    } else {
      l.tail = o.prev;
    }
    l.total -= o.qty;
    if (--l.count == 0) (o.side > 0 ? bids_ : asks_).erase(o.level);
    ids_.erase(o.id);
    o.next = free_;
    free_ = idx;
  }

  Levels bids_;
  Levels asks_;
  std::vector<Order> pool_;
  int32_t free_ = -1;
  IdMap ids_;
};

}  // namespace ticktape
