"""Load the tutorial's pickles without letting them run code or claim unbounded memory or time.

A pickle names the callables that rebuild its objects, and ``pickle.load`` calls them: a file with a
``__reduce__`` returning ``(os.system, ("...",))`` runs a shell command on load. Even harmless
callables can be abused: ``bytearray(1_500_000_000)`` is a 35-byte pickle, numpy's
``_reconstruct`` allocates whatever shape it is given, and ``ndarray.__setstate__`` with an object
dtype and a short list crashes the interpreter. The data files of this tool only ever hold dicts,
lists and numpy arrays, so this unpickler runs every opcode itself and admits only what numpy's own
pickles do (numpy 1.x and 2.x, protocols 0-5):

* globals: the few numpy functions that rebuild arrays, scalars and dtypes, each replaced by a
  wrapper that checks its arguments (shapes against data sizes, dtypes that are plain numbers) before
  numpy sees them; ``numpy.ndarray`` only as ``_reconstruct``'s argument; ``_codecs.encode`` only as
  latin-1 (how protocols 0-2 store bytes); ``bytes()`` only empty; no ``bytearray``.
* ``BUILD`` only on arrays and dtypes, with the exact state numpy writes for plain-number dtypes.
* ``APPEND`` only to lists, ``SETITEM`` only to dicts with str, bytes or int keys, so nothing is
  hashed or converted recursively while loading (a nested, shared structure stays a small graph).
* at most ``MAX_PICKLE_OPS`` opcodes, ``MAX_PICKLE_CONTAINERS`` containers and marks, and
  ``MAX_PICKLE_MEMO`` memo entries; a declared length is read only when the file holds that many
  bytes.

So memory stays within a few times the file's size (twice for real files: the bytes read and the
array's data) plus a constant set by those limits (about 100 MB at worst), and time within a few
seconds. It uses the pure-Python ``pickle._Unpickler``: the C
unpickler cannot be checked opcode by opcode, and it sizes its memo by the file's indices (a 9-byte
pickle makes it fill 512 MB, larger indices ask for more). For real files (a few dozen opcodes
around one large bytes object) both are equally fast.
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
import re
import types
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

# A real data file needs a few dozen opcodes, plus one per label when labels are a list (see
# loading.MAX_LABELS_IN_LIST); each opcode costs at most about 60 bytes of memory.
MAX_PICKLE_OPS = 1_100_000
# Lists, dicts, tuples and marks (an unfinished list on the unpickler's stack): a numpy array needs
# about ten; each costs up to a few hundred bytes.
MAX_PICKLE_CONTAINERS = 100_000
MAX_PICKLE_MEMO = 100_000
MAX_NDIM = 32
# Text opcodes (protocols 0-1) hold numbers as decimal lines; a real one has at most 20 digits.
_MAX_NUMBER_LINE = 64

# The real numpy callables, taken from objects so that numpy 1.x and 2.x module paths both work.
_RECONSTRUCT = np.ndarray((0,), np.uint8).__reduce__()[0]
_SCALAR = np.uint8(0).__reduce__()[0]
_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]

# The dtype codes numpy's dtype pickles give (kind and size, ``'u1'``, ``'f4'``; the byte order comes
# with BUILD): bool, integers, floats, complex, and fixed-size bytes/str (which the loader then
# refuses with a clear message). Void (structured), object and datetime dtypes are refused.
_DTYPE_CODE = re.compile(r"[biufc]\d{1,2}|[SU]\d{1,9}")
_BYTE_ORDERS = ("<", ">", "|", "=")


class PickleRefused(pickle.UnpicklingError):
    """The pickle asks for something a data file never needs (a global, an opcode, a call)."""


class PickleTooLarge(pickle.UnpicklingError):
    """The pickle needs more opcodes, containers or memo entries than a data file can."""


def _is_flag(value: object) -> bool:
    return type(value) in (bool, int) and value in (0, 1)


def _check_shape(shape: object) -> tuple[int, ...]:
    if type(shape) is not tuple or len(shape) > MAX_NDIM or not all(type(n) is int and n >= 0 for n in shape):
        raise PickleRefused("an array shape that is not a short tuple of non-negative ints")
    return shape


def _check_dtype(dtype: object) -> np.dtype:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or dtype.names is not None or dtype.subdtype is not None:
        raise PickleRefused("a dtype that is not a plain number type")
    return dtype


def _check_size(shape: tuple[int, ...], dtype: np.dtype, data: object) -> None:
    """Arrays take their bytes from the file: the declared shape must match what is there."""
    if type(data) not in (bytes, bytearray, str):
        raise PickleRefused(f"array data of type {type(data).__name__}")
    if math.prod(shape) * dtype.itemsize != len(data):
        raise PickleRefused(f"array shape {shape} of {dtype} does not match its {len(data):,} bytes of data")


def _reconstruct(cls: object, shape: object, typecode: object) -> np.ndarray:
    """numpy's pickles start every array as ``_reconstruct(ndarray, (0,), b'b')``; any other
    shape would allocate it here, before ``BUILD`` brings the data."""
    if cls is not np.ndarray or _check_shape(shape) != (0,) or type(typecode) not in (bytes, str):
        raise PickleRefused("_reconstruct with arguments numpy never writes")
    return _RECONSTRUCT(np.ndarray, (0,), b"b")


def _scalar(dtype: object, data: object) -> Any:
    _check_size((), _check_dtype(dtype), data)
    return _SCALAR(dtype, data)


def _frombuffer(buf: object, dtype: object, shape: object, order: object, axis_order: object = None) -> np.ndarray:
    """Protocol 5's array reconstructor (numpy>=1.16): a view of bytes already read from the file."""
    shape = _check_shape(shape)
    _check_size(shape, _check_dtype(dtype), buf)
    if type(buf) is str or type(order) is not str or order not in ("C", "F", "K"):
        raise PickleRefused("_frombuffer with arguments numpy never writes")
    if axis_order is not None and (
        type(axis_order) is not tuple
        or not all(type(a) is int for a in axis_order)
        or sorted(axis_order) != list(range(len(shape)))
    ):
        raise PickleRefused("_frombuffer with an axis order that is not a permutation")
    return (
        _FROMBUFFER(buf, dtype, shape, order, axis_order)
        if axis_order is not None
        else _FROMBUFFER(buf, dtype, shape, order)
    )


