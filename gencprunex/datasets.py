"""Bundled offline data for the demo, the examples and the tests. Nothing is ever downloaded.

* :func:`digits_images` — real handwritten digits (scikit-learn's 8×8 ``load_digits``, shipped inside
  scikit-learn) rendered to ``size``×``size``×``channels`` images, a stand-in for the seed's 96×96×3
  Visual Wake Words subset.
* :func:`har_like` — generated 6-class human-activity-recognition signals, 128 steps × 9 channels,
  a stand-in for the seed's UCI-HAR files.

Both return a :class:`SplitData` (train and test arrays) and are deterministic for a given ``seed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from .errors import ParameterError

HAR_CLASSES = ("walking", "upstairs", "downstairs", "sitting", "standing", "lying")
HAR_CHANNELS = {
    9: (
        "body_acc_x",
        "body_acc_y",
        "body_acc_z",
        "body_gyro_x",
        "body_gyro_y",
        "body_gyro_z",
        "total_acc_x",
        "total_acc_y",
        "total_acc_z",
    ),
    6: ("total_acc_x", "total_acc_y", "total_acc_z", "body_gyro_x", "body_gyro_y", "body_gyro_z"),
    3: ("total_acc_x", "total_acc_y", "total_acc_z"),
}
_SAMPLE_RATE = 50.0  # Hz, as UCI-HAR: 128 steps = 2.56 s
_RENDER_CHUNK = 256  # images rendered at a time, to bound temporary memory


@dataclass(frozen=True, eq=False)
class SplitData:
    """A train/test split: ``x_train``, ``y_train`` (integer class ids), ``x_test``, ``y_test``, ``class_names``.

    ``data.train`` and ``data.test`` give ``(x, y)`` pairs, the form every gencprunex ``fit`` accepts.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    @property
    def train(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x_train, y_train)``."""
        return self.x_train, self.y_train

    @property
    def test(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x_test, y_test)``."""
        return self.x_test, self.y_test

    @property
    def n_classes(self) -> int:
        """Number of classes (labels are ``0 .. n_classes - 1``)."""
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, without the batch axis."""
        return tuple(self.x_train.shape[1:])

    @property
    def nbytes(self) -> int:
        """Bytes held by the four arrays."""
        return sum(a.nbytes for a in (self.x_train, self.y_train, self.x_test, self.y_test))

    def save(self, directory: str | os.PathLike, name: str) -> tuple[Path, Path]:
        """Write ``train_data_<name>.npz`` and ``test_data_<name>.npz`` (the seed's naming) into ``directory``.

        Inputs are stored under ``images`` when they are 4-D, else under ``features``; labels under ``labels``.
        Read them back with :func:`gencprunex.data.load_split` or :func:`gencprunex.data.load_npz`.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        key = "images" if self.x_train.ndim == 4 else "features"
        paths = (directory / f"train_data_{name}.npz", directory / f"test_data_{name}.npz")
        for path, (x, y) in zip(paths, (self.train, self.test), strict=True):
            np.savez(path, **{key: x, "labels": y})
        return paths


# digits --------------------------------------------------------------------------------------
def digits_images(
    size: int = 96,
    channels: int = 3,
    seed: int = 0,
    *,
    classes=None,
    positive: int | None = None,
    n: int | None = None,
    test_size: float = 0.25,
    augment: bool = True,
    dtype: str = "float32",
) -> SplitData:
    """Real handwritten digits (scikit-learn's ``load_digits``, 1797 images of 8×8) as ``size``×``size`` images.

    Each 8×8 digit is upscaled smoothly (bilinear). With ``augment`` every image also gets a seeded random
    shift (up to ±1 source pixel, ~12 % of the width), zoom (0.85–1.15), foreground and background colour
    (a tint per sample, dark-on-light or light-on-dark) and a little Gaussian noise, so the task is not
    trivial; test images are drawn the same way. Without ``augment`` digits are white on black.

    Parameters
    ----------
    size, channels:
        Output image side and channel count (1 = grey, 3 = RGB).
    seed:
        Seeds the subsampling, the stratified train/test split and the augmentation.
    classes:
        Digits to keep (e.g. ``(0, 1)``); labels become their positions in this list. Default all ten.
    positive:
        A digit turned into a balanced 2-class task, VWW-style: label 1 for that digit, 0 for an equal
        number of other digits (drawn evenly, seeded). Class names ``("not <d>", "<d>")``.
    n:
        Keep at most this many images in all (a stratified subsample) before splitting.
    test_size:
        Fraction of the images in the test split (stratified by class).
    dtype:
        ``"float32"`` (values in [0, 1]) or ``"uint8"`` (values 0–255; divide by 255 for [0, 1]).

    Memory: the images take ``count × size² × channels`` bytes times 4 for float32 (1 for uint8): all 1797
    digits at 96×96×3 are about 199 MB as float32 and 50 MB as uint8; at 32×32×3 about 22 MB as float32.
    Use ``classes``, ``positive`` or ``n`` to stay small. Labels are int32 class ids.
    """
    _check_int(size, "size", low=8)
    _check_choice(channels, "channels", (1, 3))
    _check_choice(dtype, "dtype", ("float32", "uint8"))
    _check_fraction(test_size, "test_size")
    rng = np.random.default_rng(seed)
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    index, labels, names = _select_digits(digits.target, classes, positive, rng)
    if n is not None:
        _check_int(n, "n", low=2 * len(names))
        if n < len(labels):
            kept, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels, random_state=seed)
            index, labels = index[np.sort(kept)], labels[np.sort(kept)]
    images = images[index]
    train, test = _stratified_split(labels, test_size, seed)
    rendered = _render(images, size, channels, augment, rng, dtype)
    return SplitData(rendered[train], labels[train], rendered[test], labels[test], names)


