"""What every command shares: the consoles and the settings."""

from __future__ import annotations

from rich.console import Console

from ticktape.config import Settings

console = Console()
#: errors: one unwrapped line on stderr
err_console = Console(stderr=True, soft_wrap=True)


def settings() -> Settings:
    """The settings from the environment (TICKTAPE_HOME, TICKTAPE_KAFKA_URL, TICKTAPE_DATABASE_URL)."""
    return Settings.from_env()