def _dtype(code: object, align: object = False, copy: object = True) -> np.dtype:
    """A fresh dtype (never numpy's shared one: ``BUILD`` sets its state next)."""
    if type(code) is not str or not _DTYPE_CODE.fullmatch(code) or not _is_flag(align) or not _is_flag(copy):
        shown = repr(code[:40]) if type(code) is str else f"from a {type(code).__name__}"
        raise PickleRefused(f"dtype {shown} (only plain number dtypes are rebuilt)")
    return np.dtype(code, False, True)


def _latin1_encode(text: object, encoding: object = "utf-8", errors: object = "strict") -> bytes:
    """Protocols 0-2 store bytes as ``_codecs.encode(str, 'latin1')``; other codecs (``hex``,
    ``base64``...) grow their input and could be chained into an exponential blow-up."""
    if type(text) is not str or type(encoding) is not str or encoding not in ("latin1", "latin-1"):
        raise PickleRefused("_codecs.encode other than str to latin1")
    return text.encode("latin-1")


def _empty_bytes(*args: object) -> bytes:
    """Protocols 0-2 store ``b''`` as ``bytes()``; ``bytes(n)`` would allocate ``n`` bytes."""
    if args:
        raise PickleRefused("bytes() with arguments")
    return b""


def _ordered_dict(*args: object) -> OrderedDict:
    """An empty OrderedDict; its items come with SETITEMS, which checks them."""
    if args:
        raise PickleRefused("OrderedDict() with arguments")
    return OrderedDict()


_CALLABLES: dict[tuple[str, str], Callable[..., Any]] = {}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _CALLABLES[_module, "_reconstruct"] = _reconstruct
    _CALLABLES[_module, "scalar"] = _scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    _CALLABLES[_module, "_frombuffer"] = _frombuffer
_CALLABLES.update(
    {
        ("numpy", "dtype"): _dtype,
        ("_codecs", "encode"): _latin1_encode,
        ("builtins", "bytes"): _empty_bytes,
        ("__builtin__", "bytes"): _empty_bytes,  # protocols 0-2 name Python 2's module
        ("collections", "OrderedDict"): _ordered_dict,
    }
)
_SAFE_CALLS = frozenset(_CALLABLES.values())
# (module, name) -> object: numpy.ndarray is only ever an argument of _reconstruct (REDUCE refuses
# to call anything but the wrappers above).
_GLOBALS: dict[tuple[str, str], Any] = {**_CALLABLES, ("numpy", "ndarray"): np.ndarray}


def _check_array_state(state: object) -> None:
    """The state numpy's ``ndarray.__reduce__`` writes: (1, shape, dtype, is_fortran, data)."""
    if (
        type(state) is not tuple
        or len(state) != 5
        or type(state[0]) is not int
        or state[0] != 1
        or not _is_flag(state[3])
    ):
        raise PickleRefused("array state numpy never writes")
    _check_size(_check_shape(state[1]), _check_dtype(state[2]), state[4])


