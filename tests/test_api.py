"""The library API (rnaernie.api) on a micro model saved in the shipped layout."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from _micro_model import NRC_LABELS, save_micro_model

from rnaernie.api import load
from rnaernie.model import resolve_model_dir
from rnaernie.tokenizer import reverse_complement

SEQS = ["ACGUACGUAAGG", "GGGGAAAACCCCUUUAGGCAUCGAUGCUAGC", "AUG", "GGGAAAUCCC" * 3]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_micro_model(tmp_path_factory.mktemp("micro"))


@pytest.fixture(scope="module")
def m(model_dir):
    return load(model_dir)


def test_embed_shapes_and_order(m):
    e = m.embed(SEQS)
    assert e.shape == (4, 32) and e.dtype == np.float32
    # batching and order do not change a sequence's embedding
    e_rev = m.embed(SEQS[::-1], batch_tokens=40)
    np.testing.assert_allclose(e_rev[::-1], e, rtol=1e-4, atol=1e-5)
    one = m.embed([SEQS[1]])
    np.testing.assert_allclose(one[0], e[1], rtol=1e-4, atol=1e-5)
    cls = m.embed(SEQS, pooling="cls")
    assert cls.shape == (4, 32) and not np.allclose(cls, e)
    per_nt = m.embed(SEQS, pooling="none")
    assert [x.shape for x in per_nt] == [(len(s), 32) for s in SEQS]
    assert m.embed([]).shape == (0, 32) and m.embed([], pooling="none") == []


def test_long_sequences_use_windows(m):
    long = ("ACGUAGCUAGCUAGGCUA" * 40)[:700]  # 700 nt > 510: windows [0,510) and [190,700)
    e = m.embed([long])
    w = m.embed([long[:510], long[190:]])
    np.testing.assert_allclose(e[0], w.mean(0), rtol=1e-4, atol=1e-5)
    per_nt = m.embed([long], pooling="none")[0]
    assert per_nt.shape == (700, 32)
    t = m.predict_type([long], top_k=2)[0]
    assert len(t.types) == 2
    with pytest.raises(
        ValueError, match=r"sequence 0 \('chr'\) has 700 nt; fold handles at most 600"
    ):
        m.fold([long], ids=["chr"], max_length=600)


def test_fold_long_sequences_stitch_windows(m):
    """Over 510 nt, the pair logits are the mean of the 510-nt windows holding both bases."""
    from rnaernie.predict import PAIR_FILL

    long = ("GGGAAACCCUUAGCUAGGCUAAGC" * 40)[:700]  # windows [0,510) and [190,700)
    got = m.pair_logits([long])[0]
    a, b = m.pair_logits([long[:510], long[190:]])
    want = np.full((700, 700), PAIR_FILL, np.float32)
    want[:510, :510] = a
    want[190:, 190:] = b
    want[190:510, 190:510] = (a[190:, 190:] + b[:320, :320]) / 2
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    full = m.fold([long], threshold=-50.0)[0]  # every allowed pair scores above the threshold
    assert len(full.dot_bracket) == 700 and len(full.pairs) > 0
    assert not any(j - i > 509 for i, j in full.pairs)  # no window holds such a pair
    assert m.pair_logits([]) == []


def test_predict_type_and_classify(m):
    tp = m.predict_type(SEQS, top_k=3)
    assert len(tp) == 4 and all(len(t.types) == 3 for t in tp)
    assert all(t.probabilities[0] >= t.probabilities[1] >= t.probabilities[2] for t in tp)
    mlm = m.predict_type(SEQS, top_k=1, method="mlm")
    assert 0.0 < mlm[0].probability <= 1.0
    c = m.classify(SEQS, top_k=2)
    assert [x.id for x in c] == ["seq0", "seq1", "seq2", "seq3"]
    assert all(x.label in NRC_LABELS and len(x.labels) == 2 for x in c)
    assert c[0].rna_type is not None and c[0].rna_type.type == tp[0].type
    assert m.classify([]) == []


def test_fold(m):
    res = m.fold(SEQS, return_probs=True)
    for r, s in zip(res, SEQS):
        assert len(r.dot_bracket) == len(s) == r.probs.shape[0]
        assert r.dot_bracket.count("(") == r.num_pairs
    assert any(r.num_pairs for r in res)
    greedy = m.fold(SEQS, decoder="greedy")
    assert [len(r.dot_bracket) for r in greedy] == [len(s) for s in SEQS]
    with pytest.raises(ValueError, match="decoder"):
        m.fold(SEQS, decoder="zuker")


def test_interact(m):
    out = m.interact([("p1", "UGAGGUAGUAGGUUGUAUAGUU", "AACUAUACAACCUACUACCUCA")])
    assert out[0].id == "p1" and abs(sum(out[0].probabilities) - 1) < 1e-5


def test_missing_heads_are_named(tmp_path):
    m = load(save_micro_model(tmp_path / "bare", heads=()))
    with pytest.raises(ValueError, match="no nrc head"):
        m.classify(["ACGU"])
    with pytest.raises(ValueError, match="no structure head"):
        m.fold(["ACGU"])
    with pytest.raises(ValueError, match="no interaction head"):
        m.interact([("A", "C")])
    with pytest.raises(ValueError, match="no lncrna head"):
        m.classify(["ACGU"], head="lncrna")
    with pytest.raises(ValueError, match="head must be one of nrc, lncrna, not 'bogus'"):
        m.classify(["ACGU"], head="bogus")
    assert m.embed(["ACGU"]).shape == (1, 32)


def test_bad_input(m, tmp_path):
    with pytest.raises(ValueError, match=r"'bad'.*position 2"):
        m.embed([("ok", "ACGU"), ("bad", "ACZU")])
    with pytest.raises(ValueError, match="not a file"):
        m.embed("ACGU")
    with pytest.raises(ValueError, match="neither a shipped name"):
        load(tmp_path / "nope")
    with pytest.raises(ValueError, match=r"no model\.safetensors"):
        resolve_model_dir(tmp_path)


def test_fasta_path_input(m, tmp_path):
    fa = tmp_path / "x.fa"
    fa.write_text(">a\nACGUACGUAAGG\n>b\nAUG\n")
    c = m.classify(fa)
    assert [x.id for x in c] == ["a", "b"]
    np.testing.assert_allclose(m.embed(fa), m.embed([SEQS[0], "AUG"]), rtol=1e-4, atol=1e-5)


def test_deterministic_and_thread_safe(model_dir):
    m = load(model_dir)  # a fresh instance: heads are loaded lazily, concurrently below
    jobs = [lambda: m.embed(SEQS), lambda: m.classify(SEQS), lambda: m.fold(SEQS)] * 3
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda f: f(), jobs))
    ref_e, ref_c, ref_f = m.embed(SEQS), m.classify(SEQS), m.fold(SEQS)
    for k in range(0, len(jobs), 3):
        np.testing.assert_array_equal(results[k], ref_e)
        assert results[k + 1] == ref_c
        assert [r.dot_bracket for r in results[k + 2]] == [r.dot_bracket for r in ref_f]


def test_reverse_complement():
    assert reverse_complement("AACGTn") == "NACGUU"
    assert reverse_complement("ACGURYé-") == "NNNNACGU"  # any other letter: N
    rng = np.random.default_rng(0)
    for _ in range(200):  # letter by letter
        s = "".join(rng.choice(list("ACGUTacgutNRY*é "), int(rng.integers(0, 40))))
        u = "".join(s.split()).upper().replace("T", "U")
        want = "".join({"A": "U", "C": "G", "G": "C", "U": "A"}.get(c, "N") for c in reversed(u))
        assert reverse_complement(s) == want


def test_dtype_resolution_and_errors(model_dir):
    import torch

    from rnaernie.api import resolve_dtype

    assert resolve_dtype("bf16") is torch.bfloat16 and resolve_dtype("float32") is torch.float32
    assert resolve_dtype(torch.float16) is torch.float16
    assert resolve_dtype("auto", "cpu") in (torch.float32, torch.bfloat16)
    with pytest.raises(ValueError, match="dtype must be one of"):
        resolve_dtype("double")
    with pytest.raises(ValueError, match="dtype must be float32, bfloat16 or float16"):
        resolve_dtype(torch.int8)
    with pytest.raises(ValueError, match="int8 quantisation needs dtype float32"):
        load(model_dir, int8=True, dtype="bfloat16")
    half = load(model_dir, dtype="bfloat16")
    assert "dtype=bfloat16" in repr(half)
    e = half.embed(SEQS)
    assert e.dtype == np.float32 and e.shape == (4, 32) and np.isfinite(e).all()
    assert all(len(f.dot_bracket) == len(s) for f, s in zip(half.fold(SEQS), SEQS))
    assert len(half.interact([(SEQS[0], SEQS[1])])) == 1


def test_fold_with_rnafold_prior(m):
    pytest.importorskip("RNA")
    from rnaernie.structure import dot_bracket_to_pairs
    from rnaernie.structure.prior import rnafold_pairs

    seqs = ["GGGGAAAACCCCAUGGCAUUUGCCAUG", "GCGCAUAUGCGCAAAGCGCAUAUGCGC"]
    # a bonus far above any logit: the decoder keeps exactly RNAfold's (nested, canonical) pairs
    got = m.fold(seqs, prior="rnafold", prior_weight=1e4, threshold=0.0, no_lonely_pairs=False)
    for f, p in zip(got, rnafold_pairs(seqs)):
        np.testing.assert_array_equal(dot_bracket_to_pairs(f.dot_bracket), p)
    plain, with_prior = m.pair_logits(seqs[:1])[0], m.fold(seqs[:1], prior="rnafold",
                                                           prior_weight=2.0, return_probs=True)[0]  # fmt: skip
    bonus = np.zeros_like(plain)
    for i, j in rnafold_pairs(seqs[:1])[0]:
        bonus[i, j] = bonus[j, i] = 2.0
    np.testing.assert_allclose(with_prior.probs, 1 / (1 + np.exp(-(plain + bonus))), atol=1e-5)
    with pytest.raises(ValueError, match="prior must be None or one of"):
        m.fold(seqs, prior="contrafold")
    with pytest.raises(ValueError, match="prior_weight must be a finite number"):
        m.fold(seqs, prior="rnafold", prior_weight=float("nan"))
    with pytest.raises(ValueError, match="max_length must be a positive int"):
        m.fold(seqs, max_length=0)


def test_fold_in_bounded_groups_matches_one_group(m, monkeypatch):
    import rnaernie.api as api

    assert api._groups_by_area([3, 3, 5, 1], 20) == [[0, 1], [2], [3]]
    assert api._groups_by_area([10], 4) == [[0]] and api._groups_by_area([], 4) == []
    want = m.fold(SEQS, return_probs=True)
    monkeypatch.setattr(api, "FOLD_AREA", 200)  # forces several groups
    got = m.fold(SEQS, return_probs=True)
    assert [g.dot_bracket for g in got] == [w.dot_bracket for w in want]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.probs, w.probs, atol=1e-5)
    with pytest.raises(ValueError, match="prior_weight is a setting of prior='rnafold'"):
        m.fold(SEQS, prior_weight=1.0)


def test_fold_decoders_over_probabilities(m):
    """mea and threshknot decode the sigmoid of the pair logits with the options' defaults."""
    import torch

    from rnaernie.structure import DecodeOptions, decode

    seq = "GGGCGCAAGCCUGUAAAAAGCGCGGCCUUCGGGCCGCGCUUUUUACAGGCUUGCGCCC"
    probs = torch.sigmoid(torch.from_numpy(m.pair_logits([seq])[0])).numpy()
    for name, opts in (("mea", DecodeOptions(method="mea", gamma=3.0)),
                       ("threshknot", DecodeOptions(method="threshknot", threshold=0.3))):  # fmt: skip
        kw = {"gamma": 3.0} if name == "mea" else {}
        got = m.fold([seq], decoder=name, **kw)[0]
        assert np.array_equal(got.pairs, decode(seq, probs, opts).pairs)
    with pytest.raises(ValueError, match="gamma is a setting of decoder='mea'"):
        m.fold([seq], gamma=2.0)
    with pytest.raises(ValueError, match="decoder must be one of"):
        m.fold([seq], decoder="viterbi")
