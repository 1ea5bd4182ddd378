"""Streaming input, deterministic shards, part files and their merge (the command line's plumbing).

* :func:`iter_records`: a FASTA/FASTQ reader (plain, gzipped or stdin, read as bytes line by line)
  that *recovers* from bad records: it yields :class:`~rnaernie.io.Record` or :class:`Invalid`
  (missing header, empty record, binary data, invalid character, duplicate id, too long), each
  naming file, line and record, so a caller can either stop at the first or skip and report them.
* Sharding: item ``k`` of the stream (valid or not) belongs to shard ``k // shard_size``; rank ``r``
  of ``world`` takes shards ``s % world == r`` and writes part files ``OUT.part-00003.tsv``.
  Every rank reads the whole stream (parsing is cheap next to the model), so all agree on the
  shards without talking to each other.
* Writers write ``name.tmp`` and rename on :meth:`commit`; a part counts as finished once its
  main file exists (sidecars are committed first), which is what ``--resume`` checks.
* :func:`merge_parts` concatenates the parts in shard order, so a sharded run gives the same
  files as a single process.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import IO, Any

import numpy as np

from .io import FastaError, Record

__all__ = [
    "EmbeddingWriter",
    "Invalid",
    "Manifest",
    "StructureWriter",
    "TableWriter",
    "component_path",
    "dist_env",
    "iter_records",
    "iter_shards",
    "merge_parts",
    "part_stem",
]

logger = logging.getLogger(__name__)

_VALID = "ACGUTNRYSWKMBDHVacgutnryswkmbdhv"
_DELETE_VALID = str.maketrans("", "", _VALID)


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Invalid:
    """A record (or stretch of input) that cannot be used, with where and why."""

    id: str
    line: int
    reason: str
    source: str = "<stream>"

    @property
    def message(self) -> str:
        rec = f"record '{self.id}': " if self.id else ""
        return f"{self.source}, line {self.line}: {rec}{self.reason}"


def _open_binary(source: str | os.PathLike[str] | IO[Any]) -> tuple[IO[bytes], str, bool]:
    """(binary stream, display name, close it?) for a path (gzip by magic bytes), ``-`` or a stream."""
    if not isinstance(source, (str, os.PathLike)):
        buf = getattr(source, "buffer", None)
        if buf is not None:
            return buf, getattr(source, "name", "<stream>"), False
        if isinstance(source, io.TextIOBase):
            return io.BytesIO(source.read().encode()), "<stream>", True
        return source, getattr(source, "name", "<stream>"), False  # type: ignore[return-value]
    if str(source) == "-":
        return sys.stdin.buffer, "<stdin>", False
    p = Path(source)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {p}")
    with open(p, "rb") as fh:
        magic = fh.read(2)
    fh = gzip.open(p, "rb") if magic == b"\x1f\x8b" else open(p, "rb")
    return fh, str(p), True  # type: ignore[return-value]


def iter_records(
    source: str | os.PathLike[str] | IO[Any],
    *,
    max_length: int | None = None,
    allow_duplicates: bool = False,
) -> Iterator[Record | Invalid]:
    """Yield every record of a FASTA/FASTQ input, or an :class:`Invalid` in its place.

    Memory stays flat apart from the set of ids seen (for the duplicate check). Sequence lines are
    stripped of whitespace; letters allowed are ``ACGUT``, ``N`` and the IUPAC codes, any case.
    """
    fh, name, close = _open_binary(source)
    seen: set[str] = set()

    def finish(head: int, text: str, chunks: list[str], starts: list[int], bad: str | None):
        rid = text.partition(" ")[0] if text else ""
        desc = text.partition(" ")[2].strip()
        if not rid:
            return Invalid("", head, "header without an id", name)
        if bad:
            return Invalid(rid, head, bad, name)
        dup = rid in seen
        seen.add(rid)
        if dup and not allow_duplicates:
            return Invalid(rid, head, "duplicate record id", name)
        seq = "".join(chunks)
        if not seq:
            return Invalid(rid, head, "empty record (no sequence)", name)
        junk = seq.translate(_DELETE_VALID)
        if junk:
            pos = seq.index(junk[0])
            k = int(np.searchsorted(np.asarray(starts), pos, side="right")) - 1
            return Invalid(
                rid,
                head + 1 + k,
                f"invalid character {junk[0]!r} at position {pos} (0-based; expected "
                "A, C, G, U/T or an IUPAC code)",
                name,
            )
        if max_length is not None and len(seq) > max_length:
            return Invalid(
                rid, head, f"sequence of {len(seq)} nt exceeds the limit of {max_length}", name
            )
        return Record(rid, seq, desc, head)

    try:
        lines = _decoded_lines(fh)
        first = next(((n, t, b) for n, t, b in lines if b or t.strip()), None)
        if first is None:
            return
        if first[1].startswith("@") and not first[2]:
            yield from _fastq(first, lines, finish, name)
            return
        head, text, chunks, starts, bad = 0, "", [], [], None
        orphan, orphan_why = 0, ""  # first line of data before any header, and what it is
        pos = 0
        for n, line, binary in _chain([first], lines):
            if not binary and line.startswith(">"):
                if orphan:
                    yield Invalid("", orphan, orphan_why, name)
                    orphan = 0
                if head:
                    yield finish(head, text, chunks, starts, bad)
                head, text, chunks, starts, bad, pos = n, line[1:].strip(), [], [], None, 0
                continue
            if binary:
                if head and bad is None:
                    bad = f"binary data at line {n} ({binary})"
                elif not head and not orphan:
                    orphan, orphan_why = n, f"binary data ({binary}) before a '>' header"
                continue
            s = "".join(line.split())
            if not s:
                continue
            if not head:
                if not orphan:
                    orphan, orphan_why = n, "sequence data before a '>' header"
                continue
            starts.append(pos)
            chunks.append(s)
            pos += len(s)
        if orphan:
            yield Invalid("", orphan, orphan_why, name)
        if head:
            yield finish(head, text, chunks, starts, bad)
    finally:
        if close:
            fh.close()


def _chain(*its: Iterable[Any]) -> Iterator[Any]:
    for it in its:
        yield from it


def _decoded_lines(fh: IO[bytes]) -> Iterator[tuple[int, str, str]]:
    """(line number, text, '' or why the line is binary)."""
    for n, raw in enumerate(fh, start=1):
        if b"\x00" in raw:
            yield n, "", "NUL byte"
            continue
        try:
            yield n, raw.decode("utf-8").rstrip("\r\n"), ""
        except UnicodeDecodeError:
            yield n, "", "not UTF-8 text"


def _fastq(first, lines, finish, name) -> Iterator[Record | Invalid]:
    it = _chain([first], lines)
    for n, line, binary in it:
        if binary or not line.strip():
            if binary:
                yield Invalid("", n, f"binary data ({binary})", name)
            continue
        if not line.startswith("@"):
            yield Invalid("", n, "expected a FASTQ header starting with '@'", name)
            continue
        body = [next(it, None) for _ in range(3)]
        if any(b is None for b in body):
            yield Invalid(line[1:].split(" ")[0], n, "truncated FASTQ record", name)
            return
        (_, seq, b1), (_, plus, b2), (_, qual, b3) = body  # type: ignore[misc]
        if b1 or b2 or b3:
            yield finish(n, line[1:].strip(), [], [], "binary data in FASTQ record")
        elif not plus.startswith("+") or len(qual.strip()) != len(seq.strip()):
            yield finish(
                n,
                line[1:].strip(),
                [],
                [],
                "malformed FASTQ record (bad '+' line or quality length)",
            )
        else:
            yield finish(n, line[1:].strip(), [seq.strip()] if seq.strip() else [], [0], None)


def strict(items: Iterable[Record | Invalid]) -> Iterator[Record]:
    """Raise :class:`~rnaernie.io.FastaError` at the first :class:`Invalid`."""
    for x in items:
        if isinstance(x, Invalid):
            raise FastaError(x.message)
        yield x


# ----------------------------------------------------------------------------- sharding


def dist_env() -> tuple[int, int]:
    """(rank, world size): from an initialised ``torch.distributed``, else ``RANK``/``WORLD_SIZE``."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:  # pragma: no cover
        pass
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is not in [0, WORLD_SIZE={world})")
    return rank, world


