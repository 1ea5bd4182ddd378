"""Screening: windows and chunks, the dinucleotide shuffle, calibration, loci, output formats, the
detector on a planted gene, the command (single process = sharded, byte for byte) and its errors,
and the detector's training data."""

from __future__ import annotations

import collections
import itertools
import json
import os
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from _micro_model import SCREEN_LABELS, SCREEN_MEMBERS, save_micro_model
from hypothesis import given, settings
from hypothesis import strategies as st

from rnaernie.cli import main
from rnaernie.io import Record
from rnaernie.kmer import dinucleotide_shuffle, shuffled_genome
from rnaernie.screen import (
    Calibration,
    Detector,
    WindowHit,
    chunks,
    detect,
    loci,
    lowercase_spans,
    window_spans,
    write_loci,
)
from rnaernie.tokenizer import reverse_complement


def test_window_spans_hand_computed():
    assert window_spans(10, 4, 3) == [(0, 4), (3, 7), (6, 10)]
    assert window_spans(11, 4, 3) == [(0, 4), (3, 7), (6, 10), (7, 11)]
    assert window_spans(3, 4, 3) == [(0, 3)]
    assert window_spans(0, 4, 3) == []
    with pytest.raises(ValueError):
        window_spans(10, 0, 1)
    with pytest.raises(ValueError, match="leaves gaps"):
        window_spans(10, 3, 4)


@given(st.integers(0, 400), st.integers(1, 50), st.integers(1, 50), st.integers(1, 300))
@settings(max_examples=200, deadline=None)
def test_chunks_partition_the_windows(length, window, stride, chunk_nt):
    stride = min(stride, window)
    seq = ("ACGU" * 100)[:length]
    got = list(chunks([Record("r", seq)], window, stride, chunk_nt))
    assert [tuple(s) for c in got for s in c.spans.tolist()] == window_spans(length, window, stride)
    for c in got:
        assert c.seq == seq[c.offset : c.offset + len(c.seq)]
        assert c.spans[0, 0] == c.offset and c.spans[-1, 1] == c.offset + len(c.seq)
        assert c.length == length


@given(st.text(alphabet="ACGUacgunN", max_size=200), st.integers(20, 60), st.integers(1, 20),
       st.integers(1, 200))  # fmt: skip
@settings(max_examples=200, deadline=None)
def test_soft_masked_chunks_carry_their_lower_case(raw, window, stride, chunk_nt):
    """Each chunk's ``masked`` spans are exactly the lower-case letters of its stretch of the
    record (chunk coordinates); its sequence is upper case as always."""
    got = [c for c in chunks([Record("r", raw)], window, stride, chunk_nt, soft_masked=True)]
    for c in got:
        part = raw[c.offset : c.offset + len(c.seq)]
        want = [(m.start(), m.end()) for m in re.finditer("[a-z]+", part)]
        assert [tuple(x) for x in c.masked.tolist()] == want
        assert c.seq == part.upper().replace("T", "U")
    assert all(c.masked is None for c in chunks([Record("r", raw)], window, stride, chunk_nt))
    assert lowercase_spans("").shape == (0, 2)


@given(st.text(alphabet="ACGU", min_size=0, max_size=300), st.integers(0, 2**32 - 1))
@settings(max_examples=300, deadline=None)
def test_dinucleotide_shuffle_keeps_the_dinucleotides(seq, seed):
    out = dinucleotide_shuffle(seq, np.random.default_rng(seed))
    pairs = collections.Counter
    assert pairs(itertools.pairwise(out)) == pairs(itertools.pairwise(seq))
    assert out[:1] == seq[:1] and out[-1:] == seq[-1:]


def test_dinucleotide_shuffle_explores_every_arrangement():
    # "AACAGA"... small: every sequence with the same dinucleotides must be reachable
    seq = "ACAGAUA"
    seen = {dinucleotide_shuffle(seq, np.random.default_rng(k)) for k in range(400)}
    import itertools

    same = {"".join(p) for p in itertools.permutations(seq)
            if collections.Counter(itertools.pairwise(p)) == collections.Counter(itertools.pairwise(seq))
            and p[0] == seq[0] and p[-1] == seq[-1]}  # fmt: skip
    assert seen == same


def test_shuffled_genome_has_the_composition_of_its_transcripts():
    rng = np.random.default_rng(0)
    g = shuffled_genome(["GGGGCCCCAU" * 30], 1000, rng)
    assert len(g) == 1000 and collections.Counter(g)["G"] > collections.Counter(g)["A"]


