"""Generated malformed data files: each is loaded or refused with one line naming it, in bounded memory and time.

Hypothesis writes pickles, ``.npz`` files and ``signnames.csv`` files that are wrong in type, shape,
dtype, size, nesting, declared lengths and shapes, truncated or random, and each test asserts for every
case: a valid load or a ``DataError`` whose message is one line naming the file, no other exception,
a traced memory peak (``tracemalloc``, which numpy reports its allocations to) within
``_memory_bound`` and a few seconds at most. Examples are seeded and bounded (``derandomize``), so a
run is repeatable and the module takes about 20 s on two cores.

Each test counts the cases it tried, asserts its minimum and records the count as the user property
``fuzz_cases``; ``tests/conftest.py`` adds them up in a line of pytest's summary (also under xdist).
"""

from __future__ import annotations

import codecs
import io
import math
import os
import pickle
import struct
import tempfile
import time
import tracemalloc
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from search.data import Split, load_split
from search.data.signnames import MAX_CLASSES, read_signnames
from search.errors import DataError

MAX_SECONDS = 3.0
# Cases per test (4,500 in all): about 20 s for the module on two cores.
EXAMPLES = {
    "pickled-dict": 600,
    "opcode-stream": 1000,
    "pickle-bytes": 800,
    "npz-array": 400,
    "npz-member": 500,
    "npz-bytes": 600,
    "signnames": 600,
}


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,  # time: _check
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def _memory_bound(size: int) -> int:
    """Peak bytes allowed to load a file of ``size`` bytes: a small multiple of it plus a constant
    (loading converts float and integer pixels, a few copies of the array at most)."""
    return 8 * size + (16 << 20)


def _check(path: Path, load: Callable[[Path], object]) -> object:
    """Run ``load(path)``; a DataError must be one line naming ``path``. Memory and time are bounded."""
    size = path.stat().st_size
    tracemalloc.start()  # only around the load: tracing Hypothesis' own work would triple the run time
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    try:
        result: object = load(path)
    except DataError as exc:
        result = exc
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] - before
        tracemalloc.stop()
    if isinstance(result, DataError):
        message = str(result)
        assert result.path == path and message.startswith(f"{path}: ") and "\n" not in message, message
        assert len(message) < 400 + len(str(path)), message
    assert peak <= _memory_bound(size), f"{peak:,} bytes traced for a {size:,}-byte file"
    assert seconds < MAX_SECONDS, f"{seconds:.1f}s"
    return result


def _check_split(path: Path) -> None:
    split = _check(path, load_split)
    if isinstance(split, Split):
        assert split.features.dtype == np.uint8 and split.features.ndim == 4 and split.labels.dtype == np.int32
        assert split.labels.shape == (len(split.features),) and min(split.features.shape[1:3]) >= 8
        assert split.labels.min() >= 0 and split.labels.max() < MAX_CLASSES


def _fuzz(
    tmp_path: Path,
    record_property: Callable[[str, object], None],
    what: str,
    strategy: st.SearchStrategy,
    write: Callable[[Path, object], Path],
    load: Callable[[Path], None],
) -> None:
    """Run ``load`` on ``EXAMPLES[what]`` files that ``write`` makes from ``strategy``; count and report them.
    Hypothesis runs exactly that many unless it stops early, which the minimum (90%) would catch."""
    examples = EXAMPLES[what]
    minimum = examples * 9 // 10
    tried = 0

    @_settings(examples)
    @given(case=strategy)
    def run(case: object) -> None:
        nonlocal tried
        tried += 1
        load(write(tmp_path, case))

    run()
    record_property("fuzz_cases", tried)
    assert tried >= minimum, f"{tried} generated {what} cases tried, fewer than {minimum}"


def _usually(draw: st.DrawFn) -> bool:
    """True 5 times in 6 (``st.integers`` leans to its bounds, so it would be False far more often)."""
    return draw(st.sampled_from([True] * 5 + [False]))


def _write_bytes(name: str) -> Callable[[Path, bytes], Path]:
    def write(folder: Path, data: bytes) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return write


