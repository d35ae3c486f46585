"""An SMSC simulator for the SMPP tests, on smpp34's server (run it as a subprocess only: smpp34
can crash the interpreter at exit, so it leaves through os._exit).

    python tests/support/smsc_sim.py --port P --log submits.jsonl [--resp-delay 0.05] [--tap]

- every bind is accepted and logged (session, system_id, whether it can receive); every submit_sm
  is written to --log as one JSON line (session, message id, esm_class, data_coding,
  registered_delivery, addresses, short_message hex, TLVs);
- deliver_sm (receipts, MO) go only to sessions that can receive (receiver or transceiver binds):
  a receipt to the session that submitted when it can, else to another of the same system_id;
- answers: ESME_ROK with a decimal message id, except: the first --throttle-first submits get
  ESME_RTHROTTLED; a destination ending in 0011 gets ESME_RINVDSTADR;
- with registered_delivery & 1, a receipt follows after --dlr-delay: stat DELIVRD, or UNDELIV for a
  destination ending in 0012, EXPIRED for 0013, none for 0014 (text plus receipted_message_id and
  message_state TLVs);
- a deliver_sm with no session to take it (or that failed) is kept for the next bind;
- a text "ECHO <rest>" comes back as an MO from the destination with <rest>;
- commands on stdin, one JSON object a line:
  {"mo": {"src", "dst", "text", "dc": 0|1|3|8, "parts": n, "concat": "udh8"|"udh16"|"sar",
          "repeat": k, "session": i, "spread": bool, "skip": [seq, …]}}
      -> deliver_sm(s) on the i-th live receiving session (default 0); with "spread", part k on
         the (i + k - 1)-th; the parts whose numbers are in "skip" are never sent
  {"unbind": true}                    -> the SMSC unbinds every session
  {"receipt": {"id", "stat", "src", "dst", "text_only": bool}} -> a receipt for that id
- with --tap, the ESMEs connect to a relay in front of smpp34's server that logs the command of
  every PDU on the wire ({"event": "pdu", "conn": n, "from": "esme"|"smsc", "command": name,
  "status": command_status}), so that a test sees which bind command each connection used and
  what travelled on it. Binds as a receiver need it (see `Tap`).
Prints "ready <port>" when listening. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import socket
import struct
import sys
from typing import Any

import smpp34

STATES = {"DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "ACCEPTD": 6, "UNKNOWN": 7}
COMMANDS = {
    0x00000001: "bind_receiver",
    0x00000002: "bind_transmitter",
    0x00000009: "bind_transceiver",
    0x00000004: "submit_sm",
    0x00000005: "deliver_sm",
    0x00000006: "unbind",
    0x00000015: "enquire_link",
}
GSM_SAFE = "".join(chr(c) for c in range(32, 127) if chr(c) not in "@$_`[]{}\\^~|")


def text_of(body: bytes, dc: int) -> str:
    if dc == 8:
        return body.decode("utf-16-be", "replace")
    return body.decode("latin-1")


def encode(text: str, dc: int) -> bytes:
    if dc == 8:
        return text.encode("utf-16-be")
    if dc == 3:
        return text.encode("latin-1")
    return text.encode("ascii", "replace")


def receipt_text(mid: str, stat: str, head: str) -> bytes:
    now = dt.datetime.now(dt.UTC).strftime("%y%m%d%H%M")
    head = "".join(c if c in GSM_SAFE else "?" for c in head[:20])
    return (
        f"id:{mid} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} submit date:{now} "
        f"done date:{now} stat:{stat} err:{'000' if stat == 'DELIVRD' else '001'} text:{head}"
    ).encode()


class Sim:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sessions: dict[str, Any] = {}
        self.counter = 0
        self.log = open(args.log, "a", buffering=1) if args.log else None  # noqa: SIM115
        self.ref = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.kept: list[dict[str, Any]] = []  # deliveries waiting for a session

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def write(self, record: dict[str, Any]) -> None:
        if self.log is not None:
            self.log.write(json.dumps(record) + "\n")

    def receiving(self) -> list[str]:
        """The live sessions that can take a deliver_sm (receivers and transceivers)."""
        return [sid for sid, esme in self.sessions.items() if esme.can_receive]

    def receiver_for(self, sid: str | None) -> Any:
        """`sid` when it can receive, else a receiving session of the same system_id, else any."""
        esme = self.sessions.get(sid) if sid else None
        if esme is not None and esme.can_receive:
            return esme
        live = [self.sessions[s] for s in self.receiving()]
        same = [e for e in live if esme is not None and e.system_id == esme.system_id]
        return (same or live or [None])[0]

    async def deliver(self, sid: str | None, **kw: Any) -> None:
        esme = self.receiver_for(sid)
        if esme is None:
            # store and forward, as an SMSC does: to the next session that binds
            self.write({"event": "deliver_kept", "reason": "no session"})
            self.kept.append(kw)
            return
        try:
            resp = await esme.deliver_sm(**kw)
            self.write(
                {
                    "event": "deliver_resp",
                    "status": resp.command_status,
                    "session": esme.session_id,
                    "esm": kw.get("esm_class", 0),
                }
            )
        except Exception as exc:
            self.write({"event": "deliver_failed", "error": repr(exc)})
            self.kept.append(kw)

    async def receipt(
        self,
        sid: str | None,
        mid: str,
        src: str,
        dst: str,
        stat: str,
        head: str,
        text_only: bool = False,
        dc: int = 0,
    ) -> None:
        await asyncio.sleep(self.args.dlr_delay)
        tlvs = (
            []
            if text_only
            else [
                smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, mid.encode() + b"\0"),
                smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, bytes([STATES.get(stat, 7)])),
            ]
        )
        await self.deliver(
            sid,
            destination_addr=src,
            short_message=receipt_text(mid, stat, head),
            source_addr=dst,
            esm_class=0x04,
            data_coding=dc,
            tlvs=tlvs,
        )

    async def mo(self, spec: dict[str, Any]) -> None:
        dc = int(spec.get("dc", 0))
        text = str(spec.get("text", ""))
        parts = int(spec.get("parts", 1))
        live = self.receiving()
        index = int(spec.get("session", 0))
        skip = {int(seq) for seq in spec.get("skip", [])}
        sid = live[index % len(live)] if live else None
        self.ref = (self.ref + 1) % 256
        chunks = [text[i * len(text) // parts : (i + 1) * len(text) // parts] for i in range(parts)]
        for _ in range(int(spec.get("repeat", 1))):
            for seq, chunk in enumerate(chunks, 1):
                if seq in skip:
                    continue
                body, esm, tlvs = encode(chunk, dc), 0, []
                if parts > 1 and spec.get("concat", "udh8") == "udh8":
                    body, esm = bytes([5, 0, 3, self.ref, parts, seq]) + body, 0x40
                elif parts > 1 and spec.get("concat") == "udh16":
                    body, esm = bytes([6, 8, 4, 1, self.ref, parts, seq]) + body, 0x40
                elif parts > 1:
                    tlvs = [
                        smpp34.Tlv(smpp34.TLV_SAR_MSG_REF_NUM, bytes([2, self.ref])),
                        smpp34.Tlv(smpp34.TLV_SAR_TOTAL_SEGMENTS, bytes([parts])),
                        smpp34.Tlv(smpp34.TLV_SAR_SEGMENT_SEQNUM, bytes([seq])),
                    ]
                target = live[(index + seq - 1) % len(live)] if spec.get("spread") and live else sid
                await self.deliver(
                    target,
                    destination_addr=spec["dst"],
                    short_message=body,
                    source_addr=spec["src"],
                    esm_class=esm,
                    data_coding=dc,
                    tlvs=tlvs,
                )

    async def command(self, line: str) -> None:
        cmd = json.loads(line)
        if "mo" in cmd:
            await self.mo(cmd["mo"])
        if cmd.get("unbind"):
            for esme in list(self.sessions.values()):
                try:
                    await esme.unbind()
                except Exception as exc:
                    self.write({"event": "unbind_failed", "error": repr(exc)})
        if "receipt" in cmd:
            r = cmd["receipt"]
            await self.receipt(
                None,
                r["id"],
                r.get("src", "1"),
                r.get("dst", "2"),
                r.get("stat", "DELIVRD"),
                "",
                bool(r.get("text_only")),
                int(r.get("dc", 0)),
            )

    def submit(self, ev: Any) -> None:
        sm = bytes(ev.short_message or b"")
        body = sm[1 + sm[0] :] if ev.esm_class & 0x40 and sm else sm
        self.counter += 1
        mid = str(self.counter)
        dst = ev.destination_addr
        status = 0
        if self.counter <= self.args.throttle_first:
            status = smpp34.ESME_RTHROTTLED
        elif dst.endswith("0011"):
            status = smpp34.ESME_RINVDSTADR
        self.write(
            {
                "event": "submit",
                "mid": mid if status == 0 else None,
                "status": status,
                "session": ev.session_id,
                "esm": ev.esm_class,
                "dc": ev.data_coding,
                "rd": ev.registered_delivery,
                "src": ev.source_addr,
                "dst": dst,
                "src_ton": ev.source_addr_ton,
                "dst_ton": ev.dest_addr_ton,
                "sm": sm.hex(),
                "tlvs": {hex(t.tag): bytes(t.value).hex() for t in ev.tlvs},
            }
        )
        self.spawn(self.answer(ev, mid, status))
        if status:
            return
        text = text_of(body, ev.data_coding)
        stat = {"0012": "UNDELIV", "0013": "EXPIRED"}.get(dst[-4:], "DELIVRD")
        if ev.registered_delivery & 1 and not dst.endswith("0014"):
            self.spawn(self.receipt(ev.session_id, mid, ev.source_addr, dst, stat, text))
        if text.startswith("ECHO "):
            self.spawn(
                self.mo(
                    {
                        "src": dst,
                        "dst": ev.source_addr,
                        "text": text[5:],
                        "dc": 8 if ev.data_coding == 8 else 0,
                    }
                )
            )

    async def answer(self, ev: Any, mid: str, status: int) -> None:
        if self.args.resp_delay > 0:
            await asyncio.sleep(self.args.resp_delay)
        if status:
            ev.reject(status)
        else:
            ev.accept(message_id=mid)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BIND_RECEIVER, BIND_TRANSCEIVER, RESP = 0x00000001, 0x00000009, 0x80000000


class Tap:
    """A relay between the ESMEs and smpp34's server that logs the command (and status) of every
    PDU as the ESME sees it on the wire.

    smpp34 1.5.0's server never completes a deliver_sm on a session bound as a receiver (the
    deliver_sm_resp is on the wire, its `deliver_sm` call never returns), so the relay presents a
    bind_receiver to it as a bind_transceiver, and its answer back as a bind_receiver_resp."""

    def __init__(self, sim: Sim, inner_port: int) -> None:
        self.sim = sim
        self.inner_port = inner_port
        self.connections = 0

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.inner_port)
        except OSError:
            writer.close()
            return
        receiver: list[bool] = []  # set once the ESME bound as a receiver
        await asyncio.gather(
            self.relay(conn, "esme", reader, up_writer, receiver),
            self.relay(conn, "smsc", up_reader, writer, receiver),
        )

    async def relay(
        self,
        conn: int,
        side: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        receiver: list[bool],
    ) -> None:
        try:
            while True:
                head = await reader.readexactly(16)
                length, command, status = struct.unpack(">III", head[:12])
                body = await reader.readexactly(max(0, length - 16))
                wire = command  # as the ESME sends or sees it
                if side == "esme" and command == BIND_RECEIVER:
                    receiver.append(True)
                    command = BIND_TRANSCEIVER
                elif side == "smsc" and receiver and command == RESP | BIND_TRANSCEIVER:
                    command = wire = RESP | BIND_RECEIVER
                name = COMMANDS.get(wire & ~RESP, hex(wire & ~RESP))
                name = "generic_nack" if wire == RESP else name + ("_resp" if wire & RESP else "")
                self.sim.write(
                    {"event": "pdu", "conn": conn, "from": side, "command": name, "status": status}
                )
                writer.write(head[:4] + struct.pack(">I", command) + head[8:] + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", default="")
    ap.add_argument("--dlr-delay", type=float, default=0.05)
    ap.add_argument("--resp-delay", type=float, default=0.0)
    ap.add_argument("--throttle-first", type=int, default=0)
    ap.add_argument("--tap", action="store_true", help="log every PDU's command on the wire")
    args = ap.parse_args()
    sim = Sim(args)
    inner = free_port() if args.tap else args.port
    server = smpp34.Server(
        host="127.0.0.1", port=inner, system_id="SIMSMSC", inbound_capacity=100_000
    )
    await server.start()
    if args.tap:
        tap = Tap(sim, inner)
        await asyncio.start_server(tap.connection, "127.0.0.1", args.port)
    print(f"ready {args.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def pump() -> None:
        while True:
            ev = await server.next()
            if isinstance(ev, smpp34.Esme):
                sim.sessions[ev.session_id] = ev
                sim.write(
                    {
                        "event": "bind",
                        "session": ev.session_id,
                        "system_id": ev.system_id,
                        "can_receive": ev.can_receive,
                    }
                )
                kept, sim.kept = sim.kept, []
                for kw in kept:
                    sim.spawn(sim.deliver(ev.session_id, **kw))
            elif isinstance(ev, smpp34.SubmitSmEvent):
                sim.submit(ev)
            elif isinstance(ev, smpp34.Unbound):
                sim.sessions.pop(ev.session_id, None)
                sim.write({"event": "unbound", "session": ev.session_id})

    async def commands() -> None:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return
            if line.strip():
                await sim.command(line)

    tasks = [asyncio.create_task(pump()), asyncio.create_task(commands())]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await server.stop()
    # leave now: the stdin reader thread would hold up the interpreter, and smpp34 can crash it
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
