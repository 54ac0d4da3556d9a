"""The embedded image set "shapes": one class-defining object on a cluttered background, with its exact pixel mask.

Each image is `size` × `size` × 1 with values in [0, 1], made in two independent steps:

1. **Background** (`backgrounds`): a smooth random texture (coarse noise, bilinearly upsampled) plus
   fine noise, overlaid with a few random line segments ("clutter"), all in [0, 0.6]. It is drawn
   from a random stream that never sees the labels, so it carries no information about the class.
2. **Object** (`object_fill`, `outline`, `paste`): one shape of class y ∈ `CLASSES`, at a random
   position and radius, drawn like a sticker: its body at one bright intensity in [0.8, 1] and a
   1-pixel dark outline (intensity 0) around it.

The object's mask is exactly the set of pixels step 2 overwrote (body and outline), the ground truth
`truth_test` against which a saliency map is scored (`sgt.metrics.mass_inside`). A map blind to
the object puts on average the object's area share of its mass there. The outline keeps the
class-defining edge inside the object: a gradient map of an edge-detecting network weights both
sides of an edge, and without the outline the outer side would be background.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sgt.data.base import Dataset

CLASSES = ("square", "disk", "triangle", "cross")
SIZE = 28
RADIUS = (4.0, 7.0)
BODY = (0.8, 1.0)     # range of the object's body intensity
OUTLINE = 0.0         # intensity of its outline
BACKGROUND_MAX = 0.6  # backgrounds lie in [0, BACKGROUND_MAX]


@dataclasses.dataclass(frozen=True)
class Scene:
    """A generated set and its parts; `images = paste(background, body, rim, intensity)`.

    background, images: float32 [n, size, size]; body, rim, masks (= body | rim): bool [n, size, size];
    labels: int32 [n]; centres: float [n, 2] (row, column); radii, intensity: float [n].
    """

    background: np.ndarray
    body: np.ndarray
    rim: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    centres: np.ndarray
    radii: np.ndarray
    intensity: np.ndarray

    @property
    def masks(self) -> np.ndarray:
        return self.body | self.rim


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")


def shape_mask(label, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether the point (u, v) lies in shape `label` (all three broadcast together).

    (u, v) = (right, down) from the object's centre in units of its radius. square: max(|u|, |v|) ≤ 0.8;
    disk: u² + v² ≤ 1; triangle (apex up): −0.9 ≤ v ≤ 0.8 and |u| ≤ (v + 0.9)/1.7;
    cross (plus sign): min(|u|, |v|) ≤ 0.3 and max(|u|, |v|) ≤ 1.
    """
    label = np.asarray(label)
    au, av = np.abs(u), np.abs(v)
    square = np.maximum(au, av) <= 0.8
    disk = u * u + v * v <= 1.0
    triangle = (v >= -0.9) & (v <= 0.8) & (au <= (v + 0.9) / 1.7)
    cross = (np.minimum(au, av) <= 0.3) & (np.maximum(au, av) <= 1.0)
    return np.select([label == c for c in range(len(CLASSES))], [square, disk, triangle, cross], False)


def object_fill(labels: np.ndarray, centres: np.ndarray, radii: np.ndarray, size: int = SIZE) -> np.ndarray:
    """bool [n, size, size], the object bodies: pixel (i, j) belongs when its centre, at
    u = (j − c_col)/r, v = (i − c_row)/r, lies in the shape (`shape_mask`)."""
    grid = np.arange(size, dtype=np.float64)
    v = (grid[None, :, None] - centres[:, 0, None, None]) / radii[:, None, None]
    u = (grid[None, None, :] - centres[:, 1, None, None]) / radii[:, None, None]
    return shape_mask(np.asarray(labels)[:, None, None], u, v)


def outline(body: np.ndarray) -> np.ndarray:
    """bool, like `body` [n, h, w]: the pixels outside the body with a body pixel among their 8 neighbours."""
    padded = np.pad(body, ((0, 0), (1, 1), (1, 1)))
    h, w = body.shape[1:]
    grown = np.zeros_like(body)
    for di in range(3):
        for dj in range(3):
            grown |= padded[:, di:di + h, dj:dj + w]
    return grown & ~body


