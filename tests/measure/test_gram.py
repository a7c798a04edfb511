"""gradient_gram(): equal to a brute-force per-example loop (one backward per example),
per layer and in total, for every layer kind and every per-layer strategy."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import signalprop as sp
from signalprop.measure import ForwardError, NonFiniteError
from signalprop.measure.gradients._gram.engine import gram_run

CE = nn.CrossEntropyLoss()
METHODS = ("auto", "factor", "materialize", "func")


def brute_rows(model, loss_fn, x, y):
    """{parameter name: (B, numel)} per-example gradients, one example at a time (float64)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    rows = {n: [] for n, _ in named}
    for i in range(x.shape[0]):
        loss = loss_fn(model(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
        for (n, p), g in zip(named, grads):
            rows[n].append((torch.zeros_like(p) if g is None else g).reshape(-1).double())
    return {n: torch.stack(r) for n, r in rows.items()}


def brute_gram(model, loss_fn, x, y):
    f = torch.cat(list(brute_rows(model, loss_fn, x, y).values()), dim=1)
    return f @ f.T


def owner(param_name, layers):
    """The layer a parameter belongs to: the longest layer name prefixing it, else the root."""
    cands = [n for n in layers if n != "<model>" and param_name.startswith(n + ".")]
    return max(cands, key=len) if cands else "<model>"


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max())


def check(model, x, y, methods=METHODS, tol=1e-10, loss_fn=CE):
    """Total and per-layer Gram of every method against the brute force."""
    model(x)  # materialize lazy layers
    rows = brute_rows(model, loss_fn, x, y)
    ref = sum(r @ r.T for r in rows.values())
    for method in methods:
        layers = sp.gradient_gram(model, x, y, loss_fn=loss_fn, per_layer=True, method=method).layers
        total = sp.gradient_gram(model, x, y, loss_fn=loss_fn, method=method).matrix
        assert total.dtype == torch.float64 and total.shape == (x.shape[0],) * 2
        assert torch.equal(total, total.T)
        assert rel_err(total, ref) < tol, method
        expect = {name: torch.zeros_like(ref) for name in layers}
        for pname, r in rows.items():
            expect[owner(pname, layers)] += r @ r.T
        for name, g in layers.items():
            scale = max(float(expect[name].abs().max()), 1e-300)
            assert float((g - expect[name]).abs().max()) <= tol * scale, (method, name)


@pytest.mark.parametrize("bias", [True, False])
def test_mlp(bias):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(7, 9, bias=bias), nn.Tanh(), nn.Linear(9, 4, bias=bias)).double()
    check(model, torch.randn(6, 7, dtype=torch.float64), torch.randint(0, 4, (6,)))


@pytest.mark.parametrize(
    "conv",
    [
        dict(cls=nn.Conv2d, in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1),
        dict(cls=nn.Conv2d, in_channels=4, out_channels=6, kernel_size=(3, 2), dilation=(2, 1), groups=2, bias=False),
        dict(cls=nn.Conv2d, in_channels=4, out_channels=4, kernel_size=3, padding="same", groups=4, padding_mode="reflect"),
        dict(cls=nn.Conv2d, in_channels=4, out_channels=2, kernel_size=4, padding=(2, 1), stride=(1, 3), padding_mode="circular"),
        dict(cls=nn.Conv1d, in_channels=4, out_channels=6, kernel_size=3, stride=2, dilation=2, groups=2, padding=3),
        dict(cls=nn.Conv3d, in_channels=4, out_channels=2, kernel_size=(2, 3, 1), stride=(1, 2, 1), padding=(1, 0, 1), padding_mode="replicate"),
    ],
    ids=["2d-stride-pad", "2d-dilation-groups-nobias", "2d-same-depthwise-reflect", "2d-circular",
         "1d-all", "3d-replicate"],
)
def test_conv(conv):
    torch.manual_seed(0)
    kw = dict(conv)
    cls = kw.pop("cls")
    d = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}[cls]
    model = nn.Sequential(cls(**kw), nn.Tanh(), nn.Flatten(), nn.LazyLinear(3)).double()
    x = torch.randn(5, 4, *([7, 8, 5][:d]), dtype=torch.float64)
    check(model, x, torch.randint(0, 3, (5,)))


