"""A simulated handset's WhatsApp message (`POST /simulator/inbound`)."""

from __future__ import annotations

from typing import Any

from signalpost.kit import phone
from signalpost.kit.errors import invalid
from signalpost.messages.inbound import Incoming
from signalpost.messages.whatsapp.validation import parse_message
from signalpost.messages.whatsapp.wire import inbound_body, text_of


def simulated_incoming(sender: str, to: str, raw: Any) -> Incoming:
    """A simulated handset's WhatsApp message (`POST /simulator/inbound`), checked (422)."""
    if not phone.is_e164(sender):
        raise invalid("/from", f"'{sender}' is not a +E.164 phone number.")
    if not phone.is_e164(to):
        raise invalid("/to", f"'{to}' is not a +E.164 phone number.")
    msg, kind = parse_message(raw)
    return Incoming(
        from_=sender,
        to=to,
        text=text_of(msg, kind),
        message_type="WHATSAPP",
        body=inbound_body(msg, kind, sender),
    )
