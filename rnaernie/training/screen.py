"""Training data and training of the screening detector (``rnaernie finetune screen``).

The detector is a sequence classifier over windows of ``window`` nt with the families of a
labelled FASTA (the nRC format) **plus** :data:`BACKGROUND`. A window is a positive of family
``f`` when it holds a whole member of ``f`` (a member longer than the window: a window inside it);
everything a genome scan meets otherwise is background, and the training set holds each kind:

* background sequence itself: windows of dinucleotide-shuffled transcripts (real composition, no
  real genes) and windows of real transcripts (mRNAs, lncRNAs: transcribed, but not of a family);
* dinucleotide-shuffled positives (the composition of a gene without its sequence);
* reverse complements of positives (an antisense window is not a hit);
* windows that cover only a small part (≤ :data:`PARTIAL_MAX` of its length) of a positive.

Positives sit at a random offset between flanks of shuffled background, as a gene does in a genome.
:func:`train_detector` fine-tunes the classifier (unguided: the screen scores windows in one pass)
and fits the k-mer logistic regression that is the first stage of the screening cascade; its
threshold is chosen on validation positives to keep :data:`FILTER_SENSITIVITY` of them.
Calibrating the scores to E-values needs the whole screening pipeline and lives in
:func:`rnaernie.screen.calibrate`.
Background sequence comes from :func:`rnaernie.kmer.shuffled_genome`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..kmer import KmerClassifier, dinucleotide_shuffle, filter_scores, shuffled_genome
from ..predict import classifier_probs
from ..tokenizer import normalise, reverse_complement

__all__ = [
    "BACKGROUND",
    "FILTER_SENSITIVITY",
    "PARTIAL_MAX",
    "DetectorData",
    "detector_windows",
    "filter_threshold",
    "train_detector",
]

log = logging.getLogger(__name__)

BACKGROUND = "background"
PARTIAL_MAX = 0.2  # a window holding at most this share of a gene is background
FILTER_SENSITIVITY = 0.99  # share of validation positives the k-mer filter must let through


@dataclass
class DetectorData:
    """Windows and class indices (``labels[-1]`` is :data:`BACKGROUND`); ``kind`` says which
    construction each window came from (for per-kind validation figures)."""

    seqs: list[str]
    y: np.ndarray
    kind: list[str]
    labels: list[str]


def detector_windows(
    pos_seqs: Sequence[str],
    pos_y: Sequence[int],
    families: Sequence[str],
    transcripts: Sequence[str],
    window: int,
    rng: np.random.Generator,
    *,
    real_per_positive: float = 0.5,
    shuffled_per_positive: float = 1.0,
) -> DetectorData:
    """The training windows of the module docstring for positives ``pos_seqs`` (class indices
    ``pos_y`` into ``families``); background from ``transcripts``."""
    if window < 20:
        raise ValueError(f"the detector window must be at least 20 nt, got {window}")
    pool = shuffled_genome(transcripts, max(200 * window, 100_000), rng)
    real = [normalise(t) for t in transcripts if len(t) >= window]

    def filler(n: int) -> str:
        if n <= 0:
            return ""
        a = int(rng.integers(0, len(pool) - n + 1))
        return pool[a : a + n]

    def embed(s: str) -> str:
        if len(s) >= window:
            a = int(rng.integers(0, len(s) - window + 1))
            return s[a : a + window]
        off = int(rng.integers(0, window - len(s) + 1))
        return filler(off) + s + filler(window - len(s) - off)

    bg = len(families)
    seqs: list[str] = []
    ys: list[int] = []
    kinds: list[str] = []

    def add(s: str, y: int, kind: str) -> None:
        seqs.append(s)
        ys.append(y)
        kinds.append(kind)

    for s, y in zip(pos_seqs, pos_y):
        s = normalise(s)
        add(embed(s), int(y), "positive")
        add(embed(dinucleotide_shuffle(s, rng)), bg, "shuffled_positive")
        add(reverse_complement(embed(s)), bg, "antisense")
        k = int(rng.integers(1, max(2, int(PARTIAL_MAX * len(s)) + 1)))
        k = min(k, window - 1)
        part = (
            s[len(s) - k :] + filler(window - k)
            if rng.random() < 0.5
            else filler(window - k) + s[:k]
        )
        add(part, bg, "partial")
        for _ in range(int(rng.poisson(shuffled_per_positive))):
            add(filler(window), bg, "shuffled_transcript")
        if real:
            for _ in range(int(rng.poisson(real_per_positive))):
                t = real[int(rng.integers(len(real)))]
                a = int(rng.integers(0, len(t) - window + 1))
                add(t[a : a + window], bg, "transcript")
    return DetectorData(seqs, np.array(ys, dtype=np.int64), kinds, [*families, BACKGROUND])


def filter_threshold(kmer: KmerClassifier, pos_windows: Sequence[str], keep: float) -> float:
    """The k-mer filter's threshold on ``log P(not background)`` − ``log P(background)`` that lets
    ``keep`` of ``pos_windows`` through (:func:`filter_scores`)."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    z = kmer.decision_function(pos_windows, replace_invalid=True)
    s = filter_scores(z)
    return float(np.quantile(s, 1.0 - keep, method="lower"))


