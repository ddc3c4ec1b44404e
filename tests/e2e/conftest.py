"""Helpers for end-to-end tests: store ticks, submit a run to a real worker,
wait for it, and read what the sink stored."""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer

from ticktape import store
from ticktape.backtest.run import run_symbol
from ticktape.data.synth import RandomWalkConfig, generate_walk
from ticktape.model.spec import RunSpec
from ticktape.pipeline.topics import APP_ID, topic_partitions
from ticktape.pipeline.worker import WorkerProcess


class Pipeline:
    def __init__(self, runtime, db_url: str, home) -> None:
        self.runtime = runtime
        self.db_url = db_url
        self.home = home
        runtime.ensure_topics(topic_partitions())
        self.data: dict[str, np.ndarray] = {}

    def _run(self, coro_fn, *args):
        async def go():
            conn = await store.connect(self.db_url)
            try:
                return await coro_fn(conn, *args)
            finally:
                await conn.close()

        return asyncio.run(go())

    def symbols(
        self, n: int, ticks: int, mutate=None, rate_per_s: float = 20.0, start_ns: int | None = None
    ) -> tuple[str, ...]:
        """Generate and store ``n`` fresh symbols of ``ticks`` ticks each.

        ``mutate(index, ticks)`` may damage a symbol's ticks before they are stored.
        """
        tag = uuid.uuid4().hex[:6]
        names = tuple(f"E2E{tag}{chr(65 + i)}" for i in range(n))
        for i, s in enumerate(names):
            self.data[s] = np.concatenate(
                list(
                    generate_walk(
                        RandomWalkConfig(
                            symbol=s,
                            n_ticks=ticks,
                            seed=i,
                            rate_per_s=rate_per_s,
                            **({"start_ns": start_ns} if start_ns is not None else {}),
                        )
                    )
                )
            )
            if mutate:
                mutate(i, self.data[s])

        async def write(conn):
            for s in names:
                await store.write_ticks(conn, s, self.data[s], 0)

        self._run(write)
        return names

    def worker(self, name: str = "worker", loglevel: str = "warning", stages: str = "all") -> WorkerProcess:
        env = {**self.runtime.env(), "TICKTAPE_DATABASE_URL": self.db_url, "TICKTAPE_HOME": str(self.home)}
        worker = WorkerProcess(env, self.home / f"{name}.log", loglevel=loglevel, stages=stages).start()
        # submit once the worker is in its group: on the embedded broker a run
        # request sent while a new member was joining right after another left
        # was never consumed (test_record_a_paper_session_then_replay_it, alone)
        worker.wait_ready(120)
        return worker

    def create_run(self, spec: RunSpec) -> None:
        """The run's row, pending, as a submitting client writes it."""
        self._run(
            lambda conn: store.create_run(
                conn,
                spec.run_id,
                spec.strategy,
                {"engine": {"initial_cash": 1e6}},
                spec.params,
                list(spec.symbols),
                None,
                None,
            )
        )

    def submit(self, spec: RunSpec) -> None:
        self.create_run(spec)

        async def send():
            producer = AIOKafkaProducer(bootstrap_servers=self.runtime.kafka_url)
            await producer.start()
            try:
                await producer.send_and_wait(f"{APP_ID}.run-requests", spec.to_json().encode())
            finally:
                await producer.stop()

        asyncio.run(send())

    def run_row(self, run_id: str):
        return self._run(lambda conn: conn.fetchrow("SELECT * FROM runs WHERE run_id = $1", run_id))

    def processed(self, run_id: str) -> int:
        return self._run(
            lambda conn: conn.fetchval(
                "SELECT coalesce(sum(ticks_processed + ticks_rejected), 0) FROM run_progress WHERE run_id = $1",
                run_id,
            )
        )

    def wait_status(self, run_id: str, statuses, workers, timeout: float = 120.0):
        deadline = time.monotonic() + timeout
        while True:
            row = self.run_row(run_id)
            if row and row["status"] in statuses:
                return row
            for w in workers:
                assert w.alive(), w.log_tail()
            assert time.monotonic() < deadline, (
                f"run never reached {statuses}; log:\n" + workers[0].log_tail()
            )
            time.sleep(0.1)

    def control(self, run_id: str, action: str) -> str:
        return self._run(lambda conn: store.request_control(conn, run_id, action))

    def wait_done(self, run_id: str, workers, timeout: float = 240.0):
        deadline = time.monotonic() + timeout
        while True:
            row = self.run_row(run_id)
            if row and row["status"] in ("complete", "failed", "cancelled"):
                return row
            for w in workers:
                assert w.alive(), w.log_tail()
            assert time.monotonic() < deadline, "run did not finish; log:\n" + workers[0].log_tail()
            time.sleep(0.25)

    def stored(self, run_id: str, symbol: str, stream: str = "fills") -> np.ndarray:
        return self._run(lambda conn: store.read_results(conn, run_id, symbol, stream))

    def expected(self, spec: RunSpec, symbol: str):
        """What the in-process path (no broker, no DB) produces for ``symbol``."""
        return run_symbol(spec, [self.data[symbol]])

    def assert_same_as_in_process(self, spec: RunSpec) -> int:
        """Stored fills/orders/equity equal the in-process ones; returns total fills."""
        total = 0
        for s in spec.symbols:
            want = self.expected(spec, s)
            for stream in ("fills", "orders", "equity"):
                got = self.stored(spec.run_id, s, stream)
                exp = getattr(want, stream)
                exp = exp[np.lexsort([exp[f] for f in reversed(exp.dtype.names)])]
                got = got[np.lexsort([got[f] for f in reversed(got.dtype.names)])]
                assert got.tobytes() == exp.tobytes(), (
                    f"{s} {stream}: {len(got)} stored vs {len(exp)} expected"
                )
            total += len(want.fills)
        return total


@pytest.fixture
def pipeline(runtime, db_url, tmp_path):
    return Pipeline(runtime, db_url, tmp_path)