def test_calibration_fits_an_exponential_tail():
    rng = np.random.default_rng(0)
    scores = 5.0 + rng.exponential(1 / 0.7, 4000)  # 4,000 loci in 2 Mb
    c = Calibration.fit(scores, megabases=2.0, tail=400, max_rate=np.inf)
    assert abs(c.tail_lambda - 0.7) < 0.1
    assert c.rate(c.floor) == pytest.approx(2000.0)  # every window
    # by default the floor is where 100 background windows per Mb score as high
    assert Calibration.fit(scores, megabases=2.0).rate(
        Calibration.fit(scores, megabases=2.0).floor
    ) == pytest.approx(100.0)
    s = np.linspace(c.floor, 40, 200)
    assert np.all(np.diff(c.rate(s)) <= 1e-12)  # never increasing
    # beyond the data, the tail: rate(s0 + 10) = rate(s0) e^{-10 λ}
    assert c.rate(c.tail_start + 10) == pytest.approx(c.tail_rate * np.exp(-10 * c.tail_lambda))
    assert Calibration.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match="at least 10 background windows"):
        Calibration.fit([1.0, 2.0], 1.0)


def test_calibration_per_family():
    """A family whose background windows score lower gets its own, lower curve; a family with
    too few windows falls back to the pooled curve, which bounds every family's."""
    rng = np.random.default_rng(1)
    hi = 5.0 + rng.exponential(2.0, 3000)  # family "a": a heavy tail
    lo = 5.0 + rng.exponential(0.5, 3000)  # family "b": a light one
    rare = 5.0 + rng.exponential(2.0, 20)
    fams = ["a"] * 3000 + ["b"] * 3000 + ["c"] * 20
    c = Calibration.fit(np.r_[hi, lo, rare], 10.0, families=fams)
    assert sorted(c.by_family) == ["a", "b"]  # "c": 20 windows, below MIN_FAMILY_WINDOWS
    s = 12.0
    assert c.rate(s, "b") < c.rate(s, "a") <= c.rate(s)
    assert c.rate(s, "c") == c.rate(s) == c.rate(s, None)
    assert c.rate(s, "a") == pytest.approx((hi >= s).sum() / 10.0, rel=0.1)
    assert Calibration.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match=r"cfg \(family a\): bad calibration"):
        d = c.to_dict()
        d["by_family"]["a"]["scores"] = "x"
        Calibration.from_dict(d, "cfg")
    # E-values of loci come from the locus's family
    found = loci([_hit(0, 50, s, "a"), _hit(100, 150, s, "b")], c, 1.0, stride=25, evalue=None)
    assert [x.evalue for x in found] == [pytest.approx(float(c.rate(s, f)), rel=1e-5) for f in "ab"]


FLAT = Calibration((10.0, 0.0), (1.0, 2.0), 10.0, 1.0, 1.0, 1.0, 0.0)  # rate 1/Mb at 10 bits


def _hit(start, end, score, family="tRNA", strand="+", id="c", member=""):
    return WindowHit(id, strand, start, end, family, score, 0.9, member)


def test_loci_merge_overlapping_windows_of_one_family_and_strand():
    hits = [_hit(0, 200, 12.0), _hit(100, 300, 15.0), _hit(400, 600, 11.0),
            _hit(100, 300, 11.0, strand="-"), _hit(1000, 1200, 11.0, "miRNA")]  # fmt: skip
    got = loci(hits, FLAT, 1.0, stride=100, evalue=None)
    assert [(x.start, x.end, x.strand, x.family, x.score, x.windows) for x in got] == [
        (100, 200, "+", "tRNA", 15.0, 2),  # the two windows' intersection
        (100, 300, "-", "tRNA", 11.0, 1),
        (400, 600, "+", "tRNA", 11.0, 1),
        (1000, 1200, "+", "miRNA", 11.0, 1),
    ]
    # E = rate(score) × Mb searched: rate(15) = e^{-5} per Mb
    assert got[0].evalue == pytest.approx(np.exp(-5.0) * 1.0, rel=1e-5)
    assert [x.start for x in loci(hits, FLAT, 1.0, stride=100, evalue=0.1)] == [100]
    # a long gene: the windows' intersection is shorter than the stride, so the union
    long = [_hit(0, 200, 12.0), _hit(100, 300, 12.0), _hit(200, 400, 12.0)]
    assert [(x.start, x.end) for x in loci(long, FLAT, 1.0, stride=100, evalue=None)] == [(0, 400)]


def test_loci_families_compete_and_order_follows_the_input():
    hits = [_hit(0, 200, 12.0, "tRNA", id="b"), _hit(100, 300, 14.0, "miRNA", id="b"),
            _hit(0, 200, 11.0, id="a")]  # fmt: skip
    got = loci(hits, FLAT, 1.0, stride=100, evalue=None, order=["b", "a"])
    assert [(x.id, x.family) for x in got] == [("b", "miRNA"), ("a", "tRNA")]
    with pytest.raises(ValueError, match="positive"):
        loci(hits, FLAT, 1.0, stride=100, evalue=0.0)


