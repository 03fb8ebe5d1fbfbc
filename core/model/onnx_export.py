"""Cache the towers' ONNX graphs (built and checked by ``core.model.onnx_graphs``).

Each tower is its own graph, named by the fingerprint of the weights it uses (the state of
its modules), so a fine-tune that changes only the text side re-exports only the text graph.
A graph is used only after it reproduced torch on a fixed batch; otherwise the export is
refused, the reason is logged and recorded, and
that tower stays on torch. The record (a JSON sidecar written after the check) holds the
graph's SHA-256, so a truncated or replaced graph is exported again, never trusted. A file
lock per graph keeps two processes from exporting it at once, and every file is written
under a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import onnxruntime as ort
import torch
from filelock import FileLock, Timeout
from torch import nn

from core.errors import ExportRefusedError
from core.model.amfmn import AMFMN
from core.model.checkpoint import file_sha256
from core.model.onnx_graphs import (
    MIN_COSINE,
    OPSET,
    export_tower,
    verify_tower,
)
from core.settings import get_settings
from core.store.workspace import Workspace, read_json, write_json
from tiles.atomic import atomic_path

EXPORT_VERSION = 1  # bump when the graphs' inputs, outputs or export settings change
TOWERS = ("image", "text")


KEY_CHARS = 24  # fingerprint prefix in file names


LOCK_TIMEOUT_S = 600.0


log = logging.getLogger(__name__)


def cache_dir_for(workspace: Workspace | None) -> Path:
    """Where graphs are cached: the workspace's ``models/onnx``, else ``SCENESEEK_CACHE/onnx``.

    The user cache serves checkpoints used without a workspace (evaluation, the shipped model
    named on the command line); graphs are keyed by their weights, so sharing is safe.
    """
    if workspace is not None:
        return workspace.models_dir / "onnx"
    return get_settings().cache_dir / "onnx"


def tower_modules(model: AMFMN, tower: str) -> dict[str, nn.Module]:
    """The modules whose state a tower's graph bakes in.

    Raises:
        ValueError: for a tower other than ``image`` or ``text``.
    """
    if tower == "image":
        modules = {"backbone": model.backbone, "global_proj": model.global_proj, "mvsa": model.mvsa}
        if model.has_gates:
            modules["attention"] = model.attention
        return modules
    if tower == "text":
        return {"text": model.text}
    raise ValueError(f"unknown tower {tower!r}; choose one of {TOWERS}")


def _graph_settings(model: AMFMN, tower: str) -> dict[str, Any]:
    """Everything besides the weights that changes a tower's graph."""
    settings: dict[str, Any] = {"export_version": EXPORT_VERSION, "opset": OPSET, "tower": tower}
    if tower == "image":
        settings.update(image_size=model.cfg.preprocess.image_size, gates=model.has_gates)
    else:
        settings.update(encoder=model.cfg.text.encoder)
    return settings


