"""Fine-tune the active model on the analysts' marks, safely.

Training pairs come from the feedback store: a text query (or a caption written for a tile)
paired with the tiles marked relevant; its negatives are the tiles marked not relevant plus
random unmarked tiles of the same scenes. Image-query marks carry no text and are not used.
Each step also replays a batch of the base training data (RSICD + UCM train) with the
usual dynamic-margin triplet loss, so the model does not forget what it knew.

Before and after, the model is measured on (a) held-out marks: for every labelled query,
precision@10 over the scene's tiles that were not used for training, counting held-out
relevant tiles as hits, and (b) a fixed subset of the RSICD and UCM test splits. The new
model is registered as a version; promotion is refused when a base mR drops by more than
the guard.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.checkpoint import load_checkpoint, save_checkpoint
from core.data.captions import CaptionSet, concat, load_dataset
from core.data.images import ImageTransform, to_tensor_batch
from core.errors import SceneSeekError
from core.eval.evaluate import evaluate
from core.feedback import Mark, SQLiteFeedback
from core.model.amfmn import AMFMN
from core.text.prior import PriorSimilarity
from core.train.loss import dynamic_margin, ranking_loss, triplet_loss
from core.versions import ModelRegistry, ModelVersion
from core.workspace import Workspace
from tiles import TileReader, read_catalog

Progress = Callable[[str, int, int, float], None]


class FinetuneError(SceneSeekError, ValueError):
    """Raised when there are not enough marks to fine-tune, or promotion is refused."""


@dataclass(frozen=True)
class FinetuneCfg:
    """Fine-tuning settings; the defaults take a few minutes on a 2-core CPU."""

    steps: int = 60
    pairs_per_step: int = 12
    negatives_per_pair: int = 8
    replay_images: int = 512
    replay_batch: int = 48
    replay_weight: float = 1.0
    lr: float = 1e-4
    holdout_fraction: float = 0.25
    eval_images: int = 200
    guard_points: float = 2.0
    min_relevant: int = 2
    seed: int = 0


@dataclass(frozen=True)
class Pair:
    """A text and a tile it describes."""

    text: str
    scene: str
    tile_id: int


@dataclass
class FeedbackSplit:
    """Marks turned into training pairs and held-out judgements."""

    train_pairs: list[Pair] = field(default_factory=list)
    train_negatives: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    heldout: dict[str, dict[tuple[str, int], bool]] = field(default_factory=dict)
    used_marks: set[int] = field(default_factory=set)


def _held_out(mark: Mark, fraction: float) -> bool:
    """Deterministic split of marks, stable across runs and machines."""
    key = f"{mark.query}|{mark.scene}|{mark.tile_id}".encode()
    return int(hashlib.sha256(key).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def split_feedback(marks: list[Mark], holdout_fraction: float) -> FeedbackSplit:
    """Training pairs, their negatives, and held-out judgements per text query."""
    split = FeedbackSplit()
    for mark in marks:
        if mark.label == "caption":
            split.train_pairs.append(Pair(mark.caption, mark.scene, mark.tile_id))
            continue
        if mark.query_kind != "text":
            continue
        if _held_out(mark, holdout_fraction):
            split.heldout.setdefault(mark.query, {})[(mark.scene, mark.tile_id)] = (
                mark.label == "relevant"
            )
            continue
        if mark.label == "relevant":
            split.train_pairs.append(Pair(mark.query, mark.scene, mark.tile_id))
        else:
            split.train_negatives.setdefault(mark.query, []).append((mark.scene, mark.tile_id))
        if mark.id is not None:
            split.used_marks.add(mark.id)
    return split


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
            windows = catalog[["col_off", "row_off", "width", "height"]].to_numpy(np.int64)
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


@dataclass
class Replay:
    """A fixed sample of the base training data with its frozen features."""

    captions: CaptionSet
    taps: list[torch.Tensor]
    prior: PriorSimilarity


@torch.no_grad()
def build_replay(model: AMFMN, n_images: int, seed: int, data_root: Path | None) -> Replay:
    """Sample base training images and compute their frozen-prefix features once."""
    base = concat([load_dataset(name, "train", data_root) for name in ("rsicd", "ucm")])
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(base.n_images, size=min(n_images, base.n_images), replace=False))
    sample = base.subset(chosen)
    transform = ImageTransform(model.cfg.preprocess, train=False)
    from core.data.images import load_image

    taps: list[list[torch.Tensor]] = []
    for start in range(0, sample.n_images, 32):
        images = torch.stack(
            [transform(load_image(p)) for p in sample.image_paths[start : start + 32]]
        )
        taps.append(model.backbone.prefix(images, model.frozen_stages))
    stacked = [torch.cat([t[k] for t in taps]) for k in range(model.frozen_stages)]
    return Replay(sample, stacked, PriorSimilarity.from_caption_set(sample))


def _visual(model: AMFMN, taps: list[torch.Tensor]) -> torch.Tensor:
    return model.visual_from_features(model.backbone.forward_from(model.frozen_stages, taps))


def _text(model: AMFMN, texts: list[str]) -> torch.Tensor:
    return model.encode_text(model.tokenize(texts))


@torch.no_grad()
def precision_at_k(
    model: AMFMN,
    features: TileFeatures,
    query: str,
    judged: dict[tuple[str, int], bool],
    exclude: set[tuple[str, int]],
    k: int = 10,
    max_tiles: int = 4000,
) -> float:
    """Precision@k of ``query`` over its scenes' tiles minus ``exclude``; judged-True are hits.

    Scenes larger than ``max_tiles`` are subsampled, always keeping the judged tiles.
    """
    model.eval()
    scenes = sorted({s for s, _ in judged})
    candidates = [
        (s, t) for s in scenes for t in range(features.n_tiles(s)) if (s, t) not in exclude
    ]
    if len(candidates) > max_tiles:
        rest = [c for c in candidates if c not in judged]
        sample = random.Random(query).sample(rest, max(0, max_tiles - len(judged)))
        candidates = [c for c in candidates if c in judged] + sample
    visual = torch.cat(
        [
            _visual(model, features.taps(candidates[i : i + 64]))
            for i in range(0, len(candidates), 64)
        ]
    )
    scores = model.scores(visual, _text(model, [query]))[:, 0]
    top = torch.argsort(scores, descending=True)[:k].tolist()
    return sum(judged.get(candidates[i], False) for i in top) / min(k, len(candidates))


def heldout_precision(
    model: AMFMN, features: TileFeatures, split: FeedbackSplit
) -> dict[str, float]:
    """Precision@10 per held-out query, excluding every tile used for training."""
    exclude = {(p.scene, p.tile_id) for p in split.train_pairs}
    exclude |= {t for negs in split.train_negatives.values() for t in negs}
    return {
        query: precision_at_k(model, features, query, judged, exclude)
        for query, judged in split.heldout.items()
        if any(judged.values())
    }


def base_metrics(model: AMFMN, n_images: int, data_root: Path | None) -> dict[str, float]:
    """Mean recall on a fixed subset (first ``n_images``) of the RSICD and UCM test splits."""
    out = {}
    for name in ("rsicd", "ucm"):
        test = load_dataset(name, "test", data_root)
        subset = test.subset(np.arange(min(n_images, test.n_images)))
        # torch: this model is being trained; its ONNX graphs are exported once, at registration
        report = evaluate(model, subset, "cpu", workers=0, progress=False, engine="torch")
        out[name] = report.metrics.mr
    return out


def finetune(
    workspace: Workspace,
    cfg: FinetuneCfg = FinetuneCfg(),
    progress: Progress | None = None,
    data_root: Path | None = None,
) -> ModelVersion:
    """Train a new version from the active one on the workspace's marks and register it.

    Raises:
        FinetuneError: when there are fewer than ``cfg.min_relevant`` usable relevant marks.
    """
    report = progress or (lambda *a: None)
    started = time.time()
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    registry = ModelRegistry(workspace)
    parent = registry.active()
    model, _ = load_checkpoint(parent.path)
    marks = SQLiteFeedback(workspace.feedback_db).marks()
    split = split_feedback(marks, cfg.holdout_fraction)
    if len(split.train_pairs) < cfg.min_relevant:
        raise FinetuneError(
            f"fine-tuning needs at least {cfg.min_relevant} relevant marks or captions on text "
            f"queries; the workspace has {len(split.train_pairs)} usable for training"
        )
    features = TileFeatures(workspace, model)
    report("measuring the current model", 0, cfg.steps, 0.0)
    before = {
        "heldout_p10": heldout_precision(model, features, split),
        "base_mR": base_metrics(model, cfg.eval_images, data_root),
    }
    report("sampling replay data", 0, cfg.steps, 0.0)
    replay = build_replay(model, cfg.replay_images, cfg.seed, data_root)
    params = [
        p for m in model.trained_modules().values() for p in m.parameters() if p.requires_grad
    ]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    by_scene: dict[str, int] = defaultdict(int)
    for pair in split.train_pairs:
        by_scene[pair.scene] += 1
    losses = []
    for step in range(cfg.steps):
        model.train()
        pairs = [rng.choice(split.train_pairs) for _ in range(cfg.pairs_per_step)]
        negatives = []
        for pair in pairs:
            marked = split.train_negatives.get(pair.text, [])
            picks = rng.sample(marked, min(len(marked), cfg.negatives_per_pair // 2))
            positive_tiles = {
                (p.scene, p.tile_id) for p in split.train_pairs if p.text == pair.text
            }
            while len(picks) < cfg.negatives_per_pair:
                tile = (pair.scene, rng.randrange(features.n_tiles(pair.scene)))
                if tile not in positive_tiles:
                    picks.append(tile)
            negatives.append(picks)
        tiles = [(p.scene, p.tile_id) for p in pairs] + [t for negs in negatives for t in negs]
        visual = _visual(model, features.taps(tiles))
        text = _text(model, [p.text for p in pairs])
        n = len(pairs)
        positive = model.scores(visual[:n], text).diagonal()
        negative_visual = visual[n:].view(n, cfg.negatives_per_pair, -1)
        negative = torch.stack(
            [model.scores(negative_visual[i], text[i : i + 1])[:, 0] for i in range(n)]
        )
        loss = ranking_loss(positive, negative, dynamic_margin(torch.zeros(())))
        ids = torch.tensor(
            rng.sample(
                range(replay.captions.n_images), min(cfg.replay_batch, replay.captions.n_images)
            )
        )
        caption_ids = torch.tensor(
            [int(rng.choice(list(replay.captions.captions_of(int(i))))) for i in ids]
        )
        replay_visual = _visual(model, [t[ids] for t in replay.taps])
        replay_text = _text(model, [replay.captions.captions[int(c)] for c in caption_ids])
        prior = torch.from_numpy(replay.prior.matrix(ids.numpy(), caption_ids.numpy()))
        positives = torch.eye(len(ids), dtype=torch.bool)
        loss = loss + cfg.replay_weight * triplet_loss(
            model.scores(replay_visual, replay_text), positives, dynamic_margin(prior), "hardest"
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 2.0)
        optimizer.step()
        losses.append(loss.item())
        report("fine-tuning", step + 1, cfg.steps, (step + 1) / max(time.time() - started, 1e-9))
    model.eval()
    report("measuring the new model", cfg.steps, cfg.steps, 0.0)
    after = {
        "heldout_p10": heldout_precision(model, features, split),
        "base_mR": base_metrics(model, cfg.eval_images, data_root),
    }
    data = {
        "pairs": len(split.train_pairs),
        "negatives": sum(len(v) for v in split.train_negatives.values()),
        "heldout_queries": len(split.heldout),
        "scenes": sorted(by_scene),
        "cfg": asdict(cfg),
    }
    metrics = {
        "before": before,
        "after": after,
        "final_loss": float(np.mean(losses[-10:])),
        "seconds": round(time.time() - started, 1),
    }
    out = workspace.models_dir / "candidate.safetensors"
    save_checkpoint(model, out, {"finetune": data, "parent": parent.version}, metrics)
    version = registry.register(
        out, parent.version, note="fine-tuned on feedback", data=data, metrics=metrics
    )
    out.unlink(missing_ok=True)
    return version


def guard_violations(version: ModelVersion, guard_points: float) -> list[str]:
    """Reasons to refuse promoting ``version``: base mR drops larger than the guard."""
    metrics = version.metrics
    if not metrics:
        return []
    reasons = []
    for name, before in metrics["before"]["base_mR"].items():
        after = metrics["after"]["base_mR"][name]
        if before - after > guard_points:
            reasons.append(
                f"{name} test mR fell {before - after:.2f} points ({before:.2f} -> {after:.2f}), "
                f"more than the {guard_points:g}-point guard"
            )
    return reasons


def promote(
    workspace: Workspace, version: int, guard_points: float = FinetuneCfg.guard_points
) -> ModelVersion:
    """Make ``version`` active if it passes the guard (rollback to an older one always may).

    Its ONNX graphs are exported first where this machine runs ONNX (a cache hit when it was
    registered here), so the first query after the switch does not export them.

    Raises:
        FinetuneError: when the guard refuses it.
    """
    from core.model.inference import prepare_checkpoint
    from core.model.onnx_export import cache_dir_for

    registry = ModelRegistry(workspace)
    chosen = registry.get(version)
    reasons = guard_violations(chosen, guard_points) if version > registry.active().version else []
    if reasons:
        raise FinetuneError("promotion refused: " + "; ".join(reasons))
    prepare_checkpoint(chosen.path, cache_dir_for(workspace))
    return registry.set_active(version)


def summary(version: ModelVersion) -> dict[str, Any]:
    """Before/after numbers side by side, for the page and the CLI."""
    m = version.metrics
    if not m:
        return {}
    return {
        "heldout_p10": {
            q: (m["before"]["heldout_p10"].get(q), v) for q, v in m["after"]["heldout_p10"].items()
        },
        "base_mR": {d: (m["before"]["base_mR"][d], v) for d, v in m["after"]["base_mR"].items()},
    }
