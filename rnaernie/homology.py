"""Homology search of genome windows against a library of family members, as BLASTN does it:
exact k-mer seeds, X-drop ungapped extension, and Smith–Waterman–Gotoh local alignment of the
window to the best-extending references (the C++ ``_core.HomologyIndex``; the plain-Python
reference is :mod:`rnaernie._homology_ref`).

The screening detector (:mod:`rnaernie.screen`) keeps its library next to its weights
(``library.fasta.gz``: one record per family member, named by its source (an nRC id or an Rfam
accession and seed name), the family as the first word of the description, as in nRC) and turns
the best alignment score of each family into bits (:func:`bits_per_score`: Karlin–Altschul λ for
uniform composition); what those bits mean in
false hits per Mb comes from the detector's calibration on shuffled sequence, not from theory.

Example:
    >>> lib = Library(["GGGAAACCCUUUGGGAAACCCAAAGGG"], [0], ["toy"])
    >>> a = lib.align("UUUUUGGGAAACCCUUUGGGAAACCCAAAGGGUUUUU", [0], 37)
    >>> int(a.scores[0, 0]), a.envelope[0].tolist(), lib.names[a.ref[0]]
    (27, [5, 32], 'm0')
"""

from __future__ import annotations

import gzip
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

from . import _core
from .io import read_fasta, write_atomic
from .tokenizer import normalise

__all__ = ["HomologySettings", "Library", "WindowAlignments", "bits_per_score", "dust_mask"]


@dataclass(frozen=True)
class HomologySettings:
    """Seeds of ``k`` nt, or of the spaced ``seed`` pattern when given ('1' where the bases must
    match, '0' where they need not, as PatternHunter has it; ``k`` = its ones): seeds found more
    than ``max_occurrences`` times in the library are not seeds; a seed is extended without gaps
    until its score falls ``xdrop`` below its best; the ``max_candidates`` references whose
    extension scores at least ``ungapped`` are aligned with gaps (match/mismatch/gap_open/
    gap_extend: a gap of g nt costs gap_open + g·gap_extend) to the reference around that
    diagonal, ``pad`` nt each side. Low-complexity stretches (simple
    repeats: DUST score above ``dust`` over ``dust_window`` nt, :func:`dust_mask`) of the library
    and of the searched sequence give no seeds, as BLASTN's DUST filter has it; ``dust`` 0: off."""

    k: int = 11
    seed: str = ""
    max_occurrences: int = 2000
    # BLASTN's 1/−1 scheme (for ~75 % identity), its gate and X-drop: chosen on validation over
    # the 2/−3 scheme (scripts/screen_fusion.py, benchmarks/results/screen_fusion_valid.json)
    match: int = 1
    mismatch: int = -1
    gap_open: int = 2
    gap_extend: int = 1
    ungapped: int = 18
    xdrop: int = 12
    max_candidates: int = 4
    pad: int = 32
    dust_window: int = 64
    dust: float = 2.5

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            kinds, what = {"dust": ((int, float), "a number"), "seed": (str, "a string")}.get(
                f.name, (int, "an int"))  # fmt: skip
            if isinstance(v, bool) or not isinstance(v, kinds):
                raise ValueError(f"homology setting {f.name} must be {what}, got {v!r}")
        if not 4 <= self.k <= 12:
            raise ValueError(f"homology seed length k must be in [4, 12], got {self.k}")
        p = self.seed
        if p and (set(p) - {"0", "1"} or p[0] != "1" or p[-1] != "1" or len(p) > 32):
            raise ValueError("homology setting seed must be '1's and '0's that start and end with "
                             f"'1', at most 32 long, got {p!r}")  # fmt: skip
        if p and p.count("1") != self.k:
            raise ValueError(f"homology seed {p!r} has {p.count('1')} ones but k is {self.k}")
        if self.match <= 0 or self.mismatch >= 0:
            raise ValueError("homology scores need match > 0 > mismatch, got "
                             f"{self.match} and {self.mismatch}")  # fmt: skip
        for name in ("max_occurrences", "max_candidates"):
            if getattr(self, name) < 1:
                raise ValueError(f"homology setting {name} must be >= 1")
        for name in ("gap_open", "gap_extend", "ungapped", "xdrop", "pad", "dust"):
            if getattr(self, name) < 0:
                raise ValueError(f"homology setting {name} must be >= 0")
        if self.dust_window < 4:
            raise ValueError("homology setting dust_window must be >= 4")

    @property
    def pattern(self) -> str:
        """The seed's pattern: ``seed``, or ``k`` ones."""
        return self.seed or "1" * self.k

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "homology settings") -> HomologySettings:
        known = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or set(d) - known:
            raise ValueError(f"{where}: unknown homology settings {sorted(set(d) - known)}"
                             if isinstance(d, dict) else f"{where}: homology settings must be an object")  # fmt: skip
        try:
            return cls(**d)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None


