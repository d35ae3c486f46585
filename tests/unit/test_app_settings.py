"""How settings shape the application object."""

from __future__ import annotations

from pathlib import Path

from signalpost.app import create_app
from signalpost.settings import Settings


def test_opentelemetry_is_off_unless_asked_for(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/app.db"
    for asked in (False, True):
        app = create_app(Settings(database_url=url, opentelemetry=asked))
        # FastAPI's own switches: with them off it looks for no providers on a request.
        config = app._native_telemetry.config
        assert (config["tracing"], config["metrics"], config["logs"]) == (asked, asked, asked)
