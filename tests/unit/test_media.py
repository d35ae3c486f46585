"""MMS media: URL checks, content-type inference, and fetching with a size cap and a timeout."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest

from signalpost.kit.errors import ApiError
from signalpost.messages.media import (
    MAX_TOTAL_BYTES,
    FetchedMedia,
    MediaError,
    check_urls,
    fallback_text,
    fetch_all,
    infer_content_type,
    sniff,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 100


# --- URLs checked at the API -------------------------------------------------------------------


def test_http_and_https_urls_pass() -> None:
    assert check_urls([" https://a.example/x.png ", "http://b.example:8080/y"]) == [
        "https://a.example/x.png",
        "http://b.example:8080/y",
    ]


@pytest.mark.parametrize(
    ("url", "index"),
    [
        ("ftp://a.example/x.png", 1),
        ("file:///etc/passwd", 1),
        ("not a url", 1),
        ("https://", 1),
        ("", 1),
        ("https://a.example/" + "x" * 2000, 1),
        ("http://[::1/", 1),
    ],
)
def test_bad_urls_are_40317_with_a_pointer_to_the_item(url: str, index: int) -> None:
    with pytest.raises(ApiError) as info:
        check_urls(["https://ok.example/a.png", url])
    assert info.value.code == "40317"
    assert info.value.pointer == f"/media_urls/{index}"
    assert info.value.should_retry is False


def test_more_than_ten_urls_is_40317() -> None:
    with pytest.raises(ApiError) as info:
        check_urls([f"https://a.example/{i}.png" for i in range(11)])
    assert info.value.code == "40317" and info.value.pointer == "/media_urls"


def test_fallback_text_lists_subject_text_and_links() -> None:
    assert fallback_text("Hi", "Subj", ["https://a/1", "https://a/2"]) == (
        "Subj\nHi\nhttps://a/1\nhttps://a/2"
    )
    assert fallback_text(None, None, ["https://a/1"]) == "https://a/1"


# --- content type ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "url", "head", "expected"),
    [
        ("image/png", "https://a/x", b"", "image/png"),
        ("IMAGE/JPEG; charset=binary", "https://a/x", b"", "image/jpeg"),
        ("application/octet-stream", "https://a/x", PNG, "image/png"),
        (None, "https://a/x", JPEG, "image/jpeg"),
        (None, "https://a/x", b"GIF89a....", "image/gif"),
        (None, "https://a/x", b"%PDF-1.7", "application/pdf"),
        (None, "https://a/x", b"\0\0\0\x18ftypmp42", "video/mp4"),
        (None, "https://a/x", b"\0\0\0\x14ftyp3gp4", "video/3gpp"),
        (None, "https://a/x", b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
        (None, "https://a/x", b"ID3\x03", "audio/mpeg"),
        (None, "https://a/x", b"BEGIN:VCARD\r\n", "text/vcard"),
        (None, "https://a/clip.mp3?sig=1", b"plain", "audio/mpeg"),
        ("", "https://a/doc.pdf", b"plain", "application/pdf"),
        (None, "https://a/noext", b"plain", "application/octet-stream"),
    ],
)
def test_content_type_inference(declared: str | None, url: str, head: bytes, expected: str) -> None:
    assert infer_content_type(declared, url, head) == expected


def test_sniff_does_not_guess_text() -> None:
    assert sniff(b"hello world") is None


# --- fetching ------------------------------------------------------------------------------------


async def _chunks(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _server(
    files: dict[str, tuple[bytes, str | None]], *, chunked: bool = False
) -> httpx.MockTransport:
    async def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/slow":
            await asyncio.sleep(5)
        if path == "/down":
            raise httpx.ConnectError("connection refused", request=request)
        if path not in files:
            return httpx.Response(404, content=b"nope")
        data, ctype = files[path]
        headers = {"content-type": ctype} if ctype else {}
        if chunked:
            return httpx.Response(200, headers=headers, content=_chunks(data))
        return httpx.Response(200, headers=headers, content=data)

    return httpx.MockTransport(handle)


def _fetch(
    transport: httpx.MockTransport,
    urls: list[str],
    timeout: float = 2.0,
    max_total: int = MAX_TOTAL_BYTES,
) -> list[FetchedMedia]:
    async def go() -> list[FetchedMedia]:
        async with httpx.AsyncClient(transport=transport) as client:
            return await fetch_all(client, urls, timeout=timeout, max_total=max_total)

    return asyncio.run(go())


def test_fetch_fills_type_size_and_hash() -> None:
    big = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 1000
    transport = _server({"/a.png": (big, None), "/b": (JPEG, "image/jpeg")})
    got = _fetch(transport, ["https://m.example/a.png", "https://m.example/b"])
    assert [g.content_type for g in got] == ["image/png", "image/jpeg"]
    assert [g.size for g in got] == [len(big), len(JPEG)]
    assert got[0].sha256 == hashlib.sha256(big).hexdigest()
    assert got[0].item() == {
        "url": "https://m.example/a.png",
        "content_type": "image/png",
        "sha256": hashlib.sha256(big).hexdigest(),
        "size": len(big),
    }


@pytest.mark.parametrize("chunked", [False, True])
def test_a_single_file_over_the_cap_is_refused(chunked: bool) -> None:
    transport = _server({"/big": (b"x" * (MAX_TOTAL_BYTES + 1), "image/png")}, chunked=chunked)
    with pytest.raises(MediaError) as info:
        _fetch(transport, ["https://m.example/big"])
    assert info.value.index == 0 and "bytes" in info.value.reason


def test_the_cap_is_on_the_total() -> None:
    half = b"y" * (MAX_TOTAL_BYTES // 2 + 10)
    transport = _server({"/1": (half, "image/png"), "/2": (half, "image/png")}, chunked=True)
    with pytest.raises(MediaError) as info:
        _fetch(transport, ["https://m.example/1", "https://m.example/2"])
    assert info.value.index == 1
    exactly = b"z" * MAX_TOTAL_BYTES
    ok = _fetch(_server({"/e": (exactly, "image/png")}), ["https://m.example/e"])
    assert ok[0].size == MAX_TOTAL_BYTES


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/missing", "HTTP 404"), ("/down", "unreachable"), ("/slow", "within")],
)
def test_unreachable_media(path: str, reason: str) -> None:
    transport = _server({"/ok": (PNG, "image/png")})
    with pytest.raises(MediaError) as info:
        _fetch(transport, ["https://m.example/ok", f"https://m.example{path}"], timeout=0.2)
    assert info.value.index == 1
    assert reason in info.value.reason
