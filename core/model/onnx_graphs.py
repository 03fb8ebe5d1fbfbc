"""The towers as ONNX graphs: export each one, and check it reproduces torch.

* image: normalised ``[B, 3, S, S]`` pixels -> ``visual`` (and ``gate`` for soft attention);
* text: ``input_ids`` and ``attention_mask`` ``[B, T]`` -> ``text`` caption vectors.

A graph is used only after it reproduced torch on a fixed batch (cosine >= ``MIN_COSINE``
for every vector); ``core.model.onnx_export`` caches only graphs that passed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ExportRefusedError
from core.model.amfmn import AMFMN
from core.model.text import TokenBatch

OPSET = 17


MIN_COSINE = 0.9999


VERIFY_SEED = 0


VERIFY_CAPTIONS = (
    "a baseball field",
    "many green trees and several buildings are around a playground with a red running track",
    "parking lot",
    "two white storage tanks stand next to a river.",
    "an airport with several planes parked near the terminal",
)


class _ImageGraph(nn.Module):
    """What the image graph computes: the visual vector, plus the gates when the model has them."""

    def __init__(self, model: AMFMN) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        visual = self.model.encode_image(images)
        gates = self.model.image_gates(visual)
        return (visual,) if gates is None else (visual, gates)


class _TextGraph(nn.Module):
    """What the text graph computes: caption vectors from token ids and their mask."""

    def __init__(self, model: AMFMN) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.model.encode_text(TokenBatch(ids, mask)),)


@contextmanager
def _eval_mode(model: AMFMN) -> Iterator[None]:
    """Evaluate in eval mode (dropout off) and give the model back as it came."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(False), torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _graph(model: AMFMN, tower: str) -> tuple[nn.Module, list[str], list[str], dict[str, Any]]:
    """The module to export, its input and output names, and their dynamic axes."""
    if tower == "image":
        outputs = ["visual", "gate"] if model.has_gates else ["visual"]
        dynamic = {name: {0: "batch"} for name in ["images", *outputs]}
        return _ImageGraph(model), ["images"], outputs, dynamic
    dynamic = {name: {0: "batch", 1: "tokens"} for name in ("input_ids", "attention_mask")}
    return (
        _TextGraph(model),
        ["input_ids", "attention_mask"],
        ["text"],
        dynamic | {"text": {0: "batch"}},
    )


def verify_batches(model: AMFMN, tower: str) -> list[tuple[torch.Tensor, ...]]:
    """Fixed inputs (seeded) a graph must reproduce torch on: a batch and a single item.

    Images mix smooth fields (upsampled 8 x 8 noise) and pixel noise; captions vary in length
    so padding is exercised. The single item is the shape a search query runs.
    """
    if tower == "image":
        pre = model.cfg.preprocess
        generator = torch.Generator().manual_seed(VERIFY_SEED)
        smooth = F.interpolate(
            torch.rand(3, 3, 8, 8, generator=generator),
            size=(pre.image_size, pre.image_size),
            mode="bilinear",
            align_corners=False,
        )
        noise = torch.rand(2, 3, pre.image_size, pre.image_size, generator=generator)
        mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
        std = torch.tensor(pre.std).view(1, 3, 1, 1)
        images = (torch.cat([smooth, noise]) - mean) / std
        return [(images,), (images[:1],)]
    batch = model.tokenize(list(VERIFY_CAPTIONS))
    single = model.tokenize(list(VERIFY_CAPTIONS[1:2]))
    return [(batch.ids, batch.mask), (single.ids, single.mask)]


def export_tower(model: AMFMN, tower: str, path: Path) -> None:
    """Write a tower's graph to ``path`` with the TorchScript exporter (no onnxscript needed).

    The exporter's tracer warnings (Python values baked into the trace) are silenced:
    ``verify_tower`` runs the graph on shapes other than the traced ones instead.
    """
    module, inputs, outputs, dynamic = _graph(model, tower)
    sample = tuple(t[:2] for t in verify_batches(model, tower)[0])
    with _eval_mode(model), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            sample,
            str(path),
            opset_version=OPSET,
            dynamo=False,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
        )


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.min((a * b).sum(axis=1) / np.maximum(norms, 1e-12)))


def verify_tower(model: AMFMN, tower: str, path: Path) -> float:
    """Smallest cosine between the graph's and torch's vectors over ``verify_batches``.

    Raises:
        ExportRefusedError: when the graph's outputs do not have torch's names or shapes.
    """
    module, inputs, outputs, _ = _graph(model, tower)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if [o.name for o in session.get_outputs()] != outputs:
        raise ExportRefusedError(f"the {tower} graph has outputs {session.get_outputs()}")
    worst = 1.0
    for batch in verify_batches(model, tower):
        with _eval_mode(model):
            expected = [t.float().numpy() for t in module(*batch)]
        got = session.run(None, {name: t.numpy() for name, t in zip(inputs, batch, strict=True)})
        for name, ours, theirs in zip(outputs, got, expected, strict=True):
            if ours.shape != theirs.shape:
                raise ExportRefusedError(
                    f"the {tower} graph's {name} has shape {ours.shape}, torch's {theirs.shape}"
                )
            worst = min(worst, _min_cosine(ours.astype(np.float32), theirs))
    return worst
