"""Stress every native entry point with random and adversarial inputs (meant to run under ASan/UBSan).

Families (each in its own subprocess, so one sanitizer abort does not hide the others):
  tokenizer  Tokenizer.encode_batch / _core.encode_batch: random bytes, non-ASCII, lowercase, whitespace,
             IUPAC, empty, wrong types, windows/truncation/types/names options; valid outputs are
             checked against a small Python reference.
  lengths    _core.normalized_lengths, checked against the Python reference.
  motifs     MotifMatcher construction (odd motif lists) and find (odd texts, multi-MB texts across the
             1 MiB chunk boundary), checked against a brute-force search.
  masking    select_mask_positions: wrong ndim/dtype, non-contiguous, huge/negative/out-of-vocab ids, odd
             options; small valid cases checked against rnaernie._masking_ref.select_row.
  mlm        apply_mlm_replacement: mismatched shapes, odd dtypes; checked against _masking_ref.apply_row.
  structure  scripts/stress/stress_structure.py run(n_iter, seed), when that file exists.
  probe_*    single known-dangerous inputs (see PROBES), one subprocess each.

Every rejection must be a ValueError (UnicodeError included) or a TypeError; any other exception is
a failure, and so is a crash (non-zero exit, sanitizer report). Usage:
    python stress_native.py --n 12000 --seed 0            # parent: runs all families, prints a summary
    python stress_native.py --family masking --n 100      # one family (prints a JSON line)
"""

# ruff: noqa: B023  (the lambdas are called at once by Tally.call, inside the loop iteration)
from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import random
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OK_ERRORS = (ValueError, TypeError)
NUC = {"A": 35, "U": 36, "C": 37, "G": 38, "T": 36}
IUPAC = set("NRYSWKMBDHV")
WS = set(b" \t\r\n\v\f")


class Tally:
    def __init__(self, family: str) -> None:
        self.family = family
        self.tried = 0
        self.accepted = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.failures: collections.Counter[str] = collections.Counter()
        self.examples: dict[str, str] = {}

    def call(self, what: str, fn, check=None, expect_error: bool | None = None):
        """Run fn(); classify the outcome; run check(result) on success. Returns the result or None."""
        self.tried += 1
        try:
            out = fn()
        except OK_ERRORS as e:
            self.rejected[type(e).__name__] += 1
            if expect_error is False:
                self._fail(f"unexpected {type(e).__name__}", what, e)
            return None
        except Exception as e:
            self._fail(f"{type(e).__name__} (not ValueError/TypeError)", what, e)
            return None
        self.accepted += 1
        if expect_error:
            self._fail("accepted, expected an error", what, None)
        if check is not None:
            try:
                check(out)
            except AssertionError as e:
                self._fail("wrong result", what, e)
        return out

    def _fail(self, kind: str, what: str, e: BaseException | None) -> None:
        key = f"{kind}: {what.split('(')[0]}"
        self.failures[key] += 1
        if key not in self.examples:
            msg = "" if e is None else f" -> {type(e).__name__}: {str(e)[:200]}"
            self.examples[key] = what[:400] + msg

    def summary(self) -> dict:
        return {
            "family": self.family,
            "tried": self.tried,
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "failures": dict(self.failures),
            "examples": self.examples,
        }


def short(x) -> str:
    r = repr(x)
    return r if len(r) <= 120 else r[:100] + f"...<{len(r)} chars>"


# ---------------------------------------------------------------- input generators


