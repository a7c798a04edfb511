"""Optimizers by name, including Nesterov's accelerated gradient in Sutskever's form.

``nesterov`` is torch's ``SGD(nesterov=True)``: buf <- mu buf + g, p <- p - lr (g + mu buf).
``nag`` is the original method (Sutskever et al. 2013), where the learning rate enters the
velocity when a gradient is added:

    v_{t+1} = mu v_t - lr_t grad f(theta_t + mu v_t),   theta_{t+1} = theta_t + v_{t+1}

Storing the look-ahead point phi_t = theta_t + mu v_t as the parameters gives the update

    v <- mu v - lr_t g(phi),   phi <- phi + mu v - lr_t g(phi)

With a constant learning rate both are the same trajectory (v = -lr buf); under a schedule
they differ: in ``nag`` a change of learning rate scales only new gradients, in torch's
form it also rescales the accumulated velocity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn as nn

from signalprop.train.config import TrainConfig


class NAG(torch.optim.Optimizer):
    """Nesterov's accelerated gradient, Sutskever's formulation (see the module docstring).

    Args:
        params: parameters or parameter groups.
        lr: learning rate (> 0).
        momentum: mu in [0, 1).
        weight_decay: L2 coefficient added to the gradient (g + wd * phi).

    Examples:
        >>> w = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = NAG([w], lr=0.1, momentum=0.9)
        >>> (w**2).sum().backward(); opt.step()
        >>> round(w.item(), 4)   # v = -0.1 * 2, w = 1 + 0.9 * v - 0.1 * 2
        0.62

    References:
        Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and
        momentum in deep learning", ICML 2013.
    """

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.9,
                 weight_decay: float = 0.0) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if wd:
                    g = g.add(p, alpha=wd)
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p)
                v = state["velocity"]
                v.mul_(mu).add_(g, alpha=-lr)
                p.add_(v, alpha=mu).add_(g, alpha=-lr)
        return loss


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> tuple[Any, torch.optim.Optimizer]:
    """The optimizer ``cfg`` names, wrapped in AGC when ``cfg.agc_clipping`` is set and in
    ``QuantizedTraining`` when ``cfg.quantize`` is.

    Returns:
        ``(stepper, base)``: call ``stepper.step()`` to update; set learning rates and save
        state on ``base`` (the same object when there is no AGC; the QuantizedTraining
        wrapper when quantizing).

    Raises:
        ImportError: ``agc_clipping`` is set but ``signalprop.optim.AGC`` is not available.

    Examples:
        >>> cfg = TrainConfig(dataset="iris", optimizer="nesterov", lr=0.1, steps=10,
        ...                   agc_clipping=0.01)
        >>> stepper, base = build_optimizer(cfg, nn.Linear(4, 3))
        >>> type(stepper).__name__, type(base).__name__, base.defaults["nesterov"]
        ('AGC', 'SGD', True)
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        base: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "nesterov":
        base = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                               weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "adam":
        base = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                                weight_decay=cfg.weight_decay)
    else:
        base = NAG(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.agc_clipping is None:
        return _quantized(cfg, model, base, base)
    try:
        from signalprop.optim import AGC
    except ImportError as e:
        raise ImportError(
            f"agc_clipping={cfg.agc_clipping} needs signalprop.optim.AGC (adaptive gradient "
            f"clipping from the normalizer-free toolkit), which this installation lacks ({e}); "
            "unset agc_clipping or update signalprop") from None
    return _quantized(cfg, model, AGC(base, model, clipping=cfg.agc_clipping), base)


def _quantized(cfg: TrainConfig, model: nn.Module, stepper: Any, base: torch.optim.Optimizer
               ) -> tuple[Any, Any]:
    """With ``cfg.quantize``: the stepper wrapped in QuantizedTraining, which is then also
    the object whose learning rates are set and whose state is checkpointed (its state
    holds the grids and the rounding RNG)."""
    if cfg.quantize is None:
        return stepper, base
    from signalprop.optim import QuantizedTraining

    qt = QuantizedTraining(stepper, model, cfg.quantize, snap=True, seed=cfg.seed)
    return qt, qt
