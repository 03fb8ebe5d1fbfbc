from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from nltk.translate.bleu_score import sentence_bleu

from core.learn.data.captions import CaptionSet, concat
from core.learn.data.sources import load_dataset
from core.learn.train.prior import STOP_WORDS, PriorSimilarity, calc_sim, preprocess


def official_calc_sim(references: list[str], caption: str) -> float:
    """The official script's calc_sim, with nltk's own BLEU and our tokeniser."""
    refs = [preprocess(r) for r in references]
    cap, cap_content = preprocess(caption)
    ref_tokens = [r for r, _ in refs]
    if cap in ref_tokens:
        score1 = 1.0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score1 = sentence_bleu(ref_tokens, cap, weights=(0.25, 0.25, 0.25, 0.25))
    score2 = np.mean([len(set(c) & set(cap_content)) / len(c) for _, c in refs if len(c) != 0])
    return float(np.mean([score1, score2]))


@pytest.fixture(scope="module")
def rsicd_test(data_root: Path) -> CaptionSet:
    return load_dataset("rsicd", "test", data_root)


@pytest.fixture(scope="module")
def rsicd_test_prior(rsicd_test: CaptionSet) -> PriorSimilarity:
    return PriorSimilarity.from_caption_set(rsicd_test)


def _assert_matches_spec(cs: CaptionSet, prior: PriorSimilarity, images, captions) -> np.ndarray:
    images, captions = np.asarray(images), np.asarray(captions)
    got = prior.matrix(images, captions)
    assert got.dtype == np.float32 and got.shape == (len(images), len(captions))
    want = np.array(
        [
            [
                calc_sim([cs.captions[r] for r in cs.captions_of(i)], cs.captions[j])
                for j in captions
            ]
            for i in images
        ]
    )
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    return want


def test_stop_words_are_nltk_english_plus_punctuation() -> None:
    assert len(STOP_WORDS) == 179 + 2
    assert {"the", "a", "of", "is", "wouldn't", ",", "."} <= STOP_WORDS


def test_preprocess_stems_and_drops_stop_words() -> None:
    tokens, content = preprocess("Many planes are parked near the Terminal.")
    assert tokens == ["mani", "plane", "are", "park", "near", "the", "termin", "."]
    assert content == ["mani", "plane", "park", "near", "termin"]


def test_calc_sim_by_hand() -> None:
    # No trigram in common -> BLEU 0; all 4 content words shared -> score2 1.
    assert (
        calc_sim(["many buildings are near a river ."], "a river is near many buildings .") == 0.5
    )
    # Precision 1 for all orders, brevity exp(1 - 6/5); content 4 of 5.
    got = calc_sim(["planes park near the terminal building"], "planes park near the terminal")
    assert got == pytest.approx((math.exp(-0.2) + 0.8) / 2, abs=1e-12)
    # Exact token match -> score1 = 1 even for short captions.
    assert calc_sim(["Two ships .", "a harbour ."], "two ships.") == pytest.approx((1 + 0.5) / 2)
    # Short caption without a match -> BLEU 0; references without content words are skipped.
    assert calc_sim(["the river", "."], "river ships") == pytest.approx(0.5)
    assert calc_sim(["."], "river") == 0.0  # official script: NaN


def test_calc_sim_matches_official_nltk_version(rsicd_test: CaptionSet) -> None:
    rng = np.random.default_rng(0)
    for i in rng.choice(rsicd_test.n_images, 8, replace=False):
        refs = [rsicd_test.captions[r] for r in rsicd_test.captions_of(i)]
        for j in [*rsicd_test.captions_of(i)[:2], *rng.choice(rsicd_test.n_captions, 15)]:
            caption = rsicd_test.captions[j]
            assert calc_sim(refs, caption) == pytest.approx(
                official_calc_sim(refs, caption), abs=1e-9
            )


