"""Facts about a model the report needs beside the measurements: its activation, block
sizes, block types, and the theory's numbers for its initialization."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from signalprop import theory
from signalprop._forward import buffers_restored, first_tensor, forward_or_locate

# torch activation modules -> signalprop.theory activation names
_TORCH_ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu", nn.Tanh: "tanh", nn.GELU: "gelu", nn.SiLU: "silu", nn.ELU: "elu",
    nn.SELU: "selu", nn.Softplus: "softplus", nn.LeakyReLU: "leaky_relu",
    nn.Sigmoid: "sigmoid",
}


def activation_name(model: nn.Module) -> str | None:
    """The activation a model uses, as a ``signalprop.theory`` name, or None.

    signalprop models say so in their config (ResNetV2) or activation modules (``.name``
    of GammaAct); otherwise the first torch activation module found decides.

    Examples:
        >>> activation_name(nn.Sequential(nn.Linear(2, 2), nn.Tanh()))
        'tanh'
    """
    cfg = getattr(model, "cfg", None)
    names = set(theory.activation_names())
    if isinstance(getattr(cfg, "activation", None), str) and cfg.activation in names:
        return cfg.activation
    functional = {torch.relu: "relu", F.relu: "relu", F.gelu: "gelu", torch.tanh: "tanh",
                  F.silu: "silu", F.elu: "elu", F.selu: "selu"}
    for m in model.modules():
        name = getattr(m, "name", None)
        if isinstance(name, str) and name in names and hasattr(m, "fn"):
            return name
        for cls, act in _TORCH_ACTIVATIONS.items():
            if type(m) is cls and act in names:
                return act
        # torch layers that hold their activation as a function (TransformerEncoderLayer)
        fn = m.__dict__.get("activation")
        if callable(fn) and not isinstance(fn, nn.Module) and functional.get(fn) in names:
            return functional[fn]
    return None


def theory_numbers(model: nn.Module, activation: str | None,
                   x: torch.Tensor | None) -> tuple[float | None, float | None]:
    """(critical sigma_w^2 of ``activation``, mean-field chi_1 of the model's own init).

    chi_1 needs the model's sigma_w^2 (signalprop MLPs record it as ``.sigma_w2``) and a
    floating input ``x``; the fixed point is the one reached from
    q0 = sigma_w^2 E[x^2] + sigma_b^2.
    """
    if activation is None:
        return None, None
    try:
        crit = theory.critical_point(activation).sigma_w2
    except ValueError:
        crit = None
    sw2 = getattr(model, "sigma_w2", None)
    if not isinstance(sw2, float | int) or not sw2 > 0 or x is None:
        return crit, None
    sb2 = float(getattr(model, "sigma_b2", 0.0) or 0.0)
    q0 = float(sw2) * float(x.double().pow(2).mean()) + sb2
    try:
        chi = theory.mean_field(activation, float(sw2), sb2, q0=q0).chi_1
    except ValueError:
        chi = None
    return crit, chi if chi is None or math.isfinite(chi) else None


def block_types(model: nn.Module, names: Sequence[str]) -> dict[str, int]:
    """Class name -> how many of the measured blocks have it (first calls only)."""
    modules = dict(model.named_modules())
    seen = {n.split("#")[0] for n in names}
    return dict(Counter(type(modules[n]).__name__ for n in sorted(seen) if n in modules))


def block_shapes(model: nn.Module, names: Sequence[str], x: Any
                 ) -> tuple[list[tuple[int, ...]] | None, Any]:
    """Per-example output shape of each block call (``names`` as recorded by ``spp``, a
    second call as ``name#2``), and the model's output, from one ``torch.no_grad()``
    forward (mode and buffers restored); None where a block's output is not a tensor.

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
        >>> block_shapes(net, ["0", "1"], torch.randn(3, 4))[0]
        [(6,), (6,)]
    """
    wanted = {n.split("#")[0] for n in names}
    calls: dict[str, list[tuple[int, ...]]] = {}
    handles = []

    def hook(name: str) -> Any:
        def fn(_m: nn.Module, _i: Any, out: Any) -> None:
            t = first_tensor(out)
            if t is not None and t.dim() > 0:
                calls.setdefault(name, []).append(tuple(t.shape[1:]))
        return fn

    for name, m in model.named_modules():
        if name in wanted or (not name and "<model>" in wanted):
            handles.append(m.register_forward_hook(hook(name or "<model>")))
    try:
        with torch.no_grad(), buffers_restored(model):
            out = forward_or_locate(model, x, handles)
    finally:
        for h in handles:
            h.remove()
    shapes: list[tuple[int, ...]] = []
    counts: Counter[str] = Counter()
    for n in names:
        base = n.split("#")[0]
        k = counts[base]
        counts[base] += 1
        got = calls.get(base, [])
        if k >= len(got):
            return None, out
        shapes.append(got[k])
    return shapes, out


def channel_axis(model: nn.Module, x: Any, given: int | None) -> tuple[int, str]:
    """The channel axis to measure with and why: ``given``, or inferred from the layers
    inside the discovered blocks (:func:`infer_channel_dim`; one forward).

    Examples:
        >>> channel_axis(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), torch.randn(2, 4), None)
        (1, 'block outputs have shape (N, 4): one channel axis')
    """
    from signalprop.measure import discover_blocks
    from signalprop.measure._structure import small_batch

    if given is not None:
        return given, "given"
    few = small_batch(x)  # the shapes of two examples tell the axes
    names = [b.name for b in discover_blocks(model, x).blocks]
    shapes, _ = block_shapes(model, names, x if few is None else few)
    return infer_channel_dim(model, names, shapes)


def infer_channel_dim(model: nn.Module, names: Sequence[str],
                      shapes: Sequence[tuple[int, ...]] | None) -> tuple[int, str]:
    """The channel axis of the blocks' outputs, from the layers inside the blocks.

    Outputs of 2 axes (N, C) have one answer. For more axes, blocks holding convolutions
    that take ``shape[1]`` channels are channels-first (1: a convolution reads axis 1,
    whatever else the block does, as in ConvNeXt); otherwise blocks whose LayerNorm /
    Linear layers act on ``shape[-1]`` features, or whose embeddings / batch-first
    recurrent layers put ``shape[-1]`` features last, are channels-last (-1: transformers,
    LSTMs); otherwise 1.

    Returns:
        ``(channel_dim, why)``.

    Examples:
        >>> layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
        >>> enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        >>> infer_channel_dim(enc, ["layers.0"], [(5, 8)])[0]
        -1
    """
    if not shapes or not names:
        return 1, "default (block output shapes unknown)"
    modules = dict(model.named_modules())
    first, cf, cl = shapes[0], 0, 0
    if len(first) < 2:
        return 1, f"block outputs have shape (N, {first[0] if first else ''}): one channel axis"
    for name, shape in zip(names, shapes):
        block = modules.get(name.split("#")[0]) or (model if name == "<model>" else None)
        if block is None or len(shape) < 2:
            continue
        for m in block.modules():
            if isinstance(m, nn.modules.conv._ConvNd) and m.in_channels == shape[0]:
                cf += 1
            elif isinstance(m, nn.LayerNorm) and m.normalized_shape[-1:] == (shape[-1],):
                cl += 1
            elif isinstance(m, nn.Linear) and m.in_features == shape[-1]:
                cl += 1
            elif _features_last(m) == shape[-1]:
                cl += 1
    if cl and not cf:
        return -1, ("inferred: the blocks' LayerNorm / Linear layers act on the last axis "
                    f"(outputs of shape (N, {', '.join(map(str, first))}))")
    if cf:
        return 1, "inferred: the blocks' convolutions take axis 1 as channels"
    return 1, "default (no layer inside the blocks identifies the channel axis)"


def _features_last(m: nn.Module) -> int | None:
    """Size of the last axis of the module's output when it puts features last
    (embeddings, batch-first recurrent layers), else None."""
    if isinstance(m, nn.Embedding):
        return m.embedding_dim
    if isinstance(m, nn.RNNBase) and m.batch_first:
        return (m.proj_size or m.hidden_size) * (2 if m.bidirectional else 1)
    return None


def describe_skips(res: Any) -> str:
    """What the forward showed about skip connections, in words for the page.

    Examples:
        >>> from signalprop.results import BlockStats, SPPResult
        >>> recs = [BlockStats("a", 0, 0.0, 1.0), BlockStats("b", 1, 0.0, 1.0)]
        >>> print(describe_skips(SPPResult("r", recs, skips={"b": "identity"})))
        1 of 2 blocks add a skip connection (1: output = input + branches (pre-norm))
    """
    if res.skips is None:
        return "not measured"
    total = len({r.name.split("#")[0] for r in res.records})
    if not res.skips:
        return f"none of the {total} blocks adds a skip connection"
    kinds = Counter(res.skips.values())
    words = {"identity": "output = input + branches (pre-norm)",
             "inner": "a normalization, activation or projection after or around it",
             "tapped": "signalprop residual blocks"}
    detail = ", ".join(f"{n} with {words[k]}" if k != "identity" else f"{n}: {words[k]}"
                       for k, n in kinds.items())
    return f"{len(res.skips)} of {total} blocks add a skip connection ({detail})"


def structure_note(res: Any) -> str | None:
    """One sentence on what the skip connections measured on the forward mean for the
    plots (None when the structure was not measured).

    Examples:
        >>> from signalprop.results import BlockStats, SPPResult
        >>> note = structure_note(SPPResult("r", [BlockStats("a", 0, 0.0, 1.0)], skips={}))
        >>> note[:51]
        'structure: no block adds a skip connection, so sign'
    """
    if res.skips is None:
        return None
    kinds = set(res.skips.values())
    if not kinds:
        return ("structure: no block adds a skip connection, so signal and gradient pass "
                "through every layer (a plain network)")
    if kinds == {"identity"}:
        return ("structure: each block's output is its input plus its residual branches "
                "(pre-norm): the residual stream is not normalized between blocks, so it "
                "grows by the branches' variance (the residual variance column) at every block")
    if kinds == {"inner"}:
        return ("structure: each block adds its skip connection and then transforms the sum "
                "(a normalization or activation after the addition, as in post-norm "
                "transformers and the original ResNet, or a projection shortcut): block "
                "outputs have the scale of that last layer, and output minus input is no "
                "residual branch")
    return "structure: blocks of several kinds (see the per-block skip connections)"


def has_batchnorm(model: nn.Module) -> bool:
    """True when any module is a BatchNorm."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def module_type(model: nn.Module, name: str | None) -> str | None:
    """The class name of module ``name`` (None when absent)."""
    if not name:
        return None
    m = dict(model.named_modules()).get(name.split("#")[0])
    return None if m is None else type(m).__name__
