"""``SceneManifest``: what a scene is, how it was tiled and embedded, and whether it is ready.

Ingestion writes it at each stage and last of all, so a scene whose manifest says ``ready``
has every other file in place. Keys this version does not know are kept on save, so an older
engine's manifest survives a newer one's rewrite and the other way round.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tiles import TILING_VERSION
from tiles.atomic import atomic_path

MANIFEST_FORMAT = 1
READY = "ready"


@dataclass
class SceneManifest:
    """One scene's manifest (``scenes/<name>/manifest.json``).

    Attributes:
        name: Scene name.
        fingerprint: Source file, tiling and model settings; another fingerprint means the
            scene is rebuilt from scratch.
        scene: Facts about the source raster (size, CRS, bands, ...).
        status: ``tiling``, ``embedding`` or ``ready``; empty when there is no manifest.
        n_tiles: Tiles in the catalog.
        quicklook_bounds: (south, west, north, east) of the map overlay.
        model: Tag of the model version that last built or refreshed the scene.
        image_tower: Fingerprint of the image tower that made ``visual.npy`` and the visual
            index (``checkpoint.image_tower_digest``); None in manifests from before it, whose
            visual index is keyed by ``model``.
        scene_key: Fingerprint of what its gates and text index depend on (every trained
            module but the query adapters, ``checkpoint.scene_digest``); None in manifests
            from before it, whose text index is keyed by ``model``.
        ingest_seconds: Wall time of the ingest that finished it.
        embed_tiles_per_second: Embedding rate of that ingest.
        finished: When it became ready (epoch seconds); changes whenever it is rebuilt.
        tiling_version: ``tiles.TILING_VERSION`` of its catalog; older manifests lack it
            (version 1: edge tiles padded past the raster).
        engine: What ran the image tower (``onnx`` or ``torch``); information only, since
            the vectors of either engine are interchangeable.
        source_stamp: ``tiles.file_stamp`` of a local source file as ingest checked it
            (size, ``mtime_ns``, hash of its first 64 KiB), so thumbnails refuse a file
            replaced since; None for URLs and in manifests from before it.
        format: Manifest format version.
        extra: Keys this version does not know, kept as they were.
    """

    name: str = ""
    fingerprint: dict[str, Any] = field(default_factory=dict)
    scene: dict[str, Any] = field(default_factory=dict)
    status: str = ""
    n_tiles: int | None = None
    quicklook_bounds: tuple[float, float, float, float] | None = None
    model: str = ""
    image_tower: str | None = None
    scene_key: str | None = None
    ingest_seconds: float | None = None
    embed_tiles_per_second: float | None = None
    finished: float | None = None
    tiling_version: int | None = None
    engine: str | None = None
    source_stamp: dict[str, Any] | None = None
    format: int = MANIFEST_FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """True when the last ingestion completed."""
        return self.status == READY

    @property
    def outdated_tiling(self) -> bool:
        """True for a scene tiled the old way: it must be re-ingested, never mixed in."""
        return (self.tiling_version or 1) < TILING_VERSION

    @property
    def source(self) -> str | None:
        """The GeoTIFF the scene was ingested from, if recorded."""
        return self.fingerprint.get("source")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SceneManifest:
        """A manifest from its JSON object; unknown keys go to ``extra``."""
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        if values.get("quicklook_bounds") is not None:
            values["quicklook_bounds"] = tuple(values["quicklook_bounds"])
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, with unset optional fields left out as older manifests did."""
        data = asdict(self)
        extra = data.pop("extra")
        data = {k: v for k, v in data.items() if v is not None}
        if data.get("quicklook_bounds") is not None:
            data["quicklook_bounds"] = list(data["quicklook_bounds"])
        return {**data, **extra}

    @classmethod
    def load(cls, path: Path) -> SceneManifest:
        """Read a manifest; a missing file gives an empty one (status ``""``)."""
        path = Path(path)
        return cls.from_dict(json.loads(path.read_text())) if path.exists() else cls()

    def save(self, path: Path) -> None:
        """Write atomically, so readers never see half a file."""
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(self.to_dict(), indent=2, default=str))
