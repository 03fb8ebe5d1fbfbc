"""Every ``python -m bench.bench_*`` script still runs end to end, at tiny sizes.

Benchmarks are run rarely, so a change elsewhere can break one unnoticed until the day its
numbers are needed. Each script found on disk runs here with the sizes below (the real code
paths, only smaller), in a fresh process, within 60 s; a new script fails until it is given
tiny sizes here or a reason to skip. Times on the 2-core development VM: docs/BENCHMARKS.md.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
BENCHES = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
LIMIT_S = 60

SKIPPED = {
    "bench_cuda": "needs a CUDA GPU (bench/device_check.sh runs it on a lent GPU machine)",
}

# ``{tmp}`` is the test's own folder, ``{data}`` the shared data (SCENESEEK_DATA).
TINY_ARGS = {
    "bench_aoi": ["--tiles", "2000", "--queries", "2", "--images", "40"],
    "bench_app": [
        "--folder",
        "{tmp}/app",
        "--tiles",
        "200",
        "--queries",
        "2",
        "--images",
        "40",
        "--k",
        "3",
    ],
    "bench_blocks": ["--size", "1024", "--region", "512", "--rounds", "1", "--budgets", "16"],
    "bench_change": ["--sizes", "2000", "--rounds", "1", "--images", "40"],
    "bench_eval": ["--datasets", "ucm", "--images", "40"],
    "bench_finetune": ["promotion", "--tiles", "2000", "--images", "40"],
    "bench_ingest": [
        "--size",
        "1024",
        "--tiles",
        "16",
        "--rounds",
        "1",
        "--batch-size",
        "8",
        "--workers",
        "0",
    ],
    "bench_ingest_profile": [
        "--size",
        "768",
        "--tiles",
        "16",
        "--workers",
        "0",
        "--threads",
        "1",
        "--rounds",
        "1",
    ],
    "bench_memory": [
        "--tiles",
        "2000",
        "--scenes",
        "2",
        "--queries",
        "2",
        "--trees",
        "8",
        "--images",
        "40",
    ],
    "bench_onnx": [
        "--size",
        "768",
        "--tiles",
        "8",
        "--batches",
        "8",
        "--rounds",
        "1",
        "--queries",
        "3",
        "--eval",
        "",
    ],
    "bench_query": ["--sizes", "2000", "--queries", "2", "--images", "40"],
    "bench_refine": ["--classes", "beach,forest,harbor"],
    "bench_remote": ["1024"],  # at 512 px the one block spans the width: a strip
    "bench_scene_recall": ["--images", "60"],
    "bench_shards": [
        "--tiles",
        "2000",
        "--scenes",
        "2",
        "--queries",
        "2",
        "--workers",
        "1",
        "--images",
        "40",
    ],
    "bench_shared": [
        "--stages",
        "1",
        "--rounds",
        "1",
        "--scenes",
        "{data}/scenes/naip_m_4208701_ne_16_060_20200902_crop.tif",
    ],
    "bench_tiles": [
        "--scene",
        "{tmp}/scene.tif",
        "--size",
        "1024",
        "--tiles",
        "20",
        "--random",
        "10",
        "--workers",
        "1",
    ],
    "bench_train_step": ["--batch", "8", "--rounds", "1"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHES)
def test_bench_runs_at_tiny_size(name: str, tmp_path: Path) -> None:
    if name in SKIPPED:
        pytest.skip(SKIPPED[name])
    assert name in TINY_ARGS, f"bench/{name}.py is new: give it tiny sizes in TINY_ARGS"
    data = str(get_settings().data_root)
    args = [a.replace("{tmp}", str(tmp_path)).replace("{data}", data) for a in TINY_ARGS[name]]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    bench = subprocess.Popen(
        [sys.executable, "-m", f"bench.{name}", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its servers and workers go with it on a timeout
    )
    try:
        out, err = bench.communicate(timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(bench.pid, signal.SIGKILL)
        out, err = bench.communicate()
        pytest.fail(f"bench.{name} ran past {LIMIT_S} s:\n{out[-2000:]}{err[-2000:]}")
    assert bench.returncode == 0, out[-2000:] + err[-4000:]
    assert "|" in out, "no table printed"
