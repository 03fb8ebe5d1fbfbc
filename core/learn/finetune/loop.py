"""The fine-tuning loop: train a new version from the active one on the workspace's marks.

It needs only the workspace: the marks (relevant, not relevant, captions) and the scenes'
stored vectors. What learns is the recipe's (``FinetuneCfg.recipe``): per-query adapters
(default) or the text tower and gate, plus the image tower when asked. Each step ranks every
sampled relevant tile above the query's not-relevant marks and random unmarked tiles, and
two distillation terms toward the parent (learning without forgetting) keep everything else
where it was: the caption vectors of generic queries (the reference captions and the marked
queries not being trained), and how those queries rank unmarked tiles. With the RSICD and
UCM datasets installed, a replay of their training data and the paper's mR may be added
(``FinetuneCfg.replay_images``, ``eval_images``). The result is measured before and after
(see ``guard``) and registered as an inactive version.
"""

from __future__ import annotations

import copy
import random
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import ConfigError, FinetuneError
from core.learn.finetune.config import RECIPES, FinetuneCfg, Progress
from core.learn.finetune.features import (
    CachedTexts,
    Tile,
    TileVectors,
    encode_taps,
    encode_texts,
)
from core.learn.finetune.guard import base_metrics, check_tiles, generic_queries, measure, overlaps
from core.learn.finetune.marks import FeedbackSplit, finetune_plan, split_feedback
from core.learn.finetune.replay import Replay, build_replay
from core.learn.train.loss import dynamic_margin, ranking_loss, triplet_loss
from core.model.amfmn import AMFMN
from core.model.checkpoint import (
    IMAGE_TOWER,
    image_tower_fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from core.model.versions import ModelRegistry, ModelVersion
from core.store.workspace import Workspace


def add_adapters(model: AMFMN, queries: set[str], tau: float) -> None:
    """Zero adapters for trained queries that have none yet, and only theirs learn.

    Adapters of queries not trained this time (a parent's) stay as they are; each new one
    is anchored at the query's caption vector under the text tower.
    """
    adapters = model.adapters
    new = sorted(queries - set(adapters.queries))
    with torch.no_grad():
        anchors = model.encode_text(model.tokenize(new)) if new else None
        adapters.tau.fill_(tau)
    if anchors is not None:
        adapters.extend(new, anchors)
    adapters.learn_only(queries)


def trainable_parameters(model: AMFMN, cfg: FinetuneCfg, queries: set[str]) -> list[dict[str, Any]]:
    """Adam parameter groups of what learns: the recipe's part, and the image tower if asked.

    Raises:
        ConfigError: for an unknown recipe.
    """
    if cfg.recipe not in RECIPES:
        raise ConfigError(f"unknown fine-tuning recipe {cfg.recipe!r}; use one of {RECIPES}")
    model.requires_grad_(False)
    tower = cfg.recipe == "tower"
    chosen = [
        module
        for name, module in model.trained_modules().items()
        if (cfg.image_tower and f"{name}.".startswith(IMAGE_TOWER))
        or (tower and (name.startswith("text") or (cfg.gate and name == "attention")))
    ]
    for module in chosen:
        module.requires_grad_(True)
    params = [p for module in chosen for p in module.parameters()]
    groups: list[dict[str, Any]] = [{"params": params, "lr": cfg.lr}] if params else []
    if not tower:
        add_adapters(model, queries, cfg.adapter_tau)
        groups.append({"params": [model.adapters.deltas], "lr": cfg.adapter_lr})
    return groups


class _Step:
    """One optimisation step's losses, from the split, the tiles and the parent model."""

    def __init__(
        self,
        model: AMFMN,
        parent: AMFMN,
        vectors: TileVectors,
        split: FeedbackSplit,
        generic: list[str],
        pool: list[Tile],
        cfg: FinetuneCfg,
    ) -> None:
        self.model, self.parent, self.vectors = model, parent, vectors
        self.split, self.generic, self.pool, self.cfg = split, generic, pool, cfg
        self.rng = random.Random(cfg.seed)
        self.texts = CachedTexts(model)
        with torch.no_grad():
            self.parent_text = torch.cat(
                [encode_texts(parent, generic[i : i + 64]) for i in range(0, len(generic), 64)]
            )
        self.positives = {
            text: {(p.scene, p.tile_id) for p in split.train_pairs if p.text == text}
            for text in split.trained_queries
        }

    def ranking(self) -> torch.Tensor:
        """Relevant tiles above not-relevant marks and random unmarked tiles."""
        cfg, rng = self.cfg, self.rng
        pairs = [rng.choice(self.split.train_pairs) for _ in range(cfg.pairs_per_step)]
        negatives: list[Tile] = []
        for pair in pairs:
            marked = self.split.train_negatives.get(pair.text, [])
            picks = rng.sample(marked, min(len(marked), cfg.negatives_per_pair // 2))
            while len(picks) < cfg.negatives_per_pair:
                tile = rng.choice(self.pool)
                if tile not in self.positives[pair.text]:
                    picks.append(tile)
            negatives.extend(picks)
        texts = sorted({p.text for p in pairs})
        column = torch.tensor([texts.index(p.text) for p in pairs])
        visual = self.vectors.visual([(p.scene, p.tile_id) for p in pairs] + negatives)
        scores = self.model.scores(visual, self.texts(texts))
        n = len(pairs)
        positive = scores[torch.arange(n), column]
        negative = scores[n:].view(n, cfg.negatives_per_pair, -1)
        negative = negative.gather(2, column.view(n, 1, 1).expand(n, cfg.negatives_per_pair, 1))
        return ranking_loss(positive, negative[..., 0], cfg.margin)

    def distillation(self) -> torch.Tensor:
        """Generic queries keep their caption vectors and their ranking of unmarked tiles."""
        cfg, rng = self.cfg, self.rng
        chosen = rng.sample(range(len(self.generic)), min(cfg.distill_queries, len(self.generic)))
        text = self.texts([self.generic[i] for i in chosen])
        parent_text = self.parent_text[chosen]
        loss = cfg.text_distill * (1 - F.cosine_similarity(text, parent_text, dim=-1)).mean()
        tiles = rng.sample(self.pool, min(cfg.distill_tiles, len(self.pool)))
        if cfg.rank_distill and len(tiles) > 1:
            new = self.model.scores(self.vectors.visual(tiles), text) / cfg.temperature
            with torch.no_grad():
                old = self.parent.scores(self.vectors.visual(tiles, self.parent), parent_text)
                target = F.log_softmax(old / cfg.temperature, dim=0)
            kl = (target.exp() * (target - F.log_softmax(new, dim=0))).sum(0).mean()
            loss = loss + cfg.rank_distill * kl
        return loss


def _replay_loss(
    model: AMFMN, replay: Replay, cfg: FinetuneCfg, rng: random.Random
) -> torch.Tensor:
    """The base training data's triplet loss on a batch of replayed images."""
    n = replay.captions.n_images
    ids = torch.tensor(rng.sample(range(n), min(cfg.replay_batch, n)))
    captions = torch.tensor([rng.choice(list(replay.captions.captions_of(int(i)))) for i in ids])
    visual = encode_taps(model, [t[ids] for t in replay.taps])
    text = encode_texts(model, [replay.captions.captions[int(c)] for c in captions])
    prior = torch.from_numpy(replay.prior.matrix(ids.numpy(), captions.numpy()))
    positives = torch.eye(len(ids), dtype=torch.bool)
    scores = model.scores(visual, text)
    return triplet_loss(scores, positives, dynamic_margin(prior), "hardest")


def finetune(
    workspace: Workspace,
    cfg: FinetuneCfg = FinetuneCfg(),
    progress: Progress | None = None,
    data_root: Path | None = None,
) -> ModelVersion:
    """Train a new version from the active one on the workspace's marks and register it.

    Raises:
        FinetuneError: when the marks give fewer than ``cfg.min_relevant`` training pairs.
        DatasetNotFoundError: when replay or the paper's mR is asked for without datasets.
    """
    report = progress or (lambda *a: None)
    started = time.time()
    torch.manual_seed(cfg.seed)
    registry = ModelRegistry(workspace)
    parent_version = registry.active()
    model, _ = load_checkpoint(parent_version.path)
    parent = copy.deepcopy(model)  # the teacher: stays as the active version is
    plan = finetune_plan(workspace, cfg.holdout_fraction, cfg.min_relevant)
    marks, ready = plan.marks, plan.readiness
    if not ready.ready:
        raise FinetuneError(f"fine-tuning cannot start yet: it needs {ready.missing}")
    split = split_feedback(marks, cfg.holdout_fraction, cfg.min_relevant)
    vectors = TileVectors(workspace, model, cfg.image_tower)
    generic = generic_queries(split, [m.query for m in marks if m.query_kind == "text"])
    limit = cfg.image_pool if cfg.image_tower else cfg.check_tiles
    tiles = check_tiles(vectors, workspace.scene_names(), split, limit, cfg.seed)
    marked = split.train_tiles | {t for judged in split.heldout.values() for t in judged}
    pool = [t for t in tiles if t not in marked]
    report("measuring the current model", 0, cfg.steps, 0.0)
    with torch.no_grad():
        before = measure(model, vectors.visual(tiles), tiles, split, generic)
        if cfg.eval_images:
            before["base_mR"] = base_metrics(model, cfg.eval_images, data_root)
    replay = (
        build_replay(model, cfg.replay_images, cfg.seed, data_root) if cfg.replay_images else None
    )
    groups = trainable_parameters(model, cfg, split.trained_queries)
    params = [p for group in groups for p in group["params"]]
    optimizer = torch.optim.Adam(groups)
    step = _Step(model, parent, vectors, split, generic, pool, cfg)
    rng = random.Random(cfg.seed + 1)
    losses = []
    for number in range(cfg.steps):
        model.train()
        loss = step.ranking() + step.distillation() + cfg.adapter_decay * model.adapters.pull()
        if replay is not None:
            loss = loss + cfg.replay_weight * _replay_loss(model, replay, cfg, rng)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 2.0)
        optimizer.step()
        losses.append(loss.item())
        report(
            "fine-tuning", number + 1, cfg.steps, (number + 1) / max(time.time() - started, 1e-9)
        )
    model.eval()
    report("measuring the new model", cfg.steps, cfg.steps, 0.0)
    with torch.no_grad():
        after = measure(model, vectors.visual(tiles), tiles, split, generic)
        if cfg.eval_images:
            after["base_mR"] = base_metrics(model, cfg.eval_images, data_root)
    kept = overlaps(before.pop("top10"), after.pop("top10"))
    data = {
        "pairs": len(split.train_pairs),
        "negatives": sum(len(v) for v in split.train_negatives.values()),
        "heldout": ready.heldout,
        "heldout_queries": len(split.heldout),
        "scenes": sorted({p.scene for p in split.train_pairs}),
        "unattached_marks": len(plan.unattached),
        "image_tower": image_tower_fingerprint(model),
        "recipe": cfg.recipe,
        "adapters": list(model.adapters.queries),
        "cfg": asdict(cfg),
    }
    metrics = {
        "before": before,
        "after": after,
        "top10_overlap": kept,
        "top10_overlap_mean": float(np.mean(list(kept.values()))) if kept else 1.0,
        "checked_tiles": len(tiles),
        "final_loss": float(np.mean(losses[-10:])) if losses else 0.0,
        "seconds": round(time.time() - started, 1),
    }
    out = workspace.models_dir / f"candidate-{uuid.uuid4().hex[:12]}.safetensors"  # one per run
    try:
        save_checkpoint(model, out, {"finetune": data, "parent": parent_version.version}, metrics)
        return registry.register(
            out, parent_version.version, note="fine-tuned on feedback", data=data, metrics=metrics
        )
    finally:
        out.unlink(missing_ok=True)
