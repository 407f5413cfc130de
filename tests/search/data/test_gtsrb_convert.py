"""Conversion of the official GTSRB layout into the tutorial's pickles (``search.data.gtsrb``).

Builds a tiny fake official tree (real P6 files, real GT csvs) in tmp_path; runs in well under a
second.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from support.gtsrb_tree import HEADER, N_CLASSES, N_FRAMES, N_TEST, N_TRACKS, make_tree, write_ppm

from search.data import safe_pickle
from search.data.gtsrb import convert_gtsrb, read_ppm, resize_bilinear, split_tracks
from search.errors import DataError, UserError


def load(path: Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh)


@pytest.fixture()
def tree(tmp_path: Path) -> tuple[Path, dict]:
    src = tmp_path / "GTSRB"
    return src, make_tree(src)


# ----------------------------------------------------------------------------- read_ppm / resize


def test_read_ppm_with_comment_in_header(tmp_path: Path) -> None:
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    write_ppm(tmp_path / "a.ppm", img, comment="CREATOR: test")
    np.testing.assert_array_equal(read_ppm(tmp_path / "a.ppm"), img)


def test_read_ppm_ascii_and_16bit(tmp_path: Path) -> None:
    (tmp_path / "a.ppm").write_text("P3\n# c\n2 1\n255\n1 2 3  # mid\n 4 5 6\n")
    np.testing.assert_array_equal(read_ppm(tmp_path / "a.ppm"), [[[1, 2, 3], [4, 5, 6]]])
    raw = np.array([0, 65535, 32768, 0, 0, 65535], dtype=">u2").tobytes()
    (tmp_path / "b.ppm").write_bytes(b"P6 2 1 65535\n" + raw)
    np.testing.assert_array_equal(read_ppm(tmp_path / "b.ppm"), [[[0, 255, 128], [0, 0, 255]]])


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "empty"),
        (b"GIF89a....", "not a PPM"),
        (b"P6\n4 4\n255\n" + bytes(10), "truncated"),
        (b"P6\n4 x\n255\n", "header"),
    ],
)
def test_read_ppm_corrupt_names_file(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.ppm"
    path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as info:
        read_ppm(path)
    assert str(path) in str(info.value)


def test_resize_constant_colour_stays() -> None:
    img = np.full((37, 53, 3), (12, 200, 255), dtype=np.uint8)
    for size in (32, 48, 80):
        out = resize_bilinear(img, size)
        assert out.shape == (size, size, 3) and out.dtype == np.uint8
        assert (out == np.array([12, 200, 255], dtype=np.uint8)).all()


def test_resize_2x_upscale_of_gradient_is_monotone() -> None:
    row = np.linspace(0, 255, 16).astype(np.uint8)
    img = np.repeat(np.repeat(row[None, :, None], 16, axis=0), 3, axis=2)
    out = resize_bilinear(img, 32)
    diffs = np.diff(out[:, :, 0].astype(int), axis=1)
    assert (diffs >= 0).all() and diffs.sum(axis=1).min() > 200
    assert (out[:, :, 0] == out[0:1, :, 0]).all()  # rows stay identical
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255


def test_resize_identity_at_same_size() -> None:
    img = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_bilinear(img, 20), img)


# ----------------------------------------------------------------------------- conversion


def test_convert_shapes_dtypes_sizes_coords(tree: tuple[Path, dict], tmp_path: Path) -> None:
    src, expected = tree
    out = tmp_path / "out" / "nested"
    calls: list[tuple[int, int]] = []
    summary = convert_gtsrb(src, out, progress=lambda d, t: calls.append((d, t)))

    assert {p.name for p in out.iterdir()} == {"train.p", "valid.p", "test.p", "signnames.csv"}
    assert (out / "signnames.csv").read_text().startswith("ClassId,SignName")
    n_train_total = N_CLASSES * N_TRACKS * N_FRAMES
    assert summary["counts"]["train"] + summary["counts"]["valid"] == n_train_total
    assert summary["counts"]["test"] == N_TEST
    assert calls[0] == (0, n_train_total + N_TEST) and calls[-1] == (n_train_total + N_TEST,) * 2
    assert isinstance(summary["seconds"], float)

    rows = list(expected["train"].values())
    by_size_and_roi = {tuple(int(v) for v in r.split(";")[1:7]): int(r.split(";")[7]) for r in rows}
    for name in ("train", "valid", "test"):
        data = load(out / f"{name}.p")
        n = summary["counts"][name]
        assert set(data) == {"features", "labels", "sizes", "coords"}
        assert data["features"].shape == (n, 32, 32, 3) and data["features"].dtype == np.uint8
        assert data["labels"].shape == (n,) and data["labels"].dtype == np.uint8
        assert data["sizes"].shape == (n, 2) and data["sizes"].dtype == np.uint16
        assert data["coords"].shape == (n, 4) and data["coords"].dtype == np.uint16
        # The constant colour encodes the class: resizing kept it, and labels match the pixels.
        np.testing.assert_array_equal(data["features"][:, 5, 5, 0], 40 * data["labels"] + 20)
        if name != "test":
            for size, coord, label in zip(data["sizes"], data["coords"], data["labels"]):
                assert by_size_and_roi[(*map(int, size), *map(int, coord))] == label


def test_convert_test_part_labels_and_order(tree: tuple[Path, dict], tmp_path: Path) -> None:
    src, expected = tree
    convert_gtsrb(src, tmp_path / "out")
    test = load(tmp_path / "out" / "test.p")
    rows = [list(map(int, r.split(";")[1:])) for r in expected["test"]]
    np.testing.assert_array_equal(test["labels"], [r[6] for r in rows])
    np.testing.assert_array_equal(test["sizes"], [r[0:2] for r in rows])
    np.testing.assert_array_equal(test["coords"], [r[2:6] for r in rows])


@pytest.mark.parametrize("place", ["final_test", "root"])
def test_convert_finds_test_csv_elsewhere(tmp_path: Path, place: str) -> None:
    make_tree(tmp_path / "src", test_csv_place=place)
    summary = convert_gtsrb(tmp_path / "src", tmp_path / "out")
    assert summary["counts"]["test"] == N_TEST


def test_convert_without_test_part(tmp_path: Path) -> None:
    make_tree(tmp_path / "src", test=False)
    summary = convert_gtsrb(tmp_path / "src", tmp_path / "out")
    assert "test" not in summary["counts"] and not (tmp_path / "out" / "test.p").exists()


def test_convert_test_images_without_labels_csv(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    (tmp_path / "src" / "Final_Test" / "Images" / "GT-final_test.csv").unlink()
    with pytest.raises(UserError, match="GT-final_test.csv"):
        convert_gtsrb(tmp_path / "src", tmp_path / "out")


def test_convert_size_48_and_crop(tree: tuple[Path, dict], tmp_path: Path) -> None:
    src, _ = tree
    summary = convert_gtsrb(src, tmp_path / "out", size=48, crop=True)
    assert summary["size"] == 48 and summary["crop"] is True
    for name in ("train", "valid", "test"):
        data = load(tmp_path / "out" / f"{name}.p")
        assert data["features"].shape[1:] == (48, 48, 3)
        assert (data["coords"][:, 2] < data["sizes"][:, 0]).all()  # coords: original ROI


def test_crop_takes_the_roi(tmp_path: Path) -> None:
    folder = tmp_path / "src" / "Final_Training" / "Images" / "00000"
    folder.mkdir(parents=True)
    img = np.zeros((40, 40, 3), dtype=np.uint8)
    img[10:30, 10:30] = 255  # white sign inside a black border
    write_ppm(folder / "00000_00000.ppm", img)
    (folder / "GT-00000.csv").write_text(f"{HEADER}\n00000_00000.ppm;40;40;10;10;29;29;0\n")
    convert_gtsrb(tmp_path / "src", tmp_path / "out", crop=True)
    data = load(tmp_path / "out" / "train.p")
    assert (data["features"] == 255).all()
    np.testing.assert_array_equal(data["coords"], [[10, 10, 29, 29]])


def test_convert_output_loads_with_safe_loader(tree: tuple[Path, dict], tmp_path: Path) -> None:
    convert_gtsrb(tree[0], tmp_path / "out")
    data = safe_pickle.safe_load(tmp_path / "out" / "train.p")
    assert data["features"].dtype == np.uint8


def test_convert_finds_gtsrb_subfolder(tree: tuple[Path, dict], tmp_path: Path) -> None:
    summary = convert_gtsrb(tree[0].parent, tmp_path / "out")  # SRC/GTSRB/Final_Training/...
    assert summary["counts"]["test"] == N_TEST


def test_convert_leaves_no_temp_files(tree: tuple[Path, dict], tmp_path: Path) -> None:
    out = tmp_path / "out"
    convert_gtsrb(tree[0], out)
    convert_gtsrb(tree[0], out)  # overwrites in place
    names = sorted(p.name for p in out.iterdir())
    assert names == ["signnames.csv", "test.p", "train.p", "valid.p"]


# ----------------------------------------------------------------------------- track split


def test_split_is_by_track_and_stratified(tree: tuple[Path, dict], tmp_path: Path) -> None:
    summary = convert_gtsrb(tree[0], tmp_path / "out")
    train, valid = set(summary["train_tracks"]), set(summary["valid_tracks"])
    assert not train & valid
    assert train | valid == {(c, t) for c in range(N_CLASSES) for t in range(N_TRACKS)}
    assert {c for c, _ in valid} == set(range(N_CLASSES))  # every class validated
    assert {c for c, _ in train} == set(range(N_CLASSES))  # ... and still trained
    assert summary["tracks"] == {"train": len(train), "valid": len(valid)}
    assert summary["counts"]["valid"] == len(valid) * N_FRAMES
    # The pixels agree: no image of a valid track's size/ROI signature sits in train.
    tr, va = load(tmp_path / "out" / "train.p"), load(tmp_path / "out" / "valid.p")
    assert not _signatures(tr) & _signatures(va)


def _signatures(d: dict) -> set[tuple[int, ...]]:
    """(label, width, height, roi...) per image: unique per image in the fake tree."""
    rows = zip(d["labels"], d["sizes"], d["coords"])
    return {(int(y), *map(int, s), *map(int, c)) for y, s, c in rows}


def test_split_deterministic_per_seed() -> None:
    tracks = [(c, t) for c in range(10) for t in range(20)]
    a = split_tracks(tracks, 0.2, seed=0)
    assert a == split_tracks(list(reversed(tracks)), 0.2, seed=0)
    assert a != split_tracks(tracks, 0.2, seed=1)
    for c in range(10):
        assert sum(1 for cc, _ in a if cc == c) == 4  # 20% of 20 tracks


def test_split_small_classes() -> None:
    valid = split_tracks([(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)], 0.9, seed=3)
    assert not any(c == 0 for c, _ in valid)  # single track stays in train
    assert sum(c == 1 for c, _ in valid) == 1 and sum(c == 2 for c, _ in valid) == 2


def test_convert_split_seed_changes_tracks(tmp_path: Path) -> None:
    make_tree(tmp_path / "src", test=False)
    seeds = (0, 0, 1, 2, 3)
    src, out = tmp_path / "src", tmp_path / "out"
    runs = [convert_gtsrb(src, out, seed=s)["valid_tracks"] for s in seeds]
    assert runs[0] == runs[1]
    assert any(r != runs[0] for r in runs[2:])


# ----------------------------------------------------------------------------- errors


def test_missing_training_folder_is_user_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError) as info:
        convert_gtsrb(tmp_path / "empty", tmp_path / "out")
    assert not isinstance(info.value, DataError)
    assert str(tmp_path / "empty" / "Final_Training" / "Images") in str(info.value)
    assert not (tmp_path / "out").exists()


def test_corrupt_ppm_is_data_error_naming_file(tree: tuple[Path, dict], tmp_path: Path) -> None:
    bad = tree[0] / "Final_Training" / "Images" / "00001" / "00002_00003.ppm"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(DataError, match="truncated") as info:
        convert_gtsrb(tree[0], tmp_path / "out")
    assert str(bad) in str(info.value)
    assert not (tmp_path / "out").exists()  # nothing written before everything was read


def test_csv_naming_missing_file_is_data_error(tree: tuple[Path, dict], tmp_path: Path) -> None:
    gone = tree[0] / "Final_Training" / "Images" / "00002" / "00001_00000.ppm"
    gone.unlink()
    with pytest.raises(DataError, match="missing") as info:
        convert_gtsrb(tree[0], tmp_path / "out")
    assert str(gone) in str(info.value) and "GT-00002.csv" in str(info.value)


def test_corrupt_csv_is_data_error(tree: tuple[Path, dict], tmp_path: Path) -> None:
    csv_path = tree[0] / "Final_Training" / "Images" / "00000" / "GT-00000.csv"
    csv_path.write_text("Filename,Width,Height\nfoo,1,2\n")
    with pytest.raises(DataError, match="header") as info:
        convert_gtsrb(tree[0], tmp_path / "out")
    assert str(csv_path) in str(info.value)


def test_size_mismatch_with_csv_is_data_error(tree: tuple[Path, dict], tmp_path: Path) -> None:
    img_path = tree[0] / "Final_Training" / "Images" / "00000" / "00000_00000.ppm"
    write_ppm(img_path, np.zeros((70, 70, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="70x70") as info:
        convert_gtsrb(tree[0], tmp_path / "out")
    assert str(img_path) in str(info.value)


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"valid_fraction": 0.0}, {"valid_fraction": 1.0}])
def test_bad_options_are_user_errors(tree: tuple[Path, dict], tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(UserError):
        convert_gtsrb(tree[0], tmp_path / "out", **kwargs)
