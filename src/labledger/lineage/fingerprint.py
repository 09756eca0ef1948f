"""Built-in dataset fingerprints: a stable content hash plus a summary.

Registered as a plugin through ``labledger_fingerprint_dataset`` (``trylast``,
so a third-party plugin can override any type). Handles NumPy arrays (masked
arrays with their mask), pandas DataFrames and Series, SciPy sparse matrices,
files and directories (by content), torch tensors and ``TensorDataset`` —
subclasses included (``np.memmap``, a DataFrame subclass) — and lists, tuples
and dicts, whose arrays, frames and tensors are hashed by content (``x=[xa, xb]``
of a multi-input model).

The digest is SHA-256 over a canonical encoding — type, shape, dtype, column
names in order, then the values' bytes — so the same data gives the same
fingerprint in every process and on every machine (sets are hashed in sorted
order, whatever ``PYTHONHASHSEED``), while one changed value, a reordered column
or a changed dtype gives another. Nothing here draws random numbers, and no
library is imported here: an object is recognised by the module of its type,
which is already imported when such an object exists.

>>> import labledger as ll
>>> ll.fingerprint([1, 2, 3]).digest[:12]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labledger.hooks.manager import hookimpl
from labledger.records import Fingerprint

__all__ = ["fingerprint", "labledger_fingerprint_dataset"]

MAX_LABELS = 50
_BLOCK = 1 << 20


class _Hasher:
    def __init__(self, kind: str) -> None:
        self._h = hashlib.sha256()
        self.field(f"labledger-fingerprint-v1:{kind}")

    def field(self, text: str) -> None:
        data = text.encode("utf-8")
        self._h.update(len(data).to_bytes(8, "little"))
        self._h.update(data)

    def raw(self, data: bytes | memoryview) -> None:
        self._h.update(len(data).to_bytes(8, "little"))
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _module(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


# -- NumPy ---------------------------------------------------------------------


def _json_default(value: Any, found: dict[int, Fingerprint] | None = None) -> Any:
    """What JSON cannot encode: a set by its sorted elements (never in hash order), an object a
    fingerprint plugin handles (array, frame, tensor, ...) by its content digest (noted in
    ``found`` by ``id``), else its ``repr``."""
    if isinstance(value, set | frozenset):
        items = sorted(
            json.dumps(v, default=lambda x: _json_default(x, found), sort_keys=True, allow_nan=True)
            for v in value
        )
        return {type(value).__name__: items}
    if not isinstance(value, str | bytes | bytearray | os.PathLike):  # a path in a list stays a name
        from labledger.hooks import manager as plugins

        result = plugins.call_first("labledger_fingerprint_dataset", data=value)
        if isinstance(result, Fingerprint):
            if found is not None:
                found[id(value)] = result
            return {"fingerprint": result.digest}
    return repr(value)


def _text(value: Any) -> str:
    """``str(value)``, except that a set's elements come sorted (not in ``PYTHONHASHSEED`` order)."""
    if isinstance(value, set | frozenset):
        return json.dumps(_json_default(value))
    return str(value)


def _hash_ndarray(h: _Hasher, a: Any) -> None:
    import numpy as np

    a = np.asarray(a)  # a subclass (np.memmap, np.matrix) hashes as the plain array it holds
    h.field(f"ndarray|{a.dtype.str}|{a.shape}")
    if a.dtype.hasobject:
        h.field(json.dumps(a.tolist(), default=_json_default, sort_keys=True, allow_nan=True))
    else:
        h.raw(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)


def _labels(values: Any) -> dict[str, int] | None:
    """Label counts of a 1-D target-like array (few distinct integer/bool/str/category values)."""
    import numpy as np

    arr = np.asarray(values)
    if arr.ndim != 1 or arr.dtype.kind not in "biuUSO" or len(arr) == 0:
        return None
    try:
        uniques, counts = np.unique(arr, return_counts=True)
    except TypeError:
        return None
    if len(uniques) > MAX_LABELS:
        return None
    return {str(u): int(c) for u, c in zip(uniques.tolist(), counts.tolist(), strict=True)}


def _type_name(obj: Any, base: str) -> str:
    """``base`` (e.g. ``numpy.ndarray``) for the base type itself, the qualified name of a subclass."""
    cls = type(obj)
    top, name = base.split(".")[0], base.rsplit(".", 1)[1]
    if cls.__name__ == name and cls.__module__.split(".")[0] == top:
        return base
    return f"{cls.__module__}.{cls.__qualname__}"


def _ndarray(a: Any) -> Fingerprint:
    import numpy as np

    h = _Hasher("numpy")
    _hash_ndarray(h, a)
    plain = np.asarray(a)
    summary: dict[str, Any] = {
        "type": _type_name(a, "numpy.ndarray"),
        "shape": list(plain.shape),
        "dtype": str(plain.dtype),
    }
    if plain.dtype.kind in "fc":
        summary["nulls"] = int(np.isnan(plain).sum())
    labels = _labels(plain)
    if labels is not None:
        summary["labels"] = labels
    return Fingerprint(h.hexdigest(), summary)


