"""Which URLs may be read: the operator's allow-list, checked before any byte moves.

A server that fetches URLs for its users can be turned against its own network (cloud
metadata endpoints, internal services). So a URL is read only when its host is listed, and
when every address the host resolves to is public, or is itself listed as an address or
network. Credentials never travel in URLs: they come from the environment, and what is
recorded or shown of a URL has its user part and secret-looking parameters stripped.

Entries (``SCENESEEK_REMOTE_ALLOW``, comma-separated):

* ``data.example.org``, ``data.example.org:8443``, ``*.example.org``: host names;
* ``127.0.0.1``, ``10.20.0.0/16``, ``::1``: addresses or networks (URLs may name them
  directly, and host names may resolve into them);
* ``s3://bucket`` or ``s3://bucket/prefix``: S3 objects under that prefix.

A URL's path may not name ``.`` or ``..`` segments, a backslash or their percent-encoded
forms (``%2e``, ``%2f``, ``%5c``, ``%25``): a server or GDAL would resolve them after the
check, so ``s3://bucket/team-a/../team-b/x.tif`` would leave its ``s3://bucket/team-a``
entry. :meth:`AllowList.addresses` returns the addresses it checked, so that the
connection goes to exactly those and a second DNS answer is never asked for.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tiles.errors import RemoteRefusedError

REMOTE_SCHEMES = ("http", "https", "s3")
CREDENTIAL_VARIABLES = "GDAL_HTTP_BEARER, GDAL_HTTP_USERPWD, GDAL_HTTP_HEADERS or AWS_*"
_SECRET_WORDS = ("sig", "token", "secret", "pass", "cred", "key", "auth")
_SECRET_PREFIXES = ("x-amz-", "x-goog-")
_URL_IN_TEXT = re.compile(r"(?:https?|s3)://[^\s'\"<>]+")
_ESCAPING = re.compile(r"%(?:2e|2f|5c|25)|\\", re.IGNORECASE)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_remote(source: object) -> bool:
    """True for an ``http(s)://`` or ``s3://`` URL, also one a ``Path`` folded to ``s3:/``."""
    scheme, sep, _ = str(source).partition(":/")
    return bool(sep) and scheme.lower() in REMOTE_SCHEMES


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith(_SECRET_PREFIXES) or any(w in lowered for w in _SECRET_WORDS)


def redact_url(url: str) -> str:
    """The URL without its user part and without parameters whose names look like secrets.

    This is what manifests, logs and messages show; a pre-signed URL loses its signature,
    so reading it again needs a fresh one.
    """
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_secret(k)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), parts.fragment))


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted (for error messages that quote a URL)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def has_credentials(url: str) -> bool:
    """True when the URL carries a user part or a secret-looking parameter."""
    return redact_url(url) != urlunsplit(urlsplit(url))


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def escaping_part(path: str) -> str | None:
    """The part of a URL path that could leave a prefix once resolved, or None.

    That is a ``.`` or ``..`` segment, a backslash, or a percent-encoded dot, slash,
    backslash or percent sign (a server may decode it, and decode ``%252e`` twice).
    """
    found = _ESCAPING.search(path)
    if found:
        return found.group(0)
    return next((segment for segment in path.split("/") if segment in (".", "..")), None)


def _refuse_escapes(url: str, path: str) -> None:
    part = escaping_part(path)
    if part is not None:
        raise RemoteRefusedError(
            f"{redact_url(url)}: its path holds {part!r}, which a server would resolve after "
            "the allow-list check; give the object's plain path"
        )


