"""Plain-Python references for the C++ decoders (slow; used by the tests and benchmarks).

``decode_ref`` is a column-wise Nussinov DP ("j unpaired, or j pairs with k"), a different
decomposition from the C++ row-push DP, over the same rules (see :mod:`.decoders`), in float64.
``nussinov_numpy`` is a vectorised numpy DP (no constraints), the benchmark baseline.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .decoders import StructureResult, _as_matrix, _options
from .dotbracket import pairs_to_dot_bracket

__all__ = ["decode_greedy_ref", "decode_ref", "nussinov_numpy"]

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


def candidate_pairs(
    seq: str,
    scores: np.ndarray,
    threshold: float,
    canonical_only: bool,
    min_loop: int,
    constraint: str | None,
) -> tuple[dict[tuple[int, int], tuple[float, bool]], list[bool]]:
    """``{(i, j): (score - threshold, forced)}`` of the pairs the rules allow, and ``must``."""
    n = len(seq)
    must, can5, can3, mate = parse_constraint(constraint, n, min_loop)
    cands: dict[tuple[int, int], tuple[float, bool]] = {}
    for i in range(n):
        for j in range(i + min_loop + 1, n):
            w = float(scores[i, j]) - threshold
            if mate[i] >= 0 or mate[j] >= 0:
                if mate[i] == j:
                    cands[(i, j)] = (w, True)
                continue
            if not (can5[i] and can3[j]):
                continue
            if canonical_only and not is_canonical(seq[i], seq[j]):
                continue
            if w > 0 or must[i] or must[j]:
                cands[(i, j)] = (w, False)
    return cands, must


def _check(seq: str, mat: np.ndarray) -> None:
    if mat.ndim != 2 or mat.shape[0] != mat.shape[1] or mat.shape[0] != len(seq):
        raise ValueError(f"scores must be ({len(seq)}, {len(seq)}), got {mat.shape}")
    if mat.size and not np.all(np.isfinite(np.triu(mat, 1))):
        raise ValueError("score matrix has a non-finite value")


def decode_ref(
    seq: str,
    scores: Any,
    *,
    threshold: float | None = None,
    canonical_only: bool = True,
    min_loop: int = 3,
    no_lonely_pairs: bool = False,
    constraint: str | None = None,
    kind: str = "logits",
) -> StructureResult:
    """Python reference of :func:`rnaernie.structure.decode` (same arguments and rules)."""
    thr, min_loop = _options(threshold, kind, min_loop)
    mat = np.asarray(_as_matrix(scores), dtype=np.float32)
    _check(seq, mat)
    n = len(seq)
    cands, must = candidate_pairs(seq, mat, thr, canonical_only, min_loop, constraint)
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
            inner = N[k + 1][j] if k + 1 <= j - 1 else 0.0
            if no_lonely_pairs:
                qin = Q.get((k + 1, j - 1), NEG_INF)
                Q[(k, j)] = w + max(inner, qin)
                P[(k, j)] = Q[(k, j)] if forced else w + qin
            else:
                P[(k, j)] = w + inner
        for i in range(j, -1, -1):
            best = NEG_INF if must[j] else N[i][j]
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
                if not must[j] and N[i][j] == v:
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
        if not no_lonely_pairs:
            todo.append(("N", i + 1, j - 1))
            continue
        qin = Q.get((i + 1, j - 1), NEG_INF)
        stacked = state == "Q" or cands[(i, j)][1]
        todo.append(("Q", i + 1, j - 1) if (not stacked or qin > inner) else ("N", i + 1, j - 1))
    pairs.sort()
    arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    score = sum(cands[p][0] for p in pairs)
    return StructureResult(arr, pairs_to_dot_bracket(arr, n), float(score))


def decode_greedy_ref(
    seq: str,
    scores: Any,
    *,
    threshold: float | None = None,
    canonical_only: bool = True,
    min_loop: int = 3,
    kind: str = "logits",
) -> StructureResult:
    """Python reference of :func:`rnaernie.structure.decode_greedy` (same arguments and rules)."""
    thr, min_loop = _options(threshold, kind, min_loop)
    mat = np.asarray(_as_matrix(scores), dtype=np.float32)
    _check(seq, mat)
    n = len(seq)
    best = [-1] * n
    for p in range(n):
        best_s = NEG_INF
        for q in range(n):
            a, b = min(p, q), max(p, q)
            if b - a - 1 < min_loop or a == b:
                continue
            s = float(mat[a, b])
            if not s > thr or (canonical_only and not is_canonical(seq[a], seq[b])):
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
