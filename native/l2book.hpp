// ticktape L2 book: aggregated quantity per price level (market-by-price
// feeds such as Binance depthUpdate). Pure C++17; bound as
// ticktape._native.L2Book by bindings.cpp.
//
// A diff sets the absolute quantity of one level (0 removes it), so applying
// the same diff twice is harmless. Crossed states are kept as given (feeds
// show them transiently); nothing is matched here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "orderbook.hpp"

namespace ticktape {

class L2Book {
 public:
  // Sets a level's quantity; qty 0 deletes the level.
  void set(int side, int64_t price, int64_t qty) {
    check(0, side, price, qty, false);
    put(side, price, qty);
  }

  // Bulk diffs; when `snap_at` is given, writes the top `levels` levels after
  // each event index in it (ascending) into `out` in LOBSTER layout: ask
  // price, ask qty, bid price, bid qty per level; 0, 0 for a missing level.
  // The whole batch is validated first, so a bad event changes nothing.
  void apply(size_t n, const int8_t* side, const int64_t* price, const int64_t* qty,
             const int64_t* snap_at = nullptr, size_t n_snap = 0, size_t levels = 0,
             int64_t* out = nullptr) {
    for (size_t i = 0; i < n; ++i) check(i, side[i], price[i], qty[i], true);
    for (size_t k = 0; k < n_snap; ++k) {
      if (snap_at[k] < 0 || static_cast<size_t>(snap_at[k]) >= n || (k && snap_at[k] < snap_at[k - 1])) {
        throw std::invalid_argument("snapshot_after[" + std::to_string(k) + "] = " +
                                    std::to_string(snap_at[k]) +
                                    " must be an ascending event index < " + std::to_string(n));
      }
    }
    size_t k = 0;
    for (size_t i = 0; i < n; ++i) {
      put(side[i], price[i], qty[i]);
      while (k < n_snap && static_cast<size_t>(snap_at[k]) == i) {
        top(levels, out + k * 4 * levels);
        ++k;
      }
    }
  }

  // Writes the top `levels` levels (LOBSTER layout, 0, 0 = no level).
  void top(size_t levels, int64_t* row) const {
    auto a = asks_.begin();
    auto b = bids_.begin();
    for (size_t l = 0; l < levels; ++l, row += 4) {
      if (a != asks_.end()) {
        row[0] = a->first;
        row[1] = a->second;
        ++a;
      } else {
        row[0] = row[1] = 0;
      }
      if (b != bids_.end()) {
        row[2] = -b->first;
        row[3] = b->second;
        ++b;
      } else {
        row[2] = row[3] = 0;
      }
    }
  }

  std::vector<std::pair<int64_t, int64_t>> depth(int side, int64_t n) const {
    check_side(side);
    if (n < 0) throw std::invalid_argument("depth n must be >= 0, got " + std::to_string(n));
    const auto& lv = side > 0 ? bids_ : asks_;
    std::vector<std::pair<int64_t, int64_t>> out;
    for (auto it = lv.begin(); it != lv.end() && static_cast<int64_t>(out.size()) < n; ++it) {
      out.emplace_back(side > 0 ? -it->first : it->first, it->second);
    }
    return out;
  }

  std::optional<std::pair<int64_t, int64_t>> best(int side) const {
    const auto d = depth(side, 1);
    if (d.empty()) return std::nullopt;
    return d[0];
  }

  int64_t volume_at(int side, int64_t price) const {
    check_side(side);
    const auto& lv = side > 0 ? bids_ : asks_;
    auto it = lv.find(side > 0 ? -price : price);
    return it == lv.end() ? 0 : it->second;
  }

  size_t levels(int side) const {
    check_side(side);
    return (side > 0 ? bids_ : asks_).size();
  }

  void clear() {
    bids_.clear();
    asks_.clear();
  }

 private:
  static void check_side(int side) {
    if (side != kBuy && side != kSell) {
      throw std::invalid_argument("side must be +1 (buy) or -1 (sell), got " +
                                  std::to_string(side));
    }
  }
  static void check(size_t i, int side, int64_t price, int64_t qty, bool bulk) {
    const std::string at = bulk ? "[" + std::to_string(i) + "]" : "";
    if (side != kBuy && side != kSell)
      throw std::invalid_argument("side" + at + " = " + std::to_string(side) +
                                  " must be +1 (buy) or -1 (sell)");
    if (price <= -kMaxPrice || price >= kMaxPrice)
      throw std::invalid_argument("price" + at + " = " + std::to_string(price) + " is out of range");
    if (qty < 0 || qty > kMaxQty)
      throw std::invalid_argument("qty" + at + " = " + std::to_string(qty) +
                                  " must be >= 0 (0 deletes the level) and <= 2**53");
  }
  void put(int side, int64_t price, int64_t qty) {
    auto& lv = side > 0 ? bids_ : asks_;
    const int64_t key = side > 0 ? -price : price;
    if (qty == 0) {
      lv.erase(key);
    } else {
      lv[key] = qty;
    }
  }

  std::map<int64_t, int64_t> bids_;  // key -price: begin() = best
  std::map<int64_t, int64_t> asks_;
};

}  // namespace ticktape