def _select_digits(target: np.ndarray, classes, positive, rng) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(sample indices, labels, class names)`` for the requested digits."""
    chosen = tuple(range(10)) if classes is None else _digit_list(classes)
    mask = np.isin(target, chosen)
    index = np.flatnonzero(mask)
    if positive is None:
        lookup = {digit: i for i, digit in enumerate(chosen)}
        labels = np.array([lookup[t] for t in target[index]], dtype=np.int32)
        return index, labels, tuple(str(d) for d in chosen)
    if positive not in chosen:
        raise ParameterError(f"positive={positive!r} must be one of the kept digits {list(chosen)}")
    pos = index[target[index] == positive]
    others = [d for d in chosen if d != positive]
    if not others:
        raise ParameterError(f"positive={positive!r} needs at least one other digit in classes, got {list(chosen)}")
    neg = _even_draw(target, others, len(pos), rng)
    index = np.sort(np.concatenate([pos, neg]))
    labels = (target[index] == positive).astype(np.int32)
    return index, labels, (f"not {positive}", str(positive))


def _even_draw(target: np.ndarray, digits: list[int], count: int, rng) -> np.ndarray:
    """``count`` sample indices spread as evenly as possible over ``digits``."""
    pools = [rng.permutation(np.flatnonzero(target == d)) for d in digits]
    share = [count // len(digits) + (i < count % len(digits)) for i in range(len(digits))]
    return np.concatenate([pool[:k] for pool, k in zip(pools, share, strict=True)])


def _digit_list(classes) -> tuple[int, ...]:
    try:
        chosen = tuple(int(c) for c in classes)
    except (TypeError, ValueError):
        raise ParameterError(f"classes must be a list of digits 0-9, got {classes!r}") from None
    if len(chosen) < 2 or len(set(chosen)) != len(chosen) or not all(0 <= c <= 9 for c in chosen):
        raise ParameterError(f"classes must list at least two distinct digits 0-9, got {classes!r}")
    return chosen


def _render(images: np.ndarray, size: int, channels: int, augment: bool, rng, dtype: str) -> np.ndarray:
    """Upscale (and augment) 8×8 images in [0, 1] to ``(count, size, size, channels)``."""
    count = len(images)
    shift = rng.uniform(-1.0, 1.0, (count, 2)) if augment else np.zeros((count, 2))
    zoom = rng.uniform(0.85, 1.15, count) if augment else np.ones(count)
    fg, bg = _colours(count, channels, augment, rng)
    noise = rng.uniform(0.0, 0.05, count) if augment else np.zeros(count)
    out = np.empty((count, size, size, channels), dtype=dtype)
    for start in range(0, count, _RENDER_CHUNK):
        part = slice(start, start + _RENDER_CHUNK)
        rows = _interpolation(size, images.shape[1], zoom[part], shift[part, 0])
        cols = _interpolation(size, images.shape[2], zoom[part], shift[part, 1])
        mask = np.einsum("nuj,njk,nvk->nuv", rows, images[part], cols)[..., None]
        pixels = bg[part, None, None, :] + (fg[part] - bg[part])[:, None, None, :] * mask
        if augment:
            pixels = pixels + noise[part, None, None, None] * rng.standard_normal(pixels.shape, dtype=np.float32)
        pixels = np.clip(pixels, 0.0, 1.0)
        out[part] = np.round(pixels * 255.0) if dtype == "uint8" else pixels
    return out


def _interpolation(size: int, source: int, zoom: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Bilinear resampling matrices ``(count, size, source)``: output pixel ``u`` reads source coordinate ``c``."""
    centre = (np.arange(size) + 0.5) / size * source - source / 2
    coord = centre[None, :] / zoom[:, None] + source / 2 - 0.5 - shift[:, None]
    weights = 1.0 - np.abs(coord[:, :, None] - np.arange(source)[None, None, :])
    return np.maximum(weights, 0.0).astype(np.float32)


