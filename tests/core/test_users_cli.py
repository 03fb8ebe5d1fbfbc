"""``python -m core users add`` names the workspace it wrote to, so a second one is noticed."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from core.cli.main import main
from core.store import users


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def _add_alice(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse\n"))
    assert main(["users", "add", "alice", "--role", "admin", *args]) == 0
    return capsys.readouterr().out.strip()


def test_users_add_prints_the_absolute_workspace_it_wrote_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCENESEEK_WORKSPACE", "served")  # relative, like ./workspace
    served = tmp_path.resolve() / "served"
    assert _add_alice(monkeypatch, capsys) == f"added alice (admin) to the workspace {served}"
    assert (served / "users.json").is_file()

    other = tmp_path.resolve() / "ws"
    printed = _add_alice(monkeypatch, capsys, "--workspace", "ws")
    assert printed == f"added alice (admin) to the workspace {other}"
    assert (other / "users.json").is_file()
