from __future__ import annotations

from itertools import product
from pathlib import Path

import numpy as np
import pytest

from rnaernie.evaluate import kmer_spectra, rnafold_f1
from rnaernie.structure import read_dbn

FIX = Path(__file__).parent / "fixtures"


def test_kmer_spectra_matches_brute_force():
    seqs = ["ACGUTACGNN", "", "GGGG", "acgUnA"]
    x = kmer_spectra(seqs, kmax=2)
    words = ["".join(w) for k in (1, 2) for w in product("ACGU", repeat=k)]
    assert x.shape == (len(seqs), len(words))
    for i, s in enumerate(seqs):
        s = s.upper().replace("T", "U")
        for j, w in enumerate(words):
            n = sum(s[p : p + len(w)] == w for p in range(len(s) - len(w) + 1))
            assert x[i, j] == pytest.approx(n / max(1, len(s) - len(w) + 1))


def test_rnafold_baseline_scores_fixture_records():
    pytest.importorskip("RNA")
    recs = read_dbn(FIX / "structure" / "ts0_sample.dbn")
    res = rnafold_f1(recs)
    assert res["n"] == len(recs) and 0.0 <= res["f1"] <= res["f1_shift1"] <= 1.0
    assert np.isfinite(res["f1"])


def test_model_results_are_cached_per_model(tmp_path):
    from rnaernie.evaluate import _model_cache

    a, b = tmp_path / "a", tmp_path / "b"
    for d, w in ((a, b"1"), (b, b"2")):
        (d / "heads").mkdir(parents=True)
        (d / "config.json").write_text("{}")
        (d / "heads" / "model.safetensors").write_bytes(w)
    assert _model_cache(None, a) is None
    assert _model_cache(tmp_path / "c", a) == _model_cache(tmp_path / "c", a)
    assert _model_cache(tmp_path / "c", a) != _model_cache(tmp_path / "c", b)


def test_ablation_flags_are_stored(tmp_path):
    from rnaernie.evaluate import main

    m = tmp_path / "metrics.json"
    m.write_text('{"accuracy": 0.5}')
    out = tmp_path / "acc.json"
    args = ["--data", str(tmp_path), "--model", str(tmp_path / "none"), "--sections", "none"]
    assert main([*args, "--out", str(out), "--cache", "", "--ablation", f"x={m}"]) == 0
    import json

    assert json.loads(out.read_text())["ablations"] == {"x": {"accuracy": 0.5}}
    with pytest.raises(SystemExit):
        main([*args, "--out", str(out), "--ablation", "no-equals-sign"])
