"""k-mer spectra (C++) and the k-mer logistic-regression classifier that a classifier head can carry.

The k-mer classifier is the sequence-task baseline of ``rnaernie evaluate`` (standardised k-mer
spectrum, k = 1…5, multinomial logistic regression with C chosen by 5-fold CV on train), stored
beside a fine-tuned head as ``kmer_logreg.safetensors``. :meth:`rnaernie.RnaErnie.classify`
multiplies the two heads' probabilities (a product of experts with equal weights, renormalised) when
the head has one; the language model and the k-mer spectrum make different errors.

    >>> x = kmer_spectra(["ACGU", "GGGA"], kmax=2)   # (2, 4 + 16) float32

Composition-preserving background for detectors: :func:`dinucleotide_shuffle` and
:func:`shuffled_genome`.

    >>> s = dinucleotide_shuffle("GGGAAACCCUUU", np.random.default_rng(0))
    >>> sorted(s) == sorted("GGGAAACCCUUU") and s[0] == "G" and s[-1] == "U"
    True
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .tokenizer import normalise

__all__ = ["KMER_FILE", "KmerClassifier", "combine_experts", "dinucleotide_shuffle", "fit_logreg",
           "kmer_spectra", "shuffled_genome"]  # fmt: skip

KMER_FILE = "kmer_logreg.safetensors"


def kmer_spectra(
    seqs: Sequence[str | bytes],
    kmax: int = 5,
    *,
    replace_invalid: bool = False,
    threads: int = 0,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """Normalised k-mer counts for k = 1…kmax (1 ≤ kmax ≤ 8), computed in C++.

    Sequences are normalised as by the tokenizer (case folded, T → U, whitespace dropped). Returns
    (N, Σ4^k) float32: for each k in turn, the counts of the 4^k k-mers in lexicographic order
    (A < C < G < U) divided by the number of windows of that k (L − k + 1; 0 when L < k). A window
    with an IUPAC code counts in the denominator but in no column. A character that is neither a
    nucleotide nor an IUPAC code raises ``ValueError`` naming the sequence (``names[i]`` when
    given) and position, unless ``replace_invalid`` (then it is treated as an IUPAC code).
    """
    from . import _core

    return _core.kmer_spectra(
        list(seqs),
        kmax=int(kmax),
        replace_invalid=replace_invalid,
        threads=threads,
        names=None if names is None else list(names),
    )


def fit_logreg(x: np.ndarray, y, *, cs: Sequence[float] = (0.01, 0.1, 1.0), folds: int = 5):
    """Standardised logistic regression (a scikit-learn pipeline: ``StandardScaler`` →
    ``LogisticRegression``) fitted on (N, F) ``x`` and labels ``y``; the inverse L2 strength C is
    chosen from ``cs`` by ``folds``-fold cross-validation (with ``folds`` < 2: the middle of ``cs``,
    no CV). Returns the fitted pipeline (refitted on all of ``x``). Needs scikit-learn."""
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError as e:
        raise ImportError("this needs scikit-learn: pip install scikit-learn") from e
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    if folds < 2:
        return pipe.set_params(logisticregression__C=list(cs)[len(cs) // 2]).fit(x, y)
    grid = GridSearchCV(pipe, {"logisticregression__C": list(cs)}, cv=folds, n_jobs=1)
    return grid.fit(x, y).best_estimator_


def combine_experts(*probs: np.ndarray) -> np.ndarray:
    """Product of experts: the renormalised product of (N, C) probability matrices (in log space)."""
    logp = sum(np.log(np.clip(np.asarray(p, dtype=np.float64), 1e-12, None)) for p in probs)
    logp -= logp.max(1, keepdims=True)
    e = np.exp(logp)
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


@dataclass
class KmerClassifier:
    """Standardised k-mer spectrum → multinomial logistic regression, applied in numpy.

    ``mean``/``scale``: (F,) standardisation; ``coef``: (C, F); ``intercept``: (C,); ``labels``: the
    C class names in column order.
    """

    kmax: int
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    labels: list[str]

    @classmethod
    def fit(
        cls,
        seqs: Sequence[str],
        y: Sequence[int],
        labels: Sequence[str],
        *,
        kmax: int = 5,
        cs: Sequence[float] = (0.01, 0.1, 1.0),
        folds: int = 5,
        replace_invalid: bool = False,
    ) -> KmerClassifier:
        """Fit on ``seqs`` with class indices ``y`` into ``labels``; the inverse L2 strength C is
        chosen from ``cs`` by stratified cross-validation on these data, with ``folds`` folds or
        as many as the smallest class has sequences; with a class of one sequence, C is the middle
        of ``cs`` (needs scikit-learn). ``replace_invalid``: as in :func:`kmer_spectra`."""
        y = np.asarray(y)
        present = set(y.tolist())
        if present != set(range(len(labels))):
            missing = [labels[i] for i in range(len(labels)) if i not in present]
            raise ValueError(
                f"every class needs training sequences; none for {', '.join(missing)}"
                if missing
                else f"class indices must lie in [0, {len(labels)}), got {sorted(present)}"
            )
        x = kmer_spectra(seqs, kmax, replace_invalid=replace_invalid)
        pipe = fit_logreg(x, y, cs=cs, folds=min(folds, int(np.bincount(y).min())))
        scaler, lr = pipe[0], pipe[-1]
        coef, intercept = lr.coef_, lr.intercept_
        if coef.shape[0] == 1:  # two classes: sklearn keeps one row (class 1 vs 0)
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.r_[-intercept / 2, intercept / 2]
        return cls(
            int(kmax), scaler.mean_, scaler.scale_, coef, intercept, [str(x) for x in labels]
        )

    def decision_function(self, seqs: Sequence[str], **kw) -> np.ndarray:
        """(N, C) logits; ``kw`` goes to :func:`kmer_spectra` (``names``, ``replace_invalid``)."""
        x = (kmer_spectra(seqs, self.kmax, **kw).astype(np.float64) - self.mean) / self.scale
        return x @ self.coef.T + self.intercept

    def predict_proba(self, seqs: Sequence[str], **kw) -> np.ndarray:
        """(N, C) class probabilities (softmax of :meth:`decision_function`), float32."""
        z = self.decision_function(seqs, **kw)
        z -= z.max(1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(1, keepdims=True)).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` (a directory gets :data:`KMER_FILE`); returns the file."""
        from safetensors.numpy import save_file

        path = Path(path)
        if path.is_dir():
            path = path / KMER_FILE
        tensors = {k: np.ascontiguousarray(getattr(self, k), dtype=np.float32)
                   for k in ("mean", "scale", "coef", "intercept")}  # fmt: skip
        meta = {"kmax": str(self.kmax), "labels": json.dumps(self.labels)}
        save_file(tensors, str(path), metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> KmerClassifier:
        """Read a file written by :meth:`save` (or a directory holding :data:`KMER_FILE`)."""
        from safetensors import safe_open

        path = Path(path)
        if path.is_dir():
            path = path / KMER_FILE
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                t = {k: f.get_tensor(k).astype(np.float64) for k in f.keys()}
        except Exception as e:  # a missing file, or safetensors' own SafetensorError
            raise ValueError(f"{path}: cannot read a k-mer classifier: {e}") from e
        try:
            kmax, labels = int(meta["kmax"]), [str(x) for x in json.loads(meta["labels"])]
            mean, scale, coef, intercept = t["mean"], t["scale"], t["coef"], t["intercept"]
        except (KeyError, ValueError) as e:
            raise ValueError(f"{path}: not a k-mer classifier file ({e!r} missing or bad)") from e
        width = sum(4**k for k in range(1, kmax + 1))
        if not (mean.shape == scale.shape == (width,) and coef.shape == (len(labels), width)
                and intercept.shape == (len(labels),)):  # fmt: skip
            raise ValueError(
                f"{path}: shapes mean {mean.shape}, scale {scale.shape}, coef {coef.shape}, "
                f"intercept {intercept.shape} do not fit kmax={kmax} and {len(labels)} labels"
            )
        return cls(kmax, mean, scale, coef, intercept, labels)


def dinucleotide_shuffle(seq: str, rng: np.random.Generator) -> str:
    """A uniformly random sequence with the same dinucleotide counts, first and last letter as
    ``seq`` (Altschul & Erickson 1985, by a random Eulerian path: Kandel et al. 1996)."""
    n = len(seq)
    if n < 3:
        return seq
    out: dict[str, list[str]] = {}
    for a, b in itertools.pairwise(seq):
        out.setdefault(a, []).append(b)
    last = seq[-1]
    # a random arborescence towards `last` of "last exits" (Wilson's algorithm on the multigraph)
    exit_idx: dict[str, int] = {}
    in_tree = {last}
    for u in out:
        cur = u
        while cur not in in_tree:
            exit_idx[cur] = int(rng.integers(len(out[cur])))
            cur = out[cur][exit_idx[cur]]
        cur = u
        while cur not in in_tree:
            in_tree.add(cur)
            cur = out[cur][exit_idx[cur]]
    order: dict[str, list[str]] = {}
    for v, succ in out.items():
        if v == last:
            order[v] = [succ[i] for i in rng.permutation(len(succ))]
            continue
        k = exit_idx[v]
        rest = succ[:k] + succ[k + 1 :]
        order[v] = [rest[i] for i in rng.permutation(len(rest))] + [succ[k]]
    pos = dict.fromkeys(order, 0)
    res = [seq[0]]
    cur = seq[0]
    for _ in range(n - 1):
        nxt = order[cur][pos[cur]]
        pos[cur] += 1
        res.append(nxt)
        cur = nxt
    return "".join(res)


def shuffled_genome(transcripts: Sequence[str], length: int, rng: np.random.Generator) -> str:
    """``length`` nt of background: randomly chosen transcripts, each dinucleotide-shuffled, joined
    (the last one cut). Real composition, no real genes."""
    if not transcripts:
        raise ValueError("no transcripts to build background sequence from")
    parts, total = [], 0
    while total < length:
        t = normalise(transcripts[int(rng.integers(len(transcripts)))])
        parts.append(dinucleotide_shuffle(t, rng))
        total += len(t)
    return "".join(parts)[:length]