# --- pickles ----------------------------------------------------------------------------------------


class _Call:
    """Pickles as ``func(*args)`` and then ``BUILD`` with ``state``, whatever func and args are."""

    def __init__(self, func: Callable, args: tuple, state: object = None) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


MARKER = Path(tempfile.gettempdir()) / "gtsrb-search-fuzz-pwned"  # os.system would create it
_FUNCS = [
    np.ndarray((0,), np.uint8).__reduce__()[0],
    np.uint8(0).__reduce__()[0],
    np.zeros(1).__reduce_ex__(5)[0],
    np.dtype,
    np.ndarray,
    bytearray,
    bytes,
    codecs.encode,
    OrderedDict,
    os.system,
    np.frombuffer,
    np.bool_,
    list,
    dict,
]
_DTYPES = [np.dtype(code) for code in ("u1", "i4", "i8", "f4", "f8", "b1", "O", "V8", "U3", ">i2")] + [
    np.dtype([("a", "u1")]),
    np.dtype(("u1", (2, 2))),
]
_SIZES = st.sampled_from([0, 1, 2, 3, 8, 32, 86, 10**6, 2**31, 10**12, -1])
_SHAPES = st.lists(_SIZES, max_size=5).map(tuple)
_ATOMS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    _SIZES,
    st.floats(allow_nan=True),
    st.binary(max_size=40),
    st.text(max_size=10),
    st.sampled_from(_DTYPES),
    _SHAPES,
    st.sampled_from(["u1", "O8", "V8", "latin1", "hex", "C", "F", "K", b"b", "<", "|"]),
)

_RECONSTRUCT, _SCALAR, _FROMBUFFER = _FUNCS[:3]
_BIG_SHAPES = st.lists(st.sampled_from([0, 1, 2, 3, 8, 10**5, 2**31, 10**12]), max_size=4).map(tuple)
_DATA = st.one_of(
    st.binary(max_size=64),
    st.binary(max_size=64).map(bytearray),
    st.text(max_size=16),
    st.lists(st.integers(0, 3), max_size=4),
    st.none(),
)
_CODES = st.sampled_from(["u1", "i4", "f8", "b1", "O8", "V8", "U3", "S5", "M8", "u1x", "S999999999", 5])
# (version, byte order, subarray, names, fields, itemsize, alignment, flags): plain, or with a subarray
# of any shape, fields, odd sizes and flags
_DTYPE_STATES = st.just((3, "|", None, None, None, -1, -1, 0)) | st.tuples(
    st.sampled_from([3, 4]),
    st.sampled_from(["<", ">", "|", "x"]),
    st.none() | st.tuples(st.sampled_from(_DTYPES), _BIG_SHAPES),
    st.none() | st.just(("x",)),
    st.none() | st.just({"x": (np.dtype("u1"), 0)}),
    st.sampled_from([-1, 1, 8, 10**9]),
    st.sampled_from([-1, 1]),
    st.sampled_from([0, 16, 63]),
)
_ENCODINGS = st.sampled_from(["latin1", "hex", "base64", "rot13", "utf-16", "zlib"])


def _data_for(draw: st.DrawFn, shape: tuple[int, ...], dtype: np.dtype) -> object:
    """Exactly the bytes ``shape`` needs (when few), so that a call passes the size check; else anything."""
    needed = math.prod(shape) * dtype.itemsize
    return bytes(needed) if needed <= 4096 and draw(st.booleans()) else draw(_DATA)


