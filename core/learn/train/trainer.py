"""Resumable training of AMFMN on cached frozen features.

Per epoch every training image is seen once with one of its captions drawn at random, so a
batch holds distinct images and captions of the same image are never each other's
negatives. Each epoch ends with validation on images held out of the train split (the test
split is only for the final report), a metrics line in ``metrics.jsonl``, and atomic writes
of ``last.safetensors`` + ``state.pt``; the best epoch is kept as ``best.safetensors``.
Rerunning the same command after a kill resumes from the last finished epoch.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from core.device import autocast, resolve_device
from core.errors import ConfigError
from core.learn.data.captions import CaptionSet, concat, holdout_split
from core.learn.data.sources import load_dataset
from core.learn.eval.metrics import RetrievalMetrics, retrieval_metrics
from core.learn.train.config import TrainCfg
from core.learn.train.features import (
    ImageFeatureCache,
    TextFeatureCache,
    image_cache,
    text_cache,
    turn,
)
from core.learn.train.loss import dynamic_margin, triplet_loss
from core.learn.train.prior import PriorSimilarity
from core.model.amfmn import AMFMN
from core.model.checkpoint import save_checkpoint, trained_state
from core.model.config import AMFMNCfg
from core.model.factory import create_model
from core.model.vocab import Vocabulary
from tiles.atomic import atomic_path


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def dihedral(taps: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """Rotate by a random multiple of 90 degrees and maybe flip, per sample, all taps alike.

    The cached features come from a few views of each image; this feature-space augmentation
    stands in for the paper's random rotations of the image.
    """
    codes = torch.randint(0, 8, (taps[0].shape[0],), generator=generator)
    return [turn(t, codes) for t in taps]


def _without_epochs(run: dict[str, Any]) -> dict[str, Any]:
    return {**run, "train": {k: v for k, v in run["train"].items() if k != "epochs"}}


class Trainer:
    """Owns one run folder; ``fit`` trains or resumes it to the configured number of epochs."""

    def __init__(
        self,
        cfg: TrainCfg,
        out: Path,
        model_cfg: AMFMNCfg | None = None,
        device: str = "auto",
        cache_root: Path | None = None,
        data_root: Path | None = None,
    ) -> None:
        from core.model.factory import get_model_config

        self.cfg = cfg
        self.out = Path(out)
        self.model_cfg = model_cfg or get_model_config(cfg.model)
        self.device = resolve_device(device)
        self.cache_root = cache_root or self.out.parent / "cache"
        self.data_root = data_root
        self._check_run_config()

    def _check_run_config(self) -> None:
        """Refuse to resume with other settings, except a number of epochs not below those done.

        The schedule does not depend on the total, so a finished run can be extended.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        run = json.loads(
            json.dumps({"train": self.cfg.to_dict(), "model": self.model_cfg.to_dict()})
        )
        path = self.out / "run.json"
        if path.exists():
            previous = json.loads(path.read_text())
            if _without_epochs(previous) != _without_epochs(run):
                raise ConfigError(
                    f"{self.out} holds a run with other settings; "
                    "use a new --out or the same options (only --epochs may change)"
                )
            if previous == run:
                return
            done = self._finished_epochs()
            if self.cfg.epochs < done:
                raise ConfigError(
                    f"{self.out} has already trained {done} epochs; --epochs {self.cfg.epochs} "
                    "cannot undo them (use a new --out)"
                )
            print(f"{self.out}: epochs {previous['train']['epochs']} -> {self.cfg.epochs}")
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(run, indent=2))

    def _finished_epochs(self) -> int:
        state_path = self.out / "state.pt"
        if not state_path.exists():
            return 0
        return int(torch.load(state_path, map_location="cpu", weights_only=True)["epoch"]) + 1

    def _data(self) -> tuple[CaptionSet, CaptionSet]:
        sets = [load_dataset(name, "train", self.data_root) for name in self.cfg.datasets]
        joined = concat(sets, name="+".join(self.cfg.datasets)) if len(sets) > 1 else sets[0]
        return holdout_split(joined, self.cfg.val_fraction, self.cfg.seed)

    def _optimizer(self, model: AMFMN) -> torch.optim.Optimizer:
        pretrained, fresh = [], []
        for name, module in model.trained_modules().items():
            group = pretrained if name.startswith(("backbone", "text.bert")) else fresh
            group.extend(p for p in module.parameters() if p.requires_grad)
        groups = [{"params": fresh, "lr": self.cfg.lr}]
        if pretrained:
            groups.append({"params": pretrained, "lr": self.cfg.lr * self.cfg.pretrained_lr_scale})
        return torch.optim.Adam(groups, weight_decay=self.cfg.weight_decay)

    def fit(self) -> Path:
        """Train (or resume) and return the path of the best checkpoint."""
        _seed_all(self.cfg.seed)
        started = time.time()
        train_set, val_set = self._data()
        vocab = (
            Vocabulary.build(train_set.captions) if self.model_cfg.text.encoder == "bigru" else None
        )
        model = create_model(self.model_cfg, vocab=vocab).to(self.device)
        feats = {
            "train": (
                image_cache(
                    model,
                    train_set,
                    self.cache_root,
                    self.device,
                    workers=self.cfg.workers,
                    views=self.cfg.views,
                ),
                text_cache(model, train_set, self.cache_root, self.device),
            ),
            "val": (
                image_cache(model, val_set, self.cache_root, self.device, workers=self.cfg.workers),
                text_cache(model, val_set, self.cache_root, self.device),
            ),
        }
        prior = PriorSimilarity.from_caption_set(train_set)
        optimizer = self._optimizer(model)
        scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer, self.cfg.decay_every, self.cfg.lr_decay
        )
        state_path = self.out / "state.pt"
        state: dict[str, Any] = {"epoch": -1, "best": -1.0, "elapsed": 0.0, "log": []}
        if state_path.exists():
            state = torch.load(state_path, map_location="cpu", weights_only=True)
            model.load_state_dict(state["model"], strict=False)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            print(f"resuming {self.out} after epoch {state['epoch'] + 1}")
            if state["log"]:
                last_is_best = state["log"][-1]["val"]["mR"] >= state["best"]
                self._publish(model, state, train_set, val_set, last_is_best)
        else:
            state["setup"] = time.time() - started
        for epoch in range(state["epoch"] + 1, self.cfg.epochs):
            t0 = time.time()
            loss = self._epoch(model, train_set, feats["train"], prior, optimizer, epoch)
            scheduler.step()
            metrics = self.validate(model, val_set, *feats["val"])
            state["elapsed"] += time.time() - t0
            state["log"].append(
                {
                    "epoch": epoch + 1,
                    "loss": loss,
                    "val": metrics.to_dict(),
                    "lr": optimizer.param_groups[0]["lr"],
                    "epoch_s": round(time.time() - t0, 1),
                }
            )
            improved = metrics.mr > state["best"]
            state.update(
                epoch=epoch,
                best=max(state["best"], metrics.mr),
                model=trained_state(model),
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(),
            )
            # state.pt is the single source of truth for resuming; the files after it are
            # derived from it and rewritten if a kill lands between them.
            _atomic_torch_save(state, state_path)
            self._publish(model, state, train_set, val_set, improved)
            print(f"epoch {epoch + 1}/{self.cfg.epochs} loss {loss:.4f} val mR {metrics.mr:.2f}")
        return self.out / "best.safetensors"

    def _publish(
        self,
        model: AMFMN,
        state: dict[str, Any],
        train_set: CaptionSet,
        val_set: CaptionSet,
        improved: bool,
    ) -> None:
        """Write the epoch's checkpoints and the metrics log from the saved state."""
        val = state["log"][-1]["val"]
        training = {
            "train": self.cfg.to_dict(),
            "epoch": state["epoch"] + 1,
            "train_images": train_set.n_images,
            "val_images": val_set.n_images,
            "device": str(self.device),
            "setup_seconds": round(state["setup"], 1),
            "train_seconds": round(state["elapsed"], 1),
        }
        save_checkpoint(model, self.out / "last.safetensors", training, {"val": val})
        if improved:
            save_checkpoint(model, self.out / "best.safetensors", training, {"val": val})
        with atomic_path(self.out / "metrics.jsonl") as tmp:
            Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in state["log"]))

    def _text(
        self, model: AMFMN, captions: CaptionSet, cache: TextFeatureCache | None, ids: torch.Tensor
    ) -> torch.Tensor:
        if cache is None:
            tokens = model.tokenize([captions.captions[i] for i in ids.tolist()]).to(self.device)
            return model.text.forward_from(tokens.ids, tokens.mask)
        states, mask = cache.batch(ids)
        return model.text.forward_from(states.to(self.device), mask.to(self.device))

    def _visual(self, model: AMFMN, taps: list[torch.Tensor]) -> torch.Tensor:
        return model.visual_from_features(model.backbone.forward_from(model.frozen_stages, taps))

    def _epoch(
        self,
        model: AMFMN,
        train_set: CaptionSet,
        feats: tuple[ImageFeatureCache, TextFeatureCache | None],
        prior: PriorSimilarity,
        optimizer: torch.optim.Optimizer,
        epoch: int,
    ) -> float:
        model.train()
        torch.manual_seed(self.cfg.seed * 1000 + epoch)  # dropout draws, reproducible on resume
        generator = torch.Generator().manual_seed(self.cfg.seed * 1000 + epoch)
        order = torch.randperm(train_set.n_images, generator=generator)
        caption_image = torch.tensor(train_set.caption_image)
        per_image = [torch.from_numpy(train_set.captions_of(i)) for i in range(train_set.n_images)]
        negatives = "sum" if epoch < self.cfg.sum_warmup_epochs else self.cfg.negatives
        params = [p for g in optimizer.param_groups for p in g["params"]]
        total, steps = 0.0, 0
        batches = order.split(self.cfg.batch_size)
        for images in tqdm(batches, desc=f"epoch {epoch + 1}", unit="batch", leave=False):
            if len(images) < 2:
                continue
            picks = torch.randint(0, 1 << 30, (len(images),), generator=generator)
            captions = torch.stack(
                [
                    per_image[i][p % len(per_image[i])]
                    for i, p in zip(images.tolist(), picks.tolist(), strict=True)
                ]
            )
            views = None
            if self.cfg.augment and feats[0].views > 1:
                views = torch.randint(0, feats[0].views, (len(images),), generator=generator)
            taps = feats[0].batch(images, self.device, views)
            if self.cfg.augment and self.cfg.feature_turns:
                taps = dihedral(taps, generator)
            with autocast(self.device):
                visual = self._visual(model, taps)
                text = self._text(model, train_set, feats[1], captions)
                scores = model.scores(visual.float(), text.float())
            positives = (caption_image[captions][None, :] == images[:, None]).to(self.device)
            if self.cfg.margin == "dynamic":
                s = torch.from_numpy(prior.matrix(images.numpy(), captions.numpy())).to(self.device)
                margin: torch.Tensor | float = dynamic_margin(s, self.cfg.gamma, self.cfg.beta)
            else:
                margin = self.cfg.fixed_margin
            loss = triplet_loss(scores, positives, margin, negatives)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
            optimizer.step()
            total += loss.item()
            steps += 1
        return total / max(1, steps)

    @torch.inference_mode()
    def validate(
        self,
        model: AMFMN,
        val_set: CaptionSet,
        images: ImageFeatureCache,
        text: TextFeatureCache | None,
    ) -> RetrievalMetrics:
        """Retrieval metrics on the held-out images, from the cached features."""
        model.eval()
        index = torch.arange(val_set.n_images)
        with autocast(self.device):
            visual = torch.cat(
                [
                    self._visual(model, images.batch(b, self.device)).float()
                    for b in index.split(256)
                ]
            )
            ids = torch.arange(val_set.n_captions)
            captions = torch.cat(
                [self._text(model, val_set, text, b).float() for b in ids.split(512)]
            )
            scores = model.scores(visual, captions).float().cpu().numpy()
        return retrieval_metrics(scores, val_set.caption_image)
