"""Fine-tuning proof: precision@10 of the worst-found UCM class query on unmarked tiles.

Builds the labelled UCM mosaic (val + test images, unseen in training), marks 20 tiles for
the query the active model finds worst, fine-tunes with the default settings and prints a
markdown table of precision@10 (unmarked tiles) and base test mR, before and after.

    python -m bench.bench_finetune
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.finetune_check import run_check
from bench.mosaic import make_ucm_mosaic
from core.learn.finetune.config import FinetuneCfg
from core.learn.finetune.guard import guard_violations
from core.store.workspace import Workspace


def main() -> None:
    cfg = FinetuneCfg()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        mosaic = make_ucm_mosaic(Path(tmp) / "ucm_mosaic.tif")
        result = run_check(ws, mosaic, cfg)
    m = result.version.metrics
    marks = f"{result.marked_relevant} relevant + {result.marked_irrelevant} not relevant marks"
    print(f"query {result.query!r}: {marks}, {cfg.steps} steps, {m['seconds']:.0f} s")
    print("| measure | before | after |")
    print("|---|---:|---:|")
    print(f"| precision@10, unmarked tiles | {result.p10_before:.2f} | {result.p10_after:.2f} |")
    for name, before in m["before"]["base_mR"].items():
        after = m["after"]["base_mR"][name]
        print(f"| {name} test mR (first {cfg.eval_images} images) | {before:.2f} | {after:.2f} |")
    reasons = guard_violations(result.version, cfg.guard_points)
    print("promotion guard: " + ("refused: " + "; ".join(reasons) if reasons else "passes"))


if __name__ == "__main__":
    main()