@st.composite
def _rebuilder_calls(draw: st.DrawFn) -> _Call:
    """A well-formed call of one of numpy's rebuilders, or of bytes, bytearray, ndarray or a codec, with
    hostile values: huge shapes, object and structured dtypes, short data, dtype states with fields."""
    kind = draw(st.sampled_from(["reconstruct", "frombuffer", "scalar", "dtype", "codec", "sized", "ndarray"]))
    dtype = draw(st.sampled_from(_DTYPES))
    shape = draw(_BIG_SHAPES)
    if kind == "reconstruct":
        state = (draw(st.sampled_from([1, 1, 0, 2])), shape, dtype, draw(st.booleans()), _data_for(draw, shape, dtype))
        return _Call(_RECONSTRUCT, (np.ndarray, draw(st.just((0,)) | _BIG_SHAPES), b"b"), state=state)
    if kind == "frombuffer":
        order = draw(st.sampled_from(["C", "F", "K", "Z"]))
        return _Call(_FROMBUFFER, (_data_for(draw, shape, dtype), dtype, shape, order))
    if kind == "scalar":
        return _Call(_SCALAR, (dtype, _data_for(draw, (), dtype)))
    if kind == "dtype":
        return _Call(np.dtype, (draw(_CODES), draw(st.booleans()), draw(st.booleans())), state=draw(_DTYPE_STATES))
    if kind == "codec":
        value: object = draw(st.text(max_size=8) | st.binary(max_size=8))
        for _ in range(draw(st.sampled_from([1, 2, 5, 30]))):
            value = _Call(codecs.encode, (value, draw(_ENCODINGS)))
        return value
    if kind == "sized":
        return _Call(draw(st.sampled_from([bytearray, bytes])), (draw(st.sampled_from([5, -1, 2**31, 10**12])),))
    return _Call(np.ndarray, (shape, dtype))


def _calls(children: st.SearchStrategy) -> st.SearchStrategy:
    """A call of a numpy rebuilder (or of something that must never be called) with arbitrary arguments."""
    args = st.lists(children, max_size=5).map(tuple)
    return st.builds(_Call, st.sampled_from(_FUNCS), args, st.none() | st.lists(children, max_size=9).map(tuple))


_PWN = _Call(os.system, (f"touch {MARKER}",))
_VALUES = st.recursive(
    _ATOMS | st.just(_PWN) | _rebuilder_calls(),
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
        st.dictionaries(
            st.text(max_size=8) | st.integers() | st.sampled_from(["features", "labels"]), children, max_size=4
        ),
        _calls(children),
    ),
    max_leaves=30,
)


@st.composite
def _shared_nest(draw: st.DrawFn, kind: str | None = None) -> object:
    """One list/tuple/dict referenced many times at each level: small pickled, huge if walked."""
    node: object = draw(_ATOMS)
    kinds = st.sampled_from(["list", "tuple", "dict"])
    same = kind or (draw(kinds) if draw(st.booleans()) else None)
    for _ in range(draw(st.sampled_from([1, 2, 4, 8, 12]))):
        width = draw(st.sampled_from([1, 2, 10, 40]))
        level = same or draw(kinds)
        node = (
            [node] * width
            if level == "list"
            else (node,) * width
            if level == "tuple"
            else {str(i): node for i in range(width)}
        )
    return node


_PIXEL_DTYPES = st.sampled_from(
    [np.uint8, np.int16, np.int64, np.float32, np.float64, np.bool_, np.complex64, np.dtype("U2"), np.dtype(">f4")]
)
_ARRAYS = hnp.arrays(_PIXEL_DTYPES, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=8))


def _near_valid_features(n: int | None = None) -> st.SearchStrategy:
    """Images of about the right shape: sizes and channels around the limits, pixels of any dtype."""
    shapes = st.tuples(
        st.integers(0, 6) if n is None else st.just(n),
        st.sampled_from([0, 1, 7, 8, 9]),
        st.sampled_from([0, 7, 8, 16]),
        st.sampled_from([0, 1, 2, 3, 4]),
    )
    return hnp.arrays(_PIXEL_DTYPES, shapes)


_LABEL_ARRAYS = hnp.arrays(
    st.sampled_from([np.uint8, np.int32, np.int64, np.uint64, np.float32, np.bool_]),
    hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=8),
)
_LABELS = st.one_of(
    _LABEL_ARRAYS,
    st.lists(st.integers(-5, 2 * MAX_CLASSES) | st.booleans() | st.none(), max_size=8),
    _shared_nest(),
    _shared_nest("list"),
    _VALUES,
)


