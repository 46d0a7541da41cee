"""Real PyTorch models and a plain training loop for the torch recorder's tests and bench.

Digits from scikit-learn (bundled, no download): 8 × 8 images, 10 classes. Importing this
module sets torch to one intra-op thread: on the shared 2-core machine its default two
spinning threads made small epochs up to 40× slower under load.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.set_num_threads(1)


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)


def mlp() -> nn.Module:
    """A Sequential MLP: layers named ``0`` ... ``4`` as in its state_dict."""
    return nn.Sequential(
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Dropout(0.1),
        nn.Linear(32, 16),
        nn.Tanh(),
        nn.Linear(16, 10),
    )


class Residual(nn.Module):
    """``x + conv2(relu(conv1(x)))``: a skip around two convolutions."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class SmallCNN(nn.Module):
    """Conv → BatchNorm → ReLU(inplace) → residual block → pool → flatten → linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU(inplace=True)
        self.block = Residual(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.pool(self.block(self.act(self.bn(self.stem(x)))))))


class Scale(nn.Module):
    """A custom leaf module with its own parameter and buffer: ``x * gain + shift``."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(n))
        self.register_buffer("shift", torch.zeros(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain + self.shift


class CustomNet(nn.Module):
    """A custom module and functional activations (``F.gelu``, ``torch.relu``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.scale = Scale(32)
        self.out = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.scale(F.gelu(self.fc1(x))))
        return self.out(h)


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(64, 16)
        self.b = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        if h.sum() > 0:
            h = F.relu(h)
        return self.b(h)


class DirectForward(nn.Module):
    """Calls a submodule's ``.forward`` directly, which bypasses its hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(64, 16)
        self.b = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(F.relu(self.a.forward(x)))


def train_epoch(
    model: nn.Module, optimizer: Any, x: np.ndarray, y: np.ndarray, batch: int = 64
) -> float:
    """One epoch of plain minibatch training; returns the last batch's loss."""
    model.train()
    loss = torch.zeros(())
    for start in range(0, len(x), batch):
        xb = torch.from_numpy(x[start : start + batch])
        yb = torch.from_numpy(y[start : start + batch])
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.detach())
