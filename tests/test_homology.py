"""The native homology search against its plain-Python reference, and the library's I/O."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnaernie import _core
from rnaernie._homology_ref import (
    align_windows_ref,
    best_family_scores_ref,
    dust_mask_ref,
    smith_waterman_ref,
)
from rnaernie.homology import HomologySettings, Library, bits_per_score, dust_mask
from rnaernie.tokenizer import reverse_complement

SCORING = {"match": 2, "mismatch": -3, "gap_open": 5, "gap_extend": 2}
seqs = st.text("ACGUN", max_size=30)
scorings = st.fixed_dictionaries({
    "match": st.integers(1, 4), "mismatch": st.integers(-5, -1),
    "gap_open": st.integers(0, 6), "gap_extend": st.integers(0, 3),
})  # fmt: skip


bands = st.none() | st.tuples(st.integers(-40, 40), st.integers(0, 16)).map(
    lambda t: (t[0], t[0] + t[1])
)


@settings(max_examples=500, deadline=None)
@given(seqs, seqs, scorings, st.integers(0, 20), bands)
def test_smith_waterman_equals_the_reference(a, b, scoring, cut, band):
    b = b[:cut] + a + b[cut:] if cut % 2 else b  # half the cases hold a copy of a
    assert _core.smith_waterman(a, b, band=band, **scoring) == smith_waterman_ref(
        a, b, band=band, **scoring
    )


@settings(max_examples=300, deadline=None)
@given(st.text("ACGU", min_size=1, max_size=4), st.text("ACGUN", max_size=40), st.integers(0, 120),
       st.integers(4, 40), st.sampled_from([0.0, 0.5, 1.0, 2.5, 5.0]))  # fmt: skip
def test_dust_mask_equals_the_reference(unit, noise, n, window, threshold):
    """Repeats of a short unit with random letters spliced in: the sliding C++ mask equals the
    stretch-by-stretch reference."""
    seq = "".join(noise[i % len(noise)] if noise and i % 3 == 0 else unit[i % len(unit)]
                  for i in range(n))  # fmt: skip
    assert dust_mask(seq, window, threshold).tolist() == dust_mask_ref(seq, window, threshold)


def test_dust_masks_simple_repeats_not_genes():
    rng = np.random.default_rng(0)
    gene = "".join(rng.choice(list("ACGU"), 200))
    assert not dust_mask(gene).any()
    seq = gene[:100] + "UG" * 40 + gene[100:]
    m = dust_mask(seq)
    assert m[100:180].all() and not m[:40].any() and not m[-40:].any()
    # a window holding only the repeat gives no seeds: no alignment to a library of it
    lib = Library(
        ["UG" * 40 + "ACGGAUCCAGUUAGCAAGGUC"], [0], ["x"], HomologySettings(k=8, ungapped=0)
    )
    assert lib.align("UG" * 50, [0], 100).aligned.tolist() == [False]
    off = Library(lib.seqs, [0], ["x"], HomologySettings(k=8, ungapped=0, dust=0))
    assert off.align("UG" * 50, [0], 100).aligned.tolist() == [True]


def test_smith_waterman_hand_computed():
    # ACGUACGU against ACGAACGU: 7 matches and a mismatch (7·2 − 3 = 11) beat any gapped path
    assert _core.smith_waterman("ACGUACGU", "ACGAACGU", **SCORING) == (11, 0, 8, 0, 8)
    # an insertion of 2 nt inside 20 matching nt: 40 − (5 + 2·2) = 31
    a = "GAUCCGAUGC" + "UUCAGGCAAU"
    assert _core.smith_waterman(a, a[:10] + "AA" + a[10:], **SCORING)[0] == 31
    assert _core.smith_waterman("AAAA", "CCCC", **SCORING) == (0, 0, 0, 0, 0)
    assert _core.smith_waterman("NNNN", "NNNN", **SCORING)[0] == 0  # N matches nothing


def _mutate(s, rng, rate):
    out = []
    for c in s:
        r = rng.random()
        if r < rate / 2:
            out.append("ACGU"[(("ACGU".index(c)) + int(rng.integers(1, 4))) % 4])
        elif r < rate * 0.75:
            continue  # deletion
        elif r < rate:
            out.append(c + "ACGU"[int(rng.integers(4))])  # insertion
        else:
            out.append(c)
    return "".join(out)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.0, 0.25))
def test_seeded_search_is_bounded_by_the_exhaustive_one(seed, rate):
    """Every family score the seeds find is a real alignment (≤ the exhaustive search over all
    references of the family), and a window holding a mutated copy of a reference scores at
    least the alignment of that copy with its reference."""
    rng = np.random.default_rng(seed)
    refs = ["".join(rng.choice(list("ACGU"), int(rng.integers(30, 60)))) for _ in range(6)]
    fam = [0, 0, 1, 1, 2, 2]
    lib = Library(
        refs,
        fam,
        ["a", "b", "c"],
        HomologySettings(k=6, ungapped=0, max_candidates=6, xdrop=20, **SCORING),
    )
    j = int(rng.integers(6))
    copy = _mutate(refs[j], rng, rate)
    flank = "".join(rng.choice(list("ACGU"), 80))
    window = flank[:30] + copy + flank[30:]
    a = lib.align(window, [0], len(window))
    exhaustive = best_family_scores_ref(window, refs, fam, 3, **SCORING)
    assert (a.scores[0] <= np.array(exhaustive)).all()
    if a.family[0] >= 0:
        assert a.scores[0].max() == a.scores[0, a.family[0]]
    copy_score = smith_waterman_ref(copy, refs[j], **SCORING)[0]
    if copy_score >= 2 * 6 + 30 and "A" * 6 not in copy:  # long exact stretches: seeds exist
        assert a.scores[0, fam[j]] >= min(copy_score, exhaustive[fam[j]])


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(4, 8), st.integers(1, 3), st.integers(-4, -1),
       st.integers(0, 30) | st.integers(65, 80), st.integers(0, 20), st.integers(1, 4),
       st.integers(2, 40), st.sampled_from([0.0, 1.5]))  # fmt: skip
def test_seeded_search_equals_its_reference(seed, k, match, mismatch, xdrop, gate, cands, occ,
                                            dust):  # fmt: skip
    """Every output of ``align_windows`` (family scores, best alignment, references aligned) is
    the plain-Python search's, on overlapping windows over mutated copies of library members
    (long ungapped runs and X-drop stops, repeats past ``max_occurrences``, N, DUST), whether
    the windows are searched together or one by one, with X-drops up to 64 (walked 8 positions
    at a time by a table) and above, with exact k-mer seeds or spaced ones, with and without
    masked spans."""
    rng = np.random.default_rng(seed)
    pattern = "1" * k  # or a spaced seed of k ones, its free positions drawn
    if rng.random() < 0.5:
        span = k + int(rng.integers(1, 9))
        ones = {0, span - 1, *(1 + rng.choice(span - 2, k - 2, replace=False)).tolist()}
        pattern = "".join("1" if i in ones else "0" for i in range(span))
    base = ["".join(rng.choice(list("ACGU"), int(rng.integers(20, 90)))) for _ in range(4)]
    refs = base + [_mutate(b, rng, 0.1) for b in base[:3]] + ["ACGUN" * 6]
    fam = [int(x) for x in rng.integers(0, 3, len(refs))]
    parts = []
    for _ in range(3):
        parts.append(
            "".join(rng.choice(list("ACGUN"), int(rng.integers(0, 40)), p=[0.24] * 4 + [0.04]))
        )
        parts.append(
            _mutate(refs[int(rng.integers(len(refs) - 1))], rng, float(rng.uniform(0, 0.2)))
        )
    seq = "".join(parts)
    # now and then a width past the packed sort keys' range: the other sort path (windows are
    # clipped to the sequence, so the search stays small)
    width = int(rng.integers(30, 130)) if rng.random() < 0.8 else 1 << 19
    # windows in start order (searched together), evenly spaced and overlapping as the screen
    # places them, or out of order (each searched on its own); one or two threads
    layout = rng.integers(3)
    if layout == 0:
        starts = sorted({int(x) for x in rng.integers(0, len(seq), 4)})
    elif layout == 1:
        starts = list(range(0, len(seq), max(1, width // int(rng.integers(1, 4)))))
    else:
        starts = [int(x) for x in rng.permutation(rng.integers(0, len(seq), 5))]
    threads = int(rng.integers(1, 3))
    opts = dict(match=match, mismatch=mismatch, gap_open=int(rng.integers(0, 5)),
                gap_extend=int(rng.integers(0, 3)), ungapped=gate, xdrop=xdrop,
                max_candidates=cands, pad=int(rng.integers(0, 20)))  # fmt: skip
    index = _core.HomologyIndex(refs, fam, pattern, occ, 16, dust)
    assert (index.k, index.span) == (k, len(pattern))
    # now and then masked spans (a soft-masked genome's lower case), through align_batch
    masked = []
    if rng.random() < 0.4:
        ends = np.sort(rng.integers(0, len(seq) + 1, 2 * int(rng.integers(1, 4))))
        masked = [(int(a), int(b)) for a, b in ends.reshape(-1, 2)]
        got = index.align_batch([seq], [0], [False], [np.array(starts, dtype=np.int64)], [width],
                                threads=threads, masked=[np.array(masked, dtype=np.int64)],
                                **opts)[0]  # fmt: skip
    else:
        got = index.align_windows(seq, starts, width, threads=threads, **opts)
    scores, best, n = align_windows_ref(seq, starts, width, refs, fam, k=k, max_occurrences=occ,
                                        dust_window=16, dust=dust, seed=pattern, masked=masked,
                                        **opts)  # fmt: skip
    assert got["family_score"].tolist() == scores
    assert [tuple(b) for b in got["best"].tolist()] == best
    assert got["candidates"].tolist() == n


def test_batch_of_sequences_equals_each_alone():
    """``align_batch`` (a job: windows on one strand of a sequence; the jobs shared out to
    threads, the longest first) gives each job exactly what ``align_windows`` gives that strand
    alone, the minus strand's codes and low-complexity mask made from the plus strand's, with any
    number of threads."""
    rng = np.random.default_rng(11)
    refs = ["".join(rng.choice(list("ACGU"), int(rng.integers(40, 90)))) for _ in range(8)]
    fam = [int(x) for x in rng.integers(0, 3, len(refs))]
    index = _core.HomologyIndex(refs, fam, "11111111", 50, 16, 1.5)
    seqs, jobs = [], []
    for i in range(9):
        parts = ["".join(rng.choice(list("ACGU"), int(rng.integers(0, 60))))]
        parts += [_mutate(refs[int(rng.integers(len(refs)))], rng, 0.1) for _ in range(i % 3)]
        parts.insert(int(rng.integers(len(parts) + 1)), ["", "AUAUAUAUAUAUAUAUAUAU", "NNRY"][i % 3])
        seqs.append("".join(parts) or "A")
        w = int(rng.integers(20, 80))
        starts = list(range(0, len(seqs[-1]), max(1, w // 2)))
        jobs += [(i, minus, starts, w) for minus in ((False, True) if i % 4 else (True,))]
    opts = dict(match=2, mismatch=-3, gap_open=5, gap_extend=2, ungapped=12, xdrop=20,
                max_candidates=3, pad=8)  # fmt: skip
    alone = [index.align_windows(reverse_complement(seqs[i]) if minus else seqs[i], st, w,
                                 threads=1, **opts)
             for i, minus, st, w in jobs]  # fmt: skip
    assert any(a["best"][:, 0].any() for a in alone)  # something aligned

    def batch(jobs, threads):
        return index.align_batch(seqs, [j[0] for j in jobs], [j[1] for j in jobs],
                                 [np.array(j[2]) for j in jobs], [j[3] for j in jobs],
                                 threads=threads, **opts)  # fmt: skip

    for threads in (1, 2, 3):
        for n in (1, 2, len(jobs)):
            for g, a in zip(batch(jobs[:n], threads), alone[:n], strict=True):
                for key in ("family_score", "best", "candidates"):
                    assert g[key].tolist() == a[key].tolist()
    with pytest.raises(ValueError, match="one sequence index, strand, list of starts and width"):
        index.align_batch(seqs, [0, 1], [False] * 2, [np.array([0])] * 2, [4], **opts)
    with pytest.raises(ValueError, match="sequence index is out of range"):
        batch([(len(seqs), False, [0], 4)], 1)
    with pytest.raises(ValueError, match="window start outside"):
        batch([(0, False, [0], 4), (1, True, [len(seqs[1])], 4)], 2)
    # masked spans are given on the plus strand: the minus strand's are those spans mirrored
    masks = [np.sort(rng.integers(0, len(x) + 1, 2)).reshape(1, 2) for x in seqs]
    mirrored = [len(x) - m[:, ::-1] for x, m in zip(seqs, masks)]
    rcs = [reverse_complement(x) for x in seqs]
    changed = 0
    for q, (i, minus, starts, w) in enumerate(jobs):
        args = ([i], [minus], [np.array(starts)], [w])
        got = index.align_batch(seqs, *args, masked=masks, **opts)[0]
        on_rc = index.align_batch(rcs, [i], [not minus], *args[2:], masked=mirrored, **opts)[0]
        for key in ("family_score", "best", "candidates"):
            assert got[key].tolist() == on_rc[key].tolist()
        changed += got["family_score"].tolist() != alone[q]["family_score"].tolist()
    assert changed  # the masks took seeds away somewhere
    with pytest.raises(ValueError, match=r"masked span \[0, 999\) of sequence 1 lies outside"):
        index.align_batch(seqs, [0], [False], [np.array([0])], [4], **opts,
                          masked=[np.zeros((0, 2))] + [np.array([[0, 999]])] * (len(seqs) - 1))  # fmt: skip
    with pytest.raises(ValueError, match="per sequence"):
        index.align_batch(seqs, [0], [False], [np.array([0])], [4], masked=masks[:1], **opts)


@settings(max_examples=200, deadline=None)
@given(st.text("ACGUN", max_size=120), st.integers(4, 40), st.sampled_from([0.5, 1.0, 1.5, 3.0]))
def test_dust_mask_of_the_reverse_complement_is_the_mask_reversed(seq, window, threshold):
    """The minus strand's low-complexity mask is taken from the plus strand's, reversed: a
    stretch and its reverse complement hold the same triplet counts."""
    fwd = dust_mask(seq, window, threshold)
    assert dust_mask(reverse_complement(seq), window, threshold).tolist() == fwd[::-1].tolist()


def test_envelope_and_windows_of_a_planted_member():
    rng = np.random.default_rng(3)
    refs = ["".join(rng.choice(list("ACGU"), 70)) for _ in range(3)]
    lib = Library(
        refs, [0, 1, 1], ["x", "y"], HomologySettings(k=8, ungapped=20, xdrop=20, **SCORING)
    )
    bg = "".join(rng.choice(list("ACGU"), 400))
    seq = bg[:150] + refs[1][10:] + bg[150:]  # the member without its first 10 nt
    a = lib.align(seq, [100, 150, 300], 100)  # windows [100, 200), [150, 250), [300, 400)
    assert a.family.tolist()[:2] == [1, 1]
    # window 100 sees ref[10:60] at [50, 100): extended by the 10 nt before and the 10 after it
    assert a.envelope[0].tolist() == [40, 110]
    # window 150 sees ref[10:70] at [0, 60): the 10 nt before it lie outside the window
    assert a.envelope[1].tolist() == [-10, 60]
    assert a.scores[1, 1] == 2 * 60
    assert a.candidates[2] == 0 or a.scores[2].max() < 40  # pure background


def test_library_subset_scores_a_column_per_label():
    """A library of some families (``subset``: the screen's search of chosen families) scores
    every label in its own column, zeros for the families it lacks, and an empty one aligns
    nothing."""
    rng = np.random.default_rng(5)
    refs = ["".join(rng.choice(list("ACGU"), 60)) for _ in range(3)]
    lib = Library(refs, [0, 1, 2], ["a", "b", "c"], HomologySettings(k=8, ungapped=10))
    window = "UUUU" + refs[0] + "UUUU"
    full = lib.align(window, [0], len(window))
    only_a = lib.subset([0])
    assert only_a.seqs == [refs[0]] and only_a.names == ["m0"]
    a = only_a.align(window, [0], len(window))
    assert a.scores.shape == (1, 3) and a.scores[0, 0] == full.scores[0, 0] > 0
    assert a.scores[0, 1:].tolist() == [0, 0] and a.family.tolist() == [0]
    none = lib.subset([1]).subset([0])
    e = none.align(window, [0], len(window))
    assert e.scores.tolist() == [[0, 0, 0]] and e.family.tolist() == [-1] and not e.aligned.any()


def test_bits_per_score_matches_blast():
    # BLAST's ungapped Karlin-Altschul lambda (nats) for reward/penalty 1/-3; for 1/-1 it
    # solves e^l/4 + 3e^-l/4 = 1 exactly: l = ln 3
    assert bits_per_score(1, -3) * np.log(2) == pytest.approx(1.374, abs=1e-3)
    assert bits_per_score(1, -1) == pytest.approx(np.log2(3), abs=1e-9)
    with pytest.raises(ValueError, match="match > 0 > mismatch"):
        bits_per_score(1, 1)


def test_library_round_trip_and_errors(tmp_path):
    lib = Library(["ACGUACGUACGU", "GGGGCCCCAAAAUUUU"], [1, 0], ["p", "q"])
    lib.write(tmp_path / "lib.fa.gz")
    back = Library.read(tmp_path / "lib.fa.gz", ["p", "q"])
    assert back.seqs == lib.seqs and back.families.tolist() == [1, 0]
    assert back.names == ["m0", "m1"]
    named = Library(lib.seqs, [1, 0], ["p", "q"], names=["RF00005_X1/1-12", "nrc_7"])
    named.write(tmp_path / "named.fa")
    assert Library.read(tmp_path / "named.fa", ["p", "q"]).names == ["RF00005_X1/1-12", "nrc_7"]
    with pytest.raises(ValueError, match="names must be non-empty without whitespace, got 'a b'"):
        Library(lib.seqs, [1, 0], ["p", "q"], names=["a b", "c"])
    with pytest.raises(ValueError, match="2 library sequences but 1 names"):
        Library(lib.seqs, [1, 0], ["p", "q"], names=["a"])
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ValueError, match=r"lib.fa.gz, line 1: record 'm0' has family 'q', not one"):
        Library.read(tmp_path / "lib.fa.gz", ["p", "x"])
    with gzip.open(tmp_path / "empty.fa.gz", "wt"):
        pass
    with pytest.raises(ValueError, match="the homology library is empty"):
        Library.read(tmp_path / "empty.fa.gz", ["p"])
    with pytest.raises(ValueError, match="family indices"):
        Library(["ACGU"], [2], ["p", "q"])
    with pytest.raises(ValueError, match="k must be in"):
        HomologySettings(k=13)
    for bad in ("0111", "1110", "11a11", "1" + "0" * 40 + "1111"):
        with pytest.raises(ValueError, match="seed must be '1's and '0's"):
            HomologySettings(k=4, seed=bad)
    with pytest.raises(ValueError, match="has 5 ones but k is 11"):
        HomologySettings(seed="1110011")
    with pytest.raises(ValueError, match="seed must be a string"):
        HomologySettings(seed=111)
    with pytest.raises(ValueError, match="starts and ends with '1'"):
        _core.HomologyIndex(["ACGU"], [0], "01111", 10)
    with pytest.raises(ValueError, match=r"cfg.json: unknown homology settings \['kk'\]"):
        HomologySettings.from_dict({"kk": 3}, "cfg.json")
    with pytest.raises(ValueError, match=r"cfg\.json: homology setting pad must be >= 0"):
        HomologySettings.from_dict({"pad": -1}, "cfg.json")
    with pytest.raises(ValueError, match="dust_window must be >= 4"):
        HomologySettings(dust_window=2)
    with pytest.raises(ValueError, match="dust must be a number"):
        HomologySettings(dust="high")
    with pytest.raises(ValueError, match="window start outside"):
        lib.align("ACGUACGU", [9], 4)
