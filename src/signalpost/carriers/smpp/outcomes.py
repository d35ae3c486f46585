"""What an SMSC's answers mean for a message: submit_sm_resp statuses and delivery receipts.

submit_sm_resp command_status → outcome
=======================================
===========================================  ===========  =====================================
status                                       outcome      Telnyx code / what happens
===========================================  ===========  =====================================
0x00 ESME_ROK                                accepted     part `sent`, carrier id recorded
0x58 ESME_RTHROTTLED, 0x14 ESME_RMSGQFUL     throttled    the bind pauses (backoff), part resent
0x08 ESME_RSYSERR, 0x45 ESME_RSUBMITFAIL,    retry        resent later (bounded by the job's
0x04 ESME_RINVBNDSTS, 0x64 ESME_RX_T_APPN,                attempts), then `sending_failed` 40008
0x0D ESME_RBINDFAIL, generic_nack, no answer
0x0B ESME_RINVDSTADR, 0x50 ESME_RINVDSTTON,  rejected     `sending_failed`, 40012
0x51 ESME_RINVDSTNPI, 0x33 ESME_RINVNUMDESTS
0x0A ESME_RINVSRCADR, 0x48 ESME_RINVSRCTON,  rejected     `sending_failed`, 40013
0x49 ESME_RINVSRCNPI
0x01 ESME_RINVMSGLEN, 0x40 ESME_RINVESMCLASS, rejected    `sending_failed`, 40009
0x104 ESME_RINVDCS (SMPP 5.0), 0xC1/0xC2 TLV
0x66 ESME_RX_R_APPN                          rejected     `sending_failed`, 40004
0x65 ESME_RX_P_APPN                          rejected     `sending_failed`, 40008
any other status                             rejected     `sending_failed`, 40008
===========================================  ===========  =====================================

Delivery receipts
=================
The state comes from the ``message_state`` TLV when present, else from ``stat:`` in the text:

==================  =====  ====================  ===========
stat                state  status                Telnyx code
==================  =====  ====================  ===========
DELIVRD             2      delivered             –
EXPIRED             3      expired               40005
DELETED             4      delivery_failed       40008
UNDELIV             5      delivery_failed       40008
REJECTD             8      delivery_failed       40004
UNKNOWN             7      delivery_unconfirmed  –
ENROUTE, ACCEPTD    1, 6   (intermediate: the part stays `sent`)
==================  =====  ====================  ===========
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from signalpost.carriers.smpp.codec import (
    TLV_MESSAGE_STATE,
    TLV_NETWORK_ERROR_CODE,
    TLV_RECEIPTED_MESSAGE_ID,
)

SubmitOutcome = Literal["accepted", "throttled", "retry", "rejected"]
FinalStatus = Literal["delivered", "delivery_failed", "expired", "delivery_unconfirmed"]

ESME_ROK = 0x00
ESME_RTHROTTLED = 0x58
ESME_RMSGQFUL = 0x14
GENERIC_NACK = -1  # not a status: a generic_nack answered the submit_sm

_THROTTLED = {ESME_RTHROTTLED, ESME_RMSGQFUL}
_RETRY = {0x08, 0x45, 0x04, 0x64, 0x0D, GENERIC_NACK}
_REJECT_CODES = {
    **dict.fromkeys((0x0B, 0x50, 0x51, 0x33), "40012"),
    **dict.fromkeys((0x0A, 0x48, 0x49), "40013"),
    **dict.fromkeys((0x01, 0x40, 0x104, 0xC1, 0xC2), "40009"),
    0x66: "40004",
}


@dataclass(frozen=True)
class SubmitStatus:
    outcome: SubmitOutcome
    error_code: str | None = None


def submit_status(command_status: int) -> SubmitStatus:
    """The outcome of one submit_sm_resp (or `GENERIC_NACK`)."""
    if command_status == ESME_ROK:
        return SubmitStatus("accepted")
    if command_status in _THROTTLED:
        return SubmitStatus("throttled", "40011")
    if command_status in _RETRY:
        return SubmitStatus("retry", "40008")
    return SubmitStatus("rejected", _REJECT_CODES.get(command_status, "40008"))


# message_state TLV values (SMPP 3.4 §5.2.28)
_STATE_NAMES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
    9: "SKIPPED",
}
_FINAL: dict[str, tuple[FinalStatus, str | None]] = {
    "DELIVRD": ("delivered", None),
    "EXPIRED": ("expired", "40005"),
    "DELETED": ("delivery_failed", "40008"),
    "UNDELIV": ("delivery_failed", "40008"),
    "REJECTD": ("delivery_failed", "40004"),
    "SKIPPED": ("delivery_failed", "40008"),
    "UNKNOWN": ("delivery_unconfirmed", None),
}
_FIELD = re.compile(
    r"(?i)\b(id|sub|dlvrd|submit date|done date|stat|err|text)\s*:\s*"
    r"(.*?)(?=\s+(?:id|sub|dlvrd|submit date|done date|stat|err|text)\s*:|$)",
    re.DOTALL,
)


@dataclass(frozen=True)
class ReceiptInfo:
    """A delivery receipt: which submit it is about and what became of it. `status` None means an
    intermediate state (ENROUTE, ACCEPTD): nothing to record."""

    carrier_message_id: str
    stat: str
    status: FinalStatus | None
    error_code: str | None
    err: str | None
    network_error: str | None = None


def parse_receipt_text(text: str) -> dict[str, str]:
    """The ``key:value`` fields of a receipt text, keys lower-cased; unknown parts are ignored.
    ``text:`` runs to the end of the receipt."""
    fields: dict[str, str] = {}
    for match in _FIELD.finditer(text):
        key = match.group(1).lower()
        value = match.group(2).strip()
        if key == "text":
            value = text[match.start(2) :]
            fields[key] = value
            break
        fields.setdefault(key, value)
    return fields


def _tlv_string(value: bytes) -> str:
    return value.split(b"\x00", 1)[0].decode("ascii", "replace").strip()


def parse_receipt(text: str, tlvs: Iterable[tuple[int, bytes]]) -> ReceiptInfo | None:
    """A receipt from its TLVs (preferred) and its text (fallback); None without a message id."""
    found = dict(tlvs)
    fields = parse_receipt_text(text)
    carrier_id = ""
    if TLV_RECEIPTED_MESSAGE_ID in found:
        carrier_id = _tlv_string(found[TLV_RECEIPTED_MESSAGE_ID])
    if not carrier_id:
        carrier_id = fields.get("id", "")
    if not carrier_id:
        return None
    state = found.get(TLV_MESSAGE_STATE)
    if state:
        stat = _STATE_NAMES.get(state[0], "UNKNOWN")
    else:
        stat = fields.get("stat", "UNKNOWN").upper()[:7]
    network_error = None
    if TLV_NETWORK_ERROR_CODE in found and len(found[TLV_NETWORK_ERROR_CODE]) == 3:
        raw = found[TLV_NETWORK_ERROR_CODE]
        network_error = f"{raw[0]}:{int.from_bytes(raw[1:], 'big')}"
    status, code = _FINAL.get(stat, (None, None))
    if stat not in _FINAL and stat not in ("ENROUTE", "ACCEPTD"):
        status, code = "delivery_unconfirmed", None
    return ReceiptInfo(carrier_id, stat, status, code, fields.get("err"), network_error)