def iter_shards(
    items: Iterable[Any], shard_size: int
) -> Iterator[tuple[int, Iterator[tuple[int, Any]]]]:
    """``(shard, iterator of (item index, item))`` for consecutive runs of ``shard_size`` items.

    The inner iterator must be consumed (or dropped) before the next shard is taken.
    """
    if shard_size < 1:
        raise ValueError("shard_size must be positive")
    yield from groupby(enumerate(items), key=lambda t: t[0] // shard_size)


def part_stem(out: str | os.PathLike[str], shard: int) -> Path:
    """``res.tsv`` → ``res.part-00003`` (the stem every component of a part hangs from)."""
    p = Path(out)
    return p.with_name(f"{_stem(p)}.part-{shard:05d}")


def _stem(p: Path) -> str:
    return p.name[: -len(p.suffix)] if p.suffix else p.name


def component_path(main: str | os.PathLike[str], tag: str) -> Path:
    """A sidecar of ``main``: ``component_path("res.tsv", ".skipped.tsv") == "res.skipped.tsv"``."""
    p = Path(main)
    return p.with_name(_stem(p) + tag)


@dataclass
class Manifest:
    """``OUT.parts.json``: how many shards and which components each part has (main tag first)."""

    shards: int
    shard_size: int
    tags: list[str]
    optional: list[str]

    @staticmethod
    def path(out: str | os.PathLike[str]) -> Path:
        return component_path(out, ".parts.json")

    def write(self, out: str | os.PathLike[str]) -> None:
        from .io import write_atomic

        write_atomic(self.path(out), json.dumps(self.__dict__, indent=1) + "\n")

    @classmethod
    def read(cls, out: str | os.PathLike[str]) -> Manifest:
        p = cls.path(out)
        if not p.is_file():
            raise FileNotFoundError(f"no manifest {p}: run the sharded command first")
        return cls(**json.loads(p.read_text()))

    def part(self, out: str | os.PathLike[str], shard: int, tag: str | None = None) -> Path:
        return Path(str(part_stem(out, shard)) + (self.tags[0] if tag is None else tag))

    def missing(self, out: str | os.PathLike[str]) -> list[int]:
        return [k for k in range(self.shards) if not self.part(out, k).is_file()]


def merge_parts(out: str | os.PathLike[str], *, keep_parts: bool = False) -> Path:
    """Concatenate the finished parts of ``out`` in shard order into ``out`` and its sidecars."""
    man = Manifest.read(out)
    missing = man.missing(out)
    if missing:
        shown = ", ".join(str(man.part(out, k)) for k in missing[:5])
        raise ValueError(f"{len(missing)} of {man.shards} parts are not finished: {shown}")
    main = Path(out)
    for tag in [*man.tags[1:], *man.optional, man.tags[0]]:  # the main file last
        final = component_path(main, tag) if tag != man.tags[0] else main
        parts = [man.part(out, k, tag) for k in range(man.shards)]
        present = [p for p in parts if p.is_file()]
        if tag in man.optional and not present:
            final.unlink(missing_ok=True)
            continue
        if tag in man.tags and len(present) != len(parts):
            raise ValueError(
                f"part files missing for {tag}: {[str(p) for p in parts if not p.is_file()]}"
            )
        _concat(present, final)
    if not keep_parts:
        for k in range(man.shards):
            for tag in [*man.tags, *man.optional]:
                man.part(out, k, tag).unlink(missing_ok=True)
        Manifest.path(out).unlink(missing_ok=True)
    return main


def _concat(parts: Sequence[Path], final: Path) -> None:
    ext = final.suffix.lower()
    if is_special(final):
        raise ValueError(f"cannot merge parts into {str(final)!r}: not a regular file")
    tmp = final.with_name(final.name + ".tmp")
    try:
        if ext == ".parquet":
            import pyarrow.parquet as pq

            writer = None
            for p in parts:
                f = pq.ParquetFile(p)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, f.schema_arrow)
                for g in range(f.num_row_groups):
                    writer.write_table(f.read_row_group(g))
            if writer is None:
                raise ValueError("no parquet parts to merge")
            writer.close()
        elif ext == ".npy":
            w: NpyWriter | None = None
            for p in parts:
                a = np.load(p, mmap_mode="r")
                if w is None:
                    w = NpyWriter(tmp, a.shape[1], dtype=a.dtype, atomic=False)
                for s in range(0, a.shape[0], 65536):
                    w.write(np.asarray(a[s : s + 65536]))
            if w is None:
                raise ValueError("no .npy parts to merge")
            w.close()
        elif ext == ".safetensors":
            from safetensors import safe_open
            from safetensors.numpy import load_file, save_file

            embs, ids = [], []
            for p in parts:
                embs.append(load_file(p)["embeddings"])
                with safe_open(p, "np") as f:
                    ids += json.loads(f.metadata()["ids"])
            save_file({"embeddings": np.concatenate(embs)}, tmp, metadata={"ids": json.dumps(ids)})
        else:
            header = ext in (".tsv", ".csv")
            with open(tmp, "wb") as dst:
                for k, p in enumerate(parts):
                    with open(p, "rb") as src:
                        if header and k > 0:
                            src.readline()
                        while chunk := src.read(1 << 20):
                            dst.write(chunk)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- writers


