"""Carrier adapters: the simulator (default) and real upstreams."""

from __future__ import annotations

from signalpost.carriers.base import Carrier
from signalpost.context import AppContext


def get_carrier(ctx: AppContext) -> Carrier:
    """The carrier for this process, built once from the settings."""
    carrier: Carrier | None = ctx.extras.get("carrier")
    if carrier is None:
        if ctx.settings.carrier != "simulator":
            raise ValueError(f"unknown carrier {ctx.settings.carrier!r} (available: simulator)")
        from signalpost.carriers.simulator import SimulatorCarrier

        carrier = SimulatorCarrier(ctx.db, ctx.settings.simulator_latency)
        ctx.extras["carrier"] = carrier
    return carrier
