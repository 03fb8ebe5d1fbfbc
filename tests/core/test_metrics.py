from __future__ import annotations

import time

import numpy as np
import pytest

from core.learn.eval.metrics import RetrievalMetrics, retrieval_metrics


def official_recalls(scores: np.ndarray) -> tuple[list[float], list[float]]:
    """AMFMN's acc_i2t2 / acc_t2i2 loops (5 contiguous captions per image), R@1/5/10 only."""
    image_size = scores.shape[0]
    i2t_ranks = np.zeros(image_size)
    for index in range(image_size):
        inds = np.argsort(scores[index])[::-1]
        rank = 1e20
        for i in range(5 * index, 5 * index + 5, 1):
            tmp = np.where(inds == i)[0][0]
            if tmp < rank:
                rank = tmp
        i2t_ranks[index] = rank
    t2i_ranks = np.zeros(5 * image_size)
    transposed = scores.T
    for index in range(image_size):
        for i in range(5):
            inds = np.argsort(transposed[5 * index + i])[::-1]
            t2i_ranks[5 * index + i] = np.where(inds == index)[0][0]

    def recalls(ranks: np.ndarray) -> list[float]:
        return [100.0 * len(np.where(ranks < k)[0]) / len(ranks) for k in (1, 5, 10)]

    return recalls(i2t_ranks), recalls(t2i_ranks)


def naive_recalls(scores: np.ndarray, owners: np.ndarray) -> tuple[list[float], list[float]]:
    """Any captions per image, any order: loop over queries, sort, find the best own hit."""
    i2t, t2i = [], []
    for i in range(scores.shape[0]):
        order = list(np.argsort(-scores[i], kind="stable"))
        i2t.append(min(order.index(j) for j in np.flatnonzero(owners == i)))
    for j in range(scores.shape[1]):
        t2i.append(list(np.argsort(-scores[:, j], kind="stable")).index(owners[j]))
    return (
        [100.0 * np.mean(np.array(i2t) < k) for k in (1, 5, 10)],
        [100.0 * np.mean(np.array(t2i) < k) for k in (1, 5, 10)],
    )


def _as_lists(m: RetrievalMetrics) -> tuple[list[float], list[float]]:
    return [m.i2t[k] for k in ("r1", "r5", "r10")], [m.t2i[k] for k in ("r1", "r5", "r10")]


def test_hand_built_three_images() -> None:
    owners = np.array([0, 0, 1, 1, 2, 2])
    scores = np.array(
        [
            [0.9, 0.1, 0.8, 0.7, 0.2, 0.3],  # best own 0.9: rank 0
            [0.5, 0.4, 0.1, 0.6, 0.7, 0.95],  # best own 0.6: 0.7, 0.95 above -> rank 2
            [0.3, 0.2, 0.85, 0.65, 0.05, 0.15],  # best own 0.15: four above -> rank 4
        ]
    )
    # Caption ranks of their image: 0, 2, 2, 2, 2, 2.
    m = retrieval_metrics(scores, owners)
    assert m.i2t == pytest.approx({"r1": 100 / 3, "r5": 100.0, "r10": 100.0})
    assert m.t2i == pytest.approx({"r1": 100 / 6, "r5": 100.0, "r10": 100.0})
    assert m.mr == pytest.approx((100 / 3 + 100 / 6 + 400) / 6)
    assert m.to_dict() == {"i2t": m.i2t, "t2i": m.t2i, "mR": m.mr}


def test_ranks_split_r1_r5_r10() -> None:
    n = 20
    scores = np.zeros((n, n))
    for i in range(n):  # image i: its own caption i scores 0.5 with exactly i captions above
        others = [j for j in range(n) if j != i][:i]
        scores[i, others] = 1.0
        scores[i, i] = 0.5
    m = retrieval_metrics(scores, np.arange(n))
    assert m.i2t == {"r1": 5.0, "r5": 25.0, "r10": 50.0}


def test_perfect_and_reversed() -> None:
    owners = np.repeat(np.arange(12), 5)
    perfect = (owners[None, :] == np.arange(12)[:, None]).astype(np.float32)
    assert retrieval_metrics(perfect, owners).mr == 100.0
    reversed_ = retrieval_metrics(1 - perfect, owners)
    assert reversed_.to_dict() == {
        "i2t": {"r1": 0.0, "r5": 0.0, "r10": 0.0},
        "t2i": {"r1": 0.0, "r5": 0.0, "r10": 0.0},
        "mR": 0.0,
    }


def test_ties_rank_in_the_query_favour() -> None:
    # Strict "higher score" ranks: a constant matrix gives every query rank 0.
    assert retrieval_metrics(np.zeros((4, 8)), np.repeat(np.arange(4), 2)).mr == 100.0


def test_random_matches_official_loops() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(60, 300))
    owners = np.repeat(np.arange(60), 5)
    scores[owners, np.arange(300)] += 1.5  # some signal so recalls are not all near 0
    got_i2t, got_t2i = _as_lists(retrieval_metrics(scores, owners))
    want_i2t, want_t2i = official_recalls(scores)
    assert got_i2t == pytest.approx(want_i2t) and got_t2i == pytest.approx(want_t2i)
    assert 0 < got_i2t[0] < 100 and 0 < got_t2i[0] < 100


def test_uneven_caption_counts_match_naive_loop() -> None:
    rng = np.random.default_rng(1)
    owners = rng.permutation(np.concatenate([np.arange(40), rng.integers(0, 40, 80)]))
    scores = rng.normal(size=(40, owners.size)).astype(np.float32)
    scores[owners, np.arange(owners.size)] += 1.0
    got_i2t, got_t2i = _as_lists(retrieval_metrics(scores, owners))
    want_i2t, want_t2i = naive_recalls(scores, owners)
    assert got_i2t == pytest.approx(want_i2t) and got_t2i == pytest.approx(want_t2i)


def test_rsicd_test_size_is_fast() -> None:
    rng = np.random.default_rng(2)
    scores = rng.random((1093, 5465), dtype=np.float32)
    owners = np.repeat(np.arange(1093), 5)
    start = time.perf_counter()
    retrieval_metrics(scores, owners)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    ("scores", "owners", "match"),
    [
        (np.zeros((2, 3)), np.array([0, 1]), "must be"),
        (np.zeros((2, 2)), np.array([0, 2]), "caption_image must index"),
        (np.zeros((2, 2)), np.array([0, 0]), "at least one caption"),
        (np.array([[np.nan, 0.0], [0.0, 0.0]]), np.array([0, 1]), "NaN"),
    ],
)
def test_rejects_bad_inputs(scores: np.ndarray, owners: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        retrieval_metrics(scores, owners)
