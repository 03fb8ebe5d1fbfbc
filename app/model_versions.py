"""Model versions for the fine-tune page: the registry table, before/after, switching.

Switching (promote or roll back) is one atomic registry write; every scene is then
re-embedded in the background with the newly active model, since embeddings of different
versions cannot be searched together: one re-index job per scene joins the job queue, which
runs ``SCENESEEK_MAX_JOBS`` at a time. The shared search engine is cached per active
version (``app.resources``), so the next run of any page loads the new one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from app import scenes
from app.errors import AppError
from app.text import plural
from core import Job, ModelVersion, Workspace, promote, shipped_scores, summary


@dataclass(frozen=True)
class VersionRow:
    """One line of the registry table."""

    version: int
    label: str
    parent: str
    pairs: str
    negatives: str
    scenes: str
    base_mr: dict[str, str]  # test mR per dataset; a dataset missing here was not measured
    created: str
    active: bool
    newer: bool  # newer than the active version: promoting it is guarded


def version_rows(versions: list[ModelVersion], active: ModelVersion) -> list[VersionRow]:
    """Every version, newest first, with its training data and its base test mR.

    A fine-tuned version's mR was measured after training; the shipped model's comes from
    its model card (``assets/models/scores.json``).
    """
    rows = []
    for v in reversed(versions):
        after = v.metrics.get("after", {}).get("base_mR", {}) or shipped_scores(v.sha256)
        rows.append(
            VersionRow(
                version=v.version,
                label=v.label,
                parent="" if v.parent is None else f"v{v.parent}",
                pairs=str(v.data.get("pairs", "")),
                negatives=str(v.data.get("negatives", "")),
                scenes=", ".join(v.data.get("scenes", [])),
                base_mr={name: f"{value:.2f}" for name, value in after.items()},
                created=time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created)),
                active=v.version == active.version,
                newer=v.version > active.version,
            )
        )
    return rows


def comparison(version: ModelVersion) -> list[dict[str, Any]]:
    """Before/after rows of a fine-tuned version: held-out P@10 per query, then base mR."""
    numbers = summary(version)
    measures = [
        (f"held-out precision@10 · {query}", pair)
        for query, pair in numbers.get("heldout_p10", {}).items()
    ]
    measures += [
        (f"{name.upper()} test mR", pair) for name, pair in numbers.get("base_mR", {}).items()
    ]
    return [
        {
            "measure": measure,
            "before": before,
            "after": after,
            "change": None if before is None else after - before,
        }
        for measure, (before, after) in measures
    ]


@dataclass(frozen=True)
class Switch:
    """What switching the active model did."""

    version: ModelVersion
    reindexing: list[str]
    busy: list[str]

    @property
    def message(self) -> str:
        """The outcome in plain words."""
        text = f"{self.version.label} is now the active model."
        if self.reindexing:
            scenes = plural(len(self.reindexing), "scene")
            text += f" Re-embedding of {scenes} with it started; its progress shows above."
        if self.busy:
            text += f" Busy, re-index from the Library once their job ends: {', '.join(self.busy)}."
        return text


def switch_model(
    ws: Workspace, version: int, guard_points: float, jobs: list[Job], owner: str = ""
) -> Switch:
    """Make ``version`` active and start re-embedding every scene with it.

    A version newer than the active one must pass the guard; an older one (rollback) may
    always be chosen.

    Raises:
        FinetuneError: when the guard refuses the promotion (nothing changes).
        CheckpointError: for an unknown version.
        JobError: when a re-index process cannot be started.
    """
    chosen = promote(ws, version, guard_points)
    reindexing, busy = [], []
    for name in ws.scene_names(ready_only=False):
        try:
            scenes.start_reindex(ws, name, jobs, owner=owner)
            reindexing.append(name)
        except AppError:
            busy.append(name)
    return Switch(chosen, reindexing, busy)
