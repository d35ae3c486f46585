"""Well-formed `whatsapp_message` examples, one or more per content type (shared by tests)."""

from __future__ import annotations

from typing import Any

LINK = "https://media.example.com/a.jpg"

VALID: dict[str, dict[str, Any]] = {
    "text": {"type": "text", "text": {"body": "Hello", "preview_url": True}},
    "image": {"type": "image", "image": {"link": LINK, "caption": "a cat"}},
    "audio": {"type": "audio", "audio": {"link": "https://m.example.com/a.ogg", "voice": True}},
    "video": {"type": "video", "video": {"link": "http://m.example.com/v.mp4", "caption": "v"}},
    "document": {
        "type": "document",
        "document": {"link": "https://m.example.com/d.pdf", "filename": "d.pdf", "caption": "d"},
    },
    "sticker": {"type": "sticker", "sticker": {"link": "https://m.example.com/s.webp"}},
    "location": {
        "type": "location",
        "location": {
            "latitude": "41.88",
            "longitude": "-87.63",
            "name": "HQ",
            "address": "Main St",
        },
    },
    "reaction": {"type": "reaction", "reaction": {"message_id": "wamid.abc", "emoji": "👍"}},
    "contacts": {
        "type": "contacts",
        "contacts": [
            {
                "name": {"formatted_name": "Ada Lovelace", "first_name": "Ada"},
                "phones": [{"phone": "+13125550100", "type": "CELL", "wa_id": "13125550100"}],
                "emails": [{"email": "ada@example.com", "type": "WORK"}],
                "org": {"company": "Analytical"},
                "addresses": [{"city": "London", "country_code": "GB"}],
                "urls": [{"url": "https://example.com", "type": "WORK"}],
                "birthday": "1815-12-10",
            }
        ],
    },
    "interactive_button": {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "header": {"type": "image", "image": {"link": LINK}},
            "body": {"text": "Pick one"},
            "footer": {"text": "footer"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "no", "title": "No"}},
                ]
            },
        },
    },
    "interactive_list": {
        "type": "interactive",
        "interactive": {
            "type": "list",
            "header": {"type": "text", "text": "Menu"},
            "body": {"text": "Choose"},
            "action": {
                "button": "Options",
                "sections": [
                    {"title": "A", "rows": [{"id": "a1", "title": "One", "description": "d"}]},
                    {"title": "B", "rows": [{"id": "b1", "title": "Two"}]},
                ],
            },
        },
    },
    "interactive_cta_url": {
        "type": "interactive",
        "interactive": {
            "type": "cta_url",
            "body": {"text": "Visit"},
            "action": {
                "name": "cta_url",
                "parameters": {"display_text": "Open", "url": "https://example.com"},
            },
        },
    },
    "interactive_location_request": {
        "type": "interactive",
        "interactive": {
            "type": "location_request_message",
            "body": {"text": "Where are you?"},
            "action": {"name": "send_location"},
        },
    },
    "interactive_carousel": {
        "type": "interactive",
        "interactive": {
            "type": "carousel",
            "body": {"text": "Our picks"},
            "action": {
                "cards": [
                    {
                        "card_index": i,
                        "type": "cta_url",
                        "header": {"type": "image", "image": {"link": LINK}},
                        "body": {"text": f"card {i}"},
                    }
                    for i in range(2)
                ]
            },
        },
    },
    "interactive_flow": {
        "type": "interactive",
        "interactive": {
            "type": "flow",
            "body": {"text": "Sign up"},
            "action": {
                "name": "flow",
                "parameters": {
                    "flow_message_version": "3",
                    "flow_cta": "Start",
                    "flow_id": "123",
                    "flow_action": "navigate",
                    "flow_action_payload": {"screen": "WELCOME", "data": {"x": 1}},
                },
            },
        },
    },
    "template_by_name": {
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "en_US", "policy": "deterministic"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "42"}]},
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": 0,
                    "parameters": [{"type": "text", "text": "ok"}],
                },
                {
                    "type": "button",
                    "sub_type": "flow",
                    "index": 1,
                    "parameters": [{"type": "action", "action": {"flow_token": "t"}}],
                },
            ],
        },
    },
    "template_by_id": {"type": "template", "template": {"template_id": "tpl_123"}},
    "type_inferred": {"text": {"body": "no type given"}},
}
