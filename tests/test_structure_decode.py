"""The C++ structure decoders against exhaustive enumeration, the Python references and golden cases."""

from __future__ import annotations

import dataclasses
import functools
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnaernie.structure import (
    DecodeOptions,
    decode,
    decode_batch,
    decode_ref,
    nussinov_numpy,
    pairs_to_dot_bracket,
)
from rnaernie.structure.reference import is_canonical, mea_unpaired, parse_constraint

Opts = DecodeOptions
GREEDY = Opts(method="greedy")

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_case(rng: np.random.Generator, n: int, alphabet: str = "ACGU") -> tuple[str, np.ndarray]:
    seq = "".join(rng.choice(list(alphabet), n)) if n else ""
    return seq, rng.standard_normal((n, n)).astype(np.float32)


def random_probs(rng: np.random.Generator, n: int) -> np.ndarray:
    """Pair probabilities: sparse and small (row sums near 1) or dense, sometimes with ties."""
    kind = rng.integers(0, 3)
    if kind == 0:
        p = rng.random((n, n)) * (rng.random((n, n)) < 0.3) * 0.6
    elif kind == 1:
        p = rng.random((n, n))
    else:
        p = rng.integers(0, 4, (n, n)) / 4.0
    return p.astype(np.float32)


def random_constraint(rng: np.random.Generator, n: int) -> str:
    """A well-formed constraint: mostly '.', some x | < >, and at most one forced pair."""
    chars = rng.choice(list(".......x|<>"), n).tolist() if n else []
    if n >= 6 and rng.random() < 0.5:
        i = int(rng.integers(0, n - 5))
        j = int(rng.integers(i + 5, n))
        chars[i], chars[j] = "(", ")"
        for p in range(i + 1, j):  # keep other symbols from making it trivially infeasible
            if chars[p] in "()":
                chars[p] = "."
    return "".join(chars)


def violations(seq, mat, pairs, *, thr, canonical_only, min_loop, nlp, constraint) -> list[str]:
    """Every rule a structure breaks (checked independently of the decoders)."""
    n = len(seq)
    must, can5, can3, mate = parse_constraint(constraint, n, 0)
    out = []
    ps = {(int(i), int(j)) for i, j in pairs}
    partner = {}
    for i, j in ps:
        if not i < j:
            out.append(f"bad order {(i, j)}")
        for b in (i, j):
            if b in partner:
                out.append(f"base {b} twice")
        partner[i], partner[j] = j, i
    for a, b in ps:
        for c, d in ps:
            if a < c < b < d:
                out.append(f"crossing {(a, b)} {(c, d)}")
    for i, j in ps:
        forced = mate[i] == j
        if j - i - 1 < min_loop:
            out.append(f"loop {(i, j)}")
        if (mate[i] >= 0 or mate[j] >= 0) and not forced:
            out.append(f"breaks forced pair {(i, j)}")
        if not forced:
            if canonical_only and not is_canonical(seq[i], seq[j]):
                out.append(f"non-canonical {(i, j)}")
            if not (must[i] or must[j]) and not float(mat[i, j]) > thr:
                out.append(f"below threshold {(i, j)}")
            if not can5[i] or not can3[j]:
                out.append(f"direction/x {(i, j)}")
            if nlp and (i + 1, j - 1) not in ps and (i - 1, j + 1) not in ps:
                out.append(f"lonely {(i, j)}")
    for p in range(n):
        if must[p] and p not in partner:
            out.append(f"unpaired must {p}")
    return out


