"""BYOL, Bootstrap Your Own Latent (Grill et al., NeurIPS 2020, arXiv 2006.07733), as a
training objective of :func:`signalprop.train.fit` (``objective="byol"``).

The model being trained is the encoder f. BYOL adds a projector g and a predictor q (MLPs
Linear -> norm -> ReLU -> Linear) and a target copy (f', g') of the online f and g. For
two augmented views v, v' of a batch:

    L = mean_i [ (2 - 2 cos(q(g(f(v_i))), g'(f'(v'_i)))) + (2 - 2 cos(q(g(f(v'_i))), g'(f'(v_i)))) ]

with no gradient into the target, which follows the online network as an exponential
moving average xi <- tau xi + (1 - tau) theta after every step, with
tau_k = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2 rising from tau_base to 1 over the K
steps of the run. Buffers (BatchNorm statistics) are copied to the target.

Evaluation (``fit``'s test records): a linear probe on the frozen online encoder's
features (``signalprop.train.probe``) gives ``loss`` and ``acc``; ``signalprop.collapse``
of the online projections g(f(.)) of two views of the test split gives ``std_ratio``,
``effective_rank``, ``cos_views``, ``cos_examples`` and ``dead_dims``.

The heads are normalized by ``objective_args.head_norm``: ``"bn"`` (BYOL's BatchNorm,
the default), ``"gn"`` (GroupNorm: no batch statistics), ``"ln"`` or ``"none"``.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from signalprop.nn import group_count
from signalprop.train.augment import Augment

_EVAL_KEY = 2**31 - 1  # the views of the test split: one fixed draw, not a training step
#: objective_args keys and defaults.
DEFAULTS: dict[str, Any] = {"tau": 0.99, "hidden": 128, "proj_dim": 32, "shift": 4,
                            "noise": 0.1, "mask": 8, "scale": 0.2, "probe_l2": 1e-4,
                            "head_norm": "bn"}
HEAD_NORMS = ("none", "bn", "gn", "ln")


def tau_at(step: int, total: int, base: float) -> float:
    """The EMA decay after ``step`` of ``total`` updates: cosine from ``base`` up to 1.

    Examples:
        >>> [round(tau_at(k, 10, 0.9), 3) for k in (0, 5, 10)]
        [0.9, 0.95, 1.0]
    """
    return 1.0 - (1.0 - base) * (math.cos(math.pi * step / total) + 1.0) / 2.0


def _mlp(inp: int, hidden: int, out: int, norm: str = "none") -> nn.Sequential:
    """Linear -> [BatchNorm1d | GroupNorm] -> ReLU -> Linear (BYOL's heads)."""
    mid: list[nn.Module] = []
    if norm == "bn":
        mid = [nn.BatchNorm1d(hidden)]
    elif norm == "gn":
        mid = [nn.GroupNorm(group_count(hidden, 32), hidden)]
    elif norm == "ln":
        mid = [nn.LayerNorm(hidden)]
    return nn.Sequential(nn.Linear(inp, hidden), *mid, nn.ReLU(), nn.Linear(hidden, out))


class BYOL(nn.Module):
    """Online encoder + projector + predictor, and their EMA target; ``forward(v1, v2)``
    returns the symmetric BYOL loss (mean over the batch).

    Args:
        encoder: the representation network f (its output is flattened per example).
        feature_dim: f's output size per example.
        hidden: hidden width of the projector and predictor MLPs.
        proj_dim: projection size.

    Examples:
        >>> byol = BYOL(nn.Linear(8, 16), 16, hidden=32, proj_dim=8)
        >>> v = torch.randn(4, 8)
        >>> loss = byol(v, v)  # between 0 and 8
        >>> 0 <= loss.item() <= 8, byol.target_encoder.weight.requires_grad
        (True, False)
    """

    def __init__(self, encoder: nn.Module, feature_dim: int, hidden: int = 128,
                 proj_dim: int = 32, head_norm: str = "none") -> None:
        super().__init__()
        if head_norm not in HEAD_NORMS:
            raise ValueError(f"head_norm={head_norm!r} is not allowed; valid: "
                             f"{', '.join(HEAD_NORMS)}")
        self.encoder = encoder
        self.projector = _mlp(feature_dim, hidden, proj_dim, head_norm)
        self.predictor = _mlp(proj_dim, hidden, proj_dim, head_norm)
        self.target_encoder = copy.deepcopy(encoder)
        self.target_projector = copy.deepcopy(self.projector)
        for p in (*self.target_encoder.parameters(), *self.target_projector.parameters()):
            p.requires_grad_(False)

    def _online(self, v: Tensor) -> Tensor:
        y = self.encoder(v)
        return self.predictor(self.projector(y.reshape(y.shape[0], -1)))

    def _target(self, v: Tensor) -> Tensor:
        with torch.no_grad():
            y = self.target_encoder(v)
            return self.target_projector(y.reshape(y.shape[0], -1))

    def forward(self, v1: Tensor, v2: Tensor) -> Tensor:
        p1, p2 = self._online(v1), self._online(v2)
        t1, t2 = self._target(v1), self._target(v2)
        loss = (2 - 2 * F.cosine_similarity(p1, t2, dim=-1)) + (
            2 - 2 * F.cosine_similarity(p2, t1, dim=-1))
        return loss.mean()

    @torch.no_grad()
    def update_target(self, tau: float) -> None:
        """xi <- tau xi + (1 - tau) theta; buffers copied."""
        for online, target in ((self.encoder, self.target_encoder),
                               (self.projector, self.target_projector)):
            for p, q in zip(online.parameters(), target.parameters()):
                q.mul_(tau).add_(p.detach(), alpha=1.0 - tau)
            for b, c in zip(online.buffers(), target.buffers()):
                c.copy_(b)


class _Projection(nn.Module):
    """The online projection g(f(x)): the embedding BYOL's loss compares."""

    def __init__(self, byol: BYOL) -> None:
        super().__init__()
        self.byol = byol

    def forward(self, x: Tensor) -> Tensor:
        y = self.byol.encoder(x)
        return self.byol.projector(y.reshape(y.shape[0], -1))


class BYOLObjective:
    """What the trainer needs for ``objective="byol"``: the module to train, the loss of a
    batch, the EMA update after a step, and the evaluation (probe and collapse).

    Examples:
        >>> from signalprop.data import load_dataset
        >>> data = load_dataset("iris")
        >>> obj = BYOLObjective(nn.Linear(4, 8), data, seed=0, args={"hidden": 16})
        >>> x, _ = data.train.batch(torch.arange(16))
        >>> loss, stats = obj.loss(obj.module, x, step=0)
        >>> stats[2], sorted(obj.evaluate())[:3]
        (16.0, ['acc', 'cos_examples', 'cos_views'])
    """

    def __init__(self, model: nn.Module, data: Any, seed: int, args: dict[str, Any],
                 total: int = 1) -> None:
        unknown = sorted(set(args) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown objective_args {unknown} for 'byol'; valid: "
                             f"{', '.join(DEFAULTS)}")
        self.args = {**DEFAULTS, **args}
        if not 0.0 <= self.args["tau"] < 1.0:
            raise ValueError(f"objective_args.tau must be in [0, 1), got {self.args['tau']!r}")
        self.augment = Augment(int(self.args["shift"]), float(self.args["noise"]),
                               int(self.args["mask"]), float(self.args["scale"]))
        self.data, self.seed, self.total, self.model = data, int(seed), int(total), model
        x, _ = data.train.batch(torch.arange(min(2, len(data.train))))
        self.device = next(model.parameters(), torch.empty(0)).device
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            was = model.training
            model.eval()
            dim = model(x.to(self.device)).reshape(x.shape[0], -1).shape[1]
            model.train(was)
        self.module = BYOL(model, dim, int(self.args["hidden"]), int(self.args["proj_dim"]),
                           str(self.args["head_norm"]))

    def _generator(self, *key: int) -> torch.Generator:
        state = np.random.SeedSequence([self.seed, *key]).generate_state(2)
        return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))

    def views(self, x: Tensor, *key: int) -> tuple[Tensor, Tensor]:
        """Two augmented views of ``x``, drawn from a generator seeded by (seed, *key)."""
        gen = self._generator(*key)
        return self.augment(x, gen), self.augment(x, gen)

    def loss(self, net: nn.Module, x: Tensor, step: int, rank: int = 0
             ) -> tuple[Tensor, list[float]]:
        """The BYOL loss of a batch and [loss sum, 0 (no predictions), count]."""
        v1, v2 = self.views(x, step, rank)
        loss = net(v1, v2)
        n = float(x.shape[0])
        return loss, [loss.item() * n, 0.0, n]

    def after_step(self, step: int) -> None:
        """EMA update of the target after update ``step`` (0-based)."""
        self.module.update_target(tau_at(step + 1, self.total, self.args["tau"]))

    def evaluate(self) -> dict[str, float]:
        """Linear probe (``loss``, ``acc``) and collapse statistics on the test split."""
        from signalprop.measure import collapse
        from signalprop.train.probe import linear_probe

        enc = self.module.encoder
        loss, acc = linear_probe(enc, self.data.train, self.data.test, self.data.num_classes,
                                 l2=float(self.args["probe_l2"]))
        x, _ = self.data.test.tensors()
        v1, v2 = (v.to(self.device) for v in self.views(x, _EVAL_KEY))
        r = collapse(_Projection(self.module), v1, x2=v2, batchnorm="eval")
        return {"loss": loss, "acc": acc, "std_ratio": r.std_ratio,
                "effective_rank": r.effective_rank, "cos_views": float(r.cos_views),
                "cos_examples": r.cos_examples, "dead_dims": float(r.dead_dims)}
