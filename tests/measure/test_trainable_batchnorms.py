"""The one-walk module listing (unique_modules) and what batchnorm_policy builds on it:
the same modules, in the same order, as torch's own modules()/named_modules(), shared
modules once, and the refusal naming them as named_modules() does."""

import pytest
import torch.nn as nn

from signalprop._forward import unique_modules
from signalprop.measure._per_example import batchnorm_policy, trainable_batchnorms


def _model() -> nn.Module:
    shared = nn.BatchNorm2d(3)
    inner = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), shared)
    model = nn.Sequential(nn.BatchNorm1d(4), inner,
                          nn.ModuleDict({"a": nn.BatchNorm3d(2), "b": shared}),
                          nn.ModuleList([nn.Sequential(nn.BatchNorm1d(5)), nn.Identity()]))
    model[3][0][0].eval()  # not in train mode: not listed
    return model


def test_unique_modules_is_modules_in_order():
    model = _model()
    got, ref = unique_modules(model), list(model.modules())
    assert len(got) == len(ref) and all(a is b for a, b in zip(got, ref))


def test_trainable_batchnorms_match_named_modules():
    model = _model()
    ref = [(n, m) for n, m in model.named_modules()
           if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    assert [n for n, _ in ref] == ["0", "1.1", "1.2", "2.a"]
    got = trainable_batchnorms(model)
    assert len(got) == 4 and all(a is b for a, (_, b) in zip(got, ref))


def test_the_refusal_names_the_first_three_as_named_modules_does():
    with pytest.raises(ValueError, match=r"4 BatchNorm module\(s\) in train mode "
                                         r"\('0', '1.1', '1.2' \.\.\.\)"):
        with batchnorm_policy(_model(), "error"):
            pass


def test_no_batchnorm_gives_an_empty_list():
    assert trainable_batchnorms(nn.Sequential(nn.Linear(2, 2), nn.ReLU())) == []