def tower_fingerprint(model: AMFMN, tower: str) -> str:
    """SHA-256 of a tower's weights (names, dtypes, shapes, bytes) and graph settings.

    Only that tower's modules count, so fine-tuning the text side leaves the image key as it
    was. Bytes are taken from contiguous copies: a channels-last model has the same key.
    """
    digest = hashlib.sha256(json.dumps(_graph_settings(model, tower), sort_keys=True).encode())
    for prefix, module in sorted(tower_modules(model, tower).items()):
        for key, value in module.state_dict().items():
            tensor = value.detach().cpu().contiguous()
            digest.update(f"{prefix}.{key}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def graph_path(cache_dir: Path, tower: str, fingerprint: str) -> Path:
    """File of a tower's graph in the cache; its record is the same name with ``.json``."""
    return Path(cache_dir) / f"{tower}-{fingerprint[:KEY_CHARS]}.onnx"


def _trusted_record(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The record of a graph if it is current and the graph file is the one it describes.

    A refusal is trusted as long as the threshold and ONNX Runtime are the same (running
    torch is always safe); a graph only when its SHA-256 matches the record.
    """
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return None
    try:
        record = read_json(sidecar)
        current = (
            record["fingerprint"] == fingerprint
            and record["export_version"] == EXPORT_VERSION
            and record["onnxruntime"] == ort.__version__
            and record["required_cosine"] == MIN_COSINE
        )
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("unreadable ONNX cache record %s; exporting that graph again", sidecar)
        return None
    if not current:
        return None
    if "refused" in record:
        return record
    if not path.is_file() or file_sha256(path) != record.get("sha256"):
        log.warning(
            "cached ONNX graph %s is missing, truncated or replaced; exporting it again", path
        )
        return None
    return record


def _export_verified(model: AMFMN, tower: str, path: Path, fingerprint: str) -> dict[str, Any]:
    """Export, verify, then commit graph and record; a refusal is recorded instead."""
    started = time.time()
    record: dict[str, Any] = {
        "tower": tower,
        "fingerprint": fingerprint,
        "export_version": EXPORT_VERSION,
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
        "required_cosine": MIN_COSINE,
    }
    log.info("exporting the %s tower to ONNX: %s", tower, path)
    try:
        with atomic_path(path) as tmp:
            export_tower(model, tower, Path(tmp))
            cosine = verify_tower(model, tower, Path(tmp))
            if not cosine >= MIN_COSINE:  # also refuses NaN
                raise ExportRefusedError(
                    f"its vectors match torch's only to cosine {cosine:.6f} (< {MIN_COSINE})"
                )
            record.update(sha256=file_sha256(tmp), min_cosine=cosine)
    except OSError:
        raise  # a full disk or a permission problem is not the graph's fault: retry next time
    except Exception as exc:  # the exporter and ONNX Runtime raise many unrelated types
        reason = str(exc) if isinstance(exc, ExportRefusedError) else f"{type(exc).__name__}: {exc}"
        record["refused"] = reason
        path.unlink(missing_ok=True)
    record["seconds"] = round(time.time() - started, 1)
    write_json(path.with_suffix(".json"), record)
    return record


def _copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` (a file never modified in place) to ``target``, else copy it."""
    with atomic_path(target) as tmp:
        try:
            Path(tmp).unlink()
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def _share(source: Path, target: Path, fingerprint: str) -> dict[str, Any] | None:
    """Take a graph and its record from another cache; the record if the copy is trusted."""
    record = None if source == target else _trusted_record(source, fingerprint)
    if record is None or "refused" in record:  # a refusal elsewhere does not stop an export
        return None
    _copy(source, target)
    _copy(source.with_suffix(".json"), target.with_suffix(".json"))
    return _trusted_record(target, fingerprint)


def _publish(path: Path, shared: Path, fingerprint: str) -> None:
    """Link a new graph into the user cache too; skipped when that is not writable or busy."""
    with contextlib.suppress(OSError, Timeout):
        shared.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{shared}.lock", timeout=0):
            if _trusted_record(shared, fingerprint) is None:
                _share(path, shared, fingerprint)


def _ensure(model: AMFMN, tower: str, cache_dir: Path, fingerprint: str) -> Path | None:
    """A verified graph of one tower, exported now if the cache lacks it; None when refused.

    A graph verified in the user cache is linked into a workspace's cache instead of being
    exported again, and a graph exported into a workspace is linked into the user cache
    (when it is writable), so a machine exports a given tower once.
    """
    path = graph_path(cache_dir, tower, fingerprint)
    shared = graph_path(cache_dir_for(None), tower, fingerprint)
    record = _trusted_record(path, fingerprint)
    if record is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(f"{path}.lock", timeout=LOCK_TIMEOUT_S):
                record = _trusted_record(path, fingerprint)  # another process may have done it
                if record is None:
                    record = _share(shared, path, fingerprint)
                if record is None:
                    record = _export_verified(model, tower, path, fingerprint)
                    if "refused" not in record:
                        _publish(path, shared, fingerprint)
        except Timeout:
            log.warning(
                "another process held the ONNX export lock of the %s tower for %.0f s; "
                "the %s tower runs on torch this time",
                tower,
                LOCK_TIMEOUT_S,
                tower,
            )
            return None
    if "refused" in record:
        log.warning(
            "ONNX export of the %s tower refused: %s; the %s tower runs on torch",
            tower,
            record["refused"],
            tower,
        )
        return None
    return path


def ensure_exported(model: AMFMN, cache_dir: Path) -> dict[str, Path | None]:
    """Verified graphs of both towers of a CPU model in ``cache_dir``, exporting what is missing.

    Model-version registration and promotion call this (through ``export_checkpoint``) so
    the export happens in that job; loaders call it too, as a fallback. A tower whose export
    is refused maps to None and runs on torch.

    Raises:
        OSError: when the cache folder cannot be written.
    """
    return {
        tower: _ensure(model, tower, Path(cache_dir), tower_fingerprint(model, tower))
        for tower in TOWERS
    }


def _known_checkpoint(record: Path, cache_dir: Path) -> dict[str, Path | None] | None:
    """Graphs of a checkpoint seen before, if every one is still trusted."""
    try:
        fingerprints = read_json(record)["towers"]
        records = {
            t: _trusted_record(graph_path(cache_dir, t, fingerprints[t]), fingerprints[t])
            for t in TOWERS
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if any(r is None for r in records.values()):
        return None
    return {
        t: None if "refused" in r else graph_path(cache_dir, t, fingerprints[t])
        for t, r in records.items()
    }


def export_checkpoint(checkpoint: str | Path, cache_dir: Path) -> dict[str, Path | None]:
    """``ensure_exported`` for a checkpoint file; loads the model only when needed.

    A record per checkpoint (by its SHA-256) names its towers' fingerprints, so promoting or
    rolling back to a version whose graphs are cached costs a few hashes, not a model load.

    Raises:
        CheckpointError: when the checkpoint must be loaded and cannot be.
        OSError: when the cache folder cannot be written.
    """
    from core.model.checkpoint import load_checkpoint

    cache_dir = Path(cache_dir)
    record = cache_dir / f"checkpoint-{file_sha256(checkpoint)[:KEY_CHARS]}.json"
    if record.is_file():
        known = _known_checkpoint(record, cache_dir)
        if known is not None:
            return known
    model, _ = load_checkpoint(checkpoint)
    fingerprints = {tower: tower_fingerprint(model, tower) for tower in TOWERS}
    paths = {t: _ensure(model, t, cache_dir, fingerprints[t]) for t in TOWERS}
    write_json(record, {"checkpoint": str(checkpoint), "towers": fingerprints})
    return paths
