"""Small models shared by the measurement tests."""

import torch
import torch.nn as nn


class ResBlock(nn.Module):
    """A foreign residual block (not a signalprop ResidualBlock): y = x + conv(relu(conv(x)))."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


class Down(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


def hand_residual_cnn() -> nn.Module:
    """Sequential(stem conv, 2 residual blocks, a downsampling block, 2 blocks, head)."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        ResBlock(8),
        ResBlock(8),
        Down(8, 16),
        ResBlock(16),
        ResBlock(16),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 5),
    )
