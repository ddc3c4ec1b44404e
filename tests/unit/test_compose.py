"""docker-compose.yml, .env.example and the Dockerfile against what the code
expects (no Docker engine runs here: docs/operations.md, "Running it").

The variable names come from ``ticktape.config`` (its ``ENV_*`` names), the
TimescaleDB version from docs/timescaledb.md, the build steps from
docker/steps.sh: nothing here is a second list of them.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ticktape import config
from ticktape.pipeline.topics import DEFAULT_PARTITIONS
from ticktape.pipeline.worker import ready_path

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
#: every variable Settings.from_env reads
SETTINGS = {value for name, value in vars(config).items() if name.startswith("ENV_")}
#: the ones only the embedded services use (a deployment has none) or the image sets
NOT_FOR_COMPOSE = {config.ENV_KAFKA_PORT, config.ENV_HOME}
TICKTAPE = ("migrate", "worker", "app")
#: ${NAME}, ${NAME:-default}, ${NAME:?message}
INTERPOLATED = re.compile(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in (SERVICES[service].get("environment") or {}).items()}


def test_the_services_are_there_and_the_ticktape_ones_run_the_image() -> None:
    assert set(SERVICES) == {"kafka", "timescaledb", "migrate", "worker", "app"}
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    for name in TICKTAPE:
        assert SERVICES[name]["build"] == "." and SERVICES[name]["image"].startswith("ticktape:")
    assert SERVICES["migrate"]["command"] == ["db", "migrate"]
    assert SERVICES["worker"]["command"] == ["worker"]
    assert SERVICES["app"]["command"][0] == "dashboard"


def test_timescaledb_is_a_version_the_migrations_were_tested_against() -> None:
    image = SERVICES["timescaledb"]["image"]
    found = re.fullmatch(r"timescale/timescaledb:(\d+\.\d+\.\d+)-pg(\d+)", image)
    assert found, image
    version, pg = found.groups()
    measured = (ROOT / "docs" / "timescaledb.md").read_text()
    assert f"TimescaleDB **{version}**" in measured and f"PostgreSQL **{pg}." in measured


def test_every_published_port_is_on_loopback_and_workers_publish_none() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"
    worker = SERVICES["worker"]
    assert "ports" not in worker and "container_name" not in worker  # --scale worker=N


def test_every_long_running_service_has_a_health_check_and_the_rest_wait_for_it() -> None:
    for name, service in SERVICES.items():
        if name != "migrate":  # (one-shot)
            assert service["healthcheck"]["test"], name
    assert SERVICES["migrate"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    assert SERVICES["migrate"]["restart"] == "no"
    for name in ("worker", "app"):
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert SERVICES["worker"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    # the worker is healthy once it wrote its ready file, where the worker writes it
    check = " ".join(SERVICES["worker"]["healthcheck"]["test"])
    marker = ready_path(Path("$${TICKTAPE_HOME}/faust"), 1).name.replace("1", "*")
    assert f"$${{{config.ENV_HOME}}}/faust/{marker}" in check


def test_the_data_lives_in_named_volumes() -> None:
    declared = set(COMPOSE["volumes"])
    used = {str(v).split(":")[0] for service in SERVICES.values() for v in service.get("volumes", [])}
    assert used == declared == {"kafka-data", "timescaledb-data"}
    assert "timescaledb-data:/var/lib/postgresql/data" in SERVICES["timescaledb"]["volumes"]


def test_the_ticktape_services_get_the_settings_the_code_reads() -> None:
    for name in TICKTAPE:
        variables = env(name)
        assert set(variables) <= SETTINGS, f"{name}: unknown {set(variables) - SETTINGS}"
        assert config.ENV_DATABASE_URL in variables
    reader = {config.ENV_READER_URL, config.ENV_READER_PASSWORD}
    assert set(env("worker")) == SETTINGS - NOT_FOR_COMPOSE - reader
    # the app logs in as the read-only role with the password migrate gives it
    assert (
        env("migrate")[config.ENV_READER_PASSWORD]
        == "${READER_PASSWORD:?set READER_PASSWORD in .env (see .env.example)}"
    )
    assert env("app")[config.ENV_READER_URL].startswith("postgresql://ticktape_reader:${READER_PASSWORD:?")
    kafka = env("kafka")
    internal = re.search(r"INTERNAL://([^,]+)", kafka["KAFKA_ADVERTISED_LISTENERS"])
    assert internal and env("worker")[config.ENV_KAFKA_URL] == internal.group(1)
    settings = config.Settings.from_env({k: v for k, v in env("worker").items() if "${" not in v})
    assert settings.kafka_url == "kafka:19092" and settings.metrics_port == 9464


def test_no_secret_in_the_repository_the_password_comes_from_dot_env() -> None:
    db = env("timescaledb")
    assert db["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env (see .env.example)}"
    url = env("worker")[config.ENV_DATABASE_URL]
    assert url.startswith("postgresql://ticktape:${POSTGRES_PASSWORD:?") and url.endswith(
        "@timescaledb:5432/ticktape"
    )
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert example["POSTGRES_PASSWORD"] == example["READER_PASSWORD"] == ""


def test_every_compose_variable_is_in_env_example_and_back() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert {m.group(1) for m in INTERPOLATED.finditer(text)} == set(example)

    def effective(settings: config.Settings) -> config.Settings:  # (None: the pipeline's default)
        return dataclasses.replace(settings, partitions=settings.partitions or DEFAULT_PARTITIONS)

    # a default in compose is the one .env.example shows, and the code's own
    for m in INTERPOLATED.finditer(text):
        name, kind, default = m.groups()
        if kind == ":-":
            assert example[name] == default, name
            if name.startswith("TICKTAPE_"):
                assert effective(config.Settings.from_env({name: default})) == effective(
                    config.Settings.from_env({})
                ), name


def test_the_image_builds_with_the_steps_the_test_runs_as_a_user_not_root() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    runs = [line for line in lines if "steps.sh" in line and line.startswith("RUN")]
    assert [re.search(r"steps\.sh (\w+)", line).group(1) for line in runs] == ["wheel", "install", "check"]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users == ["ticktape"]
    assert 'ENTRYPOINT ["ticktape"]' in lines
    assert sum(line.startswith("FROM ") for line in lines) == 2  # builder + runtime


def test_docker_compose_config_accepts_the_file_and_names_a_missing_password(tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:
        pytest.fail(
            "docker-compose is missing: `make test` installs Debian's (apt-get install docker-compose)"
        )

    def config_with(text: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / ".env").write_text(text)
        return subprocess.run(
            [
                "docker-compose",
                "--project-directory",
                str(ROOT),
                "-f",
                str(ROOT / "docker-compose.yml"),
                "--env-file",
                str(tmp_path / ".env"),
                "config",
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    ok = config_with("POSTGRES_PASSWORD=s3cret\nREADER_PASSWORD=r3ader\n")
    assert ok.returncode == 0, ok.stderr
    for name, text in (
        ("POSTGRES_PASSWORD", "READER_PASSWORD=r\n"),
        ("READER_PASSWORD", "POSTGRES_PASSWORD=p\n"),
    ):
        missing = config_with(text)
        assert missing.returncode != 0
        (line,) = missing.stderr.strip().splitlines()
        assert f"set {name} in .env (see .env.example)" in line