def rand_seq(rng: random.Random):
    kind = rng.random()
    n = rng.choice([0, 1, 2, 5, 17, 100, 513, 1000])
    if kind < 0.30:
        return "".join(rng.choice("ACGU") for _ in range(n))
    if kind < 0.45:
        return "".join(rng.choice("acgutACGUT  \t\nNRYnry") for _ in range(n))
    if kind < 0.55:
        return bytes(rng.getrandbits(8) for _ in range(min(n, 64)))
    if kind < 0.62:
        return "".join(rng.choice("ACGUé漢\U0001f600ＡＣＧ\x00\x7f") for _ in range(min(n, 32)))
    if kind < 0.70:
        return "".join(chr(rng.randrange(0, 0x2FFFF)) for _ in range(min(n, 16))).replace(
            "\ud800", ""
        )
    if kind < 0.74:
        return "AC\ud800GU"  # lone surrogate: not encodable as UTF-8
    if kind < 0.80:
        return rng.choice([None, 1, 1.5, b"ACGU", bytearray(b"ACGU"), ["A"], np.str_("ACGU")])
    if kind < 0.90:
        return "".join(rng.choice("ACGUN") for _ in range(n)).encode()
    return "".join(rng.choice("ACGU") for _ in range(n)).lower()


def ref_tokens(seq, replace_invalid: bool):
    """Python reference of the normaliser: token list, or None if an invalid byte is not replaced."""
    try:
        data = seq.encode("utf-8") if isinstance(seq, str) else bytes(seq)
    except UnicodeEncodeError:
        return None
    out = []
    for b in data:
        if b in WS:
            continue
        c = chr(b).upper() if b < 128 else ""
        if c in NUC:
            out.append(NUC[c])
        elif c in IUPAC:
            out.append(1)
        elif replace_invalid:
            out.append(1)
        else:
            return None
    return out


def plan_windows(n: int, window: int, stride: int):
    if n <= window:
        return [(0, n)]
    out, s = [], 0
    while s + window < n:
        out.append((s, s + window))
        s += stride
    out.append((n - window, n))
    return out


# ---------------------------------------------------------------- families


def fam_tokenizer(n: int, seed: int, t: Tally) -> None:
    from rnaernie import Tokenizer, _core
    from rnaernie.vocab import RNA_TYPES

    rng = random.Random(seed)
    for it in range(n):
        seqs = [rand_seq(rng) for _ in range(rng.choice([0, 1, 2, 3, 8]))]
        container = rng.choice([list, list, list, tuple])
        max_length = rng.choice([None, 0, 1, 2, 3, 4, 5, 6, 10, 512, 1100, 2**31, -1, 2**40])
        truncate = rng.random() < 0.5
        replace_invalid = rng.random() < 0.5
        add_special = rng.random() < 0.8
        window = rng.choice([None, None, 0, 1, 3, 7, 100, -1, 10**6])
        stride = rng.choice([None, None, 1, 2, 3, 7, 0, -2, 10**6])
        types = None
        if rng.random() < 0.3:
            pool = [*RNA_TYPES[:5], "[MASK]", 7, 34, 4, 0, -1, 35, "mRNA", 2**40]
            types = [rng.choice(pool) for _ in range(len(seqs) + rng.choice([0, 0, 0, 1, -1]))]
        names = None
        if rng.random() < 0.2:
            names = rng.choice(
                [[f"s{i}" for i in range(len(seqs))], ["only-one"], [], ["é\x00"] * len(seqs)]
            )
        kw = dict(
            max_length=max_length, truncate=truncate, replace_invalid=replace_invalid,
            add_special_tokens=add_special, window=window, stride=stride, types=types, names=names,
        )  # fmt: skip
        what = f"Tokenizer(threads={it % 3}).encode_batch({short(seqs)}, **{kw})"
        tok_threads = it % 3
        # structural expectation (only for fully simple cases): compare rows with the reference
        check = None
        simple = (
            all(isinstance(s, (str, bytes)) for s in seqs)
            and types is None
            and (max_length is None or 3 <= max_length < 2**31)
        )
        if simple:
            check = _tokenizer_check(seqs, kw, max_length or 512)
        t.call(
            what, lambda: Tokenizer(threads=tok_threads).encode_batch(container(seqs), **kw), check
        )
        if it % 5 == 0:  # the raw binding too (no Python-side validation)
            core_kw = dict(
                types=rng.choice([None, [], [7] * len(seqs), [99] * len(seqs), [7]]),
                max_length=rng.choice([0, 3, 512, -5]), truncate=truncate, replace_invalid=replace_invalid,
                add_special=add_special, window=rng.choice([0, 3, -4]), stride=rng.choice([0, 1, -1, 9]),
                threads=rng.choice([0, 1, 2, -1, 64]), names=rng.choice([None, ["x"]]),
            )  # fmt: skip
            t.call(
                f"_core.encode_batch({short(seqs)}, **{core_kw})",
                lambda: _core.encode_batch(seqs, **core_kw),
            )
    # a few huge inputs
    big = "ACGU" * 750_000  # 3 MB
    t.call("encode_batch([3 MB], window=510, stride=255)",
           lambda: Tokenizer().encode_batch([big], window=510, stride=255),
           lambda enc: _assert(enc.input_ids.shape[1] == 512 and enc.end.max() == len(big)))  # fmt: skip
    t.call(
        "encode_batch([3 MB], truncate=True)",
        lambda: Tokenizer().encode_batch([big, ""], truncate=True),
    )
    t.call(
        "encode_batch([3 MB]) -> too long",
        lambda: Tokenizer().encode_batch([big]),
        expect_error=True,
    )
    t.call("encode_batch([3 MB with spaces], window=100)",
           lambda: Tokenizer().encode_batch([" A" * 1_500_000], window=100, stride=60))  # fmt: skip
    t.call("encode_batch([5 MB], max_length=0 (no limit))",
           lambda: _core.encode_batch(["G" * 5_000_000], max_length=0))  # fmt: skip
    t.call("encode_batch(str)", lambda: Tokenizer().encode_batch("ACGU"), expect_error=True)
    t.call("encode_batch(None)", lambda: Tokenizer().encode_batch(None), expect_error=True)
    t.call("encode_batch(generator)", lambda: Tokenizer().encode_batch(s for s in ["ACGU"]))
    t.call("Tokenizer(max_length=2)", lambda: Tokenizer(max_length=2), expect_error=True)


