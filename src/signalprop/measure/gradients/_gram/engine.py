"""Per-example gradient Gram matrix in one forward and one backward pass.

Every module holding trainable parameters gets a handler (Linear/ConvNd/Scaled-WS:
:mod:`._gram.layers`; Embedding: :mod:`._gram.embedding`; LayerNorm/RMSNorm:
:mod:`._gram.norm`; anything else: torch.func, :mod:`._gram.func`). The forward records
each such module's inputs and adds a zero scalar "anchor" to its output; the backward asks
autograd for the gradients of sum_i l_i with respect to the anchors only, so no parameter
gradient is formed, and hooks on the anchored outputs hand dL/d(output) to the handler,
which turns it into its (B, B) contribution as soon as its last call's gradient has
arrived and frees it.

Parameters used by a parent module without calling their own module (the output
projection of ``nn.MultiheadAttention``) belong to that parent. Parameters shared by
several modules (tied weights) are materialized per example in each and summed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor
from torch.utils import _pytree as pytree

from signalprop._forward import (
    ModelInput,
    buffers_restored,
    call_model,
    hooks_removed_after,
    locate_failure,
)
from signalprop.measure._nonfinite import NonFiniteError, check_losses
from signalprop.measure._options import check_bool, check_choice, check_label
from signalprop.measure._per_example import (
    LossFn,
    batch_size,
    batchnorm_policy,
    check_loss_fn,
    check_targets,
    per_example_losses,
)
from signalprop.measure._stochastic import dropout_policy
from signalprop.measure.gradients._gram.base import DEFAULT_CHUNK_BYTES, Handler, add_gram
from signalprop.measure.gradients._gram.broadcast import (
    input_storages,
    is_per_example,
    per_example_grads,
)
from signalprop.measure.gradients._gram.embedding import EmbeddingLayer, is_embedding
from signalprop.measure.gradients._gram.func import FuncLayer
from signalprop.measure.gradients._gram.layers import WeightLayer, weight_layer_kind
from signalprop.measure.gradients._gram.norm import NormLayer, is_norm
from signalprop.results.gram import GramResult

METHODS = ("auto", "factor", "materialize", "func")
# Modules whose forward reads their children's parameters without calling the children.
_FUSED = (nn.MultiheadAttention,)


@dataclass
class GramRun:
    """Per-module Gram contributions (model order), the strategy each used, and the order
    in which their gradients arrived during the backward."""

    layers: dict[str, Tensor]
    strategies: dict[str, str]
    arrival: list[str] = field(default_factory=list)


def _owners(model: nn.Module, called: set[int] | None) -> dict[str, tuple[nn.Module, dict]]:
    """owner module name -> (module, {relative attr: parameter}) for trainable parameters."""
    mods = dict(model.named_modules())
    out: dict[str, tuple[nn.Module, dict[str, nn.Parameter]]] = {}
    for name, m in mods.items():
        for attr, p in m._parameters.items():
            if p is None or not p.requires_grad:
                continue
            chain = [name] + [name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)]
            chain += [""] if name else []
            owner = next((a for a in chain if isinstance(mods[a], _FUSED)), name)
            if called is not None and id(mods[owner]) not in called:
                up = chain[chain.index(owner):]
                owner = next((a for a in up if id(mods[a]) in called), owner)
            rel = f"{name[len(owner):].lstrip('.')}.{attr}".lstrip(".") if owner != name else attr
            out.setdefault(owner, (mods[owner], {}))[1][rel] = p
    return out


def _make_handler(name: str, module: nn.Module, params: dict[str, nn.Parameter], b: int,
                  method: str, chunk_bytes: int) -> Handler:
    kind = weight_layer_kind(module)
    own = set(module._parameters)
    if method != "func" and set(params) <= own:
        if kind is not None:
            return WeightLayer(name, module, params, b, method, chunk_bytes)
        if is_embedding(module):
            return EmbeddingLayer(name, module, params, b, method, chunk_bytes)
        if is_norm(module):
            return NormLayer(name, module, params, b, method, chunk_bytes)
    return FuncLayer(name, module, params, b, method, chunk_bytes)


def gram_run(model: nn.Module, loss_fn: LossFn, x: ModelInput, y: Any, b: int, method: str,
             chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> GramRun:
    """The engine behind :func:`gradient_gram` (inputs already validated)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    with torch.enable_grad():  # also under a caller's torch.no_grad()
        run = _GramPass(model, b, method, chunk_bytes, called=None)
        total = run.forward(loss_fn, x, y)
        if run.parent_reads_parameters(total):
            # A module that was never called holds parameters the loss depends on: a parent
            # reads them directly. Give them to their nearest called ancestor and run again.
            run = _GramPass(model, b, method, chunk_bytes, called=run.called)
            total = run.forward(loss_fn, x, y)
        run.backward(total)
        return _collect(model, run.handlers, run.results, run.arrival, b)


