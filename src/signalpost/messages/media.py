"""MMS media: checking `media_urls` at the API, fetching the media at send time, SMS fallback.

At the API (`plan_mms`, called while a send is prepared) what can be known without a download is
checked: at most 10 URLs, each an absolute `http`/`https` URL of at most 2000 characters (else
40317 with `source.pointer` `/media_urls/<i>`). A destination that cannot take MMS (the carrier
decides, `Carrier.accepts_mms`; the simulator takes MMS for US and Canadian numbers only) rejects
the message with 40301, unless the sender's messaging profile has `mms_fall_back_to_sms`: then the
message is sent as an SMS whose text is the subject, the text and the media URLs, one per line.

At send time (`fill_for_send`, run by the `message.send` job before the carrier submit) every
media URL is downloaded once, in order, streaming, with `settings.media_fetch_timeout` seconds per
URL (for the whole download, redirects included: at most `MAX_REDIRECTS`) and a cap on the total
size: `content_type`, `size` and `sha256` of each item are stored on the message. Media that cannot
be fetched (connection error, timeout, HTTP status other than 2xx, too many redirects, an address
the outbound guard refuses — `blocked by policy`, kit.netguard) or a total over `MAX_TOTAL_BYTES`
(1 MiB) ends the message `sending_failed` with error 40317 and a detail naming the media item. A message whose media are already filled (a job run again after a crash) is
not fetched again.

The content type is the one the media server declares; when it declares none or only a generic
binary type, it is inferred from the first bytes (PNG, JPEG, GIF, WebP, PDF, MP4/3GP, MP3, OGG,
WAV, AMR, vCard, ...) and then from the URL's file extension (`infer_content_type`).
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.engine import RowMapping

from signalpost.carriers import get_carrier
from signalpost.context import AppContext, outbound_guard
from signalpost.kit.db import Database
from signalpost.kit.guarded_http import GuardedTransport
from signalpost.kit.netguard import Blocked
from signalpost.messages import repository as repo
from signalpost.messages.errors import delivery_error, rejection
from signalpost.messages.lifecycle import finalize

MAX_MEDIA = 10
MAX_URL_LENGTH = 2000
MAX_TOTAL_BYTES = 1024 * 1024
MAX_REDIRECTS = 3
HTTP_CLIENT_KEY = "messages.media_http"
GENERIC_TYPES = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/binary"}
)
SNIFF_BYTES = 64


@dataclass(frozen=True)
class FetchedMedia:
    url: str
    content_type: str
    size: int
    sha256: str

    def item(self) -> dict[str, Any]:
        """The outbound media item (contract §4.4; inbound renders `sha256` as `hash_sha256`)."""
        return {
            "url": self.url,
            "content_type": self.content_type,
            "sha256": self.sha256,
            "size": self.size,
        }


class MediaError(Exception):
    """A media item could not be used: unreachable, not 2xx, or over the size budget."""

    def __init__(self, index: int, url: str, reason: str) -> None:
        super().__init__(f"media {index} ({url}): {reason}")
        self.index = index
        self.url = url
        self.reason = reason


# --- at the API ---------------------------------------------------------------------------------


def check_urls(urls: Sequence[str], pointer: str = "/media_urls") -> list[str]:
    """The media URLs, stripped, if each is an absolute http(s) URL (else 40317 at that index)."""
    if len(urls) > MAX_MEDIA:
        raise rejection(
            "40317", "Invalid MMS content", f"At most {MAX_MEDIA} media URLs are allowed.", pointer
        )
    out: list[str] = []
    for i, raw in enumerate(urls):
        url = raw.strip()
        problem = url_problem(url)
        if problem:
            raise rejection("40317", "Invalid MMS content", problem, f"{pointer}/{i}")
        out.append(url)
    return out


def url_problem(url: str) -> str | None:
    """Why `url` cannot be fetched as media, or None."""
    if not url:
        return "A media URL must not be empty."
    if len(url) > MAX_URL_LENGTH:
        return f"A media URL must be at most {MAX_URL_LENGTH} characters."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"'{url[:100]}' is not a valid URL."
    if parts.scheme.lower() not in ("http", "https"):
        return f"'{url[:100]}' is not an http or https URL."
    if not parts.hostname:
        return f"'{url[:100]}' has no host."
    if port == 0:
        return f"'{url[:100]}' has an invalid port."
    return None


@dataclass(frozen=True)
class MmsPlan:
    """What is sent for a message with media: an MMS, or the SMS fallback."""

    type: str
    text: str | None
    media_urls: list[str]
    subject: str | None
    fell_back: bool = False


def fallback_text(text: str | None, subject: str | None, urls: Sequence[str]) -> str:
    """The SMS fallback of an MMS: subject, text and the media links, one per line."""
    lines = [s for s in (subject, text) if s]
    return "\n".join([*lines, *urls])


def plan_mms(
    ctx: AppContext,
    *,
    profile: Mapping[Any, Any],
    to: str,
    text: str | None,
    subject: str | None,
    media_urls: Sequence[str],
) -> MmsPlan:
    """Check an MMS at the API and decide whether it goes as MMS or falls back to SMS (40317, 40301)."""
    urls = check_urls(media_urls)
    if get_carrier(ctx).accepts_mms(to):
        return MmsPlan("MMS", text, urls, subject)
    if profile.get("mms_fall_back_to_sms"):
        return MmsPlan("SMS", fallback_text(text, subject, urls), [], None, fell_back=True)
    raise rejection(
        "40301",
        "Unsupported message type",
        f"{to} cannot receive MMS; enable mms_fall_back_to_sms on the messaging profile to send "
        "an SMS with the media links instead.",
        "/to",
    )


# --- content type ---------------------------------------------------------------------------------

_MAGIC: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"#!AMR", "audio/amr"),
    (b"BEGIN:VCARD", "text/vcard"),
    (b"\x1a\x45\xdf\xa3", "video/webm"),
]


def sniff(head: bytes) -> str | None:
    """The media type that the first bytes of a file show, if they are recognisable."""
    for magic, ctype in _MAGIC:
        if head.startswith(magic):
            return ctype
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand.startswith(b"3g"):
            return "video/3gpp"
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "audio/mpeg"
    return None


def infer_content_type(declared: str | None, url: str, head: bytes) -> str:
    """The declared type (without parameters), else what the bytes show, else the URL's extension."""
    ctype = (declared or "").split(";", 1)[0].strip().lower()
    if ctype not in GENERIC_TYPES:
        return ctype
    sniffed = sniff(head)
    if sniffed:
        return sniffed
    guessed = mimetypes.guess_type(urlsplit(url).path)[0]
    return guessed or "application/octet-stream"


