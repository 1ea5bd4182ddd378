"""The one sequence reader: FASTA/FASTQ, plain or gzipped (by magic bytes, stdin included),
read as a stream so memory stays flat, with errors that name file, line and record.

* :func:`iter_records` *recovers* from bad records: it yields :class:`Record` or :class:`Invalid`
  (missing header, empty record, binary data, invalid character, duplicate id, too long), each
  naming file, line and record, so a caller can stop at the first or skip and report them
  (the command line's ``--skip-invalid``).
* :func:`read_fasta` is the strict form: :class:`FastaError` at the first bad record.
* :func:`open_text` / :func:`open_binary` open any input (path, ``-`` for stdin, or a stream),
  gzip or not; every other reader of the package (dot-bracket, CSV, TSV) goes through them.

Example:
    >>> import io
    >>> [(r.id, r.seq) for r in read_fasta(io.StringIO(">a x\\nAC\\nGU\\n>b\\nUU\\n"))]
    [('a', 'ACGU'), ('b', 'UU')]
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = ["FastaError", "Invalid", "Record", "iter_records", "open_binary", "open_text",
           "read_fasta"]  # fmt: skip

_VALID = "ACGUTNRYSWKMBDHVacgutnryswkmbdhv"
_DELETE_VALID = str.maketrans("", "", _VALID)


class FastaError(ValueError):
    """Malformed sequence file; the message names the file, line and record."""


@dataclass(frozen=True)
class Record:
    id: str
    seq: str
    description: str = ""
    line: int = 0  # 1-based line of the header


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
    fh, name, close = open_binary(source)
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
        lines = _decoded_lines(fh, name)
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


def _decoded_lines(fh: IO[bytes], name: str) -> Iterator[tuple[int, str, str]]:
    """(line number, text, '' or why the line is binary); a damaged gzip stream is a
    :class:`FastaError` naming the file."""
    try:
        yield from _lines(fh)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise FastaError(
            f"{name}: truncated or corrupt gzip data ({e or 'unexpected end'})"
        ) from None


def _lines(fh: IO[bytes]) -> Iterator[tuple[int, str, str]]:
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


def open_binary(source: str | os.PathLike[str] | IO[Any]) -> tuple[IO[bytes], str, bool]:
    """(binary stream, display name, close it?) for a path, ``-`` (stdin) or a stream; gzip is
    recognised by its magic bytes everywhere, stdin included. A missing path is a
    ``FileNotFoundError``, a directory an ``IsADirectoryError``, both naming the path."""
    if not isinstance(source, (str, os.PathLike)):
        buf = getattr(source, "buffer", None)
        if buf is not None:
            return buf, getattr(source, "name", "<stream>"), False
        if isinstance(source, io.TextIOBase):
            return io.BytesIO(source.read().encode()), "<stream>", True
        return source, getattr(source, "name", "<stream>"), False  # type: ignore[return-value]
    if str(source) == "-":
        raw = sys.stdin.buffer
        peek = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        if peek == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=raw, mode="rb"), "<stdin>", False  # type: ignore[return-value]
        return raw, "<stdin>", False
    p = Path(source)
    if p.is_dir():
        raise IsADirectoryError(f"{p} is a directory, not a sequence file")
    if not p.exists():
        raise FileNotFoundError(f"no such file: {p}")
    try:
        with open(p, "rb") as fh:
            magic = fh.read(2)
        fh = gzip.open(p, "rb") if magic == b"\x1f\x8b" else open(p, "rb")
    except PermissionError:
        raise PermissionError(f"cannot read {p}: permission denied") from None
    return fh, str(p), True  # type: ignore[return-value]


def open_text(source: str | os.PathLike[str] | IO[Any]) -> IO[str]:
    """A path (gzip by magic bytes), ``-`` (stdin) or a stream as UTF-8 text; text streams pass
    through. Close it when done (``with open_text(p) as fh``)."""
    if isinstance(source, io.TextIOBase):
        return source  # type: ignore[return-value]
    fh, _, owned = open_binary(source)
    return (io.TextIOWrapper if owned else _Borrowed)(fh, encoding="utf-8", errors="strict")


class _Borrowed(io.TextIOWrapper):
    """Text over a stream the caller owns (stdin, a stream passed in): closing it leaves the stream
    open."""

    def close(self) -> None:
        with contextlib.suppress(ValueError):  # already detached
            self.detach()


def read_fasta(
    source: str | os.PathLike[str] | IO[Any],
    *,
    allow_duplicates: bool = False,
    max_length: int | None = None,
) -> Iterator[Record]:
    """Yield the records of a FASTA or FASTQ input one at a time (memory stays flat).

    Raises :class:`FastaError` at the first bad record (see :func:`iter_records`), naming file,
    line and record.
    """
    for x in iter_records(source, allow_duplicates=allow_duplicates, max_length=max_length):
        if isinstance(x, Invalid):
            raise FastaError(x.message)
        yield x
