"""Screening windows: spans, strands and coordinates against a hand-computed example."""

from __future__ import annotations

import numpy as np
import pytest
from _micro_model import save_micro_model

from rnaernie.cli import main
from rnaernie.io import Record
from rnaernie.screen import window_spans, windows


def test_window_spans_hand_computed():
    assert window_spans(10, 4, 3) == [(0, 4), (3, 7), (6, 10)]
    assert window_spans(11, 4, 3) == [(0, 4), (3, 7), (6, 10), (7, 11)]
    assert window_spans(3, 4, 3) == [(0, 3)]
    assert window_spans(0, 4, 3) == []
    with pytest.raises(ValueError):
        window_spans(10, 0, 1)


def test_windows_both_strands():
    #          0123456789
    seq = "AACCGGUUAC"
    w = list(windows([Record("chr1", seq)], window=4, stride=3))
    assert [(x.strand, x.start, x.end, x.seq) for x in w] == [
        ("+", 0, 4, "AACC"), ("-", 0, 4, "GGUU"),
        ("+", 3, 7, "CGGU"), ("-", 3, 7, "ACCG"),
        ("+", 6, 10, "UUAC"), ("-", 6, 10, "GUAA"),
    ]  # fmt: skip
    assert [x.strand for x in windows([Record("c", "ACGT")], 4, 4, strands="-")] == ["-"]
    assert next(windows([Record("c", "acgt")], 4, 4, strands="+")).seq == "ACGU"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(save_micro_model(tmp_path_factory.mktemp("micro")))


def test_screen_cli_rows_and_embeddings(model, tmp_path):
    fa = tmp_path / "g.fa"
    fa.write_text(">chr1\nAACCGGUUAC\nA\n>chr2\nGGGAAAUCCCUU\n")
    out = tmp_path / "s.tsv"
    argv = [
        "screen",
        str(fa),
        "-o",
        str(out),
        "--window",
        "4",
        "--stride",
        "3",
        "--model",
        model,
        "-q",
    ]
    assert main([*argv, "--tasks", "type,structure,embed"]) == 0
    rows = [r.split("\t") for r in out.read_text().splitlines()]
    assert rows[0] == [
        "id",
        "strand",
        "start",
        "end",
        "rna_type",
        "type_probability",
        "dot_bracket",
        "num_pairs",
    ]
    got = [(r[0], r[1], int(r[2]), int(r[3])) for r in rows[1:]]
    exp = [("chr1", s, a, b) for a, b in window_spans(11, 4, 3) for s in "+-"]
    exp += [("chr2", s, a, b) for a, b in window_spans(12, 4, 3) for s in "+-"]
    assert got == exp
    assert all(len(r[6]) == int(r[3]) - int(r[2]) for r in rows[1:])
    emb = np.load(tmp_path / "s.embeddings.npy")
    assert emb.shape == (len(exp), 32)
    # the minus-strand row is the embedding of the reverse complement
    import rnaernie.api as api

    ref = api.load(model, dtype="auto").embed(["AACC", "GGUU"])  # the CLI default
    np.testing.assert_allclose(emb[:2], ref, rtol=1e-4, atol=1e-5)
    # --min-score keeps only windows whose type probability reaches it
    probs = np.array([float(r[5]) for r in rows[1:]])
    cut = float(np.median(probs))
    assert (
        main([*argv, "--tasks", "type", "--min-score", str(cut), "-o", str(tmp_path / "f.tsv")])
        == 0
    )
    kept = (tmp_path / "f.tsv").read_text().splitlines()[1:]
    assert len(kept) == int((probs >= cut).sum()) and all(
        float(r.split("\t")[5]) >= cut for r in kept
    )
    assert main([*argv, "--tasks", "structure", "--min-score", "0.5"]) == 2  # needs 'type'
