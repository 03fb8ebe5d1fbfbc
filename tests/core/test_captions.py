from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import DatasetFormatError, DatasetNotFoundError
from core.learn.data.captions import CaptionSet, concat, holdout_split
from core.learn.data.sources import list_datasets, load_dataset, load_karpathy, load_precomp


@pytest.fixture(scope="module")
def rsicd_train(data_root: Path) -> CaptionSet:
    return load_dataset("rsicd", "train", data_root)


@pytest.fixture(scope="module")
def rsicd_test(data_root: Path) -> CaptionSet:
    return load_dataset("rsicd", "test", data_root)


def _write_precomp(
    root: Path, split: str, names: list[str], captions: list[str], images: list[str]
) -> tuple[Path, Path]:
    precomp, images_dir = root / "precomp", root / "images"
    precomp.mkdir(parents=True, exist_ok=True)
    images_dir.mkdir(exist_ok=True)
    (precomp / f"{split}_filename.txt").write_text("".join(f"{n}\n" for n in names))
    (precomp / f"{split}_caps.txt").write_text("".join(f"{c}\n" for c in captions))
    for name in images:
        (images_dir / name).write_bytes(b"")
    return precomp, images_dir


def _caps(prefix: str, n: int = 5) -> list[str]:
    return [f"{prefix} caption {k} ." for k in range(n)]


# --- real data -------------------------------------------------------------------------


def test_rsicd_train_counts(rsicd_train: CaptionSet) -> None:
    assert (rsicd_train.n_images, rsicd_train.n_captions) == (9828, 49140)
    assert rsicd_train.name == "rsicd" and rsicd_train.split == "train"
    assert np.array_equal(rsicd_train.caption_image, np.repeat(np.arange(9828), 5))
    assert rsicd_train.image_path(0).name == "airport_1.jpg"
    assert rsicd_train.image_path(0).is_absolute() and rsicd_train.image_path(0).is_file()
    assert all(c == c.strip() and c for c in rsicd_train.captions)


def test_rsicd_test_groups_per_caption_lines(rsicd_test: CaptionSet) -> None:
    assert (rsicd_test.n_images, rsicd_test.n_captions) == (1093, 5465)
    assert np.array_equal(rsicd_test.caption_image, np.repeat(np.arange(1093), 5))
    assert rsicd_test.image_path(0).name == "airport_348.jpg"
    assert rsicd_test.captions[0] == "the airport is very large ."
    assert len(set(rsicd_test.image_paths)) == 1093


@pytest.mark.parametrize(("split", "n_images"), [("train", 1680), ("val", 210), ("test", 210)])
def test_ucm_splits(data_root: Path, split: str, n_images: int) -> None:
    cs = load_dataset("ucm", split, data_root)
    assert (cs.n_images, cs.n_captions) == (n_images, 5 * n_images)
    assert np.all(np.bincount(cs.caption_image) == 5)
    assert cs.captions[0] == "There is a piece of farmland ."
    assert all(p.is_file() for p in cs.image_paths)


def test_ucm_splits_are_disjoint(data_root: Path) -> None:
    paths = [set(load_dataset("ucm", s, data_root).image_paths) for s in ("train", "val", "test")]
    assert sum(len(p) for p in paths) == len(set.union(*paths)) == 2100


def test_rsitmd_loads_captions_only(data_root: Path) -> None:
    train = load_dataset("rsitmd", "train", data_root, check_images=False)
    # 4,291 images are listed; 4 of them have only blank caption lines and are dropped.
    assert (train.n_images, train.n_captions) == (4287, 21435)
    assert all(train.captions)
    test = load_dataset("rsitmd", "test", data_root, check_images=False)
    assert (test.n_images, test.n_captions) == (452, 2260)


def test_rsitmd_images_not_available(data_root: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="not available"):
        load_dataset("rsitmd", "test", data_root)


def test_sydney_not_installed_is_explained(data_root: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="'sydney' is not installed.*SCENESEEK_DATA"):
        load_dataset("sydney", "train", data_root)


