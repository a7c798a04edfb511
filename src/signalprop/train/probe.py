"""Linear evaluation of a frozen encoder: multinomial logistic regression on its features.

Features are the encoder's outputs (flattened) in eval mode, standardized with the
training split's mean and standard deviation; the classifier is fitted by L-BFGS from zero
weights with an L2 penalty, so the result is deterministic. This is the linear evaluation
protocol of self-supervised learning (BYOL: a linear classifier on frozen features).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from signalprop.data import ArraySplit


@torch.no_grad()
def features(encoder: nn.Module, split: ArraySplit, batch: int = 1024) -> Tensor:
    """The encoder's outputs for every example of ``split`` (eval mode), (N, d) float64.

    Examples:
        >>> split = ArraySplit(torch.randn(5, 3), torch.zeros(5, dtype=torch.long))
        >>> features(nn.Linear(3, 2), split).shape
        torch.Size([5, 2])
    """
    was = encoder.training
    encoder.eval()
    device = next(encoder.parameters(), torch.empty(0)).device
    try:
        x, _ = split.tensors()
        out = [encoder(chunk.to(device)).reshape(len(chunk), -1).double().cpu()
               for chunk in x.split(batch)]
    finally:
        encoder.train(was)
    return torch.cat(out)


def linear_probe(encoder: nn.Module, train: ArraySplit, test: ArraySplit, num_classes: int,
                 *, l2: float = 1e-4, max_iter: int = 200) -> tuple[float, float]:
    """(test cross-entropy, test accuracy) of a logistic-regression probe on the features.

    Args:
        encoder: the frozen representation (its outputs are the features).
        train: examples the probe is fitted on.
        test: examples it is judged on.
        num_classes: classes of the labels.
        l2: penalty on the probe's weights (times the mean squared weight).
        max_iter: L-BFGS iterations.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(200, 4, generator=g)
        >>> split = ArraySplit(x, (x[:, 0] > 0).long())
        >>> loss, acc = linear_probe(nn.Identity(), split, split, 2)
        >>> acc > 0.95
        True
    """
    f_train, f_test = features(encoder, train), features(encoder, test)
    mean, std = f_train.mean(0), f_train.std(0).clamp_min(1e-12)
    f_train, f_test = (f_train - mean) / std, (f_test - mean) / std
    y_train, y_test = train.tensors()[1], test.tensors()[1]
    w = torch.zeros(f_train.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(f_train @ w + b, y_train) + l2 * w.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        logits = f_test @ w + b
        return (float(F.cross_entropy(logits, y_test)),
                float((logits.argmax(1) == y_test).double().mean()))
