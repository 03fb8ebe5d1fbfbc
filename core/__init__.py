"""SceneSeek's engine: AMFMN retrieval, training, evaluation, embedding, index and search.

The names below are the API that the app and other callers use; each is imported from its
package on first use (PEP 562), so ``import core`` stays cheap and torch loads only when a
model is needed. Where things live:

- ``core.model``: the network, its configs, checkpoints, shipped weights, versions, loading.
- ``core.store``: the workspace on disk: layout, manifests, indexes, feedback, tile names.
- ``core.ingest``: GeoTIFF to vectors and indexes (tiling, embedding, Dask).
- ``core.search``: loaded scenes, scoring, ranking, refine, results, heat maps; ``change``:
  change search between two dates of one place.
- ``core.learn``: datasets, training, evaluation, fine-tuning.
- ``core.jobs``, ``core.cli``: background jobs and ``python -m core``.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ANONYMOUS": "core.store.users",
    "AreaOfInterest": "core.search.aoi",
    "ChangeHit": "core.search.change.results",
    "ChangeQuery": "core.search.change.query",
    "ChangeResult": "core.search.change.results",
    "Engine": "core.search.engine",
    "FeedbackError": "core.errors",
    "Filters": "core.search.ranking",
    "FinetuneCfg": "core.learn.finetune.config",
    "ForbiddenError": "core.errors",
    "FinetunePlan": "core.learn.finetune.marks",
    "Hit": "core.search.results",
    "Job": "core.jobs",
    "Label": "core.store.mark",
    "Mark": "core.store.mark",
    "ModelRegistry": "core.model.versions",
    "ModelVersion": "core.model.versions",
    "NAME_PATTERN": "core.store.workspace",
    "Readiness": "core.learn.finetune.marks",
    "SQLiteFeedback": "core.store.feedback",
    "SceneManifest": "core.store.manifest",
    "ScenePair": "core.search.change.pair",
    "SceneSeekError": "core.errors",
    "SearchResult": "core.search.results",
    "SignInError": "core.errors",
    "TileRef": "core.store.tileref",
    "User": "core.store.users",
    "UserStore": "core.store.users",
    "Workspace": "core.store.workspace",
    "anonymous_refusal": "core.store.users",
    "cancel": "core.jobs",
    "catalog_scene": "core.store.remote",
    "change_heat": "core.search.change.pair",
    "change_search": "core.search.change.query",
    "check_free_space": "core.store.workspace",
    "embed_seconds": "core.ingest.launch",
    "finetune_plan": "core.learn.finetune.marks",
    "get_settings": "core.settings",
    "heat_map": "core.search.localize",
    "image_sha256": "core.store.feedback",
    "ingest_params": "core.jobs",
    "is_aligned": "core.search.change.align",
    "list_jobs": "core.jobs",
    "load_model": "core.model.loading",
    "load_query_image": "core.store.query_images",
    "log_path": "core.jobs",
    "marks_geojson": "core.store.mark_export",
    "load_pair": "core.search.change.pair",
    "delete_pairs_of": "core.store.pairs",
    "pair_dir": "core.store.pairs",
    "parse_aoi": "core.search.aoi",
    "prepare_pair": "core.search.change.align",
    "promote": "core.learn.finetune.guard",
    "queue_positions": "core.jobs",
    "query_png": "core.store.query_images",
    "promotion_cost": "core.ingest.launch",
    "scenes_to_refresh": "core.ingest.launch",
    "refine": "core.search.refine",
    "scene_date": "core.search.change.results",
    "served_host": "core.front.origin",
    "remote_scene_url": "core.ingest.source",
    "scene_heat": "core.search.localize",
    "scene_name_from": "core.store.workspace",
    "search_image": "core.search.ranking",
    "search_similar": "core.search.similar",
    "search_text": "core.search.ranking",
    "search_tile": "core.search.ranking",
    "shipped_scores": "core.model.shipped",
    "split_feedback": "core.learn.finetune.marks",
    "start_job": "core.jobs",
    "suggest_pairs": "core.search.change.pair",
    "summary": "core.learn.finetune.guard",
    "tile_footprint": "core.store.reattach",
    "write_heat_png": "core.search.localize",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """Import the public names on first use, so ``import core`` stays cheap (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
