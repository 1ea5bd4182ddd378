"""Thermodynamic priors (rnaernie.structure.prior): ViennaRNA partition functions in worker
interpreters, the base-pair-probability fusion, and fold(prior="bpp")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _micro_model import save_micro_model

from rnaernie.structure import DecodeOptions, decode, f1, read_dbn

RNA = pytest.importorskip("RNA")
from rnaernie.structure import prior  # noqa: E402
from rnaernie.structure.prior import (  # noqa: E402
    FEATURES,
    Fusion,
    fusion_features,
    load_partitions,
    save_partitions,
    vienna_partition,
)

FIX = Path(__file__).parent / "fixtures" / "structure"
SEQS = [r.sequence for r in read_dbn(FIX / "ts0_sample.dbn")] + ["GGGGAAAACCCC", "ACGU"]


def only(feature: str, weight: float = 1.0, intercept: float = 0.0, **decode) -> Fusion:
    coef = tuple(weight if f == feature else 0.0 for f in FEATURES)
    return Fusion(coef, intercept, decode or {"method": "mea", "gamma": 1.0})


@pytest.fixture(scope="module")
def parts():
    return vienna_partition(SEQS)


def test_partition_matches_viennarna(parts):
    for s, p in zip(SEQS, parts):
        fc = RNA.fold_compound(s)
        structure, energy = fc.mfe()
        fc.exp_params_rescale(energy)
        fc.pf()
        want = np.asarray(fc.bpp())[1:, 1:]
        want = want + want.T
        got = p.dense()
        assert p.length == len(s) and got.shape == want.shape
        np.testing.assert_allclose(
            got, np.where(want >= prior._vienna.BPP_CUTOFF, want, 0), atol=1e-6
        )
        assert set(map(tuple, p.mfe.tolist())) == set(
            map(tuple, prior.dot_bracket_to_pairs(structure).tolist())
        )
        assert set(map(tuple, p.mea.tolist())) == set(
            map(tuple, prior.dot_bracket_to_pairs(fc.MEA(1.0)[0]).tolist())
        )
        assert p.seconds >= 0


def test_partition_workers_save_load_and_errors(parts, tmp_path, monkeypatch):
    monkeypatch.setattr(prior, "MIN_POOL", 2)  # six sequences in two worker interpreters
    pooled = vienna_partition(SEQS, processes=2)
    f = tmp_path / "pf.npz"
    save_partitions(f, pooled)
    for a, b, c in zip(parts, pooled, load_partitions(f)):
        for x in (b, c):
            assert x.length == a.length
            np.testing.assert_array_equal(x.pairs, a.pairs)
            np.testing.assert_allclose(x.probs, a.probs, rtol=1e-6)
            np.testing.assert_array_equal(x.mfe, a.mfe)
            np.testing.assert_array_equal(x.mea, a.mea)
    assert not list(tmp_path.glob("*.part.npz"))
    failing = tmp_path / "fail.py"
    failing.write_text("import sys; sys.exit(3)\n")
    monkeypatch.setattr(prior, "_WORKER", str(failing))
    with pytest.raises(
        RuntimeError, match=r"ViennaRNA worker failed \(exit status 3, 0 of \d structures\)"
    ):
        vienna_partition(SEQS, processes=2)
    with pytest.raises(ValueError, match="sequence 1 contains a line break"):
        vienna_partition(["ACGU", "AC\nGU"])
    monkeypatch.setitem(__import__("sys").modules, "RNA", None)  # as if not installed
    with pytest.raises(ValueError, match="pip install viennarna"):
        vienna_partition(["GGGAAACCC"])


def test_fusion_is_the_linear_model_it_stores(parts):
    rng = np.random.default_rng(0)
    fu = Fusion(tuple(rng.normal(size=len(FEATURES))), -0.7, {"method": "mea", "gamma": 2.0})
    for s, p in zip(SEQS, parts):
        z = rng.normal(size=(len(s), len(s))).astype(np.float32)
        z = z + z.T
        x = fusion_features(s, z, p)
        got = fu(s, z, p)
        np.testing.assert_allclose(got, got.T, atol=1e-5)
        mfe = {tuple(q) for q in p.mfe.tolist()}
        probs = p.dense()
        for i, j in [(0, len(s) - 1), (1, len(s) // 2), (len(s) - 1, 0)]:
            q = min(max(probs[i, j], 1e-4), 1 - 1e-4)
            pair = {s[i], s[j]}
            want_x = [
                z[i, j],
                np.log(q / (1 - q)),
                z[i, j] * np.log(q / (1 - q)) / 10,
                float((min(i, j), max(i, j)) in mfe),
                float(pair == {"G", "C"}),
                float(pair == {"A", "U"}),
                float(pair == {"G", "U"}),
                np.log(max(abs(i - j), 1)),
            ]
            u = np.log(max((1 / (1 + np.exp(-z[np.triu_indices(len(s), 1)]))).sum() / len(s), 1e-3))
            want_x += [u, want_x[0] * u, want_x[1] * u]
            np.testing.assert_allclose(x[i, j], want_x, rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(
                got[i, j], np.dot(fu.coef, want_x) - 0.7, rtol=1e-4, atol=1e-4
            )
    assert Fusion.from_dict(json.loads(json.dumps(fu.to_dict()))) == fu
    with pytest.raises(ValueError, match="features"):
        Fusion.from_dict({**fu.to_dict(), "features": ["logit"]})
    for bad in (
        {k: v for k, v in fu.to_dict().items() if k != "coef"},
        {**fu.to_dict(), "coef": 1},
    ):
        with pytest.raises(ValueError, match="not a prior_bpp fusion"):
            Fusion.from_dict(bad)
    with pytest.raises(ValueError, match="coefficients"):
        Fusion((1.0,), 0.0, {})
    with pytest.raises(ValueError, match="finite"):
        Fusion((float("nan"),) * len(FEATURES), 0.0, {})
    with pytest.raises(ValueError, match=r"needs \(4, 4\) logits"):
        fu("ACGU", np.zeros((3, 3), np.float32), parts[-1])


def test_probability_only_fusion_decoded_by_mea_is_viennas_mea(parts):
    """The fusion that passes ViennaRNA's probabilities through, decoded by our C++ MEA (γ = 1),
    gives ViennaRNA's own MEA structure."""
    fu = only("bpp_logit")
    for s, p in zip(SEQS, parts):
        probs = 1 / (1 + np.exp(-fu(s, np.zeros((len(s),) * 2, np.float32), p)))
        got = decode(s, probs, DecodeOptions(method="mea", gamma=1.0))
        assert f1(got.pairs, p.mea) >= 0.95 or len(p.mea) == len(got.pairs) == 0


