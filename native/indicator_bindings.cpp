// pybind11 bindings of the indicator kernels (native/indicators.hpp), used
// by ticktape.compute.indicators (which validates every input before calling them).
// The recursive kernels are classes whose public fields are the carry state;
// the rolling-window kernels are functions over (history + batch).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "indicators.hpp"

namespace py = pybind11;
using namespace ticktape::ind;

namespace {

using Doubles = py::array_t<double, py::array::c_style | py::array::forcecast>;
using Ints = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

int64_t length(const py::array& a, const char* name) {
  if (a.ndim() != 1) throw std::invalid_argument(std::string(name) + " must be one-dimensional");
  return static_cast<int64_t>(a.shape(0));
}

int64_t same_length(int64_t m, const py::array& a, const char* name) {
  const int64_t k = length(a, name);
  if (k != m)
    throw std::invalid_argument(std::string(name) + " has " + std::to_string(k) + " values, expected " +
                                std::to_string(m));
  return k;
}

void check_window(int64_t len, int64_t g0, int64_t from, int64_t n, int64_t history) {
  if (n < 1) throw std::invalid_argument("n must be >= 1");
  if (g0 < 0 || from < g0 || from > g0 + len || from - g0 < std::min(from, history))
    throw std::invalid_argument("not enough history before the first output position");
}

Doubles empty_like(int64_t m) { return Doubles(static_cast<py::ssize_t>(m)); }

}  // namespace

