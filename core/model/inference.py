"""The image and text towers as a back end runs them: ONNX Runtime on the CPU, else torch.

PyTorch's CPU kernels for EfficientNet's depthwise convolutions are slow; the same towers
exported to ONNX (``core.model.onnx_export``) run about four times faster on ONNX Runtime's
CPU provider with the same vectors (cosine >= 0.9999, checked at export). Torch stays for
training, fine-tuning and CUDA. A version's per-query adapters are not in the text graph:
``Towers.encode_query`` applies them after either engine's text runner. Either engine takes
torch inputs and returns float32 numpy vectors, so callers do not care which one runs; mixed
precision on CUDA stays the caller's business (``core.device.autocast`` around the call), as
it was before this module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort
import torch

from core.errors import ConfigError
from core.model.adapters import QueryAdapters
from core.model.amfmn import AMFMN
from core.model.onnx_export import cache_dir_for, ensure_exported, export_checkpoint
from core.model.reference_captions import REFERENCE_CAPTIONS
from core.model.text import TokenBatch
from core.settings import get_settings

ENGINES = ("onnx", "torch")
log = logging.getLogger(__name__)


def resolve_engine(engine: str | None, device: torch.device) -> str:
    """``onnx`` or ``torch``: the one asked for (None: ``SCENESEEK_ENGINE``), else by device.

    ``auto`` means ONNX Runtime on a CPU and torch on CUDA.

    Raises:
        ConfigError: for an unknown engine, or ``onnx`` on a CUDA device (only ONNX Runtime's
            CPU provider is installed).
    """
    name = engine or get_settings().engine
    if name == "auto":
        return "torch" if device.type == "cuda" else "onnx"
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}; use auto, onnx or torch")
    if name == "onnx" and device.type != "cpu":
        raise ConfigError(
            f"the onnx engine runs on the CPU, not on {device}; use --device cpu, "
            "or --engine torch (SCENESEEK_ENGINE) on a GPU"
        )
    return name


def new_session(path: Path, threads: int) -> ort.InferenceSession:
    """A CPU session whose idle threads sleep instead of spinning.

    Spinning threads would take the cores that tile-reading workers and numpy need between
    two batches or queries (as spinning OpenBLAS threads did to query latency before).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class ImageRunner(Protocol):
    """Normalised ``[B, 3, S, S]`` images -> ``{"visual": [B, d], "gate": [B, d]}`` float32."""

    engine: str

    def __call__(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        """Run the image tower."""


class TextRunner(Protocol):
    """Token batches -> ``[B, d]`` float32 caption vectors."""

    engine: str

    def __call__(self, tokens: TokenBatch) -> np.ndarray:
        """Run the text tower."""


class TorchImage:
    """The image tower on torch; gates are computed outside any autocast, in float32."""

    engine = "torch"

    def __init__(self, model: AMFMN, device: torch.device) -> None:
        self.model, self.device = model, device

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        """Run the image tower."""
        visual = self.model.encode_image(images.to(self.device, non_blocking=True)).float()
        out = {"visual": visual.cpu().numpy()}
        with torch.autocast(self.device.type, enabled=False):
            gates = self.model.image_gates(visual)
        if gates is not None:
            out["gate"] = gates.float().cpu().numpy()
        return out


class TorchText:
    """The text tower on torch."""

    engine = "torch"

    def __init__(self, model: AMFMN, device: torch.device) -> None:
        self.model, self.device = model, device

    @torch.inference_mode()
    def __call__(self, tokens: TokenBatch) -> np.ndarray:
        """Run the text tower."""
        return self.model.encode_text(tokens.to(self.device)).float().cpu().numpy()


class OnnxImage:
    """The image tower's verified graph on ONNX Runtime."""

    engine = "onnx"

    def __init__(self, path: Path, threads: int) -> None:
        self.session = new_session(path, threads)
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        """Run the image tower."""
        pixels = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        arrays = self.session.run(None, {"images": pixels})
        return dict(zip(self.outputs, arrays, strict=True))


class OnnxText:
    """The text tower's verified graph on ONNX Runtime."""

    engine = "onnx"

    def __init__(self, path: Path, threads: int) -> None:
        self.session = new_session(path, threads)

    def __call__(self, tokens: TokenBatch) -> np.ndarray:
        """Run the text tower."""
        feeds = {
            "input_ids": tokens.ids.cpu().numpy().astype(np.int64),
            "attention_mask": tokens.mask.cpu().numpy().astype(np.int64),
        }
        return self.session.run(None, feeds)[0]


@dataclass(frozen=True)
class Towers:
    """The runners of both towers; each may be on either engine (a refused export is torch).

    ``text`` is the text tower alone (what the text index's weighting is measured with);
    queries are encoded by ``encode_query``, which adds the version's adapters.
    """

    image: ImageRunner
    text: TextRunner
    adapters: QueryAdapters | None = None

    @torch.inference_mode()
    def encode_query(self, tokens: TokenBatch) -> np.ndarray:
        """``[B, d]`` float32 query vectors: the text runner, then the query adapters.

        The one place every engine's query vectors get their adapters (search, change
        search, heat maps, the shard client, evaluation).
        """
        vectors = self.text(tokens)
        if self.adapters is None or not len(self.adapters):
            return vectors
        device = self.adapters.anchors.device
        adapted = self.adapters(torch.from_numpy(np.asarray(vectors, np.float32)).to(device))
        return adapted.float().cpu().numpy()

    @property
    def engine(self) -> str:
        """``onnx`` or ``torch``, or which tower runs where when they differ."""
        if self.image.engine == self.text.engine:
            return self.image.engine
        return f"image {self.image.engine}, text {self.text.engine}"


def torch_towers(model: AMFMN, device: torch.device) -> Towers:
    """Both towers on torch, on ``device``."""
    return Towers(TorchImage(model, device), TorchText(model, device), model.adapters)


@torch.inference_mode()
def caption_energy(model: AMFMN, towers: Towers | None = None) -> np.ndarray:
    """Mean squared caption vector over typical captions: the text index's weighting."""
    device = next(model.parameters()).device
    text = (towers or torch_towers(model, device)).text
    vectors = text(model.tokenize(list(REFERENCE_CAPTIONS)))
    return (vectors * vectors).mean(0)


def load_towers(
    model: AMFMN,
    device: torch.device,
    engine: str | None = None,
    cache_dir: Path | None = None,
    threads: int | None = None,
) -> Towers:
    """The towers ``engine`` asks for (see ``resolve_engine``), ready to run.

    For ONNX the graphs come from ``cache_dir`` (default: the user cache, see
    ``onnx_export.cache_dir_for``), exported now if missing; a tower whose export is refused,
    or whose graph cannot be cached, runs on torch, with the reason logged. ``threads``
    defaults to ``SCENESEEK_ONNX_THREADS``, else torch's thread count (all cores: in a CPU
    ingest the tiles are read between batches, so nothing else needs a core).

    Raises:
        ConfigError: as ``resolve_engine``.
    """
    if resolve_engine(engine, device) == "torch":
        return torch_towers(model, device)
    folder = cache_dir or cache_dir_for(None)
    try:
        paths = ensure_exported(model, folder)
    except OSError as exc:
        log.warning("cannot write ONNX graphs to %s (%s); the towers run on torch", folder, exc)
        return torch_towers(model, device)
    threads = threads or get_settings().onnx_threads or torch.get_num_threads()
    image, text = paths["image"], paths["text"]
    return Towers(
        OnnxImage(image, threads) if image else TorchImage(model, device),
        OnnxText(text, threads) if text else TorchText(model, device),
        model.adapters,
    )


def machine_engine() -> str:
    """The engine this machine runs by default (``SCENESEEK_ENGINE`` and CUDA presence)."""
    device = get_settings().device
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    name = get_settings().engine
    return name if name in ENGINES else ("torch" if cuda else "onnx")


def prepare_checkpoint(checkpoint: str | Path, cache_dir: Path) -> None:
    """Export a registered or promoted checkpoint's towers now, if this machine runs ONNX.

    Called by model registration and promotion so the export happens in that job rather
    than at the first query; loaders still export as a fallback.

    Raises:
        CheckpointError: when the checkpoint cannot be loaded.
        OSError: when the cache folder cannot be written.
    """
    if machine_engine() == "onnx":
        export_checkpoint(checkpoint, cache_dir)
