"""App response time on a large workspace: from pressing Enter to numbered hits on the map.

The workspace holds one generated GeoTIFF of real UCM images (``tests/tiles/large_scene.py``)
sized so that its default three-scale catalog has at least ``--tiles`` tiles. It goes through
the real ingest pipeline (``core.ingest.pipeline``: catalog, quicklook, both annoy indexes, manifest)
with one change: embedding 100k tiles takes about an hour on this CPU, so the tile vectors
come from ``bench.synthetic`` instead of the model. The workspace is kept, so later runs skip
building it.

Then the app is served (``streamlit run app/Home.py``) and driven in headless Chromium: for
each query, type it, press Enter and time until the map shows ``k`` numbered hits that differ
from the previous query's. The first query of a fresh server also loads the model and the
indexes, so it is reported apart from the rest. The engine's own time for the same queries
(``core.search.scenes.search_text``, no browser) is printed beside it. Prints markdown tables.

    python -m bench.bench_app --tiles 100000 --queries 20
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from bench.browser import CHROMIUM, CHROMIUM_ARGS, map_frame, serve_app
from bench.large_scene import make_large_scene
from bench.synthetic import mixed_vectors, real_vectors
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.runner import Part
from core.ingest.pipeline import ingest
from core.learn.data.sources import load_dataset
from core.model.loading import load_model
from core.search.ranking import Filters, search_text
from core.search.scenes import SearchResources
from core.store.workspace import Workspace
from tiles import TileReader, TilingConfig
from tiles.grid import stride_for, tile_count

SCENE_NAME = "large"


class SyntheticParts:
    """Embedding parts made of synthetic vectors instead of running the model."""

    def __init__(self, visual: np.ndarray, gates: np.ndarray) -> None:
        self.visual, self.gates = visual, gates
        self.names = ["visual", "gate"]
        self.engine = "synthetic"

    def run(self, ranges: list[tuple[int, int]], on_tiles: Callable[[int], None]) -> Iterator[Part]:
        """Yield each part in order."""
        for start, stop in ranges:
            v, g = mixed_vectors(self.visual, self.gates, start, stop)
            on_tiles(stop - start)
            yield start, stop, {"visual": v, "gate": g}


def scene_side(n_tiles: int, tiling: TilingConfig) -> int:
    """Smallest square side (a multiple of 512 px) whose catalog has ``n_tiles`` tiles."""
    side = 512 * math.ceil(math.sqrt(n_tiles) * 64 / 512)
    while True:
        count = sum(
            tile_count(side, side, int(s), stride_for(int(s), tiling.overlap)) for s in tiling.sizes
        )
        if count >= n_tiles:
            return side
        side += 512


def build_workspace(folder: Path, n_tiles: int, n_images: int) -> Workspace:
    """The benchmark workspace, built once (and resumed if a build was interrupted)."""
    workspace = Workspace(folder / "workspace")
    loaded = load_model(workspace, device="cpu")
    scene_path = folder / "scene.tif"
    if not scene_path.exists():
        side = scene_side(n_tiles, TilingConfig())
        print(f"generating a {side} x {side} px scene ...", flush=True)
        make_large_scene(scene_path, side)
    visual, gates = real_vectors(loaded.model, n_images)

    def parts(reader: TileReader, windows: np.ndarray) -> SyntheticParts:
        return SyntheticParts(visual, gates)

    result = ingest(
        scene_path,
        workspace,
        TileEmbedder(loaded.model, loaded.device),
        loaded.tag,
        name=SCENE_NAME,
        parts_factory=parts,
    )
    print(f"workspace: {result.n_tiles:,} tiles ({'kept' if result.skipped else 'built'})")
    return workspace


def engine_times(workspace: Workspace, queries: list[str], k: int) -> tuple[float, np.ndarray]:
    """Seconds to load the resources, then milliseconds per query through ``search_text``."""
    t0 = time.perf_counter()
    loaded = load_model(workspace, device="cpu")
    resources = SearchResources.load(workspace, loaded.model, loaded.tag, loaded.device)
    load_s = time.perf_counter() - t0
    times = []
    for text in queries:
        t = time.perf_counter()
        search_text(resources, text, Filters(k=k))
        times.append((time.perf_counter() - t) * 1000)
    return load_s, np.array(times)


def hits_signature(frame) -> str:  # noqa: ANN001 - playwright frame
    """What the map shows: every footprint's outline, in order."""
    return "|".join(
        frame.locator("path.leaflet-interactive").evaluate_all(
            "e => e.map(p => p.getAttribute('d'))"
        )
    )


def browser_times(url: str, queries: list[str], k: int, screenshot: Path) -> list[float]:
    """Seconds from Enter to ``k`` new numbered hits on the map, per query."""
    from playwright.sync_api import sync_playwright

    seconds = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(f"{url}/search")
        box = page.get_by_label("Describe what to find")
        box.wait_for(timeout=120_000)
        previous = ""
        for text in queries:
            box.fill(text)
            started = time.perf_counter()
            box.press("Enter")
            deadline = started + 120
            while time.perf_counter() < deadline:
                frame = map_frame(page, timeout_s=120)
                try:
                    shown = hits_signature(frame)
                    if frame.locator(".ss-rank").count() == k and shown != previous:
                        break
                except Exception:  # noqa: BLE001 - the iframe was replaced mid-read
                    pass
                page.wait_for_timeout(20)
            else:
                raise AssertionError(f"no new hits for {text!r}")
            seconds.append(time.perf_counter() - started)
            previous = shown
        page.screenshot(path=screenshot)
        browser.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, default=Path("runs/bench-app"))
    parser.add_argument("--tiles", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    workspace = build_workspace(args.folder, args.tiles, args.images)
    n_tiles = workspace.scene(SCENE_NAME).read_manifest().n_tiles
    queries = list(dict.fromkeys(load_dataset("rsicd", "test").captions))[::7][: args.queries + 1]
    load_s, engine_ms = engine_times(workspace, queries, args.k)
    env = {"SCENESEEK_WORKSPACE": str(workspace.root.resolve())}
    with serve_app(env, args.folder / "streamlit.log") as url:
        seconds = browser_times(url, queries, args.k, args.folder / "search.png")
    first, rest = seconds[0], np.array(seconds[1:]) * 1000
    print(f"\nworkspace: {n_tiles:,} tiles in one scene; {len(rest)} queries after the first\n")
    print("| measure | first query s | p50 ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| browser: Enter to {args.k} hits on the map | {first:.2f} | {np.median(rest):.0f} | "
        f"{np.percentile(rest, 95):.0f} | {rest.max():.0f} |"
    )
    print(
        f"| engine: `search_text` (load {load_s:.1f} s) | — | {np.median(engine_ms[1:]):.0f} | "
        f"{np.percentile(engine_ms[1:], 95):.0f} | {engine_ms[1:].max():.0f} |"
    )


if __name__ == "__main__":
    main()
