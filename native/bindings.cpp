// ticktape._native: pybind11 bindings of the order book and the execution
// engine (the only file here that knows about Python). Re-exported, with
// enums and docs, by ticktape.native.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine.hpp"
#include "orderbook.hpp"
#include "state.hpp"

namespace py = pybind11;
using namespace ticktape;

void bind_indicators(py::module_& m);  // indicator_bindings.cpp
void bind_kernels(py::module_& m);     // kernel_bindings.cpp

namespace {

// Methods that release the GIL mark their object busy; every method checks
// the mark (always with the GIL held), so another Python thread can never
// touch an object while C++ runs on it without the GIL.
void check_idle(bool busy, const char* what) {
  if (busy) throw std::runtime_error(std::string(what) + " is in use by another thread");
}

struct BusyGuard {
  bool& flag;
  BusyGuard(bool& f, const char* what) : flag(f) {
    check_idle(f, what);
    f = true;
  }
  ~BusyGuard() { flag = false; }
  BusyGuard(const BusyGuard&) = delete;
  BusyGuard& operator=(const BusyGuard&) = delete;
};

struct PyBook {
  OrderBook book;
  std::vector<BookFill> scratch;
  bool busy = false;
  OrderBook& get() {
    check_idle(busy, "OrderBook");
    return book;
  }
};

struct PyEngine {
  Engine eng;
  bool busy = false;
  Outputs scratch;  // reused across calls: no fresh pages per batch
  explicit PyEngine(Engine e) : eng(std::move(e)) {}
  Engine& get() {
    check_idle(busy, "Engine");
    return eng;
  }
};

// A fresh numpy array holding a copy of `v`, copied in one memcpy (numpy's
// own copy of a packed record dtype moves one record at a time).
template <class R>
py::array to_array(const std::vector<R>& v) {
  py::array_t<R> a(static_cast<py::ssize_t>(v.size()));
  if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(R));
  return std::move(a);
}

py::dict to_dict(const Outputs& out, bool details = false) {
  py::dict d;
  d["fills"] = to_array(out.fills);
  d["orders"] = to_array(out.orders);
  d["equity"] = to_array(out.equity);
  if (details) {
    d["fill_liquidity"] = py::array_t<int8_t>(static_cast<py::ssize_t>(out.fill_liquidity.size()),
                                              out.fill_liquidity.data());
    d["fill_known_ts"] = py::array_t<int64_t>(static_cast<py::ssize_t>(out.fill_known_ts.size()),
                                              out.fill_known_ts.data());
  }
  return d;
}

void check_1d(const py::array& a, const char* field) {
  if (a.ndim() != 1) {
    throw py::value_error(std::string(field) + " must be 1-D, got " + std::to_string(a.ndim()) +
                          " dimensions");
  }
}

// A float64 column without copying when the input already is float64 (any
// stride, e.g. a field of a structured array); otherwise a converted copy
// that `keep` holds until the call ends.
template <class T>
Column<T> column(py::handle obj, const char* field, py::array_t<T, py::array::forcecast>& keep) {
  keep = py::array_t<T, py::array::forcecast>::ensure(obj);
  if (!keep) throw py::error_already_set();
  check_1d(keep, field);
  Column<T> c;
  c.base = reinterpret_cast<const char*>(keep.data());
  c.stride = keep.ndim() ? keep.strides(0) : static_cast<py::ssize_t>(sizeof(T));
  return c;
}

std::string repr_float(double v) { return py::repr(py::float_(v)).cast<std::string>(); }