def test_write_loci_formats(tmp_path):
    found = loci([_hit(10, 60, 20.0), _hit(100, 300, 150.0, "miRNA", "-", member="RF1_a;b=c/1-9")],
                 FLAT, 1.0, stride=20, evalue=None)  # fmt: skip
    write_loci(tmp_path / "o.bed", found)
    assert (tmp_path / "o.bed").read_text().splitlines() == [
        "c\t10\t60\ttRNA\t200\t+",
        "c\t100\t300\tmiRNA\t1000\t-",
    ]
    write_loci(tmp_path / "o.gff3", found)
    g = (tmp_path / "o.gff3").read_text().splitlines()
    assert g[0] == "##gff-version 3"
    f = g[1].split("\t")
    assert f[:8] == ["c", "rnaernie", "tRNA", "11", "60", "20", "+", "."]  # 1-based, inclusive
    assert f[8].startswith("ID=locus1;Name=tRNA;evalue=")
    assert "member" not in f[8]  # none for this locus
    assert g[2].split("\t")[2] == "pre_miRNA"
    assert g[2].split("\t")[8].endswith(";member=RF1_a%3Bb%3Dc/1-9")  # GFF3 reserved characters
    write_loci(tmp_path / "o.tsv", found)
    rows = [r.split("\t") for r in (tmp_path / "o.tsv").read_text().splitlines()]
    assert rows[0] == ["id", "start", "end", "strand", "family", "score", "evalue",
                       "probability", "windows", "member"]  # fmt: skip
    assert [r[-1] for r in rows[1:]] == ["", "RF1_a;b=c/1-9"]
    import pyarrow.parquet as pq

    write_loci(tmp_path / "o.parquet", found)
    assert pq.read_table(tmp_path / "o.parquet").column("start").to_pylist() == [10, 100]
    assert not list(tmp_path.glob("*.tmp"))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_micro_model(tmp_path_factory.mktemp("micro"), heads=("structure", "screen"))


def _genome(seed=0, n=3000):
    rng = np.random.default_rng(seed)
    return "".join(rng.choice(list("ACGU"), n))


def _planted(bg, *genes):
    """``bg`` with each ``(position, sequence)`` of ``genes`` (in position order) inserted at that
    position of ``bg``."""
    parts, pos = [], 0
    for at, gene in genes:
        parts += [bg[pos:at], gene]
        pos = at
    return "".join([*parts, bg[pos:]])


@pytest.mark.parametrize("scorer", ["cnn", "kmer"])
def test_detector_finds_a_planted_gene_on_its_strand(model, scorer):
    import rnaernie

    m = rnaernie.load(model, dtype="float32")
    det = Detector.from_model(m, scorer=scorer)
    bg = _genome()
    g = _planted(bg, (1000, "G" * 40), (2000, "C" * 40))
    found = detect(det, [Record("chr", g)], evalue=0.01)
    assert {(x.family, x.strand) for x in found} >= {("Gfam", "+"), ("Cfam", "+")}
    g_plus = next(x for x in found if x.family == "Gfam" and x.strand == "+")
    assert g_plus.start <= 1000 and g_plus.end >= 1040  # the locus covers the planted gene
    # the antisense of the G run is a C run: the minus strand reports Cfam there
    assert any(x.family == "Cfam" and x.strand == "-" and x.start < 1040 and x.end > 1000
               for x in found)  # fmt: skip
    # the same gene on the other strand of a reverse-complemented genome
    rc = reverse_complement(g)
    mirrored = detect(det, [Record("chr", rc)], evalue=0.01)
    assert {
        (len(g) - x.end, len(g) - x.start, x.family, "+-"[x.strand == "+"]) for x in mirrored
    } == {(x.start, x.end, x.family, x.strand) for x in found}
    assert detect(det, [Record("chr", bg)], evalue=0.01) == []  # random sequence: nothing
    assert m.screen([("chr", g)], scorer=scorer) == found  # the API: the same call
    with pytest.raises(ValueError, match="scorer must be one of"):
        m.screen([("chr", g)], scorer="hmm")


