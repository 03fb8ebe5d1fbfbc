"""Recall@K metrics for cross-modal retrieval, as reported by AMFMN.

Follows the official ``acc_i2t2`` / ``acc_t2i2`` protocol, generalised to any number of
captions per image and vectorised:

* image -> text R@K: share of images whose best-ranked own caption is in the top K;
* text -> image R@K: share of captions whose image is in the top K;
* mR: mean of the six recalls.

Ranks count the items with a strictly higher score, so ties are resolved in the query's
favour. The official code ranks by ``argsort``, whose order among equal scores is
arbitrary; with continuous model scores the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KS = (1, 5, 10)


@dataclass(frozen=True)
class RetrievalMetrics:
    """Recalls in percent (0-100).

    Attributes:
        i2t: Image -> text recalls, keys ``r1``, ``r5``, ``r10``.
        t2i: Text -> image recalls, same keys.
        mr: Mean of the six recalls (the paper's mR).
    """

    i2t: dict[str, float]
    t2i: dict[str, float]
    mr: float

    def to_dict(self) -> dict[str, object]:
        """Plain-JSON form ``{"i2t": {...}, "t2i": {...}, "mR": ...}``, in percent."""
        return {"i2t": dict(self.i2t), "t2i": dict(self.t2i), "mR": self.mr}


def retrieval_metrics(scores: np.ndarray, caption_image: np.ndarray) -> RetrievalMetrics:
    """Score a model's ``[n_images, n_captions]`` similarity matrix (higher = more similar).

    Args:
        scores: Similarity of every image to every caption.
        caption_image: For each caption, the index of its image.

    Raises:
        ValueError: if shapes disagree, an index is out of range, an image has no
            caption, or a score is NaN.
    """
    scores = np.asarray(scores)
    owners = np.asarray(caption_image, dtype=np.int64)
    if scores.ndim != 2 or owners.shape != (scores.shape[1],):
        raise ValueError(
            f"scores {scores.shape} and caption_image {owners.shape} must be "
            "[n_images, n_captions] and [n_captions]"
        )
    n_images, n_captions = scores.shape
    if n_captions == 0 or owners.min() < 0 or owners.max() >= n_images:
        raise ValueError(f"caption_image must index images in [0, {n_images})")
    if np.any(np.bincount(owners, minlength=n_images) == 0):
        raise ValueError("every image needs at least one caption")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")

    positives = scores[owners, np.arange(n_captions)]
    best_own = np.full(n_images, positives.min())  # every image has a caption: max wins
    np.maximum.at(best_own, owners, positives)
    i2t_ranks = (scores > best_own[:, None]).sum(axis=1)
    t2i_ranks = (scores > positives[None, :]).sum(axis=0)

    i2t = _recalls(i2t_ranks)
    t2i = _recalls(t2i_ranks)
    return RetrievalMetrics(i2t=i2t, t2i=t2i, mr=float(np.mean([*i2t.values(), *t2i.values()])))


def _recalls(ranks: np.ndarray) -> dict[str, float]:
    """Percent of 0-based ranks below each K."""
    return {f"r{k}": float(100.0 * np.mean(ranks < k)) for k in KS}
