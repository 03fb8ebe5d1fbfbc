"""``python -m core``: one subcommand per stage, each a thin wrapper over a library call.

Errors SceneSeek raises on purpose print as one plain line (exit 2); anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ConfigError, SceneSeekError
from core.workspace import Workspace
from tiles.errors import TilesError

if TYPE_CHECKING:
    import numpy as np

    from tiles import TileReader, TilingConfig

Command = Callable[[argparse.Namespace], int]


def _default_device() -> str:
    from core.settings import get_settings

    return get_settings().device


def _add_engine(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        choices=["onnx", "torch"],
        help="what runs the model: default SCENESEEK_ENGINE, else onnx on a CPU (about 4x "
        "faster there), torch on CUDA",
    )


def _csv(kind: Callable[[str], object]) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        return tuple(kind(x) for x in text.split(",") if x.strip())

    return parse


def _configure_train(p: argparse.ArgumentParser) -> None:
    from core.train.config import TrainCfg

    d = TrainCfg()
    p.add_argument(
        "--dataset", type=_csv(str), default=d.datasets, help="comma-separated, e.g. rsicd,ucm"
    )
    p.add_argument("--out", type=Path, required=True, help="run folder (rerun to resume)")
    p.add_argument("--model", default=d.model, help="architecture name (see `models`)")
    p.add_argument("--attention", choices=["soft", "fusion", "similarity"])
    p.add_argument("--text", choices=["minilm", "bigru"], help="text encoder")
    p.add_argument("--trainable-stages", type=int, help="backbone stages to fine-tune (0 = frozen)")
    p.add_argument("--text-layers", type=int, help="MiniLM top layers to fine-tune")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--decay-every", type=int, default=d.decay_every)
    p.add_argument("--margin", choices=["dynamic", "fixed"], default=d.margin)
    p.add_argument("--fixed-margin", type=float, default=d.fixed_margin)
    p.add_argument("--negatives", choices=["sum", "hardest"], default=d.negatives)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--device", default=_default_device(), help="auto, cpu or cuda")
    p.add_argument("--cache", type=Path, help="feature cache folder (default: next to --out)")


def _run_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from core.factory import get_model_config
    from core.train.config import TrainCfg
    from core.train.trainer import Trainer

    cfg = TrainCfg(
        datasets=args.dataset,
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        decay_every=args.decay_every,
        margin=args.margin,
        fixed_margin=args.fixed_margin,
        negatives=args.negatives,
        seed=args.seed,
        workers=args.workers,
    )
    model_cfg = get_model_config(args.model)
    if args.attention:
        model_cfg = replace(model_cfg, attention=args.attention)
    if args.text:
        model_cfg = replace(model_cfg, text=replace(model_cfg.text, encoder=args.text))
    if args.text_layers is not None:
        model_cfg = replace(
            model_cfg, text=replace(model_cfg.text, trainable_layers=args.text_layers)
        )
    if args.trainable_stages is not None:
        model_cfg = replace(
            model_cfg, vision=replace(model_cfg.vision, trainable_stages=args.trainable_stages)
        )
    best = Trainer(cfg, args.out, model_cfg, device=args.device, cache_root=args.cache).fit()
    print(f"best checkpoint: {best}")
    return 0


def _configure_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=["rsicd", "ucm", "rsitmd", "sydney"])
    p.add_argument("--split", default="test")
    p.add_argument("--checkpoint", required=True, help="a .safetensors file or a registry name")
    p.add_argument("--device", default=_default_device())
    _add_engine(p)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def _run_evaluate(args: argparse.Namespace) -> int:
    from core.eval.evaluate import evaluate_checkpoint
    from core.registry import resolve_checkpoint

    report = evaluate_checkpoint(
        resolve_checkpoint(args.checkpoint),
        args.dataset,
        args.split,
        device=args.device,
        workers=args.workers,
        progress=not args.json,
        engine=args.engine,
    )
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        m = report.metrics
        print(
            f"{report.dataset}/{report.split}: "
            f"{report.n_images} images, {report.n_captions} captions"
        )
        print("i2t R@1 {r1:.2f}  R@5 {r5:.2f}  R@10 {r10:.2f}".format(**m.i2t))
        print("t2i R@1 {r1:.2f}  R@5 {r5:.2f}  R@10 {r10:.2f}".format(**m.t2i))
        print(f"mR {m.mr:.2f}  ({report.seconds:.1f} s)")
    return 0


def _workspace(args: argparse.Namespace) -> Workspace:
    return Workspace(args.workspace) if args.workspace else Workspace.default()


def _add_workspace(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workspace",
        type=Path,
        help="workspace folder (default SCENESEEK_WORKSPACE or ./workspace)",
    )
    p.add_argument(
        "--checkpoint", help="use this checkpoint instead of the workspace's active model"
    )
    p.add_argument("--device", default=_default_device(), help="auto, cpu or cuda")
    _add_engine(p)


def _configure_ingest(p: argparse.ArgumentParser) -> None:
    p.add_argument("scene", type=Path, help="GeoTIFF to ingest")
    _add_workspace(p)
    p.add_argument("--name", help="scene name (default: from the file name)")
    sizes = p.add_mutually_exclusive_group()
    sizes.add_argument(
        "--tile-size", type=_csv(int), help="tile sides in pixels, e.g. 256,512,1024"
    )
    sizes.add_argument("--tile-metres", type=_csv(float), help="tile sides in metres on the ground")
    p.add_argument(
        "--overlap", type=float, help="shared tile fraction; default 0.5 (half-tile shift)"
    )
    p.add_argument(
        "--min-valid", type=float, help="skip tiles with a smaller valid fraction; default 0.5"
    )
    p.add_argument("--bands", type=_csv(int), help="1-based RGB bands, e.g. 3,2,1")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2, help="tile-reading processes")
    p.add_argument("--dask", help="embed on Dask: tcp://scheduler:8786, or local:N workers")
    p.add_argument(
        "--shared-stages",
        type=int,
        default=0,
        choices=range(6),
        metavar="N",
        help="run the first N (1-5) backbone stages once per block of overlapping tiles: "
        "1.7x (N=1) to 2.9x (N=5) faster, vectors a little different (docs/BENCHMARKS.md); "
        "default 0, every tile on its own",
    )


def _tiling(args: argparse.Namespace) -> TilingConfig:
    from tiles import TilingConfig

    d = TilingConfig()
    return TilingConfig(
        sizes=args.tile_metres or args.tile_size or d.sizes,
        size_unit="m" if args.tile_metres else "px",
        overlap=d.overlap if args.overlap is None else args.overlap,
        min_valid=d.min_valid if args.min_valid is None else args.min_valid,
        bands=args.bands,
    )


def _run_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core.embed.mapper import TileEmbedder
    from core.engine import load_engine_model
    from core.ingest import IngestOptions, ingest

    ws = _workspace(args)
    loaded = load_engine_model(ws, args.checkpoint, args.device, args.engine)
    if args.dask and args.shared_stages:
        raise ConfigError("--shared-stages runs in this process; leave it out with --dask")
    options = IngestOptions(
        tiling=_tiling(args),
        batch_size=args.batch_size,
        workers=args.workers,
        shared_stages=args.shared_stages,
    )
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int, rate: float) -> None:
        if stage != "embedding":
            print(f"{stage}...", file=sys.stderr)
            return
        bar = bars.setdefault(stage, tqdm(total=total, desc="embedding", unit="tile", initial=done))
        bar.update(done - bar.n)
        bar.set_postfix_str(f"{rate:.1f} tiles/s")

    embedder, factory = TileEmbedder(loaded.model, loaded.device, loaded.towers), None
    if args.dask:
        from core.distributed import DaskParts, connect

        client = connect(args.dask)
        names = embedder.names

        def factory(reader: TileReader, windows: np.ndarray) -> DaskParts:
            return DaskParts(client, str(loaded.path), names, reader, windows, args.batch_size)

    result = ingest(args.scene, ws, embedder, loaded.tag, args.name, options, progress, factory)
    for bar in bars.values():
        bar.close()
    if result.skipped:
        print(f"{result.scene}: already ingested with these settings; nothing to do")
    else:
        print(f"{result.scene}: {result.n_tiles} tiles in {result.seconds:.1f} s")
    return 0


def _configure_search(p: argparse.ArgumentParser) -> None:
    _add_workspace(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="a description, e.g. 'a baseball field next to a parking lot'")
    what.add_argument("--image", type=Path, help="an example PNG/JPEG/TIFF")
    what.add_argument("--tile", help="SCENE:TILE_ID of an indexed tile")
    what.add_argument(
        "--queries", type=Path, help="file of text queries, one per line (JSON lines out)"
    )
    p.add_argument("--scene", action="append", default=[], help="restrict to a scene (repeatable)")
    p.add_argument(
        "--scale", type=_csv(int), default=(), help="restrict to tile sizes, e.g. 256,512"
    )
    p.add_argument("--k", type=int, default=10)
    p.add_argument(
        "--exact", action="store_true", help="score every tile instead of index candidates"
    )
    p.add_argument(
        "--no-suppress", action="store_true", help="keep overlapping near-duplicate hits"
    )
    p.add_argument("--format", choices=["json", "geojson", "table", "csv"], default="table")


def _run_search(args: argparse.Namespace) -> int:
    from core.engine import load_engine_model
    from core.errors import QueryError
    from core.search import (
        Filters,
        SearchResources,
        parse_tile_ref,
        search_image,
        search_text,
        search_tile,
    )

    if not 1 <= args.k <= 1000:
        raise QueryError("--k must be between 1 and 1000")
    ws = _workspace(args)
    loaded = load_engine_model(ws, args.checkpoint, args.device, args.engine)
    res = SearchResources.load(ws, loaded.model, loaded.tag, loaded.device, loaded.towers)
    f = Filters(
        scenes=tuple(args.scene),
        scales=tuple(args.scale),
        k=args.k,
        exact=args.exact,
        suppress_overlaps=not args.no_suppress,
    )
    if args.queries:
        lines = [line.strip() for line in Path(args.queries).read_text().splitlines()]
        for line in lines:
            if not line:
                continue
            try:
                print(json.dumps(search_text(res, line, f).to_dict()), flush=True)
            except QueryError as exc:
                print(json.dumps({"query": {"text": line}, "error": str(exc)}), flush=True)
        return 0
    if args.text is not None:
        result = search_text(res, args.text, f)
    elif args.image is not None:
        result = search_image(res, args.image, f)
    else:
        result = search_tile(res, *parse_tile_ref(args.tile), f)
    print(result.render(args.format))
    return 0


def _configure_localize(p: argparse.ArgumentParser) -> None:
    _add_workspace(p)
    p.add_argument("--scene", required=True)
    p.add_argument("--text", required=True)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="heat map GeoTIFF; a .png overlay is written beside it",
    )


def _run_localize(args: argparse.Namespace) -> int:
    from core.engine import load_engine_model
    from core.localize import heat_map, write_heat_png, write_heat_tif
    from core.query import clean_text_query
    from core.search import SearchResources

    ws = _workspace(args)
    text = clean_text_query(args.text)
    loaded = load_engine_model(ws, args.checkpoint, args.device, args.engine)
    res = SearchResources.load(ws, loaded.model, loaded.tag, loaded.device, loaded.towers)
    scene = res.select([args.scene])[0]
    heat = heat_map(scene, res.encode_text(text))
    write_heat_tif(heat, args.out)
    png = args.out.with_suffix(".png")
    bounds = write_heat_png(heat, png)
    print(json.dumps({"tif": str(args.out), "png": str(png), "bounds": list(bounds)}))
    return 0


def _run_models(args: argparse.Namespace) -> int:
    from core.factory import list_models
    from core.registry import list_pretrained

    for name in list_models():
        print(name)
    for name, tag, path in list_pretrained():
        print(f"{name}:{tag}\t{path}")
    return 0


def _add_workspace_only(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workspace",
        type=Path,
        help="workspace folder (default SCENESEEK_WORKSPACE or ./workspace)",
    )


def _configure_job_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("job_id", help="id of a job registered in WS/jobs/")
    _add_workspace_only(p)


def _run_job_run(args: argparse.Namespace) -> int:
    from core.jobs import run_job

    return run_job(_workspace(args), args.job_id)


def _configure_jobs(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True)
    _add_workspace_only(actions.add_parser("list", help="every job, newest first"))
    stop = actions.add_parser("cancel", help="stop a queued or running job")
    stop.add_argument("job_id")
    _add_workspace_only(stop)


def _run_jobs(args: argparse.Namespace) -> int:
    from core.jobs import cancel, list_jobs

    ws = _workspace(args)
    if args.action == "cancel":
        job = cancel(ws, args.job_id)
        print(f"{job.id}: {job.status}")
        return 0
    for job in list_jobs(ws):
        target = job.params.get("name", "")
        progress = f"{job.done}/{job.total}" if job.total else ""
        line = f"{job.id}  {job.kind:<8} {job.status:<9} {target:<24} {job.stage:<10} {progress}"
        print(line.rstrip() + (f"  {job.error}" if job.error else ""))
    return 0


def _configure_feedback(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="marks, newest first")
    listing.add_argument("--query")
    listing.add_argument("--scene")
    export = actions.add_parser("export", help="JSON lines to stdout or --out")
    export.add_argument("--out", type=Path)
    load = actions.add_parser("import", help="merge JSON lines from a file")
    load.add_argument("file", type=Path)
    for action in (listing, export, load):
        _add_workspace_only(action)


def _run_feedback(args: argparse.Namespace) -> int:
    from core.feedback import SQLiteFeedback

    store = SQLiteFeedback(_workspace(args).feedback_db)
    if args.action == "list":
        for m in store.marks(args.query, args.scene):
            extra = f"  {m.caption!r}" if m.caption else ""
            print(
                f"{m.id:>6}  {m.label:<10} {m.scene}:{m.tile_id:<8} {m.query_kind}:{m.query}{extra}"
            )
    elif args.action == "export":
        lines = "".join(line + "\n" for line in store.export_jsonl())
        if args.out:
            args.out.write_text(lines)
        else:
            sys.stdout.write(lines)
    else:
        with open(args.file) as handle:
            print(f"imported {store.import_jsonl(handle)} marks")
    return 0


def _configure_finetune(p: argparse.ArgumentParser) -> None:
    _add_workspace_only(p)
    p.add_argument("--steps", type=int, help="optimisation steps (default 60)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-4)")
    p.add_argument("--guard", type=float, help="max base mR drop allowed to promote (default 2)")
    p.add_argument(
        "--promote", action="store_true", help="make the new version active if it passes"
    )


def _run_finetune(args: argparse.Namespace) -> int:
    from core.finetune import FinetuneCfg, finetune, promote, summary

    ws = _workspace(args)

    def progress(stage: str, done: int, total: int, rate: float) -> None:
        print(f"{stage} {done}/{total}", file=sys.stderr)

    d = FinetuneCfg()
    cfg = FinetuneCfg(
        steps=args.steps or d.steps,
        lr=args.lr or d.lr,
        guard_points=d.guard_points if args.guard is None else args.guard,
    )
    version = finetune(ws, cfg, progress)
    print(json.dumps({"version": version.version, "parent": version.parent, **summary(version)}))
    if args.promote:
        promote(ws, version.version, cfg.guard_points)
        print(f"v{version.version} is active; re-embed scenes with: python -m core ingest ...")
    return 0


def _configure_versions(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="action", required=True)
    _add_workspace_only(actions.add_parser("list", help="registered model versions"))
    for name, text in (("promote", "make a version active"), ("rollback", "return to a version")):
        action = actions.add_parser(name, help=text)
        action.add_argument("version", type=int)
        action.add_argument("--guard", type=float, default=2.0)
        _add_workspace_only(action)


def _run_versions(args: argparse.Namespace) -> int:
    from core.finetune import promote
    from core.versions import ModelRegistry

    ws = _workspace(args)
    registry = ModelRegistry(ws)
    if args.action == "list":
        active = registry.active().version
        for v in registry.versions():
            flag = "*" if v.version == active else " "
            print(f"{flag} {v.label:<16} parent={v.parent} {v.note}")
        return 0
    chosen = promote(ws, args.version, args.guard if args.action == "promote" else float("inf"))
    print(f"active model: {chosen.label}")
    return 0


def _configure_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint to export (.safetensors or a registry name)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--half", action="store_true", help="store weights as float16 (for shipping)")


def _run_export(args: argparse.Namespace) -> int:
    import torch

    from core.checkpoint import file_sha256, load_checkpoint, save_checkpoint
    from core.registry import resolve_checkpoint

    model, info = load_checkpoint(resolve_checkpoint(args.checkpoint))
    dtype = torch.float16 if args.half else None
    save_checkpoint(model, args.out, info.training, info.metrics, dtype=dtype)
    size = args.out.stat().st_size / 2**20
    print(
        json.dumps({"path": str(args.out), "sha256": file_sha256(args.out), "mib": round(size, 2)})
    )
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command, str]] = {
    "train": (_configure_train, _run_train, "train a model (resumable)"),
    "evaluate": (_configure_evaluate, _run_evaluate, "R@1/5/10 and mR on a test split"),
    "ingest": (_configure_ingest, _run_ingest, "tile, embed and index a GeoTIFF (resumable)"),
    "search": (_configure_search, _run_search, "search ingested scenes by text, image or tile"),
    "localize": (
        _configure_localize,
        _run_localize,
        "heat map of where a description fits a scene",
    ),
    "models": (lambda p: None, _run_models, "list architectures and shipped weights"),
    "export": (_configure_export, _run_export, "re-save a checkpoint, e.g. as float16 to ship"),
    "job-run": (_configure_job_run, _run_job_run, "run a registered background job (internal)"),
    "jobs": (_configure_jobs, _run_jobs, "list or cancel background jobs"),
    "feedback": (_configure_feedback, _run_feedback, "list, export or import analysts' marks"),
    "finetune": (_configure_finetune, _run_finetune, "fine-tune the active model on the marks"),
    "versions": (_configure_versions, _run_versions, "list, promote or roll back model versions"),
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser; exposed for tests and docs."""
    parser = argparse.ArgumentParser(prog="python -m core", description="SceneSeek engine")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (configure, _, help_text) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m core``."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except (SceneSeekError, TilesError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
