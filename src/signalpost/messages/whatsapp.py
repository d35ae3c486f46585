"""WhatsApp messages: `POST /v2/messages/whatsapp` (contract §5.11) and its content (§6).

Validation. `whatsapp_message` is checked in two steps, both answering 422 with a JSON pointer to
the offending field (`/whatsapp_message/image/link`): the pydantic models below check shapes,
enums and lengths (FastAPI maps their errors, code 10015, missing fields 10004); `check_message`
checks what depends on `type`: the object named by `type` must be present and no other content
object may be (`type` may be left out when exactly one content object is given), and each kind
has its required fields — `text.body`; a media `link` that is an http(s) URL (captions only on
image, video and document, `filename` only on document, `voice` only on audio); `location`
coordinates as decimal strings within range; `reaction.message_id`; at least one contact, each
with `name.formatted_name`; `interactive` per its type (1–3 reply buttons with unique ids; a list
with a button label and 1–10 sections of at most 10 rows in all; `cta_url` parameters; a carousel
of 2–10 cards with unique `card_index` and an image or video header each; a flow with version "3",
a `flow_cta` and exactly one of `flow_id`/`flow_name`); a template named by `template_id` or by
`name` plus `language`, button components with `sub_type` and `index`. The accepted superset is
the Python SDK's (flows included).

Sending. `from` must be a phone number of the organization with WhatsApp enabled
(`phone_numbers.whatsapp_enabled`, CLI `signalpost numbers whatsapp enable`), else 40305. `to` is
a +E.164 number or a business-scoped user id (`US.13491208655302741918`), else 40310. The message
belongs to `messaging_profile_id` when given (it must be the organization's), else to the
number's profile; without either, 10004. The stored message has `type` WHATSAPP, `encoding`
`utf-8` and `body` = the validated `whatsapp_message`; it goes through the same lifecycle and
webhooks as an SMS (`message.sent`, `message.finalized`) followed, once the recipient has read it,
by `message.read` (`to[].status` `read`). signalpost has no WhatsApp Business upstream: WhatsApp
traffic always goes through the carrier simulator, whatever carrier SMS use, and the simulated
recipient reads a delivered message `READ_DELAY` seconds after its delivery receipt.

Send response (`MessageWhatsappResponse`): `id`, `record_type`, `direction`, `type` WHATSAPP,
`encoding` utf-8, `from` with `status` `received`, `to[]` with `status` `queued`, `body`,
`messaging_profile_id`, `organization_id`, `received_at`, `wait_seconds`. The SDK's response model
for `body` is narrower than its request model, so the echo in the send response only is adapted to
validate in strict clients: a contact's `name` object is given as its `formatted_name` string, and
the enum values that model lacks (interactive type `flow`, template component `sub_type` `flow`,
parameter type `action`) are left out. `GET /v2/messages/{id}` and the webhooks carry the body as
sent, except that their model (`OutboundMessagePayload.body`) types `text` as a string, so a text
message's `text` object is given there as its `body` string (`schemas.outbound_body`).

Inbound. A simulated handset's WhatsApp message (`POST /simulator/inbound` with a
`whatsapp_message` of the same shape) arrives as `message.received` with `type` WHATSAPP, `to` the
receiving number as one string, and `body` = `{id, foreign_id, from, timestamp, type, <content>}`
as Telnyx forwards it (text as `{"body": ...}`, location coordinates as numbers).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy.engine import RowMapping

from signalpost.accounts.service import Organization
from signalpost.carriers.base import Carrier, SubmitResult
from signalpost.context import AppContext
from signalpost.kit import ids, phone
from signalpost.kit.clock import iso, parse_datetime, utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import ApiError, invalid
from signalpost.kit.queue import Job, JobKind, RetryLater, RetryPolicy, enqueue, enqueue_items
from signalpost.messages import ratelimit
from signalpost.messages import repository as repo
from signalpost.messages.errors import invalid_from, invalid_to, rejection
from signalpost.messages.media import url_problem
from signalpost.messages.pricing import price
from signalpost.messages.service import SEND_ATTEMPTS, SEND_JOB

if TYPE_CHECKING:
    from signalpost.messages.inbound import Incoming

CONTENT_TYPES = (
    "audio",
    "document",
    "image",
    "sticker",
    "video",
    "interactive",
    "location",
    "template",
    "reaction",
    "contacts",
    "text",
)
MEDIA_TYPES = ("audio", "document", "image", "sticker", "video")
BSUID = re.compile(r"^[A-Z]{2}\.[0-9]{5,40}\Z")
ENCODING = "utf-8"
READ_JOB = "message.read"
READ_DELAY = 0.05  # seconds between the delivery receipt and the read receipt (simulated)
READ_RECHECK = 0.1
CHANNEL_KEY = "whatsapp.channel"

ContentType = Literal[
    "audio",
    "document",
    "image",
    "sticker",
    "video",
    "interactive",
    "location",
    "template",
    "reaction",
    "contacts",
    "text",
]


# --- request models (the Python SDK's `MessageWhatsappParams`, a superset of the TS one) ---------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


Text = Annotated[str, Field(max_length=4096)]


class WhatsappMedia(_Model):
    link: str | None = None
    caption: Annotated[str, Field(max_length=1024)] | None = None
    filename: Annotated[str, Field(max_length=240)] | None = None
    voice: bool | None = None


class WhatsappText(_Model):
    body: Text
    preview_url: bool | None = None


class WhatsappLocation(_Model):
    latitude: str | None = None
    longitude: str | None = None
    name: Annotated[str, Field(max_length=1000)] | None = None
    address: Annotated[str, Field(max_length=1000)] | None = None


class WhatsappReaction(_Model):
    message_id: str | None = None
    emoji: Annotated[str, Field(max_length=16)] | None = None


class ContactName(_Model):
    formatted_name: str
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    prefix: str | None = None
    suffix: str | None = None


class ContactAddress(_Model):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    type: str | None = None


class ContactEmail(_Model):
    email: str | None = None
    type: str | None = None


class ContactOrg(_Model):
    company: str | None = None
    department: str | None = None
    title: str | None = None


class ContactPhone(_Model):
    phone: str | None = None
    type: str | None = None
    wa_id: str | None = None


class ContactUrl(_Model):
    url: str | None = None
    type: str | None = None


class WhatsappContact(_Model):
    name: ContactName | None = None
    birthday: str | None = None
    addresses: list[ContactAddress] | None = None
    emails: list[ContactEmail] | None = None
    org: ContactOrg | None = None
    phones: list[ContactPhone] | None = None
    urls: list[ContactUrl] | None = None


class ButtonReply(_Model):
    id: Annotated[str, Field(max_length=256)] | None = None
    title: Annotated[str, Field(max_length=20)] | None = None


class ActionButton(_Model):
    type: Literal["reply"] | None = None
    reply: ButtonReply | None = None


class CardHeader(_Model):
    type: Literal["image", "video"] | None = None
    image: WhatsappMedia | None = None
    video: WhatsappMedia | None = None


class CardBody(_Model):
    text: Annotated[str, Field(max_length=160)] | None = None


class CardAction(_Model):
    catalog_id: str | None = None
    product_retailer_id: str | None = None


class ActionCard(_Model):
    card_index: Annotated[int, Field(ge=0, le=9)] | None = None
    type: Literal["cta_url"] | None = None
    header: CardHeader | None = None
    body: CardBody | None = None
    action: CardAction | None = None


class SectionRow(_Model):
    id: Annotated[str, Field(max_length=200)] | None = None
    title: Annotated[str, Field(max_length=24)] | None = None
    description: Annotated[str, Field(max_length=72)] | None = None


class ProductItem(_Model):
    product_retailer_id: str | None = None


class ActionSection(_Model):
    title: Annotated[str, Field(max_length=24)] | None = None
    rows: list[SectionRow] | None = None
    product_items: list[ProductItem] | None = None


class FlowActionPayload(_Model):
    screen: str | None = None
    data: dict[str, Any] | None = None


class ActionParameters(_Model):
    display_text: Annotated[str, Field(max_length=20)] | None = None
    url: str | None = None
    flow_id: str | None = None
    flow_name: str | None = None
    flow_cta: Annotated[str, Field(max_length=20)] | None = None
    flow_message_version: str | None = None
    flow_token: str | None = None
    flow_action: Literal["navigate", "data_exchange"] | None = None
    flow_action_payload: FlowActionPayload | None = None
    mode: Literal["draft", "published"] | None = None


class InteractiveAction(_Model):
    button: Annotated[str, Field(max_length=20)] | None = None
    buttons: list[ActionButton] | None = None
    sections: list[ActionSection] | None = None
    cards: list[ActionCard] | None = None
    catalog_id: str | None = None
    product_retailer_id: str | None = None
    name: str | None = None
    mode: str | None = None
    parameters: ActionParameters | None = None


class InteractiveHeader(_Model):
    type: Literal["document", "image", "text", "video"]
    text: Annotated[str, Field(max_length=60)] | None = None
    sub_text: Annotated[str, Field(max_length=60)] | None = None
    image: WhatsappMedia | None = None
    video: WhatsappMedia | None = None
    document: WhatsappMedia | None = None


class InteractiveBody(_Model):
    text: Annotated[str, Field(max_length=1024)] | None = None


class InteractiveFooter(_Model):
    text: Annotated[str, Field(max_length=60)] | None = None


class WhatsappInteractive(_Model):
    type: (
        Literal["cta_url", "list", "carousel", "button", "location_request_message", "flow"] | None
    ) = None
    header: InteractiveHeader | None = None
    body: InteractiveBody | None = None
    footer: InteractiveFooter | None = None
    action: InteractiveAction | None = None


class TemplateLanguage(_Model):
    code: str
    policy: str | None = None


class TemplateParameterAction(_Model):
    flow_token: str | None = None
    flow_action_data: dict[str, Any] | None = None


class TemplateParameter(_Model):
    type: (
        Literal["text", "image", "video", "document", "currency", "date_time", "action"] | None
    ) = None
    text: str | None = None
    action: TemplateParameterAction | None = None
    # Meta's own parameter payloads for the non-text kinds (not in the SDK types; accepted as given).
    image: WhatsappMedia | None = None
    video: WhatsappMedia | None = None
    document: WhatsappMedia | None = None
    currency: dict[str, Any] | None = None
    date_time: dict[str, Any] | None = None


class TemplateComponent(_Model):
    type: Literal["header", "body", "button"] | None = None
    sub_type: Literal["quick_reply", "url", "flow"] | None = None
    index: Annotated[int, Field(ge=0, le=9)] | None = None
    parameters: list[TemplateParameter] | None = None


class WhatsappTemplate(_Model):
    template_id: str | None = None
    name: Annotated[str, Field(max_length=512)] | None = None
    language: TemplateLanguage | None = None
    components: list[TemplateComponent] | None = None


class WhatsappMessage(_Model):
    """`whatsapp_message`: `type` names the sibling object that carries the content."""

    type: ContentType | None = None
    text: WhatsappText | None = None
    image: WhatsappMedia | None = None
    audio: WhatsappMedia | None = None
    video: WhatsappMedia | None = None
    document: WhatsappMedia | None = None
    sticker: WhatsappMedia | None = None
    location: WhatsappLocation | None = None
    reaction: WhatsappReaction | None = None
    contacts: list[WhatsappContact] | None = None
    interactive: WhatsappInteractive | None = None
    template: WhatsappTemplate | None = None
    biz_opaque_callback_data: Annotated[str, Field(max_length=512)] | None = None


class WhatsappSend(_Model):
    """`POST /messages/whatsapp`."""

    from_: str = Field(alias="from")
    to: str
    whatsapp_message: WhatsappMessage
    messaging_profile_id: str | None = None
    type: Literal["WHATSAPP"] | None = None
    webhook_url: str | None = None


# --- checks that depend on `type` --------------------------------------------------------------


def _missing(pointer: str, detail: str) -> ApiError:
    return ApiError(
        422, "10004", "Missing required parameter", detail, pointer=pointer, should_retry=False
    )


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


_message_adapter: TypeAdapter[WhatsappMessage] = TypeAdapter(WhatsappMessage)


def parse_message(raw: Any, base: str = "/whatsapp_message") -> tuple[WhatsappMessage, str]:
    """Validate a `whatsapp_message` (shape, then `check_message`); returns it and its type."""
    from fastapi.exceptions import RequestValidationError

    from signalpost.kit.errors import validation_errors

    try:
        msg = _message_adapter.validate_python(raw)
    except ValidationError as exc:
        prefix = [p for p in base.split("/") if p]
        located = [{**e, "loc": ("body", *prefix, *e["loc"])} for e in exc.errors()]
        raise validation_errors(RequestValidationError(located))[0] from None
    return msg, check_message(msg, base)


def check_message(msg: WhatsappMessage, base: str = "/whatsapp_message") -> str:
    """Check what depends on `type`; returns the content type. Raises 422 with a pointer."""
    present = [t for t in CONTENT_TYPES if getattr(msg, t) is not None]
    kind: str | None = msg.type
    if kind is None:
        if len(present) != 1:
            detail = (
                f"'type' is required: one of {', '.join(CONTENT_TYPES)}."
                if not present
                else f"'type' is required to choose among {', '.join(present)}."
            )
            raise _missing(f"{base}/type", detail)
        kind = present[0]
    if getattr(msg, kind) is None:
        raise _missing(f"{base}/{kind}", f"A message of type '{kind}' needs the '{kind}' object.")
    for other in present:
        if other != kind:
            raise invalid(
                f"{base}/{other}", f"'{other}' does not belong in a message of type '{kind}'."
            )
    at = f"{base}/{kind}"
    if kind == "text":
        assert msg.text is not None
        if _blank(msg.text.body):
            raise invalid(f"{at}/body", "The text body must not be empty.")
    elif kind in MEDIA_TYPES:
        media = getattr(msg, kind)
        _check_media(media, at, kind)
    elif kind == "location":
        assert msg.location is not None
        _check_location(msg.location, at)
    elif kind == "reaction":
        assert msg.reaction is not None
        if _blank(msg.reaction.message_id):
            raise _missing(f"{at}/message_id", "A reaction needs the 'message_id' it reacts to.")
        if msg.reaction.emoji is None:
            raise _missing(f"{at}/emoji", "A reaction needs an 'emoji' (empty to remove one).")
    elif kind == "contacts":
        assert msg.contacts is not None
        _check_contacts(msg.contacts, at)
    elif kind == "interactive":
        assert msg.interactive is not None
        _check_interactive(msg.interactive, at)
    else:
        assert msg.template is not None
        _check_template(msg.template, at)
    return kind


def _check_media(media: WhatsappMedia, at: str, kind: str) -> None:
    if _blank(media.link):
        raise _missing(f"{at}/link", f"A {kind} needs a 'link' to the media file.")
    assert media.link is not None
    problem = url_problem(media.link.strip())
    if problem:
        raise invalid(f"{at}/link", problem)
    if media.caption is not None and kind not in ("image", "video", "document"):
        raise invalid(f"{at}/caption", f"A {kind} cannot have a caption.")
    if media.filename is not None and kind != "document":
        raise invalid(f"{at}/filename", "Only a document has a filename.")
    if media.voice and kind != "audio":
        raise invalid(f"{at}/voice", "Only audio can be a voice message.")


def _coordinate(value: str | None, pointer: str, name: str, limit: float) -> None:
    if _blank(value):
        raise _missing(pointer, f"A location needs its {name}.")
    assert value is not None
    try:
        number = float(value)
    except ValueError:
        raise invalid(pointer, f"The {name} must be a decimal number as a string.") from None
    if not -limit <= number <= limit:
        raise invalid(pointer, f"The {name} must be between -{limit:g} and {limit:g}.")


def _check_location(loc: WhatsappLocation, at: str) -> None:
    _coordinate(loc.latitude, f"{at}/latitude", "latitude", 90)
    _coordinate(loc.longitude, f"{at}/longitude", "longitude", 180)


def _check_contacts(contacts: list[WhatsappContact], at: str) -> None:
    if not contacts:
        raise _missing(at, "At least one contact is required.")
    for i, contact in enumerate(contacts):
        if contact.name is None:
            raise _missing(f"{at}/{i}/name", "A contact needs a 'name' with a 'formatted_name'.")
        if _blank(contact.name.formatted_name):
            raise invalid(f"{at}/{i}/name/formatted_name", "The formatted name must not be empty.")


def _check_header_media(header: InteractiveHeader, at: str) -> None:
    if header.type == "text":
        if _blank(header.text):
            raise _missing(f"{at}/text", "A text header needs its 'text'.")
        return
    media = getattr(header, header.type)
    if media is None:
        raise _missing(
            f"{at}/{header.type}",
            f"A header of type '{header.type}' needs the '{header.type}' object.",
        )
    _check_media(media, f"{at}/{header.type}", header.type)


def _check_interactive(inter: WhatsappInteractive, at: str) -> None:
    if inter.type is None:
        raise _missing(f"{at}/type", "An interactive message needs its 'type'.")
    if inter.body is None or _blank(inter.body.text):
        raise _missing(f"{at}/body/text", "An interactive message needs a body text.")
    if inter.header is not None:
        if inter.type in ("carousel", "location_request_message"):
            raise invalid(f"{at}/header", f"An interactive '{inter.type}' message has no header.")
        if inter.type == "list" and inter.header.type != "text":
            raise invalid(f"{at}/header/type", "A list message can only have a text header.")
        _check_header_media(inter.header, f"{at}/header")
    if inter.action is None:
        raise _missing(f"{at}/action", f"An interactive '{inter.type}' message needs an 'action'.")
    action, act = inter.action, f"{at}/action"
    if inter.type == "button":
        _check_buttons(action, act)
    elif inter.type == "list":
        _check_list(action, act)
    elif inter.type == "cta_url":
        params = action.parameters
        if params is None:
            raise _missing(f"{act}/parameters", "A cta_url message needs 'parameters'.")
        if _blank(params.display_text):
            raise _missing(f"{act}/parameters/display_text", "The button needs a 'display_text'.")
        if _blank(params.url):
            raise _missing(f"{act}/parameters/url", "The button needs a 'url'.")
        assert params.url is not None
        problem = url_problem(params.url.strip())
        if problem:
            raise invalid(f"{act}/parameters/url", problem)
    elif inter.type == "location_request_message":
        if action.name is not None and action.name != "send_location":
            raise invalid(f"{act}/name", "The action of a location request is 'send_location'.")
    elif inter.type == "carousel":
        _check_cards(action, act)
    else:
        _check_flow(action, act)


def _check_buttons(action: InteractiveAction, act: str) -> None:
    buttons = action.buttons or []
    if not buttons:
        raise _missing(f"{act}/buttons", "A button message needs 1 to 3 reply buttons.")
    if len(buttons) > 3:
        raise invalid(f"{act}/buttons", "A button message has at most 3 reply buttons.")
    seen: set[str] = set()
    for i, button in enumerate(buttons):
        at = f"{act}/buttons/{i}/reply"
        if button.reply is None:
            raise _missing(at, "A reply button needs a 'reply' with 'id' and 'title'.")
        if _blank(button.reply.id):
            raise _missing(f"{at}/id", "A reply button needs an 'id'.")
        if _blank(button.reply.title):
            raise _missing(f"{at}/title", "A reply button needs a 'title'.")
        assert button.reply.id is not None
        if button.reply.id in seen:
            raise invalid(f"{at}/id", "Reply button ids must be unique.")
        seen.add(button.reply.id)


def _check_list(action: InteractiveAction, act: str) -> None:
    if _blank(action.button):
        raise _missing(f"{act}/button", "A list message needs the label of its 'button'.")
    sections = action.sections or []
    if not sections:
        raise _missing(f"{act}/sections", "A list message needs 1 to 10 sections.")
    if len(sections) > 10:
        raise invalid(f"{act}/sections", "A list message has at most 10 sections.")
    seen: set[str] = set()
    total = 0
    for i, section in enumerate(sections):
        at = f"{act}/sections/{i}"
        if len(sections) > 1 and _blank(section.title):
            raise _missing(f"{at}/title", "Each section needs a title when there are several.")
        rows = section.rows or []
        if not rows:
            raise _missing(f"{at}/rows", "A section needs at least one row.")
        for j, row in enumerate(rows):
            if _blank(row.id):
                raise _missing(f"{at}/rows/{j}/id", "A row needs an 'id'.")
            if _blank(row.title):
                raise _missing(f"{at}/rows/{j}/title", "A row needs a 'title'.")
            assert row.id is not None
            if row.id in seen:
                raise invalid(f"{at}/rows/{j}/id", "Row ids must be unique within the list.")
            seen.add(row.id)
        total += len(rows)
        if total > 10:
            raise invalid(f"{at}/rows", "A list message has at most 10 rows in all.")


def _check_cards(action: InteractiveAction, act: str) -> None:
    cards = action.cards or []
    if len(cards) < 2:
        raise _missing(f"{act}/cards", "A carousel needs 2 to 10 cards.")
    if len(cards) > 10:
        raise invalid(f"{act}/cards", "A carousel has at most 10 cards.")
    seen: set[int] = set()
    for i, card in enumerate(cards):
        at = f"{act}/cards/{i}"
        if card.card_index is None:
            raise _missing(f"{at}/card_index", "Each card needs its 'card_index' (0-9).")
        if card.card_index in seen:
            raise invalid(f"{at}/card_index", "Card indexes must be unique.")
        seen.add(card.card_index)
        header = card.header
        if header is None or header.type is None:
            raise _missing(f"{at}/header/type", "Each card needs an image or video header.")
        media = getattr(header, header.type)
        if media is None:
            raise _missing(f"{at}/header/{header.type}", f"The header needs its '{header.type}'.")
        _check_media(media, f"{at}/header/{header.type}", header.type)


def _check_flow(action: InteractiveAction, act: str) -> None:
    params = action.parameters
    at = f"{act}/parameters"
    if params is None:
        raise _missing(at, "A flow message needs 'parameters'.")
    if params.flow_message_version != "3":
        if params.flow_message_version is None:
            raise _missing(
                f"{at}/flow_message_version", "A flow message needs flow_message_version '3'."
            )
        raise invalid(f"{at}/flow_message_version", "flow_message_version must be '3'.")
    if _blank(params.flow_cta):
        raise _missing(f"{at}/flow_cta", "A flow message needs a 'flow_cta' of 1-20 characters.")
    if (params.flow_id is None) == (params.flow_name is None):
        raise invalid(f"{at}/flow_id", "Give exactly one of 'flow_id' and 'flow_name'.")
    payload = params.flow_action_payload
    if payload is not None:
        if params.flow_action == "data_exchange":
            raise invalid(
                f"{at}/flow_action_payload",
                "flow_action_payload must be left out when flow_action is data_exchange.",
            )
        if payload.data is not None and not payload.data:
            raise invalid(f"{at}/flow_action_payload/data", "data must be a non-empty object.")


def _check_template(tpl: WhatsappTemplate, at: str) -> None:
    if _blank(tpl.template_id):
        if _blank(tpl.name):
            raise _missing(
                f"{at}/name", "A template needs 'template_id', or 'name' and 'language'."
            )
        if tpl.language is None:
            raise _missing(f"{at}/language", "A template given by name needs its 'language'.")
        if _blank(tpl.language.code):
            raise invalid(f"{at}/language/code", "The language code must not be empty.")
    for i, comp in enumerate(tpl.components or []):
        c = f"{at}/components/{i}"
        if comp.type is None:
            raise _missing(f"{c}/type", "A component needs its 'type' (header, body or button).")
        if comp.type == "button":
            if comp.sub_type is None:
                raise _missing(f"{c}/sub_type", "A button component needs its 'sub_type'.")
            if comp.index is None:
                raise _missing(f"{c}/index", "A button component needs the button's 'index'.")
        for j, param in enumerate(comp.parameters or []):
            p = f"{c}/parameters/{j}"
            if param.type is None:
                raise _missing(f"{p}/type", "A parameter needs its 'type'.")
            if param.type == "text" and param.text is None:
                raise _missing(f"{p}/text", "A text parameter needs its 'text'.")
            if param.type == "action" and param.action is None:
                raise _missing(f"{p}/action", "An action parameter needs its 'action'.")
            if param.type in ("image", "video", "document"):
                media = getattr(param, param.type)
                if media is not None:
                    _check_media(media, f"{p}/{param.type}", param.type)


# --- wire forms ----------------------------------------------------------------------------------


def stored_body(msg: WhatsappMessage, kind: str) -> dict[str, Any]:
    """The message's `body`: the content as sent (validated), with its type made explicit."""
    body = msg.model_dump(exclude_none=True)
    body["type"] = kind
    return body


