from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.errors import CheckpointError, QueryError
from core.learn.data.sources import load_dataset
from core.model.vocab import PAD_ID, UNK_ID, Vocabulary, tokenize


def test_tokenize_lowercases_and_splits_punctuation() -> None:
    assert tokenize("Many  planes, parked.") == ["many", "planes", ",", "parked", "."]
    assert tokenize("it's 2 ships") == ["it", "'", "s", "2", "ships"]
    assert tokenize("   ") == []


def test_build_orders_by_frequency_then_alphabet() -> None:
    vocab = Vocabulary.build(["b a .", "a c .", "a b"])
    assert vocab.tokens == ("<pad>", "<unk>", "a", ".", "b", "c")
    assert len(vocab) == 6
    assert Vocabulary.build(["b a .", "a c .", "a b"], min_count=2).tokens == (
        "<pad>",
        "<unk>",
        "a",
        ".",
        "b",
    )
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.build(["a"], min_count=0)


def test_encode_maps_unknown_and_truncates() -> None:
    vocab = Vocabulary.build(["a river near buildings"])
    assert vocab.encode("A river near SHIPS", max_len=10) == [
        vocab.tokens.index("a"),
        vocab.tokens.index("river"),
        vocab.tokens.index("near"),
        UNK_ID,
    ]
    assert len(vocab.encode("a river near buildings", max_len=2)) == 2
    with pytest.raises(QueryError, match="no words"):
        vocab.encode(" ", max_len=5)
    with pytest.raises(ValueError, match="max_len"):
        vocab.encode("a", max_len=0)


def test_encode_batch_pads_and_reports_lengths() -> None:
    vocab = Vocabulary.build(["a b c d"])
    ids, lengths = vocab.encode_batch(["a b", "a b c d e", "c"], max_len=4)
    assert ids.dtype == torch.long and lengths.dtype == torch.long
    assert ids.shape == (3, 4) and lengths.tolist() == [2, 4, 1]
    assert ids[0, 2:].tolist() == [PAD_ID, PAD_ID] and ids[2, 1:].tolist() == [PAD_ID] * 3
    assert ids[1].tolist() == vocab.encode("a b c d", max_len=4)
    with pytest.raises(ValueError, match="at least one"):
        vocab.encode_batch([], max_len=4)


def test_dict_round_trip_through_json() -> None:
    vocab = Vocabulary.build(["two ships in a harbour ."])
    restored = Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert restored == vocab
    assert restored.encode("ships", 3) == vocab.encode("ships", 3)


@pytest.mark.parametrize(
    "data",
    [{}, {"tokens": "abc"}, {"tokens": ["a", "b"]}, {"tokens": ["<pad>", "<unk>", "a", "a"]}],
)
def test_from_dict_rejects_bad_data(data: dict) -> None:
    with pytest.raises(CheckpointError):
        Vocabulary.from_dict(data)


def test_build_on_rsicd_train(data_root: Path) -> None:
    vocab = Vocabulary.build(load_dataset("rsicd", "train", data_root).captions)
    assert 2000 < len(vocab) < 10000
    assert vocab.tokens[2:4] == (".", "a")  # the most frequent tokens come first