def _masked(a: Any) -> Fingerprint:
    """A masked array: its mask and the values it does not mask (what hides under the mask is ignored)."""
    import numpy as np

    mask = np.ma.getmaskarray(a)
    data = np.asarray(a.data)
    shown = np.where(mask, np.zeros((), dtype=data.dtype), data) if data.dtype.kind != "O" else a.filled(None)
    h = _Hasher("numpy.ma")
    _hash_ndarray(h, shown)
    _hash_ndarray(h, mask)
    summary: dict[str, Any] = {
        "type": "numpy.ma.MaskedArray",
        "shape": list(data.shape),
        "dtype": str(data.dtype),
        "masked": int(mask.sum()),
    }
    return Fingerprint(h.hexdigest(), summary)


# -- pandas ----------------------------------------------------------------------


def _hash_values(h: _Hasher, values: Any) -> None:
    """Hash a pandas Series' values by dtype: raw bytes where possible, else text."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    h.field(f"dtype|{dtype}")
    if isinstance(dtype, pd.CategoricalDtype):
        _hash_values(h, pd.Series(dtype.categories))
        _hash_ndarray(h, np.asarray(values.cat.codes))
        return
    if isinstance(dtype, np.dtype) and not dtype.hasobject:
        _hash_ndarray(h, values.to_numpy())
        return
    items = values.to_numpy(dtype=object)
    h.field(
        "\x1f".join(
            "\x00NA"
            if v is None or v is pd.NA or (isinstance(v, float) and v != v)
            else f"{type(v).__name__}:{_text(v)}"
            for v in items
        )
    )


def _dataframe(df: Any) -> Fingerprint:
    h = _Hasher("pandas.DataFrame")
    h.field(f"shape|{df.shape}")
    h.field(json.dumps([str(c) for c in df.columns]))
    for name in df.columns:
        h.field(f"column|{name}")
        _hash_values(h, df[name])
    h.field("index")
    _hash_values(h, df.index.to_series())
    nulls = df.isna().sum()
    summary: dict[str, Any] = {
        "type": _type_name(df, "pandas.DataFrame"),
        "shape": list(df.shape),
        "columns": [str(c) for c in df.columns],
        "dtypes": {str(c): str(t) for c, t in df.dtypes.items()},
        "nulls": {str(c): int(n) for c, n in nulls.items() if n},
    }
    return Fingerprint(h.hexdigest(), summary)


def _series(s: Any) -> Fingerprint:
    h = _Hasher("pandas.Series")
    h.field(f"name|{s.name}")
    _hash_values(h, s)
    h.field("index")
    _hash_values(h, s.index.to_series())
    summary: dict[str, Any] = {
        "type": _type_name(s, "pandas.Series"),
        "name": None if s.name is None else str(s.name),
        "length": len(s),
        "dtype": str(s.dtype),
        "nulls": int(s.isna().sum()),
    }
    labels = _labels(s.astype(str).to_numpy() if s.dtype.kind not in "biu" else s.to_numpy())
    if labels is not None:
        summary["labels"] = labels
    return Fingerprint(h.hexdigest(), summary)


# -- SciPy sparse --------------------------------------------------------------------


def _sparse(m: Any) -> Fingerprint:
    csr = m.tocsr(copy=True)
    csr.sum_duplicates()
    csr.sort_indices()
    h = _Hasher("scipy.sparse")
    h.field(f"shape|{csr.shape}|{csr.dtype.str}")
    for part in (csr.indptr.astype("<i8"), csr.indices.astype("<i8"), csr.data):
        _hash_ndarray(h, part)
    summary = {
        "type": f"scipy.sparse.{type(m).__name__}",
        "shape": list(csr.shape),
        "dtype": str(csr.dtype),
        "nnz": int(csr.nnz),
    }
    return Fingerprint(h.hexdigest(), summary)


# -- torch -------------------------------------------------------------------------


def _tensor_bytes(h: _Hasher, t: Any) -> None:
    import torch

    t = t.detach().cpu().contiguous()
    h.field(f"tensor|{t.dtype}|{tuple(t.shape)}")
    h.raw(memoryview(t.reshape(-1).view(torch.uint8).numpy()).cast("B"))


def _tensor(t: Any) -> Fingerprint:
    h = _Hasher("torch.Tensor")
    _tensor_bytes(h, t)
    summary = {"type": "torch.Tensor", "shape": list(t.shape), "dtype": str(t.dtype)}
    return Fingerprint(h.hexdigest(), summary)


def _tensor_dataset(ds: Any) -> Fingerprint:
    h = _Hasher("torch.TensorDataset")
    for t in ds.tensors:
        _tensor_bytes(h, t)
    summary = {
        "type": "torch.utils.data.TensorDataset",
        "length": len(ds),
        "tensors": [{"shape": list(t.shape), "dtype": str(t.dtype)} for t in ds.tensors],
    }
    return Fingerprint(h.hexdigest(), summary)


# -- files, directories, lists -------------------------------------------------------------


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _path(p: Path) -> Fingerprint:
    h = _Hasher("path")
    if p.is_file():
        h.field(f"file|{_file_digest(p)}")
        return Fingerprint(h.hexdigest(), {"type": "file", "name": p.name, "bytes": p.stat().st_size})
    files = sorted(f for f in p.rglob("*") if f.is_file())
    total = 0
    for f in files:
        h.field(f"{f.relative_to(p).as_posix()}|{_file_digest(f)}")
        total += f.stat().st_size
    return Fingerprint(
        h.hexdigest(), {"type": "directory", "name": p.name, "files": len(files), "bytes": total}
    )


def _container(seq: list[Any] | tuple[Any, ...] | dict[Any, Any]) -> Fingerprint:
    """Lists, tuples and dicts: JSON with sorted keys, each array, frame or tensor in them
    (at any depth) by its content digest; other objects by ``repr``."""
    found: dict[int, Fingerprint] = {}
    h = _Hasher("mapping" if isinstance(seq, dict) else "sequence")
    h.field(json.dumps(seq, default=lambda v: _json_default(v, found), sort_keys=True, allow_nan=True))
    summary: dict[str, Any] = {"type": type(seq).__name__, "length": len(seq)}
    items = {str(k): v for k, v in seq.items()} if isinstance(seq, dict) else dict(enumerate(seq))
    values = list(items.values())
    if values and not isinstance(seq, dict) and all(isinstance(v, bool | int | str) for v in values):
        counts: dict[str, int] = {}
        for v in values:
            counts[str(v)] = counts.get(str(v), 0) + 1
        if len(counts) <= MAX_LABELS:
            summary["labels"] = dict(sorted(counts.items()))
    elif found and len(items) <= MAX_LABELS:
        summary["items"] = {
            str(k): found[id(v)].summary if id(v) in found else {"type": type(v).__name__}
            for k, v in items.items()
        }
    return Fingerprint(h.hexdigest(), summary)


#: (top-level module, class name) -> handler, matched along the type's MRO, so subclasses
#: (np.memmap, a DataFrame subclass, torch.nn.Parameter) are handled like their base.
_BY_TYPE: dict[tuple[str, str], Callable[[Any], Fingerprint]] = {
    ("numpy", "MaskedArray"): _masked,
    ("numpy", "ndarray"): _ndarray,
    ("pandas", "DataFrame"): _dataframe,
    ("pandas", "Series"): _series,
    ("torch", "Tensor"): _tensor,
    ("torch", "TensorDataset"): _tensor_dataset,
}


def _mro_handler(data: Any) -> Callable[[Any], Fingerprint] | None:
    """The handler of the nearest class in ``type(data).__mro__`` that has one."""
    for cls in type(data).__mro__:
        handler = _BY_TYPE.get(((cls.__module__ or "").split(".")[0], cls.__name__))
        if handler is not None:
            return handler
    if (
        "scipy.sparse" in sys.modules
        and _module(data) == "scipy"
        and sys.modules["scipy.sparse"].issparse(data)
    ):
        return _sparse
    return None


def _handler(data: Any) -> Callable[[Any], Fingerprint] | None:
    found = _mro_handler(data)
    if found is not None:
        return found
    if isinstance(data, os.PathLike) or (isinstance(data, str) and os.path.exists(data)):
        return lambda d: _path(Path(d))
    if isinstance(data, list | tuple | dict):
        return _container
    return None


def fingerprint(data: Any) -> Fingerprint:
    """Fingerprint ``data`` through the plugin hook (built-ins included).

    :raises TypeError: when no plugin handles the type.

    >>> import numpy as np, labledger as ll
    >>> ll.fingerprint(np.arange(3)).summary["shape"]  # doctest: +SKIP
    [3]
    """
    from labledger.hooks import manager as plugins

    result = plugins.call_first("labledger_fingerprint_dataset", data=data)
    if not isinstance(result, Fingerprint):
        raise TypeError(
            f"no plugin can fingerprint a {type(data).__module__}.{type(data).__qualname__}; "
            "pass fingerprint= or register a labledger_fingerprint_dataset hook"
        )
    return result


@hookimpl(trylast=True)
def labledger_fingerprint_dataset(data: Any) -> Fingerprint | None:
    handler = _handler(data)
    return handler(data) if handler is not None else None
