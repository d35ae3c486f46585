"""The SMPP binds of one process: leases in the database decide which process holds each
configured bind (exactly one at a time; another takes it over `smpp_lease_seconds` after its holder
died), the sessions of the binds held here, the jobs only a holder may run, and the periodic sweep.

Jobs:
- `smpp.deliver` (every process): what a deliver_sm carried, written by the session before it
  acknowledges the PDU (`carriers.smpp.inbound`).
- `smpp.submit.<carrier>` (registered only while this process has a bound session of that carrier,
  so only holders claim them): messages another process handed over (`carriers.smpp.carrier`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from signalpost.carriers.base import MessageEvents
from signalpost.carriers.smpp import inbound, store
from signalpost.carriers.smpp.carrier import SmppCarrier, submit_job
from signalpost.carriers.smpp.pdu import DeliverSmPdu
from signalpost.carriers.smpp.session import BindConfig, SmppSession
from signalpost.kit.clock import utcnow
from signalpost.kit.db import Database
from signalpost.kit.queue import (
    Job,
    JobKind,
    RetryLater,
    RetryPolicy,
    complete_many_within,
    enqueue_many,
    held,
)
from signalpost.settings import CarrierConfig, Settings, SmppBind

log = logging.getLogger("signalpost.smpp")

SWEEP_SECONDS = 2.0
CLEANUP_SECONDS = 300.0


@dataclass(frozen=True)
class BindSpec:
    """A configured bind: its lease key and its session(s) (two for transmitter + receiver)."""

    key: str
    carrier: str
    configs: tuple[BindConfig, ...]


def _session_config(carrier: str, index: int, bind: SmppBind, mode: str) -> BindConfig:
    return BindConfig(
        host=bind.host,
        port=bind.port,
        system_id=bind.system_id,
        password=bind.password_text,
        name=f"{carrier}#{index}" + ("" if mode == "transceiver" else f"/{mode[:2]}"),
        system_type=bind.system_type,
        mode=mode,  # type: ignore[arg-type]
        window=bind.window,
        messages_per_second=bind.messages_per_second,
        source_ton=bind.source_ton,
        source_npi=bind.source_npi,
        destination_ton=bind.destination_ton,
        destination_npi=bind.destination_npi,
        enquire_link_interval=bind.enquire_link_interval,
        registered_delivery=bind.registered_delivery,
        response_timeout=bind.response_timeout,
    )


def bind_specs(carriers: Sequence[CarrierConfig]) -> list[BindSpec]:
    specs = []
    for c in carriers:
        if c.kind != "smpp":
            continue
        for i, b in enumerate(c.binds):
            modes = (
                ("transceiver",) if b.bind_mode == "transceiver" else ("transmitter", "receiver")
            )
            configs = tuple(_session_config(c.name, i, b, m) for m in modes)
            specs.append(BindSpec(f"{c.name}/{i}", c.name, configs))
    return specs


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class SmppRuntime:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        kinds: dict[str, JobKind],
        events: MessageEvents,
    ) -> None:
        self.settings = settings
        self.db = db
        self.kinds = kinds
        self.events = events
        self.holder = holder_name()
        self.specs = bind_specs(settings.carriers)
        self.sessions: dict[str, list[SmppSession]] = {}
        self.carriers = {
            c.name: SmppCarrier(
                c.name,
                db,
                lambda name=c.name: self.bound_sessions(name),  # type: ignore[misc]
                lambda name=c.name: self.bound_anywhere(name),  # type: ignore[misc]
                settings.message_validity_seconds,
            )
            for c in settings.carriers
            if c.kind == "smpp"
        }
        self._bound_cache: tuple[float, set[str]] = (0.0, set())
        self._task: asyncio.Task[None] | None = None
        self._last_cleanup = 0.0

    # ------------------------------------------------------------------ queries
    def bound_sessions(self, carrier: str) -> list[SmppSession]:
        """This process's bound sessions of `carrier` that can submit."""
        return [
            s
            for spec in self.specs
            if spec.carrier == carrier
            for s in self.sessions.get(spec.key, [])
            if s.bound and s.config.mode != "receiver"
        ]

    async def bound_anywhere(self, carrier: str) -> bool:
        """Whether some process holds a bound session of `carrier` (cached a second)."""
        if self.bound_sessions(carrier):
            return True
        at, names = self._bound_cache
        if time.monotonic() - at > 1.0:
            async with self.db.transaction() as uow:
                names = await store.bound_carriers(uow, utcnow())
            self._bound_cache = (time.monotonic(), names)
        return carrier in names

    def local_status(self) -> list[dict[str, Any]]:
        out = []
        for spec in self.specs:
            for s in self.sessions.get(spec.key, []):
                out.append({"bind": spec.key, "session": s.config.label, **_stats(s)})
        return out

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        async with self.db.transaction() as uow:
            await store.ensure_binds(uow, {s.key: s.carrier for s in self.specs}, utcnow())
        self.kinds[inbound.DELIVER_JOB] = JobKind(
            batch=self._deliver_batch,
            batch_size=400,
            retry=RetryPolicy(max_attempts=20, base=0.5, cap=60),
        )
        self._task = asyncio.create_task(self._run(), name="smpp runtime")

    async def aclose(self) -> None:
        """Stop the sessions held here and give their leases back."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for key in list(self.sessions):
            await self._drop(key)
        self._update_kinds()

    async def _run(self) -> None:
        interval = self.settings.smpp_lease_seconds / 3
        last_sweep = 0.0
        while True:
            for spec in self.specs:
                try:
                    await self._tend(spec)
                except Exception:
                    log.exception("smpp bind %s: lease step failed", spec.key)
            self._update_kinds()
            if time.monotonic() - last_sweep >= SWEEP_SECONDS:
                last_sweep = time.monotonic()
                try:
                    await self._sweep()
                except Exception:
                    log.exception("smpp sweep failed")
            await asyncio.sleep(min(interval, SWEEP_SECONDS))

    async def _tend(self, spec: BindSpec) -> None:
        now = utcnow()
        until = now + timedelta(seconds=self.settings.smpp_lease_seconds)
        sessions = self.sessions.get(spec.key)
        async with self.db.transaction() as uow:
            if sessions is None:
                ours = await store.take_lease(uow, spec.key, self.holder, now, until)
            else:
                state = "bound" if all(s.bound for s in sessions) else "connecting"
                stats = _merged(sessions)
                ours = await store.report(uow, spec.key, self.holder, now, until, state, stats)
        if sessions is None and ours:
            log.info("smpp bind %s: lease taken by %s", spec.key, self.holder)
            started = [SmppSession(c, self._deliverer(spec.carrier)) for c in spec.configs]
            for s in started:
                s.start()
            self.sessions[spec.key] = started
        elif sessions is not None and not ours:
            log.warning("smpp bind %s: lease lost; stopping its sessions", spec.key)
            await self._drop(spec.key, release=False)

    async def _drop(self, key: str, *, release: bool = True) -> None:
        for s in self.sessions.pop(key, []):
            await s.stop()
        if release:
            async with self.db.transaction() as uow:
                await store.release(uow, key, self.holder, utcnow())

    def _update_kinds(self) -> None:
        for name in self.carriers:
            job = submit_job(name)
            if self.bound_sessions(name):
                if job not in self.kinds:
                    self.kinds[job] = JobKind(
                        batch=functools.partial(self._submit_batch, name),
                        batch_size=200,
                        size=lambda job: len(job.payload["message_ids"]),
                        retry=RetryPolicy(max_attempts=10, base=0.5, cap=30),
                    )
            else:
                self.kinds.pop(job, None)

    def _deliverer(self, carrier: str) -> Any:
        async def deliver(pdus: Sequence[DeliverSmPdu]) -> None:
            if not pdus:
                return
            async with self.db.transaction() as uow:
                await enqueue_many(
                    uow,
                    [
                        {"kind": inbound.DELIVER_JOB, "payload": inbound.to_payload(carrier, p)}
                        for p in pdus
                    ],
                )

        return deliver

    # ------------------------------------------------------------------ jobs
    async def _deliver_batch(self, db: Database, batch: Sequence[Job]) -> dict[int, Exception]:
        outcomes: dict[int, Exception] = {}
        async with db.transaction() as uow:
            mine = await held(uow, batch)
            delays = await inbound.apply_many(
                uow,
                self.events,
                [job.payload for job in mine],
                duplicate_seconds=self.settings.smpp_duplicate_seconds,
                reassembly_seconds=self.settings.smpp_reassembly_seconds,
            )
            done = []
            for job, delay in zip(mine, delays, strict=True):
                if delay is None:
                    done.append(job)
                else:
                    outcomes[job.id] = RetryLater(delay)
            await complete_many_within(uow, done)
        return outcomes

    async def _submit_batch(
        self, name: str, db: Database, batch: Sequence[Job]
    ) -> dict[int, Exception]:
        carrier = self.carriers[name]
        async with db.transaction() as uow:
            mine = await held(uow, batch)
            ids = list(dict.fromkeys(i for j in mine for i in j.payload["message_ids"]))
            submissions = await self.events.sending(uow, ids)
        if not self.bound_sessions(name):
            return {j.id: RetryLater(0.5) for j in mine}
        results = await carrier.submit_here(submissions)
        async with db.transaction() as uow:
            mine = await held(uow, mine)
            answers = [(s.message_id, r) for s, r in zip(submissions, results, strict=True)]
            await self.events.record(uow, answers)
            await complete_many_within(uow, mine)
        return {}

    async def _sweep(self) -> None:
        now = utcnow()
        stale = now - timedelta(seconds=self.settings.smpp_reassembly_seconds)
        async with self.db.transaction() as uow:
            expired = await store.expire_parts(uow, now)
            if expired:
                await inbound.settle_messages(uow, self.events, expired)
            for key in await store.stale_mo_keys(uow, stale):
                parts = [p for p in await store.mo_parts(uow, key) if not p["done"]]
                carrier = key.split("/", 1)[0]
                await inbound.deliver_parts(uow, self.events, carrier, key, parts)
            if time.monotonic() - self._last_cleanup > CLEANUP_SECONDS:
                self._last_cleanup = time.monotonic()
                await store.cleanup(uow, now, now - timedelta(days=1))


def _stats(s: SmppSession) -> dict[str, Any]:
    st = s.stats
    return {
        "state": st.state,
        "in_flight": s.in_flight,
        "submitted": st.submitted,
        "failed": st.failed,
        "throttled": st.throttled,
        "receipts": st.receipts,
        "inbound": st.inbound,
        "last_receipt_at": st.last_receipt_at,
        "last_error": st.last_error,
        "last_error_at": st.last_error_at,
        "bound_since": st.bound_since,
    }


def _merged(sessions: Sequence[SmppSession]) -> dict[str, Any]:
    """One bind's figures (its sessions added up), as stored for `carriers status`."""
    parts = [_stats(s) for s in sessions]
    out: dict[str, Any] = {"sessions": parts}
    for key in ("in_flight", "submitted", "failed", "throttled", "receipts", "inbound"):
        out[key] = sum(p[key] for p in parts)
    times = [p["last_receipt_at"] for p in parts if p["last_receipt_at"]]
    out["last_receipt_at"] = max(times) if times else None
    errors = [p for p in parts if p["last_error"]]
    last = max(errors, key=lambda p: p["last_error_at"] or 0) if errors else None
    out["last_error"] = last["last_error"] if last else None
    out["last_error_at"] = last["last_error_at"] if last else None
    return out
