"""A send's URLs under the outbound guard (kit.netguard), checked at the API before any transaction.

With the guard on: a message-level `webhook_url` / `webhook_failover_url` the server may not reach
is refused with 400, code 10003 and the field's pointer; a media URL with 400, code 40317 at
`/media_urls/<i>`. The links of the text are looked up too, and their verdicts handed to link
shortening (`links.service.shorten`), which refuses to make a short link to a blocked URL (400 at
`/text`) when the sender's profile shortens links. With the guard off nothing is looked up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from signalpost.context import AppContext, outbound_guard
from signalpost.kit.netguard import OutboundGuard, refuse_blocked
from signalpost.links import detect


async def check_urls(
    ctx: AppContext,
    *,
    webhook_url: str | None = None,
    webhook_failover_url: str | None = None,
    media_urls: Sequence[str] = (),
    text: str | None = None,
) -> dict[str, str] | None:
    """Refuse blocked URLs of a send (ApiError 400); the problems of the text's links, by URL
    (None when the guard is off)."""
    guard = outbound_guard(ctx)
    if not guard.enforcing:
        return None
    await refuse_blocked(
        guard,
        [("/webhook_url", webhook_url), ("/webhook_failover_url", webhook_failover_url)],
    )
    await refuse_blocked(
        guard,
        [(f"/media_urls/{i}", url) for i, url in enumerate(media_urls)],
        code="40317",
        title="Invalid MMS content",
    )
    return await link_problems(guard, text)


async def link_problems(guard: OutboundGuard, text: str | None) -> dict[str, str]:
    """Why each blocked link of `text` may not be shortened, by URL."""
    if not text or "://" not in text:
        return {}
    urls = list(dict.fromkeys(link.url for link in detect.find_links(text)))
    problems = await asyncio.gather(*(guard.url_problem(url) for url in urls))
    return {url: p for url, p in zip(urls, problems, strict=True) if p is not None}