@st.composite
def _near_valid_pair(draw: st.DrawFn) -> dict:
    """Features and labels of one length: often a valid split, else wrong in one detail."""
    n = draw(st.integers(1, 6))
    features = draw(_near_valid_features(n) | hnp.arrays(np.uint8, st.just((n, 8, 8, 3))))
    ids = st.integers(0, 50) | st.sampled_from([-1, MAX_CLASSES - 1, MAX_CLASSES, 2**40])
    labels = draw(st.lists(ids, min_size=n, max_size=n))
    kind = draw(st.sampled_from(["list", "uint8", "int32", "int64"]))
    return {"features": features, "labels": labels if kind == "list" else np.array(labels, np.int64).astype(kind)}


@st.composite
def _data_dicts(draw: st.DrawFn) -> bytes:
    """Dicts close to a data file: features and labels of every type, shape and dtype, odd keys."""
    hostile = draw(st.sampled_from(["none", "features", "labels", "both"]))
    payload: dict = draw(_near_valid_pair())
    if hostile in ("features", "both"):
        payload["features"] = draw(
            st.one_of(_near_valid_features(), _ARRAYS, _shared_nest(), _rebuilder_calls(), _VALUES)
        )
    if hostile in ("labels", "both"):  # checked only after valid features, so mostly with them
        payload["labels"] = draw(_LABELS | _rebuilder_calls())
    for key in ("features", "labels"):
        if not _usually(draw):
            del payload[key]
    keys = st.text(max_size=30) | st.integers() | st.binary(max_size=8)
    payload.update(draw(st.dictionaries(keys, _VALUES | _rebuilder_calls(), max_size=3)))
    protocol = draw(st.integers(0, pickle.HIGHEST_PROTOCOL))
    long_key = draw(st.sampled_from(["none", "int", "str", "bytes"]))  # made here: Hypothesis cannot print them
    if long_key != "none":  # str() refuses ints of over 4,300 digits, and so does protocol 0-1's text LONG
        huge = 10**5000 if protocol >= 2 else 10**4000
        payload[{"int": huge, "str": "k\n" * 50_000, "bytes": b"\xff" * 100_000}[long_key]] = 1
    top = payload if _usually(draw) else draw(_VALUES | _shared_nest())
    return pickle.dumps(top, protocol=protocol)


def _short(code: bytes, length: st.SearchStrategy, size: int, fmt: str) -> st.SearchStrategy:
    """An opcode with a declared length (often far beyond the file) and a little data."""
    return st.builds(
        lambda n, data: code + struct.pack(fmt, n % 2 ** (8 * size)) + data, length, st.binary(max_size=12)
    )


