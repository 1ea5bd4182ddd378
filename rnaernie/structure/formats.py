"""Read and write structures: 3-line dot-bracket FASTA (``.dbn``), BPSEQ and CT.

Readers accept gzip-compressed files (detected by the ``.gz`` suffix) and raise ``ValueError``
naming the file and line of malformed input. Writers write a temporary file and rename it, so an
interrupted write never leaves a complete-looking file; a ``.gz`` suffix writes gzip.

Example:
    >>> import tempfile, pathlib
    >>> rec = Record("hp", "GGGAAAUCC", dot_bracket_to_pairs("(((...)))"))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "hp.bpseq"
    >>> write_bpseq(path, rec)
    >>> read_bpseq(path).dot_bracket
    '(((...)))'
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import open_text, write_atomic
from .dotbracket import dot_bracket_to_pairs, normalize_pairs, pairs_to_dot_bracket

__all__ = [
    "Record",
    "read_bpseq",
    "read_ct",
    "read_dbn",
    "write_bpseq",
    "write_ct",
    "write_dbn",
]

PathLike = str | os.PathLike


@dataclass
class Record:
    """One structure: ``name``, ``sequence`` (length ``L``) and ``pairs`` ``(n, 2)`` int64, i < j."""

    name: str
    sequence: str
    pairs: np.ndarray

    def __post_init__(self) -> None:
        self.pairs = normalize_pairs(self.pairs, len(self.sequence))

    @property
    def length(self) -> int:
        return len(self.sequence)

    @property
    def dot_bracket(self) -> str:
        """Dot-bracket with ``()`` for nested pairs and ``[] {} <>`` for pseudoknots."""
        return pairs_to_dot_bracket(self.pairs, len(self.sequence))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (
            self.name == other.name
            and self.sequence == other.sequence
            and np.array_equal(self.pairs, other.pairs)
        )


def _lines(path: PathLike) -> Iterator[tuple[int, str]]:
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            yield lineno, line.rstrip("\r\n")


def _write_atomic(path: PathLike, text: str) -> None:
    data = text.encode("utf-8")
    write_atomic(path, gzip.compress(data, mtime=0) if Path(path).suffix == ".gz" else data)


def _partner_array(pairs: np.ndarray, length: int) -> np.ndarray:
    partner = np.full(length, -1, dtype=np.int64)
    partner[pairs[:, 0]] = pairs[:, 1]
    partner[pairs[:, 1]] = pairs[:, 0]
    return partner


# ---- dot-bracket FASTA ----


def read_dbn(path: PathLike) -> list[Record]:
    """Read 3-line records ``>name`` / sequence / structure (a trailing `` (energy)`` is ignored)."""
    records: list[Record] = []
    pending: list[tuple[int, str]] = []
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        pending.append((lineno, line.strip()))
        if len(pending) == 3:
            records.append(_dbn_record(path, pending))
            pending = []
    if pending:
        raise ValueError(f"{path}:{pending[0][0]}: incomplete record (expected 3 lines)")
    return records


def _dbn_record(path: PathLike, lines: list[tuple[int, str]]) -> Record:
    (ln_name, name), (ln_seq, seq), (ln_db, db) = lines
    if not name.startswith(">"):
        raise ValueError(f"{path}:{ln_name}: expected a '>name' header, got {name[:40]!r}")
    if seq.startswith(">") or db.startswith(">"):
        raise ValueError(f"{path}:{ln_name}: record has fewer than 3 lines")
    db = db.split()[0]
    if len(db) != len(seq):
        raise ValueError(
            f"{path}:{ln_db}: structure length {len(db)} != sequence length {len(seq)} "
            f"(sequence on line {ln_seq})"
        )
    try:
        pairs = dot_bracket_to_pairs(db)
    except ValueError as exc:
        raise ValueError(f"{path}:{ln_db}: {exc}") from None
    return Record(name[1:].strip(), seq, pairs)


def write_dbn(path: PathLike, records: Iterable[Record]) -> None:
    """Write records as 3-line dot-bracket FASTA."""
    text = "".join(f">{r.name}\n{r.sequence}\n{r.dot_bracket}\n" for r in records)
    _write_atomic(path, text)


# ---- BPSEQ ----


def read_bpseq(path: PathLike) -> Record:
    """Read a BPSEQ file (``index base partner``, 1-based, 0 = unpaired; ``#`` lines are comments).

    The name comes from a ``# Name: x`` / ``#Name: x`` comment, else the file name.
    """
    name = Path(path).name.removesuffix(".gz").rsplit(".", 1)[0]
    bases: list[str] = []
    partners: list[int] = []
    line_of: list[int] = []
    for lineno, line in _lines(path):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            body = text[1:].strip()
            if body.lower().startswith("name:"):
                name = body[5:].strip()
            continue
        fields = text.split()
        if len(fields) != 3:
            raise ValueError(f"{path}:{lineno}: expected 'index base partner', got {text[:40]!r}")
        try:
            idx, partner = int(fields[0]), int(fields[2])
        except ValueError:
            raise ValueError(f"{path}:{lineno}: index and partner must be integers") from None
        if idx != len(bases) + 1:
            raise ValueError(f"{path}:{lineno}: expected index {len(bases) + 1}, got {idx}")
        bases.append(fields[1])
        partners.append(partner)
        line_of.append(lineno)
    return Record(name, "".join(bases), _pairs_from_partners(path, partners, line_of))


def _pairs_from_partners(path: PathLike, partners: list[int], line_of: list[int]) -> np.ndarray:
    n = len(partners)
    pairs = []
    for k, p in enumerate(partners):
        if p < 0 or p > n or p == k + 1:
            raise ValueError(f"{path}:{line_of[k]}: bad partner index {p} (length {n})")
        if p and partners[p - 1] != k + 1:
            raise ValueError(
                f"{path}:{line_of[k]}: pair {k + 1}-{p} is not reciprocal "
                f"(line {line_of[p - 1]} gives {p} partner {partners[p - 1]})"
            )
        if p > k + 1:
            pairs.append((k, p - 1))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def write_bpseq(path: PathLike, record: Record) -> None:
    """Write one record as BPSEQ with a ``# Name:`` header."""
    partner = _partner_array(record.pairs, record.length)
    lines = [f"# Name: {record.name}"]
    lines += [f"{k + 1} {b} {int(partner[k]) + 1}" for k, b in enumerate(record.sequence)]
    _write_atomic(path, "\n".join(lines) + "\n")


# ---- CT ----


def read_ct(path: PathLike) -> list[Record]:
    """Read a CT file (one or more records): a header ``N name`` then ``N`` lines of
    ``index base prev next partner natural_index`` (1-based, partner 0 = unpaired)."""
    records: list[Record] = []
    it = _lines(path)
    for lineno, line in it:
        if not line.strip():
            continue
        head = line.split(maxsplit=1)
        try:
            n = int(head[0])
        except ValueError:
            raise ValueError(f"{path}:{lineno}: expected a header 'length name'") from None
        if n < 0:
            raise ValueError(f"{path}:{lineno}: negative length {n}")
        name = head[1].strip() if len(head) > 1 else ""
        bases: list[str] = []
        partners: list[int] = []
        line_of: list[int] = []
        while len(bases) < n:
            try:
                ln, row = next(it)
            except StopIteration:
                raise ValueError(
                    f"{path}:{lineno}: record {name!r} ends after {len(bases)} of {n} lines"
                ) from None
            fields = row.split()
            if not fields:
                continue
            if len(fields) < 6:
                raise ValueError(f"{path}:{ln}: expected 6 columns, got {len(fields)}")
            try:
                idx, partner = int(fields[0]), int(fields[4])
            except ValueError:
                raise ValueError(f"{path}:{ln}: index and partner must be integers") from None
            if idx != len(bases) + 1:
                raise ValueError(f"{path}:{ln}: expected index {len(bases) + 1}, got {idx}")
            bases.append(fields[1])
            partners.append(partner)
            line_of.append(ln)
        records.append(Record(name, "".join(bases), _pairs_from_partners(path, partners, line_of)))
    return records


def write_ct(path: PathLike, records: Record | Iterable[Record]) -> None:
    """Write one or more records as CT."""
    if isinstance(records, Record):
        records = [records]
    out: list[str] = []
    for r in records:
        n = r.length
        partner = _partner_array(r.pairs, n)
        out.append(f"{n}\t{r.name}")
        for k, b in enumerate(r.sequence):
            nxt = k + 2 if k + 1 < n else 0
            out.append(f"{k + 1}\t{b}\t{k}\t{nxt}\t{int(partner[k]) + 1}\t{k + 1}")
    _write_atomic(path, "\n".join(out) + "\n" if out else "")