def _colours(count: int, channels: int, augment: bool, rng) -> tuple[np.ndarray, np.ndarray]:
    """Per-image foreground and background colours, at least 0.35 apart in brightness when augmented."""
    if not augment:
        return np.ones((count, channels), np.float32), np.zeros((count, channels), np.float32)
    base = rng.uniform(0.0, 0.3, (count, 1)) + rng.uniform(0.0, 0.25, (count, channels))
    gap = rng.uniform(0.35, 0.7, (count, 1)) + rng.uniform(-0.1, 0.1, (count, channels))
    dark, light = base, np.clip(base + gap, 0.0, 1.0)
    inverted = rng.random(count) < 0.3
    fg = np.where(inverted[:, None], dark, light).astype(np.float32)
    bg = np.where(inverted[:, None], light, dark).astype(np.float32)
    return fg, bg


# HAR-like time series ------------------------------------------------------------------------
def har_like(
    n_per_class: int = 200,
    steps: int = 128,
    channels: int = 9,
    seed: int = 0,
    *,
    subjects: int = 30,
    test_size: float = 0.3,
) -> SplitData:
    """Generated human-activity signals in the spirit of UCI-HAR: 6 classes, ``steps`` × ``channels``.

    Classes (labels 0–5): walking, upstairs, downstairs, sitting, standing, lying. A waist-worn IMU at
    50 Hz: walking kinds differ in step frequency, vertical/forward amplitude, impact harmonics and body
    lean; static postures differ in gravity direction (sitting tilts back a little, so sitting and
    standing overlap; lying puts gravity on another axis) and sway. Every simulated subject has its own
    cadence, vigour, posture and sensor mounting (a small rotation) and noise level, and the split is by
    subject (as UCI-HAR's), so a model has to generalise to new people: easy to beat chance, hard to ace.

    Channels (``HAR_CHANNELS``): 9 = body_acc xyz, body_gyro xyz, total_acc xyz (UCI-HAR's order),
    6 = total_acc xyz + body_gyro xyz (a plain IMU), 3 = total_acc xyz (a plain accelerometer).
    Accelerations are in g, angular rates in rad/s; float32. Labels are int32 class ids.
    ``n_per_class`` samples per class in all (train + test); memory ``6 × n_per_class × steps × channels × 4`` bytes.
    """
    _check_int(n_per_class, "n_per_class", low=2)
    _check_int(steps, "steps", low=16)
    _check_choice(channels, "channels", tuple(sorted(HAR_CHANNELS)))
    _check_int(subjects, "subjects", low=2)
    _check_fraction(test_size, "test_size")
    rng = np.random.default_rng(seed)
    people = _subjects(subjects, rng)
    labels = np.repeat(np.arange(len(HAR_CLASSES), dtype=np.int32), n_per_class)
    owner = np.concatenate([rng.permutation(np.arange(n_per_class) % subjects) for _ in HAR_CLASSES])
    signals = _har_signals(labels, {k: v[owner] for k, v in people.items()}, steps, rng)
    index = {name: i for i, name in enumerate(HAR_CHANNELS[9])}
    x = signals[:, :, [index[name] for name in HAR_CHANNELS[channels]]].astype(np.float32)
    n_test = min(subjects - 1, max(1, round(subjects * test_size)))
    test_people = rng.permutation(subjects)[:n_test]
    test = np.isin(owner, test_people)
    return SplitData(x[~test], labels[~test], x[test], labels[test], HAR_CLASSES)


