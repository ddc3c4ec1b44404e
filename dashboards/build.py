"""Build: a strategy without code, from a template's form, a rules composer,
a sentence or a spec file; run it in process on stored or uploaded data,
sweep a grid of its parameters; save and load specs.

The template form is generated from the template's Config declaration
(:func:`ticktape.strategy.catalog.params_of`: types, bounds, choices, help),
the composer from the rules vocabulary (:data:`ticktape.strategy.rules.INDICATORS`,
:data:`~ticktape.strategy.rules.OPS`), and every spec is validated by
:func:`ticktape.strategy.catalog.validate_spec` before anything runs: an
out-of-bounds value is one line naming the field.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ticktape.backtest import sweep as sweeps
from ticktape.backtest.run import AUTO, Store, backtest
from ticktape.dashboards import common, queries
from ticktape.errors import SpecError
from ticktape.model.spec import new_run_id
from ticktape.runtime.processes import spawn_child
from ticktape.store import session
from ticktape.strategy import catalog, rules
from ticktape.strategy.fromtext import parse
from ticktape.strategy.params import REQUIRED, Param

MODES = ("template form", "rules composer", "sentence", "spec JSON")
SIDES = (
    ("entry", "enter long"),
    ("exit", "exit long"),
    ("short_entry", "enter short"),
    ("short_exit", "exit short"),
)
OP_WORDS = {
    "crosses_above": "crosses above",
    "crosses_below": "crosses below",
    ">": "above",
    "<": "below",
    ">=": ">=",
    "<=": "<=",
}


def page() -> None:
    st.title("Build a strategy")
    mode = st.radio("from", MODES, horizontal=True, key="b_mode")
    spec = {
        "template form": _template_form,
        "rules composer": _composer,
        "sentence": _sentence,
        "spec JSON": _json,
    }[mode]()
    if spec is None:
        return
    try:
        spec = catalog.validate_spec(spec)
    except SpecError as exc:
        st.error(f"the strategy is not valid: {exc}")
        return
    st.download_button(
        "Save spec (JSON)", json.dumps(spec, indent=2), file_name=f"{spec['strategy']}.json", key="b_save"
    )
    data = _data()
    engine = _engine()
    run_col, sweep_col = st.columns(2)
    with run_col:
        keep = st.checkbox("store the run (then open it in Monitor)", key="b_store")
        go = st.button("Run in process", type="primary", key="b_run")
    with sweep_col:
        _sweep(spec, data, engine)
    _pipeline(spec, data, engine)
    if go:  # (the results take the page's width)
        if data is None:
            st.error("choose the data first: a stored symbol, or upload a file")
        else:
            _run(spec, data, engine, keep)
    if st.session_state.get("b_stored") and st.button("Open the stored run in Monitor", key="b_open"):
        common.open_page("monitor", run=st.session_state["b_stored"])


# ------------------------------------------------------------------ where the spec comes from
def _template_form() -> dict | None:
    names = [n for n in catalog.TEMPLATES if n != "rules"]
    name = st.selectbox("template", names, key="b_template")
    params: dict[str, Any] = {}
    with st.container(border=True):
        st.caption(
            "Each field is declared on the template's Config (`ticktape strategy params " + name + "`)."
        )
        for key, p in catalog.own_params(name).items():
            value = _field(f"b_p_{name}_{key}", key, p)
            if value is not None:
                params[key] = value
        with st.expander("sizing, stops, long only (every template's)"):
            for key, p in catalog.COMMON.items():
                value = _field(f"b_p_{name}_{key}", key, p)
                if value is not None:
                    params[key] = value
    return {"strategy": name, "params": params}


def _field(wkey: str, name: str, p: Param) -> Any:
    """One widget for one declared parameter; the bounds are in its help and
    checked by the declaration (so an out-of-bounds value is refused there, by name)."""
    bounds = p.bounds()
    helptext = p.help + (f" ({bounds})" if bounds else "")
    default = None if p.default is None or p.default is REQUIRED else p.default
    if p.kind == "bool":
        return st.checkbox(name, value=bool(default), help=helptext, key=wkey)
    if p.kind == "choice":
        choices = list(p.choices)
        return st.selectbox(
            name, choices, index=choices.index(default) if default in choices else 0, help=helptext, key=wkey
        )
    if p.kind == "int":
        return st.number_input(
            name,
            value=int(default) if isinstance(default, int | float) else 0,
            step=1,
            help=helptext,
            key=wkey,
        )
    if p.kind == "float":
        return st.number_input(
            name,
            value=float(default) if isinstance(default, int | float) else 0.0,
            format="%g",
            help=helptext,
            key=wkey,
        )
    text = st.text_input(
        name,
        value=""
        if default is None
        else (",".join(default) if isinstance(default, list | tuple) else str(default)),
        help=helptext,
        key=wkey,
    )
    if p.kind == "symbols":
        return [s.strip() for s in text.split(",") if s.strip()] or None
    return text or None


def _value_widgets(key: str, label: str, allow_number: bool) -> Any:
    kinds = ["indicator", "price"] + (["number"] if allow_number else [])
    cols = st.columns([1.2, 1.2, 1])
    kind = cols[0].selectbox(label, kinds, key=f"{key}_kind")
    if kind == "number":
        return cols[1].number_input("value", value=0.0, format="%g", key=f"{key}_num")
    if kind == "price":
        return {"price": cols[1].selectbox("field", rules.PRICE_FIELDS, key=f"{key}_price")}
    ind = cols[1].selectbox("indicator", list(rules.INDICATORS), key=f"{key}_ind")
    node: dict[str, Any] = {"ind": ind}
    if "n" in rules.INDICATORS[ind]:
        default = rules.INDICATORS[ind]["n"].default
        node["n"] = int(
            cols[2].number_input(
                "n", value=int(default) if isinstance(default, int) else 20, step=1, key=f"{key}_n"
            )
        )
    return node


def _composer() -> dict | None:
    """Entry/exit/short conditions as rows joined by AND/OR, with stops and sizing."""
    params: dict[str, Any] = {}
    for side, title in SIDES:
        with st.expander(title, expanded=side in ("entry", "exit")):
            n = st.number_input(
                "conditions",
                min_value=0,
                max_value=4,
                value=1 if side in ("entry", "exit") else 0,
                key=f"b_c_{side}_n",
            )
            join = (
                st.radio("joined by", ["AND", "OR"], horizontal=True, key=f"b_c_{side}_join")
                if n > 1
                else "AND"
            )
            conds = []
            for i in range(int(n)):
                st.markdown(f"condition {i + 1}")
                left = _value_widgets(f"b_c_{side}_{i}_l", "left", allow_number=False)
                op = st.selectbox(
                    "operator",
                    list(rules.OPS),
                    format_func=lambda o: OP_WORDS.get(o, o),
                    key=f"b_c_{side}_{i}_op",
                )
                right = _value_widgets(f"b_c_{side}_{i}_r", "right", allow_number=True)
                conds.append({"op": op, "left": left, "right": right})
            if conds:
                params[side] = conds[0] if len(conds) == 1 else {("all" if join == "AND" else "any"): conds}
    cols = st.columns(4)
    params["stop_loss"] = cols[0].number_input(
        "stop loss (fraction, 0 = none)", value=0.0, format="%g", key="b_c_sl"
    )
    params["take_profit"] = cols[1].number_input(
        "take profit (fraction, 0 = none)", value=0.0, format="%g", key="b_c_tp"
    )
    params["sizing"] = cols[2].selectbox("sizing", ["fixed", "equity"], key="b_c_sizing")
    params["size"] = cols[3].number_input("size (units)", value=100.0, format="%g", key="b_c_size")
    spec = {"strategy": "rules", "params": params}
    _show_rows(params)
    return spec


def _sentence() -> dict | None:
    text = st.text_input(
        "describe the strategy",
        placeholder="buy when the 10 period moving average crosses above the 50 and sell when RSI is above 70",
        key="b_text",
    )
    if st.button("Read the sentence", key="b_read"):
        try:
            st.session_state["b_spec_text"] = json.dumps(parse(text), indent=2)
        except (ValueError, SpecError) as exc:  # CouldNotUnderstand is a ValueError
            st.session_state.pop("b_spec_text", None)
            st.error(f"could not read the sentence: {common.one_line(exc)}")
            return None
    if "b_spec_text" not in st.session_state:
        st.info("Type a sentence and press “Read the sentence”; the spec it gives appears here to edit.")
        return None
    return _edit_json("what it understood (edit the spec if you like)")


def _json() -> dict | None:
    up = st.file_uploader(
        "load a spec (JSON, as saved here or by `ticktape strategy from-text`)", type=["json"], key="b_load"
    )
    if up is not None:
        st.session_state["b_spec_text"] = up.getvalue().decode("utf-8", "replace")
    st.session_state.setdefault(
        "b_spec_text", json.dumps({"strategy": "sma_crossover", "params": {"fast": 10, "slow": 50}}, indent=2)
    )
    return _edit_json("spec")


def _edit_json(title: str) -> dict | None:
    text = st.text_area(title, key="b_spec_text", height=260)
    try:
        spec = json.loads(text)
    except ValueError as exc:
        st.error(f"the spec is not valid JSON: {exc}")
        return None
    if isinstance(spec, dict) and spec.get("strategy") == "rules":
        _show_rows(spec.get("params") or {})
    return spec


def _show_rows(params: dict) -> None:
    """The conditions as rows a person reads."""
    rows = [{"when": title, "condition": _say(params[side])} for side, title in SIDES if params.get(side)]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key=None)


def _say(node: Any) -> str:
    if isinstance(node, dict) and ("all" in node or "any" in node):
        word = " AND " if "all" in node else " OR "
        parts: list[Any] = node["all"] if "all" in node else node["any"]
        return word.join(f"({_say(c)})" for c in parts)
    if isinstance(node, dict) and "not" in node:
        return f"NOT ({_say(node['not'])})"
    if isinstance(node, dict) and "op" in node:
        return f"{_say(node['left'])} {OP_WORDS.get(node['op'], node['op'])} {_say(node['right'])}"
    if isinstance(node, dict) and "ind" in node:
        args = ", ".join(f"{k}={v}" for k, v in node.items() if k not in ("ind", "source"))
        return f"{node['ind']}({args})"
    if isinstance(node, dict) and "price" in node:
        return node["price"]
    return str(node)


# ------------------------------------------------------------------ data and execution settings
def _data() -> Any:
    st.subheader("Data")
    where = st.radio("ticks from", ["stored symbol", "upload a file"], horizontal=True, key="b_where")
    if where == "upload a file":
        up = st.file_uploader("CSV or Parquet of ticks (or OHLC bars)", type=["csv", "parquet"], key="b_file")
        if up is None:
            return None
        path = Path(tempfile.mkdtemp(prefix="ticktape-build-")) / up.name
        path.write_bytes(up.getvalue())
        return path
    dsn = common.dsn()
    spans = queries.symbol_spans(dsn)
    if spans.empty:
        st.info("No ticks stored: upload a file, or import one on the Data page.")
        return None
    symbol = st.selectbox("symbol", spans["symbol"].tolist(), key="b_symbol")
    span = spans.set_index("symbol").loc[symbol]
    lo = pd.Timestamp(span["first"]).tz_convert(None)
    hi = pd.Timestamp(span["last"]).tz_convert(None)
    if hi > lo:
        a, b = st.slider(
            "time range (UTC)",
            min_value=lo.to_pydatetime(),
            max_value=hi.to_pydatetime(),
            value=(lo.to_pydatetime(), hi.to_pydatetime()),
            step=timedelta(seconds=1),
            key="b_range",
            format="MM-DD HH:mm",
        )
        return Store(symbol, int(pd.Timestamp(a).value), int(pd.Timestamp(b).value), dsn=dsn)
    return Store(symbol, dsn=dsn)


def _engine() -> dict[str, Any]:
    st.subheader("Execution")
    cols = st.columns(5)
    return {
        "initial_cash": cols[0].number_input("initial cash", value=1_000_000.0, format="%g", key="b_cash"),
        "fee_bps": cols[1].number_input("fee (bps)", value=0.0, format="%g", key="b_fee"),
        "latency_ns": int(cols[2].number_input("latency (ms)", value=0.0, format="%g", key="b_lat") * 1e6),
        "tick_size": cols[3].text_input("tick size", value="auto", key="b_tick"),
        "lot_size": cols[4].text_input("lot size", value="auto", key="b_lot"),
    }


def _engine_args(engine: dict[str, Any]) -> dict[str, Any]:
    out = dict(engine)
    for key in ("tick_size", "lot_size"):
        text = str(out[key]).strip()
        if text != "auto":
            try:
                out[key] = float(text)
            except ValueError:
                raise SpecError(f"engine.{key}: expected a number or auto, got {text!r}") from None
    return out


def _run(spec: dict, data: Any, engine: dict[str, Any], keep: bool) -> None:
    with st.spinner("running in process"):
        res = (
            sweeps.sweep(
                data, spec["strategy"], [{}], spec["params"], engine=_engine_args(engine), keep_top=1
            )
            if keep
            else None
        )
        result = (
            res.detail[0]  # (the one set, kept in full detail: a single run)
            if res is not None
            else backtest(data, spec["strategy"], spec["params"], **_engine_args(engine))
        )
    rejects = result.extra.get("import_rejects") or {}
    if rejects:
        st.warning("rows rejected from the data: " + ", ".join(f"{k}: {v:,}" for k, v in rejects.items()))
    st.success(f"{len(result.fills):,} fills, {result.metrics.get('n_trades', 0):,.0f} trades")
    common.metric_cards({"final_equity": result.final_equity, **result.metrics})
    eq = result.equity
    if not eq.empty:
        fig = go.Figure(go.Scatter(x=eq["ts"], y=eq["equity"], name="equity"))
        fig.update_layout(title="equity", height=320)
        st.plotly_chart(fig, key="b_equity")
    if res is not None:
        name = data.symbol if isinstance(data, Store) else str(data)
        ids = session.run(lambda conn: sweeps.store_sweep(conn, res, name), dsn=common.dsn(), migrate=False)
        st.session_state["b_stored"] = ids[0]


def _sweep(spec: dict, data: Any, engine: dict[str, Any]) -> None:
    """A grid of two parameters, stored as a sweep (opens on the Sweeps page)."""
    with st.expander("sweep a grid of parameters"):
        grid_text = st.text_input(
            "grid (NAME=V1,V2,... separated by spaces)", value="fast=5,10,20 slow=50,100", key="b_grid"
        )
        if st.button("Run the sweep", key="b_sweep"):
            if data is None:
                st.error("choose the data first: a stored symbol, or upload a file")
                return
            space = sweeps.parse_grid(grid_text.split())
            sets = sweeps.grid(space)
            with st.spinner(f"{len(sets)} parameter sets"):
                res = sweeps.sweep(
                    data,
                    spec["strategy"],
                    sets,
                    spec["params"],
                    engine=_engine_args(engine),
                    keep_top=min(len(sets), 10),
                )
                name = data.symbol if isinstance(data, Store) else str(data)
                session.run(lambda conn: sweeps.store_sweep(conn, res, name), dsn=common.dsn(), migrate=False)
            st.success(f"sweep {res.sweep_id[:8]}: {len(sets)} runs stored")
            common.open_page("sweeps", sweep=res.sweep_id)


def _pipeline(spec: dict, data: Any, engine: dict[str, Any]) -> None:
    """Submit the spec over the pipeline (`ticktape run SPEC --speed K`, a
    child of the app that dies with it) on the stored symbol's range, and
    open its run in Monitor to watch it live."""
    with st.expander("run over the pipeline (watch it live in Monitor)"):
        if not isinstance(data, Store):
            st.info("The pipeline replays stored ticks: choose a stored symbol above.")
            return
        speed = st.selectbox("speed (event time)", ["max", "1", "10", "100", "1000"], index=2, key="b_speed")
        if not st.button("Start the replay", key="b_pipeline"):
            return
        run_id = new_run_id()
        eng = {k: v for k, v in _engine_args(engine).items() if v != AUTO}
        run_spec = {
            "strategy": spec["strategy"],
            "params": spec["params"],
            "symbols": [data.symbol],
            "engine": eng,
            "start_ns": data.start_ns,
            "end_ns": data.end_ns,
            "run_id": run_id,
        }
        folder = Path(tempfile.mkdtemp(prefix="ticktape-replay-"))
        (folder / "spec.json").write_text(json.dumps(run_spec))
        with open(folder / "run.log", "wb") as log:
            proc = start_replay([str(TICKTAPE), "run", str(folder / "spec.json"), "--speed", speed], log)
        dsn, deadline = common.dsn(), time.monotonic() + START_S
        with st.spinner("starting the replay (its broker and worker)"):
            while queries.run_row(dsn, run_id) is None:  # (Monitor opens on a run that exists)
                if proc.poll() is not None or time.monotonic() > deadline:
                    lines = (folder / "run.log").read_text(errors="replace").strip().splitlines()
                    why = lines[-1] if lines else f"exit code {proc.poll()}"
                    st.error(f"the replay did not start: {why} (log: {folder / 'run.log'})")
                    return
                time.sleep(0.5)
        common.open_page("monitor", run=run_id)


#: The installed command the app starts replays with.
TICKTAPE = Path(sys.executable).with_name("ticktape")
#: Seconds a started replay may take to create its run.
START_S = 120.0


def start_replay(argv: list[str], log: Any) -> subprocess.Popen:
    """Start a replay command as the app's child (it dies with the app)."""
    return spawn_child(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
