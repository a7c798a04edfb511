"""Training schemes for quantized layers: BinaryConnect, stochastic rounding, rounding.

Li, De, Xu, Studer, Samet & Goldstein (NeurIPS 2017) compare, for the weights of the
quantized layers (``signalprop.nn.QuantLinear`` / ``QuantConv1d`` / ``QuantConv2d``):

* ``"bc"`` (BinaryConnect): keep the float weights w (a high-precision buffer) and train
  them through their quantized values, w <- w - lr g(Q(w)); the layers' forward pass
  quantizes, their estimator carries the gradient back to w.
* ``"sr"`` (stochastic rounding): store only grid values, w <- Q_sr(w - lr g(w)), rounding
  every updated weight to one of its two neighbouring grid points with the probabilities
  that make the rounding unbiased.
* ``"r"`` (deterministic rounding): w <- Q_r(w - lr g(w)) to the nearest grid point.

For SR and R the grid of each layer is fixed when training starts: unit * codes with the
unit the layer's quantizer computes from the current weights (mean |w| for binary
mean-|w| layers); the weights are snapped onto it once, and the layer then uses its
stored weights as they are. ``signalprop.theory.rounding_chain`` shows on one weight why
SR, unlike BC, does not settle into minima as the learning rate shrinks.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from signalprop.nn.quantized import quantized_layers, round_to_grid, round_to_grid_
from signalprop.nn.quantized._layers import QuantizationWarning
from signalprop.optim._fused_step import _is_sgd, fusable, sgd_round_, stream_key
from signalprop.optim._wrapper import OptimizerWrapper

MODES = ("bc", "sr", "r")


def _refuse_shared(model: nn.Module, layers: list[tuple[str, nn.Module]], mode: str) -> None:
    """SR / R store grid values in the weights: refuse a weight another module also holds
    (tied weights, e.g. a language model's head and its embedding), which would silently
    be quantized too."""
    owners: dict[int, list[tuple[str, nn.Module]]] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        for p in m.parameters(recurse=False):
            owners.setdefault(id(p), []).append((name, m))
    for name, layer in layers:
        other = [n for n, m in owners.get(id(layer.weight), []) if m is not layer]
        if other:
            raise ValueError(
                f"the weight of quantized layer {name!r} is also the parameter of "
                f"{other[0]!r} (tied weights): mode={mode!r} stores only grid values in it, "
                f"which would quantize {other[0]!r} too. Untie them (e.g. "
                "layer.weight = nn.Parameter(layer.weight.detach().clone())), exclude the "
                "layer from quantization, or use mode='bc'")


class QuantizedTraining(OptimizerWrapper):
    """Wrap any optimizer so that the model's quantized layers train by BC, SR or R.

    ``step()`` steps the wrapped optimizer (every parameter, float ones included), then,
    for ``"sr"`` / ``"r"``, rounds the weights of the quantized layers back onto their
    grids. With ``torch.optim.SGD`` on the CPU the two happen in one pass per quantized
    weight (:mod:`signalprop.optim._fused_step`: SGD's arithmetic bit for bit, checked
    before first use; SR's random numbers then come from a counter-based generator keyed
    by seed, layer and step instead of torch's). It has the optimizer's interface
    (``zero_grad``, ``param_groups``, ``state``, ``state_dict`` / ``load_state_dict``), so
    LR schedulers, the trainer
    (``TrainConfig.quantize``) and checkpoints take it as the optimizer.

    Args:
        optimizer: any ``torch.optim.Optimizer`` (or a wrapper such as AGC).
        model: the model holding the quantized layers.
        mode: ``"bc"``, ``"sr"`` or ``"r"``.
        snap: SR / R: quantize off-grid weights silently (a fresh model always is);
            otherwise that is done with a :class:`QuantizationWarning`.
        seed: seeds the stochastic rounding (both generators).

    Raises:
        ValueError: unknown mode, no quantized layer whose weight the optimizer trains,
            a layer already trained by another scheme (mixing BC and SR on one model is
            refused: call ``release()`` on the other wrapper first), or, for SR / R, a
            quantized weight tied to another module (it would be quantized too).

    Examples:
        >>> from signalprop.nn import QuantLinear
        >>> net = nn.Sequential(QuantLinear(8, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> opt = QuantizedTraining(torch.optim.Adam(net.parameters(), 1e-2), net, "sr",
        ...                         snap=True)
        >>> net(torch.randn(4, 8)).sum().backward(); opt.step()
        >>> net[0].weight.abs().unique().numel()   # binary grid {-a, +a}
        1

    References:
        Li, De, Xu, Studer, Samet & Goldstein, "Training quantized nets: a deeper
        understanding", NeurIPS 2017.
    """

    def __init__(self, optimizer: Any, model: nn.Module, mode: str = "bc", *,
                 snap: bool = False, seed: int = 0) -> None:
        if not hasattr(optimizer, "param_groups") or not callable(getattr(optimizer, "step", None)):
            raise ValueError(f"optimizer must be a torch optimizer, got {type(optimizer).__name__}")
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not allowed; valid: {', '.join(MODES)}")
        self.optimizer, self.mode, self.seed = optimizer, mode, int(seed)
        trained = {id(p) for g in optimizer.param_groups for p in g["params"]}
        self._layers = [(n, m) for n, m in quantized_layers(model) if id(m.weight) in trained]
        if not self._layers:
            raise ValueError("the model has no quantized layer (signalprop.nn.QuantLinear, "
                             "QuantConv1d, QuantConv2d) whose weight the optimizer trains; "
                             "see signalprop.nn.quantize_modules")
        clash = [(n, m.training_scheme) for n, m in self._layers
                 if m.training_scheme not in (None, mode)]
        if clash:
            name, other = clash[0]
            raise ValueError(f"layer {name!r} is already trained by a {other!r} "
                             f"QuantizedTraining; mixing schemes on one model is refused "
                             f"(release() the other wrapper first)")
        if mode != "bc":
            _refuse_shared(model, self._layers, mode)
        self._generators: dict[str, torch.Generator] = {}
        self._fused_steps = 0  # one-pass SGD steps taken (keys SR's counter-based draws)
        self._scratch: dict[tuple[torch.device, torch.dtype], Tensor] = {}
        for _, m in self._layers:
            m.training_scheme = mode
        if mode != "bc":
            self._snap(snap)

    # ---- the grid ---------------------------------------------------------------------
    @torch.no_grad()
    def _snap(self, silent: bool) -> None:
        moved = []
        for name, m in self._layers:
            if m.grid_unit is None:
                codes, unit = m.weight_quantizer.codes(m.weight)
                m.grid_unit = unit.to(m.weight.dtype).clone()
            grid = round_to_grid(m.weight, m.grid_unit, m.weight_levels, stochastic=False)
            if not torch.equal(grid, m.weight):
                moved.append(name)
                m.weight.copy_(grid)
        if moved and not silent:
            warnings.warn(f"{self.mode.upper()} stores only grid values: the weights of "
                          f"{moved[:5]}{' ...' if len(moved) > 5 else ''} were not on their "
                          "grid and were quantized once (pass snap=True to do this silently)",
                          QuantizationWarning, stacklevel=3)

    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]

    @property
    def layers(self) -> list[str]:
        """Names of the quantized layers this scheme trains."""
        return [n for n, _ in self._layers]

    def grid_units(self) -> dict[str, Tensor | None]:
        """Each layer's grid unit (None for BC): weights are unit * codes."""
        return {n: m.grid_unit for n, m in self._layers}

    # ---- stepping ---------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Step the optimizer; SR / R then round the quantized weights onto their grids."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.mode == "bc":
            self.optimizer.step()
            return loss
        fused = self._fusable_layers()
        if not fused:
            self.optimizer.step()
            self.round_weights()
            return loss
        # The fused layers' weights are stepped and rounded in one pass each (their
        # gradients are hidden from the wrapped SGD meanwhile, so it skips them); the
        # others go through SGD's step and the rounding as usual.
        hidden = [(m.weight, m.weight.grad) for _, m, _ in fused]
        for p, _ in hidden:
            p.grad = None
        try:
            self.optimizer.step()
        finally:
            for p, g in hidden:
                p.grad = g
        stochastic = self.mode == "sr"
        for index, m, group in fused:
            sgd_round_(self.optimizer, group, m.weight, m.grid_unit, m.weight_levels,
                       stochastic=stochastic,
                       key=stream_key(self.seed, index, self._fused_steps))
        self._fused_steps += 1
        done = {id(m) for _, m, _ in fused}
        self.round_weights([m for _, m in self._layers if id(m) not in done])
        return loss

    def _fusable_layers(self) -> list[tuple[int, nn.Module, dict[str, Any]]]:
        """(index, layer, param group) of the layers whose step can run in one pass."""
        if not _is_sgd(self.optimizer):
            return []
        group_of = {id(p): g for g in self.optimizer.param_groups for p in g["params"]}
        return [(i, m, group_of[id(m.weight)]) for i, (_, m) in enumerate(self._layers)
                if fusable(self.optimizer, group_of[id(m.weight)], m.weight, m.grid_unit)]

    @torch.no_grad()
    def round_weights(self, layers: list[nn.Module] | None = None) -> None:
        """Round the quantized weights (default: all) onto their grids (SR: stochastically,
        unbiased).

        In place, layer by layer; SR draws each layer's random numbers from torch's
        generator into one scratch buffer per device and dtype (the size of the largest
        layer), so a step allocates nothing and the draws are those of
        :func:`round_to_grid` layer after layer.
        """
        stochastic = self.mode == "sr"
        for m in [m for _, m in self._layers] if layers is None else layers:
            w = m.weight
            gen = noise = None
            if stochastic:
                gen, noise = self._generator(w.device), self._noise(w)
            round_to_grid_(w, m.grid_unit, m.weight_levels, stochastic=stochastic,
                           generator=gen, noise=noise)

    def _noise(self, w: Tensor) -> Tensor:
        """A view of the scratch buffer for w's random numbers (allocated at first use)."""
        key = (w.device, w.dtype)
        buf = self._scratch.get(key)
        if buf is None:
            size = max(m.weight.numel() for _, m in self._layers
                       if (m.weight.device, m.weight.dtype) == key)
            buf = self._scratch[key] = torch.empty(size, device=w.device, dtype=w.dtype)
        return buf[:w.numel()].view(w.shape)

    def release(self) -> None:
        """Hand the layers back (they quantize their weights again in forward; SR / R
        weights stay where they are), so another scheme may train them."""
        for _, m in self._layers:
            m.training_scheme = None
            m.grid_unit = None

    # ---- the optimizer's interface ------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state, the mode, the grid units by layer and the rounding RNG."""
        return {"optimizer": self.optimizer.state_dict(),
                "quantized": {"mode": self.mode, "seed": self.seed,
                              "grid_units": {n: None if u is None else u.detach().cpu().clone()
                                             for n, u in self.grid_units().items()},
                              "rng": {k: g.get_state() for k, g in self._generators.items()},
                              "fused_steps": self._fused_steps}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or {"optimizer", "quantized"} - set(state):
            raise ValueError("state must be a dict from QuantizedTraining.state_dict() with "
                             "keys 'optimizer' and 'quantized'")
        q = state["quantized"]
        if q["mode"] != self.mode:
            raise ValueError(f"state is from a {q['mode']!r} QuantizedTraining, this one is "
                             f"{self.mode!r}")
        units = q["grid_units"]
        if set(units) != set(self.layers):
            raise ValueError(f"state has quantized layers {sorted(units)}, the model "
                             f"{sorted(self.layers)}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.seed = int(q["seed"])
        for n, m in self._layers:
            u = units[n]
            m.grid_unit = None if u is None else u.to(m.weight.device, m.weight.dtype)
        self._generators = {}
        for key, rng in q["rng"].items():
            self._generator(torch.device(key)).set_state(rng)
        self._fused_steps = int(q.get("fused_steps", 0))

    def __repr__(self) -> str:
        return (f"QuantizedTraining(mode={self.mode!r}, layers={len(self._layers)}, "
                f"optimizer={type(self.optimizer).__name__})")
