"""core/settings.py: every numeric setting refuses what is not a finite number >= 0."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core import settings
from core.errors import ConfigError
from core.settings import get_settings
from tests.app.conftest import ROOT

# Read from the source, so a setting added later is tested too.
NUMERIC = re.findall(r'_number\(\s*"(SCENESEEK_\w+)"', Path(settings.__file__).read_text())
BAD = ("nan", "inf", "-inf", "abc", "-1", "NaN", "1e400")


def test_the_numeric_settings_are_found() -> None:
    assert {"SCENESEEK_LOCKOUT_S", "SCENESEEK_SESSION_HOURS", "SCENESEEK_MIN_FREE_GB"} <= set(
        NUMERIC
    )


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("name", NUMERIC)
def test_a_numeric_setting_refuses_values_that_are_not_finite_numbers(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=rf"^{name}='{re.escape(value)}' is not a finite number"):
        get_settings()


def test_valid_numbers_still_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENESEEK_LOCKOUT_S", " 2.5 ")
    monkeypatch.setenv("SCENESEEK_SESSION_HOURS", "0")
    monkeypatch.setenv("SCENESEEK_MAX_JOBS", "3")
    got = get_settings()
    assert (got.lockout_s, got.session_hours, got.max_jobs) == (2.5, 0.0, 3)
    assert all(math.isfinite(v) for v in (got.min_free_gb, got.max_pixels, got.max_tiles))


@pytest.mark.parametrize(
    ("name", "value", "args"),
    [
        ("SCENESEEK_LOCKOUT_S", "nan", ("users", "list")),
        ("SCENESEEK_SESSION_HOURS", "abc", ("serve-check", "--host", "127.0.0.1")),
        ("SCENESEEK_MIN_FREE_GB", "-inf", ("jobs", "list")),
    ],
)
def test_the_cli_says_one_error_line_and_exits_2(tmp_path, name: str, value: str, args) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "core", *args, "--workspace", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, name: value},
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {name}={value!r} is not a finite number >= 0")
