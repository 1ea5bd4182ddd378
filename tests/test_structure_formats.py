"""Structure formats (dot-bracket, contact map, .dbn, BPSEQ, CT) on real records, and metrics."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from rnaernie.structure import (
    Record,
    confusion,
    contact_map_to_pairs,
    dot_bracket_to_pairs,
    f1,
    mcc,
    mean_f1,
    pairs_to_contact_map,
    pairs_to_dot_bracket,
    precision,
    read_bpseq,
    read_ct,
    read_dbn,
    recall,
    write_bpseq,
    write_ct,
    write_dbn,
)

FIXTURES = Path(__file__).parent / "fixtures" / "structure"
DBN_FILES = ["ts0_sample.dbn", "archiveII_sample.dbn"]


def all_records() -> list[Record]:
    return [r for f in DBN_FILES for r in read_dbn(FIXTURES / f)]


def raw_structures(name: str) -> list[str]:
    lines = [ln for ln in (FIXTURES / name).read_text().splitlines() if ln.strip()]
    return lines[2::3]


@pytest.mark.parametrize("name", DBN_FILES)
def test_dot_bracket_round_trip_on_real_records(name):
    records = read_dbn(FIXTURES / name)
    assert len(records) >= 3
    for rec, raw in zip(records, raw_structures(name)):
        assert len(rec.sequence) == len(raw)
        assert np.array_equal(dot_bracket_to_pairs(raw), rec.pairs)
        # re-written with the canonical bracket levels; the pairs survive exactly
        assert np.array_equal(dot_bracket_to_pairs(rec.dot_bracket), rec.pairs)
        if not any(c in raw for c in "[]{}<>"):
            assert rec.dot_bracket == raw
        cmap = pairs_to_contact_map(rec.pairs, rec.length)
        assert cmap.shape == (rec.length, rec.length) and np.array_equal(cmap, cmap.T)
        assert np.array_equal(contact_map_to_pairs(cmap), rec.pairs)
    assert any(len(r.pairs) and "[" in r.dot_bracket for r in all_records())


@pytest.mark.parametrize("suffix", [".dbn", ".dbn.gz"])
def test_dbn_write_read(tmp_path, suffix):
    records = all_records()
    path = tmp_path / f"out{suffix}"
    write_dbn(path, records)
    assert read_dbn(path) == records
    if suffix.endswith(".gz"):
        assert gzip.decompress(path.read_bytes()).startswith(b">")


def test_bpseq_and_ct_round_trip(tmp_path):
    for k, rec in enumerate(all_records()):
        write_bpseq(tmp_path / f"{k}.bpseq", rec)
        assert read_bpseq(tmp_path / f"{k}.bpseq") == rec
        write_ct(tmp_path / f"{k}.ct", rec)
        assert read_ct(tmp_path / f"{k}.ct") == [rec]
    records = all_records()
    write_ct(tmp_path / "all.ct", records)
    assert read_ct(tmp_path / "all.ct") == records


def test_bpseq_ct_fixtures_match_dbn():
    trna = next(r for r in all_records() if r.name.startswith("tRNA"))
    assert read_bpseq(FIXTURES / "trna.bpseq") == trna
    assert read_ct(FIXTURES / "trna.ct") == [trna]
    two = read_ct(FIXTURES / "two_records.ct")
    assert [r.name for r in two] == ["bpRNA_CRW_15828", "16s_C.elegans_domain2"]
    assert "[" in two[1].dot_bracket or "{" in two[1].dot_bracket or len(two[1].pairs)


ARCHIVE = Path("/work/shared/data/archiveII/archiveII.dbn.gz")


@pytest.mark.skipif(not ARCHIVE.exists(), reason="shared data not present")
def test_shared_archive_parses():
    recs = read_dbn(ARCHIVE)
    assert len(recs) == 3966
    assert all(len(r.pairs) * 2 <= r.length for r in recs)


def test_dot_bracket_conversions():
    assert dot_bracket_to_pairs("").shape == (0, 2)
    assert dot_bracket_to_pairs("((..[[..))..]]").tolist() == [[0, 9], [1, 8], [4, 13], [5, 12]]
    assert dot_bracket_to_pairs("A..a").tolist() == [[0, 3]]
    assert pairs_to_dot_bracket([], 3) == "..."
    assert pairs_to_dot_bracket([[9, 0], [8, 1], [4, 13], [5, 12]], 14) == "((..[[..))..]]"
    # four mutually crossing pairs need four levels
    assert pairs_to_dot_bracket([[0, 4], [2, 6], [3, 8], [1, 5]], 9) == "([{<)]}.>"


@pytest.mark.parametrize(
    ("db", "message"),
    [
        ("((.)", r"unmatched '\(' at position 0"),
        ("(.))", r"unmatched '\)' at position 3"),
        ("(.?)", "unknown symbol '\\?' at position 2"),
        ("(.]", r"unmatched '\]'"),
    ],
)
def test_dot_bracket_errors(db, message):
    with pytest.raises(ValueError, match=message):
        dot_bracket_to_pairs(db)


def test_pair_and_map_errors():
    with pytest.raises(ValueError, match="more than one pair"):
        pairs_to_dot_bracket([[0, 5], [0, 6]], 8)
    with pytest.raises(ValueError, match="out of range"):
        pairs_to_contact_map([[0, 8]], 8)
    with pytest.raises(ValueError, match="itself"):
        pairs_to_contact_map([[2, 2]], 8)
    m = np.zeros((4, 4))
    m[0, 3] = 1
    with pytest.raises(ValueError, match="symmetric"):
        contact_map_to_pairs(m)
    with pytest.raises(ValueError, match="square"):
        contact_map_to_pairs(np.zeros((3, 4)))


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.dbn", ">x\nACGU\n((.\n", r"a\.dbn:3: structure length 3 != sequence length 4"),
        ("b.dbn", ">x\nACGUA\n((.).\n", r"b\.dbn:3: dot-bracket: unmatched '\('"),
        ("c.dbn", ">x\nACGU\n", r"c\.dbn:1: incomplete record"),
        ("d.dbn", "x\nACGU\n....\n", r"d\.dbn:1: expected a '>name' header"),
        ("e.bpseq", "1 G 4\n2 A 0\n3 A 0\n4 C 2\n", r"e\.bpseq:1: pair 1-4 is not reciprocal"),
        ("f.bpseq", "1 G 9\n2 C 0\n", r"f\.bpseq:1: bad partner index 9"),
        ("g.bpseq", "1 G 0\n3 C 0\n", r"g\.bpseq:2: expected index 2"),
        ("h.bpseq", "1 G\n", r"h\.bpseq:1: expected 'index base partner'"),
        ("i.ct", "3 x\n1 G 0 2 3 1\n2 A 1 3 0 2\n", r"i\.ct:1: record 'x' ends after 2 of 3"),
        ("j.ct", "2 x\n1 G 0 2 2 1\n2 C 1 0 0 2\n", r"j\.ct:2: pair 1-2 is not reciprocal"),
        ("k.ct", "two x\n", r"k\.ct:1: expected a header"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    reader = {"dbn": read_dbn, "bpseq": read_bpseq, "ct": read_ct}[name.rsplit(".", 1)[1]]
    with pytest.raises(ValueError, match=message):
        reader(path)


def test_metrics_exact_and_shifted():
    true = "(((...)))"
    assert confusion(true, true) == (3, 0, 0)
    assert f1(true, true) == precision(true, true) == recall(true, true) == 1.0
    pred = ".((...))."  # (1,7) (2,6): both true pairs
    assert precision(pred, true) == 1.0 and recall(pred, true) == pytest.approx(2 / 3)
    assert f1(pred, true) == pytest.approx(0.8)
    slipped = [[0, 7], [2, 5], [3, 4]]  # (0,7)~(1,7), (2,5)~(2,6); (3,4) is 2 away
    assert confusion(slipped, true) == (0, 3, 3)
    assert confusion(slipped, true, shift=1) == (2, 1, 1)
    assert precision(slipped, true, shift=1) == pytest.approx(2 / 3)
    assert mcc(true, true, 9) == pytest.approx(1.0)
    tp, fp, fn = confusion(pred, true)
    tn = 36 - tp - fp - fn
    want = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert mcc(pred, true, 9) == pytest.approx(want)
    pairs = np.array([[1, 7], [2, 6]])
    assert f1(pairs, true) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="shift"):
        f1(pred, true, shift=2)


def test_metrics_empty_conventions():
    assert f1("....", "....") == precision("....", "....") == mcc("....", "....", 4) == 1.0
    assert f1("....", "(..)") == precision("....", "(..)") == recall("....", "(..)") == 0.0
    assert f1("(..)", "....") == recall("(..)", "....") == mcc("(..)", "....", 4) == 0.0
    assert mean_f1(["(..)", "...."], ["(..)", "(..)"]) == pytest.approx(0.5)
    assert math.isnan(mean_f1([], []))
    with pytest.raises(ValueError, match="2 predictions but 1"):
        mean_f1(["..", ".."], [".."])