def is_special(path: str | os.PathLike[str]) -> bool:
    """True for an existing path that is not a regular file (``/dev/null``, a FIFO, …): such
    outputs are written straight through, never via a temporary file and a rename."""
    p = Path(path)
    return p.exists() and not p.is_file()


def tmp_path(path: str | os.PathLike[str]) -> Path:
    """Where to write ``path`` before :func:`finish`: ``path.tmp`` (or ``path`` itself if special)."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"output {str(p)!r} is a directory")
    return p if is_special(p) else p.with_name(p.name + ".tmp")


def finish(tmp: Path, path: str | os.PathLike[str]) -> None:
    if Path(tmp) != Path(path):
        os.replace(tmp, path)


def discard(tmp: Path, path: str | os.PathLike[str]) -> None:
    if Path(tmp) != Path(path):
        Path(tmp).unlink(missing_ok=True)


class _Atomic:
    """Writes ``path.tmp``; :meth:`commit` renames it to ``path``, :meth:`abort` deletes it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.tmp = tmp_path(self.path)

    def commit(self) -> None:
        self.close()
        finish(self.tmp, self.path)

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    def abort(self) -> None:
        try:
            self.close()
        finally:
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
        self.stream = str(path) == "-"
        super().__init__("stdout" if self.stream else path)
        self.columns = list(columns)
        ext = self.path.suffix.lower()
        self.kind = "tsv" if self.stream else ext.lstrip(".")
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

    def commit(self) -> None:
        if self.stream:
            self.close()
            return
        super().commit()

    def abort(self) -> None:
        if self.stream:
            self.close()
            return
        super().abort()


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
            self._ids = _Lines(component_path(path, ".ids.txt"))
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


class _Lines(_Atomic):
    """Plain text, one item a line (``-``: stdout)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.stream = str(path) == "-"
        super().__init__("stdout" if self.stream else path)
        self._fh: IO[str] | None = sys.stdout if self.stream else open(self.tmp, "w")

    def write(self, lines: Iterable[str]) -> None:
        self._fh.writelines(f"{x}\n" for x in lines)  # type: ignore[union-attr]

    def close(self) -> None:
        if self._fh is not None and not self.stream:
            self._fh.close()
        self._fh = None

    def commit(self) -> None:
        if self.stream:
            self.close()
            if sys.stdout:
                sys.stdout.flush()
            return
        super().commit()

    def abort(self) -> None:
        if self.stream:
            self.close()
            return
        super().abort()


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
            self._w: Any = _Lines(path)
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
