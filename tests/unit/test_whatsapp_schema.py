"""`whatsapp_message` validation: every content type accepted when well formed, and each kind of
mistake rejected with a JSON pointer to the offending field; the send-response echo validates
against the SDK's strict response model."""

from __future__ import annotations

from typing import Any

import pytest
from telnyx._models import validate_type
from telnyx.types.message_whatsapp_response import MessageWhatsappResponse
from telnyx.types.messaging_inbound_message_payload import MessagingInboundMessagePayload

from signalpost.kit.errors import ApiError
from signalpost.messages.whatsapp.validation import parse_message
from signalpost.messages.whatsapp.wire import (
    inbound_body,
    response_body,
    stored_body,
)
from tests.support.whatsapp_examples import LINK, VALID


@pytest.mark.parametrize("name", list(VALID))
def test_each_content_type_is_accepted(name: str) -> None:
    msg, kind = parse_message(VALID[name])
    expected = VALID[name].get("type", "text")
    assert kind == expected
    body = stored_body(msg, kind)
    assert body["type"] == expected
    assert body[kind] is not None


@pytest.mark.parametrize("name", list(VALID))
def test_send_response_echo_validates_strictly_in_the_sdk(name: str) -> None:
    msg, kind = parse_message(VALID[name])
    echo = response_body(stored_body(msg, kind))
    parsed = validate_type(type_=MessageWhatsappResponse, value={"data": {"body": echo}})
    assert parsed.data is not None and parsed.data.body is not None
    assert parsed.data.body.type == kind


def test_contact_name_is_echoed_as_its_formatted_name() -> None:
    msg, kind = parse_message(VALID["contacts"])
    body = stored_body(msg, kind)
    assert body["contacts"][0]["name"]["formatted_name"] == "Ada Lovelace"
    assert response_body(body)["contacts"][0]["name"] == "Ada Lovelace"


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({}, "/whatsapp_message/type", "10004"),
    ({"type": "fax"}, "/whatsapp_message/type", "10015"),
    ({"type": "image"}, "/whatsapp_message/image", "10004"),
    (
        {"type": "text", "text": {"body": "x"}, "image": {"link": LINK}},
        "/whatsapp_message/image",
        "10015",
    ),
    ({"text": {"body": "x"}, "image": {"link": LINK}}, "/whatsapp_message/type", "10004"),
    ({"type": "text", "text": {}}, "/whatsapp_message/text/body", "10004"),
    ({"type": "text", "text": {"body": "  "}}, "/whatsapp_message/text/body", "10015"),
    ({"type": "text", "text": {"body": "x" * 4097}}, "/whatsapp_message/text/body", "10015"),
    ({"type": "image", "image": {"caption": "c"}}, "/whatsapp_message/image/link", "10004"),
    (
        {"type": "image", "image": {"link": "ftp://x/y.png"}},
        "/whatsapp_message/image/link",
        "10015",
    ),
    ({"type": "image", "image": {"link": 42}}, "/whatsapp_message/image/link", "10015"),
    (
        {"type": "sticker", "sticker": {"link": LINK, "caption": "no"}},
        "/whatsapp_message/sticker/caption",
        "10015",
    ),
    (
        {"type": "image", "image": {"link": LINK, "filename": "a.jpg"}},
        "/whatsapp_message/image/filename",
        "10015",
    ),
    (
        {"type": "video", "video": {"link": LINK, "voice": True}},
        "/whatsapp_message/video/voice",
        "10015",
    ),
    (
        {"type": "location", "location": {"longitude": "1"}},
        "/whatsapp_message/location/latitude",
        "10004",
    ),
    (
        {"type": "location", "location": {"latitude": "north", "longitude": "1"}},
        "/whatsapp_message/location/latitude",
        "10015",
    ),
    (
        {"type": "location", "location": {"latitude": "1", "longitude": "200"}},
        "/whatsapp_message/location/longitude",
        "10015",
    ),
    (
        {"type": "location", "location": {"latitude": 41.8, "longitude": "1"}},
        "/whatsapp_message/location/latitude",
        "10015",
    ),
    (
        {"type": "reaction", "reaction": {"emoji": "👍"}},
        "/whatsapp_message/reaction/message_id",
        "10004",
    ),
    ({"type": "contacts", "contacts": []}, "/whatsapp_message/contacts", "10004"),
    (
        {"type": "contacts", "contacts": [{"birthday": "x"}]},
        "/whatsapp_message/contacts/0/name",
        "10004",
    ),
    (
        {"type": "contacts", "contacts": [{"name": {"first_name": "A"}}]},
        "/whatsapp_message/contacts/0/name/formatted_name",
        "10004",
    ),
    (
        {"type": "interactive", "interactive": {"body": {"text": "x"}}},
        "/whatsapp_message/interactive/type",
        "10004",
    ),
    (
        {"type": "interactive", "interactive": {"type": "button", "action": {}}},
        "/whatsapp_message/interactive/body/text",
        "10004",
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "x"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "x" * 21}}]},
            },
        },
        "/whatsapp_message/interactive/action/buttons/0/reply/title",
        "10015",
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "x"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "a", "title": "A"}},
                        {"type": "reply", "reply": {"id": "a", "title": "B"}},
                    ]
                },
            },
        },
        "/whatsapp_message/interactive/action/buttons/1/reply/id",
        "10015",
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "x"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": str(i), "title": "t"}} for i in range(4)
                    ]
                },
            },
        },
        "/whatsapp_message/interactive/action/buttons",
        "10015",
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "header": {"image": {"link": LINK}},
                "body": {"text": "x"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]},
            },
        },
        "/whatsapp_message/interactive/header/type",
        "10004",
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "header": {"type": "video"},
                "body": {"text": "x"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "A"}}]},
            },
        },
        "/whatsapp_message/interactive/header/video",
        "10004",
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "list",
                "body": {"text": "x"},
                "action": {"sections": [{"rows": [{"id": "1", "title": "t"}]}]},
            },
        },
        "/whatsapp_message/interactive/action/button",
        "10004",
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "list",
                "body": {"text": "x"},
                "action": {"button": "b", "sections": [{"rows": [{"id": "1"}]}]},
            },
        },
        "/whatsapp_message/interactive/action/sections/0/rows/0/title",
        "10004",
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "list",
                "body": {"text": "x"},
                "action": {
                    "button": "b",
                    "sections": [{"rows": [{"id": str(i), "title": "t"} for i in range(11)]}],
                },
            },
        },
        "/whatsapp_message/interactive/action/sections/0/rows",
        "10015",
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "cta_url",
                "body": {"text": "x"},
                "action": {"parameters": {"display_text": "Go", "url": "javascript:alert(1)"}},
            },
        },
        "/whatsapp_message/interactive/action/parameters/url",
        "10015",
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "carousel",
                "body": {"text": "x"},
                "action": {
                    "cards": [
                        {"card_index": 0, "header": {"type": "image", "image": {"link": LINK}}},
                        {"card_index": 0, "header": {"type": "image", "image": {"link": LINK}}},
                    ]
                },
            },
        },
        "/whatsapp_message/interactive/action/cards/1/card_index",
        "10015",
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "carousel",
                "body": {"text": "x"},
                "action": {"cards": [{"card_index": 0}]},
            },
        },
        "/whatsapp_message/interactive/action/cards",
        "10004",
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "flow",
                "body": {"text": "x"},
                "action": {
                    "parameters": {"flow_message_version": "2", "flow_cta": "Go", "flow_id": "1"}
                },
            },
        },
        "/whatsapp_message/interactive/action/parameters/flow_message_version",
        "10015",
    ),
    (
        {
            "type": "interactive",
            "interactive": {
                "type": "flow",
                "body": {"text": "x"},
                "action": {
                    "parameters": {
                        "flow_message_version": "3",
                        "flow_cta": "Go",
                        "flow_id": "1",
                        "flow_name": "n",
                    }
                },
            },
        },
        "/whatsapp_message/interactive/action/parameters/flow_id",
        "10015",
    ),
    ({"type": "template", "template": {}}, "/whatsapp_message/template/name", "10004"),
    (
        {"type": "template", "template": {"name": "t"}},
        "/whatsapp_message/template/language",
        "10004",
    ),
    (
        {"type": "template", "template": {"name": "t", "language": {"policy": "x"}}},
        "/whatsapp_message/template/language/code",
        "10004",
    ),
    (
        {
            "type": "template",
            "template": {"template_id": "1", "components": [{"type": "button", "sub_type": "url"}]},
        },
        "/whatsapp_message/template/components/0/index",
        "10004",
    ),
    (
        {
            "type": "template",
            "template": {"template_id": "1", "components": [{"type": "footer"}]},
        },
        "/whatsapp_message/template/components/0/type",
        "10015",
    ),
    (
        {
            "type": "template",
            "template": {
                "template_id": "1",
                "components": [{"type": "body", "parameters": [{"type": "text"}]}],
            },
        },
        "/whatsapp_message/template/components/0/parameters/0/text",
        "10004",
    ),
]