def response_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` for the send response, within the SDK's narrower response model (module doc)."""
    out = {k: v for k, v in body.items()}
    if isinstance(out.get("contacts"), list):
        contacts = []
        for c in out["contacts"]:
            c = dict(c)
            if isinstance(c.get("name"), Mapping):
                c["name"] = c["name"].get("formatted_name")
            contacts.append(c)
        out["contacts"] = contacts
    inter = out.get("interactive")
    if isinstance(inter, Mapping) and inter.get("type") == "flow":
        out["interactive"] = {k: v for k, v in inter.items() if k != "type"}
    tpl = out.get("template")
    if isinstance(tpl, Mapping) and isinstance(tpl.get("components"), list):
        comps = []
        for comp in tpl["components"]:
            comp = {k: v for k, v in comp.items() if not (k == "sub_type" and v == "flow")}
            if isinstance(comp.get("parameters"), list):
                comp["parameters"] = [
                    {k: v for k, v in p.items() if not (k == "type" and v == "action")}
                    for p in comp["parameters"]
                ]
            comps.append(comp)
        out["template"] = {**tpl, "components": comps}
    return out


def send_response(row: Mapping[str, Any]) -> dict[str, Any]:
    """The `data` of the send response (`MessageWhatsappResponse`, contract §5.11)."""
    return {
        "id": row["id"],
        "record_type": "message",
        "direction": "outbound",
        "type": "WHATSAPP",
        "encoding": ENCODING,
        "from": {
            "phone_number": row["from_number"],
            "carrier": row["from_carrier"],
            "line_type": row["from_line_type"],
            "status": "received",
        },
        "to": [
            {
                "phone_number": row["to_number"],
                "status": "queued",
                "carrier": row["to_carrier"],
                "line_type": row["to_line_type"],
            }
        ],
        "body": response_body(row["body"] or {}),
        "messaging_profile_id": row["messaging_profile_id"],
        "organization_id": row["organization_id"],
        "received_at": iso(row["received_at"]),
        "wait_seconds": row["wait_seconds"],
    }


def text_of(msg: WhatsappMessage, kind: str) -> str | None:
    """The human-readable text of a message, for `text`/`num_chars` and the inbox."""
    if kind == "text" and msg.text is not None:
        return msg.text.body
    if kind in MEDIA_TYPES:
        media: WhatsappMedia = getattr(msg, kind)
        return media.caption
    if kind == "interactive" and msg.interactive is not None and msg.interactive.body is not None:
        return msg.interactive.body.text
    if kind == "reaction" and msg.reaction is not None:
        return msg.reaction.emoji
    return None


# --- sending -----------------------------------------------------------------------------------


def _check_to(to: str) -> None:
    if BSUID.match(to):
        return
    if phone.parse(to) is None:
        raise invalid_to(
            f"'{to}' is not a +E.164 phone number or a WhatsApp business-scoped user id."
        )


async def _profile(
    uow: UnitOfWork, org: Organization, req: WhatsappSend, number: RowMapping
) -> RowMapping:
    if req.messaging_profile_id:
        profile = await repo.profile(uow, org.id, req.messaging_profile_id)
        if profile is None:
            raise rejection(
                "40305",
                "Invalid 'from' address",
                f"Messaging profile {req.messaging_profile_id} does not exist.",
                "/messaging_profile_id",
            )
    elif number["messaging_profile_id"]:
        profile = await repo.profile(uow, org.id, number["messaging_profile_id"])
        assert profile is not None
    else:
        raise rejection(
            "10004",
            "Missing required parameter",
            f"{number['phone_number']} is on no messaging profile; give 'messaging_profile_id'.",
            "/messaging_profile_id",
            422,
        )
    if not profile["enabled"]:
        raise rejection(
            "40312", "Messaging profile disabled", "The messaging profile is disabled.", "/from"
        )
    return profile


async def _reserve(ctx: AppContext, uow: UnitOfWork, org: Organization, sender: str) -> float:
    """Queue the message behind the sender's WhatsApp throughput; the wait in seconds."""
    limits = ctx.settings.rate_limits
    if not limits.enabled:
        return 0.0
    limiters = [
        ratelimit.Limiter(f"sender:whatsapp:{sender}", limits.whatsapp),
        ratelimit.Limiter(f"org:{org.id}", limits.organization),
    ]
    slot = await ratelimit.admit(uow, limiters, time.time(), limits.max_backlog_seconds)
    return slot.backlog


async def send(
    ctx: AppContext, uow: UnitOfWork, org: Organization, req: WhatsappSend
) -> dict[str, Any]:
    """Accept a WhatsApp message: check it, store it queued and enqueue its sending."""
    from signalpost.messages.service import price_table

    kind = check_message(req.whatsapp_message)
    src, to = req.from_.strip(" "), req.to.strip(" ")
    if not phone.is_e164(src):
        raise invalid_from(f"'{src}' is not a +E.164 phone number.")
    number = await repo.owned_phone_number(uow, org.id, src)
    if number is None:
        raise invalid_from(f"{src} is not a phone number of this account.")
    if not number["whatsapp_enabled"]:
        raise invalid_from(
            f"{src} is not enabled for WhatsApp (signalpost numbers whatsapp enable {src})."
        )
    _check_to(to)
    profile = await _profile(uow, org, req, number)
    wait = await _reserve(ctx, uow, org, src)
    now = utcnow()
    text = text_of(req.whatsapp_message, kind)
    info = phone.parse(to)
    country = info.country_code if info else to[:2]  # a business-scoped id starts with it
    cost, breakdown = price(
        price_table(ctx), sender_kind="whatsapp", country=country, message_type="WHATSAPP", parts=1
    )
    row: dict[str, Any] = {
        "id": ids.new_uuid(),
        "organization_id": org.id,
        "direction": "outbound",
        "type": "WHATSAPP",
        "messaging_profile_id": profile["id"],
        "sender_kind": "whatsapp",
        "from_number": src,
        "from_carrier": "SIGNALPOST",
        "from_line_type": "VoIP",
        "from_status": None,
        "to_number": to,
        "to_status": "queued",
        "to_carrier": (info.carrier if info else "") or "",
        "to_line_type": (info.line_type if info else "") or "",
        "cc": [],
        "text": text,
        "original_text": None,
        "subject": None,
        "media": [],
        "webhook_url": req.webhook_url or None,
        "webhook_failover_url": None,
        "use_profile_webhooks": True,
        "encoding": ENCODING,
        "parts": 1,
        "num_chars": len(text or ""),
        "smart_encoding_applied": False,
        "tags": [],
        "cost": cost,
        "cost_breakdown": breakdown,
        "errors": [],
        "body": stored_body(req.whatsapp_message, kind),
        "request": req.model_dump(by_alias=True, exclude_unset=True, mode="json"),
        "group_id": None,
        "autoresponse_type": None,
        "carrier_message_id": None,
        "carrier_attempts": 0,
        "received_at": now,
        "send_at": None,
        "sent_at": None,
        "completed_at": None,
        "valid_until": now + timedelta(seconds=ctx.settings.message_validity_seconds),
        "wait_seconds": round(wait, 3),
        "updated_at": now,
    }
    await repo.insert_messages(uow, [row])
    enqueue_items(
        uow,
        SEND_JOB,
        "message_ids",
        [row["id"]],
        run_at=now + timedelta(seconds=wait),
        max_attempts=SEND_ATTEMPTS,
    )
    return row


def channel(ctx: AppContext) -> Carrier:
    """Where WhatsApp messages go: always the simulator (there is no WhatsApp upstream)."""
    from signalpost.carriers import get_carrier
    from signalpost.carriers.simulator import SimulatorCarrier

    carrier = get_carrier(ctx)
    if isinstance(carrier, SimulatorCarrier):
        return carrier
    sim: SimulatorCarrier | None = ctx.extras.get(CHANNEL_KEY)
    if sim is None:
        sim = SimulatorCarrier(ctx.db, ctx.settings.simulator_latency)
        ctx.extras[CHANNEL_KEY] = sim
    return sim


# --- read receipts -------------------------------------------------------------------------------


async def after_sent(uow: UnitOfWork, sent: RowMapping, result: SubmitResult) -> None:
    """A WhatsApp message the network will deliver is read by its recipient soon after."""
    receipt = result.receipt
    if sent["type"] != "WHATSAPP" or receipt is None or receipt.status != "delivered":
        return
    deadline = utcnow() + timedelta(seconds=receipt.after + 120)
    await enqueue(
        uow,
        READ_JOB,
        {"message_id": sent["id"], "deadline": deadline.isoformat()},
        delay=receipt.after + READ_DELAY,
    )


async def mark_read(uow: UnitOfWork, message_id: str) -> bool | None:
    """The recipient read a delivered message: `read` and `message.read`. None: not delivered yet."""
    from signalpost.messages import service

    row = await repo.get_for_update(uow, message_id)
    if row is None:
        return False
    if row["to_status"] in ("queued", "sending", "sent"):
        return None
    if row["to_status"] != "delivered":
        return False
    new = await repo.update_message(
        uow, message_id, {"to_status": "read", "updated_at": utcnow()}, only_status="delivered"
    )
    if new is None:
        return False
    await service.emit_event(uow, new, "message.read")
    return True


# --- inbound -------------------------------------------------------------------------------------


def inbound_body(msg: WhatsappMessage, kind: str, sender: str) -> dict[str, Any]:
    """The `body` of an inbound WhatsApp message as Telnyx forwards it (contract §4.5)."""
    body: dict[str, Any] = {
        "id": ids.new_uuid(),
        "foreign_id": f"wamid.{ids.base62(32)}",
        "from": sender,
        "timestamp": str(int(time.time())),
        "type": kind,
    }
    if kind == "text" and msg.text is not None:
        body["text"] = {"body": msg.text.body}
    elif kind == "location" and msg.location is not None:
        loc = msg.location.model_dump(exclude_none=True)
        loc["latitude"] = float(msg.location.latitude or 0)
        loc["longitude"] = float(msg.location.longitude or 0)
        body["location"] = loc
    else:
        body[kind] = msg.model_dump(exclude_none=True).get(kind)
    return body


def simulated_incoming(sender: str, to: str, raw: Any) -> Incoming:
    """A simulated handset's WhatsApp message (`POST /simulator/inbound`), checked (422)."""
    from signalpost.messages.inbound import Incoming

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


def forwarded_body(sent: Mapping[Any, Any]) -> dict[str, Any] | None:
    """The inbound `body` an on-net recipient gets for a WhatsApp message (None for SMS/MMS)."""
    if sent["type"] != "WHATSAPP" or not sent["body"]:
        return None
    msg = WhatsappMessage.model_validate(sent["body"])
    return inbound_body(msg, str(sent["body"].get("type") or "text"), sent["from_number"])


def kinds(ctx: AppContext) -> dict[str, JobKind]:
    """The read-receipt job (`after_sent` schedules it)."""

    async def read(uow: UnitOfWork, job: Job) -> None:
        done = await mark_read(uow, job.payload["message_id"])
        deadline = job.payload.get("deadline")
        if done is None and (deadline is None or utcnow() < parse_datetime(deadline)):
            raise RetryLater(READ_RECHECK)

    return {READ_JOB: JobKind(handler=read, retry=RetryPolicy(max_attempts=5, base=0.5, cap=30))}
