"""AMFMN's prior image-caption similarity S, which sets the dynamic triplet-loss margin.

S follows ``calc_sim`` in the official script ``generate_t2i_sim_matrix.py``
(xiaoyuan1996/AMFMN): an image is represented by its reference captions, and a caption is
scored against them as the mean of

* score1: 1 if the caption's stemmed tokens equal a reference's, else sentence BLEU-4
  (uniform weights, no smoothing, clipped counts over all references, brevity penalty
  from the closest reference length, ties to the shorter one), and
* score2: the mean over references with content words of
  ``|set(ref content) & set(caption content)| / len(ref content list)``, where content
  words are stemmed tokens that are not stop words.

Deviations, all forced or harmless: tokens come from ``core.model.vocab.tokenize`` rather
than nltk's ``word_tokenize`` (its punkt data is not available offline; they differ on
contractions); the stop-word list is nltk's English list embedded below; BLEU is exactly 0
when an n-gram order has no match (nltk returns ~1e-77 and a warning); and score2 is 0 when
no reference has content words (the official script yields NaN).

``calc_sim`` is the loop-based specification; ``PriorSimilarity`` computes the same values
for whole batches with sparse products, fast enough to run at every training step.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from nltk.stem import PorterStemmer

from core.model.vocab import tokenize

if TYPE_CHECKING:
    from core.learn.data.captions import CaptionSet

MAX_N = 4  # BLEU-4

# nltk_data corpora/stopwords/english (the 179-word list shipped 2018-2023), plus ',' '.'
# as in the official script. Entries with apostrophes never match our tokens; kept for
# fidelity.
STOP_WORDS = frozenset(
    """
    i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
    yourselves he him his himself she she's her hers herself it it's its itself they them
    their theirs themselves what which who whom this that that'll these those am is are was
    were be been being have has had having do does did doing a an the and but if or because
    as until while of at by for with about against between into through during before after
    above below to from up down in out on off over under again further then once here there
    when where why how all any both each few more most other some such no nor not only own
    same so than too very s t can will just don don't should should've now d ll m o re ve y
    ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven
    haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn
    shouldn't wasn wasn't weren weren't won won't wouldn wouldn't , .
    """.split()
)

_STEMMER = PorterStemmer()
_BLOCKS = MAX_N + 2  # per image: one row per n-gram order, content words, whole sentences
_CONTENT, _SENTENCE = MAX_N, MAX_N + 1
_NO_REF = 1 << 20  # padding length for images with fewer references than the most
_LEN_KEY = 1 << 21  # > any real or padding length; packs (distance, length) in one int


@lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    return _STEMMER.stem(word)


def preprocess(sentence: str) -> tuple[list[str], list[str]]:
    """Stemmed lowercase tokens, and the same without stop words (official sent_preprocess)."""
    tokens = [_stem(w) for w in tokenize(sentence)]
    return tokens, [w for w in tokens if w not in STOP_WORDS]


def _ngram_counts(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[k : k + n]) for k in range(len(tokens) - n + 1))


def _bleu4(references: list[list[str]], hypothesis: list[str]) -> float:
    """Sentence BLEU-4 as nltk's ``sentence_bleu`` with uniform weights and no smoothing."""
    log_precision = 0.0
    for n in range(1, MAX_N + 1):
        counts = _ngram_counts(hypothesis, n)
        ref_counts = [_ngram_counts(r, n) for r in references]
        matched = sum(min(c, max(rc[g] for rc in ref_counts)) for g, c in counts.items())
        if matched == 0:
            return 0.0
        log_precision += math.log(matched / max(1, sum(counts.values()))) / MAX_N
    hyp_len = len(hypothesis)
    ref_len = min((len(r) for r in references), key=lambda r: (abs(r - hyp_len), r))
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_precision)


def calc_sim(references: Sequence[str], caption: str) -> float:
    """Prior similarity of ``caption`` to an image described by ``references`` (the spec).

    Raises:
        ValueError: if there are no references.
    """
    if not references:
        raise ValueError("calc_sim needs at least one reference caption")
    refs = [preprocess(r) for r in references]
    cap_tokens, cap_content = preprocess(caption)
    ref_tokens = [tokens for tokens, _ in refs]
    score1 = 1.0 if cap_tokens in ref_tokens else _bleu4(ref_tokens, cap_tokens)
    overlaps = [
        len(set(content) & set(cap_content)) / len(content) for _, content in refs if content
    ]
    score2 = sum(overlaps) / len(overlaps) if overlaps else 0.0
    return (score1 + score2) / 2