def _subjects(count: int, rng) -> dict[str, np.ndarray]:
    """Per-person traits: cadence (Hz), vigour, posture angles (rad), sensor mounting rotation, noise (g), and
    a gait style (personal factors on vertical bounce, forward sway, heel impact and trunk rotation)."""
    return {
        "cadence": rng.normal(1.85, 0.15, count),
        "vigour": rng.lognormal(0.0, 0.25, count),
        "sit_tilt": np.radians(rng.normal(22.0, 8.0, count)),
        "stand_tilt": np.radians(rng.normal(4.0, 6.0, count)),
        "mount": np.stack([_rotation(np.radians(rng.normal(0.0, 8.0, 3))) for _ in range(count)]),
        "noise": rng.uniform(0.01, 0.04, count),
        "style": rng.lognormal(0.0, 0.25, (count, 4)),
    }


def _rotation(angles: np.ndarray) -> np.ndarray:
    """Rotation matrix from three (roll, pitch, yaw) angles in radians."""
    cr, cp, cy = np.cos(angles)
    sr, sp, sy = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _har_signals(labels: np.ndarray, person: dict[str, np.ndarray], steps: int, rng) -> np.ndarray:
    """``(count, steps, 9)`` signals in UCI-HAR channel order for the given labels and per-sample subjects."""
    count = len(labels)
    t = np.arange(steps) / _SAMPLE_RATE
    walking = labels < 3
    tilt = _posture(labels, person, rng)
    gravity = np.stack([np.cos(tilt[:, 0]) * np.cos(tilt[:, 1]), np.sin(tilt[:, 1]), np.sin(tilt[:, 0])], axis=-1)
    lying = labels == 5
    on_side = rng.random(count) < 0.4
    gravity[lying] = np.stack(
        [np.sin(tilt[lying, 0]), np.where(on_side[lying], 1.0, 0.15), np.where(on_side[lying], 0.15, 1.0)], axis=-1
    )
    gravity /= np.linalg.norm(gravity, axis=-1, keepdims=True)
    body, gyro = _gait(labels, person, t, rng)
    sway = _sway(labels, t, rng)
    body = np.where(walking[:, None, None], body, sway)
    gyro = np.where(walking[:, None, None], gyro, sway * rng.uniform(2.0, 6.0, (count, 1, 1)))
    mount = person["mount"]
    body = np.einsum("nij,ntj->nti", mount, body)
    gyro = np.einsum("nij,ntj->nti", mount, gyro)
    total = body + np.einsum("nij,nj->ni", mount, gravity)[:, None, :]
    noise = person["noise"][:, None, None] * rng.standard_normal((count, steps, 9)) * np.repeat([1.0, 3.0, 1.0], 3)
    return np.concatenate([body, gyro, total], axis=-1) + noise


