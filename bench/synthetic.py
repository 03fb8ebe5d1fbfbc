"""Synthetic tile vectors made from real ones, for benchmarks at scales no CPU can embed.

Each synthetic tile is a random convex mix of the model's vectors of two real images (RSICD
test), as a tile straddling two kinds of ground is, plus 5 % Gaussian noise. Gates are mixed
the same way. A block of rows depends only on the seed and its first row, so parts can be
made in any order and a resumed run makes the same rows.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import torch
from affine import Affine
from rasterio.crs import CRS

from core.learn.data.sources import load_dataset
from core.learn.eval.evaluate import encode_images
from core.model.amfmn import AMFMN
from tiles import CATALOG_KEY, TILING_VERSION, WINDOW_FIELDS
from tiles.footprint import window_footprints

NOISE = 0.05
FOOTPRINT_CHUNK = 65536


def real_vectors(model: AMFMN, n_images: int) -> tuple[np.ndarray, np.ndarray]:
    """Visual vectors and gates of the first ``n_images`` RSICD test images."""
    data = load_dataset("rsicd", "test")
    paths = list(data.image_paths)[:n_images]
    visual = encode_images(model, paths, torch.device("cpu"), progress=False)
    with torch.no_grad():
        gates = model.image_gates(visual)
    return visual.numpy(), gates.numpy()


def mixed_vectors(
    visual: np.ndarray, gates: np.ndarray, start: int, stop: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Float16 visual vectors and gates of synthetic tiles ``start..stop-1``."""
    rng = np.random.Generator(np.random.Philox(key=seed, counter=[start, 0, 0, 0]))
    n = stop - start
    first, second = rng.integers(0, len(visual), n), rng.integers(0, len(visual), n)
    w = rng.uniform(0, 1, (n, 1)).astype(np.float32)
    noise = rng.standard_normal((n, visual.shape[1])).astype(np.float32)
    noise *= visual.std(axis=0) * NOISE
    v = w * visual[first] + (1 - w) * visual[second] + noise
    g = np.clip(w * gates[first] + (1 - w) * gates[second], 0, 1)
    return v.astype(np.float16), g.astype(np.float16)


def synthetic_catalog(n: int, tile: int = 256) -> gpd.GeoDataFrame:
    """A square grid of ``n`` tiles on a 1 m UTM grid, with footprints as ingest makes them."""
    side = int(np.ceil(np.sqrt(n)))
    ids = np.arange(n)
    windows = np.column_stack([ids % side * tile, ids // side * tile, *[np.full(n, tile)] * 2])
    transform, crs = Affine(1.0, 0.0, 500_000.0, 0.0, -1.0, 4_200_000.0), CRS.from_epsg(32610)
    footprints = np.concatenate(
        [
            window_footprints(transform, crs, windows[i : i + FOOTPRINT_CHUNK])
            for i in range(0, n, FOOTPRINT_CHUNK)
        ]
    )
    frame = dict(zip(WINDOW_FIELDS, windows.T, strict=True))
    catalog = gpd.GeoDataFrame(
        {"tile_id": ids, "scale": tile, **frame, "valid_fraction": 1.0},
        geometry=footprints,
        crs="EPSG:4326",
    )
    catalog.attrs[CATALOG_KEY] = {
        "tiling_version": TILING_VERSION,
        "crs_wkt": crs.to_wkt(),
        "transform": list(transform)[:6],
        "width": side * tile,
        "height": side * tile,
        "scales": [tile],
        "config": {"min_valid": 0.5},
    }
    return catalog
