"""Strategy parameters, declared once on their Config field.

A template's parameter is declared where its config declares the field, as
NautilusTrader declares ``PositiveInt`` fields on a frozen config::

    @dataclass(frozen=True, kw_only=True)
    class BreakoutConfig(Common):
        n: int = window(20, help="entry channel: rows of the n-period high / low")

The field's annotation gives the type; :func:`param` (or :func:`window`)
gives the default, the bounds, the choices and the help. Rules between
fields (``slow > fast``) are the config's :meth:`Params.check`. Everything
else is derived from these declarations: the validation and coercion of a
spec (:func:`load`, used by ``ticktape.strategy.build``,
``validate_spec`` and ``check_run`` alike), the normalized spec
(:func:`to_dict`), ``ticktape strategy params NAME``, the ``--param`` help of
``ticktape backtest`` / ``sweep`` and the vocabulary the LLM prompt of
``ticktape strategy from-text`` lists.

A user's own config may be a plain frozen dataclass: its fields are checked
by their annotations (``int``, ``float``, ``bool``, ``str``), with no bounds.

Errors are :class:`~ticktape.errors.SpecError` whose message starts with
the field's path in a spec (``params.fast: ...``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import numbers
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ticktape.errors import SpecError

__all__ = [
    "MAX_WINDOW",
    "REQUIRED",
    "Param",
    "Params",
    "declared",
    "fmt",
    "load",
    "param",
    "to_dict",
    "window",
]

#: The longest window (in rows) a parameter may ask for. A rolling window
#: carries its last n - 1 inputs (80 MB of float64 at this cap, per
#: indicator, in memory and in the carried state of every batch) and warms up
#: for n rows; the data's length is not known when a spec is validated. Ten
#: million rows are 5.8 days of ticks at 20 per second, or 40,000 years of
#: daily bars: a longer window is a typo (``n=10**12``) or wants bars.
MAX_WINDOW = 10_000_000

_META = "ticktape.param"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a parameter that has none (the spec must give it).
REQUIRED: Any = _Required()


def fmt(x: float) -> str:
    """A number as a message shows it (``20``, ``0.5``, ``1e+300``; ``1e+400`` for 10**400).

    Examples
    --------
    >>> fmt(20.0), fmt(0.5), fmt(1e300), fmt(-(10**400))
    ('20', '0.5', '1e+300', '-1e+400')
    """
    if isinstance(x, numbers.Integral) and abs(int(x)) >= 10**16:  # (beyond a float, maybe)
        digits = str(abs(int(x)))
        mantissa = (digits[0] + "." + digits[1:7]).rstrip("0").rstrip(".")
        return f"{'-' if x < 0 else ''}{mantissa}e+{len(digits) - 1}"
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e16 else repr(x)


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter: its type, default, bounds, choices and help.

    ``kind`` is ``"int"``, ``"float"``, ``"bool"``, ``"str"``, ``"choice"``
    (one of ``choices``), ``"symbols"`` (two distinct symbol names), a kind
    named by the declaration with its own ``parse`` (``"condition"``), or
    ``"any"`` (an undeclared field of a user's config whose annotation is none
    of these). Bounds: ``ge`` / ``gt`` (lower, inclusive / exclusive), ``le``
    / ``lt`` (upper). Numbers must be finite. A parameter whose default is
    :data:`REQUIRED` must be given; a parameter whose default is None may be
    given as null.

    Examples
    --------
    >>> Param("int", 20, ge=1, le=100).check("20", "params.n")
    20
    >>> Param("int", 20, ge=1, le=100).check(0, "params.n")
    Traceback (most recent call last):
    ...
    ticktape.errors.SpecError: params.n: must be an integer >= 1, got 0
    >>> Param("int", 20, ge=1, le=100).check(10**12, "params.n")
    Traceback (most recent call last):
    ...
    ticktape.errors.SpecError: params.n: must be an integer <= 100, got 1000000000000
    >>> Param("float", 1.0, gt=0).check("inf", "params.size")
    Traceback (most recent call last):
    ...
    ticktape.errors.SpecError: params.size: must be a finite number, got 'inf'
    """

    kind: str
    default: Any = REQUIRED
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] = ()
    help: str = ""
    parse: Callable[[Any, str], Any] | None = None
    annotation: Any = None  # (kind "any": how a string is read)

    @property
    def required(self) -> bool:
        """True when a spec must give this parameter."""
        return self.default is REQUIRED

    def check(self, value: Any, path: str) -> Any:
        """``value`` coerced to this parameter's type, or SpecError naming ``path``.

        Strings are read as the type (``"10"`` is 10 for an int, ``"true"``
        is True for a bool): that is what ``--param NAME=VALUE`` gives.
        """
        if value is None and self.default is None:
            return None
        if self.parse is not None:
            return self.parse(value, path)
        if self.kind in ("int", "float"):
            number = _number(value, path, integer=self.kind == "int")
            self._bounds(number, path)
            return number
        if self.kind == "choice":
            if isinstance(value, str) and value in self.choices:
                return value
            raise SpecError(f"{path}: must be one of {', '.join(map(repr, self.choices))}, got {value!r}")
        reader = _READERS.get(self.kind)
        return _any(value, self.annotation) if reader is None else reader(value, path)

    def bounds(self) -> str:
        """The allowed range as text (``">= 1 and <= 10000000"``; "" when unbounded)."""
        lo = (
            f">= {fmt(self.ge)}"
            if self.ge is not None
            else f"> {fmt(self.gt)}"
            if self.gt is not None
            else ""
        )
        hi = (
            f"<= {fmt(self.le)}"
            if self.le is not None
            else f"< {fmt(self.lt)}"
            if self.lt is not None
            else ""
        )
        return " and ".join(r for r in (lo, hi) if r)

    def allowed(self) -> str:
        """What a value may be, as text: the bounds or the choices."""
        if self.choices:
            return ", ".join(map(str, self.choices))
        if self.kind in ("int", "float"):
            return self.bounds() or "any finite number"
        return {"bool": "true, false", "symbols": "two different symbols"}.get(self.kind, "")

    def _bounds(self, x: float, path: str) -> None:
        low = (self.ge is None or x >= self.ge) and (self.gt is None or x > self.gt)
        high = (self.le is None or x <= self.le) and (self.lt is None or x < self.lt)
        if not (low and high):  # name the bound it breaks
            bound = (
                Param(self.kind, ge=self.ge, gt=self.gt)
                if not low
                else Param(self.kind, le=self.le, lt=self.lt)
            )
            what = "an integer" if self.kind == "int" else "a number"
            raise SpecError(f"{path}: must be {what} {bound.bounds()}, got {fmt(x)}")

    def to_json(self, name: str) -> dict[str, Any]:
        """This parameter as a JSON-able dict (what ``ticktape strategy params --json`` prints)."""
        out: dict[str, Any] = {"name": name, "type": self.kind, "required": self.required}
        if not self.required:
            out["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        for key in ("ge", "gt", "le", "lt"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.choices:
            out["choices"] = list(self.choices)
        out["help"] = self.help
        return out


def _number(value: Any, path: str, *, integer: bool) -> int | float:
    what = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real | str):
        raise SpecError(f"{path}: must be {what}, got {value!r}")
    if isinstance(value, numbers.Integral):
        if integer:
            return int(value)
        try:
            x = float(value)
        except OverflowError:  # an int beyond any float
            x = math.inf
    elif isinstance(value, str):
        text = value.strip()
        if integer:
            try:
                return int(text)
            except ValueError:
                pass
        try:
            x = float(text)
        except ValueError:
            raise SpecError(f"{path}: must be {what}, got {value!r}") from None
    else:
        x = float(value)
    if not math.isfinite(x):
        raise SpecError(f"{path}: must be a finite number, got {value!r}")
    if integer:
        if not x.is_integer():
            raise SpecError(f"{path}: must be an integer, got {value!r}")
        return int(x)
    return x


