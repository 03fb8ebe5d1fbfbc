"""Example images as the model reads them: decoded once to its input square, kept as PNG.

A dropped picture can be a 50 MB photo; the model sees only its centre square resized to
the input side. That square, losslessly encoded, is what a search uses and what a mark of an
image query keeps, so a stored query decodes to exactly the pixels of the original search
(and the same vector) at a few hundred kilobytes at most.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import QueryError
from core.settings import get_settings

STRETCH_PERCENTILES = (2.0, 98.0)
SHIPPED_INPUT_SIDE = 256  # every architecture in core/model/configs reads 256 x 256


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


def query_png(source: str | Path | bytes, size: int) -> bytes:
    """The example as the model reads it, as PNG: ``load_query_image`` of it gives it back.

    PNG is lossless and the square already has the input side (no second resize), so the
    pixels, and the vector, of a stored query are the original search's exactly.

    Raises:
        QueryError: when the file is missing, not an image, or larger than the limit.
    """
    buffer = io.BytesIO()
    Image.fromarray(load_query_image(source, size)).save(buffer, format="PNG")
    return buffer.getvalue()
