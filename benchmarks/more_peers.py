"""PyTorch peers of ResNet-20, the TCN and the LSTM of `sgt.models`, with the Flax weights copied in.

Complements `peers.py` (MNIST CNN, ResNet-18), with the same conventions: `torch_peer(name,
variables)` returns the module in eval mode; image peers take NCHW, time-series peers [B, T, F]
like the Flax models. `python benchmarks/more_peers.py` checks every peer's logits against the
Flax model's (random biases and BatchNorm statistics, as `peers.check_peer`).

* ResNet-20 (`CifarResNet(depth=20)`): option-A shortcuts x[:, :, ::2, ::2] with the new channels
  zero-padded on both sides, BatchNorm ε 1e-5 / momentum 0.1.
* TCN: weight-normalised causal dilated convolutions, w = g · v / ‖v‖ recomputed in every forward
  (as `torch.nn.utils.weight_norm` does), left padding (k − 1)·d, 1×1 residual convolution where
  the width changes, max over time, linear.
* LSTM: `torch.nn.LSTM` (one layer, batch_first) with Flax's input kernels (ii, if, ig, io) and
  hidden kernels and biases (hi, hf, hg, ho) stacked in torch's gate order (i, f, g, o); torch's
  second bias (bias_ih) is zero. Last step → linear.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import peers  # noqa: E402
from peers import _tensor, batch_norm_state, conv_state, dense_state  # noqa: E402

# --------------------------------------------------------------------------------------------
# ResNet-20 (option-A shortcuts).
# --------------------------------------------------------------------------------------------


class BlockA(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        self.stride, self.pad = stride, (channels - in_channels) // 2
        self.channels = channels

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.stride != 1 or x.shape[1] != self.channels:
            x = x[:, :, ::self.stride, ::self.stride]
            x = F.pad(x, (0, 0, 0, 0, self.pad, self.channels - x.shape[1] - self.pad))
        return F.relu(y + x)


class CifarResNetPeer(nn.Module):
    def __init__(self, num_classes: int = 10, depth: int = 20):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16, eps=1e-5, momentum=0.1)
        blocks, in_channels = [], 16
        for stage in range(3):
            for block in range(n):
                channels = 16 * 2**stage
                blocks.append(BlockA(in_channels, channels, 2 if stage > 0 and block == 0 else 1))
                in_channels = channels
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def resnet20_peer(variables: Mapping) -> CifarResNetPeer:
    p, s = variables["params"], variables["batch_stats"]
    net = CifarResNetPeer(num_classes=np.asarray(p["Dense_0"]["kernel"]).shape[1], depth=20)
    state = {**conv_state(p["Conv_0"], "conv1"), **batch_norm_state(p["BatchNorm_0"], s["BatchNorm_0"], "bn1"),
             **dense_state(p["Dense_0"], "fc")}
    for i in range(len(net.blocks)):
        fp, fs, prefix = p[f"BasicBlock_{i}"], s[f"BasicBlock_{i}"], f"blocks.{i}"
        state.update(conv_state(fp["Conv_0"], f"{prefix}.conv1"))
        state.update(batch_norm_state(fp["BatchNorm_0"], fs["BatchNorm_0"], f"{prefix}.bn1"))
        state.update(conv_state(fp["Conv_1"], f"{prefix}.conv2"))
        state.update(batch_norm_state(fp["BatchNorm_1"], fs["BatchNorm_1"], f"{prefix}.bn2"))
    net.load_state_dict(state, strict=True)
    return net


# --------------------------------------------------------------------------------------------
# TCN.
# --------------------------------------------------------------------------------------------


class WeightNormCausalConvPeer(nn.Module):
    def __init__(self, v, g, bias, dilation: int):
        super().__init__()
        # Flax v [k, in, out] → torch [out, in, k]
        self.v = nn.Parameter(_tensor(np.asarray(v).transpose(2, 1, 0)))
        self.g = nn.Parameter(_tensor(g))
        self.bias = nn.Parameter(_tensor(bias))
        self.dilation, self.pad = dilation, (np.asarray(v).shape[0] - 1) * dilation

    def forward(self, x):  # x [B, C, T]
        w = self.v * (self.g / self.v.reshape(self.v.shape[0], -1).norm(dim=1))[:, None, None]
        return F.conv1d(F.pad(x, (self.pad, 0)), w, self.bias, dilation=self.dilation)


class TCNPeer(nn.Module):
    def __init__(self, params: Mapping, kernel_size: int = 4, dropout: float = 0.1):
        super().__init__()
        self.blocks = nn.ModuleList()
        level = 0
        while f"TemporalBlock_{level}" in params:
            bp = params[f"TemporalBlock_{level}"]
            block = nn.Module()
            block.convs = nn.ModuleList([
                WeightNormCausalConvPeer(bp[f"WeightNormCausalConv_{j}"]["v"], bp[f"WeightNormCausalConv_{j}"]["g"],
                                         bp[f"WeightNormCausalConv_{j}"]["bias"], 2**level) for j in range(2)])
            block.drop = nn.Dropout(dropout)
            if "Conv_0" in bp:
                kernel = np.asarray(bp["Conv_0"]["kernel"])  # [1, in, out]
                block.residual = nn.Conv1d(kernel.shape[1], kernel.shape[2], 1)
                block.residual.weight.data = _tensor(kernel.transpose(2, 1, 0))
                block.residual.bias.data = _tensor(bp["Conv_0"]["bias"])
            else:
                block.residual = None
            self.blocks.append(block)
            level += 1
        kernel = np.asarray(params["Dense_0"]["kernel"])
        self.fc = nn.Linear(kernel.shape[0], kernel.shape[1])
        self.fc.weight.data, self.fc.bias.data = _tensor(kernel.T), _tensor(params["Dense_0"]["bias"])

    def forward(self, x):  # [B, T, F]
        x = x.transpose(1, 2)
        for block in self.blocks:
            y = x
            for conv in block.convs:
                y = block.drop(F.relu(conv(y)))
            x = F.relu(y + (x if block.residual is None else block.residual(x)))
        return self.fc(x.amax(dim=2))


def tcn_peer(variables: Mapping) -> TCNPeer:
    return TCNPeer(variables["params"])


# --------------------------------------------------------------------------------------------
# LSTM.
# --------------------------------------------------------------------------------------------


class LSTMPeer(nn.Module):
    def __init__(self, params: Mapping, dropout: float = 0.1):
        super().__init__()
        cell = params["OptimizedLSTMCell_0"]
        features, hidden = np.asarray(cell["ii"]["kernel"]).shape
        self.drop_in, self.drop_out = nn.Dropout(dropout), nn.Dropout(dropout)
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        gates = ("i", "f", "g", "o")
        self.lstm.weight_ih_l0.data = _tensor(np.concatenate([np.asarray(cell[f"i{g}"]["kernel"]).T for g in gates]))
        self.lstm.weight_hh_l0.data = _tensor(np.concatenate([np.asarray(cell[f"h{g}"]["kernel"]).T for g in gates]))
        self.lstm.bias_hh_l0.data = _tensor(np.concatenate([np.asarray(cell[f"h{g}"]["bias"]) for g in gates]))
        self.lstm.bias_ih_l0.data.zero_()
        kernel = np.asarray(params["Dense_0"]["kernel"])
        self.fc = nn.Linear(kernel.shape[0], kernel.shape[1])
        self.fc.weight.data, self.fc.bias.data = _tensor(kernel.T), _tensor(params["Dense_0"]["bias"])

    def forward(self, x):  # [B, T, F]
        h, _ = self.lstm(self.drop_in(x))
        return self.fc(self.drop_out(h[:, -1]))


def lstm_peer(variables: Mapping) -> LSTMPeer:
    return LSTMPeer(variables["params"])


PEERS: dict[str, Callable[[Mapping], nn.Module]] = {
    **peers.PEERS,
    "resnet20": resnet20_peer,
    "tcn": tcn_peer,
    "lstm": lstm_peer,
}
IMAGE = {"mnist_cnn", "resnet18", "resnet20"}


def torch_peer(name: str, variables: Mapping) -> nn.Module:
    if name not in PEERS:
        raise ValueError(f"name: no torch peer for {name!r}; peers exist for {sorted(PEERS)}")
    return PEERS[name](variables).eval()


def to_torch(name: str, x: np.ndarray) -> torch.Tensor:
    """The peer's input: NCHW for images, [B, T, F] unchanged for time series."""
    return peers.to_nchw(x) if name in IMAGE else torch.from_numpy(np.ascontiguousarray(x, np.float32))


def check(name: str, seed: int = 0, batch: int = 4) -> float:
    """max |peer logits − Flax logits| on random inputs, with random biases / BatchNorm statistics."""
    import jax

    import sgt.models

    model = sgt.models.get(name)
    entry = sgt.models.REGISTRY[name]
    x = np.random.default_rng(seed).uniform(size=(batch, *entry.input_shape)).astype(np.float32)
    variables = peers.perturbed(jax.jit(lambda x: model.init(jax.random.PRNGKey(seed), x, train=False))(x[:1]), seed)
    want = np.asarray(model.apply(variables, x, train=False))
    with torch.no_grad():
        got = torch_peer(name, variables)(to_torch(name, x)).numpy()
    err = float(np.abs(got - want).max())
    if err > 1e-4 * max(1.0, float(np.abs(want).max())):
        raise AssertionError(f"{name}: peer logits differ from the Flax model's by {err:.2e}")
    return err


def main() -> int:
    repo = BENCH_DIR.parent
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    for name in ("resnet20", "tcn", "lstm"):
        for seed in (0, 1):
            print(f"{name} seed {seed}: max |Δ logits| = {check(name, seed):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