def exhaustive_best(seq, mat, mea_gamma=None, **rules) -> float | None:
    """Best total over every nested structure that breaks no rule (None if there is none).

    The total is ``sum(score - thr)`` over the pairs, or with ``mea_gamma`` the MEA objective.
    """
    n = len(seq)
    min_loop = rules["min_loop"]

    @functools.cache
    def structs(i: int, j: int) -> tuple[tuple[tuple[int, int], ...], ...]:
        if i >= j:
            return ((),)
        out = list(structs(i + 1, j))
        for k in range(i + min_loop + 1, j + 1):
            for inner in structs(i + 1, k - 1):
                for rest in structs(k + 1, j):
                    out.append(((i, k), *inner, *rest))
        return tuple(out)

    best = None
    thr = rules["thr"]
    q = mea_unpaired(mat) if mea_gamma is not None else None
    for s in structs(0, n - 1):
        if violations(seq, mat, s, **rules):
            continue
        if q is None:
            total = sum(float(mat[i, j]) - thr for i, j in s)
        else:
            paired = {b for p in s for b in p}
            total = sum(2 * mea_gamma * float(mat[i, j]) for i, j in s)
            total += sum(q[b] for b in range(n) if b not in paired)
        best = total if best is None else max(best, total)
    return best


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 11),
    canonical_only=st.booleans(),
    min_loop=st.integers(0, 3),
    nlp=st.booleans(),
    use_constraint=st.booleans(),
    thr=st.sampled_from([0.0, -0.5, 0.7]),
)
def test_decode_matches_exhaustive(seed, n, canonical_only, min_loop, nlp, use_constraint, thr):
    rng = np.random.default_rng(seed)
    seq, mat = random_case(rng, n, "ACGUN" if rng.random() < 0.2 else "ACGU")
    constraint = random_constraint(rng, n) if use_constraint else None
    rules = dict(
        thr=thr, canonical_only=canonical_only, min_loop=min_loop, nlp=nlp, constraint=constraint
    )
    opt = Opts(threshold=thr, canonical_only=canonical_only, min_loop=min_loop, no_lonely_pairs=nlp)
    check_exhaustive(seq, mat, opt, constraint, rules)


def check_exhaustive(seq, mat, opt, constraint, rules, mea_gamma=None):
    kw = dict(constraint=constraint)
    try:
        best = exhaustive_best(seq, mat, mea_gamma=mea_gamma, **rules)
    except ValueError:  # forced pair closer than min_loop: a malformed constraint
        with pytest.raises(ValueError, match="min_loop"):
            decode(seq, mat, opt, **kw)
        return
    if best is None:
        with pytest.raises(ValueError, match="cannot be satisfied"):
            decode(seq, mat, opt, **kw)
        with pytest.raises(ValueError, match="cannot be satisfied"):
            decode_ref(seq, mat, opt, **kw)
        return
    res = decode(seq, mat, opt, **kw)
    assert violations(seq, mat, res.pairs, **rules) == []
    assert res.score == pytest.approx(best, abs=1e-4)
    assert decode_ref(seq, mat, opt, **kw).score == pytest.approx(best, abs=1e-9)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 10),
    canonical_only=st.booleans(),
    min_loop=st.integers(0, 3),
    nlp=st.booleans(),
    use_constraint=st.booleans(),
    thr=st.sampled_from([0.0, 0.1, 0.5]),
    gamma=st.sampled_from([0.1, 1.0, 4.0]),
)
def test_mea_matches_exhaustive(seed, n, canonical_only, min_loop, nlp, use_constraint, thr, gamma):
    """MEA against every nested structure, scored directly: 2 gamma P per pair, q per unpaired."""
    rng = np.random.default_rng(seed)
    seq, _ = random_case(rng, n)
    mat = random_probs(rng, n)
    constraint = random_constraint(rng, n) if use_constraint else None
    rules = dict(
        thr=thr, canonical_only=canonical_only, min_loop=min_loop, nlp=nlp, constraint=constraint
    )
    opt = Opts(
        method="mea",
        threshold=thr,
        gamma=gamma,
        canonical_only=canonical_only,
        min_loop=min_loop,
        no_lonely_pairs=nlp,
    )
    check_exhaustive(seq, mat, opt, constraint, rules, mea_gamma=gamma)


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 90),
    nlp=st.booleans(),
    use_constraint=st.booleans(),
    gamma=st.sampled_from([0.5, 1.0, 8.0]),
)
def test_mea_matches_python_ref(seed, n, nlp, use_constraint, gamma):
    rng = np.random.default_rng(seed)
    seq, _ = random_case(rng, n)
    mat = random_probs(rng, n)
    constraint = random_constraint(rng, n) if use_constraint else None
    opt = Opts(method="mea", gamma=gamma, no_lonely_pairs=nlp)
    try:
        ref = decode_ref(seq, mat, opt, constraint=constraint)
    except ValueError:
        with pytest.raises(ValueError):
            decode(seq, mat, opt, constraint=constraint)
        return
    res = decode(seq, mat, opt, constraint=constraint)
    assert res.score == pytest.approx(ref.score, rel=1e-9, abs=1e-9)
    rules = dict(thr=0.0, canonical_only=True, min_loop=3, nlp=nlp, constraint=constraint)
    assert violations(seq, mat, res.pairs, **rules) == []


