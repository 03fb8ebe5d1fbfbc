"""Pair folders go with the scenes they were computed from."""

from __future__ import annotations

from pathlib import Path

from core.store.pairs import PairManifest, delete_pairs_of, pair_dir
from core.store.workspace import Workspace


def make_pair(ws: Workspace, before: str, after: str, manifest: bool = True) -> Path:
    pair = pair_dir(ws, before, after)
    pair.embeddings.mkdir(parents=True)
    if manifest:
        PairManifest(before, after, status="ready").save(pair.manifest)
    return pair.root


def test_deleting_a_scene_removes_its_pairs_only(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    kept = make_pair(ws, "x", "a__b")  # names with the separator: the manifest decides
    gone = [make_pair(ws, "y__a", "b"), make_pair(ws, "b", "c", manifest=False)]
    assert delete_pairs_of(ws, "b") == ["b__c", "y__a__b"]
    assert kept.is_dir() and not any(p.exists() for p in gone)
    assert delete_pairs_of(ws, "c") == []


def test_an_unfinished_pair_goes_with_either_side(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    make_pair(ws, "early", "late", manifest=False)
    assert delete_pairs_of(ws, "late") == ["early__late"]
    assert delete_pairs_of(Workspace(tmp_path / "empty"), "late") == []
