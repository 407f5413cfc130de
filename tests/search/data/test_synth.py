"""Tests of the built-in synthetic traffic signs (search/data/synth/): fast, no training."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest

from search.data import synth
from search.data.signnames import GTSRB_CLASS_NAMES, N_GTSRB_CLASSES, read_signnames
from search.errors import UserError

FILES = ("train.p", "valid.p", "test.p", "signnames.csv")
SMALL = {"n_train": 240, "n_valid": 60, "n_test": 80}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Refuses any global that is not numpy's array machinery: proves the files hold plain arrays."""

    def find_class(self, module: str, name: str) -> object:
        if module.split(".")[0] == "numpy" and name in {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")


def _load(path: Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh)


def _standardised(features: np.ndarray) -> np.ndarray:
    """Per-image zero mean, unit variance, so lighting does not drown the shapes."""
    f = features.astype(np.float64)
    return (f - f.mean(axis=(1, 2, 3), keepdims=True)) / (f.std(axis=(1, 2, 3), keepdims=True) + 1e-6)


def _only(*classes: int) -> np.ndarray:
    probs = np.zeros(N_GTSRB_CLASSES)
    probs[list(classes)] = 1.0
    return probs


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth_a")
    summary = synth.write_synthetic_dataset(out, seed=3, **SMALL)
    assert summary["seed"] == 3 and summary["n_train"] == SMALL["n_train"]
    return out


@pytest.fixture(scope="module")
def big_train() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return synth.generate_signs(2500, seed=7)


# -- determinism -----------------------------------------------------------------
def test_same_seed_gives_identical_bytes(written: Path, tmp_path: Path) -> None:
    synth.write_synthetic_dataset(tmp_path, seed=3, **SMALL)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (written / name).read_bytes(), name


def test_different_seed_gives_different_images(written: Path, tmp_path: Path) -> None:
    synth.write_synthetic_dataset(tmp_path, seed=4, **SMALL)
    for split in ("train", "valid", "test"):
        a, b = _load(written / f"{split}.p"), _load(tmp_path / f"{split}.p")
        assert not np.array_equal(a["features"], b["features"])


def test_splits_use_independent_streams(written: Path) -> None:
    valid, test = _load(written / "valid.p"), _load(written / "test.p")
    n = min(len(valid["features"]), len(test["features"]))
    assert not np.array_equal(valid["features"][:n], test["features"][:n])


def test_generator_leaves_global_rng_alone() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = synth.generate_signs(20, seed=5)
    np.random.seed(999)
    b = synth.generate_signs(20, seed=5)
    np.random.seed(123)
    assert np.array_equal(np.random.get_state()[1], before)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)


# -- file layout -----------------------------------------------------------------
def test_written_files_layout(written: Path) -> None:
    assert sorted(p.name for p in written.iterdir()) == sorted(FILES), "no temporary files may be left behind"
    for split, n in (("train", SMALL["n_train"]), ("valid", SMALL["n_valid"]), ("test", SMALL["n_test"])):
        data = _load(written / f"{split}.p")
        assert set(data) == {"features", "labels", "sizes", "coords"}
        assert data["features"].shape == (n, 32, 32, 3) and data["features"].dtype == np.uint8
        assert data["labels"].shape == (n,) and data["labels"].dtype == np.uint8
        assert data["sizes"].shape == (n, 2) and data["sizes"].dtype == np.uint16
        assert data["coords"].shape == (n, 4) and data["coords"].dtype == np.uint16
        assert data["labels"].max() < N_GTSRB_CLASSES


def test_pickles_hold_plain_numpy_arrays(written: Path) -> None:
    for split in ("train", "valid", "test"):
        raw = (written / f"{split}.p").read_bytes()
        assert raw[:2] == b"\x80\x04", "pickle protocol 4"
        data = _NumpyOnlyUnpickler(io.BytesIO(raw)).load()
        assert type(data) is dict
        assert all(type(v) is np.ndarray for v in data.values())


def test_signnames_are_gtsrb(written: Path) -> None:
    assert read_signnames(written / "signnames.csv") == list(GTSRB_CLASS_NAMES)


def test_boxes_lie_inside_the_notional_photo(big_train: tuple[np.ndarray, ...]) -> None:
    _, _, sizes, coords = big_train
    w, h = sizes[:, 0].astype(int), sizes[:, 1].astype(int)
    x1, y1, x2, y2 = (coords[:, k].astype(int) for k in range(4))
    assert (w >= 15).all() and (h >= 15).all() and (w <= 300).all()
    assert (x1 < x2).all() and (y1 < y2).all() and (x2 < w).all() and (y2 < h).all()
    # the sign fills most of the crop, as in GTSRB
    frac = (x2 - x1) / w
    assert 0.45 < np.median(frac) < 0.95


