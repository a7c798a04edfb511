"""Every public tool on models nobody here wrote (issue 14, "Done when"): HuggingFace BERT,
GPT-2, ViT, the T5 encoder, ResNet and ConvNeXt (tiny configs, built offline), torch's
TransformerEncoder pre- and post-LN, an LSTM model and a ModuleDict model. Each result is
checked against an independent computation (hooks and float64 statistics, a per-example
loop, dense Jacobians, ARPACK on Hessian-vector products, a hand-made perturbation), or
the tool refuses with a clear message that docs/foreign-models.md lists as a known limit.

The conversions and AGC are checked in tests/foreign/test_fixes_on_foreign_models.py.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
from scipy.sparse.linalg import LinearOperator, eigsh

import signalprop as sp

from .zoo import CASES, loss, output_tensor

pytest.importorskip("transformers")

IDS = [c.name for c in CASES]


def math_attention():
    """torch's reference attention (double-differentiable) for the reference computations."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)


def first(obj):
    """The first floating tensor of a module's output or arguments."""
    if isinstance(obj, torch.Tensor):
        return obj if obj.is_floating_point() else None
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (tuple, list)) \
        else ()
    return next((t for t in map(first, items) if t is not None), None)


def channel_stats(y, cdim):
    """(mean_c mean(y_c)^2, mean_c var(y_c)) in float64, by hand."""
    y = y.detach().double().movedim(cdim, -1)
    y = y.reshape(-1, y.shape[-1])
    mean = y.mean(0)
    return float(mean.square().mean()), float((y - mean).square().mean(0).mean())


def block_io(model, names, x, grad=False):
    """name -> (input, output) of each block's first call in one forward (+ the output)."""
    modules = dict(model.named_modules())
    io, handles = {}, []

    def hook(name):
        def fn(mod, args, kwargs, out):
            if name not in io:
                io[name] = (first((args, kwargs)), first(out))
        return fn

    for n in names:
        handles.append(modules[n].register_forward_hook(hook(n), with_kwargs=True))
    try:
        with torch.set_grad_enabled(grad):
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    return io, out


def bn_mode(case):
    return "eval" if case.batchnorm else "auto"


def reference_model(case, double=True):
    """The model as the per-example references see it: BatchNorm on running statistics
    (what ``batchnorm="eval"`` measures), float64."""
    model = case.model()
    if case.batchnorm:
        model.eval()
    return model.double() if double else model


def as_double(x):
    return x.double() if x.is_floating_point() else x


# ---- forward and backward SPPs ----------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_spp_blocks_skips_and_statistics(case):
    model, x = case.model(), case.x()
    res = sp.spp(model, x, channel_dim=case.channel_dim)
    # the residual units (not the stages), found from what the forward computes
    assert res.names == case.blocks
    assert res.skips == ({n: case.skip for n in case.blocks} if case.skip else {})
    io, _ = block_io(copy.deepcopy(model), case.blocks, x)
    for r in res.records:
        inp, out = io[r.name]
        sq, var = channel_stats(out, case.channel_dim)
        assert r.avg_sq_mean == pytest.approx(sq, rel=1e-5, abs=1e-12)
        assert r.avg_var == pytest.approx(var, rel=1e-5, abs=1e-12)
        if case.skip == "identity":  # y = x + branches: Var(y - x) is the branches'
            assert r.res_var == pytest.approx(channel_stats(out - inp, case.channel_dim)[1],
                                              rel=1e-4, abs=1e-12)
        else:  # post-norm, post-activation or no skip: y - x is no branch
            assert r.res_var is None


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradient_spp_against_hooks_and_autograd(case):
    model, x = case.model(), case.x()
    res = sp.gradient_spp(model, x, channel_dim=case.channel_dim, seed=3)
    assert [r.name for r in res.records] == case.blocks
    ref = copy.deepcopy(model)
    io, out = block_io(ref, case.blocks, x, grad=True)
    t = first(out)
    probe = torch.randn(t.shape, generator=torch.Generator().manual_seed(3),
                        dtype=torch.float64).to(t.dtype)
    outs = [io[n][1] for n in case.blocks]
    grads = torch.autograd.grad((t * probe).sum(), outs)
    for r, g in zip(res.records, grads):
        sq, var = channel_stats(g, case.channel_dim)
        assert r.grad_avg_sq_mean == pytest.approx(sq, rel=1e-4, abs=1e-14)
        assert r.grad_avg_var == pytest.approx(var, rel=1e-4, abs=1e-14)


# ---- per-example gradients ---------------------------------------------------------------