@pytest.mark.parametrize("scorer", ["fused", "homology"])
def test_homology_scorers_find_library_members_with_their_extent(model, scorer):
    """A mutated library member on each strand: a locus of its family and strand that spans
    the member itself (the alignment's envelope), not the windows; random sequence: nothing."""
    import rnaernie

    det = Detector.from_model(rnaernie.load(model, dtype="float32"), scorer=scorer)
    bg = _genome(7)
    g_member = SCREEN_MEMBERS[1][:30] + "A" + SCREEN_MEMBERS[1][31:]  # one mismatch
    c_member = reverse_complement(SCREEN_MEMBERS[2])
    g = _planted(bg, (1003, g_member), (2011, c_member))
    found = detect(det, [Record("chr", g)], evalue=0.01)
    assert [(x.family, x.strand, x.start, x.end) for x in found] == [
        ("Gfam", "+", 1003, 1063), ("Cfam", "-", 2071, 2131)]  # fmt: skip
    assert [x.member for x in found] == ["m1", "m2"]  # the members they align to (default names)
    assert all(x.evalue <= 0.01 and 0 < x.probability <= 1 for x in found)
    rc = reverse_complement(g)
    mirrored = detect(det, [Record("chr", rc)], evalue=0.01)
    assert {(len(g) - x.end, len(g) - x.start, x.family, "+-"[x.strand == "+"])
            for x in mirrored} == {(x.start, x.end, x.family, x.strand) for x in found}  # fmt: skip
    assert detect(det, [Record("chr", bg)], evalue=0.01) == []


@pytest.mark.parametrize("scorer", ["fused", "homology"])
def test_soft_masked_lower_case_starts_no_seed(model, scorer, tmp_path):
    """``soft_masked``: a member written in lower case (a soft-masked repeat) is not found, no
    seed starts in it; one whose flanks are lower case is found as before, the alignment runs on
    through them. Without it, case does not matter; other scorers refuse it."""
    import rnaernie

    m = rnaernie.load(model, dtype="float32")
    g = _planted(
        _genome(7), (1003, SCREEN_MEMBERS[1]), (2011, reverse_complement(SCREEN_MEMBERS[2]))
    )
    found = m.screen([("chr", g)], scorer=scorer)
    assert [(x.family, x.start, x.end) for x in found] == [
        ("Gfam", 1003, 1063),
        ("Cfam", 2071, 2131),
    ]
    assert m.screen([("chr", g)], scorer=scorer, soft_masked=True) == found  # no lower case
    hidden = g[:2071] + g[2071:2131].lower() + g[2131:]
    assert m.screen([("chr", hidden)], scorer=scorer) == found
    assert m.screen([("chr", hidden)], scorer=scorer, soft_masked=True) == found[:1]
    flanks = g[:900].lower() + g[900:1003] + g[1003:1063] + g[1063:1200].lower() + g[1200:]
    assert m.screen([("chr", flanks)], scorer=scorer, soft_masked=True) == found
    with pytest.raises(ValueError, match="needs the fused or homology scorer, not cnn"):
        m.screen([("chr", g)], scorer="cnn", soft_masked=True)
    src, out = tmp_path / "g.fa", tmp_path / "o.tsv"  # the command line: --soft-masked
    src.write_text(f">chr\n{hidden}\n")
    for flag, n in (([], 2), (["--soft-masked"], 1)):
        argv = ["screen", str(src), "-o", str(out), "--model", str(model), "--scorer", scorer]
        assert main([*argv, "-q", *flag]) == 0
        assert len(out.read_text().splitlines()) == 1 + n


@pytest.mark.parametrize("scorer", ["fused", "cnn", "kmer"])
def test_a_search_for_some_families_finds_just_theirs(model, scorer):
    """``families`` searches those alone, as cmsearch with their models: the loci of a searched
    family are the full search's (same score and E-value: each family has its own curve; the
    family's probability is among the searched families and background, no lower), the others'
    are gone, and the library holds only the searched families' members."""
    import rnaernie

    m = rnaernie.load(model, dtype="float32")
    bg = _genome(5)
    g = _planted(bg, (700, SCREEN_MEMBERS[0]), (1500, "G" * 40), (2200, "C" * 40),
                 (2600, reverse_complement(SCREEN_MEMBERS[3])))  # fmt: skip
    every = m.screen([("chr", g)], scorer=scorer)
    assert {x.family for x in every} == {"Gfam", "Cfam"}
    for fams in (["Gfam"], "Cfam", ["Cfam", "Gfam"]):
        det = m.detector(scorer, fams)
        some = m.screen([("chr", g)], scorer=scorer, families=fams)
        wanted = {fams} if isinstance(fams, str) else set(fams)
        same = [x for x in every if x.family in wanted]
        assert [replace(x, probability=0) for x in some] == [
            replace(x, probability=0) for x in same
        ]
        assert all(a.probability >= b.probability for a, b in zip(some, same))
        if det.homology is not None:
            assert {det.labels[f] for f in det.homology.families} == wanted
    with pytest.raises(ValueError, match="unknown 'tRNA'; the detector's are Gfam, Cfam"):
        m.screen([("chr", g)], families=["tRNA"])
    with pytest.raises(ValueError, match="families: none given"):
        m.screen([("chr", g)], families=" , ")


