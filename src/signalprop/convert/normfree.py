"""``to_normfree``: turn a BatchNorm residual network into a normalizer-free one.

What it does to a copy of the model (the original is untouched):

1. every BatchNorm module becomes ``nn.Identity`` (the network no longer mixes examples);
2. every convolution becomes a :class:`~signalprop.nn.ScaledStdConv2d` (1d/3d alike) and
   every linear layer but the classifier (``nn.Linear``, HuggingFace's ``Conv1D``) a
   :class:`~signalprop.nn.WSLinear`, weights and biases copied, a zero bias added where
   the BatchNorm provided the shift. Each gets ``gamma = signalprop.theory.gamma(act)``
   for the activation that feeds it (found through pooling, dropout and reshapes), so a
   unit-variance pre-activation gives a unit-variance, zero-mean output: Scaled WS removes
   the mean shift that makes unnormalized ReLU networks' squared channel means grow with
   depth;
3. every residual addition gets a :class:`~signalprop.nn.SkipInit` gain (and a
   :class:`~signalprop.nn.BranchTap`) at the end of its branch, so
   x_{l+1} = x_l + a_l f_l(x_l) with a_l = ``skipinit_init`` (0: every block starts as its
   shortcut, De & Smith 2020). A LayerScale vector of the block (ConvNeXt's
   ``layer_scale_parameter``, CaiT/DINOv2's ``gamma``/``lambda1``) is set to 1: it is a
   per-channel SkipInit already, and a product of two near-zero gains would never train;
4. per-example normalizers (LayerNorm, GroupNorm, InstanceNorm) are kept: they do not mix
   examples, and in a pre-norm block (ConvNeXt, pre-LN transformers) they play the role of
   NF's 1/beta, feeding every branch a unit-variance input. So on a ConvNeXt, which has no
   BatchNorm, to_normfree is Scaled WS + residual gains + calibration, not the removal of
   its LayerNorms.

The structure (residual additions, which operand is the branch, the activation feeding
each layer, the classifier) is read from the torch.fx graph, or -- when ``example_input``
is given, which every model torch.fx cannot trace needs (HuggingFace models) -- from one
real forward on it (module hooks and a torch-function mode; see ``convert/_runtime.py``).

signalprop's own ResNetV2 is rebuilt as ``norm="nf"`` (Brock et al.'s NF-ResNet with its
beta/alpha scaling) with every weight whose shape matches copied.

Anything the converter cannot analyse raises :class:`ConversionError` naming the modules;
anything it leaves as it was is listed in ``report.not_converted`` with the reason.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn

from signalprop._forward import ModelInput
from signalprop.convert import _ops as O
from signalprop.convert._gate import GatedBranch, calibrate_gates
from signalprop.convert._nf_surgery import check_forward, convert
from signalprop.convert._surgery import analyse
from signalprop.convert.report import ConversionError, ConversionReport
from signalprop.models import ResNetV2, resnetv2
from signalprop.nn import ScaledStdConv2d, SkipInit


def to_normfree(
    model: nn.Module, *, skipinit_init: float = 0.0, example_input: ModelInput | None = None,
    calibrate: bool | None = None, convert_linear: bool = True, eps: float | None = None,
) -> tuple[nn.Module, ConversionReport]:
    """A normalizer-free copy of a residual network, and a report of the changes.

    Args:
        model: signalprop's ResNetV2, any module torch.fx can trace, or (with
            ``example_input``) any module at all, whose BatchNorms are modules
            (``nn.BatchNorm1d/2d/3d``) and whose residual additions are ``a + b``,
            ``torch.add`` or ``+=``.
        skipinit_init: initial value of every residual gain (0 in De & Smith's reference;
            1 reproduces Brock et al.'s NF signal propagation for ResNetV2).
        example_input: a batch the model accepts (a tensor, a tuple of arguments or a dict
            of keyword arguments). The structure is then read from one eval-mode forward on
            it instead of a torch.fx graph, and (see ``calibrate``) each branch is
            calibrated on it.
        calibrate: divide each converted branch's output by its root-mean-square on
            ``example_input`` (default: whenever it is given), so with gain a the stream's
            second moment grows by about a^2 per block (as in NF-ResNets) instead of by a
            factor (1 + a^2 Var(f)/Var(x)) per block. Without it the gains should start
            small (the default 0 makes every block its shortcut).
        convert_linear: replace linear layers other than the classifier by WSLinear.
        eps: Scaled WS eps (default: the layer's default, 1e-4 clamped).

    Returns:
        ``(new_model, report)``; ``report.not_converted`` lists what was left, with reasons.

    Raises:
        ConversionError: the model cannot be traced and no ``example_input`` was given, the
            forward on it fails (the module is named), the converted forward fails, or the
            model calls batch_norm functionally (those modules are named).
        ValueError: bad arguments.

    Examples:
        >>> import torch, signalprop as sp
        >>> net = sp.models.resnetv2([1, 1], norm="bn", stem="cifar", width=0.25)
        >>> nf, report = sp.convert.to_normfree(net)
        >>> report.method, any(isinstance(m, torch.nn.BatchNorm2d) for m in nf.modules())
        ('ResNetV2 rebuild', False)
        >>> sp.batch_independence(nf, torch.randn(4, 3, 16, 16)).independent
        True

    References:
        Brock, De & Smith, ICLR 2021 (arXiv 2101.08692); De & Smith, NeurIPS 2020
        (arXiv 2002.10444); Touvron et al. (LayerScale), ICCV 2021 (arXiv 2103.17239).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    if not (isinstance(skipinit_init, (int, float)) and math.isfinite(skipinit_init)):
        raise ValueError(f"skipinit_init must be a finite number, got {skipinit_init!r}")
    if calibrate not in (None, True, False):
        raise ValueError(f"calibrate must be None, True or False, got {calibrate!r}")
    if calibrate and example_input is None:
        raise ValueError("calibrate=True needs example_input (the batch to calibrate on)")
    if isinstance(model, ResNetV2):
        new, report = _resnetv2(model, skipinit_init)
        if example_input is not None:
            report.refuse("<model>", "example_input not used", "NF-ResNetV2 scales its "
                          "branches by its predicted variances (beta) already")
        return new, report
    new = copy.deepcopy(model)
    analysis = analyse(new, example_input, "to_normfree")
    if analysis.functional_bn:
        where = ", ".join(f"'{n}'" for n in analysis.functional_bn)
        raise ConversionError(
            f"to_normfree cannot analyse {type(model).__name__}: batch_norm is called as a "
            f"function in {where}; only BatchNorm modules can be removed. Use nn.BatchNorm "
            "modules there")
    new, report = convert(new, analysis, float(skipinit_init), convert_linear, eps)
    if example_input is not None:
        if calibrate is None or calibrate:
            gates = {n: m for n, m in new.named_modules() if isinstance(m, GatedBranch)}
            check_forward(new, example_input, lambda: calibrate_gates(
                new, gates, example_input, report))
        else:
            check_forward(new, example_input, None)
    return new, report


def _resnetv2(model: ResNetV2, skipinit_init: float) -> tuple[nn.Module, ConversionReport]:
    cfg = model.cfg
    report = ConversionReport("ResNetV2 rebuild")
    if cfg.norm == "nf":
        report.refuse("<model>", "nothing to convert", "already normalizer-free (norm='nf')")
        return copy.deepcopy(model), report
    device = next(model.parameters()).device
    new = resnetv2(cfg.depths, norm="nf", activation=cfg.activation, width=cfg.width,
                   stem=cfg.stem, alpha=cfg.alpha, skipinit=True, skipinit_init=skipinit_init,
                   num_classes=cfg.num_classes, in_chans=cfg.in_chans, device=device)
    report.add("<model>", f"ResNetV2 norm={cfg.norm!r} -> 'nf'",
               f"NF-ResNet blocks with alpha={cfg.alpha:g} and beta from the expected variance")
    old_modules = dict(model.named_modules())
    new_modules = dict(new.named_modules())
    old, new_state = model.state_dict(), new.state_dict()
    with torch.no_grad():
        for name, t in new_state.items():
            # residual gains start at skipinit_init, whatever the old network held
            if name in old and old[name].shape == t.shape and not name.endswith("skip_gain.gain"):
                t.copy_(old[name])
    for name, m in old_modules.items():
        if isinstance(m, O.BATCHNORMS):
            report.add(name, f"removed {type(m).__name__}")
        elif isinstance(m, nn.Conv2d) and isinstance(new_modules.get(name), ScaledStdConv2d):
            copied = [k for k, _ in m.named_parameters()
                      if f"{name}.{k}" in new_state
                      and new_state[f"{name}.{k}"].shape == old[f"{name}.{k}"].shape]
            report.add(name, f"{type(m).__name__} -> ScaledStdConv2d",
                       f"{', '.join(copied) or 'nothing'} copied")
    for name, m in new_modules.items():
        if isinstance(m, SkipInit):
            report.add(name, "SkipInit gain after the branch", f"init {skipinit_init:g}")
    bn_tensors = {f"{n}.{k}" for n, m in old_modules.items() if isinstance(m, O.BATCHNORMS)
                  for k, _ in m.state_dict().items()}
    for name in sorted(set(old) - set(new_state) - bn_tensors):
        report.refuse(name, "not copied", "the NF network has no such tensor")
    for name in sorted(n for n, t in new_state.items() if n in old and old[n].shape != t.shape):
        report.refuse(name, "not copied", f"shape {tuple(old[name].shape)} differs")
    report.residual_blocks = [n for n, _ in new.signal_blocks()[1:]]
    new.train(model.training)
    return new, report


