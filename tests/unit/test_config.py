"""Settings from the environment: the deployment's variables (docker-compose.yml sets them)."""

from __future__ import annotations

import pytest

from ticktape.config import MAX_PARTITIONS, Settings
from ticktape.errors import ConfigError


def test_the_deployment_settings_are_read_and_default_when_unset_or_empty() -> None:
    s = Settings.from_env(
        {
            "TICKTAPE_PARTITIONS": "16",
            "TICKTAPE_REPLICATION": "3",
            "TICKTAPE_STAGES": "replay,sink",
            "TICKTAPE_METRICS_PORT": "0",
            "TICKTAPE_METRICS_HOST": "0.0.0.0",
        }
    )
    assert (s.partitions, s.replication, s.stages, s.metrics_port, s.metrics_host) == (
        16,
        3,
        "replay,sink",
        0,
        "0.0.0.0",
    )
    empty = Settings.from_env({"TICKTAPE_PARTITIONS": " ", "TICKTAPE_METRICS_PORT": ""})
    assert (empty.partitions, empty.replication, empty.stages, empty.metrics_port, empty.metrics_host) == (
        None,
        1,
        "all",
        None,
        "127.0.0.1",
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TICKTAPE_PARTITIONS", "many", "TICKTAPE_PARTITIONS='many' is not a partition count"),
        ("TICKTAPE_PARTITIONS", "0", f"TICKTAPE_PARTITIONS=0 is out of range 1..{MAX_PARTITIONS}"),
        ("TICKTAPE_REPLICATION", "x", "TICKTAPE_REPLICATION='x' is not a replication factor"),
        ("TICKTAPE_METRICS_PORT", "70000", "TICKTAPE_METRICS_PORT=70000 is out of range 0..65535"),
        ("TICKTAPE_KAFKA_PORT", "no-port", "TICKTAPE_KAFKA_PORT='no-port' is not a port number"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: value})
    assert str(info.value) == message
