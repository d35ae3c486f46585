"""Fast JSON encoding for responses and stored payloads."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as _StarletteJSONResponse


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


class JSONResponse(_StarletteJSONResponse):
    """`application/json` response encoded with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
