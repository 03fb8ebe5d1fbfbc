from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from core.errors import ConfigError, ImageReadError
from core.learn.data.loader import CaptionImageDataset, ImageDataset
from core.learn.data.sources import load_dataset
from core.model.config import PreprocessCfg
from core.model.transforms import ImageTransform, load_image, to_tensor_batch

SMALL = PreprocessCfg(image_size=32, train_resize=32)


@pytest.fixture(scope="module")
def rsicd_image(data_root: Path) -> Path:
    return data_root / "rsicd" / "images" / "airport_348.jpg"


def _expected(image: Image.Image, cfg: PreprocessCfg) -> torch.Tensor:
    resized = image.resize((cfg.image_size, cfg.image_size), Image.Resampling.BILINEAR)
    pixels = np.asarray(resized, dtype=np.float32) / 255.0
    normalised = (pixels - np.array(cfg.mean, np.float32)) / np.array(cfg.std, np.float32)
    return torch.from_numpy(normalised).permute(2, 0, 1)


def test_load_image_real(rsicd_image: Path) -> None:
    image = load_image(rsicd_image)
    assert image.mode == "RGB" and image.size == (224, 224)


def test_load_image_missing(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="not found.*nope.jpg"):
        load_image(tmp_path / "nope.jpg")


def test_load_image_corrupt_and_truncated(tmp_path: Path, rsicd_image: Path) -> None:
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"definitely not a jpeg")
    with pytest.raises(ImageReadError, match="garbage.jpg"):
        load_image(garbage)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(rsicd_image.read_bytes()[:2000])
    with pytest.raises(ImageReadError, match="truncated.jpg"):
        load_image(truncated)


def test_test_transform_is_deterministic_resize(rsicd_image: Path) -> None:
    image = load_image(rsicd_image)
    cfg = PreprocessCfg()
    out = ImageTransform(cfg, train=False)(image)
    assert out.shape == (3, 256, 256) and out.dtype == torch.float32
    torch.testing.assert_close(out, _expected(image, cfg))


def test_train_transform_shape_and_seeding(rsicd_image: Path) -> None:
    image = load_image(rsicd_image)
    transform = ImageTransform(PreprocessCfg(), train=True)
    torch.manual_seed(0)
    first = transform(image)
    torch.manual_seed(0)
    assert first.shape == (3, 256, 256)
    assert torch.equal(first, transform(image))
    outputs = [transform(image, torch.Generator().manual_seed(s)) for s in range(4)]
    assert any(not torch.equal(outputs[0], o) for o in outputs[1:])


def test_train_transform_rotates_by_quarter_turns(rsicd_image: Path) -> None:
    image = load_image(rsicd_image)
    plain = _expected(image, SMALL)  # train_resize == image_size: the crop is the whole image
    turns = set()
    transform = ImageTransform(SMALL, train=True)
    for seed in range(12):
        out = transform(image, torch.Generator().manual_seed(seed))
        matches = [k for k in range(4) if torch.allclose(out, torch.rot90(plain, k, (1, 2)))]
        assert len(matches) == 1
        turns.add(matches[0])
    assert turns == {0, 1, 2, 3}


def test_train_transform_rejects_small_resize() -> None:
    with pytest.raises(ConfigError, match="train_resize"):
        ImageTransform(PreprocessCfg(image_size=256, train_resize=200), train=True)


def test_to_tensor_batch_matches_transform(rsicd_image: Path) -> None:
    tile = np.asarray(load_image(rsicd_image).resize((32, 32)))
    batch = to_tensor_batch([tile, tile[::-1].copy()], SMALL)
    assert batch.shape == (2, 3, 32, 32) and batch.dtype == torch.float32
    torch.testing.assert_close(batch[0], ImageTransform(SMALL, train=False)(Image.fromarray(tile)))
    with pytest.raises(ValueError, match="tile 0"):
        to_tensor_batch([tile.astype(np.float32)], SMALL)
    with pytest.raises(ValueError, match="expected uint8"):
        to_tensor_batch([tile[:16]], SMALL)
    with pytest.raises(ValueError, match="at least one"):
        to_tensor_batch([], SMALL)


def test_image_datasets(data_root: Path) -> None:
    cs = load_dataset("ucm", "test", data_root).subset([0, 1, 2])
    transform = ImageTransform(SMALL, train=False)
    dataset = CaptionImageDataset(cs, transform)
    assert len(dataset) == 3 and dataset.caption_set is cs
    images, indices = next(iter(DataLoader(dataset, batch_size=3)))
    assert images.shape == (3, 3, 32, 32) and indices.tolist() == [0, 1, 2]
    tensor, index = ImageDataset([cs.image_path(2)], transform)[0]
    assert index == 0 and torch.equal(tensor, images[2])


def test_image_dataset_names_bad_file(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="gone.png"):
        ImageDataset([tmp_path / "gone.png"], ImageTransform(SMALL, train=False))[0]