# --- fetching ------------------------------------------------------------------------------------


def http_client(ctx: AppContext) -> httpx.AsyncClient:
    """The process-wide client for media downloads (closed with the application); with the
    outbound guard on, every request and redirect hop goes to an address it checked."""
    client = ctx.extras.get(HTTP_CLIENT_KEY)
    if not isinstance(client, httpx.AsyncClient) or client.is_closed:
        guard = outbound_guard(ctx)
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(ctx.settings.media_fetch_timeout),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            headers={"accept": "*/*"},
            transport=GuardedTransport(guard) if guard.enforcing else None,
            trust_env=not guard.enforcing,
        )
        ctx.extras[HTTP_CLIENT_KEY] = client
    return client


async def fetch_one(
    client: httpx.AsyncClient, index: int, url: str, *, budget: int, timeout: float
) -> FetchedMedia:
    """Download one media item, at most `budget` bytes, within `timeout` seconds."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        async with asyncio.timeout(timeout):
            async with client.stream("GET", url) as resp:
                if not 200 <= resp.status_code < 300:
                    raise MediaError(
                        index, url, f"the media server answered HTTP {resp.status_code}"
                    )
                declared_length = resp.headers.get("content-length", "")
                if declared_length.isdigit() and int(declared_length) > budget:
                    raise MediaError(index, url, _too_large(int(declared_length), budget))
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > budget:
                        raise MediaError(index, url, _too_large(size, budget))
                    if len(head) < SNIFF_BYTES:
                        head += chunk[: SNIFF_BYTES - len(head)]
                    digest.update(chunk)
                declared = resp.headers.get("content-type")
    except TimeoutError:
        raise MediaError(index, url, f"no complete answer within {timeout:g} s") from None
    except Blocked as exc:
        raise MediaError(index, url, f"blocked by policy: {exc.reason}") from None
    except httpx.TooManyRedirects:
        raise MediaError(index, url, f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.HTTPError as exc:
        raise MediaError(index, url, f"unreachable ({type(exc).__name__})") from None
    return FetchedMedia(url, infer_content_type(declared, url, head), size, digest.hexdigest())


def _too_large(size: int, budget: int) -> str:
    if budget >= MAX_TOTAL_BYTES:
        return f"{size} bytes is more than the {MAX_TOTAL_BYTES} bytes an MMS may carry"
    return f"the media together exceed the {MAX_TOTAL_BYTES} bytes an MMS may carry"


async def fetch_all(
    client: httpx.AsyncClient,
    urls: Sequence[str],
    *,
    timeout: float,
    max_total: int = MAX_TOTAL_BYTES,
) -> list[FetchedMedia]:
    """Download every media item in order; their total size must stay within `max_total`."""
    out: list[FetchedMedia] = []
    used = 0
    for i, url in enumerate(urls):
        problem = url_problem(url)
        if problem:
            raise MediaError(i, url, problem)
        fetched = await fetch_one(client, i, url, budget=max_total - used, timeout=timeout)
        used += fetched.size
        out.append(fetched)
    return out


def needs_fetch(row: Mapping[Any, Any]) -> bool:
    return row["type"] == "MMS" and any(m.get("sha256") is None for m in row["media"] or [])


async def fill_for_send(ctx: AppContext, db: Database, row: RowMapping) -> RowMapping | None:
    """Fetch an MMS's media before it goes to the carrier (send job step).

    Returns the message with `content_type`, `size` and `sha256` filled in, the message unchanged
    when there is nothing to fetch, or None when it ended `sending_failed` with 40317.
    """
    if not needs_fetch(row):
        return row
    urls = [str(m.get("url") or "") for m in row["media"]]
    try:
        fetched = await fetch_all(http_client(ctx), urls, timeout=ctx.settings.media_fetch_timeout)
    except MediaError as exc:
        async with db.transaction() as uow:
            detail = f"Media {exc.index} ({exc.url[:200]}) cannot be sent: {exc.reason}."
            current = await repo.update_message(
                uow,
                row["id"],
                {"errors": [*list(row["errors"] or []), delivery_error("40317", detail)]},
                only_status="sending",
            )
            if current is not None:
                await finalize(
                    uow, current, "sending_failed", None, billed=False, from_status="sending"
                )
        return None
    async with db.transaction() as uow:
        return await repo.update_message(
            uow, row["id"], {"media": [f.item() for f in fetched]}, only_status="sending"
        )


async def describe_urls(ctx: AppContext, urls: Sequence[str]) -> list[dict[str, Any]]:
    """Inbound media items (`hash_sha256`) for URLs a simulated handset sends (40317 if unusable)."""
    try:
        fetched = await fetch_all(http_client(ctx), urls, timeout=ctx.settings.media_fetch_timeout)
    except MediaError as exc:
        raise rejection(
            "40317",
            "Invalid MMS content",
            f"Media {exc.index} cannot be fetched: {exc.reason}.",
            f"/media_urls/{exc.index}",
        ) from None
    return [
        {"url": f.url, "content_type": f.content_type, "hash_sha256": f.sha256, "size": f.size}
        for f in fetched
    ]
