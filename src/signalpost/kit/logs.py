"""Logging for `serve` and `worker`: signalpost's own loggers and uvicorn's, as text or as JSON
lines (`SIGNALPOST_LOG_FORMAT=json`, with python-json-logger), with the access log leaving out
the inbox's own polling and Prometheus scrapes."""

from __future__ import annotations

import logging
import logging.config
from typing import Any

# Reads that are not worth an access line: the inbox page reading its change feed and stream and
# loading its assets, and metrics scrapes. The inbox's actions (replying as a handset, redelivering
# a webhook) change things and are logged like any other request.
QUIET_PREFIXES = ("/inbox/api/", "/inbox/static/", "/inbox/events", "/metrics")
QUIET_METHODS = frozenset({"GET", "HEAD"})

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"


class QuietAccess(logging.Filter):
    """Drops access lines of reads of `QUIET_PREFIXES`; gives the others structured fields (`method`,
    `path`, `status`, `client`) for the JSON formatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) < 5:
            return True
        client, method, path, _version, status = args[:5]
        if method in QUIET_METHODS and str(path).startswith(QUIET_PREFIXES):
            return False
        record.client = client
        record.method = method
        record.path = path
        record.status = status
        return True


def log_config(level: str, fmt: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` configuration (also uvicorn's `log_config`)."""
    level = level.upper()
    if fmt == "json":
        formatters: dict[str, Any] = {
            "default": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": JSON_FIELDS,
                "rename_fields": {"levelname": "level", "name": "logger", "asctime": "time"},
            },
        }
        formatters["access"] = formatters["default"]
    else:
        formatters = {
            "default": {"format": TEXT_FORMAT},
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(asctime)s %(levelname)s access: %(client_addr)s - "%(request_line)s" '
                "%(status_code)s",
                "use_colors": False,
            },
        }
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"quiet_access": {"()": QuietAccess}},
        "formatters": formatters,
        "handlers": {
            "default": {**handler, "formatter": "default"},
            "access": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "access",
                "filters": ["quiet_access"],
            },
        },
        "loggers": {
            "signalpost": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
        },
    }


def configure(level: str, fmt: str) -> None:
    """Apply `log_config` to this process (for commands that do not run uvicorn)."""
    logging.config.dictConfig(log_config(level, fmt))
