from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnaernie import _masking_ref as ref
from rnaernie import vocab
from rnaernie.masking import LEVELS, apply_mlm_replacement, mask_batch, select_mask_positions
from rnaernie.motifs import MotifMatcher
from rnaernie.tokenizer import Tokenizer

MOTIFS = ["ACG", "GGA", "UUU", "ACGUA", "CC"]
TIERS = [0, 0, 1, 1, 0]


def small_matcher():
    return MotifMatcher(MOTIFS, sources=TIERS, source_names=("db", "Statistics"))


def motif_ids():
    tok = Tokenizer()
    return [tok.encode(m, add_special_tokens=False).tolist() for m in MOTIFS]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.text(alphabet="ACGUN", max_size=70), min_size=1, max_size=5),
    st.integers(0, 2**63),
    st.sampled_from([(0,), (1,), (2,), (0, 1, 2), (1, 2)]),
    st.booleans(),
)
def test_selection_equals_python_reference(seqs, seed, levels, typed):
    enc = Tokenizer().encode_batch(seqs, types=["tRNA"] * len(seqs) if typed else None)
    names = [LEVELS[i] for i in levels]
    sel, lv = select_mask_positions(enc.input_ids, seed=seed, levels=names, matcher=small_matcher())
    for r, row in enumerate(enc.input_ids.tolist()):
        want, want_level = ref.select_row(row, r, seed, list(levels), motif_ids(), TIERS)
        assert lv[r] == want_level
        assert sel[r].astype(int).tolist() == want


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.text(alphabet="ACGU", max_size=40), min_size=1, max_size=4),
    st.integers(0, 2**32 - 1),
)
def test_replacement_equals_python_reference(seqs, seed):
    enc = Tokenizer().encode_batch(seqs)
    rng = np.random.default_rng(seed)
    sel = (rng.random(enc.input_ids.shape) < 0.5) & (enc.input_ids >= vocab.NUC_OFFSET)
    out, labels = apply_mlm_replacement(enc.input_ids, sel, seed=seed)
    for r, row in enumerate(enc.input_ids.tolist()):
        want_out, want_lab = ref.apply_row(row, sel[r].astype(int).tolist(), r, seed)
        assert out[r].tolist() == want_out
        assert labels[r].tolist() == want_lab


def real_batch(n=400):
    rng = np.random.default_rng(3)
    seqs = ["".join(rng.choice(list("ACGU"), size=int(k))) for k in rng.integers(20, 400, size=n)]
    return Tokenizer().encode_batch(seqs, types=["miRNA"] * n)


@pytest.mark.parametrize("level", LEVELS)
def test_budget_specials_and_no_overlap(level):
    enc = real_batch()
    out = mask_batch(enc.input_ids, seed=11, levels=[level])
    ids = enc.input_ids
    maskable = (ids == vocab.UNK_ID) | (ids >= vocab.NUC_OFFSET)
    assert not (out.selected & ~maskable).any()  # specials and type token never masked
    n = maskable.sum(1)
    budget = np.minimum(77, np.maximum(1, np.round(n * 0.15)))
    count = out.selected.sum(1)
    assert (count <= budget).all()
    assert (out.level == LEVELS.index(level)).all()
    if level != "motif":  # the motif level can run out of motifs, as in the official code
        assert (count == budget).all()
    assert ((out.labels != -100) == out.selected).all()
    assert (out.labels[out.selected] == ids[out.selected]).all()
    assert (out.input_ids[~out.selected] == ids[~out.selected]).all()


def test_subsequence_spans_are_contiguous_and_bounded():
    enc = real_batch(100)
    out = mask_batch(enc.input_ids, seed=5, levels=["subsequence"])
    lengths = []
    for row in out.selected:
        padded = np.concatenate([[0], row.astype(int), [0]])
        d = np.diff(padded)
        lengths += (np.flatnonzero(d == -1) - np.flatnonzero(d == 1)).tolist()
    # adjacent spans may touch, so runs can exceed 8, but most spans are single 5..8 runs
    assert np.median(lengths) >= 5


