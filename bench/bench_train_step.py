"""Cost of one training step for each split between cached and trained parts of the model.

Training runs only what comes after its feature caches (``core.learn.train.features``), so
the split decides the time per step: the image side from the cached stage outputs through
the trained backbone stages, MVSA and the projections; the text side from the cached MiniLM
states through its trained top layers. Both are timed forward and backward on one batch of
real captions (stage outputs are random tensors of the cached shapes: only their shapes
matter for time), side by side in one run.

    python -m bench.bench_train_step [--batch 128] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace

import torch

from core.learn.data.sources import load_dataset
from core.model.factory import create_model, get_model_config

# (trainable backbone stages, trainable MiniLM layers); the first is the shipped recipe.
VARIANTS = ((1, 2), (2, 2), (1, 4), (1, 6), (2, 4))


def _best(step: Callable[[], None], rounds: int) -> float:
    step()  # warm-up: allocations and first-call dispatch
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def step_seconds(stages: int, layers: int, captions: list[str], rounds: int) -> tuple[float, float]:
    """Seconds of the image side and of the text side of one step."""
    base = get_model_config("amfmn-lite0-minilm")
    cfg = replace(
        base,
        vision=replace(base.vision, trainable_stages=stages),
        text=replace(base.text, trainable_layers=layers),
    )
    model = create_model(cfg).train()
    size = cfg.preprocess.image_size
    with torch.no_grad():
        taps = model.backbone.prefix(torch.zeros(1, 3, size, size), model.frozen_stages)
        states, mask = model.text.prefix(model.tokenize(captions))
    batch = [torch.randn(len(captions), *t.shape[1:]) for t in taps]

    def image() -> None:
        feats = model.backbone.forward_from(model.frozen_stages, batch)
        model.visual_from_features(feats).sum().backward()

    def text() -> None:
        model.text.forward_from(states, mask).sum().backward()

    return _best(image, rounds), _best(text, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    captions = list(load_dataset("rsicd", "test").captions[: args.batch])
    rows = [(s, t, *step_seconds(s, t, captions, args.rounds)) for s, t in VARIANTS]
    shipped = rows[0][2] + rows[0][3]
    print(f"batch {args.batch}, best of {args.rounds}, {torch.get_num_threads()} threads\n")
    print(
        "| backbone stages trained | MiniLM layers trained | image side s | text side s "
        "| step s | x shipped |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for stages, layers, image, text in rows:
        print(
            f"| {stages} | {layers} | {image:.2f} | {text:.2f} | {image + text:.2f} "
            f"| {(image + text) / shipped:.2f} |"
        )


if __name__ == "__main__":
    main()
