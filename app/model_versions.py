"""Model versions for the fine-tune page: the registry table, before/after, switching.

Switching (promote or roll back) is one atomic registry write; then one background job
brings every scene to the newly active version. A version that shares the scenes' image
tower (what fine-tuning makes by default) needs only new gates and text indexes, computed
from the stored vectors in seconds; another image tower means re-embedding. The shared
search engine is cached per active version (``app.resources``), so the next run of any page
loads the new one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from app.text import plural
from core import (
    Job,
    ModelVersion,
    Workspace,
    get_settings,
    promote,
    shipped_scores,
    start_job,
    summary,
)

EXPLAIN = {
    "heldout": "marks held out from training found in the query's top 10; must not fall by "
    "more than {drop:g}",
    "overlap": "share of the top 10 tiles of generic queries (reference captions, other "
    "marked queries) that stays; must stay at least {overlap:g}",
    "base": "the paper's mean recall on the first test images (measured only with the "
    "datasets installed)",
}


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
    heldout: str
    kept: str
    created: str
    active: bool
    newer: bool  # newer than the active version: promoting it is guarded


def _mean(values: list[float]) -> str:
    return f"{sum(values) / len(values):.2f}" if values else ""


def version_rows(versions: list[ModelVersion], active: ModelVersion) -> list[VersionRow]:
    """Every version, newest first, with its training data and its check numbers.

    Base test mR: a fine-tuned version's was measured after training when the datasets were
    installed; the shipped model's comes from its model card (``assets/models/scores.json``).
    """
    rows = []
    for v in reversed(versions):
        after = v.metrics.get("after", {}).get("base_mR", {}) or shipped_scores(v.sha256)
        numbers = summary(v)
        kept = numbers.get("top10_overlap_mean")
        rows.append(
            VersionRow(
                version=v.version,
                label=v.label,
                parent="" if v.parent is None else f"v{v.parent}",
                pairs=str(v.data.get("pairs", "")),
                negatives=str(v.data.get("negatives", "")),
                scenes=", ".join(v.data.get("scenes", [])),
                base_mr={name: f"{value:.2f}" for name, value in after.items()},
                heldout=_mean([a for _, a in numbers.get("heldout_p10", {}).values()]),
                kept="" if kept is None else f"{kept:.2f}",
                created=time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created)),
                active=v.version == active.version,
                newer=v.version > active.version,
            )
        )
    return rows


def guard_text() -> str:
    """The promotion guard in one sentence, with the configured limits."""
    s = get_settings()
    return (
        f"Promotion is refused when held-out precision@10 of a query falls by more than "
        f"{s.guard_heldout_drop:g}, or when generic queries keep less than "
        f"{s.guard_top10_overlap:g} of their top 10 on average (settings "
        "SCENESEEK_GUARD_HELDOUT_DROP and SCENESEEK_GUARD_TOP10_OVERLAP). "
        "Rolling back is always allowed."
    )


def comparison(version: ModelVersion) -> list[dict[str, Any]]:
    """Before/after rows of a fine-tuned version, each with what it means."""
    s = get_settings()
    numbers = summary(version)
    measures = [
        (f"held-out precision@10 · {query}", pair, EXPLAIN["heldout"])
        for query, pair in numbers.get("heldout_p10", {}).items()
    ]
    if "top10_overlap_mean" in numbers:
        kept = numbers["top10_overlap_mean"]
        measures.append(("generic queries: top 10 kept", (1.0, kept), EXPLAIN["overlap"]))
    measures += [
        (f"{name.upper()} test mR", pair, EXPLAIN["base"])
        for name, pair in numbers.get("base_mR", {}).items()
    ]
    limits = {"drop": s.guard_heldout_drop, "overlap": s.guard_top10_overlap}
    return [
        {
            "measure": measure,
            "before": before,
            "after": after,
            "change": None if before is None else after - before,
            "meaning": meaning.format(**limits),
        }
        for measure, (before, after), meaning in measures
    ]


@dataclass(frozen=True)
class Switch:
    """What switching the active model did."""

    version: ModelVersion
    scenes: int
    job: Job | None

    @property
    def message(self) -> str:
        """The outcome in plain words."""
        text = f"{self.version.label} is now the active model."
        if self.job is not None:
            text += (
                f" Bringing {plural(self.scenes, 'scene')} to it started; its progress shows above."
            )
        return text


def switch_model(ws: Workspace, version: int, owner: str = "") -> Switch:
    """Make ``version`` active and start one job that brings every scene to it.

    A version newer than the active one must pass the guard; an older one (rollback) may
    always be chosen.

    Raises:
        FinetuneError: when the guard refuses the promotion (nothing changes).
        CheckpointError: for an unknown version.
        JobError: when the refresh process cannot be started.
    """
    chosen = promote(ws, version)
    scenes = ws.scene_names()
    job = start_job(ws, "refresh", {}, owner=owner) if scenes else None
    return Switch(chosen, len(scenes), job)