def _index(stored: Any) -> Tensor:
    """The index tensor of a stored embedding call (a tensor, or FuncLayer's (args, kwargs))."""
    if isinstance(stored, Tensor):
        return stored
    args, kwargs = stored
    return args[0] if args else next(iter(kwargs.values()))


def _shared_parameters(handlers: dict[str, Handler]) -> dict[int, list[tuple[Handler, str]]]:
    """Tied weights: parameter id -> its (handler, attribute) uses, for those used twice+."""
    seen: dict[int, list[tuple[Handler, str]]] = {}
    for h in handlers.values():
        for attr, p in h.params.items():
            seen.setdefault(id(p), []).append((h, attr))
    return {pid: uses for pid, uses in seen.items() if len(uses) > 1}


class _GramPass:
    """One forward and one backward of the engine.

    The forward anchors the outputs of every handler's module (forward hooks) and, on a
    first pass (``called=None``), records which modules were called; the backward hands
    each anchored output gradient to its handler (tensor hooks), which turns into its
    Gram contribution (``results``) as soon as all of its gradients have arrived.
    """

    def __init__(self, model: nn.Module, b: int, method: str, chunk_bytes: int,
                 called: set[int] | None) -> None:
        owners = _owners(model, called)
        if not owners:
            raise ValueError("model has no trainable parameters (none with requires_grad=True)")
        self.model, self.b, self.first = model, b, called is None
        self.handlers = {n: _make_handler(n, m, ps, b, method, chunk_bytes)
                         for n, (m, ps) in owners.items()}
        self.tied = _shared_parameters(self.handlers)
        self.excluded = {h.name: frozenset(a for uses in self.tied.values()
                                           for hh, a in uses if hh is h)
                         for h in self.handlers.values()}
        self.results: dict[str, Tensor | None] = {}
        self.arrival: list[str] = []  # handler names in the order their gradients arrived
        self.anchors: list[Tensor] = []
        self.called: set[int] = set()  # ids of the modules called (first pass only)
        self.capturing = False
        # lookups shared by the whole batch: (handler, call, output), see ._gram.broadcast
        self.shared: list[tuple[Handler, int, Tensor]] = []
        self.storages: set[int] = set()
        self.losses: Tensor | None = None
        self.batched = False  # True while the per-example gradients of shared outputs run

    # ---- forward ---------------------------------------------------------------------
    def forward(self, loss_fn: LossFn, x: ModelInput, y: Any) -> Tensor:
        """Run the model with the hooks in place; return the sum of per-example losses."""
        model = self.model
        self.storages = input_storages(x)
        with hooks_removed_after() as handles:
            for h in self.handlers.values():
                handles.append(h.module.register_forward_hook(self._forward_hook(h),
                                                              with_kwargs=True))
            if self.first:
                handles += [m.register_forward_pre_hook(self._track) for m in model.modules()]
            self.capturing = True
            try:
                with buffers_restored(model):
                    out = call_model(model, x)
            except Exception as e:
                for hd in handles:
                    hd.remove()
                handles.clear()
                raise locate_failure(model, x, e) from e
            self.capturing = False
        losses = per_example_losses(loss_fn, out, y, self.b)
        check_losses(losses, model, x)
        self.losses = losses
        total = losses.sum()
        if not total.requires_grad:
            raise ValueError("the loss does not depend on any trainable parameter "
                             "(loss_fn detached the output, or nothing requires grad)")
        return total

    def _track(self, mod: nn.Module, args: Any) -> None:
        self.called.add(id(mod))

    def _forward_hook(self, h: Handler) -> Any:
        def hook(mod: nn.Module, args: Any, kwargs: Any, out: Any) -> Any:
            if not self.capturing:
                return None
            leaves, spec = pytree.tree_flatten(out)
            call = h.capture(args, kwargs, len(leaves))
            if is_embedding(h.module) and isinstance(out, Tensor) and out.requires_grad \
                    and not is_per_example(_index(h.inputs[call]), self.storages, self.b):
                h.shared_calls.add(call)
                self.shared.append((h, call, out))
                return None
            changed = False
            for k, t in enumerate(leaves):
                if (isinstance(t, Tensor) and t.is_floating_point() and t.requires_grad
                        and h.wants(k)):
                    anchor = torch.zeros((), dtype=t.dtype, device=t.device, requires_grad=True)
                    leaves[k] = t + anchor
                    leaves[k].register_hook(self._grad_hook(h, call, k))
                    self.anchors.append(anchor)
                    h.pending += 1
                    changed = True
            return pytree.tree_unflatten(leaves, spec) if changed else None

        return hook

    def parent_reads_parameters(self, total: Tensor) -> bool:
        """Whether, on a first pass, the loss depends on parameters of uncalled modules."""
        idle = [p for h in self.handlers.values() if not h.inputs for p in h.params.values()]
        if not (idle and self.first):
            return False
        used = torch.autograd.grad(total, idle, allow_unused=True, retain_graph=True)
        return any(g is not None for g in used)

    # ---- backward --------------------------------------------------------------------
    def backward(self, total: Tensor) -> None:
        """Gradients to the anchors only; then every handler's and shared part in results."""
        if self.shared:
            self.batched = True  # the anchors' hooks see this backward and ignore it
            try:
                grads = per_example_grads(self.losses, [t for _, _, t in self.shared])
            finally:
                self.batched = False
            for (h, call, _), g in zip(self.shared, grads):
                h.grads[call][0] = g.detach()
        if self.anchors:
            torch.autograd.grad(total, self.anchors, allow_unused=True)
        with torch.no_grad():
            for h in self.handlers.values():
                if h.name not in self.results:
                    self._finish(h)
            for uses in self.tied.values():
                rows = sum(h.per_example(a) if h.has_grads() else
                           torch.zeros(self.b, h.params[a].numel(), device=h.params[a].device)
                           for h, a in uses)
                key = uses[0][0].name
                self.results[key] = add_gram(self.results.get(key), rows)
                for h, _ in uses:
                    h.strategy = h.strategy if h.strategy != "?" else "materialized"
            for h in self.handlers.values():
                h.release()

    def _grad_hook(self, h: Handler, call: int, leaf: int) -> Any:
        streaming = not isinstance(h, FuncLayer) and not self.excluded[h.name]

        def hook(grad: Tensor) -> None:
            if self.batched:
                return
            if h.name not in self.arrival:
                self.arrival.append(h.name)
            h.receive(call, leaf, grad)
            if streaming and h.pending == 0:
                with torch.no_grad():
                    self._finish(h)

        return hook

    def _finish(self, h: Handler) -> None:
        self.results[h.name] = h.gram(self.excluded[h.name])
        if not self.excluded[h.name]:
            h.release()


