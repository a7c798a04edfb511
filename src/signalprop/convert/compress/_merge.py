"""``merge_convs``: consecutive convolutions with identity activations between them, as one
convolution each (see ``_spec`` for the arithmetic and ``_segment`` for the structure)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch.nn as nn

from signalprop._forward import ModelInput
from signalprop.convert._surgery import get_module, set_module
from signalprop.convert.compress._module import to_module
from signalprop.convert.compress._opgraph import OpGraph, forward_graph, fx_graph
from signalprop.convert.compress._segment import Segment, analyse_segment
from signalprop.convert.compress._spec import POLICIES, MergeError
from signalprop.convert.report import ConversionReport

WHAT = "merge_convs"


def segment_names(segments: Sequence[Sequence[str | int]], what: str = WHAT
                  ) -> list[list[str]]:
    """Segments as lists of module names (an integer is a top-level Sequential index)."""
    if isinstance(segments, (str, bytes)) or not isinstance(segments, Sequence):
        raise ValueError(f"segments must be a list of segments (lists of convolution names), "
                         f"got {segments!r}")
    out = []
    for s in segments:
        if isinstance(s, (str, bytes, int)) or not isinstance(s, Sequence) or not s:
            raise ValueError(f"each segment must be a non-empty list of convolution names "
                             f"or indices, got {s!r}")
        if not all(isinstance(n, (str, int)) and not isinstance(n, bool) for n in s):
            raise ValueError(f"segment {list(s)!r}: names must be strings or integers")
        out.append([str(n) for n in s])
    return out


def model_graph(model: nn.Module, example_input: ModelInput | None, what: str) -> OpGraph:
    """The op graph of ``model``: one forward on ``example_input`` when given, else
    torch.fx (a tracing failure names the module and suggests ``example_input``)."""
    if example_input is not None:
        return forward_graph(model, example_input, what)
    return fx_graph(model, what)


def _describe(seg: Segment, module: nn.Module) -> tuple[str, str]:
    conv = module[-1] if isinstance(module, nn.Sequential) else module
    detail = (f"kernel {tuple(conv.kernel_size)}, stride {tuple(conv.stride)}, groups "
              f"{conv.groups}")
    if seg.spec.moved:
        detail += (f"; exact away from the border only: zero padding of "
                   f"{', '.join(seg.spec.moved)} moved to the input")
    action = " + ".join(seg.convs) + f" -> {type(conv).__name__}"
    return action, detail


def _prune(model: nn.Module, inserted: set[int]) -> None:
    """Drop the identities this merge put inside ``nn.Sequential`` containers."""
    for m in model.modules():
        if type(m).forward is nn.Sequential.forward:
            for key in [k for k, c in m._modules.items() if id(c) in inserted]:
                del m._modules[key]


def apply_segments(model: nn.Module, graph: OpGraph, segments: list[Segment],
                   report: ConversionReport, also_identity: Sequence[str] = ()) -> nn.Module:
    """Put each segment's merged convolution in ``model`` (in place) and turn its other
    modules, and the modules ``also_identity``, into identities."""
    inserted: set[int] = set()
    by_name = graph.by_module()
    for seg in segments:
        first = by_name[seg.convs[0]].module
        module = to_module(seg.spec, dtype=first.weight.dtype, device=first.weight.device)
        model = set_module(model, seg.entry, module)
        report.add(seg.entry, *_describe(seg, module))
        for op in seg.removed(graph, "act"):
            report.add(op.name or op.scope, "activation -> identity", type(
                op.module).__name__ if op.module is not None else op.name)
        for op in seg.removed(graph, "add"):
            report.add(op.scope or "<model>", "residual addition absorbed into the kernel")
        for unit in seg.identities:
            ident = nn.Identity()
            inserted.add(id(ident))
            model = set_module(model, unit, ident)
    for name in also_identity:
        kind = type(get_module(model, name)).__name__
        ident = nn.Identity()
        inserted.add(id(ident))
        model = set_module(model, name, ident)
        report.add(name, "activation -> identity", kind)
    _prune(model, inserted)
    return model


def analyse_all(graph: OpGraph, names: list[list[str]], padding: str, what: str
                ) -> list[Segment]:
    """Every segment analysed; segments sharing an op are refused."""
    segs = [analyse_segment(graph, n, padding, what) for n in names]
    owner: dict[int, list[str]] = {}
    for seg in segs:
        for i in seg.ops:
            if i in owner:
                raise MergeError(f"{what}: segments {owner[i]} and {seg.convs} overlap")
            owner[i] = seg.convs
    return segs


def merge_convs(model: nn.Module, segments: Sequence[Sequence[str | int]], *,
                padding: str = "exact", example_input: ModelInput | None = None
                ) -> tuple[nn.Module, ConversionReport]:
    """Merge each segment of consecutive convolutions into one equivalent convolution.

    The activations between a segment's convolutions become the identity; BatchNorms
    (eval statistics) fold into the weights, Scaled-WS layers are standardized first, and
    an identity shortcut around part of a segment is absorbed into the kernel. The merged
    kernel is ``k1 + k2 - 1`` wide for stride 1 (``k1 + s1 (k2 - 1)`` in general), strides
    multiply, paddings move to the input (``p1 + s1 p2``), groups are kept where the
    product is still block diagonal (depthwise after depthwise stays depthwise).

    Exactness: with ``padding="exact"`` the merged model equals the original with those
    activations replaced by the identity, everywhere (up to float rounding); a segment
    whose inner padding cannot move to the input exactly is refused (zero padding after
    a layer with a kernel > 1, padding or a bias: zeros padded in the middle are not the
    image of zeros padded at the input). With ``padding="move"`` such zero padding is moved
    anyway, as in Kim et al. (2023): the result equals that network wherever an output's
    receptive field does not reach the moved padding, and the report lists the layers.

    Args:
        model: any module whose structure torch.fx can trace, or any module with
            ``example_input``.
        segments: lists of convolution names in execution order (an integer is a child
            index of an ``nn.Sequential``); every convolution between a segment's first
            and last must be listed, and no value inside a segment may be used outside it.
        padding: "exact" or "move" (see above).
        example_input: a batch the model accepts: read the structure from one forward
            instead of torch.fx (for models torch.fx cannot trace).

    Returns:
        (an eval-mode copy of the model with the merged convolutions, a ConversionReport).

    Raises:
        MergeError: a segment cannot be merged; the message names the layers and why.

    Examples:
        >>> import torch, torch.nn as nn, signalprop as sp
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        ...                     nn.Conv2d(8, 4, 1), nn.ReLU()).eval()
        >>> merged, report = sp.convert.merge_convs(net, [[0, 3]])
        >>> merged
        Sequential(
          (0): Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
          (4): ReLU()
        )
        >>> linear = nn.Sequential(*[m for i, m in enumerate(net) if i != 2])
        >>> x = torch.randn(2, 3, 6, 6)
        >>> torch.allclose(merged(x), linear(x), atol=1e-5)
        True
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    if padding not in POLICIES:
        raise ValueError(f"padding={padding!r} is not allowed; valid: {', '.join(POLICIES)}")
    names = segment_names(segments)
    new = copy.deepcopy(model).eval()
    graph = model_graph(new, example_input, WHAT)
    segs = analyse_all(graph, names, padding, WHAT)
    report = ConversionReport(graph.method)
    return apply_segments(new, graph, segs, report), report
