"""`python -m core train` hands every recipe option to the run's configuration, and a run
folder keeps the options it was started with, except its length."""

from __future__ import annotations

import json

import pytest
import torch

from core.cli.main import build_parser
from core.cli.train import configs
from core.errors import ConfigError
from core.learn.train.config import TrainCfg
from core.learn.train.trainer import Trainer
from core.model.factory import get_model_config


def _configs(*options: str):
    return configs(build_parser().parse_args(["train", "--out", "runs/x", *options]))


def test_defaults_are_the_shipped_recipe():
    cfg, model_cfg = _configs()
    assert cfg == TrainCfg()
    assert model_cfg == get_model_config(TrainCfg().model)


def test_issue_17_options_reach_the_configuration():
    cfg, model_cfg = _configs(
        "--batch-size",
        "256",
        "--sum-warmup-epochs",
        "2",
        "--text-layers",
        "4",
        "--trainable-stages",
        "2",
        "--views",
        "3",
        "--no-feature-turns",
        "--epochs",
        "9",
    )
    assert (cfg.batch_size, cfg.sum_warmup_epochs, cfg.views, cfg.epochs) == (256, 2, 3, 9)
    assert cfg.feature_turns is False
    assert model_cfg.text.trainable_layers == 4
    assert model_cfg.vision.trainable_stages == 2
    assert cfg.to_dict() == TrainCfg.from_dict(cfg.to_dict()).to_dict()


def _trainer(out, *options: str) -> Trainer:
    cfg, model_cfg = _configs(*options)
    return Trainer(cfg, out, model_cfg, device="cpu")


def test_a_run_folder_accepts_more_epochs_and_records_them(tmp_path):
    _trainer(tmp_path, "--epochs", "9")
    _trainer(tmp_path, "--epochs", "16")
    assert json.loads((tmp_path / "run.json").read_text())["train"]["epochs"] == 16


def test_a_run_folder_refuses_any_other_change(tmp_path):
    _trainer(tmp_path, "--epochs", "9")
    with pytest.raises(ConfigError, match="only --epochs may change"):
        _trainer(tmp_path, "--epochs", "16", "--text-layers", "4")
    assert json.loads((tmp_path / "run.json").read_text())["train"]["epochs"] == 9


def test_a_run_folder_refuses_fewer_epochs_than_it_has_trained(tmp_path):
    _trainer(tmp_path, "--epochs", "16")
    torch.save({"epoch": 9}, tmp_path / "state.pt")  # ten epochs finished
    with pytest.raises(ConfigError, match="already trained 10 epochs"):
        _trainer(tmp_path, "--epochs", "9")
    _trainer(tmp_path, "--epochs", "12")
    assert json.loads((tmp_path / "run.json").read_text())["train"]["epochs"] == 12
