"""Adaptive Gradient Clipping (Brock, De, Smith & Simonyan, arXiv 2102.06171) for any optimizer."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from signalprop._forward import ModelInput
from signalprop.optim._head import HeadWatcher, find_classifier
from signalprop.optim._wrapper import OptimizerWrapper
from signalprop.optim.unitwise import bare_layouts, layouts_of, unit_view, unknown_layout_error

Exclude = Sequence[str] | Callable[[str, nn.Parameter], bool] | None


class AGC(OptimizerWrapper):
    """Clip each unit's gradient relative to its weight's norm, then step ``optimizer``.

    For every unit u (see :mod:`signalprop.optim.unitwise`) of every clipped parameter:

        if ||G_u|| > lambda * max(||W_u||, eps):   G_u <- lambda * max(||W_u||, eps) * G_u / ||G_u||

    The final classifier is never clipped: by default it is the last ``nn.Linear`` the model
    applies, found by watching a forward (the one before the first ``step()``, or
    ``example_input`` at construction) -- never by parameter position. Parameters without a
    gradient (frozen, unused) are skipped.

    With ``torch.amp.GradScaler``, call ``scaler.step(agc)``: the scaler unscales the
    gradients first (or skips the step on Inf/NaN), so clipping always sees true gradients.
    LR schedulers take ``agc.optimizer`` (the param groups are shared).

    Args:
        optimizer: any ``torch.optim.Optimizer``.
        model_or_params: the model (needed for the default exclusion and for layouts), or
            parameters / (name, parameter) pairs (then ``exclude`` must be given, and
            ``layouts`` for every weight of 2 or more dimensions).
        clipping: lambda > 0 (0.01 at batch 4096 in the paper; larger at small batches).
        eps: >= 0, floor on the weight norm so zero-initialised weights can move.
        exclude: None (the classifier), names of parameters or modules, or a predicate
            ``f(name, parameter) -> bool``; ``()`` clips everything.
        example_input: a batch to find the classifier now instead of at the first step.
        layouts: the unit axis of weights AGC cannot tell from their layer (see
            :mod:`signalprop.optim.unitwise`: ``nn.Linear``, convolutions, transposed
            convolutions, embeddings, attention, RNNs and HuggingFace's ``Conv1D`` are
            known): ``"rows"``, ``"columns"`` or ``"whole"`` for all of them, or a mapping
            from parameter or module names to one. Any other weight that would be clipped
            raises ValueError naming it.

    Examples:
        >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> agc = AGC(torch.optim.SGD(net.parameters(), lr=0.1), net, clipping=0.01)
        >>> net(torch.randn(16, 4)).square().sum().backward()
        >>> agc.step()
        >>> agc.excluded
        ['2.bias', '2.weight']

    References:
        Brock, De, Smith & Simonyan, "High-performance large-scale image recognition
        without normalization", ICML 2021 (arXiv 2102.06171).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        model_or_params: nn.Module | Iterable[Any],
        clipping: float = 0.01,
        eps: float = 1e-3,
        exclude: Exclude = None,
        *,
        example_input: ModelInput | None = None,
        layouts: str | Mapping[str, str] | None = None,
    ) -> None:
        if not hasattr(optimizer, "param_groups") or not callable(getattr(optimizer, "step", None)):
            raise ValueError(f"optimizer must be a torch optimizer, got {type(optimizer).__name__}")
        _check(clipping, eps)
        self.optimizer = optimizer
        self.clipping, self.eps = float(clipping), float(eps)
        self._watcher: HeadWatcher | None = None
        if isinstance(model_or_params, nn.Module):
            self.model: nn.Module | None = model_or_params
            named = list(model_or_params.named_parameters())
            self._layouts = layouts_of(model_or_params, layouts)
        else:
            self.model = None
            items = list(model_or_params)
            named = [it if isinstance(it, tuple) else (f"<param {i}>", it)
                     for i, it in enumerate(items)]
            self._layouts = bare_layouts(named, layouts)
        self._names = {id(p): n for n, p in named}
        self._excluded: set[int] = set()
        if exclude is None:
            if self.model is None:
                raise ValueError("exclude must be given when AGC gets parameters instead of the "
                                 "model: the classifier is found from the model's graph")
            if example_input is not None:
                _, head = find_classifier(self.model, example_input)
                self._exclude_module(head)
            else:
                self._watcher = HeadWatcher(self.model)
        else:
            self._excluded = _resolve_exclude(exclude, named, self.model)
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                if id(p) not in self._excluded:
                    self._layout(p)

    # ---- exclusion ------------------------------------------------------------------
    def _exclude_module(self, module: nn.Module) -> None:
        self._excluded = {id(p) for p in module.parameters()}

    def _resolve_head(self) -> None:
        if self._watcher is not None:
            try:
                _, head = self._watcher.head()
            finally:
                self._watcher.close()
                self._watcher = None
            self._exclude_module(head)

    @property
    def excluded(self) -> list[str]:
        """Names of the parameters never clipped (resolved at the first step by default)."""
        return sorted(self._names.get(i, "<unnamed>") for i in self._excluded)

    # ---- clipping -------------------------------------------------------------------
    @torch.no_grad()
    def clip_gradients(self) -> None:
        """Clip the gradients in place (what ``step`` does before stepping)."""
        self._resolve_head()
        lam, eps = self.clipping, self.eps
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None or id(p) in self._excluded:
                    continue
                layout, groups = self._layout(p)
                _clip_(p, p.grad, layout, groups, lam, eps)

    def _layout(self, p: Tensor) -> tuple[str, int]:
        """The unit layout of ``p``; ValueError naming it where it cannot be told."""
        layout = self._layouts.get(id(p))
        if layout is None:  # not among the parameters AGC was given
            layout = bare_layouts([("", p)], None)[id(p)]
        if layout[0] == "unknown":
            name = self._names.get(id(p), "<a parameter AGC was not given>")
            raise unknown_layout_error(name, p, self._owner(p))
        return layout

    def _owner(self, p: Tensor) -> tuple[str, nn.Module] | None:
        if self.model is None:
            return None
        for mname, m in self.model.named_modules():
            if any(q is p for q in m.parameters(recurse=False)):
                return mname, m
        return None

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Clip, then ``optimizer.step(closure)`` (a closure runs before clipping)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.clip_gradients()
        self.optimizer.step()
        return loss

    # ---- the optimizer's interface --------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state and AGC's settings, excluded parameters by name."""
        if self._watcher is not None and self._watcher.calls:
            self._resolve_head()
        return {
            "optimizer": self.optimizer.state_dict(),
            "agc": {"clipping": self.clipping, "eps": self.eps,
                    "excluded": None if self._watcher is not None else self.excluded},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or {"optimizer", "agc"} - set(state):
            raise ValueError("state must be a dict from AGC.state_dict() with keys "
                             "'optimizer' and 'agc'")
        cfg = state["agc"]
        _check(cfg["clipping"], cfg["eps"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.clipping, self.eps = float(cfg["clipping"]), float(cfg["eps"])
        if cfg["excluded"] is not None:
            by_name = {n: i for i, n in self._names.items()}
            unknown = [n for n in cfg["excluded"] if n not in by_name]
            if unknown:
                raise ValueError(f"state excludes parameters this model lacks: {unknown[:5]}")
            if self._watcher is not None:
                self._watcher.close()
                self._watcher = None
            self._excluded = {by_name[n] for n in cfg["excluded"]}

    def __repr__(self) -> str:
        head = "<found at the first step>" if self._watcher is not None else self.excluded
        return (f"AGC(clipping={self.clipping:g}, eps={self.eps:g}, excluded={head}, "
                f"optimizer={type(self.optimizer).__name__})")


def _check(clipping: float, eps: float) -> None:
    if not (isinstance(clipping, (int, float)) and math.isfinite(clipping) and clipping > 0):
        raise ValueError(f"clipping must be a finite number > 0, got {clipping!r}")
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")


def _clip_(p: Tensor, g: Tensor, layout: str, groups: int, lam: float, eps: float) -> None:
    w_view, dims = unit_view(p, layout, groups)
    g_view, _ = unit_view(g, layout, groups)
    if dims is None:
        w_norm, g_norm = torch.linalg.vector_norm(w_view), torch.linalg.vector_norm(g_view)
    else:
        w_norm = torch.linalg.vector_norm(w_view, dim=dims, keepdim=True)
        g_norm = torch.linalg.vector_norm(g_view, dim=dims, keepdim=True)
    max_norm = w_norm.clamp_min(eps).mul_(lam)
    # g_norm > max_norm >= 0 wherever the factor is used, so the floor only avoids 0/0.
    factor = torch.where(g_norm > max_norm, max_norm / g_norm.clamp_min(1e-30),
                         torch.ones_like(g_norm))
    g_view.mul_(factor.to(g_view.dtype))
    if g_view.data_ptr() != g.data_ptr():
        # reshape copied a non-contiguous gradient (channels_last, ...): write it back
        g.copy_(g_view.reshape(g.shape))


def _resolve_exclude(exclude: Exclude, named: list[tuple[str, Any]],
                     model: nn.Module | None) -> set[int]:
    if callable(exclude) and not isinstance(exclude, (str, Sequence)):
        return {id(p) for n, p in named if exclude(n, p)}
    names = [exclude] if isinstance(exclude, str) else list(exclude)  # type: ignore[arg-type]
    if not all(isinstance(n, str) for n in names):
        raise ValueError("exclude must be None, names (str) or a predicate f(name, param), got "
                         f"{exclude!r}")
    by_name = dict(named)
    modules = dict(model.named_modules()) if model is not None else {}
    out: set[int] = set()
    for n in names:
        if n in by_name:
            out.add(id(by_name[n]))
        elif n in modules:
            out |= {id(p) for p in modules[n].parameters()}
        else:
            raise ValueError(f"exclude: {n!r} names no parameter or module of the model")
    return out