// ts: int64 ns. Integer arrays are cast; a float array is accepted only if
// every value is an integral, finite number of ns.
Column<int64_t> ts_column(py::handle obj, py::array_t<int64_t, py::array::forcecast>& keep) {
  py::array arr = py::array::ensure(obj);
  if (!arr) throw py::error_already_set();
  check_1d(arr, "ts");
  const char kind = arr.dtype().kind();
  if (kind == 'f') {
    auto f = py::array_t<double, py::array::forcecast>::ensure(arr);
    if (!f) throw py::error_already_set();
    auto r = f.unchecked<1>();
    py::array_t<int64_t> conv(f.shape(0));
    auto w = conv.mutable_unchecked<1>();
    for (py::ssize_t i = 0; i < f.shape(0); ++i) {
      const double v = r(i);
      const std::string where = "ts[" + std::to_string(i) + "] = " + repr_float(v);
      if (std::isnan(v)) throw py::value_error(where + " is NaN");
      if (!(std::fabs(v) < 9.2e18)) throw py::value_error(where + " is out of range");
      if (std::trunc(v) != v) throw py::value_error(where + " is not an integer number of ns");
      w(i) = static_cast<int64_t>(v);
    }
    return column<int64_t>(conv, "ts", keep);
  }
  if (kind != 'i' && kind != 'u' && kind != 'b') {
    throw py::type_error("ts must be an integer array of ns, got dtype " +
                         py::str(arr.dtype()).cast<std::string>());
  }
  return column<int64_t>(arr, "ts", keep);
}

const double kAbsent = std::numeric_limits<double>::quiet_NaN();

// An optional float column: None is a stride-0 view of one NaN.
Column<double> opt_column(py::handle obj, const char* field,
                          py::array_t<double, py::array::forcecast>& keep, py::ssize_t n) {
  if (obj.is_none()) {
    Column<double> c;
    c.base = reinterpret_cast<const char*>(&kAbsent);
    c.stride = 0;
    return c;
  }
  Column<double> c = column<double>(obj, field, keep);
  if (keep.shape(0) != n) {
    throw py::value_error(std::string(field) + " has length " + std::to_string(keep.shape(0)) +
                          " but ts has length " + std::to_string(n));
  }
  return c;
}

// The instructions as a pointer into a C-contiguous array of the packed
// OrderInstr layout (alignment 1, so any address is fine); `keep` holds the
// array (a contiguous copy when the input was strided).
const OrderInstr* instructions(py::handle obj, py::array& keep, size_t& n) {
  n = 0;
  if (obj.is_none()) return nullptr;
  py::array arr = py::array::ensure(obj);
  if (!arr) throw py::type_error("orders must be a numpy array of ticktape.model.batch.ORDER_INSTR_DTYPE");
  const py::dtype want = py::dtype::of<OrderInstr>();
  if (!arr.dtype().equal(want)) {
    throw py::type_error("orders must have dtype ticktape.model.batch.ORDER_INSTR_DTYPE " +
                         py::str(want).cast<std::string>() + ", got " +
                         py::str(arr.dtype()).cast<std::string>());
  }
  check_1d(arr, "orders");
  keep = (arr.flags() & py::array::c_style)
             ? arr
             : py::array(py::module_::import("numpy").attr("ascontiguousarray")(arr));
  n = static_cast<size_t>(keep.shape(0));
  return reinterpret_cast<const OrderInstr*>(keep.data());
}

// The depth diffs as a pointer into a C-contiguous DEPTH_DTYPE array (packed,
// alignment 1); `keep` holds the array (a contiguous copy when strided).
const DepthRow* depth_rows(py::handle obj, py::array& keep, size_t& n) {
  n = 0;
  if (obj.is_none()) return nullptr;
  py::array arr = py::array::ensure(obj);
  if (!arr) throw py::type_error("depth must be a numpy array of ticktape.model.batch.DEPTH_DTYPE");
  const py::dtype want = py::dtype::of<DepthRow>();
  if (!arr.dtype().equal(want)) {
    throw py::type_error("depth must have dtype ticktape.model.batch.DEPTH_DTYPE " + py::str(want).cast<std::string>() +
                         ", got " + py::str(arr.dtype()).cast<std::string>());
  }
  check_1d(arr, "depth");
  keep = (arr.flags() & py::array::c_style)
             ? arr
             : py::array(py::module_::import("numpy").attr("ascontiguousarray")(arr));
  n = static_cast<size_t>(keep.shape(0));
  return reinterpret_cast<const DepthRow*>(keep.data());
}

