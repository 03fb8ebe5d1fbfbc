"""Versioned checkpoints: config + trained weights + vocabulary + training record + metrics.

A checkpoint is a safetensors file: tensors for the modules training changed (pretrained
parts come from pip packages, so a shipped model stays small), the query adapters when there
are some (their queries in the metadata), and JSON metadata. Nothing is unpickled on load,
and ``load_checkpoint`` rebuilds model, tokenizer and transforms with no extra flags.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from core.errors import CheckpointError, ConfigError
from core.model.amfmn import AMFMN
from core.model.config import AMFMNCfg
from tiles.atomic import atomic_path

FORMAT = "sceneseek-amfmn"
FORMAT_VERSION = 1
IMAGE_TOWER = ("backbone.", "global_proj.", "mvsa.")  # what the stored visual vector depends on
ADAPTERS = "adapters."  # applied to query vectors only: no scene file depends on them


@dataclass
class CheckpointInfo:
    """Everything a checkpoint says about itself besides its tensors."""

    config: AMFMNCfg
    vocab: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""
    adapters: list[str] = field(default_factory=list)


def trained_state(model: AMFMN, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """State of the modules training changed, keyed as in ``model.state_dict()``."""
    state: dict[str, torch.Tensor] = {}
    for prefix, module in model.trained_modules().items():
        for key, value in module.state_dict().items():
            tensor = value.detach().cpu()
            if dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(dtype)
            state[f"{prefix}.{key}"] = tensor.contiguous()
    return state


def _digest(
    label: str, config: AMFMNCfg, state: Mapping[str, torch.Tensor], keys: list[str]
) -> str:
    """``label-`` + SHA-256 prefix of the config and the float32 values of ``keys``.

    Values are hashed as float32, so a float16 file and the float32 model loaded from it agree.
    """
    digest = hashlib.sha256()
    spec = {
        "embed_dim": config.embed_dim,
        "vision": asdict(config.vision),
        "preprocess": asdict(config.preprocess),
    }
    if label == "scene":
        spec["text"], spec["attention"] = asdict(config.text), config.attention
    digest.update(json.dumps(spec, sort_keys=True).encode())
    for key in sorted(keys):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().float().contiguous().numpy().tobytes())
    return f"{label}-{digest.hexdigest()[:16]}"


def image_tower_digest(config: AMFMNCfg, state: Mapping[str, torch.Tensor]) -> str:
    """Identity of the modules before the stored visual vector (``image-`` + SHA-256 prefix).

    Stored vectors and the visual index stay valid across model versions that share it, so
    a version that changed only the text tower or the gate needs no re-embedding.
    """
    return _digest("image", config, state, [k for k in state if k.startswith(IMAGE_TOWER)])


def scene_digest(config: AMFMNCfg, state: Mapping[str, torch.Tensor]) -> str:
    """Identity of what a scene's gates and text index depend on (``scene-`` + SHA-256 prefix).

    Every trained module but the query adapters: a version that only added or changed
    adapters shares every scene file of its parent, so promoting it recomputes nothing.
    """
    return _digest("scene", config, state, [k for k in state if not k.startswith(ADAPTERS)])


def image_tower_fingerprint(model: AMFMN) -> str:
    """``image_tower_digest`` of a model in memory."""
    return image_tower_digest(model.cfg, trained_state(model))


def scene_fingerprint(model: AMFMN) -> str:
    """``scene_digest`` of a model in memory."""
    return scene_digest(model.cfg, trained_state(model))


def checkpoint_image_tower(path: str | Path) -> str:
    """``image_tower_digest`` of a checkpoint file, without building the model.

    Raises:
        CheckpointError: for unreadable files or other formats.
    """
    return _file_digests(*_file_stamp(path))[0]


def checkpoint_scene_key(path: str | Path) -> str:
    """``scene_digest`` of a checkpoint file, without building the model.

    Raises:
        CheckpointError: for unreadable files or other formats.
    """
    return _file_digests(*_file_stamp(path))[1]


def _file_stamp(path: str | Path) -> tuple[str, int, int]:
    path = Path(path).resolve()
    stat = path.stat() if path.is_file() else None
    return str(path), stat.st_size if stat else -1, stat.st_mtime_ns if stat else -1


@lru_cache(maxsize=32)
def _file_digests(path: str, size: int, mtime_ns: int) -> tuple[str, str]:
    from safetensors.torch import load_file

    info = read_info(path)
    state = load_file(path)
    return image_tower_digest(info.config, state), scene_digest(info.config, state)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(
    model: AMFMN,
    path: str | Path,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write a checkpoint atomically (temp file then rename), so readers never see half a file."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vocab = getattr(model.text, "vocab", None)
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(model.cfg.to_dict()),
        "vocab": json.dumps(vocab.to_dict() if vocab is not None else None),
        "training": json.dumps(training or {}),
        "metrics": json.dumps(metrics or {}),
    }
    if len(model.adapters):
        metadata["adapters"] = json.dumps(model.adapters.queries)
    with atomic_path(path) as tmp:
        save_file(trained_state(model, dtype), tmp, metadata=metadata)
    return path


def read_info(path: str | Path) -> CheckpointInfo:
    """Read and validate a checkpoint's metadata without building the model.

    Raises:
        CheckpointError: if the file is missing, not a SceneSeek checkpoint, or of another
            format version.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except Exception as exc:  # safetensors raises several unrelated types for bad files
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a SceneSeek AMFMN checkpoint (format={meta.get('format')!r})"
        )
    if meta.get("format_version") != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{path} has checkpoint format version {meta.get('format_version')}; this SceneSeek "
            f"reads version {FORMAT_VERSION}. Re-export it with the matching release."
        )
    try:
        config = AMFMNCfg.from_dict(json.loads(meta["config"]))
    except (KeyError, ConfigError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: invalid model config: {exc}") from exc
    return CheckpointInfo(
        config=config,
        vocab=json.loads(meta.get("vocab", "null")),
        training=json.loads(meta.get("training", "{}")),
        metrics=json.loads(meta.get("metrics", "{}")),
        sha256=file_sha256(path),
        adapters=json.loads(meta.get("adapters", "[]")),
    )


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[AMFMN, CheckpointInfo]:
    """Rebuild the model a checkpoint describes and load its weights, in eval mode.

    Raises:
        CheckpointError: for unreadable files, other formats, or tensors that do not match the
            architecture the config describes.
    """
    from safetensors.torch import load_file

    from core.model.factory import create_model
    from core.model.vocab import Vocabulary

    info = read_info(path)
    vocab = Vocabulary.from_dict(info.vocab) if info.vocab else None
    model = create_model(info.config, vocab=vocab)
    model.adapters.resize(info.adapters)
    state = load_file(str(path))
    expected = trained_state(model)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match its architecture: "
            f"missing {missing[:4]}, unexpected {unexpected[:4]}"
        )
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise CheckpointError(
                f"{path}: {key} has shape {tuple(tensor.shape)}, "
                f"expected {tuple(expected[key].shape)}"
            )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=False)
    return model.to(device).eval(), info