def test_registry_names_and_bad_requests(data_root: Path) -> None:
    assert list_datasets() == ["rsicd", "rsitmd", "sydney", "ucm"]
    with pytest.raises(DatasetNotFoundError, match="unknown dataset 'coco'"):
        load_dataset("coco", "train", data_root)
    with pytest.raises(DatasetNotFoundError, match="no 'val' split.*holdout_split"):
        load_dataset("rsicd", "val", data_root)


def test_data_root_defaults_to_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCENESEEK_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path)):
        load_dataset("rsicd", "test")


# --- CaptionSet operations -------------------------------------------------------------


def test_captions_of_and_subset(rsicd_test: CaptionSet) -> None:
    assert list(rsicd_test.captions_of(2)) == [10, 11, 12, 13, 14]
    sub = rsicd_test.subset([7, 2])
    assert sub.n_images == 2 and sub.image_paths == (
        rsicd_test.image_path(7),
        rsicd_test.image_path(2),
    )
    assert sub.captions == rsicd_test.captions[35:40] + rsicd_test.captions[10:15]
    assert list(sub.caption_image) == [0] * 5 + [1] * 5
    with pytest.raises(ValueError, match="unique"):
        rsicd_test.subset([1, 1])
    with pytest.raises(IndexError):
        rsicd_test.captions_of(1093)


def test_concat_keeps_paths_resolvable(rsicd_test: CaptionSet, data_root: Path) -> None:
    ucm = load_dataset("ucm", "test", data_root)
    both = concat([rsicd_test, ucm])
    assert both.name == "rsicd+ucm" and both.split == "test"
    assert (both.n_images, both.n_captions) == (1093 + 210, 5465 + 1050)
    assert both.image_path(1093) == ucm.image_path(0)
    assert both.captions[5465] == ucm.captions[0]
    assert list(both.captions_of(1093)) == list(range(5465, 5470))
    assert all(p.is_file() for p in both.image_paths)


def test_holdout_split_is_deterministic_and_disjoint(rsicd_train: CaptionSet) -> None:
    fit, held = holdout_split(rsicd_train, fraction=0.1, seed=0)
    assert held.n_images == 983 and fit.n_images == 9828 - 983
    assert held.split == "train-holdout" and fit.split == "train"
    assert not set(fit.image_paths) & set(held.image_paths)
    assert fit.n_captions + held.n_captions == rsicd_train.n_captions
    again, _ = holdout_split(rsicd_train, fraction=0.1, seed=0)
    assert again.image_paths == fit.image_paths
    other, _ = holdout_split(rsicd_train, fraction=0.1, seed=1)
    assert other.image_paths != fit.image_paths
    with pytest.raises(ValueError, match="empty"):
        holdout_split(rsicd_train.subset([0, 1]), fraction=0.1)


def test_caption_set_rejects_uncaptioned_images() -> None:
    with pytest.raises(ValueError, match="no caption"):
        CaptionSet("x", "train", (Path("/a.jpg"), Path("/b.jpg")), ("a",), np.array([0]))


# --- bad inputs ------------------------------------------------------------------------


def test_precomp_per_caption_merges_repeated_names(tmp_path: Path) -> None:
    names = ["a.jpg", "a.jpg", "b.jpg", "a.jpg"]
    precomp, images = _write_precomp(
        tmp_path, "test", names, ["x", "y ", "z", "w"], ["a.jpg", "b.jpg"]
    )
    cs = load_precomp(precomp, images, "test", "tiny")
    assert [p.name for p in cs.image_paths] == ["a.jpg", "b.jpg"]
    assert cs.captions == ("x", "y", "z", "w")
    assert list(cs.caption_image) == [0, 0, 1, 0]


def test_precomp_misaligned_names_files_and_counts(tmp_path: Path) -> None:
    precomp, images = _write_precomp(tmp_path, "train", ["a.jpg", "b.jpg"], _caps("a", 7), [])
    with pytest.raises(DatasetFormatError) as err:
        load_precomp(precomp, images, "train", "tiny")
    message = str(err.value)
    assert "train_caps.txt has 7 lines" in message and "train_filename.txt has 2" in message