def test_fit_learns_which_source_is_right(parts):
    """Truth = ViennaRNA's MFE pairs, logits = noise: the fit trusts the probabilities, not the
    logits."""
    rng = np.random.default_rng(1)
    noise = [rng.normal(size=(len(s),) * 2).astype(np.float32) for s in SEQS]
    noise = [z + z.T for z in noise]
    fu = Fusion.fit(SEQS, noise, parts, [p.mfe for p in parts], negatives=0.5)
    c = dict(zip(FEATURES, fu.coef))
    assert c["bpp_logit"] + c["mfe_pair"] > 5 * abs(c["logit"])
    assert fu.decode == {"method": "mea", "gamma": 1.0}


@pytest.fixture(scope="module")
def bpp_model(tmp_path_factory):
    d = save_micro_model(tmp_path_factory.mktemp("micro-bpp"))
    cfg = d / "heads" / "structure" / "config.json"
    c = json.loads(cfg.read_text())
    c["extra"]["prior_bpp"] = only("bpp_logit", method="mea", gamma=1.0).to_dict()
    cfg.write_text(json.dumps(c))
    return d


def test_fold_with_bpp_prior(bpp_model, tmp_path):
    from rnaernie.api import load

    m = load(bpp_model)
    seqs = SEQS[:4]
    got = m.fold(seqs, prior="bpp", return_probs=True)
    for g, p, s in zip(got, vienna_partition(seqs), seqs):
        np.testing.assert_allclose(g.bpp, p.dense())
        fused = only("bpp_logit")(s, m.pair_logits([s])[0], p)
        np.testing.assert_allclose(g.probs, 1 / (1 + np.exp(-fused)), atol=1e-5)
        assert f1(g.pairs, p.mea) >= 0.95  # the probability-only fusion is ViennaRNA's MEA
    nested = m.fold(seqs[:1], prior="bpp", decoder="nussinov", threshold=0.0)[0]
    assert nested.bpp is None  # probabilities only when asked for
    with pytest.raises(ValueError, match="prior_weight is a setting of prior='rnafold'"):
        m.fold(seqs, prior="bpp", prior_weight=1.0)
    plain = tmp_path / "plain"
    shutil.copytree(bpp_model, plain)
    cfg = plain / "heads" / "structure" / "config.json"
    c = json.loads(cfg.read_text())
    del c["extra"]["prior_bpp"]
    cfg.write_text(json.dumps(c))
    with pytest.raises(ValueError, match="no fitted base-pair-probability fusion"):
        load(plain).fold(seqs, prior="bpp")


def test_cli_fold_bpp_prior_writes_dot_plots(bpp_model, tmp_path):
    pytest.importorskip("matplotlib")
    from rnaernie.cli import main

    fa = tmp_path / "in.fa"
    fa.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(SEQS[:2])))
    out = tmp_path / "out.dbn"
    argv = ["fold", str(fa), "-o", str(out), "--model", str(bpp_model), "--prior", "bpp"]
    assert main([*argv, "--plot", str(tmp_path / "plots")]) == 0
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["r0.png", "r1.png"]
    from rnaernie.api import load

    want = [f.dot_bracket for f in load(bpp_model).fold(SEQS[:2], prior="bpp")]
    assert out.read_text().split("\n")[2::3][:2] == want


def test_fusion_scores_of_a_probability_only_fusion_are_viennas_mea(parts):
    from rnaernie.training.structure import fusion_scores

    recs = read_dbn(FIX / "ts0_sample.dbn")
    flat = [np.zeros((len(r.sequence),) * 2, np.float32) for r in recs]
    got = fusion_scores(flat, recs, parts[: len(recs)], only("bpp_logit").to_dict())
    want = np.mean([f1(p.mea, r.pairs) for p, r in zip(parts, recs)])
    assert got["f1"] == pytest.approx(want, abs=0.02) and got["decode"]["method"] == "mea"
