"""Visual vectors of workspace tiles for fine-tuning: stored ones, or recomputed from pixels.

With the image tower fixed (the default) a tile's visual vector is exactly what ingestion
stored in ``visual.npy``: nothing is read or run again, and the vectors of the new version
are those of the old. When the image tower learns too, tiles are read from the source scenes
and only the trainable stages run on cached frozen-prefix features.
"""

from __future__ import annotations

import numpy as np
import torch

from core.model.amfmn import AMFMN
from core.model.transforms import to_tensor_batch
from core.store.remote import catalog_scene
from core.store.workspace import Workspace
from tiles import WINDOW_FIELDS, TileReader, read_catalog

Tile = tuple[str, int]


class TileFeatures:
    """Frozen-prefix features of workspace tiles, read from the source scenes on demand."""

    def __init__(self, workspace: Workspace, model: AMFMN) -> None:
        self.workspace, self.model = workspace, model
        self._readers: dict[str, tuple[TileReader, np.ndarray]] = {}
        self._cache: dict[Tile, list[torch.Tensor]] = {}

    def n_tiles(self, scene: str) -> int:
        """Tiles in a scene."""
        return len(self._reader(scene)[1])

    def _reader(self, scene: str) -> tuple[TileReader, np.ndarray]:
        if scene not in self._readers:
            catalog = read_catalog(self.workspace.existing_scene(scene).catalog)
            windows = catalog[list(WINDOW_FIELDS)].to_numpy(np.int64)
            reader = TileReader.from_catalog(catalog, path=catalog_scene(catalog))
            self._readers[scene] = (reader, windows)
        return self._readers[scene]

    @torch.no_grad()
    def taps(self, tiles: list[Tile]) -> list[torch.Tensor]:
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


class StoredVectors:
    """The visual vectors ingestion stored for each tile (``visual.npy``, memory-mapped)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._arrays: dict[str, np.ndarray] = {}

    def array(self, scene: str) -> np.ndarray:
        """A scene's ``[n_tiles, d]`` float16 vectors.

        Raises:
            SceneNotFoundError: if the scene is missing or not ready.
        """
        if scene not in self._arrays:
            path = self.workspace.existing_scene(scene).embeddings / "visual.npy"
            self._arrays[scene] = np.load(path, mmap_mode="r")
        return self._arrays[scene]

    def n_tiles(self, scene: str) -> int:
        """Tiles in a scene."""
        return len(self.array(scene))

    def vectors(self, tiles: list[Tile]) -> torch.Tensor:
        """``[len(tiles), d]`` float32 vectors, in the order given."""
        if not tiles:
            return torch.empty(0, 0)
        rows = np.stack([np.asarray(self.array(s)[t], dtype=np.float32) for s, t in tiles])
        return torch.from_numpy(rows)


class TileVectors:
    """Visual vectors of tiles under a model: stored when its image tower stays fixed."""

    def __init__(self, workspace: Workspace, model: AMFMN, image_tower: bool) -> None:
        self.model, self.image_tower = model, image_tower
        self.stored = StoredVectors(workspace)
        self.features = TileFeatures(workspace, model) if image_tower else None

    def n_tiles(self, scene: str) -> int:
        """Tiles in a scene."""
        return self.stored.n_tiles(scene)

    def visual(self, tiles: list[Tile], model: AMFMN | None = None) -> torch.Tensor:
        """Visual vectors of ``tiles`` under ``model`` (default: the one being trained).

        Gradients flow into the image tower only when it learns and grad mode is on.
        """
        if self.features is None:
            return self.stored.vectors(tiles)
        model = model or self.model
        return torch.cat(
            [
                encode_taps(model, self.features.taps(tiles[i : i + 256]))
                for i in range(0, len(tiles), 256)
            ]
        )


def encode_taps(model: AMFMN, taps: list[torch.Tensor]) -> torch.Tensor:
    """Visual vectors from frozen-prefix features: only the trainable stages run."""
    return model.visual_from_features(model.backbone.forward_from(model.frozen_stages, taps))


def encode_texts(model: AMFMN, texts: list[str]) -> torch.Tensor:
    """Query vectors (adapters applied); gradients reach only the trainable parts."""
    with torch.no_grad():
        states, mask = model.text.prefix(model.tokenize(texts))
    return model.adapters(model.text.forward_from(states, mask))


class CachedTexts:
    """Caption vectors whose frozen text prefix is computed once per caption.

    Fine-tuning encodes the same few queries at every step; only the trainable layers need
    to run again. Each caption's prefix states are kept unpadded and padded per batch (the
    mask hides the padding, so the vectors equal those of ``encode_texts``).
    """

    def __init__(self, model: AMFMN) -> None:
        self.model = model
        self._states: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._sequence = True  # states run along the tokens (else one pooled vector each)

    @torch.no_grad()
    def _prefix(self, texts: list[str]) -> None:
        missing = [t for t in dict.fromkeys(texts) if t not in self._states]
        for start in range(0, len(missing), 64):
            chunk = missing[start : start + 64]
            states, mask = self.model.text.prefix(self.model.tokenize(chunk))
            self._sequence = states.shape[:2] == mask.shape
            for i, text in enumerate(chunk):
                length = int(mask[i].sum())
                own = states[i, :length] if self._sequence else states[i]
                self._states[text] = (own, mask[i, :length])

    def __call__(self, texts: list[str]) -> torch.Tensor:
        """``[len(texts), d]`` query vectors; gradients reach the trainable parts."""
        self._prefix(texts)
        states = [self._states[t][0] for t in texts]
        mask = torch.nn.utils.rnn.pad_sequence([self._states[t][1] for t in texts], True)
        pad = torch.nn.utils.rnn.pad_sequence
        stacked = pad(states, True) if self._sequence else torch.stack(states)
        return self.model.adapters(self.model.text.forward_from(stacked, mask))