def test_matrix_matches_spec_on_rsicd_test(rsicd_test: CaptionSet, rsicd_test_prior) -> None:
    # Images 2 and 30 share verbatim captions, so cross-image pairs hit score1 = 1.
    rng = np.random.default_rng(1)
    images = np.concatenate([[2, 30], rng.choice(rsicd_test.n_images, 13, replace=False)])
    captions = np.concatenate(
        [rsicd_test.captions_of(2), rsicd_test.captions_of(30), rng.choice(5465, 10, replace=False)]
    )
    want = _assert_matches_spec(rsicd_test, rsicd_test_prior, images, captions)
    own = want[0, :5]
    assert np.all(own >= 0.5)  # same-image pairs: exact match
    assert np.any(want[1, :5] >= 0.5)  # image 30 has image 2's caption verbatim


def test_matrix_matches_spec_with_short_and_empty_content_captions(data_root: Path) -> None:
    train = load_dataset("rsicd", "train", data_root)
    # "." (no content words), "1 .", "muddy yellow .", "river ships ." live in these images.
    odd = [1140, 1635, 4465, 8801, 8876, 8886]
    cs = train.subset(odd + list(range(0, 9800, 700)))
    prior = PriorSimilarity.from_caption_set(cs)
    want = _assert_matches_spec(cs, prior, np.arange(cs.n_images), np.arange(cs.n_captions))
    short = [k for k, c in enumerate(cs.captions) if len(preprocess(c)[0]) < 4]
    assert len(short) >= 6
    for k in short:
        own = cs.caption_image[k]
        others = np.delete(np.arange(cs.n_images), own)
        assert np.all(want[others, k] * 2 <= 1.0)  # BLEU 0, at most the content half


def test_matrix_matches_spec_on_ucm(data_root: Path) -> None:
    ucm = load_dataset("ucm", "test", data_root)
    prior = PriorSimilarity.from_caption_set(ucm)
    rng = np.random.default_rng(2)
    # Test images 0-9 are one class (farmland) and repeat each other's sentences verbatim.
    images = np.concatenate([np.arange(6), rng.choice(np.arange(10, 210), 6, replace=False)])
    captions = np.concatenate([ucm.captions_of(0), rng.choice(ucm.n_captions, 20)])
    want = _assert_matches_spec(ucm, prior, images, captions)
    assert np.sum(want[1:6, :5] >= 0.5) >= 3  # exact matches on other images of the class


def test_matrix_is_fast(rsicd_test: CaptionSet, rsicd_test_prior: PriorSimilarity) -> None:
    rng = np.random.default_rng(3)
    timings = []
    for _ in range(10):
        images = rng.choice(rsicd_test.n_images, 128, replace=False)
        captions = rng.choice(rsicd_test.n_captions, 128, replace=False)
        start = time.perf_counter()
        rsicd_test_prior.matrix(images, captions)
        timings.append(time.perf_counter() - start)
    assert np.median(timings) < 0.05  # ~4 ms on a shared 2-core CPU; training wants < 20 ms


def test_precompute_on_both_train_sets(data_root: Path) -> None:
    both = concat(
        [load_dataset("rsicd", "train", data_root), load_dataset("ucm", "train", data_root)]
    )
    start = time.perf_counter()
    prior = PriorSimilarity.from_caption_set(both)
    assert time.perf_counter() - start < 60
    assert prior.n_images == 9828 + 1680 and prior.n_captions == 57540
    s = prior.matrix(np.array([9828]), both.captions_of(9828))
    assert np.all(s >= 0.5)


def test_matrix_rejects_bad_ids(rsicd_test_prior: PriorSimilarity) -> None:
    with pytest.raises(IndexError, match="image ids"):
        rsicd_test_prior.matrix(np.array([1093]), np.array([0]))
    with pytest.raises(IndexError, match="caption ids"):
        rsicd_test_prior.matrix(np.array([0]), np.array([-1]))
    with pytest.raises(ValueError, match="shape"):
        PriorSimilarity(["a", "b"], np.array([0]))
