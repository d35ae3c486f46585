"""Link detection and rewriting in message text (no I/O)."""

from __future__ import annotations

import pytest

from signalpost.links import detect

# (text, the links that must be found, in order)
CASES: list[tuple[str, list[str]]] = [
    ("no links here", []),
    ("Visit https://example.com.", ["https://example.com"]),
    ("Visit https://example.com/a/b?x=1&y=2, then reply", ["https://example.com/a/b?x=1&y=2"]),
    ("Is it https://example.com/faq?", ["https://example.com/faq"]),
    ("Wow https://example.com/path!!!", ["https://example.com/path"]),
    ("end: https://example.com/x...", ["https://example.com/x"]),
    ("(see https://example.com/a)", ["https://example.com/a"]),
    ("(see https://en.wikipedia.org/wiki/Foo_(bar))", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
    ("[docs](https://example.com/docs)", ["https://example.com/docs"]),
    ("<https://example.com/x>", ["https://example.com/x"]),
    ('"https://example.com/q"', ["https://example.com/q"]),
    ("“https://example.com/curly”", ["https://example.com/curly"]),
    ("'https://example.com/it's'", ["https://example.com/it's"]),
    ("https://example.com/#/route?x=1#frag", ["https://example.com/#/route?x=1#frag"]),
    (
        "https://example.com/search?q=a+b&lang=en#top",
        ["https://example.com/search?q=a+b&lang=en#top"],
    ),
    ("HTTPS://EXAMPLE.COM/UPPER", ["HTTPS://EXAMPLE.COM/UPPER"]),
    ("http://example.com:8080/p", ["http://example.com:8080/p"]),
    ("http://127.0.0.1:8000/x", ["http://127.0.0.1:8000/x"]),
    ("http://[2001:db8::1]:8080/x", ["http://[2001:db8::1]:8080/x"]),
    ("http://localhost/", ["http://localhost/"]),
    ("https://user:pw@example.com/x", ["https://user:pw@example.com/x"]),
    (
        "two https://a.example/1 and https://b.example/2",
        ["https://a.example/1", "https://b.example/2"],
    ),
    (
        "same https://a.example/1 https://a.example/1",
        ["https://a.example/1", "https://a.example/1"],
    ),
    ("https://a.example,https://b.example", ["https://a.example", "https://b.example"]),
    ("line\nhttps://a.example/x\nnext", ["https://a.example/x"]),
    ("IDN https://bücher.de/katalog?t=ä ok", ["https://bücher.de/katalog?t=ä"]),
    ("IDN https://пример.рф/путь.", ["https://пример.рф/путь"]),
    ("CJK host https://例え.jp/ ok", ["https://例え.jp/"]),
    ("詳細はhttps://example.jp/path?a=1を参照", ["https://example.jp/path?a=1"]),
    ("emoji https://example.com/party🎉", ["https://example.com/party"]),
    ("https://example.com/%E2%9C%93/ok", ["https://example.com/%E2%9C%93/ok"]),
    ("www.example.com has no scheme", []),
    ("mailto:someone@example.com", []),
    ("ftp://example.com/file", []),
    ("xhttps://glued.example", []),
    ("https:// nothing", []),
    ("https://", []),
    ("https://-bad-.example/x", []),
    ("https://999.1.1.1/x", []),
    ("https://example.com:99999/x", []),
    ("https://exa mple.com", ["https://exa"]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_find_links(text: str, expected: list[str]) -> None:
    found = detect.find_links(text)
    assert [link.url for link in found] == expected
    for link in found:
        assert text[link.start : link.end] == link.url


def test_rewrite_replaces_each_occurrence_and_keeps_the_rest() -> None:
    text = "A https://a.example/1, B (https://b.example/2) and again https://a.example/1."
    seen: list[str] = []

    def replace(url: str) -> str:
        seen.append(url)
        return "<" + url[-1] + ">"

    assert detect.rewrite(text, replace) == "A <1>, B (<2>) and again <1>."
    assert seen == ["https://a.example/1", "https://b.example/2", "https://a.example/1"]


def test_rewrite_keeps_links_the_callback_declines() -> None:
    text = "x https://bit.ly/abc y https://example.com/z"
    out = detect.rewrite(text, lambda u: "S" if detect.on_blocklist(u) else None)
    assert out == "x S y https://example.com/z"


@pytest.mark.parametrize(
    ("url", "blocked"),
    [
        ("https://bit.ly/x", True),
        ("https://BIT.LY/x", True),
        ("https://www.bit.ly/x", True),
        ("http://tinyurl.com/abc", True),
        ("https://t.co/abc", True),
        ("https://sub.bitly.com/x", True),
        ("https://notbit.ly/x", False),
        ("https://bit.ly.example.com/x", False),
        ("https://example.com/bit.ly", False),
    ],
)
def test_blocklist(url: str, blocked: bool) -> None:
    assert detect.on_blocklist(url) is blocked


@pytest.mark.parametrize(
    ("url", "header"),
    [
        ("https://example.com/a?b=c#d", "https://example.com/a?b=c#d"),
        ("HTTPS://Example.COM/A", "https://example.com/A"),
        ("https://bücher.de/katalog?t=ä", "https://xn--bcher-kva.de/katalog?t=%C3%A4"),
        ("https://example.com/%E2%9C%93", "https://example.com/%E2%9C%93"),
        ("https://example.com/a|b", "https://example.com/a%7Cb"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ],
)
def test_location_is_ascii(url: str, header: str) -> None:
    assert detect.location(url) == header
    assert detect.location(url).isascii()


@pytest.mark.parametrize(
    ("ua", "bot"),
    [
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
            "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
            True,
        ),
        ("WhatsApp/2.23.20.0 A", True),
        ("TelegramBot (like TwitterBot)", True),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", True),
        ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", True),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            False,
        ),
        ("Mozilla/5.0 (Linux; Android 13; Cubot X70) Chrome/118.0 Mobile Safari/537.36", False),
        ("", False),
        (None, False),
    ],
)
def test_preview_bots(ua: str | None, bot: bool) -> None:
    assert detect.is_preview_bot(ua) is bot


@pytest.mark.parametrize(
    ("raw", "scheme", "name"),
    [
        ("links.example.com", None, "links.example.com"),
        ("  Links.Example.COM/ ", None, "links.example.com"),
        ("https://links.example.com", "https", "links.example.com"),
        ("http://127.0.0.1:8080", "http", "127.0.0.1:8080"),
        ("bücher.de", None, "xn--bcher-kva.de"),
        ("example.com/base", None, "example.com/base"),
    ],
)
def test_parse_domain(raw: str, scheme: str | None, name: str) -> None:
    assert detect.parse_domain(raw) == detect.Domain(scheme, name)


@pytest.mark.parametrize(
    "raw", ["", "bad domain", "ftp://x.com", "x.com?a=1", "-x.com", "x.com:port", "a@b.com"]
)
def test_parse_domain_rejects(raw: str) -> None:
    assert detect.parse_domain(raw) is None
