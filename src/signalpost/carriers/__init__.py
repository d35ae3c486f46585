"""Carrier adapters: the simulator (default) and real upstreams.

Adapters sit below the feature packages: they import only `kit`, `settings`, the tables and each
other; what calls them passes in what they need (`CarrierHost`: the running server's settings,
database and per-process objects, which `signalpost.context.AppContext` provides).
"""

from __future__ import annotations

from typing import Any, Protocol

from signalpost.carriers.base import Carrier
from signalpost.carriers.simulator import SimulatorCarrier
from signalpost.kit.db import Database
from signalpost.settings import Settings


class CarrierHost(Protocol):
    """What `get_carrier` needs of the running server (`AppContext` is one)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def extras(self) -> dict[str, Any]: ...


def get_carrier(ctx: CarrierHost) -> Carrier:
    """The carrier for this process, built once from the settings."""
    carrier: Carrier | None = ctx.extras.get("carrier")
    if carrier is None:
        if ctx.settings.carrier != "simulator":
            raise ValueError(f"unknown carrier {ctx.settings.carrier!r} (available: simulator)")
        carrier = SimulatorCarrier(ctx.db, ctx.settings.simulator_latency)
        ctx.extras["carrier"] = carrier
    return carrier