void bind_indicators(py::module_& m) {
  py::class_<EmaState>(m, "EmaState", "Carry of a TA-Lib-seeded EMA (see native/indicators.hpp).")
      .def(py::init<int64_t>(), py::arg("n"))
      .def_readonly("n", &EmaState::n)
      .def_readwrite("seen", &EmaState::seen)
      .def_readwrite("sum", &EmaState::sum)
      .def_readwrite("value", &EmaState::value)
      .def("update", [](EmaState& s, const Doubles& x) {
        const int64_t k = length(x, "x");
        Doubles out = empty_like(k);
        s.update(x.data(), k, out.mutable_data());
        return out;
      });

  py::class_<RsiState>(m, "RsiState", "Carry of Wilder's RSI with TA-Lib seeding.")
      .def(py::init<int64_t>(), py::arg("n"))
      .def_readonly("n", &RsiState::n)
      .def_readwrite("seen", &RsiState::seen)
      .def_readwrite("prev", &RsiState::prev)
      .def_readwrite("gain", &RsiState::gain)
      .def_readwrite("loss", &RsiState::loss)
      .def("update", [](RsiState& s, const Doubles& x) {
        const int64_t k = length(x, "x");
        Doubles out = empty_like(k);
        s.update(x.data(), k, out.mutable_data());
        return out;
      });

  py::class_<AtrState>(m, "AtrState", "Carry of Wilder's ATR with TA-Lib seeding.")
      .def(py::init<int64_t>(), py::arg("n"))
      .def_readonly("n", &AtrState::n)
      .def_readwrite("seen", &AtrState::seen)
      .def_readwrite("prev_close", &AtrState::prev_close)
      .def_readwrite("sum", &AtrState::sum)
      .def_readwrite("value", &AtrState::value)
      .def("update", [](AtrState& s, const Doubles& high, const Doubles& low, const Doubles& close) {
        const int64_t k = length(high, "high");
        same_length(k, low, "low");
        same_length(k, close, "close");
        Doubles out = empty_like(k);
        s.update(high.data(), low.data(), close.data(), k, out.mutable_data());
        return out;
      });

  py::class_<MacdState>(m, "MacdState", "Carry of MACD (TA-Lib convention).")
      .def(py::init<int64_t, int64_t, int64_t>(), py::arg("fast"), py::arg("slow"), py::arg("signal"))
      .def_readonly("fast", &MacdState::fast)
      .def_readonly("slow", &MacdState::slow)
      .def_readonly("signal", &MacdState::signal)
      .def_readwrite("seen", &MacdState::seen)
      .def_readwrite("fast_sum", &MacdState::fast_sum)
      .def_readwrite("fast_ema", &MacdState::fast_ema)
      .def_readwrite("slow_sum", &MacdState::slow_sum)
      .def_readwrite("slow_ema", &MacdState::slow_ema)
      .def_readwrite("signal_sum", &MacdState::signal_sum)
      .def_readwrite("signal_ema", &MacdState::signal_ema)
      .def("update", [](MacdState& s, const Doubles& x) {
        const int64_t k = length(x, "x");
        Doubles macd = empty_like(k), sig = empty_like(k), hist = empty_like(k);
        s.update(x.data(), k, macd.mutable_data(), sig.mutable_data(), hist.mutable_data());
        return py::make_tuple(macd, sig, hist);
      });

  py::class_<VwapSessionState>(m, "VwapSessionState", "Carry of the session-reset cumulative VWAP.")
      .def(py::init<>())
      .def_readwrite("started", &VwapSessionState::started)
      .def_readwrite("session", &VwapSessionState::session)
      .def_readwrite("pv", &VwapSessionState::pv)
      .def_readwrite("v", &VwapSessionState::v)
      .def("update", [](VwapSessionState& s, const Doubles& price, const Doubles& volume, const Ints& session) {
        const int64_t k = length(price, "price");
        same_length(k, volume, "volume");
        same_length(k, session, "session");
        Doubles out = empty_like(k);
        s.update(price.data(), volume.data(), session.data(), k, out.mutable_data());
        return out;
      });

  // Rolling windows: buf holds global positions g0 .. g0+len-1; the result
  // covers positions from .. g0+len-1.
  auto single = [&m](const char* name, void (*kernel)(const double*, int64_t, int64_t, int64_t, int64_t, double*),
                     int64_t extra_history) {
    m.def(
        name,
        [kernel, extra_history](const Doubles& buf, int64_t g0, int64_t from, int64_t n) {
          const int64_t len = length(buf, "buf");
          check_window(len, g0, from, n, n - 1 + extra_history);
          Doubles out = empty_like(g0 + len - from);
          kernel(buf.data(), len, g0, from, n, out.mutable_data());
          return out;
        },
        py::arg("buf"), py::arg("g0"), py::arg("from_"), py::arg("n"));
  };
  single("sma_window", &sma_window, 0);
  single("wma_window", &wma_window, 0);
  single("zscore_window", &zscore_window, 0);
  single("realized_vol_window", &realized_vol_window, 1);
  single("highest_window", &highest_window, 1);
  single("lowest_window", &lowest_window, 1);

  m.def(
      "bollinger_window",
      [](const Doubles& buf, int64_t g0, int64_t from, int64_t n, double k) {
        const int64_t len = length(buf, "buf");
        check_window(len, g0, from, n, n - 1);
        const int64_t count = g0 + len - from;
        Doubles upper = empty_like(count), middle = empty_like(count), lower = empty_like(count);
        bollinger_window(buf.data(), len, g0, from, n, k, upper.mutable_data(), middle.mutable_data(),
                         lower.mutable_data());
        return py::make_tuple(upper, middle, lower);
      },
      py::arg("buf"), py::arg("g0"), py::arg("from_"), py::arg("n"), py::arg("k"));

  m.def(
      "vwap_window",
      [](const Doubles& price, const Doubles& volume, int64_t g0, int64_t from, int64_t n) {
        const int64_t len = length(price, "price");
        same_length(len, volume, "volume");
        check_window(len, g0, from, n, n - 1);
        Doubles out = empty_like(g0 + len - from);
        vwap_window(price.data(), volume.data(), len, g0, from, n, out.mutable_data());
        return out;
      },
      py::arg("price"), py::arg("volume"), py::arg("g0"), py::arg("from_"), py::arg("n"));
}