_LENGTHS = st.sampled_from([0, 1, 2, 8, 255, 2**16, 2**31 - 1, 2**32 - 1, 2**62, 2**64 - 1])
_NAMES = [
    b"features",
    b"labels",
    b"numpy",
    b"dtype",
    b"ndarray",
    b"u1",
    b"O8",
    b"V8",
    b"<",
    b"|",
    b"builtins",
    b"bytearray",
    b"_codecs",
    b"encode",
    b"latin1",
    b"hex",
    b"numpy._core.multiarray",
    b"_reconstruct",
    b"scalar",
    b"numpy._core.numeric",
    b"_frombuffer",
    b"collections",
    b"OrderedDict",
    b"os",
    b"system",
    b"C",
    b"b",
    b"numpy.core.multiarray",
    b"__builtin__",
    b"bytes",
]
_GLOBALS = [
    b"numpy\nndarray",
    b"numpy\ndtype",
    b"numpy.core.multiarray\n_reconstruct",
    b"numpy._core.numeric\n_frombuffer",
    b"builtins\nbytearray",
    b"__builtin__\nbytes",
    b"_codecs\nencode",
    b"os\nsystem",
    b"numpy._core.multiarray\nscalar",
    b"collections\nOrderedDict",
    b"copyreg\n_reconstructor",
]
_OPCODE = st.one_of(
    st.sampled_from(
        [
            bytes([c])
            for c in b"NK\x88\x89]})(ldt\x85\x86\x87aesuRb\x93012\x94.\x8f\x90\x91\x81\x92\x97\x98PQ\x82\x83\x84"
        ]
    ),
    st.builds(lambda n: b"K" + bytes([n]), st.integers(0, 255)),
    st.builds(lambda n: b"J" + struct.pack("<i", n), st.integers(-(2**31), 2**31 - 1)),
    st.builds(lambda s: b"\x8c" + bytes([len(s)]) + s, st.sampled_from(_NAMES)),
    st.builds(lambda s: b"C" + bytes([len(s)]) + s, st.binary(max_size=24)),
    st.builds(lambda n: b"h" + bytes([n]), st.integers(0, 20)),
    st.builds(lambda n: b"q" + bytes([n]), st.integers(0, 20)),
    st.builds(lambda n: b"r" + struct.pack("<I", n), st.sampled_from([0, 3, 2**20, 2**31, 2**32 - 1])),
    st.builds(lambda n: b"j" + struct.pack("<I", n), st.sampled_from([0, 3, 2**32 - 1])),
    st.builds(lambda g: b"c" + g + b"\n", st.sampled_from(_GLOBALS)),
    st.builds(lambda d: b"I" + d + b"\n", st.sampled_from([b"0", b"01", b"-7", b"9" * 80, b"x"])),
    st.builds(lambda d: b"L" + d + b"L\n", st.sampled_from([b"0", b"123", b"9" * 5000])),
    _short(b"B", _LENGTHS, 4, "<I"),
    _short(b"X", _LENGTHS, 4, "<I"),
    _short(b"\x8e", _LENGTHS, 8, "<Q"),
    _short(b"\x96", _LENGTHS, 8, "<Q"),
    _short(b"\x8d", _LENGTHS, 8, "<Q"),
    _short(b"\x8b", _LENGTHS, 4, "<I"),
    _short(b"\x95", _LENGTHS, 8, "<Q"),
)


@st.composite
def _opcode_streams(draw: st.DrawFn) -> bytes:
    """Random opcode sequences: containers, memo, globals and calls in any order, huge declared lengths."""
    body = b"".join(draw(st.lists(_OPCODE, max_size=80)))
    protocol = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 5, 4, 6]))  # 6 does not exist
    return b"\x80" + bytes([protocol]) + body + draw(st.sampled_from([b".", b""]))


def _valid_pickle(protocol: int) -> bytes:
    rng = np.random.default_rng(protocol)
    return pickle.dumps(
        {"features": rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8), "labels": np.arange(3, dtype=np.int64)},
        protocol=protocol,
    )