def _assert(cond: bool, msg: str = "") -> None:
    if not cond:
        raise AssertionError(msg)


def _tokenizer_check(seqs, kw, max_length):
    def check(enc):
        specials = 2 if kw["add_special_tokens"] else 0
        room = max_length - specials
        window = kw["window"] or 0
        stride = kw["stride"] or 0
        rows = []
        for i, s in enumerate(seqs):
            toks = ref_tokens(s, kw["replace_invalid"])
            _assert(toks is not None, f"sequence {i} should have been rejected")
            if window > 0:
                for b, e in plan_windows(len(toks), window, stride if stride > 0 else window):
                    rows.append(toks[b:e])
            else:
                _assert(len(toks) <= room or kw["truncate"], f"sequence {i} too long but accepted")
                rows.append(toks[:room])
        _assert(enc.input_ids.shape[0] == len(rows), "row count")
        for r, toks in enumerate(rows):
            want = [2, *toks, 3] if specials else toks
            got = enc.input_ids[r, : enc.lengths[r]].tolist()
            _assert(got == want, f"row {r}: {got[:10]} != {want[:10]}")
            _assert(int(enc.attention_mask[r].sum()) == len(want), "mask")
            _assert(not enc.input_ids[r, len(want) :].any(), "padding")

    return check


def fam_lengths(n: int, seed: int, t: Tally) -> None:
    from rnaernie import _core

    rng = random.Random(seed)
    for _ in range(n):
        seqs = [rand_seq(rng) for _ in range(rng.choice([0, 1, 4]))]
        ri = rng.random() < 0.5
        threads = rng.choice([0, 1, 3, -1])
        names = rng.choice([None, None, ["n"] * len(seqs), [1]])

        def check(out, seqs=seqs, ri=ri):
            want = [len(ref_tokens(s, ri)) for s in seqs]
            _assert(out.tolist() == want, f"{out.tolist()} != {want}")

        t.call(f"_core.normalized_lengths({short(seqs)}, {ri}, {threads}, {names})",
               lambda: _core.normalized_lengths(seqs, ri, threads, names), check)  # fmt: skip


