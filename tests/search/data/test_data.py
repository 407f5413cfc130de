"""Data loading: every invalid input gives one line naming the file and exit status 2."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from search.data import Split, load_dataset, stratified_split
from search.data.sanity import is_sorted_by_class, sanity_report
from search.errors import DataError

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT.parent / "shared" / "data" / "gtsrb-sample"


def _split(n: int = 86, seed: int = 0, *, sort: bool = False, size: int = 8) -> dict:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 43
    if sort:
        labels = np.sort(labels)
    return {"features": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
            "labels": labels.astype(np.uint8)}


def _write(folder: Path, **splits: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in splits.items():
        with open(folder / f"{name}.p", "wb") as fh:
            pickle.dump(payload, fh)
    return folder


def _check_cli(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run_search.py"), "data", "check", str(folder)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_loads_valid_folder(tmp_path: Path) -> None:
    ds = load_dataset(_write(tmp_path, train=_split(), valid=_split(seed=1), test=_split(seed=2)))
    assert ds.input_shape == (8, 8, 3) and ds.n_classes == 43 and len(ds.class_names) == 43
    assert ds.train.features.dtype == np.uint8 and ds.train.labels.dtype == np.int32
    assert ds.test_path is not None and ds.test_path.name == "test.p"
    assert len(ds.content_hash) == 16


def test_npz_and_any_int_labels(tmp_path: Path) -> None:
    split = _split()
    np.savez(tmp_path / "train.npz", features=split["features"], labels=split["labels"].astype(np.int64))
    ds = load_dataset(tmp_path)
    assert ds.valid_from_train and ds.train.labels.dtype == np.int32


def test_float_features_in_unit_range_become_uint8(tmp_path: Path) -> None:
    split = _split()
    split["features"] = split["features"].astype(np.float32) / 255.0
    ds = load_dataset(_write(tmp_path, train=split))
    assert ds.train.features.dtype == np.uint8 and ds.train.features.max() > 200


def test_grayscale_channel_accepted(tmp_path: Path) -> None:
    split = _split()
    split["features"] = split["features"][..., :1]
    assert load_dataset(_write(tmp_path, train=split)).input_shape == (8, 8, 1)


BAD_CASES = {
    "missing_key": (lambda s: {"features": s["features"]}, "missing key 'labels'"),
    "not_a_dict": (lambda s: [s["features"], s["labels"]], "expected a dict"),
    "length_mismatch": (lambda s: {**s, "labels": s["labels"][:-3]}, "differ in length"),
    "wrong_rank": (lambda s: {**s, "features": s["features"][..., 0]}, "rank 4"),
    "wrong_channels": (lambda s: {**s, "features": np.concatenate([s["features"]] * 2, -1)}, "channels"),
    "empty": (lambda s: {"features": s["features"][:0], "labels": s["labels"][:0]}, "no images"),
    "negative_label": (lambda s: {**s, "labels": s["labels"].astype(np.int64) - 1}, "negative"),
    "label_too_big": (lambda s: {**s, "labels": np.full_like(s["labels"], 50)}, "out of range"),
    "nan_features": (lambda s: {**s, "features": np.full(s["features"].shape, np.nan, np.float32)}, "NaN"),
    "inf_features": (lambda s: {**s, "features": np.full(s["features"].shape, np.inf, np.float32)}, "NaN or inf"),
    "float_labels": (lambda s: {**s, "labels": s["labels"].astype(np.float32)}, "integers"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_invalid_train_file_is_refused(tmp_path: Path, case: str) -> None:
    mutate, message = BAD_CASES[case]
    folder = _write(tmp_path, train=mutate(_split()))
    with pytest.raises(DataError) as err:
        load_dataset(folder)
    assert message in str(err.value) and "train.p" in str(err.value)


def test_label_beyond_signnames_is_refused(tmp_path: Path) -> None:
    folder = _write(tmp_path, train=_split())
    (folder / "signnames.csv").write_text("ClassId,SignName\n0,a\n1,b\n")
    with pytest.raises(DataError, match="out of range for 2 classes"):
        load_dataset(folder)


def test_image_sizes_differing_between_files(tmp_path: Path) -> None:
    folder = _write(tmp_path, train=_split(), valid=_split(size=10))
    with pytest.raises(DataError, match=r"valid\.p: image size"):
        load_dataset(folder)


TEST_CASES = {
    "other_image_size": (lambda s: _split(seed=2, size=10), r"image size \(10, 10, 3\) differs"),
    "bad_labels_key": (lambda s: {"features": s["features"], "label": s["labels"]}, "missing key 'labels'"),
    "label_out_of_range": (lambda s: {**s, "labels": np.full_like(s["labels"], 43)}, "label 43 is out of range"),
    "float_features_normalised": (lambda s: {**s, "features": s["features"] / 255.0 - 0.5}, "already normalised"),
}


@pytest.mark.parametrize("case", sorted(TEST_CASES))
def test_malformed_test_file_is_refused_at_load_time(tmp_path: Path, case: str) -> None:
    """test.p is checked before the search, not first read after it."""
    mutate, message = TEST_CASES[case]
    folder = _write(tmp_path, train=_split(), valid=_split(seed=1), test=mutate(_split(seed=2)))
    with pytest.raises(DataError, match=message) as err:
        load_dataset(folder)
    assert err.value.path.name == "test.p" and str(err.value).count("\n") == 0


def test_test_file_is_checked_but_its_images_are_not_kept(tmp_path: Path) -> None:
    ds = load_dataset(_write(tmp_path, train=_split(), test=_split(n=50, seed=2)))
    assert ds.n_test == 50 and ds.test_path == tmp_path / "test.p"
    assert {name for name, value in vars(ds).items() if isinstance(value, Split)} == {"train", "valid"}
    test = ds.load_test()
    assert test is not None and len(test) == 50 and test.features.shape[1:] == ds.input_shape
    assert load_dataset(_write(tmp_path / "no_test", train=_split())).n_test == 0


@pytest.mark.parametrize("with_valid", [True, False])
def test_single_class_train_is_refused(tmp_path: Path, with_valid: bool) -> None:
    train = {**_split(), "labels": np.full(86, 3, np.uint8)}
    folder = _write(tmp_path, train=train, **({"valid": _split(seed=1)} if with_valid else {}))
    with pytest.raises(DataError, match="only 1 class .*a classifier needs at least 2") as err:
        load_dataset(folder)
    assert err.value.path.name == "train.p"


def test_two_classes_are_enough(tmp_path: Path) -> None:
    train = {**_split(), "labels": (np.arange(86) % 2).astype(np.uint8)}
    assert load_dataset(_write(tmp_path, train=train)).n_classes == 43


def test_missing_directory_and_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DataError, match=r"train\.p: missing"):
        load_dataset(tmp_path)


def test_not_a_pickle(tmp_path: Path) -> None:
    (tmp_path / "train.p").write_text("hello, I am text")
    with pytest.raises(DataError, match="not a valid pickle"):
        load_dataset(tmp_path)
    (tmp_path / "train.p").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        load_dataset(tmp_path)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    folder = tmp_path / "data"
    _write(folder, train={"features": _Evil(marker), "labels": np.zeros(3, np.uint8)})
    with pytest.raises(DataError, match="unsafe pickle"):
        load_dataset(folder)
    assert not marker.exists()
    result = _check_cli(folder)
    assert result.returncode == 2 and not marker.exists()
    assert "unsafe pickle" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("case", ["missing_key", "label_too_big", "nan_features"])
def test_cli_one_line_error_exit_2(tmp_path: Path, case: str) -> None:
    mutate, message = BAD_CASES[case]
    result = _check_cli(_write(tmp_path, train=mutate(_split())))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr and "train.p" in result.stderr


def test_stratified_split_every_class_both_sides_and_seeded() -> None:
    labels = np.sort(np.arange(430) % 43)
    tr, va = stratified_split(labels, 0.2, seed=3)
    assert set(labels[tr]) == set(labels[va]) == set(range(43))
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(labels)
    tr2, va2 = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(va, va2)
    assert not np.array_equal(va, stratified_split(labels, 0.2, seed=4)[1])


def test_sorted_by_class_warning(tmp_path: Path) -> None:
    ds = load_dataset(_write(tmp_path, train=_split(sort=True), valid=_split(seed=1)))
    report = sanity_report(ds)
    assert any("train: images are sorted by class" in w for w in report.warnings)
    assert not any(w.startswith("valid: images are sorted") for w in report.warnings)
    assert is_sorted_by_class(np.array([0, 0, 1, 1, 2])) and not is_sorted_by_class(np.array([0, 1, 0]))


def test_sanity_warns_about_missing_classes_scale_and_leakage(tmp_path: Path) -> None:
    train = _split()
    valid = _split(seed=1)
    valid["labels"][:] = 0
    valid["features"] = (valid["features"] // 8).astype(np.uint8)  # a different "normalisation"
    test = {"features": train["features"][:5].copy(), "labels": train["labels"][:5].copy()}
    ds = load_dataset(_write(tmp_path, train=train, valid=valid, test=test))
    report = sanity_report(ds, ds.load_test())
    text = " | ".join(report.warnings)
    assert "valid: 42 classes have no images" in text
    assert "pixel statistics differ" in text
    assert "5 test images are exact duplicates of train images" in text
    assert "Data sanity report" in report.text()


@pytest.mark.skipif(not (SAMPLE / "train.p").exists(), reason="../shared/data/gtsrb-sample is absent")
def test_real_gtsrb_sample_loads_and_is_flagged_sorted() -> None:
    ds = load_dataset(SAMPLE)
    assert len(ds.train) == 10_000 and len(ds.valid) == 3_033 and ds.n_classes == 43
    report = sanity_report(ds)
    assert any(w.startswith("train: images are sorted by class") for w in report.warnings)
