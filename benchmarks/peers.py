"""PyTorch peers of the Flax models of `sgt.models`, with the weights copied from the Flax variables.

    peer = torch_peer("resnet18", variables)   # variables = {"params": ..., "batch_stats": ...}
    peer.eval()                                # inference mode, as `model.apply(variables, x, train=False)`
    logits = peer(x_nchw)                      # the Flax model's logits for x_nhwc = x_nchw.permute(0, 2, 3, 1)

Run `python benchmarks/peers.py` to check that every peer reproduces its Flax model's logits.

Conventions
-----------
* Inputs: the Flax models take NHWC, the peers NCHW (`x.transpose(0, 3, 1, 2)`).
* Weights: Flax conv kernels are HWIO, torch's OIHW; Flax dense kernels are (in, out), torch's
  (out, in); Flax BatchNorm's scale / bias / batch_stats mean / var become torch's weight / bias /
  running_mean / running_var (ε 1e-5 and momentum 0.1 in torch equal the Flax models' ε 1e-5 and
  momentum 0.9).
* Flatten order (MNIST CNN): the Flax model flattens its NHWC feature map in (H, W, C) order, torch's
  `nn.Flatten` an NCHW map in (C, H, W) order. The peer keeps torch's natural layout and the rows of
  the first dense kernel are permuted when they are copied, so its forward has no extra transpose.
* Every activation and pooling is its own module (`nn.ReLU`, `nn.MaxPool2d`), used once: Captum's
  DeepLift applies its rules through hooks on such modules and falls back to plain gradients on
  functional calls (`F.relu`) or breaks on a module used twice. Dropout is an `nn.Dropout` module
  (identity in `eval()`).
* BatchNorm keeps torch semantics: `peer.train()` normalises with batch statistics and updates the
  running ones, `peer.eval()` uses the running statistics (as the Flax models with train=False).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn as nn

REPO_ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------------
# Weight conversion.
# --------------------------------------------------------------------------------------------


def _tensor(a) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32, copy=True))


def conv_weight(kernel) -> torch.Tensor:
    """Flax conv kernel [H, W, in, out] → torch Conv2d weight [out, in, H, W]."""
    return _tensor(np.asarray(kernel).transpose(3, 2, 0, 1))


def dense_weight(kernel) -> torch.Tensor:
    """Flax dense kernel [in, out] → torch Linear weight [out, in]."""
    return _tensor(np.asarray(kernel).T)


def conv_state(params: Mapping, prefix: str) -> dict[str, torch.Tensor]:
    out = {f"{prefix}.weight": conv_weight(params["kernel"])}
    if "bias" in params:
        out[f"{prefix}.bias"] = _tensor(params["bias"])
    return out


def dense_state(params: Mapping, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.weight": dense_weight(params["kernel"]), f"{prefix}.bias": _tensor(params["bias"])}


def batch_norm_state(params: Mapping, stats: Mapping, prefix: str) -> dict[str, torch.Tensor]:
    """Flax BatchNorm (scale, bias; running mean, var) → torch BatchNorm2d's state."""
    return {
        f"{prefix}.weight": _tensor(params["scale"]),
        f"{prefix}.bias": _tensor(params["bias"]),
        f"{prefix}.running_mean": _tensor(stats["mean"]),
        f"{prefix}.running_var": _tensor(stats["var"]),
        f"{prefix}.num_batches_tracked": torch.tensor(0, dtype=torch.long),
    }


# --------------------------------------------------------------------------------------------
# MNIST CNN (sgt.models.mnist_cnn.MnistCNN).
# --------------------------------------------------------------------------------------------


