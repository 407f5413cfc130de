"""Data loading: every invalid input gives one line naming the file and exit status 2."""

from __future__ import annotations

import base64
import codecs
import io
import os
import pickle
import resource
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from search.data import Split, load_dataset, load_split, loading, stratified_split
from search.data.safe_pickle import MAX_PICKLE_OPS, safe_load
from search.data.sanity import is_sorted_by_class, sanity_report
from search.data.signnames import MAX_CLASSES, read_signnames
from search.errors import DataError, UserError

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT.parent / "shared" / "data" / "gtsrb-sample"


def _split(n: int = 86, seed: int = 0, *, sort: bool = False, size: int = 8) -> dict:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 43
    if sort:
        labels = np.sort(labels)
    return {"features": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), "labels": labels.astype(np.uint8)}


def _write(folder: Path, **splits: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in splits.items():
        with open(folder / f"{name}.p", "wb") as fh:
            pickle.dump(payload, fh)
    return folder


def _check_cli(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_search.py"), "data", "check", str(folder)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


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

    def __reduce__(self):
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


# --- Untrusted files: bounded memory and time, one line naming the file -------------------------------

_RECONSTRUCT = np.ndarray((0,), np.uint8).__reduce__()[0]


class _Call:
    """Pickles as ``func(*args)`` (then ``BUILD`` with ``state``): how a hostile file makes the
    unpickler call something."""

    def __init__(self, func: Callable, *args: object, state: object = None) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def _refusal(load: Callable[[], object]) -> tuple[DataError, float, float]:
    """The DataError ``load()`` raises, the peak memory it traced (MiB; numpy reports its allocations
    to tracemalloc) and the seconds it took."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DataError) as err:
            load()
        return err.value, tracemalloc.get_traced_memory()[1] / 2**20, time.perf_counter() - start
    finally:
        tracemalloc.stop()


def _bytearray_bomb() -> bytes:
    """A 40-byte pickle of ``bytearray(1_500_000_000)``: it allocated 1.5 GB before 'expected a dict'."""
    return pickle.dumps(_Call(bytearray, 1_500_000_000), protocol=2)


def _shared_lists(levels: int = 9, width: int = 10) -> list:
    """``width`` references to one list, ``levels`` deep: a few hundred bytes pickled, but
    ``np.asarray`` on it builds every path (10**9 items)."""
    nested: list = [0] * width
    for _ in range(levels - 1):
        nested = [nested] * width
    return nested


def _npy(shape: tuple[int, ...], descr: str = "|u1", data: bytes = b"") -> bytes:
    """An .npy member: a valid header declaring ``shape``, followed by ``data`` (however short)."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue() + data


def _npz(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return path


def _npy_of(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def _huge_shape_npz(path: Path) -> Path:
    """About 500 bytes whose features header declares 96 TB: numpy allocated it before reading."""
    return _npz(
        path,
        {
            "features": _npy((10**6, 10**6, 32, 3), data=bytes(16)),
            "labels": _npy_of((np.arange(86) % 43).astype(np.uint8)),
        },
    )


def _million_signnames(path: Path) -> Path:
    path.write_text("ClassId,SignName\n" + "".join(f"{i},sign {i}\n" for i in range(1_000_000)))
    return path


HOSTILE_PICKLES = {
    "bytearray_bomb": (lambda: _bytearray_bomb(), "unsafe pickle: refused to load global __builtin__.bytearray"),
    "nested_shared_lists": (
        lambda: pickle.dumps({**_split(), "labels": _shared_lists()}),
        "'labels' is a list holding list items",
    ),
    "object_array_state": (
        lambda: pickle.dumps(
            {
                **_split(),
                "features": _Call(_RECONSTRUCT, np.ndarray, (0,), b"b", state=(1, (10**8,), np.dtype("O"), False, [])),
            }
        ),
        "unsafe pickle: dtype 'O8' (only plain number dtypes",
    ),  # numpy's __setstate__ segfaults on this
    "huge_declared_array": (
        lambda: pickle.dumps(
            {
                **_split(),
                "features": _Call(
                    _RECONSTRUCT, np.ndarray, (0,), b"b", state=(1, (10**6, 10**6, 32, 3), np.dtype("u1"), False, b"ab")
                ),
            }
        ),
        "does not match its 2 bytes of data",
    ),
    "reconstruct_allocates": (
        lambda: pickle.dumps(_Call(_RECONSTRUCT, np.ndarray, (10**9,), b"b")),
        "_reconstruct with arguments numpy never writes",
    ),
    "ndarray_called": (lambda: pickle.dumps(_Call(np.ndarray, (10**9,))), "unsafe pickle: it calls ndarray"),
    "codec_chain": (lambda: pickle.dumps(_nested_hex(30)), "_codecs.encode other than str to latin1"),
    "structured_dtype_state": (
        lambda: pickle.dumps(
            _Call(np.dtype, "u1", False, True, state=(3, "|", None, ("x",), {"x": (np.dtype("u1"), 0)}, 1, 1, 16))
        ),
        "dtype state numpy never writes",
    ),
    "tuple_dict_key": (lambda: pickle.dumps({(1, 2): 3}), "a dict key of type tuple"),
    "set": (lambda: pickle.dumps({1, 2}, protocol=4), "opcode EMPTY_SET"),
    "huge_bytearray8": (
        lambda: b"\x80\x05\x96" + (1_500_000_000).to_bytes(8, "little") + b"ab.",
        "BYTEARRAY8 declares 1,500,000,000 bytes",
    ),
    "huge_binbytes8": (
        lambda: b"\x80\x04\x8e" + (1_500_000_000).to_bytes(8, "little") + b"ab.",
        "not a valid pickle (EOFError: the data ends early)",
    ),
    # the C unpickler sizes its memo by this index: 512 MB for these 9 bytes
    "sparse_memo_index": (lambda: b"\x80\x04Nr\xff\xff\xff\x01.", "expected a dict"),
    "too_many_opcodes": (lambda: b"\x80\x04](" + b"K\x01" * 1_200_000 + b"e.", "more than 1,100,000 pickle opcodes"),
}


def _nested_hex(depth: int) -> object:
    """``_codecs.encode(..., 'hex')`` nested: each level doubles the bytes (2**30 at depth 30)."""
    value: object = b"a"
    for _ in range(depth):
        value = _Call(codecs.encode, value, "hex")
    return value


@pytest.mark.parametrize("case", sorted(HOSTILE_PICKLES))
def test_hostile_pickle_is_one_line_in_bounded_memory(tmp_path: Path, case: str) -> None:
    make, message = HOSTILE_PICKLES[case]
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.p").write_bytes(make())
    error, peak_mib, seconds = _refusal(lambda: load_dataset(folder))
    assert message in str(error) and error.path == folder / "train.p" and "\n" not in str(error)
    assert peak_mib < 64 + 3 * (folder / "train.p").stat().st_size / 2**20 and seconds < 5


def test_bytearray_bomb_is_small() -> None:
    assert len(_bytearray_bomb()) < 48


def _limit_memory(limit: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


CLI_CASES = {
    "bytearray_bomb": ("train.p", lambda folder: (folder / "train.p").write_bytes(_bytearray_bomb())),
    "nested_shared_lists": (
        "train.p",
        lambda folder: (folder / "train.p").write_bytes(HOSTILE_PICKLES["nested_shared_lists"][0]()),
    ),
    "object_array_state": (
        "train.p",
        lambda folder: (folder / "train.p").write_bytes(HOSTILE_PICKLES["object_array_state"][0]()),
    ),
    "huge_shape_npz": ("train.npz", lambda folder: _huge_shape_npz(folder / "train.npz")),
    "million_signnames": (
        "signnames.csv",
        lambda folder: (_write(folder, train=_split()), _million_signnames(folder / "signnames.csv")),
    ),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES) + ["valid"])
def test_cli_hostile_files_under_a_memory_limit(tmp_path: Path, case: str) -> None:
    """`data check` (NumPy only, no Keras backend) answers each with one line and exit 2 under a 1 GiB
    address-space limit; a valid folder passes under the same limit."""
    folder = tmp_path / "data"
    folder.mkdir()
    if case == "valid":
        _write(folder, train=_split())
    else:
        name, make = CLI_CASES[case]
        make(folder)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_search.py"), "data", "check", str(folder)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env=env,
        preexec_fn=_limit_memory(1 << 30),
    )
    if case == "valid":
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {folder / name}: ")


def test_huge_declared_npz_shape_is_refused_before_reading(tmp_path: Path) -> None:
    path = _huge_shape_npz(tmp_path / "train.npz")
    assert path.stat().st_size < 600
    error, peak_mib, _ = _refusal(lambda: load_split(path))
    assert "'features' declares shape (1000000, 1000000, 32, 3) of uint8" in str(error) and peak_mib < 8


def _patch_central_sizes(path: Path, compressed: int | None, uncompressed: int | None) -> None:
    """Overwrite the sizes the zip's central directory gives its first member."""
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")
    if compressed is not None:
        data[entry + 20 : entry + 24] = compressed.to_bytes(4, "little")
    if uncompressed is not None:
        data[entry + 24 : entry + 28] = uncompressed.to_bytes(4, "little")
    path.write_bytes(bytes(data))


NPZ_CASES = {
    "compressed_size_beyond_file": (lambda p: _patch_central_sizes(p, 2**31, None), "bytes of compressed data"),
    "uncompressed_size_lies": (lambda p: _patch_central_sizes(p, None, 2**32 - 1), "would expand to"),
    "uncompressed_size_differs_from_header": (lambda p: _patch_central_sizes(p, None, 5000), "declares shape"),
}


@pytest.mark.parametrize("case", sorted(NPZ_CASES))
def test_npz_with_forged_zip_sizes(tmp_path: Path, case: str) -> None:
    patch, message = NPZ_CASES[case]
    split = _split()
    path = _npz(tmp_path / "train.npz", {"features": _npy_of(split["features"]), "labels": _npy_of(split["labels"])})
    patch(path)
    error, peak_mib, _ = _refusal(lambda: load_split(path))
    assert message in str(error) and "\n" not in str(error) and peak_mib < 8


def test_npz_zip_bomb_and_object_arrays_are_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb" / "train.npz"
    bomb.parent.mkdir()
    np.savez_compressed(bomb, features=np.zeros((3000, 64, 64, 3), np.uint8), labels=np.zeros(3000, np.uint8))
    error, peak_mib, _ = _refusal(lambda: load_split(bomb))
    assert f"more than {loading.NPZ_MAX_EXPANSION}x its size" in str(error) and peak_mib < 8
    objects = tmp_path / "objects" / "train.npz"
    objects.parent.mkdir()
    np.savez(objects, features=_split()["features"], labels=np.array([1, "x"], dtype=object))
    with pytest.raises(DataError, match="'labels' is an object array"):
        load_split(objects)


def test_compressed_npz_loads(tmp_path: Path) -> None:
    split = _split()
    np.savez_compressed(tmp_path / "train.npz", **split)
    loaded = load_split(tmp_path / "train.npz")
    assert np.array_equal(loaded.features, split["features"]) and np.array_equal(loaded.labels, split["labels"])


@pytest.mark.parametrize("size", [(0, 0), (4, 4), (loading.MIN_IMAGE_SIZE, loading.MIN_IMAGE_SIZE - 1)])
def test_empty_or_tiny_images_are_refused(tmp_path: Path, size: tuple[int, int]) -> None:
    split = {**_split(), "features": np.zeros((86, *size, 3), np.uint8)}
    least = loading.MIN_IMAGE_SIZE
    with pytest.raises(DataError, match=rf"images are {size[0]}x{size[1]} pixels; at least {least}x{least}") as err:
        load_dataset(_write(tmp_path, train=split))
    assert err.value.path.name == "train.p"


def test_million_row_signnames_is_one_line(tmp_path: Path) -> None:
    folder = _write(tmp_path, train=_split())
    _million_signnames(folder / "signnames.csv")
    error, peak_mib, seconds = _refusal(lambda: load_dataset(folder))
    assert str(error) == f"{folder / 'signnames.csv'}: lists more than 10,000 classes (the most this tool supports)"
    assert peak_mib < 16 and seconds < 5


def test_signnames_fields_and_lines_beyond_the_limits(tmp_path: Path) -> None:
    path = tmp_path / "signnames.csv"
    for text, message in [
        ("ClassId,SignName\n0," + "x" * (200 << 10) + "\n", "field larger than field limit"),
        ('ClassId,SignName\n0,"' + ("x" * 1000 + "\n") * 200 + '"\n', "field larger than"),
        ("ClassId,SignName\n0," + "x" * (2 << 20) + "\n", "has a line longer than"),
        ("ClassId,SignName\n0,a\n0,b\n", "ClassId 0 appears twice"),
        ("Id,Name\n0,a\n", "needs a header row with ClassId and SignName"),
        ("ClassId,SignName\n0\n", "line 2 lacks a ClassId or SignName field"),
        ("ClassId,SignName\nx,a\n", "not a ClassId,SignName csv (ValueError"),
        ("ClassId,SignName\n" + "9" * 4000 + ",a\n", "ClassId 99999999999999999... is outside"),
    ]:
        path.write_text(text)
        with pytest.raises(DataError) as err:
            read_signnames(path)
        assert message in str(err.value) and err.value.path == path and "\n" not in str(err.value)
    path.write_text("ClassId,SignName\n1,b\n\n0,a\n")
    assert read_signnames(path) == ["a", "b"]


def test_long_keys_are_cut_in_the_message(tmp_path: Path) -> None:
    _write(tmp_path, train={10**5000: 1, "k\n" * 50_000: 2, b"\xff" * 100_000: 3, "features": _split()["features"]})
    with pytest.raises(DataError, match="missing key 'labels'") as err:
        load_dataset(tmp_path)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400 + len(str(tmp_path))


def test_class_count_is_capped(tmp_path: Path) -> None:
    folder = _write(tmp_path, train={**_split(), "labels": np.full(86, MAX_CLASSES, np.int64)})
    with pytest.raises(DataError, match="'labels' contain class id 10000; at most 10,000 classes"):
        load_dataset(folder)
    with pytest.raises(UserError, match="--n-classes must be within 1..10,000"):
        load_dataset(_write(tmp_path / "ok", train=_split()), n_classes=MAX_CLASSES + 1)


def test_labels_as_a_flat_list_of_ints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    split = _split()
    ds = load_dataset(_write(tmp_path / "list", train={**split, "labels": split["labels"].tolist()}))
    assert ds.train.labels.dtype == np.int32 and len(ds.train) + len(ds.valid) == 86
    monkeypatch.setattr(loading, "MAX_LABELS_IN_LIST", 86)
    for labels, message in [
        ([True] * 86, "holding bool items"),
        ([2**70] * 86, "beyond 64 bits"),
        ("0" * 86, "got str"),
        (list(range(87)), "list of 87 items; lists are read up to 86"),
    ]:
        with pytest.raises(DataError, match=message):
            load_split(_write(tmp_path / "bad", train={**split, "labels": labels}) / "train.p")


def test_a_labels_list_at_its_limit_fits_the_unpickler() -> None:
    """pickle writes one opcode per list item plus a MARK and an APPENDS per 1,000 items."""
    assert loading.MAX_LABELS_IN_LIST * 1.002 + 1000 < MAX_PICKLE_OPS


def _arrays_to_pickle() -> list:
    out: list = []
    for dtype in [
        "uint8",
        "int8",
        "int16",
        "uint16",
        "int32",
        "int64",
        "uint64",
        "float16",
        "float32",
        "float64",
        "bool",
        "complex64",
        ">u2",
        ">f8",
        "U3",
        "S2",
    ]:
        a = np.arange(24).astype(dtype).reshape(2, 3, 4)
        k_order = a.transpose(2, 0, 1).copy().transpose(1, 2, 0)  # neither C nor F: protocol 5 writes order 'K'
        out += [a, a[:, ::2], np.asfortranarray(a), a.transpose(1, 0, 2), k_order, a[0, 0, 0], np.zeros((0, 3), dtype)]
    return out + [{"features": np.zeros((2, 8, 8, 3), np.uint8), "labels": [1, 2]}, b"", b"ab", (1, 2.5, None, "s")]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_safe_load_reads_what_numpy_pickles(tmp_path: Path, protocol: int) -> None:
    """Every array layout numpy pickles (C, F, strided, 'K' order with protocol 5), scalars, dtypes."""
    for index, obj in enumerate(_arrays_to_pickle()):
        path = tmp_path / f"{index}.p"
        path.write_bytes(pickle.dumps(obj, protocol=protocol))
        got, want = safe_load(path), pickle.loads(path.read_bytes())
        if isinstance(want, (np.ndarray, np.generic)):
            assert type(got) is type(want) and got.dtype == want.dtype and np.array_equal(got, want)
            assert not isinstance(got, np.ndarray) or got.strides == want.strides
        else:
            assert type(got) is type(want) and str(got) == str(want)


# Pickled with numpy 1.26.4 (module paths numpy.core.*): {'features': uint8 (2, 8, 8, 1), 'labels': int64 [0, 1],
# 'scale': float32 0.5}, zlib-compressed and base64-encoded.
NUMPY1_PICKLES = {
    2: "eNp1kWlz0zAQhm3naOpe6X3fl3u5BAoUKJSzlyGAuMwZbEXBAcfJa8tAoIV+aUt/NchJGD50WM1oNVrtvvusDpUDSJqZkiSpwCwe"
    "+iyATL2wVKnqtOwzvRS6vGj5vlVVcz6jZS/gfki5CqX+SvXy9ShihnSEOM3Rcp7RQGVedFCRMGVR3EbSTArvWrzoZdB0jBRB8wlU"
    "ghbNkDVDMVJiyRytjbp5Xq2I9DZTEWlhBu2nv07QQZDWjFit5D46s9ns3m9htc2QOLrsUydhHoqoJCuxeCLZlGpWW1rb2jvSnV3d"
    "Pb19/QODQ8Mjo2PjE5NT0zOzc/PawuLS8oq+ei5z/sLaxUuX169cvbZx/cbmzVu379y9t7W9s7tn3H+QffjoMXny9NnzF+bLV6/f"
    "vH2Xe2/ZNM8KH5zix09uyStX4Ac8/Pzla/Xb9/2DHz/R7QjIHoJejj67wW4zN0C/ozi1WQ04YgCDBENiAIZyhGGnDltcx0gEO0ow"
    "9hd2A+NnYCdqsGnpn8kNj8lIfIpgmmPGNhPiKqCWyzD7n6+NopavYq7RQmEN81ELGsGCaME5K75oC+14XW4TS5HeMsHKMXSC1VD/"
    "AwTKsXc=",
    5: "eNprYJ26k5EBDGqnaPRwpKUmlpQWpRZP6RHKK80tqNRLzi9K1QMyU4syk6f0cMenFeXnJpWmpaUWTZk8RWNaAwMUMDIxs7CysXNw"
    "cnHz8PLxCwgKCYuIiolLSEpJy8jKySsoKimrqKqpa2hqaevo6ukbGBoZm5iamVtYWlnb2NrZOzg6Obu4url7eHp5+/j6+QcEBgWH"
    "hIaFR0RGRcfExsUnJCYlp6SmpWdkZmXn5OblFxQWFZeUlpVXVFZV19TW1U/pYQW7F0inlFQWpAId18NUajils6N9StAUDW/mHsaa"
    "KX5+fl7/gQBMeDOUTEnS8Gby5gBCxpIpPYzOU0qAanvYchKTUnOKp2SwaEwTYEAF0KBimJLB0cOUaYFsvA0W472ZWqdk8INNZS1O"
    "TsxJndIjihSsuaU5JZmJRUWJQGezgeQTQYEKMjrNBGF0hjimwc4sQEfYT2kDqijVAwBmm5pQ",
}


@pytest.mark.parametrize("protocol", sorted(NUMPY1_PICKLES))
def test_numpy1_pickles_load(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "train.p"
    path.write_bytes(zlib.decompress(base64.b64decode(NUMPY1_PICKLES[protocol])))
    raw = safe_load(path)
    assert raw["scale"] == np.float32(0.5) and raw["scale"].dtype == np.float32
    split = load_split(path)
    assert split.features.shape == (2, 8, 8, 1) and np.array_equal(split.features.ravel(), np.arange(128))
    assert split.labels.tolist() == [0, 1]


def test_numpy_dtypes_are_not_changed_by_a_pickle(tmp_path: Path) -> None:
    """``dtype(code, align, copy=False)`` returns numpy's shared dtype; BUILD must not reach it."""
    path = tmp_path / "x.p"
    path.write_bytes(pickle.dumps(_Call(np.dtype, "i4", False, False, state=(3, ">", None, None, None, -1, -1, 0))))
    assert safe_load(path) == np.dtype(">i4") and np.dtype("i4").byteorder == "="


def test_real_size_pickle_loads_fast(tmp_path: Path) -> None:
    """10,000 32x32x3 uint8 images, as the tutorial's train.p holds (35k), load in well under a second."""
    rng = np.random.default_rng(0)
    _write(
        tmp_path,
        train={
            "features": rng.integers(0, 256, (10_000, 32, 32, 3), dtype=np.uint8),
            "labels": (np.arange(10_000) % 43).astype(np.uint8),
        },
    )
    start = time.perf_counter()
    split = load_split(tmp_path / "train.p")
    assert len(split) == 10_000 and time.perf_counter() - start < 1.0


def test_stratified_split_matches_the_per_class_scan() -> None:
    """The sort-based split picks exactly what the former scan per class did (existing studies keep
    their validation images)."""
    labels = np.random.default_rng(5).integers(0, 60, 3000)
    rng = np.random.default_rng(7)
    train_idx, valid_idx = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_valid = min(max(int(round(0.2 * len(idx))), 1), len(idx) - 1) if len(idx) >= 2 else 0
        valid_idx.append(idx[:n_valid])
        train_idx.append(idx[n_valid:])
    tr, va = stratified_split(labels, 0.2, seed=7)
    assert np.array_equal(tr, np.sort(np.concatenate(train_idx)))
    assert np.array_equal(va, np.sort(np.concatenate(valid_idx)))