def naive_find(seqs, motifs):
    motifs = [m.decode() if isinstance(m, bytes) else m for m in motifs]
    norm = [
        m.upper().replace("T", "U").translate({ord(c): None for c in " \t\r\n\v\f"}) for m in motifs
    ]
    hits = set()
    for si, s in enumerate(seqs):
        text = (s.decode() if isinstance(s, bytes) else s).upper().replace("T", "U")
        text = "".join(c for c in text if c not in " \t\r\n\v\f")
        for mi, m in enumerate(norm):
            p = text.find(m)
            while p >= 0:
                hits.add((si, p, p + len(m), mi))
                p = text.find(m, p + 1)
    return hits


def rand_motif(rng: random.Random):
    r = rng.random()
    if r < 0.7:
        return "".join(rng.choice("ACGU") for _ in range(rng.randint(1, 9)))
    if r < 0.8:
        return "".join(rng.choice("acgtu ") for _ in range(rng.randint(1, 9)))
    return rng.choice(["", " ", "N", "ACGX", "é", "A\x00C", 5, None, "U" * 5000, b"ACG"])


def fam_motifs(n: int, seed: int, t: Tally) -> None:
    from rnaernie import MotifMatcher, _core

    rng = random.Random(seed)
    for it in range(n):
        motifs = [rand_motif(rng) for _ in range(rng.choice([0, 1, 3, 10, 40]))]
        m = t.call(f"MotifMatcher({short(motifs)})", lambda: MotifMatcher(motifs, threads=it % 3))
        if m is None:
            continue
        for _ in range(3):
            seqs = [rand_seq(rng) for _ in range(rng.choice([0, 1, 3]))]
            ok = all(isinstance(s, (str, bytes)) and ref_tokens(s, False) is not None for s in seqs)
            check = None
            if ok and all(isinstance(s, str) or s.isascii() for s in seqs):

                def check(h, seqs=seqs, motifs=motifs):
                    got = set(
                        zip(
                            h.seq_index.tolist(),
                            h.start.tolist(),
                            h.end.tolist(),
                            h.motif_id.tolist(),
                        )
                    )
                    want = naive_find(seqs, motifs)  # motifs are ACGU only: no hit can span an N
                    _assert(got == want, f"{len(got)} hits != {len(want)} expected")

            names = rng.choice([None, None, ["a"], [3]])
            t.call(
                f"MotifMatcher.find({short(seqs)}, names={names})",
                lambda: m.find(seqs, names=names),
                check,
            )
        if it % 10 == 0:
            t.call(
                "_core.MotifMatcher.find(threads=-7)", lambda: m._core.find(["ACGU"], threads=-7)
            )
            t.call(
                "_core.MotifMatcher(non-list)",
                lambda: _core.MotifMatcher(rng.choice([None, 5, "ACG"])),
            )
    # multi-MB texts: matches across the 1 MiB chunk boundaries, whitespace and IUPAC in long texts
    motifs = ["ACGUACGUAC", "GGG", "A", "UUUUUUUUUUUUUUUUUUUU", "CAGU"]
    m = MotifMatcher(motifs)
    r = np.random.default_rng(seed)
    for size, extra in [(3 << 20, ""), ((1 << 20) + 7, ""), (2 << 20, " "), (2 << 20, "N")]:
        text = np.frombuffer(b"ACGU", np.uint8)[r.integers(0, 4, size)].tobytes().decode()
        cut = (1 << 20) - 4
        text = text[:cut] + "ACGUACGUAC" + text[cut + 10 :]  # straddles the first chunk boundary
        text = text[: 1 << 19] + "U" * 20 + text[(1 << 19) + 20 :]
        if extra:
            text = text[:1000] + extra + text[1000:]
        seqs = [text, text[:1000]]
        t.call(f"find([{size} B text + {extra!r}])", lambda: m.find(seqs),
               lambda h, seqs=seqs: _assert(
                   set(zip(h.seq_index.tolist(), h.start.tolist(), h.end.tolist(), h.motif_id.tolist()))
                   == naive_find(seqs, motifs)))  # fmt: skip
    t.call("MotifMatcher([])", lambda: MotifMatcher([]).find(["ACGU" * 300_000]),
           lambda h: _assert(len(h) == 0))  # fmt: skip
    t.call("MotifMatcher.default().find([4 MB])",
           lambda: MotifMatcher.default().find(["ACGU" * (1 << 20)]))  # fmt: skip


