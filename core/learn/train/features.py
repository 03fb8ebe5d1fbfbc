"""Caches of the frozen parts of the model, computed once per dataset.

Training on a 2-core CPU is only practical if the frozen backbone prefix and the frozen
MiniLM layers run once per image and caption rather than once per step. Image caches store
the outputs of the frozen backbone stages at the test view in float16, memory-mapped; text
caches store the frozen MiniLM hidden states, ragged, in float16. Each cache is written to a
temp folder and renamed when complete, so an interrupted run recomputes it instead of
reading half of it.

Image caches may hold more views of the last frozen stage, the input of the trainable
suffix: the backbone run on the image rotated or flipped (``VIEW_CODES``), so the trained
stages see real features of a turned scene, not only turned features. The stages below keep
one view (they are the large ones) and are turned in feature space to line up with it.
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

from core.errors import ConfigError
from core.learn.data.captions import CaptionSet
from core.learn.data.loader import ImageDataset
from core.model.amfmn import AMFMN
from core.model.transforms import ImageTransform

CACHE_VERSION = 1
# Dihedral codes of the cached views (see ``turn``): the image itself, then a rotation by
# 90 degrees with a flip, a half turn, and a rotation by 270 degrees with a flip.
VIEW_CODES = (0, 5, 2, 7)


def turn(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Apply dihedral code ``codes[i]`` to the square map ``x[i]``.

    A code is ``code % 4`` quarter turns, then a horizontal flip when ``code >= 4``; the same
    codes turn images and feature maps.
    """
    out = x.clone()
    for code in codes.unique().tolist():
        if code == 0:
            continue
        rows = (codes == code).nonzero().flatten().to(x.device)
        turned = torch.rot90(x[rows], k=code % 4, dims=(2, 3))
        out[rows] = torch.flip(turned, dims=(3,)) if code >= 4 else turned
    return out


def _key(parts: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _finish(tmp: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


@dataclass
class ImageFeatureCache:
    """Frozen backbone stage outputs for every image of a caption set, in float16.

    ``turned[i, v - 1]`` is the last frozen stage's output for view ``v`` of image ``i``
    (``VIEW_CODES[v]``); view 0 is ``taps[-1]``.
    """

    taps: list[np.ndarray]
    turned: np.ndarray | None = None

    @property
    def views(self) -> int:
        """Cached views of the last frozen stage, the image itself included."""
        return 1 + (0 if self.turned is None else self.turned.shape[1])

    def batch(
        self, indices: torch.Tensor, device: torch.device, views: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Stage outputs of the given images on ``device`` as float32 (moved as float16).

        With ``views`` (one view number per image), the last stage comes from that view and
        the stages below are turned in feature space to match it.
        """
        rows = indices.numpy()
        order = np.argsort(rows)  # memory-mapped reads in file order
        back = np.argsort(order)
        taps = [torch.from_numpy(np.ascontiguousarray(t[rows[order]][back])) for t in self.taps]
        if views is not None and self.turned is not None and bool((views > 0).any()):
            extra = torch.from_numpy(np.ascontiguousarray(self.turned[rows[order]][back]))
            chosen = (views - 1).clamp(min=0)
            turned = extra[torch.arange(len(rows)), chosen]
            taps[-1] = torch.where((views > 0).view(-1, 1, 1, 1), turned, taps[-1])
            codes = torch.tensor(VIEW_CODES)[views]
            taps[:-1] = [turn(t, codes) for t in taps[:-1]]
        return [t.to(device, non_blocking=True).float() for t in taps]


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
    views: int = 1,
) -> ImageFeatureCache:
    """Load or compute the frozen-stage outputs for all images of ``captions``.

    Raises:
        ConfigError: if ``views`` is not between 1 and ``len(VIEW_CODES)``.
    """
    if not 1 <= views <= len(VIEW_CODES):
        raise ConfigError(f"views must be between 1 and {len(VIEW_CODES)}, not {views}")
    stop = model.frozen_stages
    parts: dict[str, object] = {
        "v": CACHE_VERSION,
        "backbone": model.cfg.vision.backbone,
        "stop": stop,
        "size": model.cfg.preprocess.image_size,
        "images": [str(p) for p in captions.image_paths],
    }
    if views > 1:
        parts["views"] = VIEW_CODES[:views]
    key = _key(parts)
    final = cache_root / f"img-{captions.name}-{captions.split}-{key}"
    if not (final / "done").exists():
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        # Outside inference mode: converting parameters inside it would make them
        # inference tensors that training can no longer backpropagate through.
        model.backbone.to(device=device, memory_format=torch.channels_last)
        _compute_image_cache(model, captions, tmp, stop, device, batch_size, workers, views)
        (tmp / "done").write_text("ok")
        _finish(tmp, final)
    taps = [np.load(final / f"tap{k}.npy", mmap_mode="r") for k in range(stop)]
    turned_path = final / "turned.npy"
    turned = np.load(turned_path, mmap_mode="r") if turned_path.exists() else None
    return ImageFeatureCache(taps, turned)


@torch.inference_mode()
def _compute_image_cache(
    model: AMFMN,
    captions: CaptionSet,
    out: Path,
    stop: int,
    device: torch.device,
    batch_size: int,
    workers: int,
    views: int,
) -> None:
    dataset = ImageDataset(
        list(captions.image_paths), ImageTransform(model.cfg.preprocess, train=False)
    )
    loader = DataLoader(
        dataset, batch_size=batch_size, num_workers=workers, pin_memory=device.type == "cuda"
    )
    backbone = model.backbone.eval()
    arrays: list[np.memmap] = []
    turned: np.memmap | None = None
    for images, indices in tqdm(
        loader, desc=f"caching {captions.name}/{captions.split} images", unit="batch"
    ):
        images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        rows = indices.numpy()
        for view, code in enumerate(VIEW_CODES[:views]):
            seen = turn(images, torch.full((len(rows),), code)) if code else images
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                outs = backbone.prefix(seen.contiguous(memory_format=torch.channels_last), stop)
            if not arrays:
                arrays = [_open(out / f"tap{k}.npy", len(dataset), o) for k, o in enumerate(outs)]
                if views > 1:
                    turned = _open(out / "turned.npy", len(dataset), outs[-1], views - 1)
            if view == 0:
                for array, o in zip(arrays, outs, strict=True):
                    array[rows] = o.float().cpu().numpy().astype(np.float16)
            elif turned is not None:
                turned[rows, view - 1] = outs[-1].float().cpu().numpy().astype(np.float16)
    for array in [*arrays, *([turned] if turned is not None else [])]:
        array.flush()


def _open(path: Path, n: int, like: torch.Tensor, views: int = 0) -> np.memmap:
    """A float16 ``.npy`` memory map for ``n`` rows shaped like ``like``'s rows."""
    shape = (n, views, *like.shape[1:]) if views else (n, *like.shape[1:])
    return np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=shape)


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