@dataclass(frozen=True)
class AllowList:
    """The parsed allow-list; empty means remote sources are off."""

    hosts: tuple[tuple[str, int | None], ...] = ()
    networks: tuple[IPNetwork, ...] = ()
    s3_prefixes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, entries: tuple[str, ...] | list[str]) -> AllowList:
        """Read entries as described in the module docstring.

        Raises:
            RemoteRefusedError: An entry is neither a host, an address or network, nor an
                ``s3://`` prefix, or an ``s3://`` prefix holds ``..`` or an encoded form.
        """
        hosts, networks, prefixes = [], [], []
        for entry in (e.strip() for e in entries if e.strip()):
            if entry.lower().startswith("s3://"):
                prefix = "s3://" + entry[len("s3://") :].rstrip("/")
                _refuse_escapes(prefix, prefix[len("s3://") :])
                prefixes.append(prefix)
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            host, _, port = entry.lower().partition(":")
            if "/" in entry or (port and not port.isdigit()) or not host:
                raise RemoteRefusedError(
                    f"SCENESEEK_REMOTE_ALLOW entry {entry!r} is not a host, host:port, "
                    "address, network or s3://bucket prefix"
                )
            hosts.append((host, int(port) if port else None))
        return cls(tuple(hosts), tuple(networks), tuple(prefixes))

    def __bool__(self) -> bool:
        return bool(self.hosts or self.networks or self.s3_prefixes)

    def _listed(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def _host_listed(self, host: str, port: int) -> bool:
        for name, wanted in self.hosts:
            matches = host == name or (name.startswith("*.") and host.endswith(name[1:]))
            if matches and wanted in (None, port):
                return True
        address = _address(host)
        return address is not None and self._listed(address)

    def check(self, url: str) -> None:
        """Refuse ``url`` unless the allow-list lets this server read it.

        Raises:
            RemoteRefusedError: See :meth:`addresses`.
        """
        if urlsplit(url).scheme.lower() != "s3":
            self.addresses(url)
            return
        self._refuse_off(url)
        key = url[len("s3://") :]
        _refuse_escapes(url, key)
        if not any((f"s3://{key}/").startswith(p + "/") for p in self.s3_prefixes):
            raise RemoteRefusedError(
                f"{redact_url(url)}: this bucket is not in SCENESEEK_REMOTE_ALLOW"
            )

    def addresses(self, url: str) -> tuple[IPAddress, ...]:
        """The addresses an ``http(s)://`` URL may be read from: resolved once, all checked.

        Connect only to these: resolving the name again could give another answer.

        Raises:
            RemoteRefusedError: Remote sources are off; the scheme or host is not listed;
                the URL carries a user part or a path that escapes (``..``, ``%2e``...); or
                the host resolves to a private, loopback or link-local address that is not
                listed itself.
        """
        shown = redact_url(url)
        self._refuse_off(url)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise RemoteRefusedError(f"{shown}: only http(s):// and s3:// URLs are read")
        if "@" in parts.netloc:
            raise RemoteRefusedError(
                f"{shown}: credentials in a URL are refused; the operator sets them in the "
                f"server's environment ({CREDENTIAL_VARIABLES})"
            )
        _refuse_escapes(url, parts.path)
        host, port = parts.hostname.lower(), parts.port or (443 if scheme == "https" else 80)
        if not self._host_listed(host, port):
            raise RemoteRefusedError(f"{shown}: host {host} is not in SCENESEEK_REMOTE_ALLOW")
        found = _resolve(host, port, shown)
        for address in found:
            if not address.is_global and not self._listed(address):
                raise RemoteRefusedError(
                    f"{shown}: {host} resolves to {address}, a private, loopback or link-local "
                    "address; list that address or network in SCENESEEK_REMOTE_ALLOW to allow it"
                )
        return tuple(dict.fromkeys(found))

    def _refuse_off(self, url: str) -> None:
        if not self:
            raise RemoteRefusedError(
                f"{redact_url(url)}: remote scenes are off on this server; the operator "
                "enables them with SCENESEEK_REMOTE_ALLOW (hosts or s3://bucket prefixes)"
            )


def _resolve(host: str, port: int, shown: str) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RemoteRefusedError(f"{shown}: host {host} cannot be resolved ({exc})") from exc
    found = [_address(str(info[4][0])) for info in infos]
    return [address for address in found if address is not None]
