"""Writers by extension, each writing ``NAME.tmp`` and renaming on :meth:`commit`, so a killed
run never leaves a file that looks complete: tables (``.tsv``/``.csv``/``.parquet``), embeddings
(``.npy`` + ids, ``.safetensors``, ``.parquet``, ``.tsv``), structures (``.dbn``/``.bpseq``/``.tsv``),
and :func:`write_atomic` for a whole file at once. An output whose folder is missing, is a file, or
is not writable is an ``OSError`` subclass naming the path before anything is written.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = ["EmbeddingWriter", "LineWriter", "NpyWriter", "StructureWriter", "TableWriter", "check_output",
           "component_path", "is_special", "write_atomic"]  # fmt: skip


def component_path(main: str | os.PathLike[str], tag: str) -> Path:
    """A sidecar of ``main``: ``component_path("res.tsv", ".skipped.tsv") == "res.skipped.tsv"``."""
    p = Path(main)
    return p.with_name(_stem(p) + tag)


def _stem(p: Path) -> str:
    return p.name[: -len(p.suffix)] if p.suffix else p.name


def check_output(path: str | os.PathLike[str]) -> None:
    """Fail early, naming ``path``, when it cannot be written: a directory, a missing folder, a
    folder that is a file, or one without write permission."""
    p = Path(path)
    if is_special(p):
        return
    if p.is_dir():
        raise IsADirectoryError(f"output {str(p)!r} is a directory")
    parent = p.parent if str(p.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise NotADirectoryError(f"output {str(p)!r}: {str(parent)!r} is not a directory")
    if not parent.exists():
        raise FileNotFoundError(f"output {str(p)!r}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"output {str(p)!r}: folder {str(parent)!r} is not writable")


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write to ``path.tmp`` then rename, so a killed run never leaves a complete-looking file.

    A path that exists and is not a regular file (``/dev/null``, a FIFO) is written directly.
    """
    p = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    if is_special(p):
        with open(p, mode) as fh:
            fh.write(data)
        return
    check_output(p)
    tmp = p.with_name(p.name + ".tmp")
    try:
        with open(tmp, mode) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def is_special(path: str | os.PathLike[str]) -> bool:
    """True for an existing path that is not a regular file (``/dev/null``, a FIFO, …): such
    outputs are written straight through, never via a temporary file and a rename."""
    p = Path(path)
    return p.exists() and not p.is_file()


def tmp_path(path: str | os.PathLike[str]) -> Path:
    """Where to write ``path`` before :func:`finish`: ``path.tmp`` (or ``path`` itself if special)."""
    p = Path(path)
    check_output(p)
    return p if is_special(p) else p.with_name(p.name + ".tmp")


def finish(tmp: Path, path: str | os.PathLike[str]) -> None:
    if Path(tmp) != Path(path):
        os.replace(tmp, path)


def discard(tmp: Path, path: str | os.PathLike[str]) -> None:
    if Path(tmp) != Path(path):
        Path(tmp).unlink(missing_ok=True)


