"""Training helpers of the depth-dp claim: Adam with a cosine schedule on tensors held in
memory, accuracy and loss of a model in eval mode."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def train(net: nn.Module, x: Tensor, y: Tensor, *, epochs: int, lr: float, seed: int,
          batch: int = 64) -> nn.Module:
    """Adam (cosine-decayed ``lr``) on cross-entropy for ``epochs``; returns ``net`` in
    eval mode.

    Examples:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> x, y = torch.randn(32, 1, 2, 2), torch.randint(0, 2, (32,))
        >>> train(net, x, y, epochs=2, lr=1e-2, seed=0).training
        False
    """
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * ((len(y) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: nn.Module, x: Tensor, y: Tensor) -> float:
    """Percent of ``x`` classified as ``y`` (eval mode).

    Examples:
        >>> accuracy(nn.Identity(), torch.eye(3), torch.tensor([0, 1, 0]))
        66.66666865348816
    """
    return 100.0 * (net.eval()(x).argmax(1) == y).float().mean().item()


@torch.no_grad()
def neg_loss(net: nn.Module, x: Tensor, y: Tensor) -> float:
    """Minus the mean cross-entropy of ``net`` on ``(x, y)`` (higher is better).

    Examples:
        >>> round(neg_loss(nn.Identity(), torch.zeros(2, 4), torch.tensor([0, 1])), 4)
        -1.3863
    """
    return -F.cross_entropy(net(x), y).item()
