"""The checked HTTP client: connections go where the allow-list checked, HTTPS still verifies
the host's certificate and sends SNI, and credentials stay with the first origin."""

import ssl
import subprocess
import threading
from contextlib import contextmanager
from functools import partial
from http.server import ThreadingHTTPServer

import pytest
from rasterio.windows import Window

import tiles
from bench.cog import write_cog
from bench.range_server import RangeHandler, RangeServer
from tests.tiles.conftest import rebinding_dns, scene
from tiles.checked_http import CheckedSession, fetch_checked

LOCAL = tiles.AllowList.parse(["localhost", "127.0.0.1", "::1"])


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    write_cog(scene("berkeley"), folder / "cog.tif", Window(0, 0, 512, 512))
    return folder


def _certificate(folder, name):
    """A self-signed certificate for ``name`` (openssl, EC key: fast)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}"]
        + ["-addext", f"subjectAltName=DNS:{name}"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@contextmanager
def tls_server(root, cert, key):
    """RangeHandler over TLS on 127.0.0.1; yields its port and the SNI names it was sent."""
    names = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, root=root, options={}))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], names
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_https_verifies_the_host_name_and_sends_sni(root, tmp_path, monkeypatch):
    cert, key = _certificate(tmp_path, "localhost")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with tls_server(root, cert, key) as (port, names):
        url = f"https://localhost:{port}/cog.tif"
        answer = fetch_checked(url, LOCAL, byte_range="bytes=0-3", max_bytes=4)
        assert answer.status == 206 and answer.body in tiles.TIFF_SIGNATURES
        assert names == ["localhost"]
        remote = tiles.resolve_remote(url, LOCAL, retries=0)
        tiles.check_remote_gtiff(remote)  # GDAL reads the whole header over the pinned TLS
        assert tiles.describe(remote).width == 512


def test_https_refuses_a_certificate_for_another_name(root, tmp_path, monkeypatch):
    cert, key = _certificate(tmp_path, "elsewhere.test")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with tls_server(root, cert, key) as (port, _):
        with pytest.raises(tiles.RemoteReadError, match="CERTIFICATE_VERIFY_FAILED"):
            fetch_checked(f"https://localhost:{port}/cog.tif", LOCAL, byte_range="bytes=0-3")


def test_a_session_connects_only_to_the_address_it_checked(root, monkeypatch):
    listed = RangeServer(root).start()
    rebound = RangeServer(root, host="127.0.0.2", port=listed.port).start()
    rebinding_dns(monkeypatch, "scenes.test", honest=1)
    session = CheckedSession(tiles.AllowList.parse(["scenes.test", "127.0.0.1"]), retries=0)
    try:
        for start in range(3):
            answer = session.get(
                f"http://scenes.test:{listed.port}/cog.tif", byte_range=f"bytes={start}-{start}"
            )
            assert answer.status == 206
        assert len(listed.requests()) == 3 and rebound.requests() == []
        assert {r["Host"] for r in listed.requests()} == {f"scenes.test:{listed.port}"}
    finally:
        session.close()
        listed.stop()
        rebound.stop()


def test_credentials_stay_with_the_first_origin(root, monkeypatch):
    other = RangeServer(root, host="127.0.0.2").start()
    first = RangeServer(root, redirects={"/moved.tif": other.url("cog.tif")}).start()
    monkeypatch.setenv("GDAL_HTTP_BEARER", "t0ken")
    allow = tiles.AllowList.parse(["127.0.0.1", "127.0.0.2"])
    try:
        assert fetch_checked(first.url("moved.tif"), allow, byte_range="bytes=0-3").status == 206
        assert [r["Authorization"] for r in first.requests()] == ["Bearer t0ken"]
        assert [r["Authorization"] for r in other.requests()] == [""]
    finally:
        first.stop()
        other.stop()