class TwoEmbeddings(nn.Module):
    def __init__(self, bias=True):
        super().__init__()
        self.a = nn.Embedding(11, 5, padding_idx=0)
        self.b = nn.Embedding(11, 3, scale_grad_by_freq=True)
        self.fc = nn.Linear(8, 4, bias=bias)

    def forward(self, idx):
        return self.fc(torch.cat([self.a(idx), self.b(idx)], -1).tanh().mean(1))


@pytest.mark.parametrize("bias", [True, False])
def test_embedding(bias):
    torch.manual_seed(0)
    idx = torch.randint(0, 11, (6, 7))
    idx[0, :3] = 0  # padding positions get no gradient
    idx[1, :4] = 5  # repeated tokens (scale_grad_by_freq divides by their count)
    check(TwoEmbeddings(bias).double(), idx, torch.randint(0, 4, (6,)))


def test_scaled_ws_layers_layernorm_and_sequence_linear():
    torch.manual_seed(0)
    model = nn.Sequential(
        sp.nn.ScaledStdConv2d(3, 4, 3, stride=2, groups=1), nn.ReLU(),
        sp.nn.ScaledStdConv2d(4, 4, 3, padding=1, groups=2, eps_mode="add"), nn.ReLU(),
        nn.Flatten(2), nn.LayerNorm(9), nn.Flatten(), sp.nn.WSLinear(36, 3),
    ).double()
    check(model, torch.randn(5, 3, 7, 7, dtype=torch.float64), torch.randint(0, 3, (5,)))


class Attention(nn.Module):
    """Embedding -> MultiheadAttention (either layout) -> tied output head, plus a position
    parameter owned by the root module."""

    def __init__(self, batch_first):
        super().__init__()
        self.batch_first = batch_first
        self.emb = nn.Embedding(13, 8)
        self.pos = nn.Parameter(torch.randn(5, 8))
        self.mha = nn.MultiheadAttention(8, 2, batch_first=batch_first)
        self.head = nn.Linear(8, 13, bias=False)
        self.head.weight = self.emb.weight  # tied

    def forward(self, idx):
        h = self.emb(idx) + self.pos
        if not self.batch_first:
            h = h.transpose(0, 1)
        a, _ = self.mha(h, h, h)
        if not self.batch_first:
            a = a.transpose(0, 1)
        return self.head(a.mean(1))


@pytest.mark.parametrize("batch_first", [True, False])
def test_attention_tied_weights_and_root_parameter(batch_first):
    torch.manual_seed(0)
    model = Attention(batch_first).double()
    x, y = torch.randint(0, 13, (4, 5)), torch.randint(0, 13, (4,))
    check(model, x, y, methods=("auto", "func"))
    layers = sp.gradient_gram(model, x, y, loss_fn=CE, per_layer=True).layers
    # the out_proj parameters are used by the attention module without a call: its layer
    assert set(layers) == {"<model>", "emb", "mha", "head"}
    # the tied weight is counted once, under its first module; the head holds nothing else
    assert float(layers["head"].abs().max()) == 0.0


