"""Allow-list paths: a prefix cannot be left with ``..``, ``.`` or their encoded forms."""

import pytest

import tiles

TEAM_A = tiles.AllowList.parse(["s3://bucket/team-a", "127.0.0.1"])
ESCAPES = (
    "team-a/../team-b/x.tif",
    "team-a/..",
    "team-a/./x.tif",
    "team-a/%2e%2e/team-b/x.tif",
    "team-a/%2E%2E/team-b/x.tif",
    "team-a/.%2e/team-b/x.tif",
    "team-a%2f..%2fteam-b/x.tif",
    "team-a/..%2Fteam-b%2Fx.tif",
    "team-a/%252e%252e/team-b/x.tif",
    "team-a/..\\team-b/x.tif",
)


@pytest.mark.parametrize("path", ESCAPES)
def test_s3_prefix_cannot_be_left(path):
    with pytest.raises(tiles.RemoteRefusedError, match="which a server would resolve"):
        TEAM_A.check(f"s3://bucket/{path}")


@pytest.mark.parametrize("path", ESCAPES)
def test_http_paths_cannot_escape_either(path):
    with pytest.raises(tiles.RemoteRefusedError, match="which a server would resolve"):
        TEAM_A.check(f"http://127.0.0.1:8000/{path}")


def test_plain_names_with_dots_still_pass():
    for path in ("team-a/x..y.tif", "team-a/.hidden/x.tif", "team-a/2020/x.v2.tif"):
        TEAM_A.check(f"s3://bucket/{path}")
        TEAM_A.check(f"http://127.0.0.1:8000/{path}")
    with pytest.raises(tiles.RemoteRefusedError, match="bucket is not in"):
        TEAM_A.check("s3://bucket/team-ab/x.tif")


def test_an_entry_cannot_hold_an_escape_either():
    for entry in ("s3://bucket/team-a/..", "s3://bucket/%2e%2e/team-b"):
        with pytest.raises(tiles.RemoteRefusedError, match="which a server would resolve"):
            tiles.AllowList.parse([entry])
    assert tiles.AllowList.parse(["s3://bucket/team-a/"]).s3_prefixes == ("s3://bucket/team-a",)


def test_addresses_are_the_checked_answer():
    assert TEAM_A.addresses("http://127.0.0.1:8000/x.tif") == (
        tiles.AllowList.parse(["127.0.0.1"]).networks[0].network_address,
    )
    with pytest.raises(tiles.RemoteRefusedError, match="resolves to 127.0.0.1"):
        tiles.AllowList.parse(["localhost"]).addresses("http://localhost/x.tif")