class _Atomic:
    """Writes ``path.tmp``; :meth:`commit` renames it to ``path``, :meth:`abort` deletes it.
    ``path`` = ``"-"`` is stdout, written straight through (nothing to rename)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.stream = str(path) == "-"
        self.path = Path("stdout" if self.stream else path)
        self.tmp = self.path if self.stream else tmp_path(self.path)

    def commit(self) -> None:
        self.close()
        if self.stream:
            sys.stdout.flush()
        else:
            finish(self.tmp, self.path)

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    def abort(self) -> None:
        try:
            self.close()
        finally:
            if not self.stream:
                discard(self.tmp, self.path)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    return str(v)


class TableWriter(_Atomic):
    """Rows of a fixed set of columns to ``.tsv`` / ``.csv`` / ``.parquet`` (by extension), or
    TSV to a stream (``path`` = ``"-"``: written straight through, nothing to rename).

    ``columns``: ``(name, kind)`` with kind ``"str" | "int" | "float"``.
    """

    def __init__(self, path: str | os.PathLike[str], columns: Sequence[tuple[str, str]]) -> None:
        super().__init__(path)
        self.columns = list(columns)
        ext = self.path.suffix.lower()
        self.kind = "tsv" if self.stream or (not ext and is_special(path)) else ext.lstrip(".")
        if self.kind not in ("tsv", "csv", "parquet"):
            raise ValueError(f"table output must end in .tsv, .csv or .parquet, got {str(path)!r}")
        self._pq = None
        self._fh: IO[str] | None = None
        if self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64()}
            self._schema = pa.schema([(n, types[k]) for n, k in self.columns])
            self._pq = pq.ParquetWriter(self.tmp, self._schema)
        else:
            self._fh = sys.stdout if self.stream else open(self.tmp, "w", newline="")
            self._csv = csv.writer(
                self._fh, delimiter="\t" if self.kind == "tsv" else ",", lineterminator="\n"
            )
            self._csv.writerow([n for n, _ in self.columns])

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self._pq is not None:
            import pyarrow as pa

            cols = list(zip(*rows))
            self._pq.write_table(pa.Table.from_arrays(
                [pa.array(list(c), type=f.type) for c, f in zip(cols, self._schema)],
                schema=self._schema,
            ))  # fmt: skip
        else:
            self._csv.writerows([[_fmt(v) for v in r] for r in rows])
            if self.stream:
                self._fh.flush()  # type: ignore[union-attr]

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()
            self._pq = None
        if self._fh is not None and not self.stream:
            self._fh.close()
        self._fh = None


_NPY_HEADER = 128  # bytes reserved for the .npy header (rewritten with the final row count)


class NpyWriter(_Atomic):
    """Rows of an (N, H) matrix appended to a ``.npy`` file; the header is fixed up on close."""

    def __init__(self, path, hidden: int, dtype: Any = np.float32, atomic: bool = True) -> None:
        super().__init__(path)
        if not atomic:
            self.tmp = self.path
        self.hidden, self.dtype, self.rows = int(hidden), np.dtype(dtype), 0
        self._fh: IO[bytes] | None = open(self.tmp, "wb")
        self._fh.write(self._header())

    def _header(self) -> bytes:
        d = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
             "shape": (self.rows, self.hidden)}  # fmt: skip
        body = repr(d).encode("latin1")
        pad = _NPY_HEADER - 10 - len(body) - 1
        return (
            b"\x93NUMPY\x01\x00"
            + (_NPY_HEADER - 10).to_bytes(2, "little")
            + body
            + b" " * pad
            + b"\n"
        )

    def write(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.ndim != 2 or rows.shape[1] != self.hidden:
            raise ValueError(f"expected (n, {self.hidden}) rows, got {rows.shape}")
        self._fh.write(rows.tobytes())  # type: ignore[union-attr]
        self.rows += rows.shape[0]

    def close(self) -> None:
        if self._fh is not None:
            self._fh.seek(0)
            self._fh.write(self._header())
            self._fh.close()
            self._fh = None


class EmbeddingWriter:
    """Embeddings with their ids: ``.npy`` (+ ``.ids.txt``, one id a line, same order),
    ``.safetensors`` (tensor ``embeddings``, ids as JSON in the metadata; held in memory until
    commit), or a table (``.tsv`` / ``.csv``: id then ``e0 … e{H-1}``; ``.parquet``: id and a
    list<float> column ``embedding``)."""

    def __init__(self, path: str | os.PathLike[str], hidden: int) -> None:
        self.path, self.hidden = Path(path), hidden
        ext = self.path.suffix.lower()
        self.ext = ext
        if ext == ".npy":
            self._npy = NpyWriter(path, hidden)
            self._ids = LineWriter(component_path(path, ".ids.txt"))
        elif ext == ".safetensors":
            self._buf: list[np.ndarray] = []
            self._idbuf: list[str] = []
        elif ext in (".tsv", ".csv"):
            self._table = TableWriter(
                path, [("id", "str")] + [(f"e{k}", "float") for k in range(hidden)]
            )
        elif ext == ".parquet":
            self._table = None
            import pyarrow as pa
            import pyarrow.parquet as pq

            self._schema = pa.schema([("id", pa.string()), ("embedding", pa.list_(pa.float32()))])
            self._tmp = tmp_path(self.path)
            self._pq = pq.ParquetWriter(self._tmp, self._schema)
        else:
            raise ValueError(
                f"embedding output must end in .npy, .safetensors, .tsv, .csv or .parquet, got {str(path)!r}"
            )

    @staticmethod
    def tags(path: str | os.PathLike[str]) -> list[str]:
        ext = Path(path).suffix.lower()
        return [".npy", ".ids.txt"] if ext == ".npy" else [ext]

    def write(self, ids: Sequence[str], emb: np.ndarray) -> None:
        if self.ext == ".npy":
            self._npy.write(emb)
            self._ids.write(ids)
        elif self.ext == ".safetensors":
            self._buf.append(np.asarray(emb, dtype=np.float32))
            self._idbuf += list(ids)
        elif self.ext == ".parquet":
            import pyarrow as pa

            arr = np.asarray(emb, dtype=np.float32)
            col = pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), arr.shape[1]).cast(
                pa.list_(pa.float32())
            )
            self._pq.write_table(
                pa.Table.from_arrays([pa.array(list(ids)), col], schema=self._schema)
            )
        else:
            self._table.write([(i, *row.tolist()) for i, row in zip(ids, emb)])

    def commit(self) -> None:
        if self.ext == ".npy":
            self._ids.commit()
            self._npy.commit()
        elif self.ext == ".safetensors":
            from safetensors.numpy import save_file

            tmp = tmp_path(self.path)
            mat = np.concatenate(self._buf) if self._buf else np.zeros((0, self.hidden), np.float32)
            save_file({"embeddings": mat}, str(tmp), metadata={"ids": json.dumps(self._idbuf)})
            finish(tmp, self.path)
        elif self.ext == ".parquet":
            self._pq.close()
            finish(self._tmp, self.path)
        else:
            self._table.commit()

    def abort(self) -> None:
        if self.ext == ".npy":
            self._ids.abort()
            self._npy.abort()
        elif self.ext == ".parquet":
            self._pq.close()
            discard(self._tmp, self.path)
        elif self.ext != ".safetensors":
            self._table.abort()


class LineWriter(_Atomic):
    """Plain text, one item a line (``-``: stdout)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self._fh: IO[str] | None = sys.stdout if self.stream else open(self.tmp, "w")

    def write(self, lines: Iterable[str]) -> None:
        self._fh.writelines(f"{x}\n" for x in lines)  # type: ignore[union-attr]

    def close(self) -> None:
        if self._fh is not None and not self.stream:
            self._fh.close()
        self._fh = None


