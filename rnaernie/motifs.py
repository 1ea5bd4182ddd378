"""Aho–Corasick motif matching (C++) with the motif lists RNAErnie uses.

Example:
    >>> from rnaernie import MotifMatcher
    >>> hits = MotifMatcher(["ACG", "CG"]).find(["UACGU"])
    >>> hits.start.tolist(), hits.end.tolist(), hits.motif_id.tolist()
    ([1, 2], [4, 4], [0, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from . import _core

__all__ = ["DEFAULT_SOURCES", "MotifHits", "MotifMatcher"]

# The shipped lists (rnaernie/data/motifs, provenance in SOURCE.md there). The first two are the
# curated databases ("tier 0": tried first, in random order); Statistics k-mers are tier 1.
DEFAULT_SOURCES: tuple[str, ...] = ("ATtRACT", "SpliceAid", "Statistics")
_STATISTICS_SOURCES = frozenset({"Statistics"})


@dataclass(frozen=True)
class MotifHits:
    """Motif occurrences, one per entry (0-based, ``end`` exclusive, normalised coordinates)."""

    seq_index: np.ndarray  # (n,) int64
    start: np.ndarray  # (n,) int64
    end: np.ndarray  # (n,) int64
    motif_id: np.ndarray  # (n,) int32
    source: np.ndarray  # (n,) int32: index into MotifMatcher.sources

    def __len__(self) -> int:
        return int(self.seq_index.shape[0])


def _read_motif_file(name: str) -> list[str]:
    """The motifs of a shipped list, each once (the lists repeat lines; see SOURCE.md)."""
    text = resources.files("rnaernie").joinpath("data", "motifs", f"{name}.txt").read_text()
    return list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


class MotifMatcher:
    """All occurrences (overlapping included) of a motif set in a batch of sequences.

    Motifs are normalised like sequences (upper-case, ``T``→``U``), so DNA-letter lists match RNA.

    Args:
        motifs: motif strings over ACGU/T.
        sources: optional source index per motif (into ``source_names``).
        source_names: names of the sources.
        threads: worker threads (0 = all cores).
    """

    def __init__(
        self,
        motifs: Sequence[str],
        sources: Sequence[int] | None = None,
        source_names: Sequence[str] = ("custom",),
        threads: int = 0,
    ) -> None:
        self.motifs = list(motifs)
        self.source_names = tuple(source_names)
        src = (
            np.zeros(len(self.motifs), np.int32)
            if sources is None
            else np.asarray(sources, np.int32)
        )
        if src.shape != (len(self.motifs),):
            raise ValueError(f"sources has {src.size} entries for {len(self.motifs)} motifs")
        if src.size and (src.min() < 0 or src.max() >= len(self.source_names)):
            raise ValueError("sources must index into source_names")
        self.sources = src
        self.threads = threads
        self._core = _core.MotifMatcher(self.motifs)

    @classmethod
    def default(cls, sources: Sequence[str] = DEFAULT_SOURCES) -> MotifMatcher:
        """The shipped ATtRACT, SpliceAid-F and Statistics lists (15,037 distinct motifs)."""
        return _default_matcher(tuple(sources))

    @property
    def tiers(self) -> np.ndarray:
        """Per motif: 0 for database motifs, 1 for statistical k-mers (used by motif-level masking)."""
        stat = np.array([n in _STATISTICS_SOURCES for n in self.source_names], dtype=np.uint8)
        return stat[self.sources]

    @property
    def max_length(self) -> int:
        return int(self._core.max_length)

    def __len__(self) -> int:
        return len(self.motifs)

    def find(self, seqs: Sequence[str | bytes], names: Sequence[str] | None = None) -> MotifHits:
        """Every occurrence in every sequence, ordered by sequence, then end position.

        Invalid characters raise ``ValueError`` naming the sequence (``names[i]`` if given) and position;
        IUPAC codes such as ``N`` simply break matches.
        """
        if isinstance(seqs, (str, bytes)):
            raise TypeError("find expects a sequence of strings; wrap a single one in a list")
        out = self._core.find(
            seqs, threads=self.threads, names=list(names) if names is not None else None
        )
        return MotifHits(source=self.sources[out["motif_id"]], **out)


@lru_cache(maxsize=4)
def _default_matcher(sources: tuple[str, ...]) -> MotifMatcher:
    motifs: list[str] = []
    src: list[int] = []
    for i, name in enumerate(sources):
        lines = _read_motif_file(name)
        motifs += lines
        src += [i] * len(lines)
    return MotifMatcher(motifs, src, sources)
