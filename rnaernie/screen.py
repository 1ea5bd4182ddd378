"""Screening long (genomic) sequences: slide windows along both strands and run the model per window.

Coordinates are 0-based, end exclusive, on the forward strand, for both strands: the minus-strand
window ``[start, end)`` is the reverse complement of ``seq[start:end]``. Windows start at
``0, stride, 2·stride, …``; when the last one does not reach the end, one more window is aligned to
the sequence end (as the tokenizer's windows); a sequence shorter than ``window`` is one window.

Example:
    >>> window_spans(10, window=4, stride=3)
    [(0, 4), (3, 7), (6, 10)]
    >>> window_spans(11, window=4, stride=3)
    [(0, 4), (3, 7), (6, 10), (7, 11)]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from .api import MAX_NT, RnaErnie
from .predict import normalise, reverse_complement

__all__ = ["TASKS", "ScreenRow", "Window", "screen", "window_spans", "windows"]

TASKS = ("type", "structure", "embed")


@dataclass(frozen=True)
class Window:
    id: str
    strand: str  # "+" or "-"
    start: int
    end: int
    seq: str  # as read 5'→3' on its strand


@dataclass(frozen=True)
class ScreenRow:
    """One window's predictions (fields of tasks not run are None)."""

    id: str
    strand: str
    start: int
    end: int
    rna_type: str | None = None
    type_probability: float | None = None
    dot_bracket: str | None = None
    num_pairs: int | None = None
    embedding: np.ndarray | None = None

    COLUMNS = (("id", "str"), ("strand", "str"), ("start", "int"), ("end", "int"),
               ("rna_type", "str"), ("type_probability", "float"), ("dot_bracket", "str"),
               ("num_pairs", "int"))  # fmt: skip

    def as_row(self) -> tuple[Any, ...]:
        return (self.id, self.strand, self.start, self.end, self.rna_type, self.type_probability,
                self.dot_bracket, self.num_pairs)  # fmt: skip


def window_spans(length: int, window: int, stride: int) -> list[tuple[int, int]]:
    """``[start, end)`` spans covering ``[0, length)`` (see the module docstring)."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got {window} and {stride}")
    if stride > window:
        raise ValueError(f"a stride ({stride}) larger than the window ({window}) leaves gaps")
    if length <= window:
        return [(0, length)] if length > 0 else []
    spans = [(s, s + window) for s in range(0, length - window + 1, stride)]
    if spans[-1][1] < length:
        spans.append((length - window, length))
    return spans


def windows(
    records: Iterable[Any], window: int, stride: int, strands: str = "both"
) -> Iterator[Window]:
    """Windows of each record (``.id``, ``.seq``), forward then reverse strand at each position."""
    if strands not in ("both", "+", "-"):
        raise ValueError(f"strands must be 'both', '+' or '-', got {strands!r}")
    for rec in records:
        seq = normalise(rec.seq)
        for a, b in window_spans(len(seq), window, stride):
            if strands in ("both", "+"):
                yield Window(rec.id, "+", a, b, seq[a:b])
            if strands in ("both", "-"):
                yield Window(rec.id, "-", a, b, reverse_complement(seq[a:b]))


def screen(
    model: RnaErnie,
    wins: Iterable[Window],
    tasks: Sequence[str] = ("type", "structure"),
    *,
    batch_windows: int = 256,
    min_score: float | None = None,
    batch_tokens: int = 8192,
    threshold: float | None = None,
    decoder: str = "nussinov",
) -> Iterator[list[ScreenRow]]:
    """Run ``tasks`` on windows in batches of ``batch_windows``; yields the rows of each batch.

    ``min_score`` keeps windows whose top RNA-type probability is at least that (needs ``type``).
    """
    tasks = tuple(tasks)
    if isinstance(batch_windows, bool) or not isinstance(batch_windows, int) or batch_windows < 1:
        raise ValueError(f"batch_windows must be a positive int, got {batch_windows!r}")
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        raise ValueError(f"unknown task(s) {bad or tasks}; choose from {', '.join(TASKS)}")
    if min_score is not None and "type" not in tasks:
        raise ValueError("--min-score filters on the RNA-type probability: add 'type' to the tasks")
    it = iter(wins)
    while batch := list(islice(it, batch_windows)):
        names = [f"{w.id}:{w.strand}:{w.start}-{w.end}" for w in batch]
        seqs = [w.seq for w in batch]
        keep = np.ones(len(batch), dtype=bool)
        types = folds = embs = None
        if "type" in tasks:
            types = model.predict_type(seqs, top_k=1, batch_tokens=batch_tokens, ids=names)
            if min_score is not None:
                keep = np.array([t.probability >= min_score for t in types])
        sel = np.flatnonzero(keep).tolist()
        if "structure" in tasks and sel:
            if max(len(seqs[i]) for i in sel) > MAX_NT:
                raise ValueError(f"--tasks structure needs --window <= {MAX_NT}")
            res = model.fold([seqs[i] for i in sel], threshold=threshold, decoder=decoder,
                             batch_tokens=batch_tokens, ids=[names[i] for i in sel])  # fmt: skip
            folds = dict(zip(sel, res))
        if "embed" in tasks and sel:
            e = model.embed(
                [seqs[i] for i in sel], batch_tokens=batch_tokens, ids=[names[i] for i in sel]
            )
            embs = dict(zip(sel, e))
        rows = []
        for i in sel:
            w = batch[i]
            t = types[i] if types is not None else None
            f = folds[i] if folds is not None else None
            rows.append(ScreenRow(
                w.id, w.strand, w.start, w.end,
                t.type if t else None, t.probability if t else None,
                f.dot_bracket if f else None, f.num_pairs if f else None,
                embs[i] if embs is not None else None,
            ))  # fmt: skip
        yield rows
