"""The errors the CLI reports as one line (no traceback) and exit code 1."""

from __future__ import annotations

from ticktape.batch import BatchDecodeError
from ticktape.config import ConfigError
from ticktape.data.importers import ImportFailed
from ticktape.data.lobster import LobsterFormatError
from ticktape.demo import DemoError
from ticktape.inprocess import DataError
from ticktape.runtime import TicktapeRuntimeError
from ticktape.store import StoreConnectionError
from ticktape.strategy import SpecError

KNOWN_ERRORS: tuple[type[BaseException], ...] = (
    BatchDecodeError,
    ConfigError,
    DataError,
    DemoError,
    FileNotFoundError,
    ImportFailed,
    LobsterFormatError,
    SpecError,
    StoreConnectionError,
    TicktapeRuntimeError,
)
