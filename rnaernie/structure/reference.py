"""Plain-Python references for the C++ decoders (slow; used by the tests and benchmarks).

``decode_ref`` takes the arguments of :func:`~rnaernie.structure.decode`. For ``nested`` and
``mea`` it runs a column-wise DP ("j unpaired, or j pairs with k"), a different decomposition from
the C++ row-push DP, in float64; ``mea`` is scored directly (``2 gamma P`` per pair, ``q_j`` per
unpaired base) rather than through the C++ pair weights ``2 gamma P_ij - q_i - q_j``.
``greedy`` / ``threshknot`` compare every pair of bases. ``nussinov_numpy`` is a vectorised numpy
DP (no constraints), the benchmark baseline.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .decoders import StructureResult, _as_matrix, _as_options
from .dotbracket import pairs_to_dot_bracket
from .options import NESTED_METHODS, DecodeOptions

__all__ = ["decode_ref", "mea_unpaired", "nussinov_numpy"]

NEG_INF = -math.inf
_CANONICAL = {("A", "U"), ("U", "A"), ("G", "C"), ("C", "G"), ("G", "U"), ("U", "G")}


def _norm(base: str) -> str:
    b = base.upper()
    return "U" if b == "T" else b


def is_canonical(a: str, b: str) -> bool:
    """True for AU, GC, GU in either orientation (case-insensitive, T as U)."""
    return (_norm(a), _norm(b)) in _CANONICAL


def parse_constraint(constraint: str | None, length: int, min_loop: int):
    """Per-position ``must``, ``can5``, ``can3``, ``mate`` lists of a hard-constraint string."""
    must = [False] * length
    can5 = [True] * length
    can3 = [True] * length
    mate = [-1] * length
    if constraint is None:
        return must, can5, can3, mate
    if len(constraint) != length:
        raise ValueError(
            f"constraint has length {len(constraint)} but the sequence has length {length}"
        )
    stack: list[int] = []
    for p, ch in enumerate(constraint):
        if ch == ".":
            continue
        if ch == "x":
            can5[p] = can3[p] = False
        elif ch == "|":
            must[p] = True
        elif ch == "<":
            must[p], can3[p] = True, False
        elif ch == ">":
            must[p], can5[p] = True, False
        elif ch == "(":
            must[p] = True
            stack.append(p)
        elif ch == ")":
            if not stack:
                raise ValueError(f"constraint: unmatched ')' at position {p}")
            q = stack.pop()
            must[p] = True
            mate[p], mate[q] = q, p
            if p - q - 1 < min_loop:
                raise ValueError(f"constraint: forced pair ({q}, {p}) encloses fewer than min_loop")
        else:
            raise ValueError(f"constraint: unknown symbol {ch!r} at position {p}")
    if stack:
        raise ValueError(f"constraint: unmatched '(' at position {stack[-1]}")
    return must, can5, can3, mate


def mea_unpaired(probs: np.ndarray) -> list[float]:
    """``q_i = 1 - sum_{j != i} P_ij`` over the upper triangle of ``probs`` (float64)."""
    up = np.triu(np.asarray(probs, dtype=np.float64), 1)
    return (1.0 - up.sum(axis=0) - up.sum(axis=1)).tolist()


def candidate_pairs(
    seq: str, scores: np.ndarray, opt: DecodeOptions, constraint: str | None
) -> tuple[dict[tuple[int, int], tuple[float, bool]], list[bool]]:
    """``{(i, j): (value, forced)}`` of the pairs the rules allow, and ``must``.

    ``value`` is what the pair adds to the objective: ``score - threshold`` (nested) or
    ``2 gamma P`` (mea).
    """
    n, thr, mea = len(seq), opt.threshold, opt.method == "mea"
    must, can5, can3, mate = parse_constraint(constraint, n, opt.min_loop)
    cands: dict[tuple[int, int], tuple[float, bool]] = {}
    for i in range(n):
        for j in range(i + opt.min_loop + 1, n):
            s = float(scores[i, j])
            value, gate = (2.0 * opt.gamma * s, s > thr) if mea else (s - thr, s - thr > 0)
            if mate[i] >= 0 or mate[j] >= 0:
                if mate[i] == j:
                    cands[(i, j)] = (value, True)
                continue
            if not (can5[i] and can3[j]):
                continue
            if opt.canonical_only and not is_canonical(seq[i], seq[j]):
                continue
            if gate or must[i] or must[j]:
                cands[(i, j)] = (value, False)
    return cands, must


def _check(seq: str, mat: np.ndarray, prob: bool) -> None:
    if mat.ndim != 2 or mat.shape[0] != mat.shape[1] or mat.shape[0] != len(seq):
        raise ValueError(f"scores must be ({len(seq)}, {len(seq)}), got {mat.shape}")
    up = mat[np.triu_indices(len(seq), 1)]
    if not np.all(np.isfinite(up)):
        raise ValueError("score matrix has a non-finite value")
    if prob and not np.all((up >= 0) & (up <= 1)):
        raise ValueError("mea and threshknot need probabilities in [0, 1]")


def decode_ref(
    seq: str,
    scores: Any,
    options: DecodeOptions | None = None,
    *,
    constraint: str | None = None,
) -> StructureResult:
    """Python reference of :func:`rnaernie.structure.decode` (same arguments and rules)."""
    opt = _as_options(options)
    mat = np.asarray(_as_matrix(scores), dtype=np.float32)
    _check(seq, mat, opt.method in ("mea", "threshknot"))
    if opt.method in NESTED_METHODS:
        return _nested_ref(seq, mat, opt, constraint)
    if constraint is not None:
        raise ValueError(f"constraints need method 'nested' or 'mea', got {opt.method!r}")
    return _mutual_best_ref(seq, mat, opt)


def _nested_ref(seq: str, mat: np.ndarray, opt: DecodeOptions, constraint: str | None):
    n, nlp = len(seq), opt.no_lonely_pairs
    cands, must = candidate_pairs(seq, mat, opt, constraint)
    u = mea_unpaired(mat) if opt.method == "mea" else [0.0] * n  # value of an unpaired base
    by_col: list[list[int]] = [[] for _ in range(n)]
    for i, j in sorted(cands):
        by_col[j].append(i)
    # N[i][j + 1] = best score of the interval [i, j]; N[i][i] is the empty interval.
    N = [[0.0] * (n + 1) for _ in range(n + 1)]
    Q: dict[tuple[int, int], float] = {}  # pair stacked on an outer pair
    P: dict[tuple[int, int], float] = {}  # pair closing an interval entry
    for j in range(n):
        for k in by_col[j]:
            w, forced = cands[(k, j)]
            inner = N[k + 1][j]  # the interval [k + 1, j - 1]
            if nlp:
                qin = Q.get((k + 1, j - 1), NEG_INF)
                Q[(k, j)] = w + max(inner, qin)
                P[(k, j)] = Q[(k, j)] if forced else w + qin
            else:
                P[(k, j)] = w + inner
        for i in range(j, -1, -1):
            best = NEG_INF if must[j] else N[i][j] + u[j]
            for k in by_col[j]:
                if k >= i:
                    best = max(best, N[i][k] + P[(k, j)])
            N[i][j + 1] = best
    if n and N[0][n] == NEG_INF:
        raise ValueError("constraint cannot be satisfied")
    pairs: list[tuple[int, int]] = []
    todo: list[tuple[str, int, int]] = [("N", 0, n - 1)] if n else []
    while todo:
        state, i, j = todo.pop()
        if state == "N":
            while j >= i:
                v = N[i][j + 1]
                if not must[j] and N[i][j] + u[j] == v:
                    j -= 1
                    continue
                k = next(k for k in by_col[j] if k >= i and N[i][k] + P[(k, j)] == v)
                todo.append(("P", k, j))
                j = k - 1
            continue
        pairs.append((i, j))
        if j - i - 1 <= 0:
            continue
        inner = N[i + 1][j]
        if not nlp:
            todo.append(("N", i + 1, j - 1))
            continue
        qin = Q.get((i + 1, j - 1), NEG_INF)
        stacked = state == "Q" or cands[(i, j)][1]
        todo.append(("Q", i + 1, j - 1) if (not stacked or qin > inner) else ("N", i + 1, j - 1))
    pairs.sort()
    arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    paired = {b for p in pairs for b in p}
    score = sum(cands[p][0] for p in pairs) + sum(u[b] for b in range(n) if b not in paired)
    return StructureResult(arr, pairs_to_dot_bracket(arr, n), float(score))


def _mutual_best_ref(seq: str, mat: np.ndarray, opt: DecodeOptions) -> StructureResult:
    n, thr = len(seq), opt.threshold
    inclusive = opt.method == "threshknot"
    best = [-1] * n
    for p in range(n):
        best_s = NEG_INF
        for q in range(n):
            a, b = min(p, q), max(p, q)
            if b - a - 1 < opt.min_loop or a == b:
                continue
            s = float(mat[a, b])
            if not (s >= thr if inclusive else s > thr):
                continue
            if opt.canonical_only and not is_canonical(seq[a], seq[b]):
                continue
            if best[p] < 0 or s > best_s:
                best[p], best_s = q, s
    pairs = [(i, best[i]) for i in range(n) if best[i] > i and best[best[i]] == i]
    arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    score = sum(float(mat[i, j]) - thr for i, j in pairs)
    return StructureResult(arr, pairs_to_dot_bracket(arr, n), float(score))


def nussinov_numpy(
    seq: str, scores: np.ndarray, *, threshold: float = 0.0, min_loop: int = 3
) -> StructureResult:
    """Vectorised numpy Nussinov (canonical pairs, no constraints): the benchmark baseline.

    Row ``i`` is updated with one ``(k, L)`` numpy operation over its ``k`` candidate partners.
    """
    mat = np.asarray(scores, dtype=np.float64)
    n = len(seq)
    codes = np.frombuffer(seq.upper().replace("T", "U").encode(), dtype=np.uint8)
    ok = np.zeros((256, 256), dtype=bool)
    for a, b in _CANONICAL:
        ok[ord(a), ord(b)] = True
    allowed = ok[codes[:, None], codes[None, :]] & (mat - threshold > 0)
    allowed &= np.triu(np.ones((n, n), dtype=bool), min_loop + 1)
    # F[i, j + 1] = N(i, j); F[i, i] = 0 (empty interval).
    F = np.zeros((n + 2, n + 1))
    cols = np.arange(n + 1)
    partners = [np.nonzero(allowed[i])[0] for i in range(n)]
    bvals: list[np.ndarray] = [np.zeros(0)] * n
    for i in range(n - 1, -1, -1):
        F[i, i + 1 :] = F[i + 1, i + 1 :]
        ls = partners[i]
        if ls.size:
            b = mat[i, ls] - threshold + F[i + 1, ls]
            bvals[i] = b
            cand = b[:, None] + F[ls + 1, :]
            cand[cols[None, :] <= ls[:, None]] = NEG_INF
            F[i, i + 1 :] = np.maximum(F[i, i + 1 :], cand[:, i + 1 :].max(axis=0))
    pairs: list[tuple[int, int]] = []
    todo = [(0, n - 1)] if n else []
    while todo:
        i, j = todo.pop()
        while i <= j:
            if F[i, j + 1] == F[i + 1, j + 1]:
                i += 1
                continue
            ls = partners[i]
            vals = bvals[i] + F[ls + 1, j + 1]
            vals[ls > j] = NEG_INF
            k = int(np.argmax(vals))
            pairs.append((i, int(ls[k])))
            todo.append((i + 1, int(ls[k]) - 1))
            i = int(ls[k]) + 1
    pairs.sort()
    arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    score = float(sum(mat[i, j] - threshold for i, j in pairs))
    return StructureResult(arr, pairs_to_dot_bracket(arr, n), score)
