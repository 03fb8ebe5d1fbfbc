"""Reading the caption datasets from disk: the AMFMN precomp split and Karpathy JSON.

Each reader checks alignment and image files up front, so a broken install fails with the
file and line at fault instead of mid-training.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from core.errors import DatasetFormatError, DatasetNotFoundError
from core.learn.data.captions import CaptionSet
from core.settings import get_settings

CAPTIONS_PER_IMAGE = 5  # precomp train files list 5 caption lines per image line


_SHOWN = 5  # how many offending names an error message lists


def load_precomp(
    precomp_dir: str | Path,
    images_dir: str | Path,
    split: str,
    name: str,
    *,
    check_images: bool = True,
    skip_empty: bool = False,
) -> CaptionSet:
    """Read AMFMN precomp files ``<split>_filename.txt`` and ``<split>_caps.txt``.

    The layout is detected from line counts: 5 caption lines per name line (AMFMN's train
    files) or one name line per caption (its test files, each name repeated). Images listed
    several times are merged into one, in first-appearance order.

    Args:
        precomp_dir: Folder holding the two text files.
        images_dir: Folder the image names are relative to.
        split: File prefix, e.g. ``train`` or ``test``.
        name: Dataset name stored in the result.
        check_images: Require every image file to exist (off for caption-only data).
        skip_empty: Drop blank caption lines (and images left without captions) instead of
            failing; RSITMD's train file has 20 such lines.

    Raises:
        DatasetNotFoundError: if a text file, the image folder or an image is missing.
        DatasetFormatError: if the files are misaligned, not UTF-8, or hold blank lines.
    """
    names_path = Path(precomp_dir) / f"{split}_filename.txt"
    caps_path = Path(precomp_dir) / f"{split}_caps.txt"
    names = _read_lines(names_path)
    captions = _read_lines(caps_path)
    if not names:
        raise DatasetFormatError(f"{names_path} is empty")
    blank = next((k for k, n in enumerate(names) if not n), None)
    if blank is not None:
        raise DatasetFormatError(f"empty image name at {names_path}, line {blank + 1}")
    if len(captions) == CAPTIONS_PER_IMAGE * len(names):
        caption_names = [n for n in names for _ in range(CAPTIONS_PER_IMAGE)]
    elif len(captions) == len(names):
        caption_names = names
    else:
        raise DatasetFormatError(
            f"{caps_path} has {len(captions)} lines but {names_path} has {len(names)}: expected "
            f"{CAPTIONS_PER_IMAGE * len(names)} ({CAPTIONS_PER_IMAGE} per image) "
            f"or {len(names)} (one per caption)"
        )
    return _assemble(
        name,
        split,
        Path(images_dir),
        caption_names,
        captions,
        locate=lambda k: f"{caps_path}, line {k + 1}",
        check_images=check_images,
        skip_empty=skip_empty,
    )


def load_karpathy(
    json_path: str | Path,
    images_dir: str | Path,
    split: str,
    name: str,
    *,
    check_images: bool = True,
    skip_empty: bool = False,
) -> CaptionSet:
    """Read one split of a Karpathy-style JSON (UCM-captions, Sydney-captions, RSICD).

    Uses each sentence's ``raw`` text, stripped; ``tokens`` are ignored because our own
    tokenisers work from the text.

    Args:
        json_path: The ``{"images": [{"filename", "split", "sentences": [{"raw"}]}]}`` file.
        images_dir: Folder the file names are relative to.
        split: Value of the ``split`` field to keep.
        name: Dataset name stored in the result.
        check_images: Require every image file to exist.
        skip_empty: Drop blank sentences (and images left without any) instead of failing.

    Raises:
        DatasetNotFoundError: if the JSON, the split, the image folder or an image is missing.
        DatasetFormatError: if the JSON is malformed, or an image has no or blank sentences.
    """
    json_path = Path(json_path)
    if not json_path.is_file():
        raise DatasetNotFoundError(f"caption file not found: {json_path}")
    try:
        entries = json.loads(json_path.read_text(encoding="utf-8"))["images"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DatasetFormatError(f"{json_path} is not Karpathy-style caption JSON: {exc}") from exc
    caption_names: list[str] = []
    captions: list[str] = []
    origin: list[tuple[int, str, int]] = []
    splits_seen: set[str] = set()
    for idx, entry in enumerate(entries):
        try:
            splits_seen.add(entry["split"])
            if entry["split"] != split:
                continue
            filename = entry["filename"].strip()
            raws = [s["raw"].strip() for s in entry["sentences"]]
        except (KeyError, TypeError, AttributeError) as exc:
            raise DatasetFormatError(f"{json_path}: image #{idx} is malformed: {exc!r}") from exc
        if not raws:
            raise DatasetFormatError(f"{json_path}: image #{idx} ({filename}) has no sentences")
        caption_names += [filename] * len(raws)
        captions += raws
        origin += [(idx, filename, s) for s in range(len(raws))]
    if not captions:
        raise DatasetNotFoundError(
            f"{json_path} has no images in split {split!r}; splits present: {sorted(splits_seen)}"
        )
    return _assemble(
        name,
        split,
        Path(images_dir),
        caption_names,
        captions,
        locate=lambda k: "{}: image #{} ({}), sentence {}".format(json_path, *origin[k]),
        check_images=check_images,
        skip_empty=skip_empty,
    )


@dataclass(frozen=True)
class _Source:
    """Where a registered dataset lives under the data root."""

    format: Literal["precomp", "karpathy"]
    captions: str  # precomp folder or JSON file, relative to the data root
    images: str
    splits: tuple[str, ...]
    # RSITMD's official train captions contain blank lines (4 images without text).
    skip_empty: bool = False


_REGISTRY: dict[str, _Source] = {
    "rsicd": _Source("precomp", "rsicd/precomp", "rsicd/images", ("train", "test")),
    "rsitmd": _Source(
        "precomp", "rsitmd/precomp", "rsitmd/images", ("train", "test"), skip_empty=True
    ),
    "ucm": _Source("karpathy", "ucm/dataset_ucm.json", "ucm/images", ("train", "val", "test")),
    "sydney": _Source(
        "karpathy", "sydney/dataset_sydney.json", "sydney/images", ("train", "val", "test")
    ),
}


def list_datasets() -> list[str]:
    """Names accepted by ``load_dataset``, installed or not."""
    return sorted(_REGISTRY)


def load_dataset(
    name: str,
    split: str,
    data_root: str | Path | None = None,
    *,
    check_images: bool = True,
) -> CaptionSet:
    """Load a registered dataset split from the data root, with the split AMFMN reports on.

    Args:
        name: One of ``list_datasets()``.
        split: ``train`` or ``test`` (``val`` too for UCM and Sydney); for validation on
            RSICD/RSITMD use ``holdout_split`` on train.
        data_root: Defaults to ``get_settings().data_root`` (``SCENESEEK_DATA``).
        check_images: Require every image file to exist; pass False for caption-only use
            (needed for RSITMD, whose images are not distributed here).

    Raises:
        DatasetNotFoundError: if the name, split, caption files or images are missing.
        DatasetFormatError: if the files are malformed.
    """
    source = _REGISTRY.get(name)
    if source is None:
        raise DatasetNotFoundError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}")
    if split not in source.splits:
        raise DatasetNotFoundError(
            f"{name} has no {split!r} split (splits: {', '.join(source.splits)}); "
            "carve validation images from train with holdout_split"
        )
    root = Path(data_root) if data_root is not None else get_settings().data_root
    captions_path = root / source.captions
    if not captions_path.exists():
        raise DatasetNotFoundError(
            f"dataset {name!r} is not installed: {captions_path} is missing. Put its captions "
            f"there and its images in {root / source.images}, or point SCENESEEK_DATA at a "
            "data root that has them"
        )
    loader = load_precomp if source.format == "precomp" else load_karpathy
    return loader(
        captions_path,
        root / source.images,
        split,
        name,
        check_images=check_images,
        skip_empty=source.skip_empty,
    )


def _read_lines(path: Path) -> list[str]:
    """Stripped lines of a UTF-8 text file; only newline ends a line, so files stay aligned."""
    if not path.is_file():
        raise DatasetNotFoundError(f"caption file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetFormatError(f"{path} is not UTF-8 text: {exc}") from exc
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.strip() for line in lines]


def _assemble(
    name: str,
    split: str,
    images_dir: Path,
    caption_names: list[str],
    captions: list[str],
    *,
    locate: Callable[[int], str],
    check_images: bool,
    skip_empty: bool,
) -> CaptionSet:
    """Turn per-caption (image name, text) pairs into a checked CaptionSet."""
    empty = [k for k, text in enumerate(captions) if not text]
    if empty and not skip_empty:
        more = f" (and {len(empty) - 1} more)" if len(empty) > 1 else ""
        raise DatasetFormatError(f"empty caption at {locate(empty[0])}{more}")
    if empty:
        dropped = set(empty)
        kept = [k for k in range(len(captions)) if k not in dropped]
        caption_names = [caption_names[k] for k in kept]
        captions = [captions[k] for k in kept]
    image_index: dict[str, int] = {}
    owners = [image_index.setdefault(n, len(image_index)) for n in caption_names]
    images_dir = images_dir.resolve()
    if check_images:
        _check_images(images_dir, list(image_index), f"{name} {split}")
    return CaptionSet(
        name=name,
        split=split,
        image_paths=tuple(images_dir / n for n in image_index),
        captions=tuple(captions),
        caption_image=np.asarray(owners, dtype=np.int64),
    )


def _check_images(images_dir: Path, files: list[str], what: str) -> None:
    """Fail early, naming files, rather than mid-epoch in a data-loader worker."""
    if not images_dir.is_dir():
        raise DatasetNotFoundError(
            f"images of {what} are not available: {images_dir} is not a folder. Put the images "
            "there, or pass check_images=False to load the captions only"
        )
    missing = [f for f in files if not os.path.isfile(os.path.join(images_dir, f))]
    if missing:
        shown = ", ".join(missing[:_SHOWN]) + (", ..." if len(missing) > _SHOWN else "")
        raise DatasetNotFoundError(
            f"{len(missing)} of {len(files)} images of {what} are missing from {images_dir}: "
            f"{shown}"
        )
