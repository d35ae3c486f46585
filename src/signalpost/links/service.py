"""Link shortening: link domains, rewriting message text, resolving short links, recording clicks.

Rules:
- **Domains.** A profile's `url_shortener_settings.domain` must be available to its organization:
  the server's own public host (from `base_url`, e.g. `127.0.0.1:8080`) always is; otherwise it must
  be configured by an operator (`signalpost links domains add`), either for every organization or
  for one. `GET /v2/messaging_url_domains` lists them, the server's own host first.
- **Short URLs.** On the server's own host a short link is `{base_url}/l/{prefix}{code}`: the fixed
  `/l/` mount keeps short links from shadowing any other route. On a configured domain it is
  `{scheme}://{domain}/{prefix}{code}` (scheme as configured, https by default); the server
  recognises such requests by their `Host` header (see `api.py`). A domain that was available when
  the profile was saved but has since been removed falls back to the server's own host, so sends
  keep working and the links keep resolving.
- **Codes** are `CODE_LENGTH` random base62 characters (~60 bits), unique across the server, and map
  to (organization, message, recipient, original URL). A URL that occurs several times in one
  message gets one code.
- **Text.** Messages store the rewritten text as `text` (what the handset receives and what
  encoding and `parts` are computed on) and the text as submitted in `original_text`.
- **Outbound guard** (`SIGNALPOST_OUTBOUND_ALLOW_PRIVATE=false`, kit.netguard): a link whose
  URL the server may not reach (a loopback, private, link-local, ... address, or a name that
  resolves to one) is never shortened. A send through the API that would shorten one is refused
  (400 at `/text`; the names were looked up before the transaction, `messages.outbound`); where no
  lookup was made (auto-replies), such a link whose host is a literal address is left as it is.
  A short link whose URL is blocked when it is clicked (a name that now resolves to a blocked
  address) is not followed: 403, and no click is recorded.
- **Clicks.** Every GET of a short link answers 302 to the original URL and records the click
  (time, User-Agent, client IP). A click whose User-Agent names a link-preview fetcher
  (`detect.PREVIEW_AGENTS`: iMessage, WhatsApp, Slack, ... previews) is recorded with `is_bot` and
  fires no webhook; every other click fires the link-click webhook when the profile's
  `send_webhooks` was on when the message was sent, to the profile's current webhook URLs.
- **Webhook body** (contract §9.3, Open point 4): the SDK's `ReplacedLinkClick` fields in `data`
  (`record_type: "link_clicked"`, `message_id`, `to`, `url`, `time_clicked`), plus
  `event_type: "message.link_click"` so receivers that route on `data.event_type` can route it; the
  SDK types accept the extra key. No `payload` wrapper; `meta` carries `attempt`/`delivered_to` as
  on every webhook. Signed and retried like every webhook.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import RowMapping

from signalpost.kit import ids
from signalpost.kit.clock import iso, utcnow
from signalpost.kit.db import UnitOfWork
from signalpost.kit.errors import ApiError
from signalpost.kit.netguard import OutboundGuard
from signalpost.links import detect
from signalpost.links import repository as repo
from signalpost.settings import Settings

CODE_LENGTH = 10
OWN_MOUNT = "/l/"
CLICK_EVENT = "message.link_click"
CLICK_RECORD_TYPE = "link_clicked"
USE_CASE = "link_shortening"
_PREFIX_SAFE = "/-._~!$&'()*+,;=:@"
_USER_AGENT_LIMIT = 1000


@dataclass(frozen=True)
class ShortenerSettings:
    """A profile's `url_shortener_settings` (contract §4.6)."""

    domain: str
    prefix: str = ""
    replace_blacklist_only: bool = False
    send_webhooks: bool = False


