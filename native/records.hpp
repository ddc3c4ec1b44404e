// What crosses the boundary between Python and the engine: the byte layouts
// of the numpy dtypes (ticktape.model.batch FILL_DTYPE, ORDER_DTYPE, EQUITY_DTYPE,
// ORDER_INSTR_DTYPE, DEPTH_DTYPE), the codes stored in them, the engine's
// Inputs (zero-copy strided columns) and Outputs, and InputError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

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

// Throws InputError "field[i] = value why".
[[noreturn]] inline void fail(const std::string& field, size_t i, const std::string& value,
                              const std::string& why) {
  throw InputError(field + "[" + std::to_string(i) + "] = " + value + " " + why);
}

// Byte layouts of ticktape.model.batch.FILL_DTYPE / ORDER_DTYPE / EQUITY_DTYPE /
// ORDER_INSTR_DTYPE / DEPTH_DTYPE (numpy list-form dtypes are packed).
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
struct DepthRow {  // ticktape.model.batch.DEPTH_DTYPE
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

  // Empty for the next call, keeping the capacity (the buffers are reused).
  void clear() {
    fills.clear();
    orders.clear();
    equity.clear();
    fill_liquidity.clear();
    fill_known_ts.clear();
  }
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

}  // namespace ticktape
