"""Time of the paper's full evaluation protocol (every image and caption encoded once).

Prints a markdown table with the seconds per dataset for a checkpoint; the paper's code
needs 58.6 s for RSICD test on a Titan RTX GPU.

    python -m bench.bench_eval --checkpoint default --device cpu [--images 50]
"""

from __future__ import annotations

import argparse
import os

import torch

from core.learn.data.sources import load_dataset
from core.learn.eval.evaluate import evaluate
from core.model.checkpoint import load_checkpoint
from core.model.shipped import resolve_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--datasets", default="rsicd,ucm")
    parser.add_argument("--images", type=int, help="first N test images only (default: all)")
    args = parser.parse_args()
    model, _ = load_checkpoint(resolve_checkpoint(args.checkpoint))
    print(f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, device {args.device}")
    print("| dataset | images | captions | seconds | mR |")
    print("|---|---:|---:|---:|---:|")
    for name in args.datasets.split(","):
        captions = load_dataset(name, "test")
        if args.images:
            captions = captions.subset(range(min(args.images, captions.n_images)))
        report = evaluate(model, captions, args.device, progress=False)
        print(
            f"| {name} | {report.n_images} | {report.n_captions} | {report.seconds:.1f} | {report.metrics.mr:.2f} |"
        )


if __name__ == "__main__":
    main()