def _check_dtype_state(dtype: np.dtype, state: object) -> None:
    """Only the state a plain dtype pickles to, byte order aside: numpy accepts fields, subarrays
    and even cycles here, which would later recurse or allocate without bound."""
    canonical = dtype.__reduce__()[2]
    if (
        type(state) is not tuple
        or len(state) != len(canonical)
        or type(state[1]) is not str
        or state[1] not in _BYTE_ORDERS
        or any(type(a) is not type(b) or a != b for i, (a, b) in enumerate(zip(state, canonical)) if i != 1)
    ):
        raise PickleRefused("dtype state numpy never writes for a plain number type")


_KEY_TYPES = (str, bytes, int)


class _RestrictedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler with every opcode counted and the risky ones checked."""

    def __init__(self, file: io.BytesIO, size: int) -> None:
        super().__init__(file)
        self._size = size
        self._ops = 0
        self._containers = 0

    def find_class(self, module: str, name: str) -> Any:
        found = _GLOBALS.get((module, name))
        if found is None:
            raise PickleRefused(f"refused to load global {module:.60}.{name:.60}")
        return found

    def _count(self, container: bool) -> None:
        self._ops += 1
        if self._ops > MAX_PICKLE_OPS:
            raise PickleTooLarge(f"more than {MAX_PICKLE_OPS:,} pickle opcodes")
        if container:
            self._containers += 1
            if self._containers > MAX_PICKLE_CONTAINERS:
                raise PickleTooLarge(f"more than {MAX_PICKLE_CONTAINERS:,} lists, dicts, tuples and marks")

    def _number_line(self) -> bytes:
        line = self.readline()
        if len(line) > _MAX_NUMBER_LINE:
            raise PickleRefused(f"a number of more than {_MAX_NUMBER_LINE} characters")
        return line

    def load_int(self) -> None:
        data = self._number_line()
        self.append(False if data == b"00\n" else True if data == b"01\n" else int(data, 0))

    def load_long(self) -> None:
        self.append(int(self._number_line()[:-1].rstrip(b"L"), 0))

    def load_get(self) -> None:
        index = int(self._number_line()[:-1])
        if index not in self.memo:
            raise pickle.UnpicklingError(f"memo value not found at index {index}")
        self.append(self.memo[index])

    def load_put(self) -> None:
        index = int(self._number_line()[:-1])
        if index < 0:
            raise pickle.UnpicklingError("negative PUT argument")
        self.memo[index] = self.stack[-1]

    def load_bytearray8(self) -> None:
        """The base class zero-fills the declared length before reading it; refuse lengths the
        file cannot hold."""
        size = int.from_bytes(self.read(8), "little")
        if size > self._size:
            raise pickle.UnpicklingError(f"BYTEARRAY8 declares {size:,} bytes in a {self._size:,}-byte file")
        data = bytearray(size)
        self.readinto(data)  # a short read shrinks ``data``
        if len(data) != size:
            raise pickle.UnpicklingError("pickle data was truncated")
        self.append(data)

    def load_append(self) -> None:
        value = self.stack.pop()
        self._list_target().append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        self._list_target().extend(items)

    def _list_target(self) -> list:
        target = self.stack[-1]
        if type(target) is not list:
            raise PickleRefused(f"APPEND to a {type(target).__name__}")
        return target

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._dict_target([key, value])

    def load_setitems(self) -> None:
        self._dict_target(self.pop_mark())

    def _dict_target(self, items: list) -> None:
        target = self.stack[-1]
        if type(target) not in (dict, OrderedDict):
            raise PickleRefused(f"SETITEM on a {type(target).__name__}")
        if len(items) % 2:
            raise pickle.UnpicklingError("SETITEMS with an odd number of items")
        for key, value in zip(items[::2], items[1::2]):
            if type(key) not in _KEY_TYPES:
                raise PickleRefused(f"a dict key of type {type(key).__name__}")
            target[key] = value

    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if type(func) is not types.FunctionType or func not in _SAFE_CALLS:
            called = func.__name__ if isinstance(func, type) else f"a {type(func).__name__}"
            raise PickleRefused(f"it calls {called} (only numpy's own rebuilders are called)")
        if type(args) is not tuple:
            raise PickleRefused("call arguments that are not a tuple")
        self.stack[-1] = func(*args)

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is np.ndarray:
            _check_array_state(state)
        elif isinstance(inst, np.dtype):
            _check_dtype_state(inst, state)
        else:
            raise PickleRefused(f"BUILD of a {type(inst).__name__}")
        inst.__setstate__(state)


_ALLOWED_OPS = frozenset(
    {
        "PROTO",
        "FRAME",
        "STOP",
        "NONE",
        "NEWTRUE",
        "NEWFALSE",
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "FLOAT",
        "BINFLOAT",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "BYTEARRAY8",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
        "EMPTY_LIST",
        "EMPTY_DICT",
        "EMPTY_TUPLE",
        "LIST",
        "DICT",
        "TUPLE",
        "TUPLE1",
        "TUPLE2",
        "TUPLE3",
        "MARK",
        "POP",
        "POP_MARK",
        "DUP",
        "APPEND",
        "APPENDS",
        "SETITEM",
        "SETITEMS",
        "PUT",
        "BINPUT",
        "LONG_BINPUT",
        "MEMOIZE",
        "GET",
        "BINGET",
        "LONG_BINGET",
        "GLOBAL",
        "STACK_GLOBAL",
        "REDUCE",
        "BUILD",
    }
)
_CONTAINER_OPS = frozenset(
    {"EMPTY_LIST", "EMPTY_DICT", "EMPTY_TUPLE", "LIST", "DICT", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "MARK"}
)
_MEMO_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
_OVERRIDDEN = {
    "INT": "load_int",
    "LONG": "load_long",
    "GET": "load_get",
    "PUT": "load_put",
    "BYTEARRAY8": "load_bytearray8",
    "APPEND": "load_append",
    "APPENDS": "load_appends",
    "SETITEM": "load_setitem",
    "SETITEMS": "load_setitems",
    "REDUCE": "load_reduce",
    "BUILD": "load_build",
}


def _step(handler: Callable[[Any], None], container: bool, memo: bool) -> Callable[[Any], None]:
    def step(self: _RestrictedUnpickler) -> None:
        self._count(container)
        handler(self)
        if memo and len(self.memo) > MAX_PICKLE_MEMO:
            raise PickleTooLarge(f"more than {MAX_PICKLE_MEMO:,} memo entries")

    return step


def _refused_op(name: str) -> Callable[[Any], None]:
    def step(self: _RestrictedUnpickler) -> None:
        raise PickleRefused(f"opcode {name}")

    return step


def _invalid_op(code: int) -> Callable[[Any], None]:
    def step(self: _RestrictedUnpickler) -> None:
        raise pickle.UnpicklingError(f"invalid load key {bytes([code])!r}")

    return step


def _dispatch() -> dict[int, Callable[[Any], None]]:
    """Every byte value gets a handler: counted base or overridden ones for allowed opcodes, a
    refusal for the others (persistent ids, extension codes, NEWOBJ, sets, out-of-band buffers)."""
    table: dict[int, Callable[[Any], None]] = {code: _invalid_op(code) for code in range(256)}
    for op in pickletools.opcodes:
        code = op.code.encode("latin-1")[0]
        if op.name not in _ALLOWED_OPS:
            table[code] = _refused_op(op.name)
            continue
        override = _OVERRIDDEN.get(op.name)
        handler = getattr(_RestrictedUnpickler, override) if override else pickle._Unpickler.dispatch[code]
        table[code] = _step(handler, op.name in _CONTAINER_OPS, op.name in _MEMO_OPS)
    return table


_RestrictedUnpickler.dispatch = _dispatch()


def one_line(text: object, limit: int = 160) -> str:
    """``text`` on one line and at most ``limit`` characters: error messages quote untrusted bytes."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def safe_load(path: Path) -> Any:
    """Unpickle ``path`` admitting only numpy arrays/dtypes and plain containers.

    Raises ``DataError`` naming the file for anything else (nothing from the file is executed).
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read file ({exc.strerror or exc})") from None
    except MemoryError:
        raise DataError(path, "not enough memory to read the file") from None
    if not raw:
        raise DataError(path, "file is empty")
    try:
        return _RestrictedUnpickler(io.BytesIO(raw), len(raw)).load()
    except PickleRefused as exc:
        raise DataError(
            path,
            f"unsafe pickle: {one_line(exc)}; only numpy arrays of numbers and plain "
            "containers are accepted (nothing from the file was executed)",
        ) from None
    except PickleTooLarge as exc:
        raise DataError(path, f"pickle too large or too complex for a data file ({exc})") from None
    except MemoryError:
        raise DataError(path, "not enough memory to unpickle the file") from None
    except Exception as exc:  # any failure to parse untrusted bytes means "not a pickle"
        detail = one_line(exc) or ("the data ends early" if isinstance(exc, EOFError) else "no detail")
        raise DataError(path, f"not a valid pickle ({type(exc).__name__}: {detail})") from None