@pytest.mark.parametrize(
    ("n", "nlp", "use_constraint", "seed"),
    [(150, False, False, 0), (150, True, False, 1), (120, False, True, 2), (97, True, True, 3)],
)
def test_decode_matches_python_ref(n, nlp, use_constraint, seed):
    rng = np.random.default_rng(seed)
    seq, mat = random_case(rng, n)
    mat += 0.3  # a denser candidate set
    for attempt in range(20):
        constraint = random_constraint(rng, n) if use_constraint else None
        opt = Opts(no_lonely_pairs=nlp)
        try:
            ref = decode_ref(seq, mat, opt, constraint=constraint)
        except ValueError:
            with pytest.raises(ValueError):
                decode(seq, mat, opt, constraint=constraint)
            continue
        res = decode(seq, mat, opt, constraint=constraint)
        assert res.score == pytest.approx(ref.score, rel=1e-5)
        rules = dict(thr=0.0, canonical_only=True, min_loop=3, nlp=nlp, constraint=constraint)
        assert violations(seq, mat, res.pairs, **rules) == []
        if attempt >= 1 or not use_constraint:
            break


@pytest.mark.parametrize("n", [1, 60, 211])
def test_decode_matches_numpy_nussinov(n):
    seq, mat = random_case(np.random.default_rng(n), n)
    res, base = decode(seq, mat), nussinov_numpy(seq, mat)
    assert res.score == pytest.approx(base.score, rel=1e-5)
    if n > 1:
        assert len(res.pairs) > 0


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 70), nlp=st.booleans())
def test_constraints_always_respected(seed, n, nlp):
    rng = np.random.default_rng(seed)
    seq, mat = random_case(rng, n)
    constraint = random_constraint(rng, n)
    rules = dict(thr=0.0, canonical_only=True, min_loop=3, nlp=nlp, constraint=constraint)
    try:
        res = decode(seq, mat, Opts(no_lonely_pairs=nlp), constraint=constraint)
    except ValueError as exc:
        assert "cannot be satisfied" in str(exc) or "min_loop" in str(exc)
        with pytest.raises(ValueError):
            decode_ref(seq, mat, Opts(no_lonely_pairs=nlp), constraint=constraint)
        return
    assert violations(seq, mat, res.pairs, **rules) == []
    assert res.dot_bracket == pairs_to_dot_bracket(res.pairs, n)


def hairpin_scores(n: int, stem: list[tuple[int, int]], on: float = 2.0) -> np.ndarray:
    s = np.full((n, n), -1.0, dtype=np.float32)
    for i, j in stem:
        s[i, j] = on
    return s


def test_golden_hairpin():
    seq = "GGGGAAAACCCC"
    s = hairpin_scores(12, [(0, 11), (1, 10), (2, 9), (3, 8)])
    res = decode(seq, s)
    assert res.dot_bracket == "((((....))))"
    assert res.pairs.dtype == np.int64 and res.pairs.shape == (4, 2)
    assert res.score == pytest.approx(8.0)
    # min_loop=5 drops the innermost pair (3, 8) (4 enclosed bases)
    assert decode(seq, s, Opts(min_loop=5)).dot_bracket == "(((......)))"
    # the lower triangle is never read
    s2 = s.copy()
    s2[np.tril_indices(12)] = np.nan
    assert decode(seq, s2).dot_bracket == "((((....))))"


