"""Load the model an engine command should use: a given checkpoint or the workspace's active one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from core.device import resolve_device
from core.model.amfmn import AMFMN
from core.model.checkpoint import file_sha256, load_checkpoint, scene_fingerprint
from core.model.inference import Towers, load_towers
from core.model.onnx_export import cache_dir_for
from core.model.shipped import resolve_checkpoint
from core.model.versions import ModelRegistry, model_tag
from core.store.workspace import Workspace


@dataclass
class LoadedModel:
    """A model in eval mode on its device, with the tag its embeddings carry and its towers."""

    model: AMFMN
    tag: str
    device: torch.device
    path: Path
    towers: Towers

    @property
    def scene_key(self) -> str:
        """What the scene files it searches must be keyed by (``checkpoint.scene_digest``)."""
        return scene_fingerprint(self.model)


def load_model(
    workspace: Workspace,
    checkpoint: str | None = None,
    device: str = "auto",
    engine: str | None = None,
) -> LoadedModel:
    """The checkpoint named on the command line, else the workspace's active version.

    ``engine`` (``onnx``, ``torch``; None: ``SCENESEEK_ENGINE``, else ONNX on a CPU) runs
    the towers; ONNX graphs are cached in the workspace, exported now if missing.

    Raises:
        CheckpointError: when the checkpoint is missing or invalid.
        ConfigError: for an unknown engine, or ONNX on a CUDA device.
    """
    dev = resolve_device(device)
    if checkpoint:
        path = resolve_checkpoint(checkpoint)
        tag = model_tag(file_sha256(path))
    else:
        version = ModelRegistry(workspace).active()
        path, tag = version.path, version.tag
    model, _ = load_checkpoint(path, dev)
    towers = load_towers(model, dev, engine, cache_dir_for(workspace))
    return LoadedModel(model, tag, dev, Path(path), towers)