@pytest.mark.parametrize(("raw", "pointer", "code"), BAD, ids=[b[1] for b in BAD])
def test_bad_content_is_rejected_with_a_pointer(
    raw: dict[str, Any], pointer: str, code: str
) -> None:
    with pytest.raises(ApiError) as info:
        parse_message(raw)
    assert info.value.pointer == pointer, info.value.detail
    assert info.value.code == code
    assert info.value.status == 422


def test_flow_enum_values_are_left_out_of_the_send_response_only() -> None:
    msg, kind = parse_message(VALID["interactive_flow"])
    body = stored_body(msg, kind)
    assert body["interactive"]["type"] == "flow"
    assert "type" not in response_body(body)["interactive"]
    msg, kind = parse_message(VALID["template_by_name"])
    echo = response_body(stored_body(msg, kind))
    flow_button = echo["template"]["components"][2]
    assert "sub_type" not in flow_button and "type" not in flow_button["parameters"][0]
    assert echo["template"]["components"][1]["sub_type"] == "quick_reply"


@pytest.mark.parametrize("name", ["text", "image", "location", "contacts", "interactive_button"])
def test_inbound_body_validates_as_an_inbound_payload(name: str) -> None:
    msg, kind = parse_message(VALID[name])
    body = inbound_body(msg, kind, "+13125550100")
    payload = validate_type(
        type_=MessagingInboundMessagePayload,
        value={"type": "WHATSAPP", "direction": "inbound", "to": "+13125550199", "body": body},
    )
    assert payload.body is not None and payload.body.type == kind
    if kind == "text":
        assert payload.body.text is not None and not isinstance(payload.body.text, str)
        assert payload.body.text.body == "Hello"
    if kind == "location":
        assert payload.body.location is not None and payload.body.location.latitude == 41.88
