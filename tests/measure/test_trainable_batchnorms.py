"""trainable_batchnorms walks the module tree like named_modules() (same names, order,
shared modules once), faster."""

import torch.nn as nn

from signalprop.measure._per_example import trainable_batchnorms


def _reference(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]


def test_matches_named_modules_on_nested_shared_and_eval_modules():
    shared = nn.BatchNorm2d(3)
    inner = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), shared)
    model = nn.Sequential(nn.BatchNorm1d(4), inner,
                          nn.ModuleDict({"a": nn.BatchNorm3d(2), "b": shared}),
                          nn.ModuleList([nn.Sequential(nn.BatchNorm1d(5)), nn.Identity()]))
    model[3][0][0].eval()  # not in train mode: not listed
    got, ref = trainable_batchnorms(model), _reference(model)
    assert [n for n, _ in got] == [n for n, _ in ref] == ["0", "1.1", "1.2", "2.a"]
    assert all(a is b for (_, a), (_, b) in zip(got, ref))


def test_no_batchnorm_gives_an_empty_list():
    assert trainable_batchnorms(nn.Sequential(nn.Linear(2, 2), nn.ReLU())) == []
