"""`whatsapp_message` checks that depend on its `type` (see the package docstring)."""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from signalpost.kit.errors import ApiError, invalid, validation_errors
from signalpost.messages.media import url_problem
from signalpost.messages.whatsapp.models import (
    CONTENT_TYPES,
    MEDIA_TYPES,
    InteractiveAction,
    InteractiveHeader,
    WhatsappContact,
    WhatsappInteractive,
    WhatsappLocation,
    WhatsappMedia,
    WhatsappMessage,
    WhatsappTemplate,
)

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