def test_image_size_and_empty_request() -> None:
    f, labels, s, c = synth.generate_signs(5, seed=0, image_size=48)
    assert f.shape == (5, 48, 48, 3) and labels.shape == (5,) and s.shape == (5, 2) and c.shape == (5, 4)
    f, labels, s, c = synth.generate_signs(0, seed=0)
    assert f.shape == (0, 32, 32, 3) and labels.dtype == np.uint8 and s.dtype == np.uint16 and c.dtype == np.uint16


def test_bad_arguments_are_user_errors() -> None:
    with pytest.raises(UserError):
        synth.generate_signs(-1, seed=0)
    with pytest.raises(UserError):
        synth.generate_signs(3, seed=0, image_size=4)
    with pytest.raises(UserError):
        synth.generate_signs(3, seed=0, class_probs=np.ones(5))
    with pytest.raises(UserError):
        synth.generate_signs(3, seed=0, class_probs=-np.ones(N_GTSRB_CLASSES))


def test_bad_split_size_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        synth.write_synthetic_dataset(tmp_path / "out", n_train=10, n_valid=5, n_test=-1)
    assert not (tmp_path / "out").exists()


# -- class balance ---------------------------------------------------------------
def test_frequencies_look_like_gtsrb() -> None:
    freq = synth.GTSRB_CLASS_FREQUENCIES
    assert freq.shape == (N_GTSRB_CLASSES,) and abs(freq.sum() - 1.0) < 1e-9
    assert 8 < freq.max() / freq.min() < 14
    assert int(synth.GTSRB_TRAIN_COUNTS.sum()) == 39209


def test_all_classes_present_and_imbalanced(big_train: tuple[np.ndarray, ...]) -> None:
    labels = big_train[1]
    counts = np.bincount(labels, minlength=N_GTSRB_CLASSES)
    assert len(counts) == N_GTSRB_CLASSES and (counts > 0).all()
    assert 5 < counts.max() / counts.min() < 20
    assert np.corrcoef(counts, synth.GTSRB_CLASS_FREQUENCIES)[0, 1] > 0.95
    assert len(np.unique(labels[:50])) > 15, "labels are shuffled, not sorted"


def test_class_probs_select_classes() -> None:
    _, labels, _, _ = synth.generate_signs(30, seed=1, class_probs=_only(14))
    assert (labels == 14).all()


# -- content -----------------------------------------------------------------------
def test_speed_limit_and_stop_mean_images_differ() -> None:
    features, labels, _, _ = synth.generate_signs(400, seed=12, class_probs=_only(1, 14))
    f = features.astype(np.float64)
    redness = f[..., 0] - f[..., 1:].mean(axis=-1)
    assert redness[labels == 14].mean() > redness[labels == 1].mean() + 8, "a stop sign is mostly red"
    x = _standardised(features)
    between = np.abs(x[labels == 1].mean(0) - x[labels == 14].mean(0)).mean()
    a = x[labels == 1]
    within = np.abs(a[::2].mean(0) - a[1::2].mean(0)).mean()
    assert between > 2 * within


def test_speed_limits_differ_in_the_centre() -> None:
    """50 vs 60: same plate, different digits; the centre must tell them apart beyond sampling noise."""
    features, labels, _, _ = synth.generate_signs(800, seed=11, class_probs=_only(2, 3))
    centre = _standardised(features)[:, 10:22, 8:24].mean(axis=-1)
    a, b = centre[labels == 2], centre[labels == 3]
    between = np.abs(a.mean(0) - b.mean(0)).mean()
    within = max(np.abs(a[::2].mean(0) - a[1::2].mean(0)).mean(), np.abs(b[::2].mean(0) - b[1::2].mean(0)).mean())
    assert between > 1.5 * within


def test_images_of_a_class_vary(big_train: tuple[np.ndarray, ...]) -> None:
    features, labels = big_train[0], big_train[1]
    for k in (1, 14, 35):
        imgs = features[labels == k].reshape(int((labels == k).sum()), -1)
        assert len(np.unique(imgs, axis=0)) == len(imgs)
        assert imgs.astype(np.float64).std(axis=0).mean() > 20
    means = features.reshape(len(features), -1).mean(axis=1)
    assert means.std() > 15, "brightness varies like real photos"
    assert means.min() < 60 and means.max() > 150


def test_templates_are_mirrored_for_left_right_pairs() -> None:
    tm = synth._templates(64)
    r = tm.res + 2
    for left, right in ((19, 20), (34, 33), (37, 36), (39, 38)):
        a = tm.coverage[left].reshape(r, r, -1)
        b = tm.coverage[right].reshape(r, r, -1)
        assert np.allclose(a, b[:, ::-1]), (left, right)
        assert not np.allclose(a, b)
    # all 43 classes have distinct drawings
    flat = tm.coverage.reshape(N_GTSRB_CLASSES, -1).astype(np.float64)
    sq = (flat**2).sum(1)
    dist2 = sq[:, None] + sq[None, :] - 2 * flat @ flat.T
    assert (dist2 + np.eye(N_GTSRB_CLASSES) * 1e9).min() > 1.0
