"""``predict``: the study's exported ONNX model on new photos, without TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAMES = [f"sign {i}" for i in range(43)]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_search.py"), *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


@pytest.fixture(scope="module")
def study(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory):  # -> (out, Keras model, photos folder)
    """A run folder with an exported ONNX model and a test report, and a folder of photos in three formats."""
    import keras
    from PIL import Image

    import spaces
    from search.data import load_split
    from search.final.export import export_model

    out = tmp_path_factory.mktemp("predict")
    run_dir = out / "mine"
    run_dir.mkdir()
    keras.utils.set_random_seed(0)
    model = spaces.get_space("lenet").build(spaces.ValuesHyperParameters(), (32, 32, 3), 43)
    export_model(model, run_dir, ["onnx"])
    (run_dir / "test_report.json").write_text(json.dumps({"class_names": NAMES}))
    photos = out / "photos"
    photos.mkdir()
    images = load_split(tiny_data / "test.p").features[:3]
    Image.fromarray(images[0]).resize((57, 41)).save(photos / "a.png")  # another size: resized like training data
    Image.fromarray(images[1]).save(photos / "b.jpg", quality=95)
    Image.fromarray(images[2]).save(photos / "c.ppm")
    return out, model, photos


def test_each_photo_gets_its_top_classes_as_the_keras_model_scores_them(study) -> None:
    from search.data.photos import model_input, read_photo

    out, model, photos = study
    done = _run("predict", "--study", "mine", "--out", str(out), str(photos), "--top-k", "4", "--format", "json")
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert [Path(a["path"]).name for a in answers] == ["a.png", "b.jpg", "c.ppm"]
    for answer in answers:
        path = Path(answer["path"])
        probs = model.predict(model_input(read_photo(path), 32)[None].astype("float32"), verbose=0)[0]
        top = answer["top"]
        # the model's own four highest probabilities, best first (classes compared through their
        # probabilities: two classes within float noise of each other may come in either order)
        assert [t["probability"] for t in top] == pytest.approx(sorted(probs, reverse=True)[:4], abs=1e-4)
        for t in top:
            assert t["probability"] == pytest.approx(float(probs[t["class_id"]]), abs=1e-4)
            assert t["name"] == NAMES[t["class_id"]]


def test_table_and_csv_name_the_photo_and_the_sign(study) -> None:
    out, _, photos = study
    table = _run("predict", "--study", "mine", "--out", str(out), str(photos / "b.jpg"), "--top-k", "2")
    assert table.returncode == 0, table.stderr
    [line] = table.stdout.splitlines()
    assert line.startswith(f"{photos / 'b.jpg'}: sign ") and line.count("%") == 2
    rows = _run("predict", "--study", "mine", "--out", str(out), str(photos / "a.png"), "--format", "csv")
    assert rows.returncode == 0, rows.stderr
    lines = rows.stdout.splitlines()
    assert lines[0] == "path,rank,class_id,name,probability" and [r.split(",")[1] for r in lines[1:]] == ["1", "2", "3"]


PREDICT_ALONE = """
import sys
from cli.main import main
code = main(["predict", "--study", "mine", "--out", sys.argv[1], sys.argv[2]])
print(code, "tensorflow" in sys.modules, "keras" in sys.modules)
"""


def test_predict_starts_without_tensorflow(study) -> None:
    out, _, photos = study
    done = subprocess.run(
        [sys.executable, "-c", PREDICT_ALONE, str(out), str(photos / "a.png")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 False False"


def test_what_cannot_be_answered_is_one_line(study, tmp_path: Path) -> None:
    out, _, photos = study
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    for args, message in (
        (["--study", "other", str(photos)], "no best_model.onnx in"),
        (["--study", "mine", str(bad)], f"{bad}: not a readable image"),
        (["--study", "mine", str(tmp_path / "missing.jpg")], "no such file or folder"),
        (["--study", "mine", str(tmp_path / "empty")], "no such file or folder"),
    ):
        done = _run("predict", "--out", str(out), *args)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
