"""Screening genomes for RNA genes: windows on both strands, homology search against a library
of family members, a scanning CNN, the detector head, scores calibrated to E-values, loci.

The detector (``heads/screen``, trained by ``rnaernie finetune screen``; see
:mod:`rnaernie.training.screen`) scores windows for the families of its training set against
background. The pipeline, as Infernal's ``cmsearch`` and BLASTN have it:

1. **Windows** of ``window`` nt every ``stride`` nt on both strands (:func:`window_spans`); a long
   record is cut into :class:`Chunk` s of whole windows, so that ranks can share one chromosome.
2. **Filter**: for the ``fused`` and ``homology`` scorers, exact k-mer seeds against the
   detector's library and their ungapped extension (:mod:`rnaernie.homology`); a window without a
   good enough extension cannot be a hit. For ``cnn`` and ``model``, the scanning CNN
   (:class:`rnaernie.model.motif_cnn.MotifCNN`) runs once over each strand of a chunk; windows
   below the head's threshold (chosen to keep 99 % of validation positives) stop there.
3. **Score**, in bits, by the detector's scorer: ``fused`` (the default when the detector has a
   library: each family's gapped alignment score in bits plus ``cnn_weight`` × the CNN's log-odds
   on the window), ``homology`` (the alignment alone), ``cnn`` (the CNN's log-odds), ``model``
   (the language-model head's, on the windows the CNN lets through) or ``kmer`` (the k-mer
   classifier on every window: the baseline).
4. **Loci**: a homology hit spans its aligned stretch extended by the unaligned ends of its
   reference (where the whole member would lie), other hits their window; overlapping hits of one
   family and strand merge into one locus (best score, hit count, and the library member the best
   hit aligned to: the evidence, an nRC id or an Rfam accession with its seed name); the locus
   spans the hits' intersection, or their union when that is shorter than the stride (a gene
   longer than the window). Of overlapping loci on one strand the best scoring one is kept
   (families compete, as Rfam's clans do).
5. **E-value** = the rate of background windows scoring at least as high, per Mb searched (from
   the scorer's :class:`Calibration`, measured on shuffled transcripts that training never saw; an
   exponential tail beyond the measured range) × the Mb searched (both strands count). A locus
   holds at least one window of its score, so this errs on the safe side.

Coordinates are 0-based, end exclusive, on the forward strand for both strands: the minus-strand
window ``[start, end)`` is the reverse complement of ``seq[start:end]``. Windows start at
``0, stride, 2·stride, …``; when the last one does not reach the end, one more window is aligned
to the sequence end; a sequence shorter than ``window`` is one window.

Example:
    >>> window_spans(10, window=4, stride=3)
    [(0, 4), (3, 7), (6, 10)]
    >>> window_spans(11, window=4, stride=3)
    [(0, 4), (3, 7), (6, 10), (7, 11)]
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import torch

from .homology import HomologySettings, Library, WindowAlignments
from .io import Invalid, Record, write_atomic
from .io.runner import batches
from .io.writers import LineWriter, TableWriter
from .kmer import KmerClassifier, shuffled_genome
from .model import RnaErnieForSequenceClassification
from .model.motif_cnn import MotifCNN, bucket, one_hot
from .predict import classifier_probs
from .tokenizer import Tokenizer, normalise, reverse_complement

__all__ = [
    "FORMATS",
    "HIT_COLUMNS",
    "LOCUS_COLUMNS",
    "SCORERS",
    "Calibration",
    "Chunk",
    "Detector",
    "Locus",
    "WindowHit",
    "calibrate",
    "chunks",
    "cnn_log_odds",
    "detect",
    "homology_log_odds",
    "loci",
    "locus_sequences",
    "searched_families",
    "searched_megabases",
    "update_screen_config",
    "window_spans",
    "write_loci",
]

CHUNK_NT = 100_000  # nt of window starts per chunk (a 1-Mb chunk runs the CNN 1.6x slower per nt)
# chunks scanned together (Detector.scan_many; io.runner.batches): up to SCAN_CHUNKS of them, until
# they hold SCAN_NT nt. Each group costs a turn of the search's threads and torch's (milliseconds
# while torch's idle threads spin): 4-Mb groups screen 5 Mb 1.3x faster than 1.6-Mb ones, and
# mouse transcripts 1.6x faster than groups of 16 (hand timings)
SCAN_CHUNKS = 4096
SCAN_NT = 4_000_000
CNN_LENGTH_STEP = 4096  # the CNN scans a chunk padded to a multiple of this
CNN_ROWS = 128  # windows per CNN batch of the fused scorer (bfloat16 on a 2-core CPU: 25 us per
# window, against 40 at 64 rows and 140 at 4, the batch of one chunk of a short record)
MAX_RATE = 100.0  # background windows per Mb at the calibration floor (lower scores: no hits)
MIN_FAMILY_WINDOWS = 200  # background windows a family needs for a curve of its own
KMER_BLOCK = 4096  # windows per k-mer spectrum matrix (4096 × 1364 floats: 22 MB)
FORMATS = (".tsv", ".csv", ".parquet", ".bed", ".gff3")
LN2 = math.log(2.0)
HIT_COLUMNS = (("id", "str"), ("strand", "str"), ("start", "int"), ("end", "int"),
               ("family", "str"), ("score", "float"), ("probability", "float"),
               ("member", "str"))  # fmt: skip
LOCUS_COLUMNS = (("id", "str"), ("start", "int"), ("end", "int"), ("strand", "str"),
                 ("family", "str"), ("score", "float"), ("evalue", "float"),
                 ("probability", "float"), ("windows", "int"), ("member", "str"))  # fmt: skip
# Sequence Ontology types of the nRC families for GFF3 (anything else: ncRNA_gene)
SO_TYPES = {"5S_rRNA": "rRNA_5S", "5_8S_rRNA": "rRNA_5_8S", "tRNA": "tRNA", "miRNA": "pre_miRNA",
            "CD-box": "snoRNA", "HACA-box": "snoRNA", "scaRNA": "scaRNA", "ribozyme": "ribozyme",
            "Intron_gpI": "group_I_intron", "Intron_gpII": "group_II_intron",
            "riboswitch": "riboswitch", "IRES": "IRES", "leader": "ncRNA_gene"}  # fmt: skip


def _positive_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool) and 0 < x < math.inf


def _sig(x: float) -> float:
    """``x`` to 6 significant digits: what a table holds, so that a sharded run that reads its
    window hits back from part files finds the very numbers a single process keeps in memory."""
    return float(f"{float(x):.6g}")


def window_spans(length: int, window: int, stride: int) -> list[tuple[int, int]]:
    """``[start, end)`` spans covering ``[0, length)`` (see the module docstring)."""
    return [(a, b) for a, b in span_array(length, window, stride).tolist()]


def span_array(length: int, window: int, stride: int, first: int = 0,
               stop: int | None = None) -> np.ndarray:  # fmt: skip
    """Windows ``first`` to ``stop`` − 1 of :func:`window_spans`, as an (n, 2) int64 array (a
    chromosome's list of tuples would outweigh its sequence)."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got {window} and {stride}")
    if stride > window:
        raise ValueError(f"a stride ({stride}) larger than the window ({window}) leaves gaps")
    if length <= window:
        whole = np.array([[0, length]] if length > 0 else [], dtype=np.int64).reshape(-1, 2)
        return whole[first:stop]
    regular = (length - window) // stride + 1  # then a last window ending at the record's end
    total = regular + (1 if (regular - 1) * stride + window < length else 0)
    idx = np.arange(first, total if stop is None else min(stop, total), dtype=np.int64)
    starts = np.where(idx < regular, idx * stride, length - window)
    return np.stack([starts, starts + window], 1)


# ----------------------------------------------------------------------------- chunks


@dataclass(frozen=True, eq=False)
class Chunk:
    """The windows ``spans`` ((n, 2) int64 array, record coordinates) of record ``id``; ``seq`` is
    the record from ``offset`` to the last window's end. ``length``: the whole record's length;
    ``window``: the scan's window (no span is longer; 0: the longest span); ``masked``: (k, 2)
    spans of ``seq`` (chunk coordinates) that give the homology search no seeds (the record's
    lower case, when it is soft-masked), or None."""

    id: str
    offset: int
    seq: str
    spans: np.ndarray
    length: int
    window: int = 0
    masked: np.ndarray | None = None

    @property
    def width(self) -> int:
        """The longest a window of the scan may be: ``window``, or the longest span."""
        return self.window or int((self.spans[:, 1] - self.spans[:, 0]).max(initial=1))


def chunks(
    records: Iterable[Any], window: int, stride: int, chunk_nt: int = CHUNK_NT,
    soft_masked: bool = False,
) -> Iterator[Chunk | Invalid]:  # fmt: skip
    """Cut each record (``.id``, ``.seq``) into chunks of about ``chunk_nt`` nt of window starts
    (whole windows; a chunk's sequence overlaps the next one's by ``window`` − ``stride``).
    ``soft_masked``: each chunk's lower-case stretches become its ``masked`` spans.
    :class:`rnaernie.io.Invalid` items pass through."""
    per = max(1, chunk_nt // stride)
    for rec in records:
        if isinstance(rec, Invalid):
            yield rec
            continue
        seq = normalise(rec.seq)
        raw = rec.seq  # the letters of seq, case kept (whitespace is not a letter)
        if soft_masked and len(raw) != len(seq):
            raw = "".join(raw.split())
        first = 0
        while len(part := span_array(len(seq), window, stride, first, first + per)):
            a, b = int(part[0, 0]), int(part[-1, 1])
            masked = lowercase_spans(raw[a:b]) if soft_masked else None
            yield Chunk(rec.id, a, seq[a:b], part, len(seq), window, masked)
            first += per


def lowercase_spans(seq: str) -> np.ndarray:
    """(k, 2) int64 ``[start, end)`` runs of lower-case letters in ``seq`` (a soft-masked genome's
    repeats)."""
    b = np.frombuffer(seq.encode("latin-1", "replace"), dtype=np.uint8)
    low = np.zeros(len(b) + 2, dtype=np.int8)
    low[1:-1] = (b >= ord("a")) & (b <= ord("z"))
    return np.flatnonzero(np.diff(low)).astype(np.int64).reshape(-1, 2)


# ----------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    """Background windows per Mb searched scoring at least a score (bits): the measured curve
    (``scores`` descending, ``rates`` per Mb) and, beyond ``tail_start``, an exponential tail
    ``tail_rate · exp(−tail_lambda · (s − tail_start))``. ``megabases``: searched to measure it
    (both strands counted). A locus holds at least one window of its score, so as a rate of loci
    this errs on the safe side. Scores below ``floor`` are never reported."""

    scores: tuple[float, ...]
    rates: tuple[float, ...]
    tail_start: float
    tail_rate: float
    tail_lambda: float
    megabases: float
    floor: float
    by_family: dict[str, Calibration] = field(default_factory=dict)

    @classmethod
    def fit(cls, scores: Sequence[float], megabases: float, tail: int = 100,
            max_rate: float = MAX_RATE, families: Sequence[str] | None = None,
            min_family: int = MIN_FAMILY_WINDOWS) -> Calibration:  # fmt: skip
        """From the scores of background windows in ``megabases`` Mb searched; the tail is fitted
        (maximum likelihood) to the top ``tail`` of them. The floor is the score that
        ``max_rate`` background windows per Mb reach (or the lowest score, if fewer).
        ``families`` (each window's best family): a curve per family with at least
        ``min_family`` windows too."""
        by_family = {}
        if families is not None:
            fam = np.asarray(families)
            sc = np.asarray(scores, dtype=np.float64)
            for f in sorted(set(fam.tolist())):
                own = sc[fam == f]
                if np.isfinite(own).sum() >= min_family:
                    by_family[str(f)] = cls.fit(own, megabases, tail, max_rate)
        s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
        s = s[np.isfinite(s)]
        if len(s) < 10:
            raise ValueError(f"calibration needs at least 10 background windows, got {len(s)}: "
                             "calibrate on more sequence")  # fmt: skip
        s = s[: max(10, int(min(max_rate * megabases, len(s))))]
        n_tail = min(tail, len(s) // 2)
        s0 = float(s[n_tail - 1])
        excess = s[:n_tail] - s0
        lam = 1.0 / max(float(excess.mean()), 1e-6)
        keep = np.unique(np.linspace(0, len(s) - 1, min(len(s), 200)).round().astype(int))
        rates = (keep + 1) / megabases
        return cls(tuple(float(x) for x in s[keep]), tuple(float(x) for x in rates), s0,
                   n_tail / megabases, lam, float(megabases), float(s[-1]), by_family)  # fmt: skip

    def rate(self, score: np.ndarray | float, family: str | None = None) -> np.ndarray:
        """Expected background windows (an upper bound on loci) per Mb searched scoring at least
        ``score`` (whose best family is ``family``, when it has its own curve)."""
        if family is not None and family in self.by_family:
            return self.by_family[family].rate(score)
        s = np.asarray(score, dtype=np.float64)
        xs, ys = np.asarray(self.scores)[::-1], np.asarray(self.rates)[::-1]  # ascending score
        measured = np.interp(s, xs, ys, left=ys[0], right=ys[-1])
        tail = self.tail_rate * np.exp(-self.tail_lambda * (s - self.tail_start))
        return np.where(s >= self.tail_start, np.minimum(tail, self.tail_rate), measured)

    def to_dict(self) -> dict:
        d = {k: list(getattr(self, k)) if isinstance(getattr(self, k), tuple) else getattr(self, k)
             for k in ("scores", "rates", "tail_start", "tail_rate", "tail_lambda", "megabases",
                       "floor")}  # fmt: skip
        if self.by_family:
            d["by_family"] = {f: c.to_dict() for f, c in sorted(self.by_family.items())}
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "the detector's config") -> Calibration:
        try:
            d = dict(d)
            fams = d.pop("by_family", {})
            by_family = {str(f): cls.from_dict(c, f"{where} (family {f})") for f, c in fams.items()}
            c = cls(**{k: tuple(map(float, v)) if isinstance(v, list) else float(v)
                       for k, v in d.items()}, by_family=by_family)  # fmt: skip
        except (TypeError, ValueError, AttributeError) as e:
            if isinstance(e, ValueError) and str(e).startswith(where):
                raise
            raise ValueError(f"{where}: bad calibration ({e})") from None
        if len(c.scores) != len(c.rates) or not c.scores or c.megabases <= 0:
            raise ValueError(f"{where}: bad calibration (empty or mismatched curve)")
        return c


# ----------------------------------------------------------------------------- the detector


@dataclass(frozen=True)
class WindowHit:
    """A window that passed the filter and scored at least the calibration floor; ``start``/``end``
    are the window's, or for the homology scorers the aligned member's extent, and ``member``
    the name of that library member ("" for the other scorers)."""

    id: str
    strand: str
    start: int
    end: int
    family: str
    score: float  # bits: log2 P(family) / P(background)
    probability: float  # P(family)
    member: str = ""

    def as_row(self) -> tuple:
        return (self.id, self.strand, self.start, self.end, self.family, self.score,
                self.probability, self.member)  # fmt: skip


@dataclass(frozen=True)
class Locus:
    """A predicted RNA gene: overlapping hit windows of one family and strand merged."""

    id: str
    start: int
    end: int
    strand: str
    family: str
    score: float  # bits, the best window's
    evalue: float
    probability: float  # the best window's P(family)
    windows: int
    member: str = ""  # the library member the best window aligned to (homology scorers)
    extras: dict = field(default_factory=dict, compare=False)  # per-locus task results

    def as_row(self) -> tuple:
        return (self.id, self.start, self.end, self.strand, self.family, self.score,
                self.evalue, self.probability, self.windows, self.member)  # fmt: skip


SCORERS = ("fused", "homology", "cnn", "model", "kmer")
HOMOLOGY_SCORERS = ("fused", "homology")


def log_odds(z: np.ndarray, probs: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(best family index, its log-odds in bits against background) from (N, C) logits (or
    probabilities, ``probs=True``) whose last column is background."""
    z = np.log(np.clip(np.asarray(z, dtype=np.float64), 1e-30, None)) if probs else np.asarray(z)
    best = z[:, :-1].argmax(1)
    return best, (z[np.arange(len(z)), best] - z[:, -1]) / LN2


def searched_families(families: Sequence[str], chosen: Sequence[str] | str | None) -> np.ndarray:
    """Which of a detector's ``families`` a search covers (bool array): ``chosen`` (names as
    ``classify`` spells them, a list or one comma-separated string), or all of them."""
    if chosen is None:
        return np.ones(len(families), dtype=bool)
    names = [x.strip() for x in chosen.split(",")] if isinstance(chosen, str) else list(chosen)
    names = [x for x in names if x]
    bad = sorted({x for x in names if x not in families})
    if bad or not names:
        raise ValueError(f"families: {'unknown ' + ', '.join(map(repr, bad)) if bad else 'none given'}; "
                         f"the detector's are {', '.join(families)}")  # fmt: skip
    return np.array([f in names for f in families])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


class Detector:
    """The screening detector of a head directory (``model.safetensors`` and ``config.json`` with
    ``extra.screen``: the head; ``cnn.safetensors``: the scanning CNN; ``kmer_logreg.safetensors``:
    the k-mer classifier; ``library.fasta.gz``: the homology library, its settings in
    ``extra.screen.homology``); :meth:`from_model` takes a model's ``heads/screen``.

    ``scorer`` (default: the head's, ``extra.screen.scorer``): ``"fused"`` scores the windows
    that align to the library by the alignment's bits plus the CNN's log-odds; ``"homology"`` by
    the alignment alone; ``"cnn"`` every window by the CNN's log-odds; ``"model"`` by the head's,
    on the windows whose CNN log-odds pass the filter threshold; ``"kmer"``: the k-mer classifier
    on every window (the baseline detector). Each scorer has its own calibration.

    ``families`` (default: all of the detector's) restricts the search to those families, as
    ``cmsearch`` with their models would: only their library members are searched and only they
    compete for a window (each family's E-values come from its own calibration curve)."""

    def __init__(self, path: str | Path, *, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, int8: bool = False,
                 scorer: str | None = None,
                 families: Sequence[str] | str | None = None) -> None:  # fmt: skip
        if scorer is not None and scorer not in SCORERS:
            raise ValueError(f"scorer must be one of {', '.join(SCORERS)}, got {scorer!r}")
        self.path = Path(path)
        if not (self.path / "model.safetensors").is_file():
            raise ValueError(f"no screening detector at {self.path} (expected model.safetensors; "
                             "train one with `rnaernie finetune screen`)")  # fmt: skip
        self.model = (
            RnaErnieForSequenceClassification.from_pretrained(
                self.path, int8=int8, hidden_dropout=0.0, attention_dropout=0.0
            )
            .to(device, dtype)
            .eval()
        )
        extra = self.model.config.extra
        where = str(self.path / "config.json")
        try:
            cfg = extra["screen"]
            self.labels = [str(x) for x in extra["labels"]]
            self.window, self.stride = int(cfg["window"]), int(cfg["stride"])
            self.threshold = float(cfg["filter"]["threshold"])
            self.scorer = str(scorer or cfg.get("scorer", "cnn"))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: not a screening detector ({e!r} missing or bad)") from None
        if self.labels[-1] != cfg.get("background", "background"):
            raise ValueError(f"{where}: the last label must be the background class")
        if self.scorer not in SCORERS:
            raise ValueError(f"{where}: unknown scorer {self.scorer!r}")
        self.families = self.labels[:-1]
        self.searched = searched_families(self.families, families)
        key = calibration_key(self.scorer)
        self.calibration = Calibration.from_dict(cfg[key], where) if key in cfg else None
        self.kmer = KmerClassifier.load(self.path)
        # the CNN runs in the detector's dtype where that is fast: bfloat16 (on a CPU with
        # bfloat16 units 4-6x float32's speed), or any dtype on a GPU. Against the float32
        # scores the calibration was measured on, bfloat16 moves a window's score by 0.06 bits
        # on average (99 % within 0.16)
        fast = dtype == torch.bfloat16 or torch.device(device).type != "cpu"
        cnn_dtype = dtype if fast else torch.float32
        self.cnn = MotifCNN.load(self.path).folded().to(device, cnn_dtype)
        for name, labels in (("k-mer classifier", self.kmer.labels), ("CNN", self.cnn.labels)):
            if labels != self.labels:
                raise ValueError(f"{self.path}: the {name}'s labels {labels} are not the "
                                 f"detector's {self.labels}")  # fmt: skip
        self.homology: Library | None = None
        self.cnn_weight = 1.0
        if "homology" in cfg:
            try:
                h = cfg["homology"]
                settings = HomologySettings.from_dict(h["settings"], where)
                self.cnn_weight = float(h["cnn_weight"])
                library = self.path / str(h["library"])
            except (KeyError, TypeError) as e:
                raise ValueError(f"{where}: bad homology settings ({e!r} missing or bad)") from None
            self.homology = Library.read(library, self.families, settings)
            if not self.searched.all():
                self.homology = self.homology.subset(np.flatnonzero(self.searched))
        elif self.scorer in HOMOLOGY_SCORERS:
            raise ValueError(f"{where}: the {self.scorer} scorer needs a homology library "
                             "(add one with `rnaernie finetune screen --library-only`)")  # fmt: skip
        self.tokenizer = Tokenizer()

    @classmethod
    def from_model(cls, model: Any, scorer: str | None = None,
                   families: Sequence[str] | str | None = None) -> Detector:  # fmt: skip
        """The detector of an :class:`rnaernie.api.RnaErnie` (its ``heads/screen``)."""
        d = model.path / "heads" / "screen"
        if not (d / "model.safetensors").is_file():
            raise ValueError(f"the model at {str(model.path)!r} has no screen head (expected "
                             f"{d / 'model.safetensors'})")  # fmt: skip
        int8 = model.int8 and getattr(model, "backend", "torch") == "torch"  # onnx: int8 in ORT
        return cls(
            d, device=model.device, dtype=model.dtype, int8=int8, scorer=scorer, families=families
        )

    def cnn_windows(self, seq: str, starts: np.ndarray, width: int) -> np.ndarray:
        """(N, C) CNN window logits (background last) of the windows ``seq[s : s + width]``: the
        network runs once over ``seq`` and each family takes its maximum over the window."""
        with torch.inference_mode():
            w = next(self.cnn.parameters())
            # padded to a multiple of CNN_LENGTH_STEP (the CPU's convolution library keeps a
            # primitive for every shape); the layers see zeros past the end, as unpadded
            x = one_hot([seq], bucket(len(seq), CNN_LENGTH_STEP)).to(w.device, w.dtype)
            n = torch.tensor([len(seq)], device=w.device)
            h = self.cnn.positions(x, n)[..., : len(seq)]  # (1, F, L)
            if width < h.shape[-1]:
                h = torch.nn.functional.max_pool1d(h, width, stride=1)
            else:
                h = h.amax(-1, keepdim=True)
            at = torch.from_numpy(np.minimum(starts, h.shape[-1] - 1)).to(h.device)
            fam = h[0][:, at].double().cpu().numpy().T
        bg = np.full((len(fam), 1), float(self.cnn.background.detach()))
        return np.concatenate([fam, bg], 1)

    def scan(self, chunk: Chunk, strands: str = "both", batch_tokens: int = 8192,
             floor: float | None = None, filtered: bool = True) -> tuple[list[WindowHit], int]:  # fmt: skip
        """The hit windows of one chunk (score ≥ ``floor``, default the calibration's) and the
        number of windows that passed the filter (the ``kmer`` scorer has none: every window).
        ``filtered=False`` (the ``cnn`` scorer): every window, whatever the filter says (for
        calibration)."""
        return self.scan_many([chunk], strands, batch_tokens, floor, filtered)[0]

    def scan_many(self, chunks: Sequence[Chunk], strands: str = "both", batch_tokens: int = 8192,
                  floor: float | None = None, filtered: bool = True) -> list[tuple[list[WindowHit], int]]:  # fmt: skip
        """:meth:`scan` of each chunk. The ``fused`` scorer searches all of them before the CNN
        runs over their aligned windows: the search's threads and torch's take turns once, not
        once per chunk (a turn costs milliseconds while torch's idle threads spin)."""
        if floor is None:
            floor = self.calibration.floor if self.calibration is not None else -np.inf
        views = [_Strands(c, strands) for c in chunks]
        if self.scorer not in HOMOLOGY_SCORERS:
            return [self._scan_windows(v, batch_tokens, floor, filtered) for v in views]
        parts = self._homology_logits(views)
        if self.scorer == "fused":  # the aligned windows of all chunks in batches of one shape:
            seqs = [x for p in parts for x in p[3]]  # the same numbers however chunks are grouped
            window = max((c.width for c in chunks), default=1)
            odds = cnn_log_odds(self.cnn, seqs, self.cnn_weight, fixed=window)
            at = 0
            for _, z, _, s in parts:
                z[:, :-1] += odds[at : at + len(s)]
                at += len(s)
        out = []
        for v, (rows, z, envelope, _) in zip(views, parts):
            fam, bits = self._log_odds(z)
            out.append((self._hits(v, rows, fam, bits, z, floor, envelope), len(rows)))
        return out

    def _scan_windows(self, v: _Strands, batch_tokens: int, floor: float,
                      filtered: bool) -> tuple[list[WindowHit], int]:  # fmt: skip
        """:meth:`scan` of the ``kmer``, ``cnn`` and ``model`` scorers."""
        n, order = v.n, v.order
        if self.scorer == "kmer":  # the baseline: every window, no filter, no CNN
            seqs = [v.strand_seq(st)[a : a + w] for st in order
                    for a, w in zip(v.starts[st].tolist(), v.widths.tolist())]  # fmt: skip
            z = np.concatenate([self.kmer.decision_function(seqs[a : a + KMER_BLOCK],
                                                            replace_invalid=True)
                                for a in range(0, len(seqs), KMER_BLOCK)]
                               or [np.zeros((0, len(self.labels)))])  # fmt: skip
            fam, bits = self._log_odds(z)
            passed = np.ones(len(z), dtype=bool)
            n_pass = len(z)
        else:
            z = np.zeros((len(order) * n, len(self.labels)))
            for k, st in enumerate(order):
                for w in np.unique(v.widths):  # one width, but for a record shorter than the window
                    sel = np.flatnonzero(v.widths == w)
                    z[k * n + sel] = self.cnn_windows(v.strand_seq(st), v.starts[st][sel], int(w))
            fam, bits = self._log_odds(z)
            passed = bits >= self.threshold
            n_pass = int(passed.sum())
            if not filtered and self.scorer == "cnn":
                passed = np.ones(len(z), dtype=bool)
        rows = np.flatnonzero(passed)
        if self.scorer == "model" and len(rows):  # the language model scores what passed
            p = classifier_probs(self.model, [v.window(i) for i in rows],
                                 tokenizer=self.tokenizer, batch_tokens=batch_tokens,
                                 replace_invalid=True)  # fmt: skip
            f, b = self._log_odds(p, probs=True)
            prob = np.clip(p, 1e-30, None)[np.arange(len(rows)), f]
            return self._hits(v, rows, f, b, z[rows], floor, prob=prob), n_pass
        return self._hits(v, rows, fam[rows], bits[rows], z[rows], floor), n_pass

    def _log_odds(self, z: np.ndarray, probs: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """:func:`log_odds` over the families searched; ``z`` (logits) is masked in place, so
        that the family probabilities are among them and background."""
        if probs:
            z = np.log(np.clip(np.asarray(z, dtype=np.float64), 1e-30, None))
        if not self.searched.all():
            z[:, :-1][:, ~self.searched] = -np.inf
        return log_odds(z)

    def _hits(self, v: _Strands, rows: np.ndarray, fam: np.ndarray, bits: np.ndarray,
              z: np.ndarray, floor: float, envelope: np.ndarray | None = None,
              prob: np.ndarray | None = None) -> list[WindowHit]:  # fmt: skip
        """The windows ``rows`` (rows of the scan; ``fam``, ``bits``, ``z`` and the rest are
        theirs, in the same order) that score ≥ ``floor``, as hits (the family's probability:
        ``prob``, or the softmax of the logits ``z``); with ``envelope`` (homology scorers), each
        spans the aligned family member's extent where that is the hit's family."""
        chunk, order, n = v.chunk, v.order, v.n
        keep = np.flatnonzero(bits >= floor)
        if prob is None:
            prob = np.zeros(len(z))
            prob[keep] = _softmax(z[keep])[np.arange(len(keep)), fam[keep]]
        spans_of = v.spans[rows % n] if len(rows) else np.zeros((0, 2), dtype=np.int64)
        member = [""] * len(rows)
        if envelope is not None:
            own = envelope[:, 2] == fam
            extent = np.clip(envelope[:, :2] + chunk.offset, 0, chunk.length)
            spans_of = np.where(own[:, None], extent, spans_of)
            assert self.homology is not None
            for i in keep:
                if own[i]:
                    member[i] = self.homology.names[int(envelope[i, 3])]
        return [WindowHit(chunk.id, order[rows[i] // n], int(spans_of[i, 0]), int(spans_of[i, 1]),
                          self.families[fam[i]], _sig(bits[i]), _sig(prob[i]), member[i])
                for i in keep]  # fmt: skip

    def _homology_logits(self, views: Sequence[_Strands]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]]:  # fmt: skip
        """Per view, its windows with an alignment (the filter: only those can be hits): their
        rows (ascending), (rows, C) log-odds in nats (background 0) of the alignments
        (:func:`alignment_log_odds`; the ``fused`` scorer's CNN is added by the caller), the hit
        extents (rows, 4: start, end in chunk coordinates, family and library member of the best
        alignment) and the windows' sequences. One search for all views (the strands of many
        short records share the threads out; a chunk's two strands share its codes)."""
        assert self.homology is not None
        jobs, where = [], []
        for i, v in enumerate(views):
            for k, st in enumerate(v.order):
                for w in np.unique(v.widths):
                    sel = np.flatnonzero(v.widths == w)
                    jobs.append((v.chunk.seq, v.starts[st][sel], int(w), st, v.chunk.masked))
                    where.append((i, k, sel))
        found = self.homology.align_many(jobs, threads=torch.get_num_threads())
        parts: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in views]
        for (seq, starts, _, st, _), (i, k, sel), a in zip(jobs, where, found):
            idx = np.flatnonzero(a.aligned)
            # envelope (strand coordinates) -> forward chunk coordinates (it may reach beyond the
            # chunk: the caller clips it to the record)
            lo, hi = starts[idx] + a.envelope[idx, 0], starts[idx] + a.envelope[idx, 1]
            if st == "-":
                lo, hi = len(seq) - hi, len(seq) - lo
            ext = np.stack([lo, hi, a.family[idx], a.ref[idx]], 1)
            parts[i].append(
                (k * views[i].n + sel[idx], alignment_log_odds(self.homology, a)[idx], ext)
            )
        out = []
        for v, ps in zip(views, parts):
            rows = np.concatenate([p[0] for p in ps]) if ps else np.zeros(0, dtype=np.int64)
            o = np.argsort(rows, kind="stable")
            rows = rows[o]
            z = np.zeros((len(rows), len(self.labels)))
            z[:, :-1] = np.concatenate([p[1] for p in ps])[o] if ps else 0.0
            ext = np.concatenate([p[2] for p in ps])[o] if ps else np.zeros((0, 4), dtype=np.int64)
            out.append((rows, z, ext, [v.window(int(r)) for r in rows]))
        return out


class _Strands:
    """A chunk's windows on the strands searched: ``order`` ("+", "-" or both), ``n`` windows per
    strand, their ``spans`` (n, 2) and ``widths``, each strand's window ``starts`` on its sequence
    (5'→3': :meth:`strand_seq`); row ``i`` of a scan is window ``i % n`` on strand
    ``order[i // n]``."""

    def __init__(self, chunk: Chunk, strands: str) -> None:
        self.chunk = chunk
        self.order = [st for st in ("+", "-") if strands in ("both", st)]
        self.n = len(chunk.spans)
        self.spans = spans = chunk.spans
        self.widths = spans[:, 1] - spans[:, 0]
        end = chunk.offset + len(chunk.seq)
        self.starts = {"+": spans[:, 0] - chunk.offset, "-": end - spans[:, 1]}
        self._seqs = {"+": chunk.seq}

    def strand_seq(self, st: str) -> str:
        """The chunk's sequence on strand ``st``, 5'→3' (the reverse complement is made when
        first asked for)."""
        if st not in self._seqs:
            self._seqs[st] = reverse_complement(self.chunk.seq, normalised=True)
        return self._seqs[st]

    def window(self, i: int) -> str:
        """Row ``i``'s window, 5'→3' on its strand."""
        st, j = self.order[i // self.n], i % self.n
        a, b = self.spans[j] - self.chunk.offset
        w = self.chunk.seq[a:b]
        return w if st == "+" else reverse_complement(w, normalised=True)


def cnn_log_odds(cnn: MotifCNN, seqs: Sequence[str], weight: float = 1.0, *,
                 fixed: int | None = None) -> np.ndarray:  # fmt: skip
    """(N, families) ``weight`` × the CNN's log-odds in nats of each family against background
    on the windows ``seqs``: what the ``fused`` scorer adds to the alignment's bits. ``fixed``
    (the longest a window may be): batches of one shape, :data:`CNN_ROWS` rows of ``fixed``
    columns, so that each window's numbers are its own to the bit."""
    c = cnn.window_logits(seqs, CNN_ROWS, fixed=fixed) if fixed else cnn.window_logits(seqs)
    return weight * (c[:, :-1] - c[:, -1:])


def homology_log_odds(library: Library, seq: str, starts: np.ndarray | Sequence[int], width: int,
                      *, threads: int = 0) -> tuple[np.ndarray, WindowAlignments]:  # fmt: skip
    """(N, families) log-odds in nats of the windows ``seq[s : s + width]``: each family's best
    alignment score to the library in bits × ln 2 (the ``homology`` scorer; the ``fused`` one adds
    :func:`cnn_log_odds` on the windows that align); and the alignments."""
    a = library.align(seq, starts, width, threads=threads)
    return alignment_log_odds(library, a), a


def alignment_log_odds(library: Library, a: WindowAlignments) -> np.ndarray:
    """(N, families) log-odds in nats of alignments ``a``: each family's best score in bits ×
    ln 2."""
    return a.scores * (library.bits_per_score * LN2)


# ----------------------------------------------------------------------------- loci


def _merge_run(run: list[WindowHit], stride: int) -> tuple[int, int, WindowHit]:
    a = max(h.start for h in run)
    b = min(h.end for h in run)
    if b - a < stride:  # windows inside a long gene, or a partial window in the run: the union
        a, b = min(h.start for h in run), max(h.end for h in run)
    best = max(run, key=lambda h: (h.score, -h.start))
    return a, b, best


def loci(
    hits: Iterable[WindowHit],
    calibration: Calibration,
    megabases: float,
    *,
    stride: int,
    evalue: float | None = 0.01,
    order: Sequence[str] | None = None,
) -> list[Locus]:
    """Merge window hits into loci (see the module docstring), with E-values for ``megabases``
    Mb searched; keep those with E ≤ ``evalue`` (``None``: all). Sorted by record (``order``:
    the records' input order; default by name), start, strand, family."""
    if evalue is not None and not _positive_number(evalue):
        raise ValueError(f"the E-value threshold must be a positive number, got {evalue!r}")
    if not _positive_number(megabases):
        raise ValueError(f"megabases searched must be a positive number, got {megabases!r}")
    groups: dict[tuple[str, str, str], list[WindowHit]] = {}
    for h in hits:
        groups.setdefault((h.id, h.strand, h.family), []).append(h)
    found: list[tuple[int, int, WindowHit, int]] = []
    for key in sorted(groups):
        run: list[WindowHit] = []
        for h in sorted(groups[key], key=lambda h: (h.start, h.end)):
            if run and h.start >= max(r.end for r in run):
                found.append((*_merge_run(run, stride), len(run)))
                run = []
            run.append(h)
        if run:
            found.append((*_merge_run(run, stride), len(run)))
    # families compete: of overlapping loci on one strand, the best scoring one stays
    found.sort(key=lambda t: (-t[2].score, t[2].id, t[0], t[2].strand, t[2].family))
    kept: dict[tuple[str, str], list[tuple[int, int]]] = {}
    out = []
    for a, b, best, n in found:
        taken = kept.setdefault((best.id, best.strand), [])
        if any(a < y and x < b for x, y in taken):
            continue
        taken.append((a, b))
        e = _sig(float(calibration.rate(best.score, best.family)) * megabases)
        if evalue is None or e <= evalue:
            out.append(Locus(best.id, a, b, best.strand, best.family, best.score, e,
                             best.probability, n, best.member))  # fmt: skip
    rank = {r: k for k, r in enumerate(order)} if order is not None else None
    out.sort(key=lambda x: ((rank.get(x.id, len(rank)), x.id) if rank is not None else (0, x.id),
                            x.start, x.strand, x.family))  # fmt: skip
    return out


STRUCTURE_COLUMNS = (("dot_bracket", "str"), ("num_pairs", "int"))
GFF_SAFE = "/:.-_~|+()"  # left as they are in GFF3 attribute values; others percent-encoded


def write_loci(path: str | Path, found: Sequence[Locus], source: str = "rnaernie") -> None:
    """Write loci by extension (``-``: TSV on stdout): ``.tsv``/``.csv``/``.parquet``
    (:data:`LOCUS_COLUMNS`, + ``dot_bracket``, ``num_pairs`` when the loci were folded), ``.bed``
    (BED6: chrom, start, end, family, score = 10 × bits rounded into [0, 1000], strand) or
    ``.gff3`` (1-based; E-value, probability, window count, library member and any structure as
    attributes).
    Written to ``path.tmp`` and renamed."""
    ext = "" if str(path) == "-" else Path(path).suffix.lower()
    folded = bool(found) and "dot_bracket" in found[0].extras
    if ext in (".bed", ".gff3"):
        w = LineWriter(path)
        try:
            if ext == ".bed":
                w.write(f"{x.id}\t{x.start}\t{x.end}\t{x.family}\t"
                        f"{min(1000, max(0, round(10 * x.score)))}\t{x.strand}" for x in found)  # fmt: skip
            else:
                w.write(["##gff-version 3"])
                w.write(
                    f"{x.id}\t{source}\t{SO_TYPES.get(x.family, 'ncRNA_gene')}\t{x.start + 1}\t"
                    f"{x.end}\t{x.score:.6g}\t{x.strand}\t.\tID=locus{k + 1};Name={x.family};"
                    f"evalue={x.evalue:.3g};probability={x.probability:.4g};windows={x.windows}"
                    + (f";member={quote(x.member, safe=GFF_SAFE)}" if x.member else "")
                    + (f";structure={x.extras['dot_bracket']}" if folded else "")
                    for k, x in enumerate(found)
                )  # fmt: skip
        except BaseException:
            w.abort()
            raise
        w.commit()
        return
    w = TableWriter(path, LOCUS_COLUMNS + (STRUCTURE_COLUMNS if folded else ()))
    try:
        w.write([x.as_row() + ((x.extras["dot_bracket"], x.extras["num_pairs"]) if folded else ())
                 for x in found])  # fmt: skip
    except BaseException:
        w.abort()
        raise
    w.commit()


def locus_sequences(records: Iterable[Any], found: Sequence[Locus]) -> list[str]:
    """The sequence of each locus, 5'→3' on its strand, from the records it was found in."""
    want: dict[str, list[int]] = {}
    for k, x in enumerate(found):
        want.setdefault(x.id, []).append(k)
    out: list[str | None] = [None] * len(found)
    for rec in records:
        if isinstance(rec, Invalid) or rec.id not in want:
            continue
        seq = normalise(rec.seq)
        for k in want.pop(rec.id):
            x = found[k]
            s = seq[x.start : x.end]
            out[k] = s if x.strand == "+" else reverse_complement(s)
    missing = [found[k].id for k, s in enumerate(out) if s is None]
    if missing:
        raise ValueError(f"records {sorted(set(missing))[:5]} of the loci are not in the input")
    return out  # type: ignore[return-value]


# ----------------------------------------------------------------------------- one call


def detect(
    detector: Detector,
    records: Iterable[Any],
    *,
    evalue: float | None = 0.01,
    window: int | None = None,
    stride: int | None = None,
    strands: str = "both",
    batch_tokens: int = 8192,
    megabases: float | None = None,
    soft_masked: bool = False,
) -> list[Locus]:
    """Screen ``records`` (``.id``, ``.seq``) and return the loci with E ≤ ``evalue``.

    ``window``/``stride`` default to the detector's; ``megabases`` (searched, both strands
    counted) defaults to what ``records`` hold, as ``cmsearch -Z`` would. ``soft_masked``: the
    records' lower-case letters (a soft-masked genome's repeats) start no seed of the homology
    search (a locus may still reach into them), as BLAST's ``-lcase_masking``.
    """
    if detector.calibration is None:
        raise ValueError(f"{detector.path}: the detector is not calibrated "
                         "(run `rnaernie finetune screen --calibrate-only`)")  # fmt: skip
    window, stride = check_window(detector, window, stride)
    for name, v in (("evalue", evalue), ("megabases", megabases)):
        if v is not None and not _positive_number(v):
            raise ValueError(f"{name} must be a positive number, got {v!r}")
    if strands not in ("both", "+", "-"):
        raise ValueError(f"strands must be 'both', '+' or '-', got {strands!r}")
    check_soft_masked(detector, soft_masked)
    hits, nt, order = [], 0, []
    cs = chunks(records, window, stride, soft_masked=soft_masked)
    for group in batches(cs, SCAN_CHUNKS, SCAN_NT):
        for c in group:
            if isinstance(c, Invalid):
                raise ValueError(c.message)
            if c.offset == 0:
                nt += c.length
                order.append(c.id)
        hits += [h for found, _ in detector.scan_many(group, strands, batch_tokens) for h in found]
    mb = megabases if megabases is not None else searched_megabases(nt, strands)
    return loci(hits, detector.calibration, max(mb, 1e-6), stride=stride, evalue=evalue,
                order=order)  # fmt: skip


def check_soft_masked(detector: Detector, soft_masked: bool) -> None:
    """``soft_masked`` needs a scorer whose filter is the homology search's seeds."""
    if soft_masked and detector.scorer not in HOMOLOGY_SCORERS:
        raise ValueError(f"soft masking (--soft-masked) keeps seeds out of lower-case stretches: it needs the "
                         f"{' or '.join(HOMOLOGY_SCORERS)} scorer, not {detector.scorer}")  # fmt: skip


def searched_megabases(nt: int, strands: str = "both") -> float:
    """Mb searched, for E-values: the sequence length, twice when both strands are searched."""
    return nt * (2 if strands == "both" else 1) / 1e6


def check_window(detector: Detector, window: int | None, stride: int | None) -> tuple[int, int]:
    """``window``/``stride`` (default: the detector's), checked."""
    window = detector.window if window is None else window
    stride = detector.stride if stride is None else stride
    for name, v in (("window", window), ("stride", stride)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if window < 20:
        raise ValueError(f"--window {window} is shorter than the detector's minimum of 20 nt")
    if window > 510:
        raise ValueError(f"--window {window} is longer than the model reads at once (510 nt)")
    if stride > window:
        raise ValueError(f"--stride {stride} is larger than --window {window}: windows would "
                         "leave gaps")  # fmt: skip
    return window, stride


def update_screen_config(head: str | Path, **items: Any) -> None:
    """Set ``items`` in ``extra.screen`` of the detector's ``config.json`` at ``head`` (written
    to a temporary file and renamed)."""
    path = Path(head) / "config.json"
    cfg = json.loads(path.read_text())
    cfg["extra"]["screen"].update(items)
    write_atomic(path, json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def calibration_key(scorer: str) -> str:
    """Where a scorer's calibration lives in ``extra.screen`` of the detector's config."""
    return f"calibration_{scorer}"


def calibrate(
    head: str | Path,
    transcripts: Sequence[str],
    *,
    megabases: float = 2.0,
    seed: int = 0,
    device: str = "cpu",
    batch_tokens: int = 8192,
    scorer: str | None = None,
) -> dict:
    """Measure the rate of background windows: score ``megabases`` Mb of dinucleotide-shuffled
    ``transcripts`` (both strands; every window, for the ``cnn`` and ``kmer`` scorers; the windows
    the filter lets through, for ``model``, ``fused`` and ``homology``), fit :class:`Calibration`
    (pooled, and per family where a family has enough windows) and store it in
    ``head``'s config.json (``extra.screen.calibration_<scorer>``; default scorer: the head's).
    Returns a summary."""
    det = Detector(head, device=device, scorer=scorer)
    rng = np.random.default_rng([seed, 7])
    genome = shuffled_genome(transcripts, int(megabases * 1e6), rng)
    scores, fams, passed, total = [], [], 0, 0
    cs = chunks([Record("background", genome)], det.window, det.stride)
    for group in batches(cs, SCAN_CHUNKS, SCAN_NT):
        for c, (h, p) in zip(group, det.scan_many(group, "both", batch_tokens, floor=-np.inf,
                                                  filtered=False)):  # fmt: skip
            scores += [x.score for x in h]
            fams += [x.family for x in h]
            passed += p
            total += 2 * len(c.spans)
    searched = searched_megabases(len(genome))
    cal = Calibration.fit(scores, searched, families=fams)
    update_screen_config(det.path, **{calibration_key(det.scorer): cal.to_dict()})
    return {"scorer": det.scorer, "megabases_searched": searched, "background_windows": len(scores),
            "filter_pass_rate": passed / max(total, 1), "tail_start": cal.tail_start,
            "tail_lambda": cal.tail_lambda, "score_at_1_per_mb": _score_at(cal, 1.0),
            "families_with_own_curve": sorted(cal.by_family)}  # fmt: skip


def _score_at(cal: Calibration, rate: float) -> float:
    """The score whose background rate is ``rate`` per Mb (bisection on the decreasing curve)."""
    lo, hi = cal.floor if np.isfinite(cal.floor) else -100.0, cal.tail_start + 200.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if cal.rate(mid) > rate:
            lo = mid
        else:
            hi = mid
    return hi