def test_scores_near_float32_max_do_not_overflow():
    """A float32 DP summed 3e38 + 3e38 to inf and lost pairs; the DP accumulates in double."""
    res = decode("GGGGAAAACCCC", np.full((12, 12), 3e38, np.float32))
    assert res.dot_bracket == "((((....))))"
    assert res.score == pytest.approx(4 * float(np.float32(3e38)))
    big = np.full((12, 12), -3e38, np.float32)
    big[0, 11] = big[1, 10] = 3e38
    opt = Opts(threshold=-3e38, no_lonely_pairs=True)
    assert decode("GGGGAAAACCCC", big, opt).dot_bracket == "((........))"


def test_golden_mea_and_threshknot():
    seq = "GGGGAAAACCCC"
    p = np.zeros((12, 12), np.float32)
    for k in range(4):
        p[k, 11 - k] = 0.9
    p[3, 8] = 0.2  # weak inner pair: 2 gamma 0.2 > q_3 + q_8 = 1.6 needs gamma > 4
    mea = decode(seq, p, Opts(method="mea"))
    assert mea.dot_bracket == "(((......)))"
    # 3 pairs * 2 * 0.9 + unpaired q: 0.8 + 0.8 for bases 3, 8 and 1.0 for 4..7
    assert mea.score == pytest.approx(5.4 + 1.6 + 4.0)
    assert decode(seq, p, Opts(method="mea", gamma=5.0)).dot_bracket == "((((....))))"
    assert (
        decode(seq, p, Opts(method="mea", threshold=0.5, gamma=5.0)).dot_bracket == "(((......)))"
    )
    t = float(p[3, 8])  # float32(0.2) exactly
    tk = decode(seq, p, Opts(method="threshknot", threshold=t))
    assert tk.dot_bracket == "((((....))))"  # inclusive threshold: P = t passes
    assert decode(seq, p, Opts(method="greedy", threshold=t)).dot_bracket == "(((......)))"
    # threshknot allows crossing pairs
    p2 = np.zeros((20, 20), np.float32)
    p2[0, 11] = p2[1, 10] = 0.8
    p2[6, 16] = 0.5
    res = decode("GGGGAAAACCCCAAAAGGGG", p2, Opts(method="threshknot", canonical_only=False))
    assert res.dot_bracket == "((....[...))....]..."


def test_golden_rules():
    seq = "GGGAAAACCCAGAAAACU"
    s = hairpin_scores(18, [(0, 9), (1, 8), (2, 7), (11, 17)])
    assert decode(seq, s).dot_bracket == "(((....))).(.....)"
    assert decode(seq, s, Opts(no_lonely_pairs=True)).dot_bracket == "(((....)))........"
    # 'x' keeps base 1 unpaired; the remaining stacks (0,9) and (2,7) are not adjacent
    assert decode(seq, s, constraint="." + "x" + "." * 16).dot_bracket == "(.(....).).(.....)"
    # a forced non-canonical pair (10, 16) = (A, C) with a low score
    forced = "." * 10 + "(.....)" + "."
    res = decode(seq, s, constraint=forced)
    assert res.dot_bracket == "(((....)))(.....)."
    assert res.score == pytest.approx(6.0 - 1.0)
    # '<' at 17 cannot pair downstream: (11, 17) is dropped and no structure pairs 17 -> error
    with pytest.raises(ValueError, match="cannot be satisfied"):
        decode(seq, s, constraint="." * 17 + "<")
    # '>' at 17 must pair upstream: (11, 17) is kept
    assert decode(seq, s, constraint="." * 17 + ">").dot_bracket == "(((....))).(.....)"
    # '|' forces base 10 (A) to pair, with U at 17, below the threshold
    res = decode(seq, s, constraint="." * 10 + "|" + "." * 7)
    assert res.pairs.tolist() == [[0, 9], [1, 8], [2, 7], [10, 17]]
    # probabilities with a threshold of 0.5
    p = np.where(s > 0, 0.9, 0.2).astype(np.float32)
    assert decode(seq, p, Opts(threshold=0.5)).dot_bracket == "(((....))).(.....)"
    assert decode(seq, p, Opts(threshold=0.95)).dot_bracket == "." * 18
    # non-canonical pairs only when asked
    s3 = hairpin_scores(18, [(3, 10)])  # A-C
    assert decode(seq, s3).pairs.shape == (0, 2)
    assert decode(seq, s3, Opts(canonical_only=False)).pairs.tolist() == [[3, 10]]


