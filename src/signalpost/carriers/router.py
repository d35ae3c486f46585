"""The route table: which carrier takes a message.

Rows of `routes` are tried in order; the first whose conditions all hold (destination `prefix`,
destination `country`, `messaging_profile_id`) chooses the carrier, else `default_carrier` (the
simulator unless set). While an SMPP carrier has no bound session in any process, its messages go
to the route's `fallback` (or the carrier's own `fallback`) when one is set; without one they wait
in the queue (until their validity runs out).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

from signalpost.carriers.base import Carrier, OutboundSubmit, SubmitResult
from signalpost.kit import phone
from signalpost.settings import Route, Settings


def _matches(route: Route, to_number: str, profile_id: str | None) -> bool:
    if route.prefix is not None and not to_number.lstrip("+").startswith(route.prefix.lstrip("+")):
        return False
    if route.country is not None and phone.country_of(to_number) != route.country:
        return False
    return route.messaging_profile_id is None or route.messaging_profile_id == profile_id


class CarrierRouter:
    """A `Carrier` that hands each message to the carrier its route chooses."""

    name = "router"

    def __init__(
        self,
        settings: Settings,
        carriers: Mapping[str, Carrier],
        bound_anywhere: Callable[[str], Awaitable[bool]],
    ) -> None:
        self.settings = settings
        self.carriers = carriers
        self._bound_anywhere = bound_anywhere

    def route(self, to_number: str, profile_id: str | None) -> tuple[str, str | None]:
        """(carrier, fallback) for a destination and messaging profile."""
        for r in self.settings.routes:
            if _matches(r, to_number, profile_id):
                return r.carrier, r.fallback or self.settings.carrier_config(r.carrier).fallback
        default = self.settings.effective_default_carrier
        return default, self.settings.carrier_config(default).fallback

    async def choose(self, message: OutboundSubmit) -> str:
        name, fallback = self.route(message.to_number, message.messaging_profile_id)
        if (
            fallback is not None
            and self.settings.carrier_config(name).kind == "smpp"
            and not await self._bound_anywhere(name)
        ):
            return fallback
        return name

    async def submit(self, message: OutboundSubmit) -> SubmitResult:
        return (await self.submit_many([message]))[0]

    async def submit_many(self, messages: Sequence[OutboundSubmit]) -> list[SubmitResult]:
        groups: dict[str, list[int]] = {}
        for i, m in enumerate(messages):
            groups.setdefault(await self.choose(m), []).append(i)
        results: list[SubmitResult | None] = [None] * len(messages)
        names = list(groups)
        answers = await asyncio.gather(
            *(self.carriers[n].submit_many([messages[i] for i in groups[n]]) for n in names)
        )
        for n, got in zip(names, answers, strict=True):
            for i, r in zip(groups[n], got, strict=True):
                results[i] = r
        return [r for r in results if r is not None]

    def accepts_mms(self, to_number: str) -> bool:
        name, _ = self.route(to_number, None)
        return self.carriers[name].accepts_mms(to_number)

    async def close(self) -> None:
        for c in self.carriers.values():
            await c.close()