def rand_ids(rng: random.Random, npr: np.random.Generator):
    b, cols = rng.choice([0, 1, 2, 5]), rng.choice([0, 1, 3, 12, 40, 130])
    r = rng.random()
    if r < 0.5:
        a = npr.choice(
            [0, 1, 2, 3, 4, 6, 7, 20, 35, 36, 37, 38],
            size=(b, cols),
            p=[0.06] + [0.02] * 7 + [0.2] * 4,
        )
        a = a.astype(np.int64)
        if cols >= 2 and rng.random() < 0.7:
            a[:, 0] = 2
    elif r < 0.6:
        # (ids near INT64_MIN overflow `id - 35` in the matcher: see probe_motif_ids_int64_min)
        a = npr.integers(-(2**62), 2**62, size=(b, cols), dtype=np.int64)
    elif r < 0.7:
        a = npr.integers(-50, 100, size=(b, cols)).astype(
            rng.choice([np.int8, np.int32, np.uint64, np.int16])
        )
    elif r < 0.75:
        # (NaN/inf/-1e30 cast to int64 give INT64_MIN: see probe_motif_ids_int64_min)
        a = npr.choice([35.0, 36.7, -3.5, 1e6, 2.0**62], size=(b, cols))
    elif r < 0.8:
        a = npr.integers(0, 39, size=(b, cols, 2))  # 3-D
    elif r < 0.85:
        a = rng.choice([np.int64(35), np.arange(40), np.zeros((2, 3), bool), np.array([["A"]]),
                        np.array([[object()]]), [[35, 36], [37]], "ACGU", None, np.empty((0,))])  # fmt: skip
    elif r < 0.92:  # non-contiguous views
        base = npr.choice([2, 35, 36, 37, 38, 1, 3], size=(max(b, 1) * 2, max(cols, 1) * 3)).astype(
            np.int64
        )
        a = rng.choice([base[::2, ::3], base.T, np.asfortranarray(base), base[:, ::-1]])
    else:
        a = np.full((b, cols), 35, np.int64)
        a.setflags(write=False)
    return a


