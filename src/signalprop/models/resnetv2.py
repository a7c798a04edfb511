"""Pre-activation bottleneck ResNet-V2 with batch norm, no norm, or normalizer-free blocks.

``norm="bn"``: BN -> act -> conv ordering, He init.
``norm="none"``: act -> conv, He init; the signal variance doubles per block and the
channel means drift (mean shift), which is what Signal Propagation Plots show.
``norm="skipinit"``: act -> conv without normalization, a learnable scalar (init 0) on
every branch and a zero classifier (De & Smith, NeurIPS 2020).
``norm="fixup"``: :class:`FixupBottleneck` blocks and Fixup initialization (Zhang et al.).
``norm="gn_ws"``: GroupNorm -> act -> Weight-Standardized conv, batch-independent
(Richemond et al. 2020, the BYOL-without-batch-statistics network).
``layer="phm"`` (with ``norm`` "bn", "none" or "skipinit"): every block convolution is a
parameterized hypercomplex :class:`~signalprop.nn.PHConv2d` with ``n`` Kronecker terms
(variance-correct He init; :mod:`signalprop.models.ph_resnet`); "skipinit" is then PHYDI.
``norm="nf"``: the NF-ResNet block of Brock, De & Smith (ICLR 2021):

    h_{i+1} = h_i + alpha * f_i(h_i / beta_i),   beta_i = sqrt(E[Var h_i])

with Scaled WS convolutions and gamma-scaled activations; the expected variance grows by
alpha^2 per block and resets to 1 + alpha^2 at each transition block, whose shortcut is
a 1x1 Scaled-WS projection of the scaled, activated input (as in DeepMind's reference).

Examples:
    >>> import torch
    >>> m = resnetv2("resnetv2_50", norm="nf", stem="cifar", num_classes=10)
    >>> m(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from signalprop import theory
from signalprop.models._registry import register_model
from signalprop.models.fixup_bottleneck import FixupBottleneck
from signalprop.models.ph_resnet import phm_convs_
from signalprop.nn import (
    BranchTap,
    DropPath,
    GammaAct,
    PHConv2d,
    ResidualBlock,
    ScalarBias,
    ScaledStdConv2d,
    SkipInit,
    fixup_init_,
    group_norm,
    he_gain,
)
from signalprop.nn.activations import make_activation
from signalprop.results import SPPResult

# Bottleneck blocks per stage (Brock et al. 2021; He et al. 2016). Layer count is
# 3 * blocks + 2; "resnetv2_1000" has 1000 convolutions (333 blocks and the stem).
PRESETS: dict[str, tuple[int, ...]] = {
    "resnetv2_50": (3, 4, 6, 3),
    "resnetv2_101": (3, 4, 23, 3),
    "resnetv2_152": (3, 8, 36, 3),
    "resnetv2_200": (3, 24, 36, 3),
    "resnetv2_288": (24, 24, 24, 24),
    "resnetv2_600": (50, 50, 50, 50),
    "resnetv2_1000": (83, 83, 83, 84),
}
NORMS = ("bn", "none", "nf", "skipinit", "fixup", "gn_ws")
LAYERS = ("real", "phm")
_PHM_NORMS = ("bn", "none", "skipinit")  # plain convs to replace (not Scaled WS / Fixup)
STEMS = ("imagenet", "cifar")
_STAGE_WIDTHS = (256, 512, 1024, 2048)  # block outputs; bottlenecks are a quarter of these
_STAGE_STRIDES = (1, 2, 2, 2)
# phi(c x) = c phi(x) for c > 0: a positive input scale can move past the activation.
_HOMOGENEOUS = ("relu", "leaky_relu", "abs", "identity")


@dataclass(frozen=True)
class ResNetV2Config:
    """Everything that defines a ResNetV2 (presets are just ``depths``).

    Examples:
        >>> cfg = ResNetV2Config(depths=(1, 1), norm="nf", stem="cifar", width=0.25)
        >>> resnetv2([1, 1], norm="nf", stem="cifar", width=0.25).cfg == cfg
        True
    """

    depths: tuple[int, ...]
    norm: str = "bn"  # one of NORMS
    activation: str = "relu"
    width: float = 1.0  # channel multiplier
    stem: str = "imagenet"  # 7x7/2 conv + 3x3/2 max-pool, or "cifar": 3x3 conv
    alpha: float = 0.2  # NF: residual branch scale
    skipinit: bool = False  # learnable scalar on each branch (always on for "skipinit")
    skipinit_init: float = 0.0  # its initial value (the reference uses 0)
    num_classes: int = 1000
    in_chans: int = 3
    dropout: float = 0.0  # on the pooled features, before the classifier
    drop_path: float = 0.0  # stochastic depth of the last block; block i of n: rate * i / n
    layer: str = "real"  # "phm": PH convolutions in every block
    n: int = 4  # their hypercomplex dimension


def _he_gain(activation: str) -> float:
    # Generalised He init: Var(w) = gain^2 / fan_in keeps E[x^2] through phi -> conv;
    # gain^2 = 1 / E[phi(z)^2] (= 2 for ReLU).
    return he_gain(activation)


class PreActBottleneck(ResidualBlock):
    """Pre-activation bottleneck for ``norm`` in ``"bn"``, ``"none"``, ``"skipinit"``, ``"gn_ws"``.

    out = shortcut + g * conv3(act(n3(conv2(act(n2(conv1(act(n1(x)))))))))
    where the shortcut is x, or a 1x1 projection of act(n1(x)) at transitions, and g is an
    optional SkipInit gain (always present for ``"skipinit"``). n is BatchNorm (``bn``),
    GroupNorm (``gn_ws``, whose convolutions are Scaled-WS with the activation's gamma, so
    a unit-variance input gives unit-variance conv outputs) or nothing.

    Examples:
        >>> block = PreActBottleneck(16, 32, stride=2, norm="bn", activation="relu")
        >>> block.is_transition, block(torch.randn(2, 16, 8, 8)).shape
        (True, torch.Size([2, 32, 4, 4]))
    """

    def __init__(
        self, in_ch: int, out_ch: int, stride: int, norm: str, activation: str,
        skipinit: bool = False, skipinit_init: float = 0.0, drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        mid = out_ch // 4
        bias = norm in ("none", "skipinit")
        conv: type[nn.Conv2d] | functools.partial[nn.Conv2d] = nn.Conv2d
        if norm == "gn_ws":
            conv = functools.partial(ScaledStdConv2d, gamma=theory.gamma(activation))

        def norm_layer(c: int) -> nn.Module:
            if norm == "bn":
                return nn.BatchNorm2d(c)
            return group_norm(c) if norm == "gn_ws" else nn.Identity()

        self.norm1, self.act1 = norm_layer(in_ch), make_activation(activation)
        self.conv1 = conv(in_ch, mid, 1, bias=bias)
        self.norm2, self.act2 = norm_layer(mid), make_activation(activation)
        self.conv2 = conv(mid, mid, 3, stride=stride, padding=1, bias=bias)
        self.norm3, self.act3 = norm_layer(mid), make_activation(activation)
        self.conv3 = conv(mid, out_ch, 1, bias=bias)
        self.is_transition = stride != 1 or in_ch != out_ch
        self.shortcut = (
            conv(in_ch, out_ch, 1, stride=stride, bias=bias) if self.is_transition else None
        )
        self.branch_tap = BranchTap()
        skipinit = skipinit or norm == "skipinit"
        self.skip_gain = SkipInit(skipinit_init) if skipinit else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        pre = self.act1(self.norm1(x))
        shortcut = self.shortcut(pre) if self.shortcut is not None else x
        out = self.conv1(pre)
        out = self.conv2(self.act2(self.norm2(out)))
        out = self.conv3(self.act3(self.norm3(out)))
        out = self.branch_tap(out)
        if self.skip_gain is not None:
            out = self.skip_gain(out)
        if self.drop_path is not None:
            out = self.drop_path(out)
        return self.residual_add(shortcut, out)

    def adds_tapped_branch(self) -> bool:
        return self.skip_gain is None and self.drop_path is None


class NFBottleneck(ResidualBlock):
    """Normalizer-free pre-activation bottleneck (Brock, De & Smith 2021).

    out = shortcut + alpha * g * f(x / beta), f = conv3 . act . conv2 . act . conv1 . act,
    with Scaled WS convolutions and gamma-scaled activations, so Var(f) ~ 1 when
    Var(x) ~ beta^2. ``expected_var`` is the block output's predicted variance.

    NOTE: the activation gain gamma is applied by the Scaled WS convolutions that read each
    activation (their ``gamma``: W_hat is scaled by it), not by a separate multiplication,
    which saves a pass over every activation tensor in forward and backward (timm's NF
    ResNets offer the same, ``gamma_in_act=False``). For positively homogeneous activations
    (relu, leaky_relu, abs, identity: phi(x / beta) = phi(x) / beta) 1/beta moves into
    ``conv1`` and the projection shortcut as well. The function computed is unchanged;
    ``input_scale`` is what still multiplies x before ``act1``.

    Examples:
        >>> block = NFBottleneck(16, 16, stride=1, beta=1.0, alpha=0.2, activation="relu",
        ...                      expected_var=1.04)
        >>> x = torch.randn(8, 16, 8, 8)  # Var(x) = beta^2 = 1
        >>> with torch.no_grad():
        ...     branch_var = float((block(x) - x).var())
        >>> 0.02 < branch_var < 0.06  # alpha^2 Var(f) with Var(f) ~ 1
        True
    """

    def __init__(
        self, in_ch: int, out_ch: int, stride: int, beta: float, alpha: float,
        activation: str, expected_var: float, skipinit: bool = False,
        skipinit_init: float = 0.0, drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        mid = out_ch // 4
        self.beta, self.alpha, self.expected_var = float(beta), float(alpha), float(expected_var)
        gamma = theory.gamma(activation)
        homogeneous = theory.get_activation(activation).name in _HOMOGENEOUS
        self.input_scale = 1.0 if homogeneous else 1.0 / self.beta
        gamma_in = gamma / self.beta if homogeneous else gamma
        self.act1 = make_activation(activation)
        self.conv1 = ScaledStdConv2d(in_ch, mid, 1, gamma=gamma_in)
        self.act2 = make_activation(activation)
        self.conv2 = ScaledStdConv2d(mid, mid, 3, stride=stride, padding=1, gamma=gamma)
        self.act3 = make_activation(activation)
        self.conv3 = ScaledStdConv2d(mid, out_ch, 1, gamma=gamma)
        self.is_transition = stride != 1 or in_ch != out_ch
        # NOTE: like DeepMind's reference, the projection takes the scaled *activated*
        # input (gamma * act(x / beta)), whose variance is 1 like the branch's.
        self.shortcut = (
            ScaledStdConv2d(in_ch, out_ch, 1, stride=stride, gamma=gamma_in)
            if self.is_transition else None
        )
        self.branch_tap = BranchTap()
        self.skip_gain = SkipInit(skipinit_init) if skipinit else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(x if self.input_scale == 1.0 else x * self.input_scale)
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.act2(out))
        out = self.conv3(self.act3(out))
        out = self.branch_tap(out)
        if self.skip_gain is not None:
            out = self.skip_gain(out)
        if self.drop_path is not None:
            out = self.drop_path(out)
        return self.residual_add(shortcut, out, self.alpha)

    def adds_tapped_branch(self) -> bool:
        return self.skip_gain is None and self.drop_path is None

    def extra_repr(self) -> str:
        return f"beta={self.beta:.4f}, alpha={self.alpha:g}, expected_var={self.expected_var:.4f}"


class ResNetV2(nn.Module):
    """Pre-activation bottleneck ResNet; build it with :func:`resnetv2`.

    Module layout: ``stem`` -> ``stages.{s}.{b}`` (blocks) -> ``final_norm`` ->
    ``final_act`` -> global average pool -> ``head_bias`` (Fixup's scalar, else identity)
    -> ``dropout`` -> ``fc``.

    Examples:
        >>> cfg = ResNetV2Config(depths=(1, 1), norm="nf", stem="cifar", width=0.25, num_classes=5)
        >>> m = ResNetV2(cfg)
        >>> m(torch.randn(2, 3, 32, 32)).shape, [name for name, _ in m.signal_blocks()]
        (torch.Size([2, 5]), ['stem', 'stages.0.0', 'stages.1.0'])
    """

    def __init__(self, cfg: ResNetV2Config, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        # Modules are built on the meta device and initialised once, in reset_parameters():
        # torch's default per-layer init would otherwise dominate (seconds for 300M weights).
        with torch.device("meta"):
            self._build(cfg)
        self.to_empty(device=device if device is not None else torch.get_default_device())
        self.reset_parameters()

    def _build(self, cfg: ResNetV2Config) -> None:
        nf = cfg.norm == "nf"
        stem_ch = max(1, round(64 * cfg.width))
        conv: type[nn.Conv2d] = ScaledStdConv2d if cfg.norm in ("nf", "gn_ws") else nn.Conv2d
        if cfg.stem == "imagenet":
            self.stem = nn.Sequential(OrderedDict(
                conv=conv(cfg.in_chans, stem_ch, 7, stride=2, padding=3, bias=not nf),
                pool=nn.MaxPool2d(3, stride=2, padding=1),
            ))
            self.default_input_shape: tuple[int, ...] = (cfg.in_chans, 224, 224)
        else:
            self.stem = nn.Sequential(OrderedDict(
                conv=conv(cfg.in_chans, stem_ch, 3, stride=1, padding=1, bias=not nf),
            ))
            self.default_input_shape = (cfg.in_chans, 32, 32)

        stages = []
        in_ch, expected_var, index, total = stem_ch, 1.0, 0, sum(cfg.depths)
        for depth, out_w, stride in zip(cfg.depths, _STAGE_WIDTHS, _STAGE_STRIDES):
            out_ch = max(4, round(out_w * cfg.width))
            blocks = []
            for b in range(depth):
                s = stride if b == 0 else 1
                drop = cfg.drop_path * index / total  # the reference's linear schedule
                index += 1
                if nf:
                    beta = math.sqrt(expected_var)
                    # A transition's shortcut sees unit-variance input: reset, then grow.
                    expected_var = (1.0 if b == 0 else expected_var) + cfg.alpha**2
                    blk: ResidualBlock = NFBottleneck(
                        in_ch, out_ch, s, beta, cfg.alpha, cfg.activation, expected_var,
                        cfg.skipinit, cfg.skipinit_init, drop)
                elif cfg.norm == "fixup":
                    if drop > 0:
                        raise ValueError("drop_path is not available for Fixup blocks")
                    blk = FixupBottleneck(in_ch, out_ch, s, cfg.activation)
                else:
                    blk = PreActBottleneck(in_ch, out_ch, s, cfg.norm, cfg.activation,
                                           cfg.skipinit, cfg.skipinit_init, drop)
                blocks.append(blk)
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.num_features = in_ch
        final_norms = {"bn": lambda: nn.BatchNorm2d(in_ch), "gn_ws": lambda: group_norm(in_ch),
                       "fixup": ScalarBias}
        self.final_norm = final_norms.get(cfg.norm, nn.Identity)()
        self.final_act = GammaAct(cfg.activation) if nf else make_activation(cfg.activation)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        # Fixup: a scalar bias before the classifier too.
        self.head_bias = ScalarBias() if cfg.norm == "fixup" else nn.Identity()
        self.fc = nn.Linear(in_ch, cfg.num_classes)
        if cfg.layer == "phm":
            phm_convs_(self.stages, cfg.n, gain=_he_gain(cfg.activation))

    def reset_parameters(self) -> None:
        """(Re-)initialise every parameter and buffer.

        He init (generalised to the activation) for plain convs; fan-in normal weights, unit
        gains and zero biases for Scaled WS convs; BatchNorm at (1, 0) with fresh running
        statistics, GroupNorm at (1, 0); SkipInit gains at their init, scalar biases at 0;
        classifier N(0, 0.01) with zero bias. ``skipinit``: zero classifier (as the
        reference). ``fixup``: then :func:`signalprop.nn.fixup_init_` over every block's
        branch convolutions (zero last conv, L^(-1/4) rescaling) and a zero classifier.
        """
        gain = _he_gain(self.cfg.activation)
        for m in self.modules():
            if isinstance(m, ScaledStdConv2d):
                # Scaled WS makes the raw scale irrelevant; fan-in normal as in the reference.
                nn.init.normal_(m.weight, std=1.0 / math.sqrt(m.weight[0].numel()))
                m.reset_ws_parameters()
            elif isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=gain / math.sqrt(m.weight[0].numel()))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, SkipInit, ScalarBias, PHConv2d)):
                m.reset_parameters()
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)
        if self.cfg.norm == "skipinit":
            nn.init.zeros_(self.fc.weight)
        elif self.cfg.norm == "fixup":
            branches = [blk.branch_convs() for _, blk in self.signal_blocks()[1:]]
            fixup_init_(branches, self.fc, activation=self.cfg.activation)

    def signal_blocks(self) -> list[tuple[str, nn.Module]]:
        """Where Signal Propagation Plots measure: the stem output, then every block."""
        blocks: list[tuple[str, nn.Module]] = [("stem", self.stem)]
        for s, stage in enumerate(self.stages):
            blocks += [(f"stages.{s}.{b}", blk) for b, blk in enumerate(stage)]
        return blocks

    def stem_output_size(self, height: int, width: int) -> tuple[int, int]:
        """Spatial size of the stem output for an input of ``height`` x ``width``."""
        if self.cfg.stem == "imagenet":  # 7x7/2 conv (pad 3), then 3x3/2 max-pool (pad 1)
            return (math.ceil(math.ceil(height / 2) / 2), math.ceil(math.ceil(width / 2) / 2))
        return (height, width)

    def predicted_spp(
        self, input_hw: tuple[int, int] | None = None, stem_var: float = 1.0,
        stem_sq_mean: float = 0.0, label: str | None = None,
    ) -> SPPResult:
        """The theory's SPP for this network (``signalprop.theory.residual_schedule``).

        Records match :meth:`signal_blocks`, so ``signalprop.plot.spp(measured, path,
        predicted=...)`` overlays it. Pass the measured stem statistics to start the
        prediction where the network really starts, and ``input_hw`` to model the variance
        that zero padding removes on small feature maps.

        Examples:
            >>> m = resnetv2([2, 2], norm="nf", stem="cifar", width=0.25)
            >>> [round(v, 2) for v in m.predicted_spp().avg_var]
            [1.0, 1.04, 1.08, 1.04, 1.08]
        """
        cfg = self.cfg
        spatial = self.stem_output_size(*input_hw) if input_hw is not None else None
        gain = (cfg.skipinit_init if cfg.skipinit or cfg.norm == "skipinit" else 1.0)
        norm = cfg.norm
        if norm == "fixup":  # zero last conv: at init every branch adds 0, as SkipInit at 0
            norm, gain = "skipinit", 0.0
        return theory.residual_schedule(
            norm, cfg.depths, activation=cfg.activation, alpha=cfg.alpha, gain=gain,
            stem_var=stem_var, stem_sq_mean=stem_sq_mean, spatial=spatial, label=label)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.stages(self.stem(x))

    def forward(self, x: Tensor) -> Tensor:
        x = self.final_act(self.final_norm(self.forward_features(x)))
        return self.fc(self.dropout(self.head_bias(torch.flatten(self.pool(x), 1))))


def _choose(name: str, value: str, valid: Sequence[str]) -> str:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    return value


def resnetv2(
    name_or_depths: str | Sequence[int] = "resnetv2_50",
    *,
    norm: str = "bn",
    activation: str = "relu",
    width: float = 1.0,
    stem: str = "imagenet",
    alpha: float = 0.2,
    skipinit: bool = False,
    skipinit_init: float = 0.0,
    num_classes: int = 1000,
    in_chans: int = 3,
    dropout: float = 0.0,
    drop_path: float = 0.0,
    layer: str = "real",
    n: int = 4,
    device: torch.device | str | None = None,
) -> ResNetV2:
    """Build a pre-activation bottleneck ResNet-V2.

    Args:
        name_or_depths: a preset (``PRESETS``: resnetv2_50 ... resnetv2_1000) or the number
            of bottleneck blocks per stage (1 to 4 stages).
        norm: ``"bn"``, ``"none"``, ``"nf"`` (normalizer-free, Scaled WS), ``"skipinit"``
            (no normalization, scalar gain at ``skipinit_init`` on every branch),
            ``"fixup"`` (Fixup blocks and init) or ``"gn_ws"`` (GroupNorm + Weight
            Standardization).
        activation: any name from ``signalprop.theory.activation_names()``.
        width: channel multiplier (stem 64, stage outputs 256..2048 at width 1).
        stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool) or ``"cifar"`` (3x3 conv).
        alpha: NF residual scale.
        skipinit: add a learnable scalar (SkipInit gain) on every residual branch (implied
            by ``norm="skipinit"``; Fixup blocks always carry their multiplier).
        skipinit_init: that scalar's initial value (0 in the reference; 1 reproduces the
            paper's signal propagation plots).
        num_classes: classifier outputs.
        in_chans: input channels.
        dropout: dropout rate on the pooled features before the classifier (NF-ResNets'
            regularizer, with ``drop_path``; Brock, De & Smith 2021).
        drop_path: stochastic depth (:class:`signalprop.nn.DropPath`) of the last block;
            block i of n drops its branch with probability ``drop_path * i / n``.
        layer: ``"real"`` or ``"phm"`` (PH convolutions with ``n`` terms in every block
            whose channels ``n`` divides; the stem and classifier stay real).
        n: the PH convolutions' hypercomplex dimension.
        device: where to allocate the parameters (default: torch's default device).

    Returns:
        A :class:`ResNetV2`; ``model.signal_blocks()`` lists the SPP measurement points.

    Examples:
        >>> m = resnetv2([1, 1], norm="bn", stem="cifar", num_classes=5, width=0.25)
        >>> [name for name, _ in m.signal_blocks()]
        ['stem', 'stages.0.0', 'stages.1.0']
    """
    if isinstance(name_or_depths, str):
        if name_or_depths not in PRESETS:
            raise ValueError(
                f"unknown ResNetV2 preset {name_or_depths!r}; valid: {', '.join(PRESETS)}"
            )
        depths = PRESETS[name_or_depths]
    else:
        depths = tuple(int(d) for d in name_or_depths)
        if not 1 <= len(depths) <= len(_STAGE_WIDTHS) or any(d < 1 for d in depths):
            raise ValueError(
                f"depths must be 1 to {len(_STAGE_WIDTHS)} positive block counts, got {depths}"
            )
    _choose("norm", norm, NORMS)
    _choose("stem", stem, STEMS)
    theory.get_activation(activation)  # unknown names list the valid ones
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    _choose("layer", layer, LAYERS)
    if layer == "phm" and norm not in _PHM_NORMS:
        raise ValueError(f"layer='phm' needs norm in {', '.join(_PHM_NORMS)}, got {norm!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if num_classes < 1 or in_chans < 1:
        raise ValueError(f"num_classes and in_chans must be >= 1, got {num_classes}, {in_chans}")
    for name, rate in (("dropout", dropout), ("drop_path", drop_path)):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {rate!r}")
    if norm == "fixup" and drop_path > 0:
        raise ValueError("drop_path is not available for norm='fixup'")
    cfg = ResNetV2Config(tuple(depths), norm, activation, float(width), stem, float(alpha),
                         bool(skipinit), float(skipinit_init), int(num_classes), int(in_chans),
                         float(dropout), float(drop_path), layer, n)
    return ResNetV2(cfg, device=device)


for _name, _depths in PRESETS.items():
    register_model(_name, resnetv2, f"pre-activation bottleneck ResNet-V2, blocks {_depths}",
                   name_or_depths=_name)