def test_precomp_empty_caption_names_line(tmp_path: Path) -> None:
    captions = _caps("a") + _caps("b")
    captions[7] = "   "
    precomp, images = _write_precomp(
        tmp_path, "train", ["a.jpg", "b.jpg"], captions, ["a.jpg", "b.jpg"]
    )
    with pytest.raises(DatasetFormatError, match=r"train_caps\.txt, line 8"):
        load_precomp(precomp, images, "train", "tiny")
    cs = load_precomp(precomp, images, "train", "tiny", skip_empty=True)
    assert cs.n_captions == 9 and list(cs.captions_of(1)) == [5, 6, 7, 8]


def test_precomp_missing_image_is_named(tmp_path: Path) -> None:
    names = ["a.jpg", "b.jpg", "c.jpg"]
    precomp, images = _write_precomp(tmp_path, "test", names, ["x", "y", "z"], ["a.jpg"])
    with pytest.raises(DatasetNotFoundError, match=r"2 of 3 images.*b\.jpg, c\.jpg"):
        load_precomp(precomp, images, "test", "tiny")
    assert load_precomp(precomp, images, "test", "tiny", check_images=False).n_images == 3


def test_precomp_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="test_filename.txt"):
        load_precomp(tmp_path / "nowhere", tmp_path, "test", "tiny")
    precomp, _ = _write_precomp(tmp_path, "test", ["a.jpg"], ["x"], [])
    with pytest.raises(DatasetNotFoundError, match="not available"):
        load_precomp(precomp, tmp_path / "no_images", "test", "tiny")


def test_precomp_not_utf8(tmp_path: Path) -> None:
    precomp, images = _write_precomp(tmp_path, "test", ["a.jpg"], ["x"], ["a.jpg"])
    (precomp / "test_caps.txt").write_bytes(b"\xff\xfe bad\n")
    with pytest.raises(DatasetFormatError, match="UTF-8"):
        load_precomp(precomp, images, "test", "tiny")


def _write_karpathy(path: Path, images: list[dict]) -> Path:
    path.write_text(json.dumps({"images": images, "dataset": "tiny"}))
    return path


def test_karpathy_reads_raw_and_split(tmp_path: Path) -> None:
    entries = [
        {"filename": "1.jpg", "split": "train", "sentences": [{"raw": " A b . ", "tokens": []}]},
        {"filename": "2.jpg", "split": "test", "sentences": [{"raw": "c", "tokens": []}]},
    ]
    path = _write_karpathy(tmp_path / "d.json", entries)
    cs = load_karpathy(path, tmp_path, "train", "tiny", check_images=False)
    assert cs.captions == ("A b .",) and cs.image_path(0) == tmp_path.resolve() / "1.jpg"
    with pytest.raises(DatasetNotFoundError, match="no images in split 'val'.*'test', 'train'"):
        load_karpathy(path, tmp_path, "val", "tiny", check_images=False)


def test_karpathy_empty_caption_names_image(tmp_path: Path) -> None:
    entries = [
        {"filename": "1.jpg", "split": "train", "sentences": [{"raw": "ok"}]},
        {"filename": "2.jpg", "split": "train", "sentences": [{"raw": "ok"}, {"raw": " "}]},
    ]
    path = _write_karpathy(tmp_path / "d.json", entries)
    with pytest.raises(DatasetFormatError, match=r"image #1 \(2\.jpg\), sentence 1"):
        load_karpathy(path, tmp_path, "train", "tiny", check_images=False)


def test_karpathy_malformed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetFormatError, match="not Karpathy-style"):
        load_karpathy(bad, tmp_path, "train", "tiny")
    path = _write_karpathy(tmp_path / "d.json", [{"split": "train", "sentences": []}])
    with pytest.raises(DatasetFormatError, match="image #0 is malformed"):
        load_karpathy(path, tmp_path, "train", "tiny")
    with pytest.raises(DatasetNotFoundError):
        load_karpathy(tmp_path / "missing.json", tmp_path, "train", "tiny")