def shortener_settings(profile: Mapping[Any, Any] | None) -> ShortenerSettings | None:
    """The profile's shortener settings, or None when link shortening is off."""
    raw = profile.get("url_shortener_settings") if profile is not None else None
    if not isinstance(raw, Mapping):
        return None
    domain = raw.get("domain")
    if not isinstance(domain, str) or not domain.strip():
        return None
    prefix = raw.get("prefix")
    return ShortenerSettings(
        domain=domain,
        prefix=prefix.lstrip("/") if isinstance(prefix, str) else "",
        replace_blacklist_only=bool(raw.get("replace_blacklist_only")),
        send_webhooks=bool(raw.get("send_webhooks")),
    )


# --- domains --------------------------------------------------------------------------------------


def own_domain(settings: Settings) -> detect.Domain:
    """The server's own public host, as a link domain (`127.0.0.1:8080`, `sp.example.com`)."""
    parsed = detect.parse_domain(settings.base_url)
    if parsed is None:  # base_url always parses; keep a usable value if it ever does not
        return detect.Domain("http", settings.base_url.split("://", 1)[-1].lower())
    return parsed


def own_hosts(settings: Settings) -> frozenset[str]:
    """Host names (no port) under which requests reach the server itself rather than a link domain."""
    own = own_domain(settings).name.split("/", 1)[0].rsplit(":", 1)[0]
    return frozenset({own, settings.host.lower(), "localhost", "127.0.0.1", "::1", "[::1]"})


def _own_row(settings: Settings) -> dict[str, Any]:
    name = own_domain(settings).name
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, settings.base_url)),
        "record_type": "messaging_url_domain",
        "url_domain": name,
        "use_case": USE_CASE,
    }


def domain_view(row: Mapping[Any, Any]) -> dict[str, Any]:
    """One item of `GET /messaging_url_domains` (PY `MessagingURLDomainListResponse`)."""
    return {
        "id": row["id"],
        "record_type": "messaging_url_domain",
        "url_domain": row["url_domain"],
        "use_case": row["use_case"],
    }


