"""Assemble the final model as ONE Keras graph: an ensemble, test-time augmentation, a temperature.

One graph saves as one ``.keras`` file and exports as one ONNX / TFLite model, so whatever the
final stage chose runs anywhere exactly as it was scored. The layers are registered in
:mod:`spaces.layers` (``import spaces`` is all loading needs); this module only wires them.
Every combined model keeps the contract: raw 0..255 pixels in, a float32 layer named
``probabilities`` out.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from spaces.layers import TemperatureScaling, Translate

OUTPUT_NAME = "probabilities"
DEFAULT_SHIFTS: tuple[tuple[int, int], ...] = ((0, 0), (2, 0), (-2, 0), (0, 2), (0, -2))


def _input_like(model: keras.Model) -> keras.KerasTensor:
    """A fresh ``keras.Input`` with the model's (single) input shape and dtype."""
    if len(model.inputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(model.inputs)} inputs; a classifier has one")
    spec = model.inputs[0]
    return keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype, name="pixels")


def ensemble(
    models: Sequence[keras.Model], name: str = "ensemble", weights: Sequence[float] | None = None
) -> keras.Model:
    """Average the members' softmax outputs over one shared input, weighted when ``weights`` are given
    (ensemble selection's, summing to 1; members of weight 0 are left out).

    Members are renamed ``member_0``, ``member_1``... in place (two retrained copies of one
    family carry the same name, and a functional model needs unique layer names). One member is
    returned unchanged: wrapping it would only add a layer.
    """
    models = list(models)
    if weights is not None:
        if len(weights) != len(models):
            raise ValueError(f"{len(weights)} weights for {len(models)} members")
        models, weights = [m for m, w in zip(models, weights) if w > 0], [float(w) for w in weights if w > 0]
        if len(set(weights)) <= 1:
            weights = None  # equal weights: the plain average
    if not models:
        raise ValueError("an ensemble needs at least one member")
    if len({id(m) for m in models}) != len(models):
        raise ValueError("the same model object is listed twice; averaging it with itself changes nothing")
    if len(models) == 1:
        return models[0]
    shapes = {tuple(m.inputs[0].shape[1:]) for m in models}
    if len(shapes) != 1:
        raise ValueError(f"members take different input shapes: {sorted(shapes)}")
    inputs = _input_like(models[0])
    outputs = []
    for i, member in enumerate(models):
        member.name = f"member_{i}"
        outputs.append(member(inputs))
    if weights is None:
        average = keras.layers.Average(dtype="float32", name=OUTPUT_NAME)(outputs)
    else:
        scaled = [
            keras.layers.Rescaling(w, dtype="float32", name=f"weight_{i}")(out)
            for i, (out, w) in enumerate(zip(outputs, weights))
        ]
        average = keras.layers.Add(dtype="float32", name=OUTPUT_NAME)(scaled)
    return keras.Model(inputs, average, name=name)


def _shift_name(dy: int, dx: int) -> str:
    def part(v: int) -> str:
        return f"m{-v}" if v < 0 else str(v)

    return f"shift_{part(dy)}_{part(dx)}"


def with_tta(
    model: keras.Model, shifts: Sequence[tuple[int, int]] = DEFAULT_SHIFTS, fill: str = "edge", name: str = "tta"
) -> keras.Model:
    """Average ``model``'s softmax over copies of the input translated by ``(dy, dx)`` pixels.

    Small translations only: flips would swap "keep left" and "keep right", and GTSRB crops are
    loose, so a sign shifted by 2 pixels is still the same sign. Deterministic (no random layer).
    """
    shifts = [(int(dy), int(dx)) for dy, dx in shifts]
    if not shifts:
        raise ValueError("test-time augmentation needs at least one shift")
    if len(set(shifts)) != len(shifts):
        raise ValueError(f"repeated shifts in {shifts}: each would count twice in the average")
    inputs = _input_like(model)
    outputs = []
    for dy, dx in shifts:
        x = inputs if (dy, dx) == (0, 0) else Translate(dy, dx, fill=fill, name=_shift_name(dy, dx))(inputs)
        outputs.append(model(x))
    if len(outputs) == 1:
        out = keras.layers.Activation("linear", dtype="float32", name=OUTPUT_NAME)(outputs[0])
    else:
        out = keras.layers.Average(dtype="float32", name=OUTPUT_NAME)(outputs)
    return keras.Model(inputs, out, name=name)


def with_temperature(model: keras.Model, temperature: float, name: str = "calibrated") -> keras.Model:
    """``model`` followed by temperature scaling of its probabilities (argmax unchanged)."""
    inputs = _input_like(model)
    out = TemperatureScaling(float(temperature), name=OUTPUT_NAME)(model(inputs))
    return keras.Model(inputs, out, name=name)


def assemble(
    members: Sequence[keras.Model],
    *,
    tta: bool = False,
    temperature: float = 1.0,
    shifts: Sequence[tuple[int, int]] = DEFAULT_SHIFTS,
    weights: Sequence[float] | None = None,
) -> keras.Model:
    """The final model a :class:`search.final.choose.Option` describes: ensemble (weighted by
    ``weights``), then TTA, then temperature (skipped at ``T = 1``, where it would only round the
    probabilities)."""
    model = ensemble(members, weights=weights)
    if tta:
        model = with_tta(model, shifts)
    if temperature != 1.0:
        model = with_temperature(model, temperature)
    return model
