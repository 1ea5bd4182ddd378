"""Plain-Python references of the native homology search (``_core.smith_waterman`` and
``_core.HomologyIndex.align_windows``), for tests: the same recurrences and tie rules, and an
exhaustive search that aligns every window to every library sequence."""

from __future__ import annotations

from collections.abc import Sequence

CODES = {"A": 0, "U": 1, "T": 1, "C": 2, "G": 3}


def codes(seq: str) -> list[int]:
    return [CODES.get(c, 4) for c in seq.upper()]


def smith_waterman_ref(a: str, b: str, *, match: int, mismatch: int, gap_open: int,
                       gap_extend: int, band: tuple[int, int] | None = None,
                       ) -> tuple[int, int, int, int, int]:  # fmt: skip
    """(score, a_begin, a_end, b_begin, b_end) of the best local alignment (Gotoh), with the tie
    rules of ``csrc/homology.cpp``: the diagonal before a gap, extending a gap before opening one,
    the first best cell in row order. ``band`` = (lo, hi): only cells with lo ≤ j − i ≤ hi
    (a[i] aligned to b[j]); the others hold H = 0 and no gap."""
    x, y = codes(a), codes(b)
    n, m = len(x), len(y)
    neg = -(1 << 28)
    op, ext = gap_open + gap_extend, gap_extend
    h_prev, hs_prev = [0] * (m + 1), [(0, 0)] * (m + 1)
    f, fs = [neg] * (m + 1), [(0, 0)] * (m + 1)
    best = (0, 0, 0, 0, 0)
    for i in range(1, n + 1):
        h_cur, hs_cur = [0] * (m + 1), [(0, 0)] * (m + 1)
        e, es = neg, (0, 0)
        for j in range(1, m + 1):
            if band is not None and not band[0] <= j - i <= band[1]:
                f[j] = neg  # off the band
                continue
            if f[j] - ext >= h_prev[j] - op:
                f[j] -= ext
            else:
                f[j], fs[j] = h_prev[j] - op, hs_prev[j]
            if e - ext >= h_cur[j - 1] - op:
                e -= ext
            else:
                e, es = h_cur[j - 1] - op, hs_cur[j - 1]
            same = x[i - 1] == y[j - 1] and x[i - 1] < 4
            h = h_prev[j - 1] + (match if same else mismatch)
            start = hs_prev[j - 1] if h_prev[j - 1] > 0 else (i - 1, j - 1)
            if e > h:
                h, start = e, es
            if f[j] > h:
                h, start = f[j], fs[j]
            h = max(h, 0)
            h_cur[j], hs_cur[j] = h, start
            if h > best[0]:
                best = (h, start[0], i, start[1], j)
        h_prev, hs_prev = h_cur, hs_cur
    return best


def best_family_scores_ref(window: str, refs: Sequence[str], family: Sequence[int],
                           n_families: int, **scoring: int) -> list[int]:  # fmt: skip
    """Exhaustive search: each family's best local alignment score of ``window`` against all of
    its references (an upper bound of the seeded search's scores, reached when the seeds find
    the reference and the alignment fits the aligned stretch)."""
    out = [0] * n_families
    for r, fam in zip(refs, family):
        out[fam] = max(out[fam], smith_waterman_ref(window, r, **scoring)[0])
    return out


def dust_mask_ref(seq: str, window: int, threshold: float) -> list[bool]:
    """``_core.dust_mask`` stretch by stretch: every position of a ``window``-nt stretch whose
    triplet score Σ c(c − 1)/2 / (l − 1) (l = window − 2) exceeds ``threshold`` is masked."""
    x = codes(seq)
    n = len(x)
    mask = [False] * n
    if threshold <= 0 or n < 3:
        return mask
    w = min(window, n)
    for a in range(n - w + 1):
        counts: dict[tuple[int, ...], int] = {}
        for p in range(a, a + w - 2):
            t = tuple(x[p : p + 3])
            if max(t) < 4:
                counts[t] = counts.get(t, 0) + 1
        score = sum(c * (c - 1) / 2 for c in counts.values())
        if w - 3 > 0 and score / (w - 3) > threshold:
            for p in range(a, a + w):
                mask[p] = True
    return mask