def test_fused_scorer_in_bfloat16(model):
    """A bfloat16 detector runs its CNN in bfloat16 too, and finds the float32 detector's loci,
    with scores within a fraction of a bit."""
    import torch

    import rnaernie

    det32 = Detector.from_model(rnaernie.load(model, dtype="float32"), scorer="fused")
    det16 = Detector.from_model(rnaernie.load(model, dtype="bfloat16"), scorer="fused")
    assert next(det16.cnn.parameters()).dtype == torch.bfloat16
    assert next(det32.cnn.parameters()).dtype == torch.float32
    bg = _genome(11)
    g = _planted(bg, (500, SCREEN_MEMBERS[1]), (1500, reverse_complement(SCREEN_MEMBERS[2])))
    found32 = detect(det32, [Record("chr", g)], evalue=0.01)
    found16 = detect(det16, [Record("chr", g)], evalue=0.01)
    assert len(found32) == 2
    key = lambda x: (x.family, x.strand, x.start, x.end, x.member)  # noqa: E731
    assert [key(x) for x in found16] == [key(x) for x in found32]
    for a, b in zip(found16, found32):
        assert abs(a.score - b.score) < 0.5


def test_cnn_scan_equals_the_network_on_each_window(tmp_path):
    """The chunk scan (one pass, sliding maximum) gives each window the maximum over the window of
    the per-position logits the network computes on the whole chunk, and background's constant."""
    import torch

    from rnaernie.model.motif_cnn import MotifCNN, one_hot

    torch.manual_seed(0)
    net = MotifCNN(3, channels=8, kernel=3, dilations=(1,)).eval()
    seq = _genome(5, 300)
    with torch.inference_mode():
        h = net.positions(one_hot([seq]))[0].double().numpy()
    starts = np.array([0, 37, 100, 260])
    det = Detector.__new__(Detector)
    det.cnn = net
    z = det.cnn_windows(seq, starts, 40)
    for k, a in enumerate(starts):
        np.testing.assert_allclose(z[k, :3], h[:, a : a + 40].max(1), rtol=1e-6, atol=1e-6)
        assert z[k, 3] == pytest.approx(float(net.background.detach()))
    # a record shorter than the window: one window, the maximum over all of it
    z = det.cnn_windows(seq[:30], np.array([0]), 40)
    with torch.inference_mode():
        whole = net(one_hot([seq[:30]]))[0].double().numpy()
    np.testing.assert_allclose(z[0], whole, rtol=1e-6, atol=1e-6)


def _screen(model, src, out, *extra, env=None, cwd):
    cmd = [sys.executable, "-m", "rnaernie.cli", "screen", str(src), "-o", str(out), "--model",
           str(model), "--dtype", "float32", "-q", *extra]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})})  # fmt: skip


