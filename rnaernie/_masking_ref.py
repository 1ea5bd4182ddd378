"""Plain-Python reference of the C++ masking routines (same rules, same random streams).

Used by the tests to hold the C++ code to the rules, and by the benchmark as the baseline.
"""

from __future__ import annotations

from .vocab import MASK_ID, NUC_OFFSET, UNK_ID

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1


class SplitMix64:
    def __init__(self, seed: int) -> None:
        self.state = seed & M64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.next() % n

    def uniform(self) -> float:
        return (self.next() >> 11) * 2.0**-53


def fmix32(x: int) -> int:
    x &= M32
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & M32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & M32
    return x ^ (x >> 16)


def _maskable(t: int) -> bool:
    return t == UNK_ID or NUC_OFFSET <= t < NUC_OFFSET + 4


def _shuffle(v: list, rng: SplitMix64) -> None:
    for i in range(len(v) - 1, 0, -1):
        j = rng.below(i + 1)
        v[i], v[j] = v[j], v[i]


def naive_motif_hits(row: list[int], motifs: list[list[int]]) -> list[tuple[int, int, int]]:
    """(start, end, motif) of every occurrence of the token-id motifs in a row, by brute force."""
    hits = []
    for m, pat in enumerate(motifs):
        k = len(pat)
        for s in range(len(row) - k + 1):
            if row[s : s + k] == pat:
                hits.append((s, s + k, m))
    return hits


def select_row(
    row: list[int],
    r: int,
    seed: int,
    levels: list[int],
    motifs: list[list[int]] | None,
    tiers: list[int] | None,
    mask_prob: float = 0.15,
    max_predictions: int = 77,
    span_min: int = 5,
    span_max: int = 8,
) -> tuple[list[int], int]:
    """Selected positions and level index of one row; mirrors ``select_mask_positions`` in C++."""
    rng = SplitMix64((seed * 0x9E3779B97F4A7C15 + r) & M64)
    cols = len(row)
    sel = [0] * cols
    n = sum(_maskable(t) for t in row)
    budget = min(max_predictions, max(1, round(n * mask_prob))) if n else 0
    level = levels[rng.below(len(levels))]
    count = 0

    def free(b: int, e: int) -> bool:
        return not any(sel[b:e])

    def take(b: int, e: int) -> None:
        nonlocal count
        for i in range(b, e):
            sel[i] = 1
        count += e - b

    if level == 0:
        pos = [i for i, t in enumerate(row) if _maskable(t)]
        for i in range(min(budget, len(pos))):
            j = i + rng.below(len(pos) - i)
            pos[i], pos[j] = pos[j], pos[i]
            take(pos[i], pos[i] + 1)
    elif level == 1:
        run_end = [0] * cols
        e = -1
        for i in range(cols - 1, -1, -1):
            if not _maskable(row[i]):
                e = -1
                continue
            if e < 0:
                e = i + 1
            run_end[i] = e
        starts = [
            i
            for i in range(cols)
            if _maskable(row[i])
            and (i + span_min <= run_end[i] or i == 0 or not _maskable(row[i - 1]))
        ]
        _shuffle(starts, rng)
        nk = span_max - span_min + 1
        total = sum(1.0 / k for k in range(1, nk + 1))
        for s in starts:
            if count >= budget:
                break
            u = rng.uniform() * total
            k = 0
            while k < nk - 1 and u >= 1.0 / (k + 1):
                k += 1
                u -= 1.0 / k
            length = min(span_min + k, run_end[s] - s, budget - count)
            if free(s, s + length):
                take(s, s + length)
    else:
        assert motifs is not None and tiers is not None
        hits = sorted(naive_motif_hits(row, motifs))
        first = [h for h in hits if not tiers[h[2]]]
        second = [h for h in hits if tiers[h[2]]]
        _shuffle(first, rng)
        for s, e, _ in first + second:
            if count >= budget:
                break
            if count + (e - s) > budget:
                continue
            if free(s, e):
                take(s, e)
    return sel, level


def apply_row(row: list[int], sel: list[int], r: int, seed: int) -> tuple[list[int], list[int]]:
    """80/10/10 replacement of one row (row index r of a batch with len(row) columns)."""
    key = fmix32(seed & M32)
    out, labels = [], []
    for c, (t, s) in enumerate(zip(row, sel)):
        if not s:
            out.append(t)
            labels.append(-100)
            continue
        h = fmix32(((r * len(row) + c) & M32) ^ key)
        u = h % 10
        out.append(MASK_ID if u < 8 else (NUC_OFFSET + (h // 10) % 4 if u == 8 else t))
        labels.append(t)
    return out, labels
