// pybind11 bindings of native/kernels.hpp (tick validation, the templates'
// position state machine, the round trips of fills), used by
// ticktape.compute.quality, ticktape.strategy.templates and ticktape.compute.accounting.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels.hpp"
#include "metrics.hpp"

namespace py = pybind11;
using namespace ticktape::kern;
using ticktape::metrics::GridReturns;
using ticktape::metrics::PerfCore;

namespace {

template <class T>
Col<T> field(const py::array& rec, const char* name) {
  py::array f = rec[py::str(name)];
  if (f.ndim() != 1 || f.itemsize() != static_cast<py::ssize_t>(sizeof(T))) {
    throw std::invalid_argument(std::string("field ") + name + " has the wrong type");
  }
  return Col<T>{static_cast<const char*>(f.data()), f.strides(0)};
}

using Flags = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;
// An array of T as it is (strided, possibly unaligned: a field of a
// structured array), converted only if its dtype is not T.
template <class T>
using In = py::array_t<T, py::array::forcecast>;
template <class T>
Col<T> column(const In<T>& a, const char* name) {
  if (a.ndim() != 1) throw std::invalid_argument(std::string(name) + " must be one-dimensional");
  return Col<T>{reinterpret_cast<const char*>(a.data()), a.strides(0)};
}

// A numpy array that owns the vector's memory (no copy).
template <class T>
py::array_t<T> owned(std::vector<T>&& v) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule free_it(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(static_cast<py::ssize_t>(heap->size()), heap->data(), free_it);
}

}  // namespace

