"""Request bodies of the simulator's endpoints."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from signalpost.kit import phone
from signalpost.kit.errors import invalid
from signalpost.messages.errors import rejection
from signalpost.messages.inbound import Incoming
from signalpost.messages.media import check_urls
from signalpost.messages.whatsapp.inbound import simulated_incoming


class SimulatedInbound(BaseModel):
    """`POST /simulator/inbound`: a handset writes to one of the caller's numbers."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_: str = Field(alias="from", description="The handset, +E.164.")
    to: str = Field(description="One of your numbers (+E.164) or short codes.")
    text: str | None = None
    media_urls: list[str] | None = None
    subject: str | None = None
    whatsapp_message: dict[str, Any] | None = Field(
        default=None,
        description="Makes it a WhatsApp message: content as in POST /v2/messages/whatsapp.",
    )

    def incoming(self) -> Incoming:
        """Checked addresses and content (422 10015 / 400 40316), as an `Incoming`."""
        src, dst = self.from_.strip(), self.to.strip()
        if self.whatsapp_message is not None:
            return simulated_incoming(src, dst, self.whatsapp_message)
        if not (phone.is_e164(src) or phone.SHORT_CODE.match(src)):
            raise invalid("/from", f"'{src}' is not a +E.164 phone number or short code.")
        if not (phone.is_e164(dst) or phone.SHORT_CODE.match(dst)):
            raise invalid("/to", f"'{dst}' is not a +E.164 phone number or short code.")
        media = check_urls(self.media_urls or [])
        if not self.text and not media:
            raise rejection(
                "40316", "No content", "A message needs 'text' or 'media_urls'.", "/text"
            )
        return Incoming(
            from_=src, to=dst, text=self.text or None, media_urls=media, subject=self.subject
        )
