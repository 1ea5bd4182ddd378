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


def dust_low(seq: str, window: int, threshold: float) -> list[int]:
    """:func:`dust_mask_ref` as 0/1 per position (all 0 when ``threshold`` ≤ 0)."""
    return (
        [int(x) for x in dust_mask_ref(seq, window, threshold)] if threshold > 0 else [0] * len(seq)
    )


def align_windows_ref(seq: str, starts: Sequence[int], width: int, refs: Sequence[str],
                      family: Sequence[int], *, k: int, max_occurrences: int, match: int,
                      mismatch: int, gap_open: int, gap_extend: int, ungapped: int, xdrop: int,
                      max_candidates: int, pad: int, dust_window: int = 64, dust: float = 0.0,
                      seed: str = "", masked: Sequence[tuple[int, int]] = ()
                      ) -> tuple[list[list[int]], list[tuple[int, ...]], list[int]]:  # fmt: skip
    """``_core.HomologyIndex(refs, family, seed or "1" * k, max_occurrences, dust_window, dust)
    .align_windows(seq, starts, width, ...)`` written out: (family scores per window, the best
    alignment per window as (score, ref, q_begin, q_end, r_begin, r_end), references aligned per
    window). Same seeds (the bases at the pattern's ones, of stretches of its span outside
    low-complexity stretches and the ``masked`` spans of ``seq``, those found more than
    ``max_occurrences`` times in the library dropped), X-drop extensions, gate, candidate order
    and banded Smith–Waterman as ``csrc/homology.cpp`` (``masked``: its ``align_batch``)."""
    n_fam = max(family, default=-1) + 1
    rc = [codes(r) for r in refs]
    pattern = seed or "1" * k
    span, care = len(pattern), [i for i, x in enumerate(pattern) if x == "1"]

    def kmers(c: list[int], low: list[int]):  # (position, seed) of every seed
        for p in range(len(c) - span + 1):
            if all(x < 4 for x in c[p : p + span]) and not any(low[p : p + span]):
                yield p, tuple(c[p + i] for i in care)

    table: dict[tuple[int, ...], list[tuple[int, int]]] = {}
    for r, (s, c) in enumerate(zip(refs, rc)):
        for p, km in kmers(c, dust_low(s, dust_window, dust)):
            table.setdefault(km, []).append((r, p))
    table = {km: occ for km, occ in table.items() if len(occ) <= max_occurrences}
    qc, qlow = codes(seq), dust_low(seq, dust_window, dust)
    for a, b in masked:
        qlow[a:b] = [1] * (b - a)

    def step(a: int, b: int) -> int:
        return match if a == b and a < 4 else mismatch

    def extend(q: list[int], ref: list[int], diag: int, qp: int) -> tuple[int, int]:
        best_r = run = 0
        p = qp + span
        while p < len(q) and p + diag < len(ref):
            run += step(q[p], ref[p + diag])
            best_r = max(best_r, run)
            if best_r - run > xdrop:
                break
            p += 1
        reach = p
        best_l = run = 0
        p = qp - 1
        while p >= 0 and p + diag >= 0:
            run += step(q[p], ref[p + diag])
            best_l = max(best_l, run)
            if best_l - run > xdrop:
                break
            p -= 1
        seed_score = sum(step(q[qp + t], ref[qp + t + diag]) for t in range(span))
        return seed_score + best_l + best_r, reach

    scores, best_all, n_cand = [], [], []
    for st in starts:
        q, low = qc[st : st + width], qlow[st : st + width]
        hits = sorted((r, pos - qp, qp) for qp, km in kmers(q, low) for r, pos in table.get(km, []))
        cands = []
        for r in sorted({h[0] for h in hits}):
            best_c, reach, diag = (0, r, 0), -1, 0
            for _, d, qp in (h for h in hits if h[0] == r):
                if d == diag and qp < reach:
                    continue
                diag = d
                u, reach = extend(q, rc[r], d, qp)
                if u > best_c[0]:
                    best_c = (u, r, d)
            if best_c[0] >= ungapped:
                cands.append(best_c)
        cands = sorted(cands, key=lambda c: (-c[0], c[1]))[:max_candidates]
        fam_score, best = [0] * n_fam, (0, -1, 0, 0, 0, 0)
        for _, r, diag in cands:
            lo, hi = max(0, diag - pad), min(len(rc[r]), diag + len(q) + pad)
            if hi <= lo:
                continue
            d = diag - lo
            sc, qb, qe, rb, re_ = smith_waterman_ref(
                seq[st : st + width], refs[r][lo:hi], match=match, mismatch=mismatch,
                gap_open=gap_open, gap_extend=gap_extend, band=(d - pad, d + pad),
            )  # fmt: skip
            if sc <= 0:
                continue
            fam_score[family[r]] = max(fam_score[family[r]], sc)
            if sc > best[0]:
                best = (sc, r, qb, qe, rb + lo, re_ + lo)
        scores.append(fam_score)
        best_all.append(best)
        n_cand.append(len(cands))
    return scores, best_all, n_cand
