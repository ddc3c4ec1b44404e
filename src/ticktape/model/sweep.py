"""The messages of a pipeline sweep: its request, and the work of one group of sets.

A pipeline sweep (docs/sweeps.md, "Over the pipeline") is one run per
parameter set, grouped by ``runs.sweep_id``, whose data is replayed once:

* :class:`SweepRequest`, on the run-requests topic (a JSON object with a
  ``"sweep"`` member, which no run spec has): the base spec (strategy,
  symbols, source, engine...), every set with its run id, and into how many
  groups the sets are cut;
* :class:`SweepGroup`, on the sweep-groups topic, one per group, sent by the
  replay before the ticks: the group's sets and where in the sweep-ticks
  topic each symbol's batches start. Its partition is the group's number
  (modulo the partitions), so the groups spread over the workers.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass
from typing import Any

from ticktape.errors import SpecError
from ticktape.model.spec import RunSpec


@dataclass(frozen=True)
class SweepSet:
    """One parameter set of a sweep: its index in the grid, its run and its parameters."""

    index: int
    run_id: str
    params: dict[str, Any]


def _sets(doc: Any) -> tuple[SweepSet, ...]:
    if not isinstance(doc, list) or not doc:
        raise SpecError("sweep.sets: must be a non-empty list of [index, run_id, params]")
    out = []
    for k, item in enumerate(doc):
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[2], dict)):
            raise SpecError(f"sweep.sets.{k}: must be [index, run_id, params], got {item!r:.60}")
        out.append(SweepSet(int(item[0]), str(item[1]), dict(item[2])))
    return tuple(out)


def split(n: int, groups: int) -> list[range]:
    """``n`` items in ``min(groups, n)`` consecutive groups whose sizes differ by at most one.

    Examples
    --------
    >>> split(8, 3)
    [range(0, 2), range(2, 5), range(5, 8)]
    """
    k = max(1, min(groups, n))
    cuts = [n * g // k for g in range(k + 1)]
    return [range(a, b) for a, b in itertools.pairwise(cuts)]


@dataclass(frozen=True)
class SweepRequest:
    """A pipeline sweep: ``spec`` (its ``run_id`` the sweep id) with each of
    ``sets``, the sets cut into ``groups`` groups."""

    spec: RunSpec
    sets: tuple[SweepSet, ...]
    groups: int

    def __post_init__(self) -> None:
        if not self.sets:
            raise SpecError("sweep.sets: a sweep needs at least one parameter set")
        if not (isinstance(self.groups, int) and self.groups >= 1):
            raise SpecError(f"sweep.groups: must be an integer >= 1, got {self.groups!r}")

    @property
    def sweep_id(self) -> str:
        return self.spec.run_id

    def group(self, g: int) -> tuple[SweepSet, ...]:
        """The sets of group ``g`` (consecutive sets, :func:`split`)."""
        return tuple(self.sets[i] for i in split(len(self.sets), self.groups)[g])

    @property
    def n_groups(self) -> int:
        return len(split(len(self.sets), self.groups))

    def set_spec(self, s: SweepSet) -> RunSpec:
        """The run spec of one set: the base spec with its parameters and run id."""
        return dataclasses.replace(self.spec, params={**self.spec.params, **s.params}, run_id=s.run_id)

    def to_json(self) -> str:
        sets = [[s.index, s.run_id, s.params] for s in self.sets]
        return json.dumps(
            {"sweep": {"groups": self.groups, "sets": sets}, "spec": json.loads(self.spec.to_json())}
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SweepRequest:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise SpecError(f"sweep request: not valid JSON ({exc})") from None
        if not (isinstance(doc, dict) and isinstance(doc.get("sweep"), dict)):
            raise SpecError("sweep request: expected an object with 'sweep' and 'spec'")
        return cls(
            RunSpec.from_dict(doc.get("spec") or {}),
            _sets(doc["sweep"].get("sets")),
            doc["sweep"].get("groups"),
        )


def is_sweep_request(value: bytes | str) -> bool:
    """Whether a run request is a sweep's (a JSON object with a ``"sweep"`` member)."""
    try:
        doc = json.loads(value)
    except ValueError:
        return False
    return isinstance(doc, dict) and "sweep" in doc


@dataclass(frozen=True)
class SweepGroup:
    """One group of a sweep's sets, as a worker's hot path takes it: the base
    ``spec`` (run id = the sweep id), the group's ``sets``, and per symbol
    ``(partition, offset)`` of the sweep-ticks topic where its batches start."""

    spec: RunSpec
    group: int
    sets: tuple[SweepSet, ...]
    starts: dict[str, tuple[int, int]]

    @property
    def sweep_id(self) -> str:
        return self.spec.run_id

    @property
    def key(self) -> str:
        return f"{self.sweep_id}|{self.group}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "group": self.group,
                "sets": [[s.index, s.run_id, s.params] for s in self.sets],
                "starts": {k: list(v) for k, v in self.starts.items()},
                "spec": json.loads(self.spec.to_json()),
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SweepGroup:
        try:
            doc = json.loads(text)
            starts = {str(k): (int(v[0]), int(v[1])) for k, v in doc["starts"].items()}
            return cls(RunSpec.from_dict(doc["spec"]), int(doc["group"]), _sets(doc["sets"]), starts)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise SpecError(f"sweep group: malformed ({exc!r})") from None


def ticks_key(sweep_id: str, symbol: str) -> str:
    """The key of a sweep's tick batches of ``symbol`` on the sweep-ticks topic."""
    return f"{sweep_id}|{symbol}"
