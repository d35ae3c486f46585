"""An httpx transport that connects only where the outbound guard allows (kit.netguard).

Every request — each hop of a redirect included, since the client sends each hop through its
transport — resolves its host once through the guard, which checks every answer (`Blocked` when one
is refused, before any connection is made), and is then sent to a checked address: the URL's host
is replaced by the address, while the `Host` header and the TLS server name (the `sni_hostname`
extension, against which the certificate is verified) keep the name. Connections are not kept
alive, so one made for a name is never reused for another name on the same address. Proxies from
the environment are not used. A name that does not resolve and a connection that fails look the
same: `httpx.ConnectError("could not connect")`.
"""

from __future__ import annotations

import httpx

from signalpost.kit.netguard import SCHEMES, Blocked, OutboundGuard, Unresolvable


class GuardedTransport(httpx.AsyncBaseTransport):
    """Sends each request to an address the guard checked (see the module docstring)."""

    def __init__(self, guard: OutboundGuard, *, verify: bool = True) -> None:
        self._guard = guard
        self._inner = httpx.AsyncHTTPTransport(
            verify=verify,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in SCHEMES:
            raise Blocked(f"{url.scheme} URLs are not allowed")
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = await self._guard.addresses(host, port)
        except Unresolvable:
            raise httpx.ConnectError("could not connect", request=request) from None
        for address in addresses:
            pinned = httpx.Request(
                request.method,
                url.copy_with(host=str(address)),
                headers=request.headers,  # `Host` names the host, as given
                stream=request.stream,
                extensions={**request.extensions, "sni_hostname": host},
            )
            try:
                return await self._inner.handle_async_request(pinned)
            except httpx.ConnectError:
                continue
        raise httpx.ConnectError("could not connect", request=request)

    async def aclose(self) -> None:
        await self._inner.aclose()