def fam_masking(n: int, seed: int, t: Tally) -> None:
    from rnaernie import MotifMatcher, _core
    from rnaernie import _masking_ref as ref
    from rnaernie.masking import LEVELS, select_mask_positions

    rng = random.Random(seed)
    npr = np.random.default_rng(seed)
    small = MotifMatcher(["ACG", "GU", "UUA", "CCCCC", "AG"], [0, 0, 1, 1, 0], ("db", "Statistics"))
    matchers = [None, small, MotifMatcher([]), MotifMatcher.default()]
    small_motifs = [[NUC[c] for c in m] for m in small.motifs]
    for it in range(n):
        ids = rand_ids(rng, npr)
        levels = rng.choice([list(LEVELS), ["base"], ["subsequence"], ["motif"], ["motif", "base"], [],
                             ["bogus"], ("base",), "base"])  # fmt: skip
        matcher = rng.choice(matchers)
        kw = dict(
            seed=rng.choice([0, 1, -1, 2**64 + 5, 2**70, 12345]),
            mask_prob=rng.choice([0.15, 0.15, 0.0, 1.0, -0.1, 1.5, float("nan"), float("inf")]),
            max_predictions=rng.choice([77, 77, 0, 1, 3, -1, 10**9, 2**63]),
            span_min=rng.choice([5, 5, 1, 2, 0, -3, 9, 200]),
            span_max=rng.choice([8, 8, 1, 2, 4, 12, 300]),
            threads=rng.choice([0, 1, 2, -1, 33]),
        )
        if kw["span_max"] - kw["span_min"] > 1000:
            kw["span_max"] = kw["span_min"] + 3
        what = (
            f"select_mask_positions({short(ids)}, levels={levels}, matcher={bool(matcher)}, **{kw})"
        )

        check = _mask_check(ids, levels, matcher, small, small_motifs, kw, ref, LEVELS)
        t.call(
            what, lambda: select_mask_positions(ids, levels=levels, matcher=matcher, **kw), check
        )
        if it % 7 == 0:  # the raw binding: tier lists and matcher types the wrapper never passes
            tiers = rng.choice([[], [0] * 5, [1] * 4, [256] * 5, [-1] * 5, None, "x"])
            m = rng.choice([None, small._core, "matcher"])
            arr = ids if isinstance(ids, np.ndarray) else np.zeros((1, 1), np.int64)
            t.call(f"_core.select_mask_positions({short(arr)}, {m}, {tiers})",
                   lambda: _core.select_mask_positions(arr, m, tiers, seed=1, threads=1))  # fmt: skip


def _mask_check(ids, levels, matcher, small, small_motifs, kw, ref, LEVELS):
    def check(out):
        sel, lv = out
        a = np.ascontiguousarray(ids, dtype=np.int64)
        _assert(sel.shape == a.shape and lv.shape == (a.shape[0],), "shapes")
        maskable = (a == 1) | ((a >= 35) & (a <= 38))
        _assert(not (sel & ~maskable).any(), "selected a non-maskable position")
        budget = np.minimum(
            kw["max_predictions"], np.maximum(1, np.rint(maskable.sum(1) * kw["mask_prob"]))
        )
        budget = np.where(maskable.sum(1) > 0, budget, 0)
        _assert((sel.sum(1) <= budget).all(), "over budget")
        if matcher is small or "motif" not in levels:  # cheap enough for the brute-force reference
            lvl = [LEVELS.index(x) for x in LEVELS if x in levels]
            tiers = small.tiers.tolist()
            for r in range(min(a.shape[0], 3)):
                s, lev = ref.select_row(
                    a[r].tolist(), r, kw["seed"] % 2**64, lvl, small_motifs, tiers, kw["mask_prob"],
                    kw["max_predictions"], kw["span_min"], kw["span_max"],
                )  # fmt: skip
                _assert(
                    lev == lv[r] and s == sel[r].astype(int).tolist(),
                    f"row {r} differs from reference",
                )

    return check


