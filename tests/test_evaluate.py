from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnaernie.evaluate import rnafold_f1
from rnaernie.structure import read_dbn

FIX = Path(__file__).parent / "fixtures"


def test_rnafold_baseline_scores_fixture_records():
    pytest.importorskip("RNA")
    recs = read_dbn(FIX / "structure" / "ts0_sample.dbn")
    res = rnafold_f1(recs)
    assert res["n"] == len(recs) and 0.0 <= res["f1"] <= res["f1_shift1"] <= 1.0
    assert np.isfinite(res["f1"])


def test_model_results_are_cached_per_model(tmp_path):
    from rnaernie.evaluate import model_cache

    a, b = tmp_path / "a", tmp_path / "b"
    for d, w in ((a, b"1"), (b, b"2")):
        (d / "heads").mkdir(parents=True)
        (d / "config.json").write_text("{}")
        (d / "heads" / "model.safetensors").write_bytes(w)
    assert model_cache(None, a) is None
    assert model_cache(tmp_path / "c", a) == model_cache(tmp_path / "c", a)
    assert model_cache(tmp_path / "c", a) != model_cache(tmp_path / "c", b)


def test_ablation_flags_are_stored(tmp_path):
    from rnaernie.cli import main

    m = tmp_path / "metrics.json"
    m.write_text('{"accuracy": 0.5}')
    out = tmp_path / "acc.json"
    args = ["evaluate", "--data-dir", str(tmp_path), "--sections", ""]
    assert main([*args, "--out", str(out), "--cache", "", "--ablation", f"x={m}"]) == 0
    import json

    assert json.loads(out.read_text())["ablations"] == {"x": {"accuracy": 0.5}}
    assert main([*args, "--out", str(out), "--ablation", "no-equals-sign"]) == 2
    assert main([*args, "--out", str(out), "--sections", "nrc,bogus"]) == 2


def test_evaluation_data_folder_is_required(monkeypatch, capsys):
    from rnaernie.cli import main

    monkeypatch.delenv("RNAERNIE_DATA", raising=False)
    assert main(["evaluate", "--sections", ""]) == 2
    assert "--data-dir" in capsys.readouterr().err


def test_rnafold_prior_pairs_bonus_and_errors(monkeypatch, tmp_path):
    RNA = pytest.importorskip("RNA")
    from rnaernie.structure import dot_bracket_to_pairs
    from rnaernie.structure.prior import add_pair_bonus, rnafold_pairs

    recs = read_dbn(FIX / "structure" / "ts0_sample.dbn")[:6]
    seqs = [r.sequence for r in recs]
    one = rnafold_pairs(seqs)
    for s, p in zip(seqs, one):
        np.testing.assert_array_equal(p, dot_bracket_to_pairs(RNA.fold(s.upper())[0]))
    import rnaernie.structure.prior as prior

    monkeypatch.setattr(prior, "MIN_POOL", 2)  # fold the six in two worker interpreters
    two = rnafold_pairs(seqs, processes=2)
    assert all(np.array_equal(a, b) for a, b in zip(one, two))
    failing = tmp_path / "fail.py"
    failing.write_text("import sys; sys.exit(3)\n")
    monkeypatch.setattr(prior, "_WORKER", str(failing))
    with pytest.raises(
        RuntimeError, match=r"ViennaRNA worker failed \(exit status 3, 0 of \d structures\)"
    ):
        rnafold_pairs(seqs, processes=2)
    with pytest.raises(ValueError, match="sequence 1 contains a line break"):
        rnafold_pairs(["ACGU", "AC\nGU"])
    z = np.random.default_rng(0).normal(size=(9, 9)).astype(np.float32)
    z = z + z.T
    p = np.array([[0, 8], [1, 7]])
    got = add_pair_bonus(z, p, 2.5)
    want = z.copy()
    for i, j in p:
        want[i, j] += 2.5
        want[j, i] += 2.5
    np.testing.assert_allclose(got, want)
    assert not np.shares_memory(got, z)
    with pytest.raises(ValueError, match="outside a 9-nt score matrix"):
        add_pair_bonus(z, np.array([[0, 9]]), 1.0)
    monkeypatch.setitem(__import__("sys").modules, "RNA", None)  # as if not installed
    with pytest.raises(ValueError, match="pip install viennarna"):
        rnafold_pairs(["GGGAAACCC"])


