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
                ``s3://`` prefix.
        """
        hosts, networks, prefixes = [], [], []
        for entry in (e.strip() for e in entries if e.strip()):
            if entry.lower().startswith("s3://"):
                prefixes.append(entry.rstrip("/"))
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
            RemoteRefusedError: Remote sources are off; the scheme, host or bucket is not
                listed; the URL carries a user part; or the host resolves to a private,
                loopback or link-local address that is not listed itself.
        """
        shown = redact_url(url)
        if not self:
            raise RemoteRefusedError(
                f"{shown}: remote scenes are off on this server; the operator enables them "
                "with SCENESEEK_REMOTE_ALLOW (hosts or s3://bucket prefixes)"
            )
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "s3":
            if not any((url + "/").startswith(p + "/") for p in self.s3_prefixes):
                raise RemoteRefusedError(f"{shown}: this bucket is not in SCENESEEK_REMOTE_ALLOW")
            return
        if scheme not in REMOTE_SCHEMES or not parts.hostname:
            raise RemoteRefusedError(f"{shown}: only http(s):// and s3:// URLs are read")
        if "@" in parts.netloc:
            raise RemoteRefusedError(
                f"{shown}: credentials in a URL are refused; the operator sets them in the "
                f"server's environment ({CREDENTIAL_VARIABLES})"
            )
        host, port = parts.hostname.lower(), parts.port or (443 if scheme == "https" else 80)
        if not self._host_listed(host, port):
            raise RemoteRefusedError(f"{shown}: host {host} is not in SCENESEEK_REMOTE_ALLOW")
        for address in _resolve(host, port, shown):
            if not address.is_global and not self._listed(address):
                raise RemoteRefusedError(
                    f"{shown}: {host} resolves to {address}, a private, loopback or link-local "
                    "address; list that address or network in SCENESEEK_REMOTE_ALLOW to allow it"
                )


def _resolve(host: str, port: int, shown: str) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise RemoteRefusedError(f"{shown}: host {host} cannot be resolved ({exc})") from exc
    found = [_address(str(info[4][0])) for info in infos]
    return [address for address in found if address is not None]
