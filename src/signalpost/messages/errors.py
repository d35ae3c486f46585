"""Message error codes: request rejections (HTTP) and delivery failures (`errors[]`)."""

from __future__ import annotations

from typing import Any

from signalpost.kit.errors import ApiError, error_item

DELIVERY_TITLES = {
    "40001": "Not routable",
    "40002": "Blocked as spam - temporary",
    "40003": "Blocked as spam - permanent",
    "40004": "Rejected by destination",
    "40005": "Message expired during transmission",
    "40006": "Recipient server unavailable",
    "40007": "Loop detected",
    "40008": "Undeliverable",
    "40009": "Invalid message body",
    "40010": "Unregistered 10DLC traffic",
    "40011": "Too many requests",
    "40012": "Invalid destination number",
    "40013": "Invalid source number",
    "40014": "Message expired in queue",
    "40015": "Blocked by spam filter",
    "40300": "Blocked due to STOP message",
    "40317": "Invalid MMS content",
}


def delivery_error(code: str, detail: str | None = None) -> dict[str, Any]:
    return error_item(code, DELIVERY_TITLES.get(code, "Delivery failed"), detail)


def rejection(
    code: str, title: str, detail: str, pointer: str | None = None, status: int = 400
) -> ApiError:
    """A deterministic business rejection: the SDKs must not retry it."""
    return ApiError(status, code, title, detail, pointer=pointer, should_retry=False)


def invalid_to(detail: str, pointer: str = "/to") -> ApiError:
    return rejection("40310", "Invalid 'to' address", detail, pointer)


def invalid_from(detail: str) -> ApiError:
    return rejection("40305", "Invalid 'from' address", detail, "/from")