void bind_kernels(py::module_& m) {
  m.def(
      "validate_ticks",
      [](const py::array& ticks, py::object last_ts) {
        if (ticks.ndim() != 1) throw std::invalid_argument("ticks must be one-dimensional");
        const int64_t n = ticks.shape(0);
        auto ts = field<int64_t>(ticks, "ts");
        auto bid = field<double>(ticks, "bid"), ask = field<double>(ticks, "ask");
        auto bs = field<double>(ticks, "bid_size"), as = field<double>(ticks, "ask_size");
        auto last = field<double>(ticks, "last"), ls = field<double>(ticks, "last_size");
        bool has = !last_ts.is_none();
        int64_t lt = has ? last_ts.cast<int64_t>() : 0;
        py::array_t<bool> ok(static_cast<py::ssize_t>(n));
        int64_t counts[4] = {0, 0, 0, 0};
        int64_t to_fix = 0;
        {
          py::gil_scoped_release release;
          to_fix = validate(n, ts, bid, ask, bs, as, last, ls, has, lt,
                            reinterpret_cast<uint8_t*>(ok.mutable_data()), counts);
        }
        py::object out_ts = has ? py::object(py::int_(lt)) : py::object(py::none());
        return py::make_tuple(ok, py::make_tuple(counts[0], counts[1], counts[2], counts[3]), out_ts, to_fix);
      },
      py::arg("ticks"), py::arg("last_ts"),
      "One pass of ticktape.compute.quality's rules over a TICK_DTYPE array: (ok mask, counts by reason, last_ts,\n"
      "accepted ticks without a usable quote or quote size).");
  m.def(
      "positions",
      [](const Flags& el, const Flags& xl, const Flags& es, const Flags& xs, double dir) {
        const py::ssize_t n = el.size();
        if (xl.size() != n || es.size() != n || xs.size() != n) {
          throw std::invalid_argument("event columns must have the same length");
        }
        py::array_t<double> out(n);
        positions(n, el.data(), xl.data(), es.data(), xs.data(), dir, out.mutable_data());
        return py::make_tuple(out, dir);
      },
      py::arg("enter_long"), py::arg("exit_long"), py::arg("enter_short"), py::arg("exit_short"), py::arg("dir"),
      "Position direction per tick from entry/exit events (ticktape.strategy.templates.positions): (out, carried dir).");
  m.def(
      "round_trips",
      [](const In<int64_t>& ts, const In<int8_t>& side, const In<double>& price, const In<double>& qty,
         const In<double>& fee, double qty_rtol, int64_t open_mark, const py::object& carry) {
        const py::ssize_t n = ts.size();
        if (side.size() != n || price.size() != n || qty.size() != n || fee.size() != n) {
          throw std::invalid_argument("fill columns must have the same length");
        }
        auto t = column(ts, "ts");
        auto sd = column(side, "side");
        auto px = column(price, "price"), q = column(qty, "qty"), f = column(fee, "fee");
        RoundTrips r;
        const bool carried = !carry.is_none();
        if (carried) {  // the open trade and state an earlier pass ended with: its row 0
          const auto c = carry.cast<py::dict>();
          r.pos = c["pos"].cast<double>();
          r.avg = c["avg"].cast<double>();
          for (auto [name, col] : {std::pair{"entry_ts", &r.entry_ts}, {"side", &r.side}, {"n_fills", &r.n_fills}}) {
            col->push_back(c[name].cast<int64_t>());
          }
          r.exit_ts.push_back(open_mark);
          for (auto [name, col] : {std::pair{"size", &r.size}, {"entry_notional", &r.entry_notional},
                                   {"exit_qty", &r.exit_qty}, {"exit_notional", &r.exit_notional},
                                   {"pnl", &r.pnl}, {"fees", &r.fees}, {"notional", &r.notional},
                                   {"lo", &r.lo}, {"hi", &r.hi}}) {
            col->push_back(c[name].cast<double>());
          }
        }
        {
          py::gil_scoped_release release;
          r.run(n, t, sd, px, q, f, qty_rtol, open_mark, carried);
        }
        py::dict out;
        out["entry_ts"] = owned(std::move(r.entry_ts));
        out["exit_ts"] = owned(std::move(r.exit_ts));
        out["side"] = owned(std::move(r.side));
        out["n_fills"] = owned(std::move(r.n_fills));
        out["size"] = owned(std::move(r.size));
        out["entry_notional"] = owned(std::move(r.entry_notional));
        out["exit_qty"] = owned(std::move(r.exit_qty));
        out["exit_notional"] = owned(std::move(r.exit_notional));
        out["pnl"] = owned(std::move(r.pnl));
        out["fees"] = owned(std::move(r.fees));
        out["notional"] = owned(std::move(r.notional));
        out["lo"] = owned(std::move(r.lo));
        out["hi"] = owned(std::move(r.hi));
        out["st_trade"] = owned(std::move(r.st_trade));
        out["st_real"] = owned(std::move(r.st_real));
        out["st_pos"] = owned(std::move(r.st_pos));
        out["st_avg"] = owned(std::move(r.st_avg));
        out["pos"] = r.pos;
        out["avg"] = r.avg;
        return out;
      },
      py::arg("ts"), py::arg("side"), py::arg("price"), py::arg("qty"), py::arg("fee"), py::arg("qty_rtol"),
      py::arg("open_mark"), py::arg("carry") = py::none(),
      "The trades of valid fills in event order under average-cost accounting (ticktape.compute.accounting.RoundTrips):\n"
      "a dict of the per-trade columns, the state after each fill (st_*) and the final pos / avg.\n"
      "carry: None, or the open trade (entry_ts, side, n_fills, size, entry_notional, exit_qty, exit_notional,\n"
      "pnl, fees, notional, lo, hi) with pos and avg of an earlier pass, continued as trade 0.");
  py::class_<PerfCore>(m, "PerfCore",
                       "The sums of ticktape.compute.metrics.PerformanceStream, folded sample by sample (native/metrics.hpp).")
      .def(py::init([](const std::vector<std::pair<int64_t, std::vector<double>>>& grids) {
             PerfCore c;
             for (const auto& [width, rf] : grids) c.grids.emplace_back(width, rf);
             return c;
           }),
           py::arg("grids"), "grids: (width ns, [per-period risk-free rate of each candidate periods-per-year]).")
      .def(
          "add",
          [](PerfCore& c, const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& ts,
             const py::array_t<double, py::array::c_style | py::array::forcecast>& eq, const py::object& gross) {
            const py::ssize_t n = ts.size();
            if (eq.size() != n) throw std::invalid_argument("ts and equity must have one length");
            py::array_t<double, py::array::c_style | py::array::forcecast> g;
            if (!gross.is_none()) {
              g = gross.cast<py::array_t<double, py::array::c_style | py::array::forcecast>>();
              if (g.size() != n) throw std::invalid_argument("ts and gross must have one length");
            }
            const double* gp = gross.is_none() ? nullptr : g.data();
            py::gil_scoped_release release;
            c.add(ts.data(), eq.data(), gp, static_cast<size_t>(n));
          },
          py::arg("ts"), py::arg("equity"), py::arg("gross") = py::none(),
          "The next samples (time strictly increasing across calls: the caller checks).")
      .def("finish", &PerfCore::finish, "The last sample closes each grid's last bucket.")
      .def(
          "grid",
          [](const PerfCore& c, size_t k) {
            const GridReturns& g = c.grids.at(k);
            py::dict d;
            d["width"] = g.width;
            d["n"] = g.n;
            d["mean"] = g.mean;
            d["m2"] = g.m2;
            d["abs_r"] = g.abs_r;
            d["nonpositive"] = g.nonpositive;
            d["closes"] = g.closes;
            d["weekend"] = g.weekend;
            d["adjacent"] = g.adjacent;
            d["down"] = g.down;
            return d;
          },
          py::arg("k"), "Grid k's sums: width, n, mean, m2, abs_r, nonpositive, closes, weekend, adjacent, down.")
      .def_readonly("samples", &PerfCore::samples)
      .def_readonly("first_ts", &PerfCore::first_ts)
      .def_readonly("last_ts", &PerfCore::last_ts)
      .def_readonly("e0", &PerfCore::e0)
      .def_readonly("e1", &PerfCore::e1)
      .def_readonly("eq_sum", &PerfCore::eq_sum)
      .def_readonly("dd_abs", &PerfCore::dd_abs)
      .def_readonly("dd_pct", &PerfCore::dd_pct)
      .def_readonly("under", &PerfCore::under)
      .def_readonly("spell_from", &PerfCore::spell_from)
      .def_readonly("longest", &PerfCore::longest)
      .def_readonly("held_ns", &PerfCore::held_ns);
}
