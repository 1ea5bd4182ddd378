"""The C++ structure decoders against exhaustive enumeration, the Python references and golden cases."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnaernie.structure import (
    decode,
    decode_batch,
    decode_greedy,
    decode_greedy_ref,
    decode_ref,
    nussinov_numpy,
    pairs_to_dot_bracket,
)
from rnaernie.structure.reference import is_canonical, parse_constraint

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_case(rng: np.random.Generator, n: int, alphabet: str = "ACGU") -> tuple[str, np.ndarray]:
    seq = "".join(rng.choice(list(alphabet), n)) if n else ""
    return seq, rng.standard_normal((n, n)).astype(np.float32)


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


def exhaustive_best(seq, mat, **rules) -> float | None:
    """Best total over every nested structure that breaks no rule (None if there is none)."""
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
    for s in structs(0, n - 1):
        if not violations(seq, mat, s, **rules):
            total = sum(float(mat[i, j]) - thr for i, j in s)
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
    kw = dict(
        threshold=thr,
        canonical_only=canonical_only,
        min_loop=min_loop,
        no_lonely_pairs=nlp,
        constraint=constraint,
    )
    try:
        best = exhaustive_best(seq, mat, **rules)
    except ValueError:  # forced pair closer than min_loop: a malformed constraint
        with pytest.raises(ValueError, match="min_loop"):
            decode(seq, mat, **kw)
        return
    if best is None:
        with pytest.raises(ValueError, match="cannot be satisfied"):
            decode(seq, mat, **kw)
        with pytest.raises(ValueError, match="cannot be satisfied"):
            decode_ref(seq, mat, **kw)
        return
    res = decode(seq, mat, **kw)
    assert violations(seq, mat, res.pairs, **rules) == []
    assert res.score == pytest.approx(best, abs=1e-4)
    assert decode_ref(seq, mat, **kw).score == pytest.approx(best, abs=1e-9)


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
        kw = dict(no_lonely_pairs=nlp, constraint=constraint)
        try:
            ref = decode_ref(seq, mat, **kw)
        except ValueError:
            with pytest.raises(ValueError):
                decode(seq, mat, **kw)
            continue
        res = decode(seq, mat, **kw)
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
        res = decode(seq, mat, no_lonely_pairs=nlp, constraint=constraint)
    except ValueError as exc:
        assert "cannot be satisfied" in str(exc) or "min_loop" in str(exc)
        with pytest.raises(ValueError):
            decode_ref(seq, mat, no_lonely_pairs=nlp, constraint=constraint)
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
    assert decode(seq, s, min_loop=5).dot_bracket == "(((......)))"
    # the lower triangle is never read
    s2 = s.copy()
    s2[np.tril_indices(12)] = np.nan
    assert decode(seq, s2).dot_bracket == "((((....))))"


def test_golden_rules():
    seq = "GGGAAAACCCAGAAAACU"
    s = hairpin_scores(18, [(0, 9), (1, 8), (2, 7), (11, 17)])
    assert decode(seq, s).dot_bracket == "(((....))).(.....)"
    assert decode(seq, s, no_lonely_pairs=True).dot_bracket == "(((....)))........"
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
    # probabilities: the default threshold becomes 0.5
    p = np.where(s > 0, 0.9, 0.2).astype(np.float32)
    assert decode(seq, p, kind="probs").dot_bracket == "(((....))).(.....)"
    assert decode(seq, p, kind="probs", threshold=0.95).dot_bracket == "." * 18
    # non-canonical pairs only when asked
    s3 = hairpin_scores(18, [(3, 10)])  # A-C
    assert decode(seq, s3).pairs.shape == (0, 2)
    assert decode(seq, s3, canonical_only=False).pairs.tolist() == [[3, 10]]


def test_empty_and_length_one():
    for greedy in (False, True):
        fn = decode_greedy if greedy else decode
        res = fn("", np.zeros((0, 0), np.float32))
        assert res.pairs.shape == (0, 2) and res.dot_bracket == "" and res.score == 0.0
        res = fn("A", np.ones((1, 1), np.float32))
        assert res.dot_bracket == "."
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
    res = decode(seq, s, no_lonely_pairs=True)
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
    assert (
        decode_greedy(seq, torch.from_numpy(mat)).dot_bracket == decode_greedy(seq, mat).dot_bracket
    )


@pytest.mark.parametrize("greedy", [False, True])
def test_batch_equals_single(greedy):
    rng = np.random.default_rng(7)
    cases = [random_case(rng, n) for n in (0, 1, 13, 64, 150, 33)]
    seqs, mats = [c[0] for c in cases], [c[1] for c in cases]
    method = "greedy" if greedy else "nested"
    fn = decode_greedy if greedy else decode
    for threads in (1, 2, None):
        out = decode_batch(seqs, mats, method=method, num_threads=threads, min_loop=2)
        for (seq, mat), r in zip(cases, out):
            single = fn(seq, mat, min_loop=2)
            assert r.dot_bracket == single.dot_bracket
            assert np.array_equal(r.pairs, single.pairs) and r.score == single.score
    if not greedy:
        cons = [None, None, "x" + "." * 12, None, None, "|" + "." * 32]
        out = decode_batch(seqs, mats, constraints=cons, no_lonely_pairs=True)
        for seq, mat, c, r in zip(seqs, mats, cons, out):
            assert r.dot_bracket == decode(seq, mat, constraint=c, no_lonely_pairs=True).dot_bracket


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 45),
    canonical_only=st.booleans(),
    min_loop=st.integers(0, 4),
    levels=st.sampled_from([None, 3]),
)
def test_greedy_matches_ref(seed, n, canonical_only, min_loop, levels):
    rng = np.random.default_rng(seed)
    seq, mat = random_case(rng, n)
    if levels:  # few distinct values: many ties
        mat = rng.integers(-1, levels, (n, n)).astype(np.float32)
    kw = dict(canonical_only=canonical_only, min_loop=min_loop)
    res, ref = decode_greedy(seq, mat, **kw), decode_greedy_ref(seq, mat, **kw)
    assert np.array_equal(res.pairs, ref.pairs)
    assert res.dot_bracket == ref.dot_bracket
    assert res.score == pytest.approx(ref.score)


def test_greedy_pseudoknot_brackets():
    seq = "GGGGAAAACCCCAAAAGGGG"
    s = np.full((20, 20), -1.0, dtype=np.float32)
    s[0, 11] = s[1, 10] = 2.0  # stem 1
    s[6, 16] = 1.0  # crosses stem 1 (A-G not canonical: allow non-canonical)
    res = decode_greedy(seq, s, canonical_only=False)
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
    (dict(min_loop=-1), "min_loop"),
    (dict(min_loop=1.5), "min_loop"),
    (dict(threshold=float("nan")), "threshold"),
    (dict(threshold="0"), "threshold"),
    (dict(kind="prob"), "kind"),
    (dict(seq=5), "sequence"),
]


@pytest.mark.parametrize(("override", "message"), BAD_INPUTS)
def test_bad_input_raises_value_error(override, message):
    kw = dict(seq="ACGU", scores=np.zeros((4, 4), np.float32))
    kw.update(override)
    with pytest.raises(ValueError, match=message):
        decode(kw.pop("seq"), kw.pop("scores"), **kw)


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