class Recurrent(nn.Module):
    """LSTM (vmap cannot batch its kernel: one example at a time), sequence-first GRU, and a
    Transformer encoder layer (torch.func with vmap's fallback for the attention kernel)."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.seq = {"lstm": lambda: nn.LSTM(4, 5, batch_first=True), "gru": lambda: nn.GRU(4, 5),
                    "transformer": lambda: nn.TransformerEncoderLayer(
                        4, 2, dim_feedforward=8, dropout=0.0, batch_first=True)}[kind]()
        self.fc = nn.Linear(4 if kind == "transformer" else 5, 3)

    def forward(self, x):
        if self.kind == "gru":
            h = self.seq(x.transpose(0, 1))[0].transpose(0, 1)
        else:
            h = self.seq(x)
            h = h[0] if isinstance(h, tuple) else h
        return self.fc(h.mean(1))


@pytest.mark.parametrize("kind", ["lstm", "gru", "transformer"])
def test_recurrent_and_transformer_layers(kind):
    torch.manual_seed(0)
    model = Recurrent(kind).double()
    check(model, torch.randn(4, 6, 4, dtype=torch.float64), torch.randint(0, 3, (4,)),
          methods=("auto",))


def test_dropout_inside_a_torch_func_module_and_plain_dropout_are_refused():
    torch.manual_seed(0)
    model = Recurrent("transformer").double()
    model.seq.self_attn.dropout = 0.5  # attention dropout: inside a module with parameters
    x, y = torch.randn(4, 6, 4, dtype=torch.float64), torch.randint(0, 3, (4,))
    with pytest.raises(ValueError, match=r"module 'seq.self_attn' \(MultiheadAttention\) uses "
                                         "randomness"):
        sp.gradient_gram(model, x, y, loss_fn=CE)
    # a Dropout module between layers: the Gram of one random mask, different at every call
    net = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5), nn.Linear(6, 3)).double()
    xs, ys = torch.randn(5, 4, dtype=torch.float64), torch.randint(0, 3, (5,))
    with pytest.raises(ValueError, match=r"module '1' \(Dropout\) draws random numbers"):
        sp.gradient_gram(net, xs, ys, loss_fn=CE)
    g = sp.gradient_gram(net, xs, ys, loss_fn=CE, dropout="eval").matrix
    assert net[1].training
    ref = sp.gradient_gram(net.eval(), xs, ys, loss_fn=CE).matrix
    assert torch.equal(g, ref)


class Reuse(nn.Module):
    """A conv and a linear called twice, a parameter used without calling its module, and
    a module never used."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(6, 6, 3, padding=1)
        self.lin = nn.Linear(6, 6)
        self.inner = nn.Linear(6, 6)
        self.unused = nn.Linear(3, 3)
        self.out = nn.Linear(6, 4)

    def forward(self, x):
        h = self.c(torch.tanh(self.c(x))).transpose(1, 2)
        h = self.lin(torch.tanh(self.lin(h)))
        h = F.linear(h, self.inner.weight)
        return self.out(h.mean(1))


def test_reused_modules_and_parameters_used_by_a_parent():
    torch.manual_seed(0)
    model = Reuse().double()
    x, y = torch.randn(5, 6, 7, dtype=torch.float64), torch.randint(0, 4, (5,))
    check(model, x, y, methods=("auto", "factor", "materialize"))


def test_unused_module_contributes_zero():
    torch.manual_seed(0)
    model = nn.ModuleDict({"used": nn.Linear(4, 3), "spare": nn.Linear(4, 3)}).double()
    model.forward = lambda x: model["used"](x)
    x, y = torch.randn(5, 4, dtype=torch.float64), torch.randint(0, 3, (5,))
    layers = sp.gradient_gram(model, x, y, loss_fn=CE, per_layer=True).layers
    assert float(layers["spare"].abs().max()) == 0.0
    assert rel_err(layers["used"], brute_gram(model["used"], CE, x, y)) < 1e-12


def test_float32_within_1e5_of_float64_brute_force():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2),
                          nn.ReLU(), nn.Flatten(), nn.Linear(8 * 9, 10))
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 10, (16,))
    ref = brute_gram(model.double(), CE, x.double(), y)
    model.float()
    for method in ("auto", "factor", "materialize"):
        assert rel_err(sp.gradient_gram(model, x, y, loss_fn=CE, method=method).matrix, ref) < 1e-5


@pytest.mark.parametrize("chunk_bytes", [2000, 200])
def test_small_working_memory_chunks_give_the_same_gram(chunk_bytes):
    # 2000 bytes: single-example blocks (shorter layers) and one output unit at a time;
    # 200 bytes (and the 16-position conv at 2000): position chunks within example pairs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(3, 4, 3, padding=1), nn.Tanh(), nn.Conv1d(4, 2, 2, stride=2),
                          nn.Flatten(), nn.Linear(16, 3)).double()
    emb = TwoEmbeddings().double()
    for m, x, y in [(model, torch.randn(5, 3, 16, dtype=torch.float64), torch.randint(0, 3, (5,))),
                    (emb, torch.randint(0, 11, (4, 9)), torch.randint(0, 4, (4,)))]:
        ref = brute_gram(m, CE, x, y)
        for method in ("factor", "materialize"):
            run = gram_run(m, CE, x, y, x.shape[0], method, chunk_bytes=chunk_bytes)
            assert rel_err(sum(run.layers.values()), ref) < 1e-12, method


