"""The Dockerfile stays consistent with requirements.txt, the app entry point and the repo.

No Docker engine runs here, so these checks read the file the way a reviewer would.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(keyword):
    return [
        line.split(None, 1)[1] for line in DOCKERFILE.splitlines() if line.startswith(keyword + " ")
    ]


def test_torch_version_matches_requirements():
    pinned = re.search(r"^torch==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert f"ARG TORCH_VERSION={pinned}" in DOCKERFILE
    assert "ARG TORCH_VARIANT=cpu" in DOCKERFILE


def test_installs_pinned_requirements():
    assert "pip install -r requirements.txt" in DOCKERFILE
    assert any(line.startswith("requirements.txt") for line in _instructions("COPY"))


def test_every_copied_path_exists():
    for spec in _instructions("COPY"):
        source = spec.split()[0]
        assert (ROOT / source).exists(), source


def test_entry_point_is_the_front_on_8501():
    cmd = _instructions("CMD")[0]
    assert cmd == '["python", "-m", "core", "front", "--port", "8501"]'  # exec form: gets SIGTERM
    assert (ROOT / "app" / "Home.py").is_file()
    assert _instructions("EXPOSE") == ["8501"]


def test_healthcheck_hits_streamlit_health_through_the_front():
    assert "http://127.0.0.1:8501/_stcore/health" in DOCKERFILE.split("HEALTHCHECK", 1)[1]


def test_runs_as_non_root_with_workspace_volume():
    users = _instructions("USER")
    assert users and users[-1] not in ("root", "0")
    assert '"/workspace"' in _instructions("VOLUME")[0]
    assert "SCENESEEK_WORKSPACE=/workspace" in DOCKERFILE


def test_make_run_starts_the_front_not_streamlit_directly():
    make = (ROOT / "Makefile").read_text()
    run = make.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "python -m core front" in run and "streamlit" not in run


def test_browsers_never_see_tracebacks():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