py::dict engine_process(PyEngine& self, py::handle ts, py::handle bid, py::handle ask,
                        py::handle bid_size, py::handle ask_size, py::handle target,
                        py::handle last, py::handle last_size, py::handle orders, py::handle depth,
                        bool details) {
  self.get();
  py::array_t<int64_t, py::array::forcecast> k_ts;
  py::array_t<double, py::array::forcecast> k_bid, k_ask, k_bs, k_as, k_tg, k_last, k_ls;
  Inputs in;
  in.ts = ts_column(ts, k_ts);
  in.bid = column<double>(bid, "bid", k_bid);
  in.ask = column<double>(ask, "ask", k_ask);
  in.bid_size = column<double>(bid_size, "bid_size", k_bs);
  in.ask_size = column<double>(ask_size, "ask_size", k_as);
  const py::ssize_t n = k_ts.shape(0);
  in.n = static_cast<size_t>(n);
  const std::pair<const char*, py::ssize_t> lens[] = {{"bid", k_bid.shape(0)},
                                                      {"ask", k_ask.shape(0)},
                                                      {"bid_size", k_bs.shape(0)},
                                                      {"ask_size", k_as.shape(0)}};
  for (const auto& [field, len] : lens) {
    if (len != n) {
      throw py::value_error(std::string(field) + " has length " + std::to_string(len) +
                            " but ts has length " + std::to_string(n));
    }
  }
  in.target = opt_column(target, "target", k_tg, n);
  in.last = opt_column(last, "last", k_last, n);
  in.last_size = opt_column(last_size, "last_size", k_ls, n);
  py::array k_orders;
  in.instr = instructions(orders, k_orders, in.n_instr);
  py::array k_depth;
  in.depth = depth_rows(depth, k_depth, in.n_depth);
  Outputs& out = self.scratch;
  {
    BusyGuard busy(self.busy, "Engine");
    out.clear();
    py::gil_scoped_release nogil;  // the k_* arrays above outlive this scope
    self.eng.process(in, out);
  }
  return to_dict(out, details);
}

// One batch of ticks checked and converted to ticks once, for the many
// engines of a sweep (Engine.process_batch); it keeps its columns alive.
struct PyTickBatch {
  py::array_t<int64_t, py::array::forcecast> k_ts;
  py::array_t<double, py::array::forcecast> k_bid, k_ask, k_bs, k_as, k_last, k_ls;
  std::unique_ptr<CheckedBatch> batch;
};

std::unique_ptr<PyTickBatch> make_tick_batch(py::handle ts, py::handle bid, py::handle ask,
                                             py::handle bid_size, py::handle ask_size, py::handle last,
                                             py::handle last_size, double tick_size, double lot_size) {
  EngineConfig c;  // the grid's own checks
  c.tick_size = tick_size;
  c.lot_size = lot_size;
  c.validate();
  auto b = std::make_unique<PyTickBatch>();
  Inputs in;
  in.ts = ts_column(ts, b->k_ts);
  in.bid = column<double>(bid, "bid", b->k_bid);
  in.ask = column<double>(ask, "ask", b->k_ask);
  in.bid_size = column<double>(bid_size, "bid_size", b->k_bs);
  in.ask_size = column<double>(ask_size, "ask_size", b->k_as);
  const py::ssize_t n = b->k_ts.shape(0);
  in.n = static_cast<size_t>(n);
  const std::pair<const char*, py::ssize_t> lens[] = {{"bid", b->k_bid.shape(0)},
                                                      {"ask", b->k_ask.shape(0)},
                                                      {"bid_size", b->k_bs.shape(0)},
                                                      {"ask_size", b->k_as.shape(0)}};
  for (const auto& [field, len] : lens) {
    if (len != n) {
      throw py::value_error(std::string(field) + " has length " + std::to_string(len) +
                            " but ts has length " + std::to_string(n));
    }
  }
  py::array_t<double, py::array::forcecast> no_target;
  in.target = opt_column(py::none(), "target", no_target, n);
  in.last = opt_column(last, "last", b->k_last, n);
  in.last_size = opt_column(last_size, "last_size", b->k_ls, n);
  {
    py::gil_scoped_release nogil;
    b->batch = std::make_unique<CheckedBatch>(in, tick_size, lot_size);
  }
  return b;
}

