"""Finding http(s) links in message text and rewriting them; pure functions, no I/O.

Detection rules (what counts as a link):
- A link starts with `http://` or `https://` (any case) that is not glued to a preceding ASCII
  letter or digit or `+ . - _` (so `xhttp://` is not a link; `詳細はhttps://…` is). Bare hosts such as `www.example.com` are not
  links: only text that names its scheme is rewritten.
- The host runs up to the first `/ ? #` and may hold letters of any script (IDN), digits,
  `- . _ ~ %`, a port (`:8080`), user info (`user@`) or an IPv6 literal (`[::1]`). It must be a
  well-formed domain name, IPv4 address or IPv6 literal, else the text is not a link.
- The path, query and fragment hold the URL characters of RFC 3986 plus letters and digits of
  alphabetic scripts (Latin, Greek, Cyrillic, ...). Whitespace, `< > "` and backticks, any
  non-ASCII punctuation or symbol (curly quotes, emoji, ...) and CJK characters end the link, so a
  link written straight into Chinese or Japanese text stops where the text resumes.
- Trailing `. , ; : ! ? ' " *` are not part of the link, nor is a closing `) ] }` that has no
  opening partner inside the link: `(see https://example.com/a_(b))` yields
  `https://example.com/a_(b)`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from urllib.parse import quote, urlsplit, urlunsplit

_SCHEME = re.compile(r"https?://", re.IGNORECASE)
_SCHEME_GLUE = set("+.-_")
_AUTHORITY_ASCII = set("-._~%:@[]")
_PATH_ASCII = set("-._~:/?#[]@!$&'()*+,;=%|^{}")
_TRAILING = set(".,;:!?'\"*")
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_PORT = re.compile(r"^[0-9]{1,5}$")

# Public URL shorteners: with `replace_blacklist_only`, only links whose host is one of these (or a
# subdomain of one) are replaced, because carriers filter messages that carry them.
SHORTENER_HOSTS: frozenset[str] = frozenset(
    {
        "adf.ly",
        "bit.do",
        "bit.ly",
        "bitly.com",
        "bl.ink",
        "buff.ly",
        "clck.ru",
        "cutt.ly",
        "goo.gl",
        "ht.ly",
        "is.gd",
        "lnkd.in",
        "ow.ly",
        "qr.ae",
        "rb.gy",
        "rebrand.ly",
        "s.id",
        "shorte.st",
        "shorturl.at",
        "t.co",
        "t.ly",
        "tiny.cc",
        "tinyurl.com",
        "trib.al",
        "v.gd",
        "x.co",
    }
)

# Link-preview fetchers and crawlers: a click whose User-Agent contains one of these (any case) is
# recorded with `is_bot` and fires no webhook. Messaging apps fetch a link to draw its preview card
# before anyone taps it (iMessage announces itself as `facebookexternalhit … Twitterbot`).
PREVIEW_AGENTS: tuple[str, ...] = (
    "facebookexternalhit",
    "facebot",
    "twitterbot",
    "slackbot",
    "slack-imgproxy",
    "discordbot",
    "telegrambot",
    "whatsapp",
    "linkedinbot",
    "skypeuripreview",
    "microsoftpreview",
    "google-pagerenderer",
    "googlebot",
    "adsbot-google",
    "bingbot",
    "bingpreview",
    "applebot",
    "pinterestbot",
    "redditbot",
    "embedly",
    "iframely",
    "vkshare",
    "snapchat",
    "yandexbot",
    "duckduckbot",
    "baiduspider",
    "mastodon",
    "bitlybot",
    "curl-preview",
)


@dataclass(frozen=True)
class Link:
    """One link found in a text: `text[start:end] == url`."""

    start: int
    end: int
    url: str


def _alphabetic(ch: str) -> bool:
    """A non-ASCII letter, digit or mark of a script that separates words with spaces."""
    cat = unicodedata.category(ch)
    if cat[0] not in "LNM":
        return False
    return not _is_cjk(ch)


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x1100 <= cp <= 0x11FF  # Hangul Jamo
        or 0x2E80 <= cp <= 0x9FFF  # CJK radicals, punctuation, kana, ideographs
        or 0xA960 <= cp <= 0xA97F
        or 0xAC00 <= cp <= 0xD7FF  # Hangul syllables
        or 0xF900 <= cp <= 0xFAFF  # CJK compatibility ideographs
        or 0xFE30 <= cp <= 0xFE4F
        or 0xFF00 <= cp <= 0xFFEF  # full-width forms
        or 0x20000 <= cp <= 0x3FFFF
    )


def _authority_char(ch: str) -> bool:
    if ch.isascii():
        return ch.isalnum() or ch in _AUTHORITY_ASCII
    cat = unicodedata.category(ch)
    # Host names may be written in any script, CJK included (`例え.jp`), but not in punctuation.
    return cat[0] in "LNM" and not (0x3000 <= ord(ch) <= 0x303F or 0xFF00 <= ord(ch) <= 0xFFEF)


def _path_char(ch: str) -> bool:
    if ch.isascii():
        return ch.isalnum() or ch in _PATH_ASCII
    return _alphabetic(ch)


def _trim(candidate: str) -> str:
    while candidate:
        last = candidate[-1]
        if last in _TRAILING:
            candidate = candidate[:-1]
            continue
        opener = _CLOSERS.get(last)
        if opener is not None and candidate.count(last) > candidate.count(opener):
            candidate = candidate[:-1]
            continue
        break
    return candidate


def valid_host(host: str) -> bool:
    """A domain name (any script), an IPv4 address or a bracketed IPv6 literal."""
    if host.startswith("[") and host.endswith("]"):
        try:
            IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    if not host or len(host) > 253:
        return False
    if re.fullmatch(r"[0-9.]+", host):
        try:
            IPv4Address(host)
        except ValueError:
            return False
        return True
    return all(_valid_label(label) for label in host.rstrip(".").split("."))


def _valid_label(label: str) -> bool:
    if not 0 < len(label) <= 63 or label[0] == "-" or label[-1] == "-":
        return False
    return all(c.isalnum() or c in "-_" or unicodedata.category(c).startswith("M") for c in label)


def _valid(url: str) -> bool:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return False
    hostport = parts.netloc.rpartition("@")[2]
    if hostport.startswith("["):
        host = hostport[: hostport.find("]") + 1]
    else:
        host = hostport.partition(":")[0]
    return valid_host(host)


def find_links(text: str) -> list[Link]:
    """Every http(s) link in `text`, in order (a repeated link is found each time it occurs)."""
    out: list[Link] = []
    pos = 0
    n = len(text)
    while True:
        m = _SCHEME.search(text, pos)
        if m is None:
            return out
        start = m.start()
        before = text[start - 1] if start > 0 else ""
        if before and ((before.isascii() and before.isalnum()) or before in _SCHEME_GLUE):
            pos = m.end()
            continue
        i = m.end()
        while i < n and _authority_char(text[i]):
            i += 1
        if i < n and text[i] in "/?#":
            while i < n and _path_char(text[i]):
                i += 1
        url = _trim(text[start:i])
        if len(url) > m.end() - start and _valid(url):
            out.append(Link(start, start + len(url), url))
            pos = start + len(url)
        else:
            pos = m.end()


def rewrite(text: str, replace: Callable[[str], str | None]) -> str:
    """`text` with each link `u` replaced by `replace(u)` (kept as it is when that is None)."""
    pieces: list[str] = []
    last = 0
    for link in find_links(text):
        new = replace(link.url)
        if new is None:
            continue
        pieces.append(text[last : link.start])
        pieces.append(new)
        last = link.end
    pieces.append(text[last:])
    return "".join(pieces)


def ascii_host(host: str) -> str:
    """The host in lower case with IDN labels in their `xn--` form (unchanged when not encodable)."""
    host = host.strip().rstrip(".").lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def host_of(url: str) -> str:
    """The host of a link, for comparisons: lower case, IDN as `xn--`, no port or user info."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return ascii_host(host)