def fam_mlm(n: int, seed: int, t: Tally) -> None:
    from rnaernie import _core
    from rnaernie import _masking_ref as ref
    from rnaernie.masking import apply_mlm_replacement

    rng = random.Random(seed)
    npr = np.random.default_rng(seed)
    for it in range(n):
        ids = rand_ids(rng, npr)
        shape = np.shape(ids) if isinstance(ids, np.ndarray) else (1, 1)
        r = rng.random()
        if r < 0.6:
            sel = npr.random(shape) < 0.3
        elif r < 0.7:
            sel = npr.integers(0, 3, shape)  # non-bool
        elif r < 0.8:
            sel = np.zeros((shape[0] + 1, *shape[1:]) if shape else (1,), bool)  # mismatched
        elif r < 0.9:
            sel = (npr.random((shape[0] if shape else 1, 200)) < 0.5)[:, ::7][
                :, : shape[1] if len(shape) > 1 else 1
            ]
        else:
            sel = rng.choice([None, True, [[True]], np.ones(3, bool)])
        seed_ = rng.choice([0, 7, -1, 2**32 + 3, 2**80])

        def check(out, ids=ids, sel=sel, seed_=seed_):
            a = np.ascontiguousarray(ids, dtype=np.int64)
            s = np.ascontiguousarray(sel, dtype=bool)
            masked, labels = out
            _assert(masked.shape == a.shape == labels.shape, "shape")
            for rr in range(min(a.shape[0], 2)):
                o, lab = ref.apply_row(
                    a[rr].tolist(), s[rr].astype(int).tolist(), rr, seed_ % 2**32
                )
                _assert(
                    masked[rr].tolist() == o and labels[rr].tolist() == lab, f"row {rr} differs"
                )

        t.call(f"apply_mlm_replacement({short(ids)}, {short(sel)}, seed={seed_})",
               lambda: apply_mlm_replacement(ids, sel, seed=seed_, threads=it % 3), check)  # fmt: skip
        if it % 9 == 0:
            t.call("_core.apply_mlm_replacement(raw)",
                   lambda: _core.apply_mlm_replacement(ids, sel, seed=rng.choice([0, -1, 2**33]), threads=1))  # fmt: skip


