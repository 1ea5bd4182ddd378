"""Thermodynamic priors for the pair logits, from ViennaRNA.

Two priors, each combined with the structure head's pair logits before decoding:

* ``"rnafold"``: ``weight`` added to the logits of the pairs of RNAfold's minimum-free-energy
  structure (weight, threshold and lonely-pair rule in the head's ``prior_rnafold`` config entry).
* ``"bpp"``: base-pair probabilities from ViennaRNA's partition function fused with the logits by a
  logistic regression over ``[logit, logit(p), logit · logit(p), MFE pair, pair type, log|i − j|,
  diffuseness and its products with logit and logit(p)]`` (:class:`Fusion`, :data:`FEATURES`),
  fitted on validation data; its fused logits are decoded by the decoder chosen with it (the
  head's ``prior_bpp`` config entry).

The head learned the families of its training set; the partition function knows folding. The
fusion lets the thermodynamic probabilities decide where the logits are unsure: the
:func:`diffuseness` of a sequence's pair probabilities (high where the head does not know the
family) scales the weight of its logits.

Needs ViennaRNA (``pip install viennarna``); its run time comes on top of the model's (RNAfold
0.7 s for one 1,000-nt sequence in ``benchmarks/results/structure.json``, the partition function
about 3× that, against 9 ms for our decoder). Sequences are folded in worker interpreters.

Example:
    >>> import numpy as np
    >>> z = np.zeros((4, 4), np.float32)
    >>> add_pair_bonus(z, np.array([[0, 3]]), 2.0)[[0, 3], [3, 0]].tolist()
    [2.0, 2.0]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _vienna
from .dotbracket import dot_bracket_to_pairs, pairs_to_dot_bracket

__all__ = [
    "MIN_POOL",
    "PRIORS",
    "Fusion",
    "Partition",
    "add_pair_bonus",
    "load_partitions",
    "rnafold_pairs",
    "save_partitions",
    "vienna_partition",
]

PRIORS = ("rnafold", "bpp")


def _rna() -> Any:
    try:
        import RNA
    except ImportError as exc:
        raise ValueError(
            "the thermodynamic priors need ViennaRNA's Python bindings: pip install viennarna"
        ) from exc
    return RNA


MIN_POOL = 32  # fewer sequences are folded in this process: starting workers would dominate

# The worker: ``_vienna.py`` run as a script by a fresh interpreter that imports only ViennaRNA and
# numpy, rather than a fork of this process (which may run torch threads) or multiprocessing's
# spawn (which re-imports the caller's __main__).
_WORKER = str(Path(__file__).with_name("_vienna.py"))


def _clean(seqs: Sequence[str]) -> list[str]:
    _rna()  # a clear error before any work when ViennaRNA is missing
    seqs = [str(s).upper().replace("T", "U") for s in seqs]
    bad = next((i for i, s in enumerate(seqs) if "\n" in s or "\r" in s), None)
    if bad is not None:
        raise ValueError(f"sequence {bad} contains a line break")
    return seqs


def _in_workers(
    seqs: list[str], processes: int, mode: str, run_one: Callable[[list[int], str, str], list]
) -> list:
    """A worker interpreter in ``mode`` per share of ``seqs`` (``processes`` shares), then
    ``run_one(indices, npz_path, stdout)`` reads its results; concatenated in input order."""
    chunks = [c.tolist() for c in np.array_split(np.arange(len(seqs)), processes)]
    with tempfile.TemporaryDirectory(prefix=f"rnaernie-{mode}-") as tmp:

        def run(k: int) -> list:
            idx, out = chunks[k], os.path.join(tmp, f"{k}.npz")
            text = "".join(seqs[i] + "\n" for i in idx)
            r = subprocess.run([sys.executable, _WORKER, mode, out], input=text,
                               capture_output=True, text=True, check=False)  # fmt: skip
            got = run_one(idx, out, r.stdout) if r.returncode == 0 else []
            if r.returncode != 0 or len(got) != len(idx):
                raise RuntimeError(
                    f"a ViennaRNA worker failed (exit status {r.returncode}, {len(got)} of "
                    f"{len(idx)} structures): {r.stderr.strip()[-500:]}"
                )
            return got

        with ThreadPoolExecutor(len(chunks)) as ex:  # the threads only wait on the workers
            return [x for part in ex.map(run, range(len(chunks))) for x in part]


def rnafold_pairs(seqs: Sequence[str], processes: int = 1) -> list[np.ndarray]:
    """RNAfold MFE base pairs (default parameters, 37 °C) per sequence, (n, 2) int64 with i < j.

    With ``processes > 1`` and at least ``MIN_POOL`` sequences, the folding runs in that many
    worker interpreters (ViennaRNA holds the GIL, so threads would not help).
    """
    seqs = _clean(seqs)
    processes = min(int(processes), len(seqs))
    if processes <= 1 or len(seqs) < MIN_POOL:
        return [dot_bracket_to_pairs(_vienna.mfe(s)) for s in seqs]
    dbs = _in_workers(seqs, processes, "mfe", lambda idx, out, stdout: stdout.splitlines())
    return [dot_bracket_to_pairs(db) for db in dbs]


@dataclass(frozen=True)
class Partition:
    """ViennaRNA's partition function of one sequence (default parameters, 37 °C).

    Attributes:
        mfe: the MFE structure's pairs, (n, 2) int64, ``i < j``.
        mea: ViennaRNA's maximum-expected-accuracy structure (γ = 1) from these probabilities.
        pairs, probs: every pair ``i < j`` with probability ≥ ``BPP_CUTOFF`` and its probability.
        length: nucleotides.
        seconds: time of MFE + partition function + probabilities.
    """

    length: int
    mfe: np.ndarray
    mea: np.ndarray
    pairs: np.ndarray
    probs: np.ndarray
    seconds: float

    def dense(self) -> np.ndarray:
        """The symmetric (L, L) float32 base-pair probability matrix (0 below the cut-off)."""
        m = np.zeros((self.length, self.length), np.float32)
        i, j = self.pairs[:, 0], self.pairs[:, 1]
        m[i, j] = self.probs
        m[j, i] = self.probs
        return m


def _unpack(z: Any) -> list[Partition]:
    # each array read once (an NpzFile reads and decompresses on every access); slices copied, so
    # a partition does not keep the whole array alive
    mfe, mea, off, pairs, probs, seconds = (
        z[k] for k in ("mfe", "mea", "offsets", "pairs", "probs", "seconds")
    )
    out = []
    for k in range(len(mfe)):
        a, b = off[k], off[k + 1]
        out.append(Partition(length=len(mfe[k]), mfe=dot_bracket_to_pairs(str(mfe[k])),
                             mea=dot_bracket_to_pairs(str(mea[k])),
                             pairs=pairs[a:b].astype(np.int64), probs=probs[a:b].copy(),
                             seconds=float(seconds[k])))  # fmt: skip
    return out


def save_partitions(path: str | os.PathLike, parts: Sequence[Partition]) -> None:
    """Partitions as one ``.npz`` of plain arrays (no pickles); :func:`load_partitions` reads it."""
    results = [(pairs_to_dot_bracket(p.mfe, p.length), pairs_to_dot_bracket(p.mea, p.length),
                p.pairs.astype(np.int32), p.probs, p.seconds) for p in parts]  # fmt: skip
    tmp = f"{os.fspath(path)}.part.npz"
    np.savez(tmp, **_vienna.pack(results))
    os.replace(tmp, path)


def load_partitions(path: str | os.PathLike) -> list[Partition]:
    """What :func:`save_partitions` wrote."""
    with np.load(path, allow_pickle=False) as z:
        return _unpack(z)


def vienna_partition(seqs: Sequence[str], processes: int = 1) -> list[Partition]:
    """:class:`Partition` per sequence: ViennaRNA MFE, partition function, base-pair
    probabilities and MEA structure. Workers as :func:`rnafold_pairs`."""
    seqs = _clean(seqs)
    processes = min(int(processes), len(seqs))
    if processes <= 1 or len(seqs) < MIN_POOL:
        return _unpack(_vienna.pack([_vienna.partition(s) for s in seqs]))

    def read(idx: list[int], out: str, stdout: str) -> list[Partition]:
        with np.load(out, allow_pickle=False) as z:
            return _unpack(z)

    return _in_workers(seqs, processes, "pf", read)


def add_pair_bonus(logits: np.ndarray, pairs: np.ndarray, weight: float) -> np.ndarray:
    """A copy of the symmetric (L, L) ``logits`` with ``weight`` added at every ``(i, j)`` and
    ``(j, i)`` of ``pairs``."""
    out = np.array(logits, dtype=np.float32, copy=True)
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(p) and (p.min() < 0 or p.max() >= out.shape[0]):
        raise ValueError(f"pairs index outside a {out.shape[0]}-nt score matrix")
    out[p[:, 0], p[:, 1]] += weight
    out[p[:, 1], p[:, 0]] += weight
    return out


FEATURES = (
    "logit",
    "bpp_logit",
    "logit_x_bpp_logit",
    "mfe_pair",
    "gc",
    "au",
    "gu",
    "log_span",
    "diffuse",
    "logit_x_diffuse",
    "bpp_logit_x_diffuse",
)
_LOGIT_CLIP = 20.0
_P_CLIP = _vienna.BPP_CUTOFF
_PAIR_TYPE = {frozenset("GC"): 4, frozenset("AU"): 5, frozenset("GU"): 6}


def _pair_types(seq: str) -> np.ndarray:
    """(L, L) int8: 4 / 5 / 6 (index of the ``gc`` / ``au`` / ``gu`` feature), else 0."""
    codes = np.frombuffer(seq.upper().replace("T", "U").encode(), np.uint8)
    out = np.zeros((len(seq),) * 2, np.int8)
    for pair, k in _PAIR_TYPE.items():
        a, b = (ord(c) for c in sorted(pair))
        out[(codes[:, None] == a) & (codes[None, :] == b)] = k
        out[(codes[:, None] == b) & (codes[None, :] == a)] = k
    return out


def _check_inputs(seq: str, logits: np.ndarray, part: Partition) -> np.ndarray:
    n = len(seq)
    z = np.asarray(logits, np.float32)
    if z.shape != (n, n) or part.length != n:
        raise ValueError(
            f"a {n}-nt sequence needs ({n}, {n}) logits and a {n}-nt partition, got "
            f"{z.shape} and {part.length} nt"
        )
    return z


def _feature_maps(seq: str, z: np.ndarray, part: Partition, wanted: Sequence[int]):
    """``(k, (L, L) float32 map of feature k)`` for each ``k`` in ``wanted``, one at a time."""
    n = len(seq)
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            if name == "logit":
                cache[name] = np.clip(z, -_LOGIT_CLIP, _LOGIT_CLIP)
            elif name == "bpp_logit":
                p = np.clip(part.dense(), _P_CLIP, 1 - _P_CLIP)
                cache[name] = (np.log(p) - np.log1p(-p)).astype(np.float32)
            elif name == "diffuse":
                cache[name] = np.float32(diffuseness(z))
            elif name == "types":
                cache[name] = _pair_types(seq)
        return cache[name]

    for k in wanted:
        name = FEATURES[k]
        if name in ("logit", "bpp_logit"):
            yield k, get(name)
        elif name == "logit_x_bpp_logit":
            yield k, get("logit") * get("bpp_logit") / np.float32(10.0)  # scaled to the others
        elif name == "mfe_pair":
            m, x = part.mfe, np.zeros((n, n), np.float32)
            x[m[:, 0], m[:, 1]] = x[m[:, 1], m[:, 0]] = 1.0
            yield k, x
        elif name in ("gc", "au", "gu"):
            yield k, (get("types") == k).astype(np.float32)
        elif name == "log_span":
            span = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
            yield k, np.log(np.maximum(span, 1)).astype(np.float32)
        elif name == "diffuse":
            yield k, np.full((n, n), get("diffuse"), np.float32)
        elif name == "logit_x_diffuse":
            yield k, get("logit") * get("diffuse")
        else:  # bpp_logit_x_diffuse
            yield k, get("bpp_logit") * get("diffuse")


def fusion_features(seq: str, logits: np.ndarray, part: Partition) -> np.ndarray:
    """(L, L, len(FEATURES)) float32 features of every position pair (see :data:`FEATURES`)."""
    z = _check_inputs(seq, logits, part)
    x = np.zeros((len(seq), len(seq), len(FEATURES)), np.float32)
    for k, m in _feature_maps(seq, z, part, range(len(FEATURES))):
        x[..., k] = m
    return x


def diffuseness(logits: np.ndarray) -> float:
    """How spread out the model's pair probabilities are: ``log`` of the expected pairs per
    nucleotide, ``Σ_{i<j} sigmoid(z_ij) / L`` (floored at 0.001). A head that knows a sequence's
    family puts its mass on few pairs (tRNA about 0.65 per nt on ArchiveII); where it does not, it
    spreads (SRP 2.8, telomerase 5.4), and its logits deserve less weight."""
    z = np.asarray(logits, np.float32)
    n = max(len(z), 1)
    p = 0.5 * (1.0 + np.tanh(0.5 * np.triu(z, 1)))
    # the zeroed lower triangle and diagonal (n (n + 1) / 2 entries) gave 0.5 each
    expected = (p.sum() - 0.25 * n * (n + 1)) / n
    return float(np.log(max(expected, 1e-3)))


@dataclass(frozen=True)
class Fusion:
    """Fused pair logit ``intercept + coef · features`` (:func:`fusion_features`): a logistic
    regression of "is a pair" on the model's logit and ViennaRNA's probabilities.

    ``decode`` are the decoder settings chosen with it (a :class:`DecodeOptions` dict; ``mea`` and
    ``threshknot`` decode ``sigmoid`` of the fused logits). Stored in a head config as
    ``prior_bpp`` (:meth:`to_dict`).
    """

    coef: tuple[float, ...]
    intercept: float
    decode: Mapping[str, Any]

    def __post_init__(self) -> None:
        if len(self.coef) != len(FEATURES):
            raise ValueError(
                f"a fusion needs {len(FEATURES)} coefficients {FEATURES}, got {len(self.coef)}"
            )
        if not all(np.isfinite(self.coef)) or not np.isfinite(self.intercept):
            raise ValueError("fusion coefficients must be finite")

    def __call__(self, seq: str, logits: np.ndarray, part: Partition) -> np.ndarray:
        """Fused (L, L) float32 logits, symmetric as the inputs are: the features with a nonzero
        coefficient, computed and added one at a time (memory O(L²), not O(L² · features))."""
        z = _check_inputs(seq, logits, part)
        out = np.full(z.shape, self.intercept, np.float32)
        wanted = [k for k, c in enumerate(self.coef) if c != 0.0]
        for k, m in _feature_maps(seq, z, part, wanted):
            out += np.float32(self.coef[k]) * m
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(FEATURES), "coef": [float(c) for c in self.coef],
                "intercept": float(self.intercept), "decode": dict(self.decode)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Fusion:
        """What :meth:`to_dict` wrote; anything else raises ``ValueError`` naming the problem."""
        try:
            if list(d.get("features", [])) != list(FEATURES):
                raise ValueError(f"features {d.get('features')} are not {list(FEATURES)}")
            return cls(tuple(float(c) for c in d["coef"]), float(d["intercept"]),
                       dict(d["decode"]))  # fmt: skip
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a prior_bpp fusion ({e!r})") from None

    @classmethod
    def fit(cls, seqs: Sequence[str], logits: Sequence[np.ndarray], parts: Sequence[Partition],
            true_pairs: Sequence[np.ndarray], decode: Mapping[str, Any] | None = None,
            min_loop: int = 3, negatives: float = 0.1, seed: int = 0, c: float = 1.0) -> Fusion:  # fmt: skip
        """Logistic regression (L2, ``C = c``; scikit-learn) over the canonical pairs ``i < j``
        with ``j − i > min_loop`` of the given sequences, labelled by ``true_pairs``. Every true
        pair, every pair with ``p ≥ 0.001`` or logit ``≥ −4`` is kept; of the rest a random
        ``negatives`` fraction, weighted ``1 / negatives``."""
        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(seed)
        xs, ys, ws = [], [], []
        for s, z, part, tp in zip(seqs, logits, parts, true_pairs, strict=True):
            x = fusion_features(s, z, part)
            n = len(s)
            i, j = np.triu_indices(n, min_loop + 1)
            keep = x[i, j, 4:7].any(axis=1)
            i, j = i[keep], j[keep]
            y = np.zeros((n, n), bool)
            tp = np.asarray(tp, np.int64).reshape(-1, 2)
            y[tp[:, 0], tp[:, 1]] = y[tp[:, 1], tp[:, 0]] = True
            y = y[i, j]
            xi = x[i, j]
            sure = y | (xi[:, 1] >= np.log(1e-3 / (1 - 1e-3))) | (xi[:, 0] >= -4)
            pick = sure | (rng.random(len(y)) < negatives)
            xs.append(xi[pick])
            ys.append(y[pick])
            ws.append(np.where(sure[pick], 1.0, 1.0 / negatives))
        lr = LogisticRegression(C=c, max_iter=1000)
        lr.fit(np.concatenate(xs), np.concatenate(ys), sample_weight=np.concatenate(ws))
        return cls(tuple(float(v) for v in lr.coef_[0]), float(lr.intercept_[0]),
                   dict(decode or {"method": "mea", "gamma": 1.0}))  # fmt: skip