class PriorSimilarity:
    """Batched ``calc_sim`` for images and captions of one caption set.

    The references of image ``i`` are its own captions. Everything is precomputed as two
    sparse binary/weighted matrices over shared feature columns, so that one sparse
    product gives, per (image, caption) pair, the clipped n-gram matches of each order,
    the content-word overlap and whether the caption equals a reference:

    * n-gram ``g`` occurring ``c`` times becomes features ``(g, 1) .. (g, c)``, so the dot
      product of a caption row with an image row (built from the max count over its
      references) is ``sum_g min(c_caption, c_max_ref)``, BLEU's clipped count;
    * content word ``t`` of reference ``r`` adds ``1 / len(content_r) / m`` to the
      image's column ``t`` (``m`` = references with content words), which dotted with the
      caption's content-word set gives score2;
    * each distinct token sequence is one feature, for the exact-match case of score1.
    """

    def __init__(self, captions: Sequence[str], caption_image: np.ndarray) -> None:
        """Precompute features of every caption and image.

        Args:
            captions: All captions of the set.
            caption_image: For each caption, the index of its image (0 .. n_images - 1).

        Raises:
            ValueError: if there are no captions, the arrays disagree in length, or an image
                index below the largest has no caption.
        """
        owners = np.asarray(caption_image, dtype=np.int64)
        if not captions:
            raise ValueError("PriorSimilarity needs at least one caption")
        if owners.shape != (len(captions),):
            raise ValueError(f"caption_image has shape {owners.shape}, expected ({len(captions)},)")
        n_images = int(owners.max()) + 1
        if np.any(np.bincount(owners, minlength=n_images) == 0):
            raise ValueError("every image index below the largest must own a caption")
        self.n_images, self.n_captions = n_images, len(captions)

        features = _FeatureSpace()
        parsed = _parse_unique(captions, features)
        refs_of: list[list[_Parsed]] = [[] for _ in range(n_images)]
        for caption, image in zip(captions, owners.tolist(), strict=True):
            refs_of[image].append(parsed[caption])
        self._images = _image_matrix(refs_of, features)
        columns = [parsed[c].columns for c in captions]
        rows = np.repeat(np.arange(len(captions)), [len(c) for c in columns])
        self._captions_t = _sparse(
            np.concatenate(columns), rows, None, (len(features), len(captions))
        ).tocsc()
        self._lengths = np.array([len(parsed[c].tokens) for c in captions], dtype=np.int64)
        n_refs = max(len(r) for r in refs_of)
        self._ref_lengths = np.full((n_images, n_refs), _NO_REF, dtype=np.int64)
        for image, refs in enumerate(refs_of):
            self._ref_lengths[image, : len(refs)] = [len(r.tokens) for r in refs]

    @classmethod
    def from_caption_set(cls, caption_set: CaptionSet) -> PriorSimilarity:
        """Build from a caption set, whose images' captions serve as references."""
        return cls(caption_set.captions, caption_set.caption_image)

    def matrix(self, image_ids: np.ndarray, caption_ids: np.ndarray) -> np.ndarray:
        """S for every (image, caption) pair, as float32 ``[len(image_ids), len(caption_ids)]``.

        Raises:
            IndexError: if an id is out of range.
        """
        images = np.asarray(image_ids, dtype=np.int64).ravel()
        caps = np.asarray(caption_ids, dtype=np.int64).ravel()
        for ids, n, what in ((images, self.n_images, "image"), (caps, self.n_captions, "caption")):
            if ids.size and (ids.min() < 0 or ids.max() >= n):
                raise IndexError(f"{what} ids must lie in [0, {n})")
        rows = (images[:, None] * _BLOCKS + np.arange(_BLOCKS)).ravel()
        dots = (self._images[rows] @ self._captions_t[:, caps]).toarray()
        dots = dots.reshape(len(images), _BLOCKS, len(caps))

        hyp_len = self._lengths[caps]
        orders = np.arange(1, MAX_N + 1)[:, None]
        totals = np.maximum(1, hyp_len[None, :] - orders + 1)  # [MAX_N, C]
        matched = dots[:, :MAX_N, :]
        with np.errstate(divide="ignore"):
            log_precision = np.log(matched / totals).mean(axis=1)
        ref_len = self._closest_ref_length(images, hyp_len)
        with np.errstate(divide="ignore", invalid="ignore"):
            brevity = np.where(hyp_len > ref_len, 1.0, np.exp(1 - ref_len / hyp_len))
        bleu = np.where((matched > 0).all(axis=1), brevity * np.exp(log_precision), 0.0)
        score1 = np.where(dots[:, _SENTENCE, :] > 0, 1.0, bleu)
        return ((score1 + dots[:, _CONTENT, :]) / 2).astype(np.float32)

    def _closest_ref_length(self, images: np.ndarray, hyp_len: np.ndarray) -> np.ndarray:
        """Reference length closest to each caption's length, ties to the shorter; [B, C]."""
        ref_lens = self._ref_lengths[images][:, None, :]  # [B, 1, R]
        key = np.abs(ref_lens - hyp_len[None, :, None]) * _LEN_KEY + ref_lens
        return key.min(axis=2) % _LEN_KEY


