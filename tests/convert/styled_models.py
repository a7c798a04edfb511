"""Model definitions in the styles users bring (written here: torchvision, timm and
transformers are not installed).

* ``TVResNet``: torchvision's post-activation ResNet layout -- ``conv1/bn1/relu/maxpool``,
  ``layer1..layer4`` of ``BasicBlock`` or ``Bottleneck`` with ``downsample`` projections,
  ``out += identity`` in forward, ``avgpool``/``fc``.
* ``HFEncoderModel``: a HuggingFace-BERT-like encoder -- ``embeddings``,
  ``encoder.layer.N`` with ``attention.self``/``attention.output``, ``intermediate``,
  ``output`` submodules, residual additions inside ``*.output`` forwards, BatchNorm over
  the hidden channels where BERT has LayerNorm, a ``pooler`` and a ``classifier``.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TVResNet(nn.Module):
    def __init__(self, block, layers, num_classes=10, width=16):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 4 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def tv_resnet_basic(depth_per_stage=3):
    return TVResNet(BasicBlock, [depth_per_stage] * 3)


def tv_resnet_bottleneck(depth_per_stage=2):
    return TVResNet(Bottleneck, [depth_per_stage] * 3, width=8)


# ---- HuggingFace style --------------------------------------------------------------------
class ChannelBatchNorm(nn.Module):
    """BatchNorm1d over the hidden axis of (N, T, C) activations."""

    def __init__(self, hidden):
        super().__init__()
        self.BatchNorm = nn.BatchNorm1d(hidden)

    def forward(self, x):
        return self.BatchNorm(x.transpose(1, 2)).transpose(1, 2)


class Embeddings(nn.Module):
    def __init__(self, in_features, hidden, max_len):
        super().__init__()
        self.patch_embeddings = nn.Linear(in_features, hidden)
        self.position_embeddings = nn.Parameter(torch.randn(1, max_len, hidden) * 0.02)

    def forward(self, inputs):
        return self.patch_embeddings(inputs) + self.position_embeddings[:, : inputs.shape[1]]


class SelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.num_attention_heads, self.attention_head_size = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(0.1)

    def split_heads(self, x):
        n, t, _ = x.shape
        return x.view(n, t, self.num_attention_heads, self.attention_head_size).permute(0, 2, 1, 3)

    def forward(self, hidden_states):
        q = self.split_heads(self.query(hidden_states))
        k = self.split_heads(self.key(hidden_states))
        v = self.split_heads(self.value(hidden_states))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.attention_head_size)
        probs = self.dropout(F.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.shape[0], ctx.shape[1], -1)


class SelfOutput(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.norm = ChannelBatchNorm(hidden)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dropout(self.dense(hidden_states))
        return self.norm(hidden_states + input_tensor)


class Attention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.self = SelfAttention(hidden, heads)
        self.output = SelfOutput(hidden)

    def forward(self, hidden_states):
        return self.output(self.self(hidden_states), hidden_states)


class Intermediate(nn.Module):
    def __init__(self, hidden, inner):
        super().__init__()
        self.dense = nn.Linear(hidden, inner)
        self.intermediate_act_fn = nn.GELU()

    def forward(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))


class Output(nn.Module):
    def __init__(self, inner, hidden):
        super().__init__()
        self.dense = nn.Linear(inner, hidden)
        self.norm = ChannelBatchNorm(hidden)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dropout(self.dense(hidden_states))
        return self.norm(hidden_states + input_tensor)


class Layer(nn.Module):
    def __init__(self, hidden, heads, inner):
        super().__init__()
        self.attention = Attention(hidden, heads)
        self.intermediate = Intermediate(hidden, inner)
        self.output = Output(inner, hidden)

    def forward(self, hidden_states):
        attention_output = self.attention(hidden_states)
        return self.output(self.intermediate(attention_output), attention_output)


class Encoder(nn.Module):
    def __init__(self, hidden, heads, inner, layers):
        super().__init__()
        self.layer = nn.ModuleList([Layer(hidden, heads, inner) for _ in range(layers)])

    def forward(self, hidden_states):
        for layer_module in self.layer:
            hidden_states = layer_module(hidden_states)
        return hidden_states


class HFEncoderModel(nn.Module):
    def __init__(self, in_features=12, hidden=32, heads=4, inner=64, layers=6, max_len=16,
                 num_labels=3):
        super().__init__()
        self.embeddings = Embeddings(in_features, hidden, max_len)
        self.encoder = Encoder(hidden, heads, inner, layers)
        self.pooler = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh())
        self.classifier = nn.Linear(hidden, num_labels)

    def forward(self, inputs):
        hidden = self.encoder(self.embeddings(inputs))
        return self.classifier(self.pooler(hidden[:, 0]))