def test_works_under_no_grad():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    x, y = torch.randn(4, 4, dtype=torch.float64), torch.randint(0, 3, (4,))
    with torch.no_grad():
        g = sp.gradient_gram(model, x, y, loss_fn=CE).matrix
    assert rel_err(g, brute_gram(model, CE, x, y)) < 1e-12


def test_independent_of_the_loss_reduction():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    x, y = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    grams = [sp.gradient_gram(model, x, y, loss_fn=nn.MSELoss(reduction=r)).matrix for r in ("mean", "sum")]
    # MSE with reduction="sum" on one example is 3x its mean over the 3 outputs
    assert rel_err(grams[1], 9 * grams[0]) < 1e-12
    ce = [sp.gradient_gram(model, x, y.argmax(1), loss_fn=nn.CrossEntropyLoss(reduction=r)).matrix
          for r in ("mean", "sum", "none")]
    assert rel_err(ce[1], ce[0]) < 1e-12 and rel_err(ce[2], ce[0]) < 1e-12
    # a loss function vmap cannot trace (.item()) falls back to a loop: same result
    def picky(out, t):
        assert out.shape[0] == 1 and float(out.sum().item()) == float(out.sum().item())
        return CE(out, t)
    assert rel_err(sp.gradient_gram(model, x, y.argmax(1), loss_fn=picky).matrix, ce[0]) < 1e-12


def test_a_batch_coupling_loss_is_taken_on_each_example_alone():
    # (out - batch mean)^2: zero for a batch of one, so every per-example gradient is 0
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3)).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    centred = lambda out, t: (out - out.mean(0)).square().sum()  # noqa: E731
    assert float(sp.gradient_gram(model, x, torch.zeros(5), loss_fn=centred).matrix.abs().max()) == 0.0


def test_batchnorm_refused_in_train_mode_or_run_on_running_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(100, 3)).double()
    model[1].running_mean.normal_()
    x, y = torch.randn(4, 3, 7, 7, dtype=torch.float64), torch.randint(0, 3, (4,))
    with pytest.raises(ValueError, match=r"BatchNorm module\(s\) in train mode \('1'\).*"
                                         r"batchnorm='eval'"):
        sp.gradient_gram(model, x, y, loss_fn=CE)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    g = sp.gradient_gram(model, x, y, loss_fn=CE, batchnorm="eval").matrix
    assert model.training and model[1].training  # modes restored
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    model.eval()
    assert rel_err(g, brute_gram(model, CE, x, y)) < 1e-12


def test_leaves_no_hooks_no_grads_and_batch_of_one():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2)).double()
    x, y = torch.randn(1, 4, dtype=torch.float64), torch.tensor([1])
    g = sp.gradient_gram(model, x, y, loss_fn=CE).matrix
    rows = brute_rows(model, CE, x, y)
    assert g.shape == (1, 1)
    assert float(g[0, 0]) == pytest.approx(sum(float(r.square().sum()) for r in rows.values()),
                                           rel=1e-12)
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_strategy_follows_the_cost_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 16 * 16, 64), nn.ReLU(), nn.Linear(64, 10))
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    run = gram_run(model, CE, x, y, 8, "auto")
    # conv: B T = 2048 positions -> materialize; linear layers: T = 1 -> factorize
    assert run.strategies == {"0": "materialized", "3": "factorized", "5": "factorized"}


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda m: sp.gradient_gram(m, torch.randn(0, 4), torch.tensor([], dtype=torch.long), loss_fn=CE).matrix,
         "x is an empty batch"),
        (lambda m: sp.gradient_gram(m, torch.randn(3, 4), torch.tensor([0, 1]), loss_fn=CE).matrix,
         r"y must have the batch size of x \(3\)"),
        (lambda m: sp.gradient_gram(m, torch.randn(3, 4),
                                    torch.randn(3, 2), loss_fn=nn.MSELoss(reduction="none")).matrix,
         r"scalar for a batch of one example, got shape \(1, 2\)"),
        (lambda m: sp.gradient_gram(m, torch.randn(3, 4), torch.zeros(3), loss_fn=lambda o, t: o.sum() / 0).matrix,
         "loss is NaN/Inf for 3 of 3 examples .* loss_fn produced them"),
        (lambda m: sp.gradient_gram(m, torch.randn(3, 4), torch.tensor([0, 1, 1]), loss_fn=CE, method="x").matrix,
         "method must be one of"),
        (lambda m: sp.gradient_gram(m, torch.randn(3, 5), torch.tensor([0, 1, 1]), loss_fn=CE).matrix,
         r"forward failed in module '0' \(Linear\)"),
    ],
)
def test_bad_input(call, message):
    model = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises((ValueError, ForwardError), match=message):
        call(model)


