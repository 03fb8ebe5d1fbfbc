"""The fine-tuning loop: train a new version from the active one on the workspace's marks.

Training pairs come from the feedback store (see ``marks``); each step also replays a batch
of the base training data (see ``replay``) with the usual dynamic-margin triplet loss, so the
model does not forget what it knew. The new model is measured before and after (see
``guard``) and registered as a version.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from core.errors import FinetuneError
from core.learn.finetune.config import FinetuneCfg, Progress
from core.learn.finetune.features import TileFeatures, encode_taps, encode_texts
from core.learn.finetune.guard import (
    base_metrics,
    heldout_precision,
)
from core.learn.finetune.marks import split_feedback
from core.learn.finetune.replay import build_replay
from core.learn.train.loss import dynamic_margin, ranking_loss, triplet_loss
from core.model.checkpoint import load_checkpoint, save_checkpoint
from core.model.versions import ModelRegistry, ModelVersion
from core.store.feedback import SQLiteFeedback
from core.store.workspace import Workspace


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
        visual = encode_taps(model, features.taps(tiles))
        text = encode_texts(model, [p.text for p in pairs])
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
        replay_visual = encode_taps(model, [t[ids] for t in replay.taps])
        replay_text = encode_texts(model, [replay.captions.captions[int(c)] for c in caption_ids])
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
    out = workspace.models_dir / f"candidate-{uuid.uuid4().hex[:12]}.safetensors"  # one per run
    try:
        save_checkpoint(model, out, {"finetune": data, "parent": parent.version}, metrics)
        return registry.register(
            out, parent.version, note="fine-tuned on feedback", data=data, metrics=metrics
        )
    finally:
        out.unlink(missing_ok=True)