def _collect(model: nn.Module, handlers: dict[str, Handler], results: dict[str, Tensor | None],
             arrival: list[str], b: int) -> GramRun:
    device = next(iter(handlers.values())).params
    device = next(iter(device.values())).device
    for name in arrival + [n for n in handlers if n not in arrival]:
        g = results.get(name)
        if g is not None and not bool(torch.isfinite(g).all()):
            raise NonFiniteError(
                f"per-example gradients are NaN/Inf at module '{name}' "
                f"({type(handlers[name].module).__name__}), the first such module in backward "
                "order; the forward and the losses were finite")
    layers = {}
    for n in handlers:
        g = results.get(n)
        # exact symmetry: float32 products G G^T differ from their transposes by rounding
        layers[n or "<model>"] = (0.5 * (g + g.T) if g is not None else
                                  torch.zeros(b, b, dtype=torch.float64, device=device))
    strategies = {n or "<model>": h.strategy for n, h in handlers.items()}
    return GramRun(layers, strategies, arrival)  # type: ignore[arg-type]


def gradient_gram(
    model: nn.Module,
    x: ModelInput,
    y: Any = None,
    *,
    loss_fn: LossFn | None = None,
    per_layer: bool = False,
    batchnorm: str = "auto",
    dropout: str = "auto",
    method: str = "auto",
    label: str | None = None,
) -> GramResult:
    """Gram matrix of per-example gradients, Gram_ij = <grad l_i, grad l_j>, in one backward.

    l_i is the loss of example i alone, ``loss_fn(model(x)[i:i+1], y[i:i+1])`` (see
    :func:`~signalprop.measure._per_example.per_example_losses`: it does not depend on
    ``loss_fn``'s reduction), and the gradient runs over every trainable parameter. For
    Linear and ConvNd layers (any stride, padding, dilation, groups)

        Gram_ij = sum_{t,s} <g_it, g_js> <a_it, a_js> + <sum_t g_it, sum_s g_js>

    from per-example inputs a and output gradients g, or from explicitly formed per-example
    weight gradients where that is cheaper for the layer's shapes; Embedding likewise;
    other modules go through torch.func (vmap over per-example vector-Jacobian products).
    A lookup the whole batch shares (an index that is not the model's input: position ids
    of shape (1, T), a (T, T) relative-position table) gets each example's own gradient of
    the shared output from a batched backward of the per-example losses.

    Args:
        model: any module that treats examples independently (no BatchNorm in train mode:
            see ``batchnorm``; no other cross-example operations).
        x: (B, ...) input (or a tuple / dict of inputs with batch axis 0), B >= 1.
        y: (B, ...) targets or None.
        loss_fn: ``loss_fn(output, y) -> scalar`` (``loss_fn(output)`` when ``y`` is None),
            e.g. ``torch.nn.CrossEntropyLoss()``; required.
        per_layer: also give one matrix per module holding trainable parameters
            (``result.layers``).
        batchnorm: ``"auto"`` and ``"error"`` refuse BatchNorm in train mode (its batch
            statistics couple the examples); ``"eval"`` uses running statistics for the
            duration of the call.
        dropout: ``"auto"`` and ``"error"`` refuse a forward that draws random numbers
            (train-mode dropout: the Gram of one random mask, different at every call);
            ``"eval"`` runs every module except BatchNorm in eval mode for the call.
        method: ``"auto"`` (cheaper of factorized/materialized per layer), ``"factor"``,
            ``"materialize"``, or ``"func"`` (torch.func for every module).

    NOTE: a loss that couples examples (contrastive losses, losses on batch statistics) is,
    by this definition, evaluated on each example alone. A *model* that couples examples
    other than through train-mode BatchNorm (a module mixing the batch axis) is not
    detected: the result then splits the batched gradient by example instead.

        label: the result's label (default: the model's class name).

    Returns:
        :class:`~signalprop.results.GramResult`: ``matrix`` (B, B) float64;
        ``strategies`` (module name -> how its part was computed); with ``per_layer``,
        ``layers`` (module name -> its (B, B) contribution, in model order; they sum to
        the total). Unused parameters contribute zero; a parameter shared by several
        modules is counted once, under the first module.

    Raises:
        ValueError: empty batch, mismatched ``y``, a loss that is not one number per
            example, train-mode BatchNorm, no trainable parameters.
        NonFiniteError: NaN/Inf in the forward, the losses or the gradients (the message
            names the first module).

    Examples:
        >>> model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
        >>> res = gradient_gram(model, torch.randn(4, 5), torch.tensor([0, 1, 2, 0]),
        ...                     loss_fn=nn.CrossEntropyLoss())
        >>> G = res.matrix
        >>> G.shape, bool(torch.equal(G, G.T)), bool((torch.linalg.eigvalsh(G) > -1e-6).all())
        (torch.Size([4, 4]), True, True)
        >>> res.strategies
        {'0': 'factorized', '2': 'factorized'}

    References:
        Goodfellow, "Efficient per-example gradient computations" (2015); Rochette et al.,
        "Efficient per-example gradient computations in convolutional neural networks"
        (2019); Sankararaman et al., "The impact of neural network overparameterization on
        gradient confusion and stochastic gradient descent", ICML 2020.
    """
    b = batch_size(x)
    check_targets(y, b)
    check_loss_fn(loss_fn)
    check_bool("per_layer", per_layer)
    check_choice("method", method, METHODS)
    check_label(label)
    with batchnorm_policy(model, batchnorm), \
            dropout_policy(model, x, dropout, "the per-example gradient Gram"):
        run = gram_run(model, loss_fn, x, y, b, method)  # type: ignore[arg-type]
    # elementwise additions keep the exact symmetry of every part (a vectorized reduction
    # over a stacked axis need not: its summation order differs between (i, j) and (j, i))
    total = functools.reduce(torch.add, run.layers.values())
    return GramResult(label=label or type(model).__name__, matrix=total,
                      layers=run.layers if per_layer else {}, strategies=run.strategies,
                      meta={"batchnorm": batchnorm, "dropout": dropout, "method": method})