@st.composite
def _mutations(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` truncated, with bytes changed, inserted or deleted, or with 4 and 8-byte runs set huge."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "huge4", "huge8"]))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind in ("huge4", "huge8"):
            width = 4 if kind == "huge4" else 8
            data[at : at + width] = draw(st.sampled_from([b"\xff", b"\x7f", b"\x40"])) * width
    return bytes(data)


_PICKLE_BYTES = st.one_of(
    st.integers(0, pickle.HIGHEST_PROTOCOL).flatmap(lambda p: _mutations(_valid_pickle(p))),
    st.binary(max_size=400),
    st.binary(max_size=400).map(lambda b: b"\x80\x04" + b),
)


def test_fuzz_pickled_data_dicts(tmp_path: Path, record_property: Callable) -> None:
    """Pickled dicts of arrays, lists, shared nests and calls; nothing in them may run."""
    MARKER.unlink(missing_ok=True)
    _fuzz(tmp_path, record_property, "pickled-dict", _data_dicts(), _write_bytes("train.p"), _check_split)
    assert not MARKER.exists()


def test_fuzz_pickle_opcode_streams(tmp_path: Path, record_property: Callable) -> None:
    _fuzz(tmp_path, record_property, "opcode-stream", _opcode_streams(), _write_bytes("train.p"), _check_split)


def test_fuzz_pickle_bytes(tmp_path: Path, record_property: Callable) -> None:
    """Valid pickles (every protocol) truncated and altered, and random bytes."""
    _fuzz(tmp_path, record_property, "pickle-bytes", _PICKLE_BYTES, _write_bytes("train.p"), _check_split)


# --- .npz -------------------------------------------------------------------------------------------


def _npy_header(shape: tuple[int, ...], descr: object, fortran: bool, version: int) -> bytes:
    out = io.BytesIO()
    header = {"descr": descr, "fortran_order": fortran, "shape": shape}
    (np.lib.format.write_array_header_1_0 if version == 1 else np.lib.format.write_array_header_2_0)(out, header)
    return out.getvalue()


_DESCRS = ["|u1", "<i4", "<f4", "<f8", "|b1", "|O", "|V8", "<U3", ">i8", "<c8", [("a", "<i4")], "(1000000,)u1"]


@st.composite
def _npy_member(draw: st.DrawFn) -> bytes:
    """An .npy member whose header may declare any shape and dtype, with data of any length; its
    header may also be garbled."""
    shape = draw(st.lists(st.sampled_from([0, 1, 2, 3, 8, 32, 10**6, 2**31, 10**12]), max_size=5).map(tuple))
    descr = draw(st.sampled_from(_DESCRS))
    header = _npy_header(shape, descr, draw(st.booleans()), draw(st.sampled_from([1, 2])))
    if not _usually(draw):
        header = draw(_mutations(header))
    needed = math.prod(shape) * np.dtype(descr).itemsize
    exact = needed <= 4096 and draw(st.booleans())
    return header + (bytes(needed) if exact else draw(st.binary(max_size=256)))


def _npy_of(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=True)
    return out.getvalue()


@st.composite
def _npz_archives(draw: st.DrawFn) -> bytes:
    """Zip files of .npy members: forged headers, real arrays of any dtype (object ones too), odd names."""
    out = io.BytesIO()
    compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name in draw(
            st.lists(
                st.sampled_from(["features.npy", "labels.npy", "x.npy", "features", "a/b.npy"]), max_size=4, unique=True
            )
        ):
            kind = draw(st.sampled_from(["forged", "array", "near", "object", "raw"]))
            if kind == "forged":
                data = draw(_npy_member())
            elif kind == "array":
                data = _npy_of(draw(_ARRAYS | _LABEL_ARRAYS))
            elif kind == "near":
                data = _npy_of(draw(_near_valid_features()))
            elif kind == "object":
                data = _npy_of(np.array([1, "x", None], dtype=object))
            else:
                data = draw(st.binary(max_size=200))
            archive.writestr(name, data)
    return out.getvalue()


def _patched_sizes(data: bytes, values: list[int]) -> bytes:
    """Set the size fields of the zip's central directory entries (compressed at +20, uncompressed at +24)."""
    out = bytearray(data)
    start, index = 0, 0
    while (start := out.find(b"PK\x01\x02", start)) >= 0 and index < len(values):
        offset = 20 + 4 * (index % 2)
        out[start + offset : start + offset + 4] = (values[index] % 2**32).to_bytes(4, "little")
        start, index = start + 4, index + 1
    return bytes(out)


def _valid_npz(compressed: bool) -> bytes:
    out = io.BytesIO()
    rng = np.random.default_rng(1)
    (np.savez_compressed if compressed else np.savez)(
        out, features=rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8), labels=np.arange(3)
    )
    return out.getvalue()


_NPZ_BYTES = st.one_of(
    st.booleans().flatmap(lambda c: _mutations(_valid_npz(c))),
    st.builds(
        _patched_sizes,
        st.booleans().map(_valid_npz),
        st.lists(st.sampled_from([0, 1, 100, 4096, 2**20, 2**31, 2**32 - 1]), min_size=1, max_size=4),
    ),
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: b"PK\x03\x04" + b),
)


def _write_npz(folder: Path, arrays: dict) -> Path:
    path = folder / "train.npz"
    save = np.savez_compressed if arrays["_compressed"] else np.savez
    save(path, **{name: array for name, array in arrays.items() if name != "_compressed"})
    return path


@st.composite
def _npz_arrays(draw: st.DrawFn) -> dict:
    """Real ``np.savez`` files of arrays of every dtype and shape under the expected names; now and then
    a constant one, compressed (a zip bomb: 1 kB per MB)."""
    if draw(st.sampled_from([False] * 9 + [True])):
        n = draw(st.sampled_from([100, 2000]))
        return {
            "_compressed": True,
            "features": np.full((n, 64, 64, 3), draw(st.integers(0, 255)), np.uint8),
            "labels": np.zeros(n, np.uint8),
        }
    arrays: dict = {"_compressed": draw(st.booleans())}
    pair = draw(_near_valid_pair())
    pair["labels"] = np.asarray(pair["labels"])
    if _usually(draw):
        arrays["features"] = pair["features"] if draw(st.booleans()) else draw(_near_valid_features() | _ARRAYS)
    if _usually(draw):
        arrays["labels"] = pair["labels"] if draw(st.booleans()) else draw(_LABEL_ARRAYS)
    return arrays


def test_fuzz_npz_arrays(tmp_path: Path, record_property: Callable) -> None:
    _fuzz(tmp_path, record_property, "npz-array", _npz_arrays(), _write_npz, _check_split)


def test_fuzz_npz_members(tmp_path: Path, record_property: Callable) -> None:
    """Hand-made archives: headers declaring huge or wrong shapes and dtypes, object arrays, raw members."""
    _fuzz(tmp_path, record_property, "npz-member", _npz_archives(), _write_bytes("train.npz"), _check_split)


def test_fuzz_npz_bytes(tmp_path: Path, record_property: Callable) -> None:
    """Valid archives truncated and altered, with forged directory sizes, and random bytes."""
    _fuzz(tmp_path, record_property, "npz-bytes", _NPZ_BYTES, _write_bytes("train.npz"), _check_split)


# --- signnames.csv ----------------------------------------------------------------------------------

_CELLS = st.one_of(
    st.integers(-3, MAX_CLASSES + 3).map(str),
    st.sampled_from(["", "x", "1.5", " 2", "9" * 4000, "9" * 5000]),
    st.text(alphabet=',"\n\r x0\x00é', max_size=12),
    st.sampled_from([131_071, 131_073, 300_000]).map(lambda n: "y" * n),
)


@st.composite
def _signnames(draw: st.DrawFn) -> str:
    """Headers right or wrong, rows of any ids and names (gaps, duplicates, quotes, NULs, long fields),
    or random text."""
    if not _usually(draw):
        return draw(st.text(alphabet=',"\n\r 0123456789abcClassIdSignName\x00', max_size=300))
    header = draw(
        st.sampled_from(
            ["ClassId,SignName"] * 12 + ["SignName,ClassId", "ClassId", "Id,Name", "ClassId,SignName,x", ""]
        )
    )
    if draw(st.booleans()):
        rows = [f"{i},name {i}" for i in range(draw(st.integers(0, 50)))]
        rows[0:0] = draw(st.lists(st.lists(_CELLS, max_size=3).map(",".join), max_size=3))
    else:
        rows = draw(st.lists(st.lists(_CELLS, max_size=4).map(",".join), max_size=12))
    return "\n".join([header, *rows]) + draw(st.sampled_from(["", "\n", "\r\n"]))


def _write_text(folder: Path, text: str) -> Path:
    path = folder / "signnames.csv"
    path.write_text(text, encoding="utf-8", newline="")
    return path


def _check_signnames(path: Path) -> None:
    names = _check(path, read_signnames)
    if isinstance(names, list):
        assert 0 < len(names) <= MAX_CLASSES and all(isinstance(name, str) for name in names)


def test_fuzz_signnames(tmp_path: Path, record_property: Callable) -> None:
    _fuzz(tmp_path, record_property, "signnames", _signnames(), _write_text, _check_signnames)
