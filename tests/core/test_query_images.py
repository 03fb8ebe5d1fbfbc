"""Example images are kept as the model reads them: small, and decoding to the same pixels."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from core.store.query_images import SHIPPED_INPUT_SIDE, load_query_image, query_png
from tests.app.conftest import ROOT

SIDE = 256
PNG_BOUND = SIDE * SIDE * 3 + 4096  # raw RGB pixels plus headers: PNG never needs more


def photo(width: int = 4000, height: int = 3000) -> bytes:
    """A 12-megapixel JPEG of noise (compresses badly, like a real photo's detail)."""
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_a_big_photo_is_kept_as_a_small_png_of_the_very_same_pixels():
    dropped = photo()
    kept = query_png(dropped, SIDE)
    assert len(dropped) > 5_000_000 and len(kept) <= PNG_BOUND
    assert Image.open(io.BytesIO(kept)).size == (SIDE, SIDE)
    assert np.array_equal(load_query_image(kept, SIDE), load_query_image(dropped, SIDE))
    assert query_png(kept, SIDE) == kept  # kept again unchanged: re-runs are stable


@pytest.mark.parametrize(
    "dropped",
    [
        encoded(Image.fromarray(np.arange(300 * 500, dtype=np.uint16).reshape(300, 500)), "TIFF"),
        encoded(Image.new("RGBA", (640, 480), (10, 200, 30, 90)), "PNG"),
        encoded(Image.new("P", (90, 60), 3), "PNG"),
    ],
    ids=["16-bit TIFF", "RGBA PNG", "palette PNG, smaller than the input"],
)
def test_other_kinds_of_pictures_also_keep_their_pixels(dropped: bytes):
    kept = query_png(dropped, SIDE)
    assert np.array_equal(load_query_image(kept, SIDE), load_query_image(dropped, SIDE))


def test_old_images_are_migrated_at_every_shipped_architecture_s_input_side():
    configs = sorted((ROOT / "core" / "model" / "configs").glob("*.json"))
    sides = {json.loads(p.read_text())["preprocess"]["image_size"] for p in configs}
    assert configs and sides == {SHIPPED_INPUT_SIDE}
