"""Programmatic Alembic: upgrade or check both databases without an ini file."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from missionlink.config import Settings

HERE = Path(__file__).parent


def alembic_config(name: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / name))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def database_urls(settings: Settings) -> dict[str, str]:
    return {"identity": settings.identity_url, "core": settings.core_url}


def upgrade_all(settings: Settings) -> None:
    """Bring both databases to the newest revision (runs its own event loop)."""
    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    for name, url in database_urls(settings).items():
        command.upgrade(alembic_config(name, url), "head")


def check_all(settings: Settings) -> None:
    """Fail when the tables in code drift from the migrations (``alembic check``)."""
    for name, url in database_urls(settings).items():
        command.check(alembic_config(name, url))