def test_screen_command_single_process_equals_sharded(model, tmp_path):
    bg = _genome(1, 6000)
    g = _planted(bg, (2500, "G" * 45), (4000, "C" * 30))
    src = tmp_path / "g.fa"
    src.write_text(f">chr1\n{g}\n>chr2\n{bg[:900]}GGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG\n")
    one = tmp_path / "one.tsv"
    p = _screen(model, src, one, "--chunk-nt", "500", "--evalue", "1", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rows = one.read_text().splitlines()
    assert len(rows) > 2 and rows[0].startswith("id\tstart\tend\tstrand\tfamily")
    two = tmp_path / "two.tsv"
    for rank in (1, 0):  # rank 0 last: it merges the parts and writes the loci
        p = _screen(model, src, two, "--chunk-nt", "500", "--evalue", "1", "--shard-size", "2",
                    env={"RANK": str(rank), "WORLD_SIZE": "2"}, cwd=tmp_path)  # fmt: skip
        assert p.returncode == 0, p.stderr
    assert two.read_bytes() == one.read_bytes()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["g.fa", "one.tsv", "two.tsv"]
    p = _screen(model, src, tmp_path / "b.bed", "--tasks", "structure", cwd=tmp_path)
    assert p.returncode == 2 and "--tasks structure needs an output with room" in p.stderr
    bed = tmp_path / "o.bed"
    assert _screen(model, src, bed, "--evalue", "1", cwd=tmp_path).returncode == 0
    assert len(bed.read_text().splitlines()) == len(rows) - 1
    # per-locus structure and embeddings, from the loci's sequences on their strands
    p = _screen(model, src, tmp_path / "t.tsv", "--evalue", "1", "--tasks", "structure,embed",
                cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    t = [r.split("\t") for r in (tmp_path / "t.tsv").read_text().splitlines()]
    assert t[0][-2:] == ["dot_bracket", "num_pairs"] and len(t) == len(rows)
    assert all(len(r[-2]) == int(r[2]) - int(r[1]) for r in t[1:])
    emb = np.load(tmp_path / "t.embeddings.npy")
    assert emb.shape == (len(rows) - 1, 32)
    import rnaernie

    first = t[1]
    s = g[int(first[1]) : int(first[2])] if first[0] == "chr1" else None
    if s is not None:
        s = s if first[3] == "+" else reverse_complement(s)
        np.testing.assert_allclose(emb[0], rnaernie.load(model, dtype="float32").embed([s])[0],
                                   rtol=1e-4, atol=1e-5)  # fmt: skip


def test_screen_command_fused_scorer_sharded_and_gff3(model, tmp_path):
    """Library members across chunk borders (chunks of 500 nt of window starts): the sharded run
    writes the same loci as one process, each spanning its member (the alignment's envelope)."""
    bg = _genome(11, 4000)
    g = _planted(bg, (480, SCREEN_MEMBERS[0]), (1490, reverse_complement(SCREEN_MEMBERS[3])))
    src = tmp_path / "g.fa"
    src.write_text(f">chr1\n{g}\n")
    args = ("--chunk-nt", "500", "--scorer", "fused")
    one = tmp_path / "one.tsv"
    assert _screen(model, src, one, *args, cwd=tmp_path).returncode == 0
    rows = [r.split("\t") for r in one.read_text().splitlines()[1:]]
    assert [(r[1], r[2], r[3], r[4], r[9]) for r in rows] == [
        ("480", "540", "+", "Gfam", "m0"), ("1550", "1610", "-", "Cfam", "m3")]  # fmt: skip
    two = tmp_path / "two.tsv"
    for rank in (1, 0):
        p = _screen(model, src, two, *args, "--shard-size", "1",
                    env={"RANK": str(rank), "WORLD_SIZE": "2"}, cwd=tmp_path)  # fmt: skip
        assert p.returncode == 0, p.stderr
    assert two.read_bytes() == one.read_bytes()
    gff = tmp_path / "o.gff3"
    assert _screen(model, src, gff, *args, cwd=tmp_path).returncode == 0
    feats = [r.split("\t") for r in gff.read_text().splitlines() if not r.startswith("#")]
    assert [(f[3], f[4], f[6]) for f in feats] == [("481", "540", "+"), ("1551", "1610", "-")]
    assert [f[8].split(";member=")[1] for f in feats] == ["m0", "m3"]


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--evalue", "0"], "--evalue: must be > 0.0"),
        (["--window", "10"], "shorter than the detector's minimum of 20 nt"),
        (["--window", "30", "--stride", "40"], "--stride 40 is larger than --window 30"),
        (["--window", "600"], "longer than the model reads at once"),
        (["--families", "Gfam,tRNA"], "families: unknown 'tRNA'; the detector's are Gfam, Cfam"),
        (["--soft-masked", "--scorer", "kmer"], "needs the fused or homology scorer, not kmer"),
    ],
)
def test_screen_bad_options(model, tmp_path, capsys, extra, message):
    src = tmp_path / "g.fa"
    src.write_text(">c\n" + _genome(2, 300) + "\n")
    out = tmp_path / "o.tsv"
    argv = ["screen", str(src), "-o", str(out), "--model", str(model), "-q", *extra]
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse
        rc = e.code
    assert rc == 2 and message in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


def test_screen_needs_a_calibrated_detector_and_a_known_format(model, tmp_path, capsys):
    src = tmp_path / "g.fa"
    src.write_text(">c\n" + _genome(2, 300) + "\n")
    assert main(["screen", str(src), "-o", str(tmp_path / "o.vcf"), "--model", str(model)]) == 2
    assert "must end in .tsv, .csv, .parquet, .bed, .gff3" in capsys.readouterr().err
    bare = save_micro_model(tmp_path / "bare", heads=("structure",))
    assert main(["screen", str(src), "-o", str(tmp_path / "o.tsv"), "--model", str(bare)]) == 2
    assert "has no screen head" in capsys.readouterr().err
    cfg_path = model / "heads/screen/config.json"
    cfg = json.loads(cfg_path.read_text())
    uncal = tmp_path / "uncal"
    import shutil

    shutil.copytree(model, uncal)
    del cfg["extra"]["screen"]["calibration_cnn"]
    (uncal / "heads/screen/config.json").write_text(json.dumps(cfg))
    assert main(["screen", str(src), "-o", str(tmp_path / "o.tsv"), "--model", str(uncal)]) == 2
    assert "not calibrated" in capsys.readouterr().err