def _bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise SpecError(f"{path}: must be true or false, got {value!r}")


def _str(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    raise SpecError(f"{path}: must be a string, got {value!r}")


def _symbols(value: Any, path: str) -> tuple[str, str]:
    if isinstance(value, str) and "," in value:  # --param symbols=KO,PEP
        value = value.split(",")
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise SpecError(f"{path}: must be a list of 2 symbols, got {value!r}")
    out = []
    for i, s in enumerate(value):
        if not isinstance(s, str) or not s.strip():
            raise SpecError(f"{path}[{i}]: must be a non-empty symbol name, got {s!r}")
        out.append(s.strip())
    if out[0] == out[1]:
        raise SpecError(f"{path}: the two symbols must differ, got {out[0]!r} twice")
    return out[0], out[1]


_READERS: dict[str, Callable[[Any, str], Any]] = {"bool": _bool, "str": _str, "symbols": _symbols}


def _any(value: Any, annotation: Any) -> Any:
    """An undeclared field of a user's config: a container from a string, else as given."""
    origin = typing.get_origin(annotation) or annotation
    if origin in (tuple, list, dict) and isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            if origin is dict:
                return value
            value = [v.strip() for v in value.split(",")]
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


# ---------------------------------------------------------------- declaring


def param(
    default: Any = REQUIRED,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple[Any, ...] = (),
    help: str = "",
    kind: str | None = None,
    parse: Callable[[Any, str], Any] | None = None,
) -> Any:
    """Declare a config field as a parameter (a :func:`dataclasses.field`).

    The field's annotation gives the type (``int``, ``float``, ``bool``,
    ``str`` -- with ``choices`` a choice -- or ``tuple[str, str]``, two
    symbols); a field of another type names its ``kind`` and gives ``parse``,
    a function ``(value, path) -> value`` that raises SpecError naming
    ``path``.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True, kw_only=True)
    ... class Config(Params):
    ...     fast: int = param(10, ge=1, help="fast window")
    >>> Config(fast="12").fast
    12
    >>> Config(fast=0)
    Traceback (most recent call last):
    ...
    ticktape.errors.SpecError: params.fast: must be an integer >= 1, got 0
    """
    if parse is not None and kind is None:
        raise TypeError("param(parse=...) needs the kind's name (kind=...)")
    spec = Param(kind or "", default, ge, gt, le, lt, tuple(choices), help, parse)
    if default is REQUIRED:
        return dataclasses.field(metadata={_META: spec})
    return dataclasses.field(default=default, metadata={_META: spec})


def window(default: Any = REQUIRED, *, ge: int = 1, help: str = "") -> Any:
    """Declare a window length in rows: an int from ``ge`` to :data:`MAX_WINDOW`."""
    return param(default, ge=ge, le=MAX_WINDOW, help=help)


def _hints(config: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(config)
    except (NameError, TypeError):  # a name only the defining function knew
        return {}


_SCALARS = {bool: "bool", int: "int", float: "float", str: "str"}


def _kind(hint: Any, choices: tuple[Any, ...]) -> str:
    if isinstance(hint, str):  # an annotation get_type_hints could not resolve
        hint = {"bool": bool, "int": int, "float": float, "str": str}.get(hint, hint)
    if hint is str and choices:
        return "choice"
    if isinstance(hint, type) and hint in _SCALARS:
        return _SCALARS[hint]
    if hint == tuple[str, str]:
        return "symbols"
    return "any"


@functools.cache
def declared(config: type) -> dict[str, Param]:
    """The parameters of a config class, by name, in field order.

    Fields declared with :func:`param` keep their declaration; other fields
    (a user's plain dataclass) become a :class:`Param` of their annotation's
    type with their default and no bounds.

    Raises
    ------
    TypeError
        ``config`` is not a dataclass, or a declared field's annotation is
        not one :func:`param` knows and the declaration names no ``kind``.
    """
    hints = _hints(config)
    out: dict[str, Param] = {}
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        hint = hints.get(f.name, f.type)
        spec = f.metadata.get(_META)
        if spec is None:
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = REQUIRED
            out[f.name] = Param(_kind(hint, ()), default, annotation=hint)
            continue
        kind = spec.kind or _kind(hint, spec.choices)
        if kind == "any":
            raise TypeError(f"{config.__name__}.{f.name}: param() of a {hint!r} field needs kind= and parse=")
        out[f.name] = dataclasses.replace(spec, kind=kind, annotation=hint)
    return out


# ---------------------------------------------------------------- using


@dataclasses.dataclass(frozen=True, kw_only=True)
class Params:
    """Base of a config whose fields are parameters.

    Constructing one checks and coerces every field against its declaration
    (whoever constructs it: :func:`load`, a test, a notebook), then calls
    :meth:`check` for the rules between fields.
    """

    def __post_init__(self) -> None:
        for name, p in declared(type(self)).items():  # type: ignore[arg-type]  # (mypy: a class is unhashable if its instances are)
            value = p.check(getattr(self, name), f"params.{name}")
            object.__setattr__(self, name, value)
        self.check()

    def check(self) -> None:
        """Rules between fields; raise SpecError naming ``params.<field>``.

        A subclass calls ``super().check()`` first. It may normalize a field
        (``object.__setattr__``), as long as checking the result again
        leaves it unchanged.
        """


C = TypeVar("C")


def load(config: type[C], params: Any, who: str) -> C:
    """The config ``config`` built from a spec's ``params`` (checked and coerced).

    ``who`` (the strategy's name) goes into the messages. This is the one
    path from a spec to a config: ``build``, ``validate_spec`` and
    ``check_run`` all come here.

    Raises
    ------
    SpecError
        ``params`` is not an object, names an unknown parameter, lacks a
        required one, or has a bad value; the message starts with its path.
    """
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise SpecError(f"params: must be an object, got {params!r}")
    table = declared(config)  # type: ignore[arg-type]  # (mypy: a class is unhashable if its instances are)
    for key in params:
        if key not in table:
            raise SpecError(f"params.{key}: unknown parameter of {who!r}; known: {', '.join(table)}")
    kwargs: dict[str, Any] = {}
    for key, p in table.items():
        if key in params:
            kwargs[key] = p.check(params[key], f"params.{key}")
        elif p.required:
            raise SpecError(f"params.{key}: required by {who!r}")
    try:
        return config(**kwargs)
    except SpecError:
        raise
    except (TypeError, ValueError) as exc:  # a plain user config's own checks
        raise SpecError(f"params: {exc}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """Every parameter of ``config`` as JSON-able values (the normalized ``params`` of a spec)."""
    out = {}
    for name in declared(type(config)):  # type: ignore[arg-type]  # (mypy: a class is unhashable if its instances are)
        value = getattr(config, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out
