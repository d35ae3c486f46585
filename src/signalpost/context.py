"""What a running server holds: settings, the database, the carrier, the job kinds.

Built once by `create_app` (or a CLI command) and handed to routes through `request.app.state`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request

from signalpost.kit.db import Database
from signalpost.kit.netguard import OutboundGuard
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


GUARD_KEY = "outbound.guard"


def outbound_guard(ctx: AppContext) -> OutboundGuard:
    """The process's outbound URL guard (kit.netguard), made from the settings on first use.

    Tests put their own in `ctx.extras[GUARD_KEY]` (e.g. with a resolver that needs no DNS).
    """
    guard = ctx.extras.get(GUARD_KEY)
    if not isinstance(guard, OutboundGuard):
        guard = OutboundGuard.from_settings(ctx.settings)
        ctx.extras[GUARD_KEY] = guard
    return guard