def test_empty_and_length_one():
    for method in ("nested", "greedy", "mea", "threshknot"):
        res = decode("", np.zeros((0, 0), np.float32), Opts(method=method))
        assert res.pairs.shape == (0, 2) and res.dot_bracket == "" and res.score == 0.0
        res = decode("A", np.ones((1, 1), np.float32), Opts(method=method))
        assert res.dot_bracket == "."
        assert res.score == (1.0 if method == "mea" else 0.0)  # q = 1 for a lone base
    with pytest.raises(ValueError, match="cannot be satisfied"):
        decode("A", np.ones((1, 1), np.float32), constraint="|")


def test_long_sequence_iterative_traceback():
    n = 6000
    rng = np.random.default_rng(0)
    half = "".join(rng.choice(list("ACGU"), n // 2 - 2))
    comp = {"A": "U", "U": "A", "G": "C", "C": "G"}
    seq = half + "AAAA" + "".join(comp[c] for c in reversed(half))
    s = np.full((n, n), -1.0, dtype=np.float32)
    k = np.arange(n // 2 - 2)
    s[k, n - 1 - k] = 1.0
    res = decode(seq, s, Opts(no_lonely_pairs=True))
    assert len(res.pairs) == n // 2 - 2


def test_inputs_torch_float64_and_no_copy():
    torch = pytest.importorskip("torch")
    seq, mat = random_case(np.random.default_rng(5), 80)
    want = decode(seq, mat)
    assert decode(seq, torch.from_numpy(mat)).dot_bracket == want.dot_bracket
    assert decode(seq, torch.from_numpy(mat).requires_grad_()).dot_bracket == want.dot_bracket
    assert decode(seq, torch.from_numpy(mat).to(torch.bfloat16)).pairs.ndim == 2
    assert decode(seq, mat.astype(np.float64)).dot_bracket == want.dot_bracket
    assert decode(seq, mat.tolist()).dot_bracket == want.dot_bracket
    t = torch.from_numpy(mat)
    assert decode(seq, t, GREEDY).dot_bracket == decode(seq, mat, GREEDY).dot_bracket


@pytest.mark.parametrize("method", ["nested", "greedy", "mea", "threshknot"])
def test_batch_equals_single(method):
    rng = np.random.default_rng(7)
    cases = [random_case(rng, n) for n in (0, 1, 13, 64, 150, 33)]
    if method in ("mea", "threshknot"):
        cases = [(seq, random_probs(rng, len(seq))) for seq, _ in cases]
    seqs, mats = [c[0] for c in cases], [c[1] for c in cases]
    opt = Opts(method=method, min_loop=2, threshold=0.3 if method == "threshknot" else 0.0)
    for threads in (1, 2, None):
        out = decode_batch(seqs, mats, opt, num_threads=threads)
        for (seq, mat), r in zip(cases, out):
            single = decode(seq, mat, opt)
            assert r.dot_bracket == single.dot_bracket
            assert np.array_equal(r.pairs, single.pairs) and r.score == single.score
    if method in ("nested", "mea"):
        cons = [None, None, "x" + "." * 12, None, None, "|" + "." * 32]
        opt = Opts(method=method, no_lonely_pairs=method == "nested")  # sparse P: nlp infeasible
        out = decode_batch(seqs, mats, opt, constraints=cons)
        for seq, mat, c, r in zip(seqs, mats, cons, out):
            assert r.dot_bracket == decode(seq, mat, opt, constraint=c).dot_bracket


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 45),
    canonical_only=st.booleans(),
    min_loop=st.integers(0, 4),
    levels=st.sampled_from([None, 3]),
    threshknot=st.booleans(),
)
def test_greedy_and_threshknot_match_ref(seed, n, canonical_only, min_loop, levels, threshknot):
    rng = np.random.default_rng(seed)
    seq, mat = random_case(rng, n)
    if levels:  # few distinct values: many ties, and values equal to the threshold
        mat = rng.integers(-1, levels, (n, n)).astype(np.float32)
    thr = 0.0
    if threshknot:
        mat = random_probs(rng, n) if not levels else (mat + 1) / levels
        thr = 0.25 if levels else 0.3
    method = "threshknot" if threshknot else "greedy"
    opt = Opts(method=method, threshold=thr, canonical_only=canonical_only, min_loop=min_loop)
    res, ref = decode(seq, mat, opt), decode_ref(seq, mat, opt)
    assert np.array_equal(res.pairs, ref.pairs)
    assert res.dot_bracket == ref.dot_bracket
    assert res.score == pytest.approx(ref.score)


def test_greedy_pseudoknot_brackets():
    seq = "GGGGAAAACCCCAAAAGGGG"
    s = np.full((20, 20), -1.0, dtype=np.float32)
    s[0, 11] = s[1, 10] = 2.0  # stem 1
    s[6, 16] = 1.0  # crosses stem 1 (A-G not canonical: allow non-canonical)
    res = decode(seq, s, Opts(method="greedy", canonical_only=False))
    assert res.pairs.tolist() == [[0, 11], [1, 10], [6, 16]]
    assert res.dot_bracket == "((....[...))....]..."


BAD_INPUTS = [
    (dict(scores=np.zeros((3, 4), np.float32)), "square"),
    (dict(scores=np.zeros((3, 3), np.float32)), "sequence has length 4"),
    (dict(scores=np.zeros((4,), np.float32)), "2-D"),
    (dict(scores=np.zeros((4, 4, 1), np.float32)), "2-D"),
    (dict(scores=np.zeros((4, 4), np.int64)), "floating dtype"),
    (dict(scores=np.zeros((4, 4), bool)), "floating dtype"),
    (dict(scores=np.zeros((4, 4), np.complex64)), "floating dtype"),
    (dict(scores=np.full((4, 4), np.nan, np.float32)), r"non-finite value \(nan\) at \[0, 1\]"),
    (dict(scores=np.full((4, 4), np.inf, np.float32)), "non-finite"),
    (dict(constraint="...."[:3]), "constraint has length 3"),
    (dict(constraint="..a."), "unknown symbol 'a' at position 2"),
    (dict(constraint=".é.."), "unknown symbol"),
    (dict(constraint="..)."), r"unmatched '\)' at position 2"),
    (dict(constraint="(..."), r"unmatched '\(' at position 0"),
    (dict(constraint="(..)"), "min_loop"),
    (dict(seq=5), "sequence"),
    (dict(options=dict(min_loop=3)), "options must be a DecodeOptions"),
    (dict(options=GREEDY, constraint="...."), "constraints need method 'nested' or 'mea'"),
    (dict(options=Opts(method="mea"), scores=np.full((4, 4), 1.5, np.float32)), r"\[0, 1\]"),
    (dict(options=Opts(method="threshknot"), scores=-np.ones((4, 4), np.float32)), r"\[0, 1\]"),
]


@pytest.mark.parametrize(("override", "message"), BAD_INPUTS)
def test_bad_input_raises_value_error(override, message):
    kw = dict(seq="ACGU", scores=np.zeros((4, 4), np.float32))
    kw.update(override)
    with pytest.raises(ValueError, match=message):
        decode(kw.pop("seq"), kw.pop("scores"), kw.pop("options", None), **kw)


BAD_OPTIONS = [  # (fields, message, also checked by C++ on its own)
    (dict(method="nussinov"), "method", True),
    (dict(min_loop=-1), "min_loop", True),
    (dict(min_loop=1.5), "min_loop", False),
    (dict(min_loop=True), "min_loop", False),
    (dict(threshold=float("nan")), "threshold", True),
    (dict(threshold=1e39), "threshold", True),
    (dict(threshold="0"), "threshold", False),
    (dict(gamma=0.0), "gamma", True),
    (dict(gamma=float("inf")), "gamma", True),
    (dict(canonical_only=1), "canonical_only", False),
    (dict(no_lonely_pairs="yes"), "no_lonely_pairs", False),
    (dict(method="greedy", no_lonely_pairs=True), "no_lonely_pairs needs method", True),
    (dict(method="threshknot", no_lonely_pairs=True), "no_lonely_pairs needs method", True),
]


@pytest.mark.parametrize(("fields", "message", "cpp"), BAD_OPTIONS)
def test_bad_options_raise_value_error_naming_the_field(fields, message, cpp):
    with pytest.raises(ValueError, match=message):
        Opts(**fields)
    if cpp:
        from rnaernie import _core

        with pytest.raises(ValueError, match=message):
            _core.structure_decode(
                "ACGU", np.zeros((4, 4), np.float32), _core.DecodeOptions(**fields)
            )


def test_options_mirror_the_cpp_struct_and_round_trip():
    from rnaernie import _core

    names = [f.name for f in dataclasses.fields(DecodeOptions)]
    cpp = _core.DecodeOptions()
    assert Opts().to_dict() == {k: getattr(cpp, k) for k in names}  # same names, same defaults
    opt = Opts(method="mea", threshold=0.01, gamma=4, min_loop=np.int64(2), canonical_only=np.True_)
    assert isinstance(opt.gamma, float) and type(opt.min_loop) is int
    assert Opts.from_dict(opt.to_dict()) == opt
    back = opt._to_core()
    assert {k: getattr(back, k) for k in names} == opt.to_dict()
    with pytest.raises(ValueError, match=r"unknown DecodeOptions keys \['decode_threshold'\]"):
        Opts.from_dict({"method": "nested", "decode_threshold": 0.0})
    with pytest.raises(dataclasses.FrozenInstanceError):
        opt.gamma = 2.0  # type: ignore[misc]
    assert opt.replace(gamma=2.0).gamma == 2.0


def test_bad_batch_names_index():
    mats = [np.zeros((4, 4), np.float32), np.zeros((5, 5), np.float32)]
    with pytest.raises(ValueError, match=re.escape("batch index 1: ") + ".*length 4"):
        decode_batch(["ACGU", "ACGU"], mats)
    with pytest.raises(ValueError, match=re.escape("batch index 1: ") + ".*floating"):
        decode_batch(["ACGU", "ACGU"], [mats[0], np.zeros((4, 4), np.int32)])
    with pytest.raises(ValueError, match=re.escape("batch index 0: ") + "constraint"):
        decode_batch(["ACGU"], [mats[0]], constraints=["..?."])
    with pytest.raises(ValueError, match="2 sequences but 1"):
        decode_batch(["ACGU", "ACGU"], mats[:1])
    with pytest.raises(ValueError, match="num_threads"):
        decode_batch(["ACGU"], mats[:1], num_threads=0)
    with pytest.raises(ValueError, match=re.escape("batch index 0: ") + "constraints need"):
        decode_batch(["ACGU"], mats[:1], GREEDY, constraints=["...."])
    with pytest.raises(ValueError, match=re.escape("batch index 1: ") + r".*\[0, 1\]"):
        decode_batch(["ACGU"] * 2, [mats[0], mats[0] + 2], Opts(method="mea"))
