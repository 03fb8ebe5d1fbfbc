"""Hit thumbnails: a scene's band warning reaches the server log once, not once per tile."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

from app import images
from core import SceneManifest
from tests.tiles.conftest import write_scene
from tiles import NIRBandDroppedWarning


def test_a_band_warning_is_logged_once_per_scene(tmp_path, caplog: pytest.LogCaptureFixture):
    pixels = np.random.default_rng(0).integers(0, 255, (4, 256, 256), dtype=np.uint8)
    manifests = [
        SceneManifest(
            fingerprint={
                "source": str(
                    write_scene(tmp_path / f"{name}.tif", pixels, photometric="MINISBLACK")
                )
            }
        )
        for name in ("one", "two")
    ]
    with warnings.catch_warnings(record=True) as escaped, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        thumbs = [images.thumbnail(m, (x, 0, 64, 64)) for m in manifests for x in (0, 64, 128)]
    assert all(thumbs)
    logged = [r.getMessage() for r in caplog.records if "NIRBandDroppedWarning" in r.getMessage()]
    assert len(logged) == 2  # one per scene
    assert "one.tif" in logged[0] and "two.tif" in logged[1]
    assert not [w for w in escaped if issubclass(w.category, NIRBandDroppedWarning)]