def test_prior_dominating_a_flat_model_reproduces_rnafold():
    """Logits that say 'no pair' everywhere plus a large MFE bonus decode to RNAfold's structure."""
    pytest.importorskip("RNA")
    from rnaernie.structure.prior import rnafold_pairs
    from rnaernie.training.structure import choose_prior, prior_scores

    recs = read_dbn(FIX / "structure" / "ts0_sample.dbn")
    mfe = rnafold_pairs([r.sequence for r in recs])
    flat = [np.full((len(r.sequence),) * 2, -10.0, np.float32) for r in recs]
    ref = rnafold_f1(recs, mfe)
    got = prior_scores(flat, recs, mfe, {"weight": 20.0, "decode": {"threshold": 0.0}})
    assert got["f1"] == pytest.approx(ref["f1"]) and got["f1_shift1"] == pytest.approx(
        ref["f1_shift1"]
    )
    best = choose_prior(flat, recs, mfe, weights=(1.0, 20.0), thresholds=(0.0,))
    assert (
        best["weight"] == 20.0 and best["decode"]["threshold"] == 0.0
    )  # weight 1 leaves every logit < 0
    assert prior_scores(flat, recs, mfe, best)["f1"] >= ref["f1"]


def test_paired_bootstrap_interval_brackets_the_mean_difference():
    from rnaernie.evaluate import paired_bootstrap

    rng = np.random.default_rng(1)
    a = rng.random(500)
    assert paired_bootstrap(a, a) == {"mean_diff": 0.0, "ci95": [0.0, 0.0]}
    assert paired_bootstrap(a + 0.25, a) == {"mean_diff": 0.25, "ci95": [0.25, 0.25]}
    ok = rng.random(2000) < 0.85  # 0/1 correctness of two classifiers on the same items
    other = ok.copy()
    other[:40] = ~other[:40]
    r = paired_bootstrap(ok, other, n=2000)
    assert r["mean_diff"] == round(float(ok.mean() - other.mean()), 4)
    assert r["ci95"][0] <= r["mean_diff"] <= r["ci95"][1] and r["ci95"][0] < r["ci95"][1]
    assert paired_bootstrap(ok, other, n=2000) == r  # seeded: the same interval every time


def test_kmer_hybrid_scores_the_product(tmp_path):
    """evaluate's hybrid entry: the stored k-mer classifier, and its product with the model."""
    from rnaernie.evaluate import _kmer_hybrid
    from rnaernie.kmer import KmerClassifier, combine_experts

    rng = np.random.default_rng(1)
    comps = rng.dirichlet(np.ones(4), size=3)
    y = np.arange(45) % 3
    seqs = ["".join(rng.choice(list("ACGU"), size=40, p=comps[c])) for c in y]
    clf = KmerClassifier.fit(seqs, y, ["a", "b", "c"], kmax=2)
    clf.save(tmp_path)
    pk = clf.predict_proba(seqs)
    model = rng.dirichlet(np.ones(3), size=len(seqs)).astype(np.float32)
    res = _kmer_hybrid(tmp_path, model, pk, seqs, y)
    assert res["kmer_head"]["max_abs_prob_diff_vs_baseline"] < 1e-6
    assert res["kmer_head"]["accuracy"] == pytest.approx(np.mean(pk.argmax(1) == y))
    want = np.mean(combine_experts(model, pk).argmax(1) == y)
    assert res["hybrid"]["accuracy"] == pytest.approx(want)
    d = np.mean(combine_experts(model, pk).argmax(1) == y) - np.mean(pk.argmax(1) == y)
    assert res["hybrid"]["vs_kmer_baseline"]["mean_diff"] == pytest.approx(d, abs=1e-4)
