"""Tiny models nobody here wrote, built offline from configs: HuggingFace BERT (post-LN),
GPT-2 (pre-LN, tied LM head, Conv1D layers), ViT, the T5 encoder (relative position
bias), ResNet, ConvNeXt; torch's TransformerEncoder pre- and post-LN; an LSTM model; a
model holding its layers in an nn.ModuleDict. Each case has an input, a loss and what the
forward's structure is known to be (the expectations of the tests)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

B, T, VOCAB = 4, 6, 40


def _quiet_config(cls: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(**kwargs)


def bert() -> nn.Module:
    import transformers as tf

    cfg = _quiet_config(tf.BertConfig, vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=16,
                        type_vocab_size=2, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return tf.BertModel(cfg)


def gpt2() -> nn.Module:
    import transformers as tf

    cfg = _quiet_config(tf.GPT2Config, vocab_size=VOCAB, n_positions=16, n_embd=16, n_layer=2,
                        n_head=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=0, eos_token_id=0)
    return tf.GPT2LMHeadModel(cfg)


def t5_encoder() -> nn.Module:
    import transformers as tf

    cfg = _quiet_config(tf.T5Config, vocab_size=VOCAB, d_model=16, d_kv=8, d_ff=32,
                        num_layers=2, num_heads=2, dropout_rate=0.0,
                        relative_attention_num_buckets=8, decoder_start_token_id=0)
    return tf.T5EncoderModel(cfg)


def vit() -> nn.Module:
    import transformers as tf

    cfg = _quiet_config(tf.ViTConfig, image_size=8, patch_size=4, num_channels=3,
                        hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return tf.ViTModel(cfg, add_pooling_layer=False)


def resnet() -> nn.Module:
    import transformers as tf

    cfg = _quiet_config(tf.ResNetConfig, num_channels=3, embedding_size=8, hidden_sizes=[8, 16],
                        depths=[2, 1], layer_type="basic")
    return tf.ResNetModel(cfg)


def convnext() -> nn.Module:
    import transformers as tf

    cfg = _quiet_config(tf.ConvNextConfig, num_channels=3, hidden_sizes=[8, 16], depths=[2, 1],
                        num_stages=2, patch_size=2)
    return tf.ConvNextModel(cfg)


def encoder(norm_first: bool) -> nn.Module:
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True,
                                       norm_first=norm_first)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


def pre_ln() -> nn.Module:
    return encoder(True)


def post_ln() -> nn.Module:
    return encoder(False)


class LSTMClassifier(nn.Module):
    """Token ids -> embedding -> 2-layer LSTM -> the last step's classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, 8)
        self.lstm = nn.LSTM(8, 8, num_layers=2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(self.emb(ids))[0][:, -1])


def lstm() -> nn.Module:
    return LSTMClassifier()


class DictMLP(nn.Module):
    """A plain MLP whose layers live in an nn.ModuleDict (no skip connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleDict({f"fc{i}": nn.Linear(8, 8) for i in range(3)})
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers.values():
            x = torch.tanh(layer(x))
        return self.head(x)


def module_dict() -> nn.Module:
    return DictMLP()


@dataclass
class Case:
    """One model, its input, and what its forward is known to hold."""

    name: str
    build: Any
    input: str  # "tokens", "image", "sequence" (float (N, T, C)) or "features"
    blocks: list[str]  # the residual units (or layers) discovery must find
    skip: str | None  # the skip kind of every block: "identity", "inner" or None
    channel_dim: int
    hf: bool = False
    batchnorm: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def model(self) -> nn.Module:
        torch.manual_seed(0)
        m = self.build()
        return m.eval() if not self.batchnorm else m.train()

    def x(self) -> Any:
        gen = torch.Generator().manual_seed(1)
        if self.input == "tokens":
            return torch.randint(1, VOCAB, (B, T), generator=gen)
        if self.input == "image":
            return torch.randn(B, 3, 8, 8, generator=gen)
        if self.input == "sequence":
            return torch.randn(B, T, 16, generator=gen)
        return torch.randn(B, 8, generator=gen)

    def embeds(self) -> torch.Tensor:
        """Float input for the input-output Jacobian of a token model (``inputs_embeds``)."""
        return torch.randn(B, T, 16, generator=torch.Generator().manual_seed(2))


def output_tensor(out: Any) -> torch.Tensor:
    """The model's main output tensor: logits, the last hidden state, or the tensor."""
    if isinstance(out, torch.Tensor):
        return out
    for key in ("logits", "last_hidden_state"):
        t = getattr(out, key, None)
        if isinstance(t, torch.Tensor):
            return t
    return out[0]


def loss(out: Any) -> torch.Tensor:
    """A smooth loss of every output value (the same for each model)."""
    return output_tensor(out).square().mean()


CASES = [
    Case("bert", bert, "tokens", ["encoder.layer.0", "encoder.layer.1"], "inner", -1, hf=True),
    Case("gpt2", gpt2, "tokens", ["transformer.h.0", "transformer.h.1"], "identity", -1,
         hf=True),
    Case("t5_encoder", t5_encoder, "tokens",
         [f"encoder.block.{i}.layer.{j}" for i in range(2) for j in range(2)], "identity", -1,
         hf=True),
    Case("vit", vit, "image", ["layers.0", "layers.1"], "identity", -1, hf=True),
    Case("resnet", resnet, "image", ["encoder.stages.0.layers.0", "encoder.stages.0.layers.1",
                                     "encoder.stages.1.layers.0"], "inner", 1, hf=True,
         batchnorm=True),
    Case("convnext", convnext, "image", ["encoder.stages.0.layers.0",
                                         "encoder.stages.0.layers.1",
                                         "encoder.stages.1.layers.0"], "identity", 1, hf=True),
    Case("pre_ln", pre_ln, "sequence", ["layers.0", "layers.1"], "identity", -1),
    Case("post_ln", post_ln, "sequence", ["layers.0", "layers.1"], "inner", -1),
    Case("lstm", lstm, "tokens", ["emb", "lstm", "head"], None, -1),
    Case("module_dict", module_dict, "features", ["layers.fc0", "layers.fc1", "layers.fc2"],
         None, 1),
]
