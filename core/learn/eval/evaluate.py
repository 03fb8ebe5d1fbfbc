"""The paper's evaluation protocol on a test split, from raw images and captions.

Each image and each caption is encoded exactly once; the score matrix comes from the
model's (factorised, for soft attention) scoring, then ``retrieval_metrics`` ranks it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from core.device import autocast, resolve_device
from core.learn.data.captions import CaptionSet
from core.learn.data.loader import ImageDataset
from core.learn.data.sources import load_dataset
from core.learn.eval.metrics import RetrievalMetrics, retrieval_metrics
from core.model.amfmn import AMFMN
from core.model.inference import Towers, load_towers, torch_towers
from core.model.text import TokenBatch
from core.model.transforms import ImageTransform


@dataclass(frozen=True)
class EvalReport:
    """Metrics of one checkpoint on one split, with what it took to compute them."""

    dataset: str
    split: str
    n_images: int
    n_captions: int
    metrics: RetrievalMetrics
    seconds: float

    def to_dict(self) -> dict[str, object]:
        """The JSON object ``python -m core evaluate --json`` prints."""
        return {
            "dataset": self.dataset,
            "split": self.split,
            "n_images": self.n_images,
            "n_captions": self.n_captions,
            **self.metrics.to_dict(),
            "seconds": round(self.seconds, 1),
        }


@torch.inference_mode()
def encode_images(
    model: AMFMN,
    paths: list[Path],
    device: torch.device,
    batch_size: int = 16,
    workers: int = 2,
    progress: bool = True,
    towers: Towers | None = None,
) -> torch.Tensor:
    """Visual vectors of image files, batched, with decoding overlapped in workers."""
    towers = towers or torch_towers(model, device)
    dataset = ImageDataset(paths, ImageTransform(model.cfg.preprocess, train=False))
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, pin_memory=device.type == "cuda"
    )
    out = torch.empty(len(dataset), model.cfg.embed_dim)
    for images, index in tqdm(loader, desc="images", unit="batch", disable=not progress):
        images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with autocast(device):
            out[index] = torch.from_numpy(towers.image(images)["visual"])
    return out


@torch.inference_mode()
def encode_captions(
    model: AMFMN,
    captions: list[str],
    device: torch.device,
    batch_size: int = 256,
    towers: Towers | None = None,
) -> torch.Tensor:
    """Caption vectors, batched by token count.

    Captions of similar length share a batch, cut to its longest: RSICD test batches in file
    order were half padding (155k token slots for 81k tokens), which the towers compute too.
    """
    towers = towers or torch_towers(model, device)
    out = torch.empty(len(captions), model.cfg.embed_dim)
    if not captions:
        return out
    tokens = model.tokenize(captions)
    lengths = tokens.mask.sum(1)
    order = torch.argsort(lengths, stable=True)
    for start in range(0, len(captions), batch_size):
        chunk = order[start : start + batch_size]
        width = max(1, int(lengths[chunk].max()))
        batch = TokenBatch(tokens.ids[chunk, :width], tokens.mask[chunk, :width])
        with autocast(device):
            out[chunk] = torch.from_numpy(towers.encode_query(batch))
    return out


def evaluate(
    model: AMFMN,
    captions: CaptionSet,
    device: str | torch.device = "auto",
    batch_size: int = 16,
    workers: int = 2,
    progress: bool = True,
    engine: str | None = None,
) -> EvalReport:
    """Encode every image and caption once, score all pairs, and rank.

    ``engine`` runs the towers (see ``core.model.inference.resolve_engine``); ONNX graphs
    come from the user cache, exported first if missing (not counted in ``seconds``).
    """
    device = resolve_device(device) if isinstance(device, str) else device
    model = model.to(device).eval()
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    towers = load_towers(model, device, engine)
    started = time.time()
    paths = list(captions.image_paths)
    visual = encode_images(model, paths, device, batch_size, workers, progress, towers)
    text = encode_captions(model, list(captions.captions), device, towers=towers)
    with torch.inference_mode():
        scores = model.scores(visual.to(device), text.to(device)).float().cpu().numpy()
    metrics = retrieval_metrics(np.asarray(scores), captions.caption_image)
    return EvalReport(
        dataset=captions.name,
        split=captions.split,
        n_images=captions.n_images,
        n_captions=captions.n_captions,
        metrics=metrics,
        seconds=time.time() - started,
    )


def evaluate_checkpoint(
    checkpoint: str | Path,
    dataset: str,
    split: str = "test",
    device: str = "auto",
    data_root: Path | None = None,
    workers: int = 2,
    progress: bool = True,
    engine: str | None = None,
) -> EvalReport:
    """Load a checkpoint and evaluate it on ``dataset``'s ``split`` (``engine``: see above)."""
    from core.model.checkpoint import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    captions = load_dataset(dataset, split, data_root)
    return evaluate(model, captions, device, workers=workers, progress=progress, engine=engine)
