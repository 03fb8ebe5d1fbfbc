"""Turn what an analyst typed or dropped into something the model can encode, or say why not."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import QueryError
from core.settings import get_settings
from core.store.mark_rules import MAX_TEXT_CHARS

MAX_QUERY_CHARS = MAX_TEXT_CHARS  # a longer query could not be kept with its marks
STRETCH_PERCENTILES = (2.0, 98.0)


def clean_text_query(text: str) -> str:
    """Validate a text query and collapse its whitespace.

    Raises:
        QueryError: when it is empty, has no letters or digits, or is unreasonably long.
    """
    if text is None or not text.strip():
        raise QueryError("the query is empty: describe what to look for, e.g. 'a baseball field'")
    collapsed = " ".join(text.split())
    if len(collapsed) > MAX_QUERY_CHARS:
        over = len(collapsed) - MAX_QUERY_CHARS
        raise QueryError(
            f"the query is {len(collapsed):,} characters long, {over:,} over the limit of "
            f"{MAX_QUERY_CHARS}: shorten it (a sentence describing one kind of place works best)"
        )
    if not re.search(r"\w", collapsed):
        raise QueryError("the query has no words: describe what to look for in words")
    return collapsed


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        data = np.asarray(image, dtype=np.float32)
        lo, hi = np.percentile(data, STRETCH_PERCENTILES)
        scaled = np.clip((data - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
        return np.repeat(scaled[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"))


def max_image_pixels() -> int:
    """The decode limit of example images (``SCENESEEK_MAX_IMAGE_MPX`` million pixels)."""
    return int(get_settings().max_image_mpx * 1_000_000)


def _too_large(name: str, limit: int, size: tuple[int, int] | None = None) -> QueryError:
    declared = f" ({size[0]:,} x {size[1]:,} pixels)" if size else ""
    return QueryError(
        f"{name}{declared} is larger than the {limit / 1e6:g} million pixels an example image "
        "may have (SCENESEEK_MAX_IMAGE_MPX); crop it to the object"
    )


def load_query_image(source: str | Path | bytes, size: int) -> np.ndarray:
    """Read a PNG/JPEG/TIFF as a ``size x size`` RGB example (centre square).

    The size declared in the header is checked before any pixel is decoded, so a small
    file that would decode to gigabytes (a "decompression bomb") costs nothing.

    Raises:
        QueryError: when the file is missing, not an image, or larger than the limit.
    """
    limit = max_image_pixels()
    Image.MAX_IMAGE_PIXELS = limit  # PIL refuses twice this in ``open``, before we look
    name = "the dropped image" if isinstance(source, bytes) else str(source)
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except OSError as exc:
        raise QueryError(f"cannot open {name}: {exc.strerror or exc}") from exc
    try:
        with handle, Image.open(handle) as image:
            width, height = image.size
            if width * height > limit:
                raise _too_large(name, limit, (width, height))
            image.load()
            rgb = _to_rgb(image)
    except Image.DecompressionBombError as exc:  # PIL's check, at twice the limit
        raise _too_large(name, limit) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise QueryError(f"{name} is not a readable PNG, JPEG or TIFF image ({exc})") from exc
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = Image.fromarray(np.ascontiguousarray(rgb[top : top + side, left : left + side]))
    return np.asarray(square.resize((size, size), Image.Resampling.BILINEAR))
