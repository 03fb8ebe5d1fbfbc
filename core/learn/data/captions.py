"""Image-caption datasets (RSICD, RSITMD, UCM-captions, Sydney-captions) as one value type.

Two on-disk formats are read: AMFMN's "precomp" text files and Karpathy-style JSON. Both
become a ``CaptionSet``, so training, evaluation and the prior similarity never care where
captions came from. ``core.learn.data.sources.load_dataset`` reads them by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np


@dataclass(frozen=True, eq=False, repr=False)
class CaptionSet:
    """Images and their captions, aligned by index.

    Images are kept as absolute paths rather than a folder plus names, so sets from
    different datasets can be joined with ``concat`` and every image still resolves.
    Every image has at least one caption; captions of one image need not be adjacent.

    Attributes:
        name: Dataset name (``rsicd``, or ``rsicd+ucm`` after ``concat``).
        split: Split name (``train``, ``val``, ``test``, ``train-holdout`` ...).
        image_paths: One absolute path per unique image, in first-appearance order.
        captions: Caption texts, stripped of surrounding whitespace.
        caption_image: Read-only int64 array, for each caption the index of its image
            (copy it before ``torch.from_numpy``, which warns on read-only arrays).
    """

    name: str
    split: str
    image_paths: tuple[Path, ...]
    captions: tuple[str, ...]
    caption_image: np.ndarray

    def __post_init__(self) -> None:
        owners = np.array(self.caption_image, dtype=np.int64)
        if owners.shape != (len(self.captions),):
            raise ValueError(
                f"caption_image has shape {owners.shape}, expected ({len(self.captions)},)"
            )
        n_images = len(self.image_paths)
        if owners.size and (owners.min() < 0 or owners.max() >= n_images):
            raise ValueError(f"caption_image holds indices outside [0, {n_images})")
        uncaptioned = np.flatnonzero(np.bincount(owners, minlength=n_images) == 0)
        if uncaptioned.size:
            raise ValueError(f"{uncaptioned.size} images have no caption, e.g. #{uncaptioned[0]}")
        owners.setflags(write=False)
        object.__setattr__(self, "caption_image", owners)

    def __repr__(self) -> str:
        return (
            f"CaptionSet(name={self.name!r}, split={self.split!r}, "
            f"n_images={self.n_images}, n_captions={self.n_captions})"
        )

    @property
    def n_images(self) -> int:
        """Number of unique images."""
        return len(self.image_paths)

    @property
    def n_captions(self) -> int:
        """Number of captions over all images."""
        return len(self.captions)

    def image_path(self, i: int) -> Path:
        """Absolute path of image ``i``."""
        return self.image_paths[i]

    @cached_property
    def _by_image(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.caption_image, kind="stable")
        starts = np.searchsorted(self.caption_image[order], np.arange(self.n_images + 1))
        return order, starts

    def captions_of(self, i: int) -> np.ndarray:
        """Caption indices of image ``i`` (a fresh array), ascending; cheap enough per step.

        Raises:
            IndexError: if ``i`` is not an image index.
        """
        if not 0 <= i < self.n_images:
            raise IndexError(f"image index {i} outside [0, {self.n_images})")
        order, starts = self._by_image
        return order[starts[i] : starts[i + 1]].copy()

    def subset(self, image_indices: Sequence[int] | np.ndarray) -> CaptionSet:
        """Keep the given images (in the given order) and their captions, grouped by image.

        Raises:
            ValueError: if an index is out of range or repeated.
        """
        keep = np.asarray(image_indices, dtype=np.int64).ravel()
        if keep.size and (keep.min() < 0 or keep.max() >= self.n_images):
            raise ValueError(f"image indices must lie in [0, {self.n_images})")
        if np.unique(keep).size != keep.size:
            raise ValueError("image indices must be unique")
        new_index = np.full(self.n_images, -1, dtype=np.int64)
        new_index[keep] = np.arange(keep.size)
        owners = new_index[self.caption_image]
        kept = np.flatnonzero(owners >= 0)
        kept = kept[np.argsort(owners[kept], kind="stable")]
        return CaptionSet(
            name=self.name,
            split=self.split,
            image_paths=tuple(self.image_paths[i] for i in keep),
            captions=tuple(self.captions[k] for k in kept),
            caption_image=owners[kept],
        )


def concat(sets: Sequence[CaptionSet], name: str | None = None) -> CaptionSet:
    """Join caption sets (e.g. RSICD and UCM train) into one; image paths stay absolute.

    Args:
        sets: Sets to join, in order; image and caption indices are offset accordingly.
        name: Name of the result; defaults to the names joined with ``+``.

    Raises:
        ValueError: if ``sets`` is empty.
    """
    if not sets:
        raise ValueError("concat needs at least one CaptionSet")
    offsets = np.cumsum([0] + [s.n_images for s in sets[:-1]])
    splits = dict.fromkeys(s.split for s in sets)
    return CaptionSet(
        name=name or "+".join(s.name for s in sets),
        split="+".join(splits),
        image_paths=tuple(p for s in sets for p in s.image_paths),
        captions=tuple(c for s in sets for c in s.captions),
        caption_image=np.concatenate(
            [s.caption_image + off for s, off in zip(sets, offsets, strict=True)]
        ),
    )


def holdout_split(
    cs: CaptionSet, fraction: float = 0.1, seed: int = 0
) -> tuple[CaptionSet, CaptionSet]:
    """Carve validation images out of a train split, so the test split stays for reporting.

    The same ``cs``, ``fraction`` and ``seed`` always give the same split. Images keep their
    original relative order in both parts.

    Returns:
        ``(fit, holdout)``; ``holdout.split`` is ``"<split>-holdout"``.

    Raises:
        ValueError: if either part would be empty.
    """
    n_holdout = round(fraction * cs.n_images)
    if not 0 < n_holdout < cs.n_images:
        raise ValueError(
            f"fraction {fraction} of {cs.n_images} images leaves an empty fit or holdout part"
        )
    order = np.random.default_rng(seed).permutation(cs.n_images)
    fit = cs.subset(np.sort(order[n_holdout:]))
    holdout = cs.subset(np.sort(order[:n_holdout]))
    return fit, replace(holdout, split=f"{cs.split}-holdout")
