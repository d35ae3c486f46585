"""What a running server holds: settings, the database, the carrier, the job kinds.

Built once by `create_app` (or a CLI command) and handed to routes through `request.app.state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request

from signalpost.kit.db import Database
from signalpost.settings import Settings

if TYPE_CHECKING:
    from signalpost.kit.queue import JobKind


@dataclass
class AppContext:
    settings: Settings
    db: Database
    job_kinds: dict[str, JobKind] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


async def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