py::dict engine_process_batch(PyEngine& self, const PyTickBatch& batch, py::handle target) {
  self.get();
  py::array_t<double, py::array::forcecast> k_tg;
  const Column<double> tg = opt_column(target, "target", k_tg, static_cast<py::ssize_t>(batch.batch->in.n));
  Outputs& out = self.scratch;
  {
    BusyGuard busy(self.busy, "Engine");
    out.clear();
    py::gil_scoped_release nogil;
    self.eng.process_checked(*batch.batch, tg, out);
  }
  return to_dict(out, false);
}

py::array int_pairs(const std::vector<std::pair<int64_t, int64_t>>& v) {
  py::array_t<int64_t> a({static_cast<py::ssize_t>(v.size()), py::ssize_t(2)});
  auto w = a.mutable_unchecked<2>();
  for (size_t i = 0; i < v.size(); ++i) {
    w(i, 0) = v[i].first;
    w(i, 1) = v[i].second;
  }
  return std::move(a);
}

template <class T>
using CArr = py::array_t<T, py::array::c_style | py::array::forcecast>;

// A C-contiguous array can still be misaligned (a field of a packed
// structured array); C++ must not load int64 from it, so copy such arrays.
template <class T>
CArr<T> aligned(const CArr<T>& a) {
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) == 0) return a;
  CArr<T> c(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
  if (a.nbytes()) std::memcpy(c.mutable_data(), a.data(), static_cast<size_t>(a.nbytes()));
  return c;
}

void book_apply_l3(PyBook& self, const CArr<int8_t>& kind, const CArr<int64_t>& order_id_in,
                   const CArr<int8_t>& side, const CArr<int64_t>& price_in,
                   const CArr<int64_t>& qty_in) {
  self.get();
  const CArr<int64_t> order_id = aligned(order_id_in), price = aligned(price_in),
                      qty = aligned(qty_in);
  check_1d(kind, "kind");
  check_1d(order_id, "order_id");
  check_1d(side, "side");
  check_1d(price, "price");
  check_1d(qty, "qty");
  const py::ssize_t n = kind.shape(0);
  const std::pair<const char*, py::ssize_t> lens[] = {{"order_id", order_id.shape(0)},
                                                      {"side", side.shape(0)},
                                                      {"price", price.shape(0)},
                                                      {"qty", qty.shape(0)}};
  for (const auto& [field, len] : lens) {
    if (len != n) {
      throw py::value_error(std::string(field) + " has length " + std::to_string(len) +
                            " but kind has length " + std::to_string(n));
    }
  }
  BusyGuard busy(self.busy, "OrderBook");
  py::gil_scoped_release nogil;  // the argument arrays outlive this call
  self.book.apply_l3(static_cast<size_t>(n), kind.data(), order_id.data(), side.data(),
                     price.data(), qty.data());
}

