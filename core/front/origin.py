"""Where a request comes from, as far as the anonymous-on-loopback gate may believe.

Behind any proxy every connection looks like loopback, so a request that carries a proxy
header is treated as remote, unless it provably came through the front: then the front's own
``X-Forwarded-For`` hop (the only one) names the client. The proof is a per-run random token
the front adds and the app it starts gets in ``SCENESEEK_FRONT_TOKEN``; nobody else knows it.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

FRONT_HEADER = "x-sceneseek-front"
PROXIED = "a reverse proxy"  # the served host when the person is somewhere behind a proxy
# Headers proxies and CDNs add; any "x-forwarded-*" header counts as well.
PROXY_HEADERS = frozenset(
    {
        "forwarded",
        "via",
        "x-real-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "x-client-ip",
        "x-cluster-client-ip",
        "x-original-forwarded-for",
        "x-proxyuser-ip",
        "x-envoy-external-address",
        FRONT_HEADER,
    }
)
# Headers that describe one connection, not the request (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def is_proxy_header(name: str) -> bool:
    """True for a header a proxy adds to say whom it forwards for."""
    name = name.lower()
    return name in PROXY_HEADERS or name.startswith("x-forwarded-")


def _proven(headers: Mapping[str, str], front_token: str) -> bool:
    sent = headers.get(FRONT_HEADER, "")
    return bool(front_token) and hmac.compare_digest(sent.encode(), front_token.encode())


def served_host(
    headers: Mapping[str, str], peer: str | None, bind: str, front_token: str = ""
) -> str:
    """The address the person behind a request is at, for ``anonymous_refusal``.

    ``peer`` is the connection's remote address (None when Streamlit reports loopback),
    ``bind`` the address the server listens on, ``front_token`` this app's proof of the
    front (empty when no front started it).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    proxied = sorted(name for name in lowered if is_proxy_header(name))
    if _proven(lowered, front_token):
        hops = [hop.strip() for hop in lowered.get("x-forwarded-for", "").split(",")]
        if proxied == ["x-forwarded-for", FRONT_HEADER] and len(hops) == 1 and hops[0]:
            return hops[0]
        return PROXIED  # another proxy stands before the front
    if proxied:
        return PROXIED
    return peer or bind


def upstream_headers(
    headers: Iterable[tuple[str, str]], peer: str, front_token: str, skip: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """The headers the front sends on: the client's, its own hop added, and the proof.

    The client's own ``X-Forwarded-For`` values are kept before the front's hop, so a client
    that claims to be loopback still shows two hops and is not believed.
    """
    dropped = HOP_BY_HOP | {FRONT_HEADER, "x-forwarded-for"} | {s.lower() for s in skip}
    kept: list[tuple[str, str]] = []
    hops: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "x-forwarded-for":
            hops.append(value)
        elif lowered not in dropped:
            kept.append((name, value))
    kept.append(("X-Forwarded-For", ", ".join([*hops, peer])))
    kept.append((FRONT_HEADER, front_token))
    return kept
