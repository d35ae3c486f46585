"""Carrier adapters: the simulator (default) and SMPP carriers, chosen per message by the route
table (`carriers.router`).

Adapters sit below the feature packages: they import only `kit`, `settings`, the tables and each
other; what calls them passes in what they need (`CarrierHost`: the running server's settings,
database and per-process objects, which `signalpost.context.AppContext` provides; the message
lifecycle reaches an SMPP carrier as `carriers.base.MessageEvents` in `extras["message_events"]`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from signalpost.carriers.base import Carrier, MessageEvents
from signalpost.carriers.simulator import SimulatorCarrier
from signalpost.kit.db import Database
from signalpost.settings import Settings

if TYPE_CHECKING:
    from signalpost.carriers.smpp.runtime import SmppRuntime
    from signalpost.kit.queue import JobKind

RUNTIME = "smpp_runtime"


class CarrierHost(Protocol):
    """What `get_carrier` needs of the running server (`AppContext` is one)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def extras(self) -> dict[str, Any]: ...

    @property
    def job_kinds(self) -> dict[str, JobKind]: ...


def get_carrier(ctx: CarrierHost) -> Carrier:
    """The carrier for this process, built once from the settings: the simulator alone when no
    other carrier is configured, else the route table over all of them."""
    carrier: Carrier | None = ctx.extras.get("carrier")
    if carrier is not None:
        return carrier
    settings = ctx.settings
    simulator = SimulatorCarrier(ctx.db, settings.simulator_latency)
    smpp = [c for c in settings.carriers if c.kind == "smpp"]
    if not smpp and not settings.routes and settings.effective_default_carrier == "simulator":
        carrier = simulator
    else:
        from signalpost.carriers.router import CarrierRouter

        runtime = smpp_runtime(ctx)
        carriers: dict[str, Carrier] = {c.name: simulator for c in settings.carriers}
        carriers["simulator"] = simulator
        carriers.update(runtime.carriers)
        carrier = CarrierRouter(settings, carriers, runtime.bound_anywhere)
    ctx.extras["carrier"] = carrier
    return carrier


def smpp_runtime(ctx: CarrierHost) -> SmppRuntime:
    """This process's SMPP runtime (sessions start only with `start_carriers`)."""
    runtime: SmppRuntime | None = ctx.extras.get(RUNTIME)
    if runtime is None:
        from signalpost.carriers.smpp.runtime import SmppRuntime

        events: MessageEvents | None = ctx.extras.get("message_events")
        if events is None:
            raise RuntimeError("no MessageEvents registered (messages.carrier_events)")
        runtime = SmppRuntime(ctx.settings, ctx.db, ctx.job_kinds, events)
        ctx.extras[RUNTIME] = runtime
    return runtime


async def start_carriers(ctx: CarrierHost) -> None:
    """Where jobs run (`serve` with workers, `worker`): take part in holding the SMPP binds."""
    if any(c.kind == "smpp" for c in ctx.settings.carriers):
        await smpp_runtime(ctx).start()