def train_detector(
    pretrained: str | Path,
    train: DetectorData,
    valid: DetectorData,
    out: str | Path,
    *,
    window: int,
    stride: int,
    epochs: int = 2,
    lr: float = 1e-4,
    batch_tokens: int = 8192,
    seed: int = 0,
    device: str = "cpu",
    max_minutes: float | None = None,
    dropout: float | None = None,
) -> dict:
    """Fine-tune the detector from ``pretrained`` (a model or a head, e.g. the nRC head) on
    ``train``, fit the k-mer filter, choose its threshold on ``valid``; write the head to ``out``
    (``model.safetensors``, ``config.json`` with ``extra.screen``, ``labels.json``,
    ``kmer_logreg.safetensors``). Returns validation figures."""
    from .classify import finetune_classifier

    out = Path(out)
    model, _ = finetune_classifier(
        pretrained, train.seqs, train.y, train.labels, out=out, type_guided=False, epochs=epochs,
        lr=lr, batch_tokens=batch_tokens, seed=seed, device=device, max_minutes=max_minutes,
        dropout=dropout,
    )  # fmt: skip
    kmer = KmerClassifier.fit(train.seqs, train.y, train.labels, folds=1, replace_invalid=True)
    kmer.save(out)
    pos = [s for s, k in zip(valid.seqs, valid.kind) if k == "positive"]
    thr = filter_threshold(kmer, pos, FILTER_SENSITIVITY)
    zv = kmer.decision_function(valid.seqs, replace_invalid=True)
    passed = filter_scores(zv) >= thr
    p = classifier_probs(model.to(device), valid.seqs, batch_tokens=batch_tokens,
                         replace_invalid=True)  # fmt: skip
    lm = np.log(np.clip(p[:, :-1].max(1), 1e-12, None)) - np.log(np.clip(p[:, -1], 1e-12, None))
    is_pos = np.array([k == "positive" for k in valid.kind])
    fam_ok = p[:, :-1].argmax(1) == valid.y
    figures = {
        "filter_threshold": thr,
        "filter_pass_rate": {
            k: float(passed[[x == k for x in valid.kind]].mean()) for k in sorted(set(valid.kind))
        },
        "valid_family_accuracy": float(fam_ok[is_pos].mean()),
        "valid_auc_positive_vs_background": _auc(lm[is_pos], lm[~is_pos]),
        "valid_windows": len(valid.seqs),
        "train_windows": len(train.seqs),
    }
    model.config.extra = {
        **model.config.extra,
        "screen": {"window": window, "stride": stride, "background": BACKGROUND,
                   "filter": {"kmax": kmer.kmax, "threshold": thr,
                              "sensitivity": FILTER_SENSITIVITY}},
    }  # fmt: skip
    model.save_pretrained(out)
    return figures


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))
