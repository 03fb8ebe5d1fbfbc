"""Search indexed scenes by text, example image or tile.

``SearchResources`` is loaded once (model, tokenizer, every ready scene's vectors and
memory-mapped indexes) and shared by every query; the app caches it across reruns.

Text queries: the text index (inner product, see ``core.index.soft_index_vectors``)
proposes candidates and exact AMFMN soft-attention scores re-rank them,
``cos(v, g * t) = (v*g).t / (|v| sqrt((g*g).(t*t)))``.
Image and tile queries rank by cosine between visual vectors. Hits of the same scene and
scale that overlap a better hit are suppressed so the top k are k different places.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import torch

from core.device import limit_blas_threads
from core.errors import IndexMismatchError, QueryError, SceneNotFoundError
from core.index import TEXT_METRIC, VISUAL_METRIC, VectorIndex, load_index
from core.model.amfmn import AMFMN
from core.model.inference import Towers, torch_towers
from core.query import clean_text_query, load_query_image
from core.results import Hit, SearchResult
from core.workspace import Workspace
from tiles import read_catalog

CANDIDATES_PER_HIT = 20
MIN_CANDIDATES = 2000  # with the next line: recall@10 0.997 at 1M tiles (docs/BENCHMARKS.md)
SEARCH_K_PER_CANDIDATE = 50
OVERLAP_SUPPRESS = 0.2
EXACT_CHUNK = 65536


@dataclass
class SceneIndex:
    """One ready scene: catalog, vectors and indexes, loaded read-only."""

    name: str
    catalog: gpd.GeoDataFrame
    visual: np.ndarray
    gate: np.ndarray | None
    visual_ann: VectorIndex
    text_ann: VectorIndex | None
    manifest: dict
    windows: np.ndarray = field(init=False)
    scales: np.ndarray = field(init=False)
    norms: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.windows = self.catalog[["col_off", "row_off", "width", "height"]].to_numpy(np.int64)
        self.scales = self.catalog["scale"].to_numpy(np.int64)
        self.norms = np.concatenate(
            [
                np.linalg.norm(
                    np.asarray(self.visual[i : i + EXACT_CHUNK], dtype=np.float32), axis=1
                )
                for i in range(0, len(self.visual), EXACT_CHUNK)
            ]
            or [np.empty(0, dtype=np.float32)]
        )

    def __len__(self) -> int:
        return len(self.visual)


def load_scene(workspace: Workspace, name: str, dim: int, model_tag: str) -> SceneIndex:
    """Load a ready scene, refusing one embedded by another model version.

    Raises:
        SceneNotFoundError: when it is missing or not ready.
        IndexMismatchError: when it was embedded by another model version.
    """
    scene = workspace.existing_scene(name)
    manifest = scene.read_manifest()
    if manifest.get("model") != model_tag:
        source = manifest.get("fingerprint", {}).get("source", "SCENE.tif")
        raise IndexMismatchError(
            f"scene {name!r} was embedded by model {manifest.get('model')}, the active model is "
            f"{model_tag}; re-embed it: python -m core ingest {source} --name {name} "
            f"--workspace {workspace.root}"
        )
    visual = np.load(scene.embeddings / "visual.npy", mmap_mode="r")
    gate_path = scene.embeddings / "gate.npy"
    gate = np.load(gate_path, mmap_mode="r") if gate_path.exists() else None
    text_ann = (
        load_index(scene.text_index, dim, model_tag, TEXT_METRIC) if gate is not None else None
    )
    return SceneIndex(
        name=name,
        catalog=read_catalog(scene.catalog),
        visual=visual,
        gate=gate,
        visual_ann=load_index(scene.visual_index, dim, model_tag, VISUAL_METRIC),
        text_ann=text_ann,
        manifest=manifest,
    )


@dataclass
class SearchResources:
    """Everything a query needs, loaded once and reused."""

    model: AMFMN
    model_tag: str
    workspace: Workspace
    device: torch.device
    scenes: dict[str, SceneIndex] = field(default_factory=dict)
    stale: dict[str, str] = field(default_factory=dict)
    towers: Towers = field(kw_only=True)  # what encodes queries (ONNX Runtime or torch)

    @classmethod
    def load(
        cls,
        workspace: Workspace,
        model: AMFMN,
        model_tag: str,
        device: torch.device,
        towers: Towers | None = None,
    ) -> SearchResources:
        """Load the model's resources and every ready scene; ``towers`` default to torch."""
        limit_blas_threads()
        model = model.to(device).eval()
        towers = towers or torch_towers(model, device)
        resources = cls(model, model_tag, workspace, device, towers=towers)
        resources.refresh()
        return resources

    def refresh(self) -> None:
        """Pick up scenes ingested, re-indexed or deleted since the last load."""
        names = set(self.workspace.scene_names())
        for gone in set(self.scenes) - names:
            del self.scenes[gone]
        self.stale = {}
        for name in sorted(names):
            finished = self.workspace.scene(name).read_manifest().get("finished")
            known = self.scenes.get(name)
            if known is not None and known.manifest.get("finished") == finished:
                continue
            try:
                self.scenes[name] = load_scene(
                    self.workspace, name, self.model.cfg.embed_dim, self.model_tag
                )
            except IndexMismatchError as exc:
                self.scenes.pop(name, None)
                self.stale[name] = str(exc)

    def select(self, names: list[str] | None) -> list[SceneIndex]:
        """Scenes to search (all when ``names`` is empty).

        Raises:
            SceneNotFoundError: for a name that is not a ready scene.
            IndexMismatchError: for a scene embedded by another model version.
        """
        if not names:
            if not self.scenes:
                raise SceneNotFoundError(
                    f"no ingested scenes in {self.workspace.root}; ingest one first"
                    + (
                        f" ({len(self.stale)} need re-embedding with the active model)"
                        if self.stale
                        else ""
                    )
                )
            return list(self.scenes.values())
        chosen = []
        for name in names:
            if name in self.stale:
                raise IndexMismatchError(self.stale[name])
            if name not in self.scenes:
                known = ", ".join(sorted(self.scenes)) or "none"
                raise SceneNotFoundError(f"no ingested scene {name!r} (ready: {known})")
            chosen.append(self.scenes[name])
        return chosen

    @torch.inference_mode()
    def encode_text(self, text: str) -> np.ndarray:
        """Caption vector of a validated query."""
        return self.towers.text(self.model.tokenize([text]))[0]

    @torch.inference_mode()
    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Visual vector of one ``S x S x 3`` uint8 example."""
        from core.data.images import to_tensor_batch

        batch = to_tensor_batch([pixels], self.model.cfg.preprocess)
        return self.towers.image(batch)["visual"][0]


@torch.inference_mode()
def caption_energy(model: AMFMN, towers: Towers | None = None) -> np.ndarray:
    """Mean squared caption vector over typical captions: the text index's weighting."""
    from core.text.reference import REFERENCE_CAPTIONS

    device = next(model.parameters()).device
    text = (towers or torch_towers(model, device)).text
    vectors = text(model.tokenize(list(REFERENCE_CAPTIONS)))
    return (vectors * vectors).mean(0)