def on_blocklist(url: str, hosts: Iterable[str] = SHORTENER_HOSTS) -> bool:
    """True when the link's host is a public shortener or a subdomain of one."""
    host = host_of(url)
    if host.startswith("www."):
        host = host[4:]
    blocked = set(hosts)
    return any(host == h or host.endswith("." + h) for h in blocked)


_LOCATION_SAFE = "!#$%&'()*+,-./:;=?@[]_~"


def location(url: str) -> str:
    """The link as an ASCII URL for a `Location` header: IDN host as `xn--`, the rest escaped."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname or ""
    except ValueError:
        return quote(url, safe=_LOCATION_SAFE)
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if hostname and not hostport.startswith("["):
        raw_host, colon, port = hostport.partition(":")
        hostport = ascii_host(raw_host) + colon + port
    netloc = (quote(userinfo, safe=_LOCATION_SAFE) + at if at else "") + hostport
    return urlunsplit(
        (
            parts.scheme.lower(),
            netloc,
            quote(parts.path, safe=_LOCATION_SAFE),
            quote(parts.query, safe=_LOCATION_SAFE),
            quote(parts.fragment, safe=_LOCATION_SAFE),
        )
    )


def is_preview_bot(user_agent: str | None) -> bool:
    """True when the User-Agent names a known link-preview fetcher or crawler."""
    if not user_agent:
        return False
    ua = user_agent.lower()
    return any(token in ua for token in PREVIEW_AGENTS)


@dataclass(frozen=True)
class Domain:
    """A link domain as configured: scheme (when given), host[:port] and an optional base path."""

    scheme: str | None
    name: str  # lower-case host (IDN as xn--) with ":port" and "/path" when present


def parse_domain(raw: str) -> Domain | None:
    """Normalise a domain as an operator or a profile writes it (`links.example.com`,
    `https://links.example.com/`, `127.0.0.1:8080`); None when it is not a usable domain."""
    text = raw.strip()
    scheme: str | None = None
    lowered = text.lower()
    for candidate in ("https://", "http://"):
        if lowered.startswith(candidate):
            scheme = candidate[:-3]
            text = text[len(candidate) :]
            break
    if "://" in text:
        return None
    text = text.rstrip("/")
    hostport, slash, path = text.partition("/")
    if not hostport or any(c in text for c in " ?#@\\"):
        return None
    host, colon, port = hostport.rpartition(":") if hostport.count(":") == 1 else (hostport, "", "")
    if colon and not _PORT.match(port):
        return None
    if not valid_host(host):
        return None
    name = ascii_host(host) + (colon + port if colon else "") + (slash + path if slash else "")
    return Domain(scheme, name)