def _upsample(coarse: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of [n, c, c] to [n, size, size], corners aligned."""
    c = coarse.shape[-1]
    pos = np.linspace(0.0, c - 1.0, size)
    lo = np.minimum(pos.astype(int), c - 2)
    w = pos - lo
    rows = coarse[:, lo] * (1 - w)[None, :, None] + coarse[:, lo + 1] * w[None, :, None]
    return rows[:, :, lo] * (1 - w) + rows[:, :, lo + 1] * w


def _segments(rng: np.random.Generator, n: int, count: int, size: int) -> np.ndarray:
    """float [n, size, size]: `count` random line segments per image, each at its own intensity in
    [0.2, BACKGROUND_MAX], on the pixels whose centre lies within 0.6 px of it (the brightest wins)."""
    a = rng.uniform(0, size - 1, (n, count, 1, 1, 2))
    b = np.clip(a + rng.normal(0, size / 4, (n, count, 1, 1, 2)), 0, size - 1)
    level = rng.uniform(0.2, BACKGROUND_MAX, (n, count, 1, 1)).astype(np.float32)
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1).astype(np.float32)
    p, d = grid - a.astype(np.float32), (b - a).astype(np.float32)
    t = np.clip((p * d).sum(-1, keepdims=True) / np.maximum((d * d).sum(-1, keepdims=True), 1e-9), 0, 1)
    near = ((p - t * d) ** 2).sum(-1) <= 0.36
    return np.where(near, level, 0.0).max(1)


def backgrounds(rng: np.random.Generator, n: int, size: int = SIZE, clutter: int = 3) -> np.ndarray:
    """float32 [n, size, size] in [0, BACKGROUND_MAX]: max(0.35 · smooth texture + U(0, 0.1) noise,
    `clutter` line segments). Drawn from `rng` alone: no label enters."""
    texture = 0.35 * _upsample(rng.uniform(0, 1, (n, 6, 6)), size) + rng.uniform(0, 0.1, (n, size, size))
    if clutter:
        texture = np.maximum(texture, _segments(rng, n, clutter, size))
    return np.clip(texture, 0, BACKGROUND_MAX).astype(np.float32)


def paste(background: np.ndarray, body: np.ndarray, rim: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """float32 images: `background`, with each body set to its `intensity` and each rim to `OUTLINE`."""
    level = np.asarray(intensity, np.float32)[:, None, None]
    return np.where(body, level, np.where(rim, np.float32(OUTLINE), background)).astype(np.float32)


def scene(seed: int, n: int, size: int = SIZE, clutter: int = 3, radius: tuple[float, float] = RADIUS) -> Scene:
    """`n` images of set `seed`. Labels, object placement and background come from three separate
    random streams ([seed, 0], [seed, 1], [seed, 2]), so the background is independent of the label."""
    _check_int("n", n, 1)
    _check_int("size", size, 12)
    _check_int("clutter", clutter, 0)
    low, high = radius
    if not 2.0 <= low <= high <= size / 2 - 2:
        raise ValueError(f"radius: expected 2 <= low <= high <= size/2 - 2 = {size / 2 - 2}, got {radius}")
    labels = np.random.default_rng([seed, 0]).integers(0, len(CLASSES), n).astype(np.int32)
    place = np.random.default_rng([seed, 1])
    radii = place.uniform(low, high, n)
    centres = place.uniform(radii[:, None] + 1, size - 2 - radii[:, None], (n, 2))  # outline stays inside
    intensity = place.uniform(*BODY, n)
    background = backgrounds(np.random.default_rng([seed, 2]), n, size, clutter)
    body = object_fill(labels, centres, radii, size)
    rim = outline(body)
    return Scene(background, body, rim, paste(background, body, rim, intensity), labels, centres, radii, intensity)


def load(seed: int = 0, n_train: int = 2000, n_test: int = 500, size: int = SIZE, clutter: int = 3) -> Dataset:
    """The "shapes" set: train then test from one `scene(seed, n_train + n_test)`, NHWC
    [n, size, size, 1] float32 in [0, 1]; `truth_test` is the test objects' mask (body and outline)."""
    _check_int("n_train", n_train, 1)
    _check_int("n_test", n_test, 1)
    s = scene(seed, n_train + n_test, size, clutter)
    x, truth = s.images[..., None], s.masks[..., None]
    return Dataset("shapes", x[:n_train], s.labels[:n_train], x[n_train:], s.labels[n_train:],
                   num_classes=len(CLASSES), truth_test=truth[n_train:])
