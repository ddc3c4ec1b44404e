"""Settings from the environment, and the paths ticktape uses.

Environment variables (an empty value counts as unset):

``TICKTAPE_KAFKA_URL``
    Bootstrap servers of an external Kafka (``host:port[,host:port]``; a
    ``kafka://`` or ``tcp://`` prefix is accepted). Unset: the embedded broker.
``TICKTAPE_DATABASE_URL``
    asyncpg/libpq DSN of an external PostgreSQL/TimescaleDB. Unset: the
    embedded PostgreSQL.
``TICKTAPE_HOME``
    Folder for the embedded PostgreSQL data (``pg/``) and logs (``logs/``).
    Default: ``platformdirs.user_data_dir("ticktape")``.
``TICKTAPE_KAFKA_PORT``
    Fixed 127.0.0.1 port for the embedded broker. Default: a free port.
``TICKTAPE_READER_URL``
    DSN the app's queries and typed SQL log in with, as the read-only role
    ``ticktape_reader`` (dbschema/0038, 0043). Default: the database's DSN
    with that user and no password (what the embedded PostgreSQL accepts;
    elsewhere give the role a password and set this).
``TICKTAPE_READER_PASSWORD``
    Read by ``ticktape db migrate`` only: the password it gives the role
    ``ticktape_reader`` (so the app can log in as it with
    ``TICKTAPE_READER_URL``; the compose file sets both from ``.env``).
``TICKTAPE_PARTITIONS``
    Partitions of the pipeline's keyed topics when ticktape creates them
    (``ticktape topics create`` says how many a load needs). Topics that
    exist keep their count, which every worker adopts. Default: 4.
``TICKTAPE_REPLICATION``
    Replication factor of the topics ticktape creates. Default: 1 (one
    broker); 3 on a cluster of three or more.
``TICKTAPE_STAGES``
    The stages ``ticktape worker`` runs when ``--stages`` is not given
    (``all``, or a comma-separated subset). Default: all.
``TICKTAPE_METRICS_PORT``
    Port on which ``ticktape worker`` serves Prometheus metrics (``/metrics``);
    0 picks a free one. Unset: no metrics server.
``TICKTAPE_METRICS_HOST``
    Address of that server. Default: 127.0.0.1 (the compose file sets
    0.0.0.0 inside the container network, publishing nothing).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

import platformdirs

from ticktape.errors import ConfigError

ENV_KAFKA_URL = "TICKTAPE_KAFKA_URL"
ENV_DATABASE_URL = "TICKTAPE_DATABASE_URL"
ENV_HOME = "TICKTAPE_HOME"
ENV_KAFKA_PORT = "TICKTAPE_KAFKA_PORT"
ENV_READER_URL = "TICKTAPE_READER_URL"
ENV_READER_PASSWORD = "TICKTAPE_READER_PASSWORD"
ENV_PARTITIONS = "TICKTAPE_PARTITIONS"
ENV_REPLICATION = "TICKTAPE_REPLICATION"
ENV_STAGES = "TICKTAPE_STAGES"
ENV_METRICS_PORT = "TICKTAPE_METRICS_PORT"
ENV_METRICS_HOST = "TICKTAPE_METRICS_HOST"

#: Most partitions ticktape gives a topic (each is a changelog partition and a
#: table partition in every worker too; past this, add workers, not partitions).
MAX_PARTITIONS = 256

#: Name of the database the embedded PostgreSQL serves ticktape from.
DEFAULT_DATABASE = "ticktape"


def default_home() -> Path:
    """The per-user data folder (``platformdirs.user_data_dir("ticktape")``)."""
    return Path(platformdirs.user_data_dir("ticktape", appauthor=False))


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Where the broker and the database are, and where local state lives.

    Parameters
    ----------
    kafka_url
        External Kafka bootstrap servers, or None for the embedded broker.
    database_url
        External PostgreSQL DSN, or None for the embedded PostgreSQL.
    home
        Folder holding ``pg/`` (embedded PostgreSQL data) and ``logs/``.
    kafka_port
        Port for the embedded broker on 127.0.0.1, or None for any free port.
    reader_url
        DSN of the read-only login, or None for the database's DSN with the
        reader's user (:func:`with_user`).
    reader_password
        The password ``ticktape db migrate`` gives the read-only role, or None
        (not shown in the settings' repr).
    partitions
        Partitions of the keyed topics ticktape creates, or None for the
        pipeline's default (``ticktape.pipeline.topics.DEFAULT_PARTITIONS``).
    replication
        Replication factor of the topics ticktape creates.
    stages
        The stages ``ticktape worker`` runs by default (``"all"`` or a list).
    metrics_port
        Port of the worker's Prometheus metrics, or None for none.
    metrics_host
        Address the metrics are served on.
    """

    kafka_url: str | None = None
    database_url: str | None = None
    home: Path
    kafka_port: int | None = None
    reader_url: str | None = None
    reader_password: str | None = field(default=None, repr=False)
    partitions: int | None = None
    replication: int = 1
    stages: str = "all"
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if not isinstance(self.home, Path):
            object.__setattr__(self, "home", Path(self.home))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (default: ``os.environ``)."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, low: int, high: int, what: str) -> int | None:
            text = get(name)
            if text is None:
                return None
            try:
                value = int(text)
            except ValueError:
                raise ConfigError(f"{name}={text!r} is not {what}") from None
            if not low <= value <= high:
                raise ConfigError(f"{name}={value} is out of range {low}..{high}")
            return value

        kafka_url = get(ENV_KAFKA_URL)
        home = get(ENV_HOME)
        return cls(
            kafka_url=normalize_kafka_url(kafka_url) if kafka_url else None,
            database_url=get(ENV_DATABASE_URL),
            home=Path(home).expanduser() if home else default_home(),
            kafka_port=number(ENV_KAFKA_PORT, 1, 65535, "a port number"),
            partitions=number(ENV_PARTITIONS, 1, MAX_PARTITIONS, "a partition count"),
            replication=number(ENV_REPLICATION, 1, 16, "a replication factor") or 1,
            stages=get(ENV_STAGES) or "all",
            metrics_port=number(ENV_METRICS_PORT, 0, 65535, "a port number"),
            metrics_host=get(ENV_METRICS_HOST) or "127.0.0.1",
            reader_url=get(ENV_READER_URL),
            reader_password=get(ENV_READER_PASSWORD),
        )

    def with_home(self, home: str | os.PathLike[str]) -> Settings:
        """A copy with another ``home``."""
        return replace(self, home=Path(home))

    @property
    def pg_dir(self) -> Path:
        """Data directory of the embedded PostgreSQL."""
        return self.home / "pg"

    @property
    def log_dir(self) -> Path:
        """Log files of the embedded broker and PostgreSQL."""
        return self.home / "logs"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Shorthand for :meth:`Settings.from_env`."""
    return Settings.from_env(env)


def normalize_kafka_url(url: str) -> str:
    """Turn ``kafka://h:p,h2:p2`` / ``tcp://h:p`` / ``h:p`` into ``h:p,h2:p2``.

    >>> normalize_kafka_url("kafka://127.0.0.1:9092")
    '127.0.0.1:9092'
    """
    hosts = []
    for part in url.split(","):
        part = part.strip()
        for prefix in ("kafka://", "tcp://", "PLAINTEXT://", "plaintext://"):
            part = part.removeprefix(prefix)
        part = part.rstrip("/")
        if part:
            if ":" not in part.rsplit("]", 1)[-1]:
                part = f"{part}:9092"
            hosts.append(part)
    if not hosts:
        raise ConfigError(f"Kafka URL {url!r} names no host")
    return ",".join(hosts)


def faust_broker_url(kafka_url: str) -> str:
    """Faust's form of a bootstrap list: ``kafka://h:p;h2:p2``.

    >>> faust_broker_url("127.0.0.1:9092,127.0.0.1:9093")
    'kafka://127.0.0.1:9092;kafka://127.0.0.1:9093'
    """
    return ";".join(f"kafka://{h}" for h in normalize_kafka_url(kafka_url).split(","))


def kafka_hosts(kafka_url: str) -> list[tuple[str, int]]:
    """(host, port) pairs of a bootstrap list.

    >>> kafka_hosts("127.0.0.1:9092,[::1]:9093")
    [('127.0.0.1', 9092), ('::1', 9093)]
    """
    out = []
    for part in normalize_kafka_url(kafka_url).split(","):
        host, _, port = part.rpartition(":")
        out.append((host.strip("[]"), int(port)))
    return out


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ``***`` (for messages and logs).

    >>> mask_dsn("postgresql://user:secret@db:5432/ticktape")
    'postgresql://user:***@db:5432/ticktape'
    """
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "<unparsable DSN>"
    if not parts.scheme or parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def with_database(dsn: str, database: str) -> str:
    """The DSN pointing at another database on the same server.

    >>> with_database("postgresql://postgres@/ticktape?host=/tmp/s", "test_1")
    'postgresql://postgres@/test_1?host=/tmp/s'
    """
    parts: SplitResult = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