def test_motif_level_masks_whole_motifs():
    m = MotifMatcher.default()
    enc = Tokenizer().encode_batch(["AGCAGCCGCGGUUUUUUUUUUACGAAUGAUAAGAAGAA" * 3])
    out = mask_batch(enc.input_ids, seed=1, levels=["motif"], matcher=m)
    assert out.selected.sum() > 0
    hits = m.find([Tokenizer().decode(enc.input_ids[0])])
    covered = np.zeros(enc.input_ids.shape[1], bool)
    for s, e in zip(hits.start, hits.end):
        span = out.selected[0, s + 1 : e + 1]
        if span.all():
            covered[s + 1 : e + 1] = True
    assert (
        covered == out.selected[0]
    ).all()  # every selected token belongs to a fully masked motif


def test_replacement_proportions():
    ids = np.full((200, 500), vocab.NUC_OFFSET, dtype=np.int64)
    sel = np.ones_like(ids, dtype=bool)
    out, _ = apply_mlm_replacement(ids, sel, seed=123)
    n = out.size
    frac_mask = (out == vocab.MASK_ID).mean()
    changed = (out != vocab.MASK_ID) & (out != vocab.NUC_OFFSET)
    assert abs(frac_mask - 0.8) < 0.01
    # random nucleotides: 10 %, a quarter of which land on the original "A"
    assert abs(changed.mean() - 0.075) < 0.01
    counts = np.bincount(out[out >= vocab.NUC_OFFSET] - vocab.NUC_OFFSET, minlength=4)
    assert counts.sum() > 0.19 * n  # 10 % unchanged + 10 % random


def test_deterministic_and_seed_sensitive():
    enc = real_batch(50)
    a = mask_batch(enc.input_ids, seed=7)
    b = mask_batch(enc.input_ids, seed=7, threads=1)
    c = mask_batch(enc.input_ids, seed=8)
    np.testing.assert_array_equal(a.input_ids, b.input_ids)
    assert not np.array_equal(a.selected, c.selected)


def test_level_choice_is_uniform():
    enc = real_batch(3000)
    out = mask_batch(enc.input_ids, seed=2)
    frac = np.bincount(out.level, minlength=3) / len(out.level)
    assert np.all(np.abs(frac - 1 / 3) < 0.04)


def test_bad_arguments():
    ids = np.zeros((2, 3), np.int64)
    with pytest.raises(ValueError, match="levels must be"):
        select_mask_positions(ids, seed=0, levels=["word"])
    with pytest.raises(ValueError, match="2-D"):
        select_mask_positions(np.zeros(3, np.int64), seed=0)
    with pytest.raises(ValueError, match="mask_prob"):
        select_mask_positions(ids, seed=0, mask_prob=1.5, levels=["base"])
    with pytest.raises(ValueError, match="shape of input_ids"):
        apply_mlm_replacement(ids, np.zeros((2, 2), bool), seed=0)


def test_rejects_bad_ids_and_spans():
    # regressions from the sanitizer stress run (scripts/stress/README.md)
    ids = np.array([[2, 35, -(2**63), 36, 3]], dtype=np.int64)
    with pytest.raises(
        ValueError, match=r"input_ids\[0, 2\] = -9223372036854775808 is not a token id"
    ):
        select_mask_positions(ids, seed=0, levels=["motif"], matcher=small_matcher())
    with pytest.raises(ValueError, match="not a token id"):
        apply_mlm_replacement(np.array([[2, 39, 3]]), np.ones((1, 3), bool), seed=0)
    with pytest.raises(ValueError, match="integer token ids"):
        select_mask_positions(np.array([[2.0, np.nan]]), seed=0, levels=["base"])
    ok = np.array([[2, 35, 36, 3]])
    for lo, hi in ((2**63 - 1, 2**63 - 1), (1, 2**62)):
        with pytest.raises(ValueError, match="span_max <= 4096"):
            select_mask_positions(ok, seed=0, levels=["subsequence"], span_min=lo, span_max=hi)
