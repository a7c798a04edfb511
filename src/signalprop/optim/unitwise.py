"""Unit-wise norms of parameters in PyTorch layouts (the units AGC clips).

A unit is one output unit's slice of a weight. Where it lies depends on the layer:

* ``"rows"`` (dim 0 indexes units): ``nn.Linear`` (out, in), ``nn.Bilinear``
  (out, in1, in2), ``nn.ConvNd`` (out, in/g, *k), ``nn.MultiheadAttention``'s
  ``in_proj_weight`` (3E, E) and q/k/v projections, the RNN/LSTM/GRU ``weight_ih/hh/hr``
  (gates x hidden, in); ``nn.Embedding`` (num, dim): one unit per token's vector, so a rare
  token's update is measured against its own vector, not against the frequent ones';
* ``"columns"`` (dim 1 indexes units): HuggingFace's ``Conv1D`` (GPT-2), whose weight is
  laid out (in, out);
* ``"transposed"``: ``nn.ConvTransposeNd`` weights (in, out/g, *k); output channel
  g * (out/g) + j gathers rows g*(in/g) ... (g+1)*(in/g) - 1 of column j;
* ``"table"``: a position-embedding table broadcast over the batch, (1, N, D) in ViT's
  ``position_embeddings`` or timm's ``pos_embed``: one unit per position's row, as GPT-2's
  position embedding (an ``nn.Embedding``) has;
* ``"whole"``: scalars and vectors (biases, gains, a (1, 1, E) class token) are one unit.

A weight of 2 or more non-trivial dimensions in any other layer has no layout this module
can know: :func:`layouts_of` marks it ``"unknown"`` and AGC refuses it, naming it, unless
told (``layouts=``) or told to leave it (``exclude=``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn
from torch import Tensor

LAYOUTS = ("rows", "columns", "table", "transposed", "whole")
Layout = tuple[str, int]  # (layout, groups of a transposed convolution)


def unitwise_norm(t: Tensor, layout: str = "rows", groups: int = 1) -> Tensor:
    """The L2 norm of each unit of ``t``, shaped to broadcast against ``t``.

    Args:
        t: a parameter or gradient tensor.
        layout: ``"rows"``, ``"columns"``, ``"transposed"`` (with ``groups``) or
            ``"whole"``; tensors with fewer than 2 dimensions are always ``"whole"``.
        groups: the ConvTranspose layer's groups (``"transposed"`` only).

    Returns:
        A tensor of norms, broadcastable to ``t.shape`` after :func:`unit_view`.

    Examples:
        >>> w = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
        >>> unitwise_norm(w).flatten().tolist()
        [5.0, 1.0]
        >>> unitwise_norm(w, "columns").flatten().tolist()  # a (in, out) weight
        [3.0, 4.123105525970459]
    """
    view, dims = unit_view(t, layout, groups)
    if dims is None:
        return torch.linalg.vector_norm(view)
    return torch.linalg.vector_norm(view, dim=dims, keepdim=True)


def unit_view(t: Tensor, layout: str, groups: int = 1) -> tuple[Tensor, tuple[int, ...] | None]:
    """A view of ``t`` and the dims to reduce for per-unit norms (None: the whole tensor)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if t.dim() < 2 or layout == "whole":
        return t, None
    if layout == "rows":
        return t.reshape(t.shape[0], -1), (1,)
    if layout == "columns":
        return t, tuple(d for d in range(t.dim()) if d != 1)
    if layout == "table":
        lead = next((d for d, s in enumerate(t.shape) if s > 1), 0)
        return t.reshape(*t.shape[: lead + 1], -1), (lead + 1,)
    if groups < 1 or t.shape[0] % groups:
        raise ValueError(f"groups must divide the weight's first dimension {t.shape[0]}, "
                         f"got {groups}")
    # (in, out/g, *k) -> (g, in/g, out/g, prod k): one unit per (g, j)
    return t.reshape(groups, t.shape[0] // groups, t.shape[1], -1), (1, 3)


def _is_hf_conv1d(m: nn.Module) -> bool:
    w = getattr(m, "weight", None)
    return (type(m).__name__ == "Conv1D" and type(m).__module__.startswith("transformers")
            and isinstance(w, Tensor) and w.dim() == 2 and w.shape[1] == getattr(m, "nf", -1))


def _known_weights(m: nn.Module) -> dict[str, Layout] | None:
    """The layouts of a known layer type's weights by parameter name (None: unknown type)."""
    if _is_hf_conv1d(m):
        return {"weight": ("columns", 1)}
    if isinstance(m, nn.modules.conv._ConvTransposeNd):
        return {"weight": ("transposed", m.groups)}
    if isinstance(m, (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.Embedding,
                      nn.EmbeddingBag)):
        return {"weight": ("rows", 1)}
    if isinstance(m, nn.MultiheadAttention):
        return {k: ("rows", 1) for k in ("in_proj_weight", "q_proj_weight", "k_proj_weight",
                                          "v_proj_weight")}
    if isinstance(m, nn.RNNBase):
        return {n: ("rows", 1) for n, _ in m.named_parameters(recurse=False)
                if n.startswith("weight_")}
    return None


def _layout(m: nn.Module, name: str, p: Tensor) -> Layout:
    if p.dim() < 2:
        return ("whole", 1)
    known = _known_weights(m)
    if known is not None and name in known:
        return known[name]
    if sum(s > 1 for s in p.shape) <= 1:
        return ("whole", 1)  # a vector, whatever singleton dims it carries
    if p.shape[0] == 1 and _is_position_table(name):
        return ("table", 1)
    return ("unknown", 1)


def _is_position_table(name: str) -> bool:
    """ViT's ``position_embeddings``, timm's ``pos_embed``: names of additive tables."""
    low = name.lower()
    return ("pos" in low and "emb" in low) and "bias" not in low


def layouts_of(model: nn.Module, layouts: str | Mapping[str, str] | None = None
               ) -> dict[int, Layout]:
    """id(parameter) -> (layout, groups) for every parameter of ``model``.

    Args:
        model: the model.
        layouts: layouts for weights of unknown layers: one of ``"rows"``, ``"columns"``,
            ``"whole"`` for all of them, or a mapping from parameter or module names to
            one. The rest are ``("unknown", 1)``.

    Examples:
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.ConvTranspose2d(4, 6, 3, groups=2))
        >>> [layouts_of(net)[id(p)] for p in net.parameters()]  # weight, bias, weight, bias
        [('rows', 1), ('whole', 1), ('transposed', 2), ('whole', 1)]
    """
    given = _check_layouts(layouts)
    out: dict[int, Layout] = {}
    for mname, m in model.named_modules():
        for pname, p in m.named_parameters(recurse=False):
            full = f"{mname}.{pname}" if mname else pname
            layout = _layout(m, pname, p)
            if layout[0] == "unknown":
                chosen = given.get(full, given.get(mname, given.get("*")))
                layout = (chosen, 1) if chosen is not None else layout
            out.setdefault(id(p), layout)
    return out


def _check_layouts(layouts: str | Mapping[str, str] | None) -> dict[str, str]:
    allowed = ("rows", "columns", "table", "whole")
    if layouts is None:
        return {}
    given = {"*": layouts} if isinstance(layouts, str) else dict(layouts) \
        if isinstance(layouts, Mapping) else None
    if given is None or not all(isinstance(k, str) and v in allowed for k, v in given.items()):
        raise ValueError(f"layouts must be one of {allowed} or a mapping from parameter or "
                         f"module names to one of them, got {layouts!r}")
    return given


def bare_layouts(named: list[tuple[str, Tensor]], layouts: str | Mapping[str, str] | None
                 ) -> dict[int, Layout]:
    """Layouts of parameters given without their model: vectors are ``"whole"``; a weight's
    layout comes from ``layouts`` (by name, or one for all) or is ``"unknown"``."""
    given = _check_layouts(layouts)
    out: dict[int, Layout] = {}
    for name, p in named:
        if p.dim() < 2 or sum(s > 1 for s in p.shape) <= 1:
            out[id(p)] = ("whole", 1)
        else:
            chosen = given.get(name, given.get("*"))
            out[id(p)] = (chosen, 1) if chosen is not None else ("unknown", 1)
    return out


def unknown_layout_error(name: str, p: Tensor, owner: tuple[str, nn.Module] | None
                         ) -> ValueError:
    """The refusal for a weight whose unit axis cannot be told, naming it and the fix."""
    if owner is None:
        where, why = "", "a bare parameter carries no layer type"
    else:
        mname, m = owner
        kind = type(m).__name__
        where = f" of module '{mname or '<model>'}' ({kind})"
        why = f"{kind} is not a layer type whose weight layout AGC knows"
    return ValueError(
        f"AGC cannot tell which axis of parameter '{name}' (shape {tuple(p.shape)}){where} "
        f"indexes its output units: {why}. Pass layouts={{'{name}': 'rows'}} (dim 0 "
        "indexes units, as in nn.Linear), 'columns' (dim 1, as in an (in, out) weight) or "
        "'whole' (one unit), or exclude it")
