"""`python -m core train` hands every recipe option to the run's configuration."""

from __future__ import annotations

from core.cli.main import build_parser
from core.cli.train import configs
from core.learn.train.config import TrainCfg
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
