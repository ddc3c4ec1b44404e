"""Every public exception of ticktape, in one place (this module imports nothing).

Each derives from :class:`TicktapeError` and from the built-in exception it
has always been (``SpecError`` is a ``ValueError``, ``StoreConnectionError`` a
``ConnectionError``...), so ``except ValueError`` keeps working. The message
of each is one line meant for the user, naming the file, row or field; the CLI
prints it as ``ticktape: error: <message>`` and exits non-zero.
"""

from __future__ import annotations


class TicktapeError(Exception):
    """Base of ticktape's own errors: the message is one line for the user."""


class CommandError(TicktapeError, ValueError):
    """A command's arguments or input files cannot be used; the message names the option or file."""


class ConfigError(TicktapeError, ValueError):
    """A setting from the environment is malformed."""


class SpecError(TicktapeError, ValueError):
    """A run spec or strategy parameter is invalid; the message names the field."""


class DataError(TicktapeError, ValueError):
    """The data handed to a backtest is unusable; the message names the column/row."""


class BatchDecodeError(TicktapeError, ValueError):
    """A message is not a valid ticktape batch."""


class ImportFailed(TicktapeError, ValueError):
    """A bad row under ``strict``, or a file that cannot be imported at all."""


class LobsterFormatError(TicktapeError, ValueError):
    """A bad LOBSTER file; the message starts with ``file:line:``."""


class CouldNotUnderstand(TicktapeError, ValueError):
    """Part of the text is not understood.

    The message is ``could not understand: "<the exact words>"``, then the
    reason and what was expected there when known. ``words`` holds the quoted
    words.
    """

    def __init__(self, words: str, expected: str = "", reason: str = "") -> None:
        self.words = words
        message = f'could not understand: "{words}"'
        if reason:
            message += f" ({reason})"
        if expected:
            message += f"; expected {expected}"
        super().__init__(message)


class LLMError(TicktapeError, ValueError):
    """The LLM fallback is not configured, did not answer, or answered with an invalid spec."""


class StoreConnectionError(TicktapeError, ConnectionError):
    """The database cannot be reached; the message names the (masked) DSN."""


class StoreError(TicktapeError, RuntimeError):
    """The database refused or lost an operation; the message names the database (masked) and SQLSTATE."""


class MigrationError(TicktapeError, RuntimeError):
    """The migrations on disk and the ones recorded in the database disagree."""


class KeyOrderError(TicktapeError, ValueError):
    """Ticks that should come in ``(ts, seq)`` order did not."""


class TicktapeRuntimeError(TicktapeError, RuntimeError):
    """The broker or the database cannot be started or reached.

    The message is one line meant for the user (plus, for a failed start, the
    tail of the service's log file).
    """


class DemoError(TicktapeError, RuntimeError):
    """The demo could not complete; the message says where."""


class RunCancelled(TicktapeError, Exception):
    """The run was cancelled while replaying."""


class GapNeverFilled(TicktapeError, RuntimeError):
    """Batches of a stream never arrived while the later ones held waiting
    for them outgrew their bound (ticktape.pipeline.gaps)."""


class SqlRefused(TicktapeError, ValueError):
    """SQL typed into the app that is no query returning rows (the server
    refuses writes and DDL itself; this is for what it would let through,
    e.g. COPY ... TO STDOUT or SET)."""


#: What the command line reports as one line (no traceback), exit code 1.
KNOWN_ERRORS: tuple[type[BaseException], ...] = (TicktapeError, FileNotFoundError)
