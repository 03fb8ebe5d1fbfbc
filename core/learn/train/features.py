"""Caches of the frozen parts of the model, computed once per dataset.

Training on a 2-core CPU is only practical if the frozen backbone prefix and the frozen
MiniLM layers run once per image and caption rather than once per step. Image caches store
the outputs of the frozen backbone stages at the test view in float16; text caches store the
frozen MiniLM hidden states, ragged, in float16. Each cache is written to a temp folder and
renamed when complete, so an interrupted run recomputes it instead of reading half of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from core.learn.data.captions import CaptionSet
from core.learn.data.loader import ImageDataset
from core.model.amfmn import AMFMN
from core.model.transforms import ImageTransform

CACHE_VERSION = 1


def _key(parts: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _finish(tmp: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


@dataclass
class ImageFeatureCache:
    """Frozen backbone stage outputs for every image of a caption set, in float16."""

    taps: list[torch.Tensor]

    def batch(self, indices: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
        """Stage outputs of the given images on ``device`` as float32 (moved as float16)."""
        return [tap[indices].to(device, non_blocking=True).float() for tap in self.taps]


@dataclass
class TextFeatureCache:
    """Frozen MiniLM states per caption: ragged token states or fixed sentence vectors."""

    states: torch.Tensor
    offsets: torch.Tensor | None

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded ``(states, mask)`` for the given captions."""
        if self.offsets is None:
            rows = self.states[indices].float()
            return rows, torch.ones(len(indices), 1, dtype=torch.long)
        starts = self.offsets[indices]
        lengths = self.offsets[indices + 1] - starts
        width = int(lengths.max())
        positions = torch.arange(width)
        mask = (positions[None, :] < lengths[:, None]).long()
        gather = (starts[:, None] + positions[None, :].clamp(max=width - 1)).clamp(
            max=len(self.states) - 1
        )
        states = self.states[gather].float() * mask.unsqueeze(-1)
        return states, mask


def image_cache(
    model: AMFMN,
    captions: CaptionSet,
    cache_root: Path,
    device: torch.device,
    batch_size: int = 16,
    workers: int = 2,
) -> ImageFeatureCache:
    """Load or compute the frozen-stage outputs for all images of ``captions``."""
    stop = model.frozen_stages
    key = _key(
        {
            "v": CACHE_VERSION,
            "backbone": model.cfg.vision.backbone,
            "stop": stop,
            "size": model.cfg.preprocess.image_size,
            "images": [str(p) for p in captions.image_paths],
        }
    )
    final = cache_root / f"img-{captions.name}-{captions.split}-{key}"
    if not (final / "done").exists():
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # Outside inference mode: converting parameters inside it would make them
        # inference tensors that training can no longer backpropagate through.
        model.backbone.to(device=device, memory_format=torch.channels_last)
        _compute_image_cache(model, captions, tmp, stop, device, batch_size, workers)
        (tmp / "done").write_text("ok")
        _finish(tmp, final)
    taps = [torch.from_numpy(np.load(final / f"tap{k}.npy")) for k in range(stop)]
    return ImageFeatureCache(taps)


@torch.inference_mode()
def _compute_image_cache(
    model: AMFMN,
    captions: CaptionSet,
    out: Path,
    stop: int,
    device: torch.device,
    batch_size: int,
    workers: int,
) -> None:
    dataset = ImageDataset(
        list(captions.image_paths), ImageTransform(model.cfg.preprocess, train=False)
    )
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, pin_memory=device.type == "cuda"
    )
    backbone = model.backbone.eval()
    arrays: list[np.memmap] = []
    for images, indices in tqdm(
        loader, desc=f"caching {captions.name}/{captions.split} images", unit="batch"
    ):
        images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            outs = backbone.prefix(images, stop)
        if not arrays:
            arrays = [
                np.lib.format.open_memmap(
                    out / f"tap{k}.npy",
                    mode="w+",
                    dtype=np.float16,
                    shape=(len(dataset), *o.shape[1:]),
                )
                for k, o in enumerate(outs)
            ]
        rows = indices.numpy()
        for array, o in zip(arrays, outs, strict=True):
            array[rows] = o.float().cpu().numpy().astype(np.float16)
    for array in arrays:
        array.flush()


@torch.inference_mode()
def text_cache(
    model: AMFMN,
    captions: CaptionSet,
    cache_root: Path,
    device: torch.device,
    batch_size: int = 256,
) -> TextFeatureCache | None:
    """Frozen MiniLM prefix states for all captions; None when nothing is frozen (BiGRU)."""
    if model.cfg.text.encoder != "minilm":
        return None
    key = _key(
        {"v": CACHE_VERSION, "text": model.cfg.text.__dict__, "captions": list(captions.captions)}
    )
    final = cache_root / f"txt-{captions.name}-{captions.split}-{key}"
    if not (final / "done").exists():
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        text = model.text.eval()
        chunks: list[np.ndarray] = []
        lengths: list[int] = []
        names = list(captions.captions)
        for start in tqdm(
            range(0, len(names), batch_size), desc=f"caching {captions.name} captions"
        ):
            tokens = text.tokenize(names[start : start + batch_size]).to(device)
            states, mask = text.prefix(tokens)
            states = states.float().cpu()
            if states.dim() == 2:
                chunks.append(states.numpy().astype(np.float16))
                continue
            for row, m in zip(states, mask.cpu(), strict=True):
                n = int(m.sum())
                chunks.append(row[:n].numpy().astype(np.float16))
                lengths.append(n)
        np.save(tmp / "states.npy", np.concatenate(chunks))
        if lengths:
            np.save(tmp / "offsets.npy", np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
        (tmp / "done").write_text("ok")
        _finish(tmp, final)
    states = torch.from_numpy(np.load(final / "states.npy"))
    offsets_path = final / "offsets.npy"
    offsets = torch.from_numpy(np.load(offsets_path)) if offsets_path.exists() else None
    return TextFeatureCache(states, offsets)