def test_detector_training_windows():
    from rnaernie.training.screen import BACKGROUND, detector_windows

    rng = np.random.default_rng(0)
    pos = ["GGGAAACCC" * 5, "ACGUACGUAA" * 30]  # 45 nt, and 300 nt (longer than the window)
    transcripts = [_genome(3, 500), _genome(4, 800)]
    d = detector_windows(pos, [0, 1], ["a", "b"], transcripts, 100, rng)
    assert d.labels == ["a", "b", BACKGROUND]
    assert all(len(s) == 100 for s in d.seqs)
    kinds = collections.Counter(d.kind)
    assert kinds["positive"] == kinds["antisense"] == kinds["partial"] == 2
    for s, y, k in zip(d.seqs, d.y, d.kind):
        if k == "positive":
            assert y in (0, 1) and (pos[0] in s or s in pos[1])
        else:
            assert y == 2
    with pytest.raises(ValueError, match="at least 20 nt"):
        detector_windows(pos, [0, 1], ["a", "b"], transcripts, 10, rng)


def test_finetune_screen_command_trains_and_calibrates(tmp_path):
    from rnaernie.io import read_fasta

    train = tmp_path / "train.fa"
    fams = {"Gfam": "GGGGAGGGGA", "Cfam": "CCCCUCCCCU"}
    train.write_text("".join(f">{f}{k} {f}\n{(m * 6)[: 30 + k]}\n" for f, m in fams.items()
                             for k in range(12)))  # fmt: skip
    tx = tmp_path / "tx.fa"
    tx.write_text("".join(f">t{k}\n{_genome(k, 400)}\n" for k in range(30)))
    pre = save_micro_model(tmp_path / "pre", heads=())
    out = tmp_path / "det"
    rc = main(["finetune", "screen", str(train), "--transcripts", str(tx), "--pretrained",
               str(pre), "--out", str(out), "--window", "60", "--stride", "30", "--epochs", "1",
               "--calibration-mb", "0.2", "--valid-fraction", "0.25"])  # fmt: skip
    assert rc == 0
    det = Detector(out)
    assert det.labels == ["Cfam", "Gfam", "background"] and det.window == 60
    assert det.calibration is not None and Detector(out, scorer="kmer").calibration is not None
    figures = json.loads((out / "metrics.json").read_text())["valid"]
    assert figures["scorer"] in ("cnn", "model", "kmer")
    for name in ("cnn", "model", "kmer"):
        assert 0.0 <= figures[name]["auc_positive_vs_background"] <= 1.0
    assert (out / "cnn.safetensors").is_file() and (out / "kmer_logreg.safetensors").is_file()
    assert len(list(read_fasta(train))) == 24
    # the training members are the homology library; random background never aligns to them,
    # so the fused scorer cannot be calibrated and the default stays the validation choice
    assert len(det.homology.seqs) == 24 and det.scorer == figures["scorer"]
    assert SCREEN_LABELS[-1] == det.labels[-1]


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--library-only", "--no-library"], "--library-only and --no-library contradict"),
        (["--calibrate-only", "--scorers", "fused,hmm"], "--scorers: hmm not among"),
        (["--calibrate-only", "--scorers", ","], "--scorers: name at least one of"),
        (["--library-only", "--library-rfam", "missing.tsv"], "missing.tsv"),
    ],
)
def test_finetune_screen_bad_options(model, tmp_path, capsys, extra, message):
    import shutil

    det = tmp_path / "det"
    shutil.copytree(model / "heads" / "screen", det)
    train = tmp_path / "t.fa"
    train.write_text(f">a Gfam\n{SCREEN_MEMBERS[0]}\n")
    before = {p.name: p.read_bytes() for p in det.iterdir()}
    rc = main(["finetune", "screen", str(train), "--transcripts", str(train), "--out", str(det),
               *[str(tmp_path / x) if x.endswith(".tsv") else x for x in extra]])  # fmt: skip
    assert rc == 2 and message in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in det.iterdir()} == before  # nothing written


def test_purge_drops_members_that_align_in_many_real_transcripts():
    """A member that carries a sequence found in many transcripts (here a 60-nt 'SINE' planted
    in 6 of 8) is dropped; members found in one transcript (a host gene) stay."""
    from rnaernie.training.screen import purge_promiscuous

    rng = np.random.default_rng(5)

    def rand(n):
        return "".join(rng.choice(list("ACGU"), n))

    sine, host_gene = rand(60), rand(80)
    members = [rand(40) + sine, host_gene, rand(100)]
    tx = [rand(150) + (sine if k < 6 else "") + rand(150) for k in range(8)]
    tx[7] = tx[7][:100] + host_gene + tx[7][100:]
    seqs, fams, names, dropped = purge_promiscuous(
        members, [0, 1, 1], ["a", "b"], tx, names=["sine", "host", "other"], min_bits=40.0
    )
    assert dropped == 1 and seqs == members[1:] and fams == [1, 1] and names == ["host", "other"]