async def list_domains(
    uow: UnitOfWork, settings: Settings, organization_id: str, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The domains the organization may name in a profile: the server's own host, then the rest."""
    own = _own_row(settings)
    db_offset = max(offset - 1, 0)
    db_limit = limit - 1 if offset == 0 else limit
    rows, total = await repo.list_domains(
        uow, organization_id, offset=db_offset, limit=max(db_limit, 0)
    )
    items = [domain_view(r) for r in rows if r["url_domain"] != own["url_domain"]]
    if offset == 0:
        items.insert(0, own)
    return items[:limit], total + 1


async def domain_available(
    uow: UnitOfWork, settings: Settings, organization_id: str, domain: str
) -> bool:
    """May the organization name `domain` in a profile's `url_shortener_settings`?"""
    parsed = detect.parse_domain(domain)
    if parsed is None:
        return False
    if parsed.name == own_domain(settings).name:
        return True
    return await repo.available_domain(uow, organization_id, parsed.name) is not None


@dataclass(frozen=True)
class _Origin:
    """Where a message's short links point: `base` + `path_prefix` + code."""

    domain: str
    base: str
    own: bool


async def _origin(
    uow: UnitOfWork, settings: Settings, organization_id: str, domain: str
) -> _Origin:
    parsed = detect.parse_domain(domain)
    own = own_domain(settings)
    if parsed is not None and parsed.name != own.name:
        row = await repo.available_domain(uow, organization_id, parsed.name)
        if row is not None:
            return _Origin(row["url_domain"], f"{row['scheme']}://{row['url_domain']}/", False)
    return _Origin(own.name, settings.base_url + OWN_MOUNT, True)


class DomainError(ValueError):
    """An operator's domain command cannot be carried out."""


async def add_domain(
    uow: UnitOfWork,
    raw: str,
    *,
    organization_id: str | None,
    scheme: str | None = None,
    use_case: str = USE_CASE,
) -> dict[str, Any]:
    """Configure a link domain for one organization or (organization None) for all of them."""
    parsed = detect.parse_domain(raw)
    if parsed is None:
        raise DomainError(f"{raw!r} is not a domain name (e.g. links.example.com)")
    chosen = (scheme or parsed.scheme or "https").lower()
    if chosen not in ("http", "https"):
        raise DomainError("the scheme must be http or https")
    if await repo.domain_exists(uow, parsed.name, organization_id):
        raise DomainError(f"{parsed.name} is already configured")
    row = {
        "id": ids.new_uuid(),
        "organization_id": organization_id,
        "url_domain": parsed.name,
        "scheme": chosen,
        "use_case": use_case,
        "created_at": utcnow(),
    }
    await repo.insert_domain(uow, row)
    return row


async def remove_domain(uow: UnitOfWork, id_or_name: str, organization_id: str | None) -> int:
    parsed = detect.parse_domain(id_or_name)
    removed = await repo.delete_domains(uow, id_or_name, organization_id)
    if not removed and parsed is not None:
        removed = await repo.delete_domains(uow, parsed.name, organization_id)
    return removed


async def admin_domains(uow: UnitOfWork, organization_id: str | None) -> list[RowMapping]:
    return await repo.domains_for_admin(uow, organization_id)


# --- rewriting ------------------------------------------------------------------------------------


async def _new_codes(uow: UnitOfWork, count: int) -> list[str]:
    codes: list[str] = []
    while len(codes) < count:
        batch = {ids.base62(CODE_LENGTH) for _ in range(count - len(codes))}
        batch -= set(codes)
        batch -= await repo.existing_codes(uow, batch)
        codes.extend(sorted(batch))
    return codes


async def shorten(
    uow: UnitOfWork,
    settings: Settings,
    organization_id: str,
    message_id: str,
    profile: Mapping[Any, Any] | None,
    recipient: str,
    text: str,
    *,
    guard: OutboundGuard | None = None,
    problems: Mapping[str, str] | None = None,
) -> str:
    """`text` with its links replaced by short links (stored in the caller's transaction).

    Returns `text` unchanged when the profile has no shortener settings or no link qualifies.
    With an enforcing `guard`, a blocked link is not shortened: `problems` (the API's verdicts by
    URL) makes it a 400; without them a link to a literal blocked address is left as it is.
    """
    cfg = shortener_settings(profile)
    if cfg is None or not text:
        return text
    links = detect.find_links(text)
    originals: list[str] = []
    for found in links:
        if found.url in originals:
            continue
        if cfg.replace_blacklist_only and not detect.on_blocklist(found.url):
            continue
        if guard is not None and _blocked_link(guard, problems, found.url):
            continue
        originals.append(found.url)
    if not originals:
        return text
    origin = await _origin(uow, settings, organization_id, cfg.domain)
    codes = await _new_codes(uow, len(originals))
    prefix_path = quote(cfg.prefix, safe=_PREFIX_SAFE)
    now = utcnow()
    mapping: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for url, code in zip(originals, codes, strict=True):
        short = origin.base + prefix_path + code
        mapping[url] = short
        rows.append(
            {
                "code": code,
                "organization_id": organization_id,
                "message_id": message_id,
                "messaging_profile_id": profile["id"] if profile is not None else None,
                "recipient": recipient,
                "original_url": url,
                "domain": origin.domain,
                "prefix": cfg.prefix,
                "short_url": short,
                "send_webhooks": cfg.send_webhooks,
                "created_at": now,
            }
        )
    await repo.insert_links(uow, rows)
    return detect.rewrite(text, mapping.get)


def _blocked_link(guard: OutboundGuard, problems: Mapping[str, str] | None, url: str) -> bool:
    """Whether the guard keeps `url` from being shortened (ApiError when the API looked it up)."""
    if not guard.enforcing:
        return False
    if problems is None:
        return guard.scheme_problem(url) is not None
    problem = problems.get(url)
    if problem is None:
        return False
    raise ApiError(
        400,
        "10003",
        "Invalid URL",
        f"A link in the text cannot be shortened: {problem}",
        pointer="/text",
        should_retry=False,
    )


# --- clicks ---------------------------------------------------------------------------------------


async def resolve(uow: UnitOfWork, path: str) -> RowMapping | None:
    """The short link a request path (`{prefix}{code}`, without the leading `/`) names, or None."""
    if len(path) < CODE_LENGTH:
        return None
    prefix, code = path[:-CODE_LENGTH], path[-CODE_LENGTH:]
    if not code.isascii() or not code.isalnum():
        return None
    found = await repo.link(uow, code)
    if found is None or found["prefix"] != prefix:
        return None
    return found


def click_payload(link: Mapping[Any, Any], clicked_at: datetime) -> dict[str, Any]:
    """The link-click webhook's `data` (contract §9.3, plus `event_type`, see the module doc)."""
    return {
        "record_type": CLICK_RECORD_TYPE,
        "event_type": CLICK_EVENT,
        "message_id": link["message_id"],
        "to": link["recipient"],
        "url": link["original_url"],
        "time_clicked": iso(clicked_at),
    }


async def record_click(
    uow: UnitOfWork,
    link: Mapping[Any, Any],
    *,
    user_agent: str | None,
    ip: str | None,
) -> bool:
    """Store a click and, for a person's click with webhooks on, queue the webhook.

    Returns whether the click was taken for a link-preview bot.
    """
    from signalpost.webhooks import service as webhooks

    now = utcnow()
    is_bot = detect.is_preview_bot(user_agent)
    await repo.insert_click(
        uow,
        {
            "id": ids.new_uuid(),
            "code": link["code"],
            "clicked_at": now,
            "user_agent": (user_agent or "")[:_USER_AGENT_LIMIT] or None,
            "ip": ip,
            "is_bot": is_bot,
        },
    )
    if is_bot or not link["send_webhooks"]:
        return is_bot
    profile = await repo.profile(uow, link["messaging_profile_id"])
    urls = webhooks.resolve_urls(None, None, True, profile)
    await webhooks.emit(
        uow,
        organization_id=link["organization_id"],
        event_type=CLICK_EVENT,
        payload=click_payload(link, now),
        urls=urls,
        message_id=link["message_id"],
        envelope="bare",
        occurred_at=now,
    )
    return is_bot


# --- analytics ------------------------------------------------------------------------------------


def click_view(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "record_type": "link_click",
        "id": row["id"],
        "message_id": row["message_id"],
        "to": row["recipient"],
        "url": row["original_url"],
        "short_url": row["short_url"],
        "time_clicked": iso(row["clicked_at"]),
        "user_agent": row["user_agent"],
        "ip": row["ip"],
        "is_bot": bool(row["is_bot"]),
    }


def link_view(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {
        "record_type": "short_link",
        "code": row["code"],
        "short_url": row["short_url"],
        "url": row["original_url"],
        "message_id": row["message_id"],
        "to": row["recipient"],
        "messaging_profile_id": row["messaging_profile_id"],
        "send_webhooks": bool(row["send_webhooks"]),
        "created_at": iso(row["created_at"]),
        "clicks": int(row["clicks"] or 0),
        "bot_clicks": int(row["bot_clicks"] or 0),
        "last_clicked_at": iso(row["last_clicked_at"]),
    }


async def list_clicks(
    uow: UnitOfWork,
    organization_id: str,
    *,
    message_id: str | None,
    is_bot: bool | None,
    offset: int,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    rows, total = await repo.list_clicks(
        uow, organization_id, message_id=message_id, is_bot=is_bot, offset=offset, limit=limit
    )
    return [click_view(r) for r in rows], total


async def message_links(
    uow: UnitOfWork, organization_id: str, message_id: str
) -> list[dict[str, Any]] | None:
    """The message's short links with click counts; None when the message is not the org's."""
    if not await repo.message_exists(uow, organization_id, message_id):
        return None
    return [link_view(r) for r in await repo.links_of_message(uow, organization_id, message_id)]
