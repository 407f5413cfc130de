"""Load the tutorial's pickles without letting them run code.

A pickle names the callables that rebuild its objects, and ``pickle.load`` calls them: a file with a
``__reduce__`` returning ``(os.system, ("...",))`` runs a shell command on load. The data files of
this tool only ever hold dicts, lists and numpy arrays, so the unpickler admits exactly the globals
that numpy needs to rebuild arrays and refuses everything else before it is called.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from ..errors import DataError

# (module, name) pairs that numpy arrays, scalars and dtypes need across numpy 1.x and 2.x.
_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "bool_"),
        ("builtins", "bytearray"),
        ("_codecs", "encode"),
        ("collections", "OrderedDict"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        # numpy scalar/dtype classes (e.g. numpy.dtypes.UInt8DType) are harmless type objects.
        if module == "numpy.dtypes" and name.endswith("DType"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load global {module}.{name}")


def safe_load(path: Path) -> Any:
    """Unpickle ``path`` admitting only numpy arrays/dtypes and plain containers.

    Raises ``DataError`` naming the file for anything else (nothing from the file is executed).
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read file ({exc.strerror or exc})") from None
    if not raw:
        raise DataError(path, "file is empty")
    try:
        return _RestrictedUnpickler(io.BytesIO(raw)).load()
    except pickle.UnpicklingError as exc:
        if "refused to load global" in str(exc):
            raise DataError(path, f"unsafe pickle: {exc}; only numpy arrays and plain containers are "
                                  "accepted (nothing from the file was executed)") from None
        raise DataError(path, f"not a valid pickle ({exc})") from None
    except (EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError, KeyError,
            MemoryError, OverflowError) as exc:
        raise DataError(path, f"not a valid pickle ({type(exc).__name__}: {exc})") from None
