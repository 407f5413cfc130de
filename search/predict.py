"""The finished study's model asked about new photos: top-k sign names with their probabilities.

It runs the exported ONNX artifact (``best_model.onnx``) in onnxruntime, so asking starts in about a
second and needs neither TensorFlow nor the model code; the model's input size and dtype come from the
artifact itself and the class names from the test report the final stage wrote beside it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.photos import model_input, read_photo
from .errors import UserError
from .schema import RunFile

BATCH = 64


@dataclass(frozen=True)
class Prediction:
    """One photo's answer: the most likely classes, best first."""

    path: Path
    top: tuple[tuple[int, str, float], ...]  # (class id, name, probability)

    def to_json(self) -> dict:
        return {"path": str(self.path), "top": [{"class_id": c, "name": n, "probability": p} for c, n, p in self.top]}


class Predictor:
    """The run folder's ONNX model, ready to answer."""

    def __init__(self, run_dir: Path) -> None:
        import onnxruntime as ort

        path = run_dir / RunFile.BEST_ONNX
        if not path.is_file():
            raise UserError(
                f"no {RunFile.BEST_ONNX} in {run_dir}: write it with python run_search.py export-model "
                f"--study {run_dir.name} --out {run_dir.parent} --format onnx"
            )
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        first = self.session.get_inputs()[0]
        height, width, self.channels = (int(d) for d in first.shape[1:])
        if height != width:
            raise UserError(f"{path}: the model takes {height}x{width} images; only square inputs are supported")
        self.size, self.input_name = height, first.name
        self.dtype = np.uint8 if first.type == "tensor(uint8)" else np.float32
        self.class_names = _class_names(run_dir)

    def predict(self, paths: Sequence[Path], top_k: int = 3) -> list[Prediction]:
        """Each photo's ``top_k`` classes; an unreadable photo raises ``DataError`` naming it."""
        answers: list[Prediction] = []
        for start in range(0, len(paths), BATCH):
            batch = list(paths[start : start + BATCH])
            pixels = np.stack([model_input(read_photo(p, self.channels), self.size) for p in batch])
            probs = self.session.run(None, {self.input_name: pixels.astype(self.dtype)})[0]
            answers += [Prediction(p, self._top(row, top_k)) for p, row in zip(batch, probs)]
        return answers

    def _top(self, probs: np.ndarray, k: int) -> tuple[tuple[int, str, float], ...]:
        order = np.argsort(-probs, kind="stable")[:k]
        return tuple((int(c), self._name(int(c)), float(probs[c])) for c in order)

    def _name(self, class_id: int) -> str:
        return self.class_names[class_id] if class_id < len(self.class_names) else f"class {class_id}"


def _class_names(run_dir: Path) -> list[str]:
    """The class names the final stage recorded with its test report (none: numbers are shown)."""
    try:
        names = json.loads((run_dir / RunFile.TEST_REPORT).read_text()).get("class_names")
    except (OSError, ValueError):
        return []
    return [str(n) for n in names] if isinstance(names, list) else []