def brute_rows(model, x):
    """{parameter name: (B, numel)} per-example gradients, one backward per example."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    rows = {n: [] for n, _ in named}
    for i in range(x.shape[0]):
        with math_attention():
            gs = torch.autograd.grad(loss(model(x[i:i + 1])), [p for _, p in named],
                                     allow_unused=True)
        for (n, p), g in zip(named, gs):
            rows[n].append((torch.zeros_like(p) if g is None else g).reshape(-1).double())
    return {n: torch.stack(r) for n, r in rows.items()}


def owner(param, layers):
    """The layer a parameter belongs to: the longest layer name prefixing it."""
    cands = [n for n in layers if n != "<model>" and param.startswith(n + ".")]
    return max(cands, key=len) if cands else "<model>"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradient_gram_and_confusion_against_a_per_example_loop(case):
    # BERT/GPT-2/T5 read position embeddings with ids of shape (1, T) (T5: a (T, T)
    # relative-position table): one lookup shared by the batch; GPT-2's LM head is tied to
    # its token embedding and its layers are HF Conv1D (weight (in, out)); LayerNorms go
    # through torch.func
    model, x = reference_model(case), as_double(case.x())
    rows = brute_rows(model, x)
    ref = sum(r @ r.T for r in rows.values())
    res = sp.gradient_gram(model, x, loss_fn=loss, batchnorm=bn_mode(case), per_layer=True)
    assert float((res.matrix - ref).abs().max() / ref.abs().max()) < 1e-9
    parts = {name: torch.zeros_like(ref) for name in res.layers}
    for name, r in rows.items():  # a tied parameter counts once, under its first module
        parts[owner(name, res.layers)] += r @ r.T
    for name, g in res.layers.items():
        assert float((g - parts[name]).abs().max()) <= 1e-9 * float(ref.abs().max()), name
    conf = sp.gradient_confusion(model, x, loss_fn=loss, batchnorm=bn_mode(case))
    norms = ref.diagonal().sqrt()
    iu = torch.triu_indices(len(ref), len(ref), 1)
    cos = (ref / norms[:, None] / norms[None, :])[iu[0], iu[1]]
    assert conf.min_cosine == pytest.approx(float(cos.min()), abs=1e-7)
    assert conf.mean_cosine == pytest.approx(float(cos.mean()), abs=1e-7)
    assert conf.eta == pytest.approx(max(0.0, -float(ref[iu[0], iu[1]].min())), rel=1e-7,
                                     abs=1e-12)


# ---- spectra -----------------------------------------------------------------------------


class EmbedsIn(nn.Module):
    """A HuggingFace text model fed ``inputs_embeds``: its input-output Jacobian is taken
    with respect to the embeddings (token ids have none)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, embeds):
        return self.model(inputs_embeds=embeds)


def jacobian_input(case, model):
    if case.input != "tokens":
        return model, case.x()
    return EmbedsIn(model), case.embeds()


def dense_singular_values(model, x):
    """(B, min(in, out)) singular values of each example's Jacobian, by dense SVD."""
    out = []
    for b in range(x.shape[0]):
        def f(xb):
            return output_tensor(model(xb[None]))[0]
        with math_attention():
            jac = torch.autograd.functional.jacobian(f, x[b])
        n_out = jac.shape[: jac.dim() - x[b].dim()].numel()
        out.append(torch.linalg.svdvals(jac.reshape(n_out, -1).double()))
    return out


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_jacobian_spectrum_against_a_dense_svd(case):
    model = reference_model(case, double=False)
    if case.input == "tokens":  # a known limit: token ids have no input Jacobian
        with pytest.raises(ValueError, match="floating"):
            sp.jacobian_spectrum(model, case.x(), k=2)
        if not case.hf:
            return
    model, x = jacobian_input(case, model)
    x = x[:2]
    res = sp.jacobian_spectrum(model, x, k=2, batchnorm=bn_mode(case))
    for b, sv in enumerate(dense_singular_values(model, x)):
        assert res.top[b] == pytest.approx(sv[:2].tolist(), rel=1e-3)
        exact = float(sv.square().sum() / len(sv))
        assert abs(res.mean_sq_sv[b] - exact) <= max(1e-4 * exact, 5 * res.mean_sq_sv_se[b])


def arpack_extremes(model, x):
    """(largest, smallest) eigenvalue of the loss Hessian by ARPACK on Hessian-vector
    products (float64)."""
    with math_attention():
        used = torch.autograd.grad(loss(model(x)), list(model.parameters()), allow_unused=True)
    params = [p for p, g in zip(model.parameters(), used) if g is not None]
    shapes = [p.shape for p in params]

    def hvp(v):
        vs, k = [], 0
        for s in shapes:
            vs.append(torch.as_tensor(v[k:k + s.numel()], dtype=torch.float64).reshape(s))
            k += s.numel()
        with math_attention():
            gs = torch.autograd.grad(loss(model(x)), params, create_graph=True)
            hv = torch.autograd.grad(gs, params, vs, allow_unused=True)
        return torch.cat([(torch.zeros(s) if h is None else h).reshape(-1).double()
                          for s, h in zip(shapes, hv)]).numpy()

    n = sum(s.numel() for s in shapes)
    op = LinearOperator((n, n), matvec=hvp, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(n)
    hi = eigsh(op, k=1, which="LA", tol=1e-10, v0=v0, return_eigenvectors=False)
    lo = eigsh(op, k=1, which="SA", tol=1e-10, v0=v0, return_eigenvectors=False)
    return float(hi[0]), float(lo[0])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_hessian_extremes_against_arpack(case):
    model, x = reference_model(case), as_double(case.x())
    res = sp.hessian_extremes(model, x, loss_fn=loss, k=1, batchnorm=bn_mode(case))
    hi, lo = arpack_extremes(model, x)
    scale = max(abs(hi), abs(lo))
    assert abs(res.largest[0] - hi) <= max(res.largest_residual[0], 1e-6 * scale)
    assert abs(res.smallest[0] - lo) <= max(res.smallest_residual[0], 1e-6 * scale)


# ---- batch independence ----------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_batch_independence_against_a_perturbation_by_hand(case):
    model, x = case.model(), case.x()
    res = sp.batch_independence(model, x)
    ref = copy.deepcopy(model).train()
    other = x.clone()
    other[0] = case.x()[1] if not x.is_floating_point() else torch.randn_like(x[0]) * 3
    with torch.no_grad():
        a, b = output_tensor(ref(x)), output_tensor(ref(other))
    moved = float((b[1:] - a[1:]).norm() / a[1:].norm())
    if case.batchnorm:  # train-mode BatchNorm couples the examples
        assert moved > 1e-3 and not res.independent
        assert "normalization" in res.first_leak["train"]
        assert res.leak["eval"] <= res.tolerance
    else:
        assert moved < 1e-6 and res.independent
