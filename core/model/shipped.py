"""Shipped weights by name and tag, like open_clip's ``pretrained.py``.

Each entry points at a file in ``assets/models`` with its SHA-256, checked on resolve so a
corrupted or swapped file is caught before it is used, and at the test scores its model card
reports (``scores.json``, from ``python -m core evaluate --json``).
"""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import CheckpointError
from core.model.checkpoint import file_sha256
from core.settings import PROJECT_ROOT

MODELS_DIR = PROJECT_ROOT / "assets" / "models"
DEFAULT = "default"

# name -> tag -> {"file": relative to assets/models, "sha256": hex digest, "scores": its
# model card's test scores, relative to assets/models}
PRETRAINED: dict[str, dict[str, dict[str, str]]] = {
    "amfmn-lite0-minilm": {
        "default": {
            "file": "amfmn-lite0-minilm-rsicd-ucm.safetensors",
            "sha256": "871a113d1431b58405cf1c9897ece6e809f30ea9af7440a7df885b351427b9e1",
            "scores": "scores.json",
        },
    },
}


def list_pretrained() -> list[tuple[str, str, Path]]:
    """(architecture, tag, path) of every shipped checkpoint."""
    return [
        (name, tag, MODELS_DIR / entry["file"])
        for name, tags in PRETRAINED.items()
        for tag, entry in tags.items()
    ]


def shipped_scores(sha256: str) -> dict[str, float]:
    """Test mR per dataset that the model card reports for a shipped file, by its SHA-256.

    Version 0 of a workspace is usually the shipped model, measured before it shipped; any
    other file (a fine-tuned version, a custom checkpoint) gives ``{}``: not measured here.
    """
    for tags in PRETRAINED.values():
        for entry in tags.values():
            scores = MODELS_DIR / entry.get("scores", "")
            if entry["sha256"] == sha256 and scores.is_file():
                return {name: float(s["mR"]) for name, s in json.loads(scores.read_text()).items()}
    return {}


def resolve_checkpoint(spec: str | Path) -> Path:
    """Turn ``default``, ``name:tag`` or a file path into a verified checkpoint path.

    Raises:
        CheckpointError: for an unknown name, a missing file or a checksum mismatch.
    """
    text = str(spec)
    if Path(text).suffix == ".safetensors" or Path(text).exists():
        return Path(text)
    name, _, tag = text.partition(":")
    if name == DEFAULT:
        candidates = [
            (n, t, e) for n, tags in PRETRAINED.items() for t, e in tags.items() if t == DEFAULT
        ]
    else:
        candidates = [(name, tag or DEFAULT, PRETRAINED.get(name, {}).get(tag or DEFAULT))]
    candidates = [c for c in candidates if c[2]]
    if not candidates:
        known = ", ".join(f"{n}:{t}" for n, t, _ in list_pretrained()) or "none shipped yet"
        raise CheckpointError(f"unknown checkpoint {text!r}; known: {known}")
    _, _, entry = candidates[0]
    path = MODELS_DIR / entry["file"]
    if not path.is_file():
        raise CheckpointError(f"shipped checkpoint missing: {path}")
    digest = file_sha256(path)
    if digest != entry["sha256"]:
        raise CheckpointError(
            f"{path} has SHA-256 {digest}, expected {entry['sha256']}: file corrupted"
        )
    return path