class MnistCNNPeer(nn.Module):
    """conv32(3×3) → ReLU → conv64(3×3) → ReLU → maxpool 2 → dropout .25 → flatten (C, H, W)
    → fc128 → ReLU → dropout .5 → fc; input NCHW [B, 1, 28, 28]."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.drop1 = nn.Dropout(0.25)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64 * 12 * 12, 128)
        self.relu3 = nn.ReLU()
        self.drop2 = nn.Dropout(0.5)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        x = self.flatten(self.drop1(self.pool(x)))
        x = self.drop2(self.relu3(self.fc1(x)))
        return self.fc2(x)


def mnist_cnn_peer(variables: Mapping) -> MnistCNNPeer:
    p = variables["params"]
    fc1_kernel = np.asarray(p["Dense_0"]["kernel"])  # rows in (H, W, C) order of the 12×12×64 map
    hidden = fc1_kernel.shape[1]
    # Reorder the rows to (C, H, W), the order in which torch flattens the NCHW map.
    fc1_kernel = fc1_kernel.reshape(12, 12, 64, hidden).transpose(2, 0, 1, 3).reshape(-1, hidden)
    net = MnistCNNPeer(num_classes=np.asarray(p["Dense_1"]["kernel"]).shape[1])
    state = {**conv_state(p["Conv_0"], "conv1"), **conv_state(p["Conv_1"], "conv2"),
             **dense_state({"kernel": fc1_kernel, "bias": p["Dense_0"]["bias"]}, "fc1"),
             **dense_state(p["Dense_1"], "fc2")}
    net.load_state_dict(state, strict=True)
    return net


# --------------------------------------------------------------------------------------------
# ResNet-18, CIFAR stem (sgt.models.resnet.ResNet18).
# --------------------------------------------------------------------------------------------


class BasicBlockPeer(nn.Module):
    """relu(BN(conv3×3(relu(BN(conv3×3_stride(x))))) + shortcut(x)); shortcut BN(conv1×1_stride) or identity."""

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1))
        else:
            self.shortcut = nn.Identity()
        self.relu2 = nn.ReLU()  # its own module: Captum's DeepLift hooks break on a reused one

    def forward(self, x):
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu2(y + self.shortcut(x))


class ResNet18Peer(nn.Module):
    """conv3×3(64)-BN-ReLU → BasicBlocks [2, 2, 2, 2] at 64/128/256/512 (strides 1, 2, 2, 2) → mean over H, W
    → linear; input NCHW [B, 3, 32, 32]."""

    def __init__(self, num_classes: int = 10, stage_sizes=(2, 2, 2, 2)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5, momentum=0.1)
        self.relu = nn.ReLU()
        blocks, in_channels = [], 64
        for stage, count in enumerate(stage_sizes):
            for block in range(count):
                channels = 64 * 2**stage
                blocks.append(BasicBlockPeer(in_channels, channels, 2 if stage > 0 and block == 0 else 1))
                in_channels = channels
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x):
        x = self.blocks(self.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def resnet18_peer(variables: Mapping) -> ResNet18Peer:
    p, s = variables["params"], variables["batch_stats"]
    net = ResNet18Peer(num_classes=np.asarray(p["Dense_0"]["kernel"]).shape[1])
    state = {**conv_state(p["Conv_0"], "conv1"), **batch_norm_state(p["BatchNorm_0"], s["BatchNorm_0"], "bn1"),
             **dense_state(p["Dense_0"], "fc")}
    for i, block in enumerate(net.blocks):
        fp, fs, prefix = p[f"BasicBlock_{i}"], s[f"BasicBlock_{i}"], f"blocks.{i}"
        state.update(conv_state(fp["Conv_0"], f"{prefix}.conv1"))
        state.update(batch_norm_state(fp["BatchNorm_0"], fs["BatchNorm_0"], f"{prefix}.bn1"))
        state.update(conv_state(fp["Conv_1"], f"{prefix}.conv2"))
        state.update(batch_norm_state(fp["BatchNorm_1"], fs["BatchNorm_1"], f"{prefix}.bn2"))
        has_projection = isinstance(block.shortcut, nn.Sequential)
        if has_projection != ("Conv_2" in fp):
            raise ValueError(f"variables: BasicBlock_{i} {'lacks' if has_projection else 'has'} a projection "
                             "shortcut (Conv_2) where ResNet-18 has "
                             f"{'one' if has_projection else 'none'}; are these ResNet-18 variables?")
        if has_projection:
            state.update(conv_state(fp["Conv_2"], f"{prefix}.shortcut.0"))
            state.update(batch_norm_state(fp["BatchNorm_2"], fs["BatchNorm_2"], f"{prefix}.shortcut.1"))
    net.load_state_dict(state, strict=True)
    return net


# --------------------------------------------------------------------------------------------
# Registry and checks.
# --------------------------------------------------------------------------------------------

PEERS: dict[str, Callable[[Mapping], nn.Module]] = {
    "mnist_cnn": mnist_cnn_peer,
    "resnet18": resnet18_peer,
}


def torch_peer(name: str, variables: Mapping) -> nn.Module:
    """The torch module equivalent to `sgt.models.get(name)` with the Flax `variables` copied in.

    Returned in eval mode (running BatchNorm statistics, no dropout), on the CPU, float32.
    """
    if name not in PEERS:
        raise ValueError(f"name: no torch peer for {name!r}; peers exist for {sorted(PEERS)}")
    return PEERS[name](variables).eval()


def perturbed(variables: Any, seed: int = 0) -> Any:
    """A copy of Flax `variables` whose biases and BatchNorm parameters and statistics are random.

    Freshly initialised, these are all 0 or 1, which would hide a swapped or misplaced entry in a
    conversion; random values make every one of them count. Scales and variances are drawn from
    U(0.5, 1.5), biases and means from N(0, 0.1²). Kernels are kept.
    """
    import jax

    rng = np.random.default_rng(seed)

    def redraw(path, leaf):
        key = getattr(path[-1], "key", None)
        shape = np.shape(leaf)
        if key in ("scale", "var"):
            return rng.uniform(0.5, 1.5, shape).astype(np.float32)
        if key in ("bias", "mean"):
            return (0.1 * rng.standard_normal(shape)).astype(np.float32)
        return np.asarray(leaf)

    return jax.tree_util.tree_map_with_path(redraw, variables)


def to_nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x, dtype=np.float32).transpose(0, 3, 1, 2)))


def check_peer(name: str, variables: Any = None, x: np.ndarray | None = None, *, batch: int = 4,
               seed: int = 0, tol: float = 1e-4) -> dict[str, float]:
    """Check that `torch_peer(name, variables)` in eval mode gives the Flax model's logits
    (`model.apply(variables, x, train=False)`).

    `variables`: default a fresh initialisation from `seed` with `perturbed` biases and BatchNorm
    entries. `x`: NHWC inputs; default `batch` uniform random images. Passes when
    max |Δlogits| ≤ tol · max(1, max |logits|), i.e. an absolute 1e-4 for logits of order one and a
    relative one for larger logits; raises AssertionError otherwise. Returns the max absolute and
    relative differences and the logit scale.
    """
    import jax

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import sgt.models

    model = sgt.models.get(name, num_classes=10)
    shape = sgt.models.REGISTRY[name].input_shape
    if x is None:
        x = np.random.default_rng(seed).random((batch, *shape), dtype=np.float32)
    if variables is None:
        variables = perturbed(model.init(jax.random.PRNGKey(seed), x[:1], train=False), seed)
    ours = np.asarray(model.apply(variables, x, train=False))
    with torch.no_grad():
        theirs = torch_peer(name, variables)(to_nchw(x)).numpy()
    if ours.shape != theirs.shape:
        raise AssertionError(f"{name}: logits shapes differ: Flax {ours.shape}, torch {theirs.shape}")
    scale = float(np.abs(ours).max())
    max_abs = float(np.abs(ours - theirs).max())
    result = {"max_abs_diff": max_abs, "max_rel_diff": max_abs / max(scale, 1e-30), "logit_scale": scale}
    if not max_abs <= tol * max(1.0, scale):
        raise AssertionError(f"{name}: torch peer differs from the Flax model: max |Δlogits| {max_abs:.3g} "
                             f"> {tol:g} · max(1, {scale:.3g})")
    return result


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Check the torch peers against their Flax models (random weights, inputs).")
    p.add_argument("--models", nargs="+", default=sorted(PEERS))
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = p.parse_args(argv)
    failed = 0
    for name in args.models:
        for seed in args.seeds:
            try:
                r = check_peer(name, batch=args.batch, seed=seed)
                print(f"ok   {name} seed {seed}: max |Δ| {r['max_abs_diff']:.2e}, relative {r['max_rel_diff']:.2e} "
                      f"(logits up to {r['logit_scale']:.3g})")
            except AssertionError as e:
                failed += 1
                print(f"FAIL {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
