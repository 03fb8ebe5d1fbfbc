"""Time of the paper's full evaluation protocol (every image and caption encoded once).

Prints a markdown table with the seconds per dataset for a checkpoint; the paper's code
needs 58.6 s for RSICD test on a Titan RTX GPU.

    python -m bench.bench_eval --checkpoint default --device cpu
"""

from __future__ import annotations

import argparse
import os

import torch

from core.learn.eval.evaluate import evaluate_checkpoint
from core.model.shipped import resolve_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--datasets", default="rsicd,ucm")
    args = parser.parse_args()
    path = resolve_checkpoint(args.checkpoint)
    print(f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, device {args.device}")
    print("| dataset | images | captions | seconds | mR |")
    print("|---|---:|---:|---:|---:|")
    for name in args.datasets.split(","):
        report = evaluate_checkpoint(path, name, "test", device=args.device, progress=False)
        print(
            f"| {name} | {report.n_images} | {report.n_captions} | {report.seconds:.1f} | {report.metrics.mr:.2f} |"
        )


if __name__ == "__main__":
    main()