class StructureWriter:
    """Structures: dot-bracket FASTA (``.dbn`` / ``.fa`` / ``.fasta``, or ``-`` for stdout; three
    lines per record: ``>id``, sequence, dot-bracket), ``.bpseq`` (records one after the other,
    each opening with ``# Name: id``; 1-based ``index base partner``), or a table (``.tsv`` /
    ``.csv`` / ``.parquet``: id, sequence, dot_bracket, num_pairs, score)."""

    COLUMNS = (("id", "str"), ("sequence", "str"), ("dot_bracket", "str"),
               ("num_pairs", "int"), ("score", "float"))  # fmt: skip

    def __init__(self, path: str | os.PathLike[str]) -> None:
        ext = "" if str(path) == "-" else Path(path).suffix.lower()
        if ext in ("", ".dbn", ".fa", ".fasta", ".bpseq"):
            self.kind = "bpseq" if ext == ".bpseq" else "dbn"
            self._w: Any = LineWriter(path)
        elif ext in (".tsv", ".csv", ".parquet"):
            self.kind = "table"
            self._w = TableWriter(path, self.COLUMNS)
        else:
            raise ValueError(
                f"structure output must end in .dbn, .fa, .fasta, .bpseq, .tsv, .csv or .parquet, got {str(path)!r}"
            )

    def write(self, results: Sequence[Any]) -> None:
        if self.kind == "table":
            self._w.write(
                [(r.id, r.sequence, r.dot_bracket, r.num_pairs, r.score) for r in results]
            )
        elif self.kind == "dbn":
            self._w.write(f">{r.id}\n{r.sequence}\n{r.dot_bracket}" for r in results)
        else:
            lines = []
            for r in results:
                partner = np.zeros(len(r.sequence), dtype=np.int64)
                if r.num_pairs:
                    partner[r.pairs[:, 0]] = r.pairs[:, 1] + 1
                    partner[r.pairs[:, 1]] = r.pairs[:, 0] + 1
                lines.append(f"# Name: {r.id}")
                lines += [f"{k + 1} {b} {int(partner[k])}" for k, b in enumerate(r.sequence)]
            self._w.write(lines)

    def commit(self) -> None:
        self._w.commit()

    def abort(self) -> None:
        self._w.abort()


def split_bpseq(text: str) -> list[str]:
    """Split a multi-record BPSEQ written by :class:`StructureWriter` into single-record texts."""
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("# Name:") or not out:
            out.append("")
        out[-1] += line
    return out