def fam_structure(n: int, seed: int, t: Tally) -> None:
    path = HERE / "stress_structure.py"
    if not path.exists():
        return
    spec = importlib.util.spec_from_file_location("stress_structure", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    t.call(f"stress_structure.run({n}, {seed})", lambda: mod.run(n, seed))


# ---- probes: one known-dangerous input each, isolated in its own process ----


class _FreshStrings:
    """A sequence whose items are new str objects on every access (like a numpy '<U' array)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> str:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return "".join(["ACGU", "ACGU"])  # a fresh object each call


def _probe_encode_np_str():
    from rnaernie import Tokenizer

    return Tokenizer().encode_batch(np.array(["ACGUACGUAC"] * 64))


def _probe_find_np_str():
    from rnaernie import MotifMatcher

    return MotifMatcher(["ACG"]).find(np.array(["ACGUACGUAC"] * 64))


def _probe_lengths_custom_sequence():
    from rnaernie import _core

    return _core.normalized_lengths(_FreshStrings(64))


def _probe_span_min_overflow():
    from rnaernie import Tokenizer
    from rnaernie.masking import select_mask_positions

    ids = Tokenizer().encode_batch(["ACGUAGGA" * 10]).input_ids
    return select_mask_positions(
        ids, seed=0, levels=["subsequence"], span_min=2**63 - 1, span_max=2**63 - 1
    )


def _probe_span_max_huge():
    from rnaernie import Tokenizer
    from rnaernie.masking import select_mask_positions

    ids = Tokenizer().encode_batch(["ACGUAGGA" * 10]).input_ids
    return select_mask_positions(ids, seed=0, levels=["subsequence"], span_min=1, span_max=2**62)


def _probe_motif_ids_int64_min():
    from rnaernie.masking import select_mask_positions

    ids = np.array([[2, 35, -(2**63), 36, 3]], dtype=np.int64)
    return select_mask_positions(ids, seed=0, levels=["motif"])


PROBES = {
    "probe_motif_ids_int64_min": _probe_motif_ids_int64_min,
    "probe_encode_np_str": _probe_encode_np_str,
    "probe_find_np_str": _probe_find_np_str,
    "probe_lengths_custom_sequence": _probe_lengths_custom_sequence,
    "probe_span_min_overflow": _probe_span_min_overflow,
    "probe_span_max_huge": _probe_span_max_huge,
}
FAMILIES = {
    "tokenizer": fam_tokenizer,
    "lengths": fam_lengths,
    "motifs": fam_motifs,
    "masking": fam_masking,
    "mlm": fam_mlm,
    "structure": fam_structure,
}
# relative weight of n per family (the slow ones get fewer iterations)
SCALE = {"tokenizer": 0.2, "lengths": 1.5, "motifs": 0.1, "masking": 1.0, "mlm": 1.0}


def run_family(name: str, n: int, seed: int) -> dict:
    t = Tally(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy cast warnings of the adversarial dtypes
        if name in PROBES:
            t.call(name, PROBES[name])
        else:
            FAMILIES[name](n, seed, t)
    return t.summary()


def is_sanitized(core_file: str) -> bool:
    with open(core_file, "rb") as fh:
        return b"__asan_init" in fh.read()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--n", type=int, default=12000, help="iterations per family (scaled per family)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--structure-iters", type=int, default=2000)
    ap.add_argument("--family", help="run one family or probe in this process and print its JSON")
    ap.add_argument("--python", default=sys.executable, help="interpreter command for the children")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--only", help="comma-separated families/probes to run (default: all)")
    args = ap.parse_args()

    if args.family:
        print(json.dumps(run_family(args.family, args.n, args.seed)), flush=True)
        return 0

    import rnaernie._core as core

    sanitized = is_sanitized(core.__file__)
    print(f"rnaernie._core: {core.__file__} (sanitized: {sanitized})")
    if os.environ.get("RNAERNIE_STRESS_SANITIZED") == "1" and not sanitized:
        print("ERROR: expected the ASan build but imported the normal one", file=sys.stderr)
        return 2
    jobs = [(f, max(1, int(args.n * SCALE.get(f, 1.0)))) for f in FAMILIES if f != "structure"]
    jobs.append(("structure", args.structure_iters))
    jobs += [(p, 1) for p in PROBES]
    if args.only:
        jobs = [j for j in jobs if j[0] in args.only.split(",")]
    results, total = [], collections.Counter()
    for name, n in jobs:
        cmd = [*args.python.split(), str(Path(__file__).resolve()), "--family", name, "--n", str(n),
               "--seed", str(args.seed)]  # fmt: skip
        t0 = time.time()
        timeout = 20 if name.startswith("probe_") else args.timeout
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            rc, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            rc, out, err = "timeout", e.stdout or "", e.stderr or ""
            out = out.decode() if isinstance(out, bytes) else out
            err = err.decode() if isinstance(err, bytes) else err
        dt = time.time() - t0
        res = None
        for line in reversed(out.strip().splitlines()):
            if line.startswith("{"):
                res = json.loads(line)
                break
        sanitizer = [
            ln.strip() for ln in err.splitlines() if "Sanitizer" in ln or "runtime error:" in ln
        ]
        res = res or {
            "family": name,
            "tried": 0,
            "accepted": 0,
            "rejected": {},
            "failures": {},
            "examples": {},
        }
        res.update(rc=rc, seconds=round(dt, 1), sanitizer=sanitizer[:4])
        if rc != 0 and not sanitizer:
            res["stderr_tail"] = err.strip().splitlines()[-3:] if err.strip() else []
        results.append(res)
        total["tried"] += res["tried"]
        total["accepted"] += res["accepted"]
        for k, v in res["rejected"].items():
            total[f"rejected {k}"] += v
        total["failures"] += sum(res["failures"].values())
        total["crashes"] += rc != 0
        status = "ok" if rc == 0 and not res["failures"] else ("CRASH" if rc != 0 else "FAIL")
        print(f"{name:32s} {status:6s} rc={rc!s:8s} {dt:6.1f}s tried={res['tried']:7d} "
              f"accepted={res['accepted']:7d} rejected={res['rejected']}")  # fmt: skip
        for line in res["sanitizer"]:
            print(f"    {line}")
        for line in res.get("stderr_tail", []):
            print(f"    {line}")
        for key, ex in res["examples"].items():
            print(f"    {key} (x{res['failures'][key]}): {ex}")
    print("TOTAL", dict(total))
    out_json = os.environ.get("STRESS_JSON")
    if out_json:
        Path(out_json).write_text(json.dumps({"total": dict(total), "families": results}, indent=1))
    return 1 if total["failures"] or total["crashes"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        sys.exit(3)
