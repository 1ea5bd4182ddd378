from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

from rnaernie.predict import interaction_probs
from rnaernie.training.interaction import (
    finetune_interaction,
    grouped_split,
    interaction_split,
    read_mirtarraw,
)

FIX = Path(__file__).parent / "fixtures"
CSV = FIX / "mirtarraw_small.csv"
sys.path.insert(0, str(Path(__file__).parent))


def test_read_reverses_the_stored_mirna():
    stored = read_mirtarraw(CSV, mirna_orientation="stored")
    d = read_mirtarraw(CSV)
    assert len(d) == len(stored) == 48
    assert d.a == [s[::-1] for s in stored.a]
    assert d.b == stored.b and d.labels.dtype == np.int64
    assert set(d.labels.tolist()) == {0, 1}


def test_reversed_mirna_has_seed_matches_in_positive_targets():
    """The reason for the reversal: miRNA nt 2-8 (5'→3') pair with the target (seed rule)."""
    comp = str.maketrans("ACGT", "TGCA")
    d = read_mirtarraw(CSV)
    stored = read_mirtarraw(CSV, mirna_orientation="stored")

    def hits(data):
        pos = [(a, b) for a, b, y in zip(data.a, data.b, data.labels) if y == 1]
        return sum(a[1:8].translate(comp)[::-1] in b for a, b in pos)

    assert hits(d) > hits(stored)


def test_read_errors_name_the_line(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("a,b\n")
    with pytest.raises(ValueError, match="line 1: expected the header"):
        read_mirtarraw(f)
    f.write_text("a_name,a_seq,b_name,b_seq,label\nm,ACGU,t,ACGU,1\nm,ACGU,t,ACGU,2\n")
    with pytest.raises(ValueError, match="line 3: label must be 0 or 1"):
        read_mirtarraw(f)
    f.write_text("a_name,a_seq,b_name,b_seq,label\nm,ACGU,t,,1\n")
    with pytest.raises(ValueError, match="line 2: empty b_seq"):
        read_mirtarraw(f)
    f.write_text("a_name,a_seq,b_name,b_seq,label\nm,ACGU,t\n")
    with pytest.raises(ValueError, match="line 2: expected 5 fields"):
        read_mirtarraw(f)
    with pytest.raises(ValueError, match="mirna_orientation"):
        read_mirtarraw(CSV, mirna_orientation="3to5")


def test_grouped_split_keeps_duplicated_pairs_together_and_is_stratified():
    d = read_mirtarraw(CSV)
    tr, te = grouped_split(d, seed=0)
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(len(d)))
    pairs = lambda idx: {(d.a[i], d.b[i]) for i in idx}  # noqa: E731
    assert not pairs(tr) & pairs(te)
    assert 0.1 <= len(te) / len(d) <= 0.3
    assert abs(d.labels[te].mean() - d.labels.mean()) < 0.2
    again = grouped_split(d, seed=0)
    assert all(np.array_equal(x, y) for x, y in zip((tr, te), again))
    with pytest.raises(ValueError, match="test_fraction"):
        grouped_split(d, test_fraction=1.5)


def _mirtarraw_folder(folder: Path) -> Path:
    """The fixture laid out like shared/data/mirtarraw: the whole file, and 39/9 rows as the split."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = CSV.read_text().splitlines(keepends=True)
    for name, body in (
        ("MirTarRAW.csv.gz", lines),
        ("train.csv.gz", lines[:40]),
        ("test.csv.gz", lines[:1] + lines[40:]),
    ):
        (folder / name).write_bytes(gzip.compress("".join(body).encode()))
    return folder


def test_interaction_split_reads_both_layouts(tmp_path):
    _mirtarraw_folder(tmp_path)
    tr, te = interaction_split(tmp_path, "official")
    assert (len(tr), len(te)) == (39, 9)
    tr, te = interaction_split(tmp_path, "grouped")
    assert len(tr) + len(te) == 48
    with pytest.raises(ValueError, match="split must be"):
        interaction_split(tmp_path, "random")


@pytest.mark.parametrize("guided", [False, True])
def test_finetune_interaction_and_the_api(tmp_path, guided):
    from _micro_model import save_micro_model

    import rnaernie

    d = save_micro_model(tmp_path / "m", heads=())
    data = read_mirtarraw(CSV)
    model, ind = finetune_interaction(
        d,
        data,
        out=d / "heads" / "interaction",
        type_guided=guided,
        top_k=2,
        epochs=2,
        batch_size=16,
    )
    assert (ind is not None) == guided
    p = interaction_probs(model, data.a, data.b, indicator=ind)
    assert p.shape == (48, 2)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    got = rnaernie.load(d).interact(
        [(f"p{i}", a, b) for i, (a, b) in enumerate(zip(data.a, data.b))]
    )
    np.testing.assert_allclose([g.probabilities for g in got], p, atol=1e-5)
    assert {g.label for g in got} <= {"no_interaction", "interaction"}


def test_api_interact_rejects_bad_pairs(tmp_path):
    from _micro_model import save_micro_model

    import rnaernie

    m = rnaernie.load(save_micro_model(tmp_path / "m", heads=("interaction",)))
    with pytest.raises(ValueError, match="all be"):
        m.interact([("a", "ACGU", "ACGU"), ("ACGU", "ACGU")])
    with pytest.raises(ValueError, match="p2"):
        m.interact([("p1", "ACGU", "ACGU"), ("p2", "ACGU", "AC!GU")])


def test_finetune_cli_and_evaluation_section(tmp_path):
    """`rnaernie finetune interact` writes a head and its test metrics; the evaluation scores that
    head only on the split it was trained on, and the k-mer baseline on both."""
    import json

    from _micro_model import save_micro_model

    from rnaernie.cli import main
    from rnaernie.evaluate import run

    data = _mirtarraw_folder(tmp_path / "data" / "mirtarraw")
    d = save_micro_model(tmp_path / "m", heads=())
    out = d / "heads" / "interaction"
    args = [
        "finetune",
        "interact",
        str(data),
        "--pretrained",
        str(d),
        "--out",
        str(out),
        "--epochs",
        "1",
    ]
    assert main([*args, "--split", "grouped"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["split"] == "grouped" and 0 <= m["auroc"] <= 1 and m["n_test"] > 0
    res = run(tmp_path / "data", d, tmp_path / "acc.json", None, sections=["interaction"])
    assert "mirtarraw_grouped_rnaernie" in res and "mirtarraw_official_rnaernie" not in res
    assert {"mirtarraw_grouped_kmer_lr", "mirtarraw_official_kmer_lr"} <= set(res)
    assert res["mirtarraw_grouped_rnaernie"]["auroc"] == pytest.approx(m["auroc"], abs=1e-6)
