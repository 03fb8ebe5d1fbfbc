"""Frozen-prefix features of workspace tiles and the trainable part of both towers."""

from __future__ import annotations

import numpy as np
import torch

from core.model.amfmn import AMFMN
from core.model.transforms import to_tensor_batch
from core.store.workspace import Workspace
from tiles import WINDOW_FIELDS, TileReader, read_catalog


class TileFeatures:
    """Frozen-prefix features of workspace tiles, read from the source scenes on demand."""

    def __init__(self, workspace: Workspace, model: AMFMN) -> None:
        self.workspace, self.model = workspace, model
        self._readers: dict[str, tuple[TileReader, np.ndarray]] = {}
        self._cache: dict[tuple[str, int], list[torch.Tensor]] = {}

    def n_tiles(self, scene: str) -> int:
        """Tiles in a scene."""
        return len(self._reader(scene)[1])

    def _reader(self, scene: str) -> tuple[TileReader, np.ndarray]:
        if scene not in self._readers:
            catalog = read_catalog(self.workspace.existing_scene(scene).catalog)
            windows = catalog[list(WINDOW_FIELDS)].to_numpy(np.int64)
            self._readers[scene] = (TileReader.from_catalog(catalog), windows)
        return self._readers[scene]

    @torch.no_grad()
    def taps(self, tiles: list[tuple[str, int]]) -> list[torch.Tensor]:
        """Stacked frozen-stage outputs for tiles (each tile computed once)."""
        missing = [t for t in dict.fromkeys(tiles) if t not in self._cache]
        for start in range(0, len(missing), 32):
            chunk = missing[start : start + 32]
            pixels = [self._reader(s)[0].read(tuple(self._reader(s)[1][t])) for s, t in chunk]
            batch = to_tensor_batch(pixels, self.model.cfg.preprocess)
            outs = self.model.backbone.prefix(batch, self.model.frozen_stages)
            for i, key in enumerate(chunk):
                self._cache[key] = [o[i] for o in outs]
        return [
            torch.stack([self._cache[t][k] for t in tiles]) for k in range(self.model.frozen_stages)
        ]


def encode_taps(model: AMFMN, taps: list[torch.Tensor]) -> torch.Tensor:
    """Visual vectors from frozen-prefix features: only the trainable stages run."""
    return model.visual_from_features(model.backbone.forward_from(model.frozen_stages, taps))


def encode_texts(model: AMFMN, texts: list[str]) -> torch.Tensor:
    """Caption vectors with gradients, for the fine-tuning loss."""
    return model.encode_text(model.tokenize(texts))
