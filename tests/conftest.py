"""Shared fixtures: the real shared data, found the way the app finds it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA_ROOT = Path(
    os.environ.get("SCENESEEK_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
).resolve()


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """ONNX graphs exported by tests land in one folder per session, not the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("user-cache")
        patch.setenv("SCENESEEK_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not DATA_ROOT.is_dir():
        pytest.fail(f"shared data not found at {DATA_ROOT}; set SCENESEEK_DATA")
    return DATA_ROOT


@pytest.fixture(scope="session")
def scenes_dir(data_root: Path) -> Path:
    return data_root / "scenes"


@pytest.fixture(scope="session")
def model_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped default model; before one ships, the untrained architecture (ImageNet
    backbone + MiniLM with fresh heads) saved once per session."""
    from core.errors import CheckpointError
    from core.model.shipped import resolve_checkpoint

    try:
        return resolve_checkpoint("default")
    except CheckpointError:
        from core.model.checkpoint import save_checkpoint
        from core.model.factory import create_model

        path = tmp_path_factory.mktemp("model") / "untrained.safetensors"
        return save_checkpoint(create_model("amfmn-lite0-minilm"), path)