@dataclass(frozen=True)
class Filters:
    """Which tiles a query may return."""

    scenes: tuple[str, ...] = ()
    scales: tuple[int, ...] = ()
    k: int = 10
    exact: bool = False
    suppress_overlaps: bool = True


def _chunked(fn):  # noqa: ANN001, ANN202
    """Apply a scorer to at most ``EXACT_CHUNK`` tiles at a time, bounding temporary memory."""

    def run(scene: SceneIndex, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
        parts = [
            fn(scene, ids[i : i + EXACT_CHUNK], query) for i in range(0, len(ids), EXACT_CHUNK)
        ]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)

    run.__doc__ = fn.__doc__
    return run


@_chunked
def text_scores(scene: SceneIndex, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Exact soft-attention scores of tiles ``ids`` against a caption vector."""
    v = np.asarray(scene.visual[ids], dtype=np.float32)
    g = np.asarray(scene.gate[ids], dtype=np.float32)
    numerator = (v * g) @ query
    attended = np.sqrt(np.clip((g * g) @ (query * query), 0, None))
    return numerator / np.maximum(scene.norms[ids] * attended, 1e-8)


@_chunked
def visual_scores(scene: SceneIndex, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine between stored visual vectors of tiles ``ids`` and a query visual vector."""
    v = np.asarray(scene.visual[ids], dtype=np.float32)
    return (v @ query) / np.maximum(scene.norms[ids] * np.linalg.norm(query), 1e-8)


def _candidates(
    scene: SceneIndex, index: VectorIndex | None, vector: np.ndarray, f: Filters
) -> np.ndarray:
    if f.exact or index is None:
        return np.arange(len(scene))
    n = min(len(scene), max(MIN_CANDIDATES, f.k * CANDIDATES_PER_HIT))
    return np.sort(index.nearest(vector, n, n * SEARCH_K_PER_CANDIDATE))


def _scored(
    scene: SceneIndex, kind: str, vector: np.ndarray, f: Filters
) -> tuple[np.ndarray, np.ndarray]:
    score, index = (
        (text_scores, scene.text_ann) if kind == "text" else (visual_scores, scene.visual_ann)
    )
    ids = _candidates(scene, index, vector, f)
    if f.scales:
        ids = ids[np.isin(scene.scales[ids], f.scales)]
    if len(ids) == 0:
        return ids, np.empty(0, dtype=np.float32)
    return ids, score(scene, ids, vector)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return (w * h) / min(a[2] * a[3], b[2] * b[3])


def rank(
    scenes: list[SceneIndex], kind: str, vector: np.ndarray, f: Filters
) -> list[tuple[SceneIndex, int, float]]:
    """Merge candidates of all scenes by exact score, suppressing near-duplicate places."""
    pooled: list[tuple[float, int, int]] = []
    for s_index, scene in enumerate(scenes):
        ids, scores = _scored(scene, kind, vector, f)
        top = np.argsort(-scores, kind="stable")[: max(f.k * CANDIDATES_PER_HIT, f.k)]
        pooled.extend((float(scores[i]), s_index, int(ids[i])) for i in top)
    pooled.sort(key=lambda t: (-t[0], t[1], t[2]))
    kept: list[tuple[SceneIndex, int, float]] = []
    for score, s_index, tile in pooled:
        scene = scenes[s_index]
        if f.suppress_overlaps and any(
            other is scene
            and scene.scales[t] == scene.scales[tile]
            and _overlap(scene.windows[t], scene.windows[tile]) >= OVERLAP_SUPPRESS
            for other, t, _ in kept
        ):
            continue
        kept.append((scene, tile, score))
        if len(kept) == f.k:
            break
    return kept


def _hits(ranked: list[tuple[SceneIndex, int, float]]) -> list[Hit]:
    hits = []
    for i, (scene, tile, score) in enumerate(ranked, start=1):
        row = scene.catalog.iloc[tile]
        hits.append(
            Hit(
                rank=i,
                score=score,
                scene=scene.name,
                tile_id=int(row["tile_id"]),
                scale=int(row["scale"]),
                window=tuple(int(v) for v in scene.windows[tile]),  # type: ignore[arg-type]
                geometry=row.geometry,
            )
        )
    return hits


def _run(
    res: SearchResources, kind: str, vector: np.ndarray, query: dict, f: Filters, t0: float
) -> SearchResult:
    t1 = time.perf_counter()
    ranked = rank(res.select(list(f.scenes)), kind, vector, f)
    t2 = time.perf_counter()
    timings = {"encode": (t1 - t0) * 1000, "search": (t2 - t1) * 1000}
    return SearchResult(query, res.model_tag, _hits(ranked), timings, kind, vector)


def search_text(res: SearchResources, text: str, f: Filters = Filters()) -> SearchResult:
    """Rank tiles against a description.

    Raises:
        QueryError: for an empty, wordless or overlong query.
        SceneNotFoundError: when no scene (or a named one) is ready.
    """
    t0 = time.perf_counter()
    text = clean_text_query(text)
    if not res.model.has_gates:
        raise QueryError(
            "this model's attention has no index; only soft-attention models are searchable"
        )
    return _run(res, "text", res.encode_text(text), {"text": text}, f, t0)


def search_image(
    res: SearchResources,
    image: str | Path | bytes,
    f: Filters = Filters(),
    label: str | None = None,
) -> SearchResult:
    """Rank tiles by visual similarity to an example image.

    Raises:
        QueryError: when the image cannot be read.
    """
    t0 = time.perf_counter()
    pixels = load_query_image(image, res.model.cfg.preprocess.image_size)
    name = label or ("upload" if isinstance(image, bytes) else str(image))
    return _run(res, "image", res.encode_pixels(pixels), {"image": name}, f, t0)


def search_tile(
    res: SearchResources, scene: str, tile_id: int, f: Filters = Filters()
) -> SearchResult:
    """Rank tiles by visual similarity to an indexed tile ("find similar").

    Raises:
        SceneNotFoundError: for an unknown scene.
        QueryError: for a tile id outside the scene.
    """
    t0 = time.perf_counter()
    source = res.select([scene])[0]
    if not 0 <= tile_id < len(source):
        raise QueryError(f"scene {scene!r} has tiles 0..{len(source) - 1}; no tile {tile_id}")
    vector = np.asarray(source.visual[tile_id], dtype=np.float32)
    return _run(res, "image", vector, {"tile": f"{scene}:{tile_id}"}, f, t0)


def parse_tile_ref(ref: str) -> tuple[str, int]:
    """Split ``SCENE:TILE_ID``.

    Raises:
        QueryError: when it is not of that form.
    """
    scene, sep, tile = ref.rpartition(":")
    if not sep or not scene or not tile.isdigit():
        raise QueryError(f"--tile takes SCENE:TILE_ID, e.g. berkeley:42; got {ref!r}")
    return scene, int(tile)


REFINE_WEIGHTS = (1.0, 0.75, 0.25)  # Rocchio: query, mean relevant, mean irrelevant


def _unit(x: np.ndarray) -> np.ndarray:
    return x / max(float(np.linalg.norm(x)), 1e-8)


def tile_vector(res: SearchResources, kind: str, scene: str, tile_id: int) -> np.ndarray:
    """A tile in the query's scoring space: ``v * g`` for text queries, ``v`` for images."""
    source = res.select([scene])[0]
    v = np.asarray(source.visual[tile_id], dtype=np.float32)
    if kind == "text":
        v = v * np.asarray(source.gate[tile_id], dtype=np.float32)
    return _unit(v)


def refine(
    res: SearchResources,
    previous: SearchResult,
    relevant: list[tuple[str, int]],
    irrelevant: list[tuple[str, int]],
    f: Filters = Filters(),
) -> SearchResult:
    """Re-rank with the analyst's marks, moving the query towards relevant tiles (Rocchio).

    Instant: no training, just a new query vector scored the same way as the original.

    Raises:
        QueryError: when there is no previous query vector or no mark.
    """
    if previous.vector is None:
        raise QueryError("refine needs a previous search to start from")
    if not relevant and not irrelevant:
        raise QueryError("mark at least one hit relevant or not relevant to refine")
    t0 = time.perf_counter()
    a, b, c = REFINE_WEIGHTS
    vector = a * _unit(previous.vector)
    if relevant:
        vector = vector + b * np.mean(
            [tile_vector(res, previous.kind, *m) for m in relevant], axis=0
        )
    if irrelevant:
        vector = vector - c * np.mean(
            [tile_vector(res, previous.kind, *m) for m in irrelevant], axis=0
        )
    query = {
        **previous.query,
        "refined": {"relevant": len(relevant), "irrelevant": len(irrelevant)},
    }
    return _run(res, previous.kind, vector.astype(np.float32), query, f, t0)