py::tuple book_replay_check(PyBook& self, const CArr<int8_t>& kind,
                            const CArr<int64_t>& order_id_in, const CArr<int8_t>& side,
                            const CArr<int64_t>& price_in, const CArr<int64_t>& qty_in,
                            const CArr<int64_t>& expected_in, int64_t start) {
  self.get();
  const CArr<int64_t> order_id = aligned(order_id_in), price = aligned(price_in),
                      qty = aligned(qty_in), expected = aligned(expected_in);
  check_1d(kind, "kind");
  const py::ssize_t n = kind.shape(0);
  const std::pair<const char*, const py::array*> cols[] = {
      {"order_id", &order_id}, {"side", &side}, {"price", &price}, {"qty", &qty}};
  for (const auto& [field, arr] : cols) {
    check_1d(*arr, field);
    if (arr->shape(0) != n) {
      throw py::value_error(std::string(field) + " has length " + std::to_string(arr->shape(0)) +
                            " but kind has length " + std::to_string(n));
    }
  }
  if (expected.ndim() != 2 || expected.shape(0) != n || expected.shape(1) % 4 != 0 ||
      expected.shape(1) == 0) {
    throw py::value_error("expected must have shape (len(kind), 4 * levels)");
  }
  if (start < 0 || start > n) throw py::value_error("start out of range");
  int64_t shortfall = 0;
  size_t stop;
  {
    BusyGuard busy(self.busy, "OrderBook");
    py::gil_scoped_release nogil;
    stop = self.book.replay_check(static_cast<size_t>(start), static_cast<size_t>(n), kind.data(),
                                  order_id.data(), side.data(), price.data(), qty.data(),
                                  expected.data(), static_cast<size_t>(expected.shape(1) / 4),
                                  shortfall);
  }
  return py::make_tuple(stop, shortfall);
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "ticktape C++ order book and batch execution engine (use ticktape.native)";
  bind_indicators(m);
  bind_kernels(m);

  PYBIND11_NUMPY_DTYPE(BookFill, maker_id, price, qty);
  PYBIND11_NUMPY_DTYPE(FillRecord, ts, order_id, side, price, qty, fee);
  PYBIND11_NUMPY_DTYPE(OrderRecord, ts, order_id, side, type, event, price, qty);
  PYBIND11_NUMPY_DTYPE(EquityRecord, ts, cash, position, price, equity);
  PYBIND11_NUMPY_DTYPE(OrderInstr, i, action, order_id, side, type, tif, price, stop_price, qty,
                       latency_ns);
  PYBIND11_NUMPY_DTYPE(DepthRow, i, side, price, qty);

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const UnknownOrderError& e) {
      PyErr_SetString(PyExc_KeyError, e.what());
    }
  });

  m.attr("BOOK_FILL_DTYPE") = py::dtype::of<BookFill>();
  m.attr("ORDER_INSTR_DTYPE") = py::dtype::of<OrderInstr>();
  m.attr("DEPTH_DTYPE") = py::dtype::of<DepthRow>();
  py::register_exception<InputError>(m, "InputError", PyExc_ValueError);

  py::class_<PyBook>(m, "OrderBook",
                     "Price-time priority limit order book over int64 price ticks and lots.")
      .def(py::init<>())
      .def(
          "add",
          [](PyBook& s, int64_t order_id, int side, int64_t price, int64_t qty) {
            s.get().add(order_id, side, price, qty);
          },
          py::arg("order_id"), py::arg("side"), py::arg("price"), py::arg("qty"))
      .def(
          "cancel",
          [](PyBook& s, int64_t order_id, std::optional<int64_t> qty) {
            s.get().cancel(order_id, qty);
          },
          py::arg("order_id"), py::arg("qty") = py::none())
      .def(
          "execute", [](PyBook& s, int64_t order_id, int64_t qty) { s.get().execute(order_id, qty); },
          py::arg("order_id"), py::arg("qty"))
      .def(
          "submit",
          [](PyBook& s, int64_t order_id, int side, int type, int64_t price, int64_t qty) {
            s.scratch.clear();
            s.get().submit(order_id, side, type, price, qty, s.scratch);
            return to_array(s.scratch);
          },
          py::arg("order_id"), py::arg("side"), py::arg("type"), py::arg("price"), py::arg("qty"))
      .def(
          "place",
          [](PyBook& s, int64_t order_id, int side, int type, int64_t price, int64_t qty, int tif) {
            s.scratch.clear();
            const bool ok = s.get().place(order_id, side, type, price, qty, tif, s.scratch);
            return py::make_tuple(to_array(s.scratch), ok);
          },
          py::arg("order_id"), py::arg("side"), py::arg("type"), py::arg("price"), py::arg("qty"),
          py::arg("tif") = 0)
      .def(
          "modify",
          [](PyBook& s, int64_t order_id, int64_t price, int64_t qty) {
            s.scratch.clear();
            s.get().modify(order_id, price, qty, s.scratch);
            return to_array(s.scratch);
          },
          py::arg("order_id"), py::arg("price"), py::arg("qty"))
      .def("best_bid", [](PyBook& s) { return s.get().best(kBuy); })
      .def("best_ask", [](PyBook& s) { return s.get().best(kSell); })
      .def(
          "depth", [](PyBook& s, int side, int64_t n) { return int_pairs(s.get().depth(side, n)); },
          py::arg("side"), py::arg("n"))
      .def(
          "volume_at", [](PyBook& s, int side, int64_t price) { return s.get().volume_at(side, price); },
          py::arg("side"), py::arg("price"))
      .def(
          "order", [](PyBook& s, int64_t order_id) { return s.get().order(order_id); },
          py::arg("order_id"))
      .def(
          "orders",
          [](PyBook& s, int side, std::optional<int64_t> price) {
            const auto v = price ? s.get().orders_at(side, *price) : s.get().orders(side);
            py::array_t<int64_t> a({static_cast<py::ssize_t>(v.size()), py::ssize_t(3)});
            auto w = a.mutable_unchecked<2>();
            for (size_t i = 0; i < v.size(); ++i) {
              w(i, 0) = std::get<0>(v[i]);
              w(i, 1) = std::get<1>(v[i]);
              w(i, 2) = std::get<2>(v[i]);
            }
            return a;
          },
          py::arg("side"), py::arg("price") = py::none())
      .def("apply_l3", &book_apply_l3, py::arg("kind"), py::arg("order_id"), py::arg("side"),
           py::arg("price"), py::arg("qty"))
      .def("replay_check", &book_replay_check, py::arg("kind"), py::arg("order_id"),
           py::arg("side"), py::arg("price"), py::arg("qty"), py::arg("expected"),
           py::arg("start") = 0)
      .def_static("pseudo_id", &OrderBook::pseudo_id, py::arg("side"), py::arg("price"))
      .def("clear", [](PyBook& s) { s.get().clear(); })
      .def("__len__", [](PyBook& s) { return s.get().size(); })
      .def("__repr__", [](PyBook& s) {
        const OrderBook& b = s.get();
        auto side_str = [](const std::optional<std::pair<int64_t, int64_t>>& x) {
          return x ? std::to_string(x->second) + "@" + std::to_string(x->first) : std::string("-");
        };
        return "<OrderBook orders=" + std::to_string(b.size()) + " bid=" + side_str(b.best(kBuy)) +
               " ask=" + side_str(b.best(kSell)) + ">";
      });

  py::class_<PyTickBatch>(m, "TickBatch",
                          "A batch of L1 ticks checked once for many engines (Engine.process_batch).")
      .def(py::init(&make_tick_batch), py::arg("ts"), py::arg("bid"), py::arg("ask"), py::arg("bid_size"),
           py::arg("ask_size"), py::arg("last") = py::none(), py::arg("last_size") = py::none(),
           py::kw_only(), py::arg("tick_size"), py::arg("lot_size") = 1.0)
      .def("__len__", [](const PyTickBatch& b) { return b.batch->in.n; });

  py::class_<PyEngine>(m, "Engine",
                       "Batch execution engine over L1 ticks (see ticktape.native).")
      .def(py::init([](double tick_size, double lot_size, std::optional<int64_t> latency_ns,
                       std::optional<double> fee_bps, double initial_cash, int64_t equity_interval_ns,
                       std::optional<int64_t> entry_latency_ns, int64_t response_latency_ns,
                       int64_t feed_latency_ns, double maker_fee_bps,
                       std::optional<double> taker_fee_bps, double fee_per_unit, int queue_model,
                       double queue_power, int slippage_model, double impact_bps, int target_mode,
                       int64_t depth_refill_ns) {
             if (latency_ns && entry_latency_ns && *latency_ns != *entry_latency_ns) {
               throw py::value_error("latency_ns is an alias of entry_latency_ns: give one of them");
             }
             if (fee_bps && taker_fee_bps && *fee_bps != *taker_fee_bps) {
               throw py::value_error("fee_bps is an alias of taker_fee_bps: give one of them");
             }
             auto small = [](const char* name, int v) {
               if (v < -128 || v > 127) {
                 throw py::value_error(std::string(name) + " out of range: " + std::to_string(v));
               }
               return static_cast<int8_t>(v);
             };
             EngineConfig c;
             c.tick_size = tick_size;
             c.lot_size = lot_size;
             c.latency_ns = entry_latency_ns ? *entry_latency_ns : latency_ns.value_or(0);
             c.fee_bps = taker_fee_bps ? *taker_fee_bps : fee_bps.value_or(0.0);
             c.initial_cash = initial_cash;
             c.equity_interval_ns = equity_interval_ns;
             c.response_latency_ns = response_latency_ns;
             c.feed_latency_ns = feed_latency_ns;
             c.maker_fee_bps = maker_fee_bps;
             c.fee_per_unit = fee_per_unit;
             c.queue_model = small("queue_model", queue_model);
             c.queue_power = queue_power;
             c.slippage_model = small("slippage_model", slippage_model);
             c.impact_bps = impact_bps;
             c.target_mode = small("target_mode", target_mode);
             c.depth_refill_ns = depth_refill_ns;
             return PyEngine(Engine(c));
           }),
           py::arg("tick_size"), py::arg("lot_size") = 1.0, py::arg("latency_ns") = py::none(),
           py::arg("fee_bps") = py::none(), py::arg("initial_cash") = 1'000'000.0,
           py::arg("equity_interval_ns") = 1'000'000'000, py::kw_only(),
           py::arg("entry_latency_ns") = py::none(), py::arg("response_latency_ns") = 0,
           py::arg("feed_latency_ns") = 0, py::arg("maker_fee_bps") = 0.0,
           py::arg("taker_fee_bps") = py::none(), py::arg("fee_per_unit") = 0.0,
           py::arg("queue_model") = 0, py::arg("queue_power") = 2.0, py::arg("slippage_model") = 0,
           py::arg("impact_bps") = 0.0, py::arg("target_mode") = 0,
           py::arg("depth_refill_ns") = -1)
      .def("process", &engine_process, py::arg("ts"), py::arg("bid"), py::arg("ask"),
           py::arg("bid_size"), py::arg("ask_size"), py::arg("target") = py::none(), py::kw_only(),
           py::arg("last") = py::none(), py::arg("last_size") = py::none(),
           py::arg("orders") = py::none(), py::arg("depth") = py::none(), py::arg("details") = false)
      .def("process_batch", &engine_process_batch, py::arg("batch"), py::arg("target") = py::none())
      .def(
          "finish",
          [](PyEngine& s, bool details) {
            Outputs out;
            s.get().finish(out);
            return to_dict(out, details);
          },
          py::kw_only(), py::arg("details") = false)
      .def("get_state", [](PyEngine& s) { return py::bytes(EngineState::save(s.get())); })
      .def_static(
          "from_state",
          [](const py::object& state) {
            // any bytes-like object (bytes, bytearray, memoryview)
            const py::bytes b = py::isinstance<py::bytes>(state)
                                    ? py::reinterpret_borrow<py::bytes>(state)
                                    : py::bytes(py::module_::import("builtins").attr("bytes")(state));
            return PyEngine(EngineState::load(std::string(b)));
          },
          py::arg("state"))
      .def(py::pickle([](PyEngine& s) { return py::make_tuple(py::bytes(EngineState::save(s.get()))); },
                      [](const py::tuple& t) {
                        if (t.size() != 1) throw std::invalid_argument("bad Engine pickle");
                        return PyEngine(EngineState::load(t[0].cast<std::string>()));
                      }))
      .def_property_readonly("position", [](PyEngine& s) { return s.get().position(); })
      .def_property_readonly("cash", [](PyEngine& s) { return s.get().cash(); })
      .def_property_readonly("fees", [](PyEngine& s) { return s.get().fees(); })
      .def_property_readonly("equity", [](PyEngine& s) { return s.get().equity(); })
      .def_property_readonly("mark", [](PyEngine& s) { return s.get().mark(); })
      .def_property_readonly("ticks_processed", [](PyEngine& s) { return s.get().ticks_processed(); })
      .def_property_readonly("quotes_ignored", [](PyEngine& s) { return s.get().quotes_ignored(); })
      .def_property_readonly("open_qty",
                             [](PyEngine& s) {
                               int64_t lots = 0;
                               for (const SimOrder& o : s.get().open_orders()) {
                                 lots += o.side * o.open();
                               }
                               return Grid(s.eng.config().lot_size).to_float(lots);
                             })
      .def_property_readonly("tick_size", [](PyEngine& s) { return s.get().config().tick_size; })
      .def_property_readonly("lot_size", [](PyEngine& s) { return s.get().config().lot_size; })
      .def_property_readonly("latency_ns", [](PyEngine& s) { return s.get().config().latency_ns; })
      .def_property_readonly("fee_bps", [](PyEngine& s) { return s.get().config().fee_bps; })
      .def_property_readonly("entry_latency_ns", [](PyEngine& s) { return s.get().config().latency_ns; })
      .def_property_readonly("response_latency_ns",
                             [](PyEngine& s) { return s.get().config().response_latency_ns; })
      .def_property_readonly("feed_latency_ns", [](PyEngine& s) { return s.get().config().feed_latency_ns; })
      .def_property_readonly("maker_fee_bps", [](PyEngine& s) { return s.get().config().maker_fee_bps; })
      .def_property_readonly("taker_fee_bps", [](PyEngine& s) { return s.get().config().fee_bps; })
      .def_property_readonly("fee_per_unit", [](PyEngine& s) { return s.get().config().fee_per_unit; })
      .def_property_readonly("queue_model", [](PyEngine& s) { return int(s.get().config().queue_model); })
      .def_property_readonly("queue_power", [](PyEngine& s) { return s.get().config().queue_power; })
      .def_property_readonly("slippage_model",
                             [](PyEngine& s) { return int(s.get().config().slippage_model); })
      .def_property_readonly("impact_bps", [](PyEngine& s) { return s.get().config().impact_bps; })
      .def_property_readonly("target_mode", [](PyEngine& s) { return s.get().config().target_mode; })
      .def_property_readonly("depth_refill_ns",
                             [](PyEngine& s) { return s.get().config().depth_refill_ns; })
      .def_property_readonly("max_order_id", [](PyEngine& s) { return s.get().max_order_id(); })
      .def_property_readonly("has_depth", [](PyEngine& s) { return s.get().has_depth(); })
      .def_property_readonly("depth_hidden_ticks", [](PyEngine& s) { return s.get().depth_hidden_ticks(); })
      .def_property_readonly("depth_bound",
                             [](PyEngine& s) -> py::object {
                               const DepthBook& d = s.get().depth();
                               if (!d.bounded) return py::none();
                               const Grid g(s.get().config().tick_size);
                               return py::make_tuple(g.to_float(d.bound_bid), g.to_float(d.bound_ask));
                             })
      .def(
          "depth_levels",
          [](PyEngine& s, int side) {
            if (side != kBuy && side != kSell) {
              throw py::value_error("side must be +1 (bids) or -1 (asks), got " + std::to_string(side));
            }
            const auto& m = s.get().depth().levels(side);
            py::array_t<int64_t> a({static_cast<py::ssize_t>(m.size()), py::ssize_t(3)});
            auto w = a.mutable_unchecked<2>();
            py::ssize_t k = 0;
            for (const auto& [key, lv] : m) {
              w(k, 0) = DepthBook::price(side, key);
              w(k, 1) = lv.qty;
              w(k, 2) = lv.used;
              ++k;
            }
            return a;
          },
          py::arg("side"))
      .def_property_readonly("open_orders",
                             [](PyEngine& s) {
                               const auto& v = s.get().open_orders();
                               py::list ids;
                               for (const SimOrder& o : v) ids.append(o.id);
                               return ids;
                             })
      .def_property_readonly("initial_cash",
                             [](PyEngine& s) { return s.get().config().initial_cash; })
      .def_property_readonly("equity_interval_ns",
                             [](PyEngine& s) { return s.get().config().equity_interval_ns; })
      .def("__repr__", [](PyEngine& s) {
        const Engine& e = s.get();
        return "<Engine ticks=" + std::to_string(e.ticks_processed()) +
               " position=" + repr_float(e.position()) + " cash=" + repr_float(e.cash()) + ">";
      });
}
