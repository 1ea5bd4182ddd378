"""Streaming readers for FASTA/FASTQ (plain, gzipped or stdin) with errors that name record and line.

Example:
    >>> import io
    >>> [(r.id, r.seq) for r in read_fasta(io.StringIO(">a x\\nAC\\nGU\\n>b\\nUU\\n"))]
    [('a', 'ACGU'), ('b', 'UU')]
"""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["FastaError", "Record", "open_text", "read_fasta", "read_sequences", "write_atomic"]


class FastaError(ValueError):
    """Malformed sequence file; the message names the file, line and record."""


@dataclass(frozen=True)
class Record:
    id: str
    seq: str
    description: str = ""
    line: int = 0  # 1-based line of the header


def open_text(path: str | os.PathLike | IO[str]) -> IO[str]:
    """Open a path (``.gz`` by magic bytes) or ``-`` (stdin) as text; file objects pass through."""
    if not isinstance(path, (str, os.PathLike)):
        return path
    if str(path) == "-":
        return sys.stdin
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    with open(p, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8", errors="strict")
    return open(p, encoding="utf-8", errors="strict")


def read_fasta(
    source: str | os.PathLike | IO[str], *, allow_duplicates: bool = False
) -> Iterator[Record]:
    """Yield records of a FASTA or FASTQ stream one at a time (memory stays flat).

    Raises :class:`FastaError` for a missing header, an empty record, binary data, a truncated FASTQ
    record or a duplicate id (unless ``allow_duplicates``), naming file and line.
    """
    fh = open_text(source)
    name = getattr(fh, "name", "<stream>")
    seen: set[str] = set()
    try:
        first = _next_line(fh, name, 0)
        if first is None:
            return
        lineno, line = first
        if line.startswith("@"):
            yield from _read_fastq(fh, name, lineno, line, seen, allow_duplicates)
            return
        header: tuple[int, str] | None = None
        chunks: list[str] = []
        while True:
            if line.startswith(">"):
                if header is not None:
                    yield _make(header, chunks, name, seen, allow_duplicates)
                header, chunks = (lineno, line[1:].strip()), []
            elif line.strip():
                if header is None:
                    raise FastaError(
                        f"{name}, line {lineno}: sequence data before the first '>' header"
                    )
                chunks.append(line.strip())
            nxt = _next_line(fh, name, lineno)
            if nxt is None:
                break
            lineno, line = nxt
        if header is not None:
            yield _make(header, chunks, name, seen, allow_duplicates)
    finally:
        if fh is not source and fh is not sys.stdin:
            fh.close()


def _next_line(fh: IO[str], name: str, lineno: int) -> tuple[int, str] | None:
    try:
        line = fh.readline()
    except UnicodeDecodeError as e:
        raise FastaError(f"{name}, line {lineno + 1}: not a text file ({e.reason})") from None
    if not line:
        return None
    if "\x00" in line:
        raise FastaError(f"{name}, line {lineno + 1}: binary data (NUL byte)")
    return lineno + 1, line.rstrip("\r\n")


def _make(
    header: tuple[int, str], chunks: list[str], name: str, seen: set[str], dup_ok: bool
) -> Record:
    lineno, text = header
    rid, _, desc = text.partition(" ")
    if not rid:
        raise FastaError(f"{name}, line {lineno}: header without an id")
    seq = "".join(chunks)
    if not seq:
        raise FastaError(f"{name}, line {lineno}: record '{rid}' has no sequence")
    if not dup_ok:
        if rid in seen:
            raise FastaError(f"{name}, line {lineno}: duplicate record id '{rid}'")
        seen.add(rid)
    return Record(rid, seq, desc.strip(), lineno)


def _read_fastq(fh, name, lineno, line, seen, dup_ok) -> Iterator[Record]:
    while True:
        if not line.startswith("@"):
            raise FastaError(f"{name}, line {lineno}: expected a FASTQ header starting with '@'")
        head = lineno
        parts = []
        for _ in range(3):
            nxt = _next_line(fh, name, lineno)
            if nxt is None:
                raise FastaError(f"{name}, line {head}: truncated FASTQ record")
            lineno, text = nxt
            parts.append(text)
        seq, plus, qual = parts
        if not plus.startswith("+") or len(qual) != len(seq):
            raise FastaError(
                f"{name}, line {head}: malformed FASTQ record (bad '+' line or quality length)"
            )
        yield _make((head, line[1:].strip()), [seq.strip()], name, seen, dup_ok)
        nxt = _next_line(fh, name, lineno)
        while nxt is not None and not nxt[1].strip():
            nxt = _next_line(fh, name, nxt[0])
        if nxt is None:
            return
        lineno, line = nxt


def read_sequences(source) -> tuple[list[str], list[str]]:
    """``(ids, seqs)`` from a FASTA path/stream, or from a list of strings (ids ``seq0``, ``seq1``, …)."""
    if isinstance(source, (list, tuple)):
        return [f"seq{i}" for i in range(len(source))], list(source)
    recs = list(read_fasta(source))
    return [r.id for r in recs], [r.seq for r in recs]


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write to ``path.tmp`` then rename, so a killed run never leaves a complete-looking file.

    A path that exists and is not a regular file (``/dev/null``, a FIFO) is written directly.
    """
    p = Path(path)
    mode = "wb" if isinstance(data, bytes) else "w"
    if p.exists() and not p.is_file():
        with open(p, mode) as fh:
            fh.write(data)
        return
    tmp = p.with_name(p.name + ".tmp")
    with open(tmp, mode) as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, p)