def bits_per_score(match: int, mismatch: int) -> float:
    """Bits per unit of alignment score: λ / ln 2, where λ solves
    ¼·e^{λ·match} + ¾·e^{λ·mismatch} = 1 (Karlin–Altschul, uniform base composition)."""
    if match <= 0 or mismatch >= 0:
        raise ValueError(f"need match > 0 > mismatch, got {match} and {mismatch}")
    lo, hi = 1e-9, 50.0 / match
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.25 * math.exp(match * mid) + 0.75 * math.exp(mismatch * mid) > 1.0:
            hi = mid
        else:
            lo = mid
    return lo / math.log(2.0)


def dust_mask(seq: str, window: int = 64, threshold: float = 2.5) -> np.ndarray:
    """Low-complexity positions of ``seq`` (bool array): every position of a ``window``-nt
    stretch whose triplet score Σ c_t(c_t − 1)/2 / (l − 1) (DUST, Morgulis et al. 2006; c_t the
    count of triplet t among the stretch's l triplets) exceeds ``threshold``. A random sequence
    scores about 0.5, a dinucleotide repeat about 15. ``threshold`` 0: nothing is masked."""
    return _core.dust_mask(normalise(seq), window, float(threshold))


@dataclass
class WindowAlignments:
    """Per window: ``scores`` (N, families) the best alignment score of each family's references
    (0: none aligned); ``family`` (N,) the family of the best alignment (−1: none); ``envelope``
    (N, 2) window coordinates of the best alignment's query part extended by the reference's
    unaligned ends (where the whole member would lie; it may reach beyond the window);
    ``query`` (N, 2) the aligned part itself; ``ref`` (N,) the best alignment's library member
    (−1: none); ``candidates`` (N,) references aligned with gaps."""

    scores: np.ndarray
    family: np.ndarray
    envelope: np.ndarray
    query: np.ndarray
    ref: np.ndarray
    candidates: np.ndarray

    @property
    def aligned(self) -> np.ndarray:
        return self.family >= 0


