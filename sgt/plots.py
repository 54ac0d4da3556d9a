"""Figures (matplotlib, written to files; no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np


def _as_image(a: np.ndarray) -> np.ndarray:
    """[T, F] time series → features × time; [H, W, C] image → [H, W] channel mean."""
    a = np.asarray(a)
    return a.mean(-1) if a.ndim == 3 else a.T


def saliency_grid(inputs: np.ndarray, maps: dict[str, np.ndarray], path: str | Path, *,
                  truth: np.ndarray | None = None, titles: list[str] | None = None) -> Path:
    """One row per sample: the input, the ground truth (if given), then |saliency| of each map.

    Each saliency panel is scaled to its own maximum so that where the mass sits is comparable.
    """
    columns = [("input", inputs, "viridis")]
    if truth is not None:
        columns.append(("ground truth", truth.astype(float), "gray"))
    columns += [(name, np.abs(m), "hot") for name, m in maps.items()]
    rows = len(inputs)
    fig, axes = plt.subplots(rows, len(columns), figsize=(2.4 * len(columns), 2.3 * rows), squeeze=False)
    for r in range(rows):
        for c, (name, arrays, cmap) in enumerate(columns):
            ax = axes[r, c]
            img = _as_image(arrays[r])
            vmax = img.max() if cmap == "hot" and img.max() > 0 else None
            ax.imshow(img, cmap=cmap, vmin=0 if vmax else None, vmax=vmax, aspect="auto", interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
            if c == 0 and titles:
                ax.set_ylabel(titles[r], fontsize=8)
            if r == rows - 1 and inputs.ndim == 3:
                ax.set_xlabel("time →  (rows: features)", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