def test_nonfinite_forward_is_located():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight[0, 0] = float("inf")
    x = torch.ones(3, 4)
    with pytest.raises(NonFiniteError, match=r"first non-finite in module '1' \(Linear\)"):
        sp.gradient_gram(model, x, torch.tensor([0, 1, 1]), loss_fn=CE)


def test_in_place_activations_and_dict_inputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3),
                          nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(36, 3)).double()
    check(model, torch.randn(5, 3, 7, 7, dtype=torch.float64), torch.randint(0, 3, (5,)),
          methods=("auto",))

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, a, shift):
            return self.lin(a) + shift

    net = TwoInputs().double()
    a, shift = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    y = torch.randint(0, 2, (4,))
    g = sp.gradient_gram(net, {"a": a, "shift": shift}, y, loss_fn=CE).matrix
    rows = []
    for i in range(4):
        loss = CE(net(a[i : i + 1], shift[i : i + 1]), y[i : i + 1])
        rows.append(torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, list(net.parameters()))]))
    f = torch.stack(rows)
    assert rel_err(g, f @ f.T) < 1e-12


class SharedLookups(nn.Module):
    """Token embedding of the input, position ids of shape (1, T) broadcast over the batch,
    a token-type buffer expanded to (B, T), and a (T, T) relative-position table: the
    last three are one lookup each for the whole batch (as in BERT, GPT-2 and T5)."""

    def __init__(self, t: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(13, 8)
        self.pos = nn.Embedding(t, 8)
        self.kind = nn.Embedding(2, 8)
        self.rel = nn.Embedding(2 * t - 1, 1)
        self.register_buffer("kinds", torch.zeros(1, t, dtype=torch.long))
        self.fc = nn.Linear(8, 3)
        self.t = t

    def forward(self, idx):
        b, t = idx.shape
        ar = torch.arange(t)
        h = self.tok(idx) + self.pos(ar.unsqueeze(0)) + self.kind(self.kinds.expand(b, t))
        bias = self.rel(ar[:, None] - ar[None, :] + t - 1)[..., 0]  # (T, T), no batch axis
        h = torch.softmax(h @ h.transpose(1, 2) / 8 + bias, -1) @ h
        return self.fc(h.tanh().mean(1))


@pytest.mark.parametrize("t", [5, 6])  # t = 6 = B: the (T, T) table's first axis is B-sized
def test_lookups_shared_by_the_batch(t):
    # regression: these raised "indices ... whose first axis is not the batch"
    torch.manual_seed(0)
    idx = torch.randint(0, 13, (6, t))
    check(SharedLookups(t).double(), idx, torch.randint(0, 3, (6,)))


class Norms(nn.Module):
    """LayerNorm over two axes, RMSNorm, LayerNorm without bias, on (B, T, 4, 6) inputs."""

    def __init__(self):
        super().__init__()
        self.ln2d = nn.LayerNorm((4, 6))
        self.rms = nn.RMSNorm(6)
        self.nobias = nn.LayerNorm(6, bias=False)
        self.fc = nn.Linear(24, 3)

    def forward(self, x):
        h = self.nobias(self.rms(torch.tanh(self.ln2d(x))))
        return self.fc(h.flatten(2).mean(1))


def test_layernorm_and_rmsnorm_per_example_gradients():
    torch.manual_seed(0)
    model = Norms().double()
    with torch.no_grad():  # non-trivial affine parameters
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    check(model, torch.randn(5, 3, 4, 6, dtype=torch.float64), torch.randint(0, 3, (5,)))
    res = sp.gradient_gram(model, torch.randn(5, 3, 4, 6, dtype=torch.float64),
                           torch.randint(0, 3, (5,)), loss_fn=CE)
    assert {res.strategies[n] for n in ("ln2d", "rms", "nobias")} == {"materialized"}