class Library:
    """Family members (``seqs``, ``families`` indices into ``labels``, ``names``: where each comes
    from, default ``m0``, ``m1``, …; no whitespace) indexed for :meth:`align`."""

    def __init__(self, seqs: Sequence[str], families: Sequence[int], labels: Sequence[str],
                 settings: HomologySettings | None = None,
                 names: Sequence[str] | None = None) -> None:  # fmt: skip
        self.seqs = [normalise(s) for s in seqs]
        self.names = [f"m{k}" for k in range(len(self.seqs))] if names is None else list(names)
        if len(self.names) != len(self.seqs):
            raise ValueError(f"{len(self.seqs)} library sequences but {len(self.names)} names")
        bad = [x for x in self.names if not x or x != "".join(str(x).split())]
        if bad:
            raise ValueError(f"library member names must be non-empty without whitespace, got "
                             f"{bad[0]!r}")  # fmt: skip
        self.families = np.asarray(families, dtype=np.int64)
        self.labels = [str(x) for x in labels]
        self.settings = settings or HomologySettings()
        if len(self.families) != len(self.seqs):
            raise ValueError(
                f"{len(self.seqs)} library sequences but {len(self.families)} families"
            )
        if len(self.families) and not (
            0 <= self.families.min() and self.families.max() < len(self.labels)
        ):
            raise ValueError("library family indices must lie in [0, number of labels)")
        s = self.settings
        self.index = _core.HomologyIndex(self.seqs, self.families.astype(np.int32).tolist(), s.pattern,
                                         s.max_occurrences, s.dust_window, float(s.dust))  # fmt: skip
        self.lengths = np.array([len(x) for x in self.seqs], dtype=np.int64)
        self.bits_per_score = bits_per_score(s.match, s.mismatch)

    @classmethod
    def read(cls, path: str | os.PathLike[str], labels: Sequence[str],
             settings: HomologySettings | None = None) -> Library:  # fmt: skip
        """A library FASTA (plain or gzip): each record's id is the member's name, the first word
        of its description its family (one of ``labels``)."""
        index = {x: i for i, x in enumerate(labels)}
        seqs, fams, names = [], [], []
        for r in read_fasta(path, allow_duplicates=True):
            fam = r.description.split(" ")[0] if r.description else ""
            if fam not in index:
                raise ValueError(f"{path}, line {r.line}: record '{r.id}' has family {fam!r}, "
                                 f"not one of the detector's {list(labels)}")  # fmt: skip
            seqs.append(r.seq)
            fams.append(index[fam])
            names.append(r.id)
        if not seqs:
            raise ValueError(f"{path}: the homology library is empty")
        return cls(seqs, fams, labels, settings, names)

    def subset(self, families: Sequence[int]) -> Library:
        """The members of ``families`` (indices into ``labels``) alone, indexed anew."""
        keep = np.flatnonzero(np.isin(self.families, np.asarray(families, dtype=np.int64)))
        return Library([self.seqs[i] for i in keep], self.families[keep], self.labels,
                       self.settings, [self.names[i] for i in keep])  # fmt: skip

    def write(self, path: str | os.PathLike[str]) -> None:
        """gzip FASTA, ``>name family`` (the same bytes for the same library; written to
        ``path.tmp`` and renamed)."""
        text = "".join(f">{n} {self.labels[y]}\n{s}\n"
                       for n, s, y in zip(self.names, self.seqs, self.families))  # fmt: skip
        write_atomic(path, gzip.compress(text.encode(), compresslevel=9, mtime=0))

    def align(self, seq: str, starts: Sequence[int] | np.ndarray, width: int,
              threads: int = 0) -> WindowAlignments:  # fmt: skip
        """Windows ``seq[s : s + width]`` (a normalised sequence) searched one at a time."""
        return self.align_many([(seq, starts, width)], threads)[0]

    def align_many(self, jobs: Sequence[tuple], threads: int = 0) -> list[WindowAlignments]:
        """:meth:`align` of each ``(seq, starts, width[, strand[, masked]])`` in one call.
        ``strand`` "-": the windows lie on the reverse complement of ``seq`` (``starts`` on it,
        5'→3'), searched as :meth:`align` of that reverse complement would. ``masked``: (k, 2)
        spans ``[start, end)`` of ``seq`` (plus-strand coordinates, whatever the strand) that give
        no seeds, as low-complexity stretches give none (a soft-masked genome's lower-case
        repeats); extensions and alignments still run through them. Jobs that share a sequence
        (the same object) share its codes and masks, and must give the same ``masked``; the
        sequences are shared out to the threads (a screen's many short records, each too small to
        share out)."""
        s = self.settings
        seqs: list[str] = []
        masks: list[np.ndarray | None] = []
        slot: dict[int, int] = {}
        seq_of, minus = [], []
        for j in jobs:
            strand = j[3] if len(j) > 3 else "+"
            if strand not in ("+", "-"):
                raise ValueError(f"a job's strand must be '+' or '-', got {strand!r}")
            mask = j[4] if len(j) > 4 else None
            k = slot.setdefault(id(j[0]), len(seqs))
            if k == len(seqs):
                seqs.append(j[0])
                masks.append(mask)
            elif masks[k] is not mask:
                raise ValueError("jobs on one sequence must give the same masked spans")
            seq_of.append(k)
            minus.append(strand == "-")
        empty = np.zeros((0, 2), dtype=np.int64)
        rs = self.index.align_batch(
            seqs, seq_of, minus, [np.asarray(j[1], dtype=np.int64) for j in jobs],
            [int(j[2]) for j in jobs], match=s.match, mismatch=s.mismatch, gap_open=s.gap_open,
            gap_extend=s.gap_extend, ungapped=s.ungapped, xdrop=s.xdrop,
            max_candidates=s.max_candidates, pad=s.pad, threads=threads,
            masked=[] if all(m is None for m in masks) else
                   [empty if m is None else np.asarray(m, dtype=np.int64).reshape(-1, 2) for m in masks],
        )  # fmt: skip
        out = []
        family_of = np.append(self.families, -1)  # ref -1 (none): family -1, length 0
        length_of = np.append(self.lengths, 0)
        for r in rs:
            best = r["best"].astype(np.int64)
            ref = best[:, 1]
            rlen = length_of[ref]
            envelope = np.stack([best[:, 2] - best[:, 4], best[:, 3] + rlen - best[:, 5]], 1)
            # a column per label (the index counts families up to its members' highest)
            scores = np.zeros((len(best), len(self.labels)))
            scores[:, : r["family_score"].shape[1]] = r["family_score"]
            out.append(WindowAlignments(scores, family_of[ref], envelope, best[:, 2:4], ref,
                                        r["candidates"]))  # fmt: skip
        return out