def test_library_members_with_rfam_relatives_and_exclusions(tmp_path):
    from rnaernie.training.screen import library_members

    rfam = tmp_path / "rfam.tsv"
    rfam.write_text("seq_id\trfam_acc\tsequence\n"
                    "a/1-9\tRF00005\tGGCCAAUUGG\n"     # a relative of the tRNA member: joins
                    "b/1-9\tRF00001\tCCCCCCCCCC\n"     # a family the training set does not name
                    "c/1-9\tRF00005\tACGUACGUAC\n")  # identical to an excluded sequence  # fmt: skip
    seqs, fams, names, counts = library_members(
        ["GGGAAACCC", "UUUGGGAAA", "GGGAAACCC"], [1, 0, 1],
        ["RF00005_X1_1-9", "RF00100_Y_2-9", "RF00005_X2_1-9"], rfam=rfam, exclude=["ACGTACGTAC"],
    )  # fmt: skip
    assert seqs == ["GGGAAACCC", "UUUGGGAAA", "GGCCAAUUGG"] and fams == [1, 0, 1]
    assert names == [
        "RF00005_X1_1-9",
        "RF00100_Y_2-9",
        "RF00005_a/1-9",
    ]  # the first id of a duplicate
    assert counts == {"training_members": 2, "rfam_members": 1, "rfam_families": 2}
    rfam.write_text("seq_id\trfam_acc\tsequence\na\tRF00005\n")
    with pytest.raises(ValueError, match=r"rfam\.tsv, line 2: 2 columns, expected 3"):
        library_members(["ACGU"], [0], ["RF00005_x"], rfam=rfam)
    rfam.write_text("seq_id\tsequence\nx\tACGU\n")
    with pytest.raises(ValueError, match=r"rfam\.tsv, line 1: need the columns rfam_acc"):
        library_members(["ACGU"], [0], ["RF00005_x"], rfam=rfam)


def test_motif_cnn_saves_and_loads(tmp_path):
    import torch

    from rnaernie.model.motif_cnn import MotifCNN, one_hot

    torch.manual_seed(1)
    net = MotifCNN(2, channels=8, dilations=(1, 2), labels=["a", "b", "background"]).eval()
    net.save(tmp_path)
    back = MotifCNN.load(tmp_path)
    x = one_hot(["ACGUNACGUU", "GGG"])
    with torch.inference_mode():
        assert torch.equal(net(x), back(x))
    assert back.labels == ["a", "b", "background"] and back.receptive_field == 1 + 8 * 4
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cnn.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="cannot read the screening CNN"):
        MotifCNN.load(tmp_path / "bad")


def test_cnn_window_logits_are_each_windows_own_in_few_shapes():
    """A window's logits are those of the window alone, whatever shares its batch (rows and
    columns are padded, and every layer sees zeros past each window's end); the network sees few
    distinct shapes (the CPU's convolution library keeps a primitive, and memory, per shape)."""
    import torch

    from rnaernie.model.motif_cnn import MotifCNN, one_hot

    torch.manual_seed(2)
    net = MotifCNN(3, channels=8, kernel=5, dilations=(1, 2, 4)).eval()
    rng = np.random.default_rng(4)
    seqs = ["".join(rng.choice(list("ACGUN"), int(rng.integers(1, 90)))) for _ in range(150)]
    with torch.inference_mode():
        alone = np.concatenate([net(one_hot([s])).double().numpy() for s in seqs])
    np.testing.assert_allclose(net.window_logits(seqs, batch_size=64), alone, rtol=1e-5, atol=1e-5)
    # with the batch normalisations folded into the convolutions (what the detector runs)
    for norm in [net.stem_norm, *net.norms]:  # statistics that make folding do something
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
    with torch.inference_mode():
        alone = np.concatenate([net(one_hot([s])).double().numpy() for s in seqs])
    np.testing.assert_allclose(net.folded().window_logits(seqs), alone, rtol=1e-5, atol=1e-5)
    # batches of one shape (the fused scorer's): each window's logits to the bit, whatever else
    # is in its batch and wherever it sits there (sharded screens group chunks differently)
    fixed = net.folded().window_logits(seqs, 16, fixed=90)
    for _ in range(3):
        order = rng.permutation(len(seqs))[:40]
        again = net.folded().window_logits([seqs[i] for i in order], 16, fixed=90)
        assert np.array_equal(again, fixed[order])
    with pytest.raises(ValueError, match="longer than fixed=50"):
        net.window_logits(["A" * 60], fixed=50)
    shapes = set()
    hook = net.register_forward_pre_hook(lambda m, args: shapes.add(tuple(args[0].shape)))
    for n in range(1, 140):
        net.window_logits(["ACGU" * 20] * n, batch_size=128)
    hook.remove()
    assert {s[0] for s in shapes} == {1, 2, 4, 8, 16, 32, 64, 128} and {s[2] for s in shapes} == {
        80
    }
