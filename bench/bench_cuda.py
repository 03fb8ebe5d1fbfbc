"""CUDA path check and throughput: tile embedding and training steps on the GPU.

Measures, on whatever device ``--device`` resolves to:
* forward-only tile embedding (``TileEmbedder``: uint8 tiles -> bf16 autocast on CUDA,
  channels-last) in tiles/s for several batch sizes;
* one training step of the trainer's work (cached-prefix backbone suffix + MVSA + text
  tower + soft scores + dynamic-margin loss + backward + Adam) in ms and images/s.
Uses the BiGRU text tower so it needs no MiniLM files. Prints a markdown table.

    python -m bench.bench_cuda --device cuda
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from core.device import autocast, resolve_device
from core.ingest.embed.mapper import TileEmbedder
from core.learn.train.loss import dynamic_margin, triplet_loss
from core.model.factory import create_model, get_model_config
from core.model.vocab import Vocabulary

CAPTIONS = [
    "many planes are parked next to a long building in an airport .",
    "a baseball field is next to a parking lot with many cars .",
    "some green trees are around a white storage tank .",
    "a river with a bridge passes through a dense residential area .",
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def embed_rate(embedder: TileEmbedder, batch: int, rounds: int) -> float:
    tiles = torch.randint(0, 255, (batch, 256, 256, 3), dtype=torch.uint8)
    if embedder.device.type == "cuda":
        tiles = tiles.pin_memory()
    embedder(tiles)
    _sync(embedder.device)
    start = time.perf_counter()
    for _ in range(rounds):
        embedder(tiles)
    _sync(embedder.device)
    return batch * rounds / (time.perf_counter() - start)


def train_step_ms(model: torch.nn.Module, device: torch.device, batch: int, rounds: int) -> float:
    model.train()
    with torch.no_grad():
        taps = model.backbone.prefix(
            torch.randn(batch, 3, 256, 256, device=device), model.frozen_stages
        )
    tokens = model.tokenize([CAPTIONS[i % len(CAPTIONS)] for i in range(batch)]).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4)
    positives = torch.eye(batch, dtype=torch.bool, device=device)
    margin = dynamic_margin(torch.rand(batch, batch, device=device))

    def step() -> None:
        with autocast(device):
            visual = model.visual_from_features(
                model.backbone.forward_from(model.frozen_stages, taps)
            )
            text = model.encode_text(tokens)
            scores = model.scores(visual.float(), text.float())
        loss = triplet_loss(scores, positives, margin, "hardest")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(rounds):
        step()
    _sync(device)
    return (time.perf_counter() - start) / rounds * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, device {device} ({name})")
    cfg = get_model_config("amfmn-lite0-minilm")
    cfg = replace(cfg, text=replace(cfg.text, encoder="bigru"))
    model = create_model(cfg, vocab=Vocabulary.build(CAPTIONS)).to(device)
    embedder = TileEmbedder(model, device)
    sizes = (64, 256, 512) if device.type == "cuda" else (16, 32)
    print("| batch | embed tiles/s |")
    print("|---:|---:|")
    for batch in sizes:
        print(f"| {batch} | {embed_rate(embedder, batch, args.rounds):.0f} |")
    print("\n| batch | train step ms | train images/s |")
    print("|---:|---:|---:|")
    for batch in (128, 512) if device.type == "cuda" else (128,):
        ms = train_step_ms(model, device, batch, args.rounds)
        print(f"| {batch} | {ms:.1f} | {batch / ms * 1000:.0f} |")
    if device.type == "cuda":
        print(f"\npeak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