def with_user(dsn: str, user: str) -> str:
    """The DSN logging in as another user, without the password.

    >>> with_user("postgresql://postgres:secret@db:5432/ticktape", "ticktape_reader")
    'postgresql://ticktape_reader@db:5432/ticktape'
    >>> with_user("postgresql://postgres@/ticktape?host=/tmp/s", "ticktape_reader")
    'postgresql://ticktape_reader@/ticktape?host=/tmp/s'
    """
    parts: SplitResult = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def database_name(dsn: str) -> str:
    """The database a DSN names (``postgres`` if none)."""
    path = urlsplit(dsn).path.lstrip("/")
    return path or "postgres"


def dbschema_dir() -> Path:
    """The folder of numbered SQL migrations.

    Installed: ``ticktape/dbschema`` inside the package. Source checkout:
    ``<repo>/dbschema`` next to ``src/``.
    """
    try:
        packaged = resources.files("ticktape") / "dbschema"
        if packaged.is_dir():
            return Path(str(packaged))
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):  # pragma: no cover
        pass
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "dbschema"
        if candidate.is_dir() and (parent / "pyproject.toml").is_file():
            return candidate
    raise FileNotFoundError(
        "cannot find the dbschema/ migrations folder (neither ticktape/dbschema nor <repo>/dbschema)"
    )