class _FeatureSpace:
    """Column ids for n-gram levels, content words and token sequences, shared by both sides."""

    def __init__(self) -> None:
        self._ids: dict[tuple[object, ...], int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self, keys: list[tuple[object, ...]]) -> np.ndarray:
        table = self._ids
        return np.array([table.setdefault(k, len(table)) for k in keys], dtype=np.int64)


class _Parsed:
    """One distinct caption: its tokens, content words and feature columns."""

    __slots__ = ("tokens", "content", "ngram_levels", "columns")

    def __init__(self, tokens: list[str], content: list[str], features: _FeatureSpace) -> None:
        self.tokens = tokens
        self.content = content
        # ngram_levels[n-1]: keys (gram, level) for level 1..count, i.e. BLEU features.
        self.ngram_levels = [
            [(g, level) for g, c in _ngram_counts(tokens, n).items() for level in range(1, c + 1)]
            for n in range(1, MAX_N + 1)
        ]
        keys = [k for level_keys in self.ngram_levels for k in level_keys]
        keys += [("content", w) for w in set(content)]
        keys.append(("sentence", tuple(tokens)))
        self.columns = features.ids(keys)


def _parse_unique(captions: Sequence[str], features: _FeatureSpace) -> dict[str, _Parsed]:
    """Parse each distinct caption once (RSICD repeats many captions verbatim)."""
    parsed: dict[str, _Parsed] = {}
    for caption in captions:
        if caption not in parsed:
            parsed[caption] = _Parsed(*preprocess(caption), features)
    return parsed


def _image_matrix(refs_of: list[list[_Parsed]], features: _FeatureSpace) -> sp.csr_matrix:
    """Rows ``image * _BLOCKS + block`` holding each image's reference-side features."""
    rows: list[int] = []
    keys: list[tuple[object, ...]] = []
    values: list[float] = []
    for image, refs in enumerate(refs_of):
        base = image * _BLOCKS
        for n in range(MAX_N):
            merged = {k for r in refs for k in r.ngram_levels[n]}  # union of levels = max count
            rows += [base + n] * len(merged)
            keys += merged
            values += [1.0] * len(merged)
        weights: Counter[str] = Counter()
        with_content = [r for r in refs if r.content]
        for r in with_content:
            for w in set(r.content):
                weights[w] += 1 / len(r.content) / len(with_content)
        rows += [base + _CONTENT] * len(weights)
        keys += [("content", w) for w in weights]
        values += list(weights.values())
        sentences = {tuple(r.tokens) for r in refs}
        rows += [base + _SENTENCE] * len(sentences)
        keys += [("sentence", s) for s in sentences]
        values += [1.0] * len(sentences)
    shape = (len(refs_of) * _BLOCKS, len(features))
    return _sparse(np.array(rows, dtype=np.int64), features.ids(keys), np.array(values), shape)


def _sparse(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray | None, shape: tuple[int, int]
) -> sp.csr_matrix:
    data = np.ones(len(rows)) if values is None else values
    return sp.csr_matrix((data, (rows, cols)), shape=shape)