def _posture(labels: np.ndarray, person: dict[str, np.ndarray], rng) -> np.ndarray:
    """Per-sample (pitch, roll) of the trunk in radians: lean while climbing, tilt while sitting."""
    count = len(labels)
    lean = np.radians(np.array([2.0, 9.0, -4.0, 0.0, 0.0, 8.0]))[labels]
    pitch = lean + np.where(labels == 3, person["sit_tilt"], 0.0) + np.where(labels == 4, person["stand_tilt"], 0.0)
    pitch = pitch + np.radians(rng.normal(0.0, 5.0, count))
    roll = np.radians(rng.normal(0.0, 4.0, count))
    return np.stack([pitch, roll], axis=-1)


def _gait(labels: np.ndarray, person: dict[str, np.ndarray], t: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Body acceleration (g) and angular rate (rad/s) of walking kinds, ``(count, steps, 3)`` each."""
    count = len(labels)
    kind = np.minimum(labels, 2)
    tempo = np.array([1.0, 0.88, 1.1])[kind] * rng.normal(1.0, 0.07, count)
    freq = (person["cadence"] * tempo)[:, None]
    vigour = (person["vigour"] * rng.lognormal(0.0, 0.15, count))[:, None, None]
    style = person["style"] * rng.lognormal(0.0, 0.2, (count, 4))
    vertical = (np.array([0.28, 0.25, 0.34])[kind] * style[:, 0])[:, None]
    forward = (np.array([0.13, 0.18, 0.14])[kind] * style[:, 1])[:, None]
    impact = (np.array([0.25, 0.18, 0.45])[kind] * style[:, 2])[:, None]
    turn = (np.array([0.6, 0.75, 0.7])[kind] * style[:, 3])[:, None]
    phase = rng.uniform(0, 2 * np.pi, (count, 1))
    w = 2 * np.pi * freq * t[None, :]
    acc_x = vertical * (np.sin(w + phase) + impact * np.sin(2 * w + 2 * phase + 0.6))
    acc_y = 0.08 * np.sin(0.5 * w + phase / 2)
    acc_z = forward * np.sin(w + phase + np.pi / 2)
    body = np.stack([acc_x, acc_y, acc_z], axis=-1) * vigour
    pitch_rate = turn * np.cos(w + phase + 0.3)
    yaw_rate = 0.35 * np.cos(0.5 * w + phase / 2)
    roll_rate = 0.4 * turn * np.sin(w + phase)
    gyro = np.stack([yaw_rate, pitch_rate, roll_rate], axis=-1) * vigour
    return body, gyro


def _sway(labels: np.ndarray, t: np.ndarray, rng) -> np.ndarray:
    """Small slow body motion of static postures, ``(count, steps, 3)``: standing sways most, lying least."""
    count = len(labels)
    level = np.array([0.0, 0.0, 0.0, 0.008, 0.014, 0.004])[labels] * rng.lognormal(0.0, 0.4, count)
    freq = rng.uniform(0.15, 0.6, (count, 1, 3))
    phase = rng.uniform(0, 2 * np.pi, (count, 1, 3))
    return level[:, None, None] * np.sin(2 * np.pi * freq * t[None, :, None] + phase)


# shared --------------------------------------------------------------------------------------
def _stratified_split(labels: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test indices, stratified by label."""
    try:
        train, test = train_test_split(np.arange(len(labels)), test_size=test_size, stratify=labels, random_state=seed)
    except ValueError as error:
        raise ParameterError(f"cannot split {len(labels)} samples with test_size={test_size}: {error}") from None
    return np.sort(train), np.sort(test)


def _check_int(value, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_choice(value, name: str, allowed: tuple) -> None:
    if isinstance(value, bool) or value not in allowed:
        raise ParameterError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")


def _check_fraction(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, float | int) or not 0 < value < 1:
        raise ParameterError(f"{name} must be a fraction strictly between 0 and 1, got {value!r}")
