"""The command line end to end: rnaernie.cli.main on small FASTA files, every output format."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from _micro_model import save_micro_model

from rnaernie.cli import main
from rnaernie.io.writers import split_bpseq
from rnaernie.structure import dot_bracket_to_pairs, read_bpseq

FA = ">a first\nACGUACGUAAGG\nGGCCAU\n>b\nGGGGAAAACCCC\n>c\nAUGCUAGCUAGCUAGCAUCGAUCGAUCG\n>d\nGGAUCCUUAGGAUCC\n"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(save_micro_model(tmp_path_factory.mktemp("micro")))


@pytest.fixture
def fa(tmp_path):
    p = tmp_path / "in.fa"
    p.write_text(FA)
    return p


def run(model, *argv):
    return main([*argv, "--model", model, "-q"])


def test_help_for_every_command(capsys):
    for cmd in (
        "embed",
        "classify",
        "fold",
        "screen",
        "interact",
        "merge",
        "motifs",
        "pretrain",
        "bench",
    ):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
    assert "--skip-invalid" in capsys.readouterr().out


def test_classify_tsv_csv_parquet(model, fa, tmp_path, capsys):
    assert run(model, "classify", str(fa), "-o", str(tmp_path / "c.tsv")) == 0
    lines = (tmp_path / "c.tsv").read_text().splitlines()
    assert lines[0].split("\t")[:3] == ["id", "label", "probability"]
    assert [x.split("\t")[0] for x in lines[1:]] == ["a", "b", "c", "d"]
    assert run(model, "classify", str(fa), "-o", str(tmp_path / "c.csv")) == 0
    assert (tmp_path / "c.csv").read_text().replace(",", "\t") == (tmp_path / "c.tsv").read_text()
    import pyarrow.parquet as pq

    assert run(model, "classify", str(fa), "-o", str(tmp_path / "c.parquet")) == 0
    t = pq.read_table(tmp_path / "c.parquet")
    assert t.column("id").to_pylist() == ["a", "b", "c", "d"]
    # stdout, gzipped input
    gz = tmp_path / "in.fa.gz"
    gz.write_bytes(gzip.compress(FA.encode()))
    capsys.readouterr()
    assert run(model, "classify", str(gz)) == 0
    assert capsys.readouterr().out == (tmp_path / "c.tsv").read_text()


def test_embed_formats_round_trip(model, fa, tmp_path):
    import rnaernie.api as api

    ref = api.load(model, dtype="auto").embed(fa)
    assert run(model, "embed", str(fa), "-o", str(tmp_path / "e.npy")) == 0
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), ref, rtol=1e-5, atol=1e-6)
    assert (tmp_path / "e.ids.txt").read_text().split() == ["a", "b", "c", "d"]
    from safetensors import safe_open

    assert run(model, "embed", str(fa), "-o", str(tmp_path / "e.safetensors")) == 0
    with safe_open(tmp_path / "e.safetensors", "np") as f:
        np.testing.assert_allclose(f.get_tensor("embeddings"), ref, rtol=1e-5, atol=1e-6)
        assert json.loads(f.metadata()["ids"]) == ["a", "b", "c", "d"]
    assert run(model, "embed", str(fa), "-o", str(tmp_path / "e.tsv")) == 0
    rows = [r.split("\t") for r in (tmp_path / "e.tsv").read_text().splitlines()[1:]]
    np.testing.assert_allclose(np.array([r[1:] for r in rows], float), ref, rtol=1e-4, atol=1e-5)
    import pyarrow.parquet as pq

    assert run(model, "embed", str(fa), "-o", str(tmp_path / "e.parquet")) == 0
    t = pq.read_table(tmp_path / "e.parquet")
    np.testing.assert_allclose(
        np.array(t.column("embedding").to_pylist()), ref, rtol=1e-5, atol=1e-6
    )
    assert run(model, "embed", str(fa), "-o", str(tmp_path / "e.txt")) == 2


def test_fold_formats_and_plots(model, fa, tmp_path):
    import rnaernie.api as api

    ref = api.load(model, dtype="auto").fold(fa)
    assert (
        run(model, "fold", str(fa), "-o", str(tmp_path / "s.dbn"), "--plot", str(tmp_path / "png"))
        == 0
    )
    lines = (tmp_path / "s.dbn").read_text().splitlines()
    assert lines[0::3] == [">a", ">b", ">c", ">d"]
    assert lines[2::3] == [r.dot_bracket for r in ref]
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == [
        "a.png",
        "b.png",
        "c.png",
        "d.png",
    ]
    assert (tmp_path / "png" / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert run(model, "fold", str(fa), "-o", str(tmp_path / "s.bpseq")) == 0
    chunks = split_bpseq((tmp_path / "s.bpseq").read_text())
    for k, (text, r) in enumerate(zip(chunks, ref)):
        one = tmp_path / f"one{k}.bpseq"
        one.write_text(text)
        rec = read_bpseq(one)
        assert rec.name == r.id and rec.sequence == r.sequence
        np.testing.assert_array_equal(rec.pairs, dot_bracket_to_pairs(r.dot_bracket))
    assert run(model, "fold", str(fa), "-o", str(tmp_path / "s.tsv"), "--decoder", "greedy") == 0


def test_fold_long_records_dtype_and_lonely_pairs(model, tmp_path):
    import rnaernie.api as api

    long = ("GGGAAACCCUUAGCUAGGCUAAGC" * 40)[:700]
    src = tmp_path / "long.fa"
    src.write_text(f">long\n{long}\n>short\nGGGGAAAACCCC\n")
    m = api.load(model, dtype="float32")
    for flag, nlp in (("--lonely-pairs", False), ("--no-lonely-pairs", True)):
        out = tmp_path / f"{flag}.dbn"
        argv = ["fold", str(src), "-o", str(out), "--dtype", "float32", "--threshold", "-1", flag]
        assert run(model, *argv) == 0
        want = [r.dot_bracket for r in m.fold(src, threshold=-1.0, no_lonely_pairs=nlp)]
        assert out.read_text().splitlines()[2::3] == want and len(want[0]) == 700
    with pytest.raises(ValueError, match="no_lonely_pairs needs method 'nested'"):
        m.fold(src, decoder="greedy", no_lonely_pairs=True)
    pytest.importorskip("RNA")
    out = tmp_path / "prior.dbn"
    argv = ["fold", str(src), "-o", str(out), "--dtype", "float32", "--prior", "rnafold"]
    assert run(model, *argv, "--prior-weight", "3") == 0
    want = [r.dot_bracket for r in m.fold(src, prior="rnafold", prior_weight=3.0)]
    assert out.read_text().splitlines()[2::3] == want


def test_interact(model, tmp_path):
    p = tmp_path / "pairs.tsv"
    p.write_text("id\tseq_a\tseq_b\np1\tUGAGGUAGUAGG\tAACUAUACAACC\np2\tACGU\tGGCC\n")
    assert run(model, "interact", str(p), "-o", str(tmp_path / "i.tsv")) == 0
    assert len((tmp_path / "i.tsv").read_text().splitlines()) == 3
    p.write_text("p1\tACGU\n")
    assert run(model, "interact", str(p), "-o", str(tmp_path / "j.tsv")) == 2
    assert not (tmp_path / "j.tsv").exists()


BAD = {
    "missing_header": ("ACGU\n>a\nACGU\n", "line 1", "before a '>' header"),
    "empty_record": (">a\nACGU\n>b\n>c\nGG\n", "line 3: record 'b'", "empty record"),
    "binary": (b">a\nACGU\n>b\nAC\x00\xff\xfeGU\n>c\nGG\n", "line 3: record 'b'", "binary data"),
    "invalid_char": (">a\nACGU\n>b\nACGU\nACXU\n", "line 5: record 'b'", "invalid character 'X'"),
    "duplicate": (">a\nACGU\n>b\nGG\n>a\nCC\n", "line 5: record 'a'", "duplicate"),
    "too_long": (
        ">a\nACGU\n>b\n" + "A" * 4001 + "\n",
        "line 3: record 'b'",
        "exceeds the limit of 4000",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_record_and_line(model, tmp_path, capsys, case):
    text, where, why = BAD[case]
    src = tmp_path / "bad.fa"
    src.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "out.dbn"
    assert run(model, "fold", str(src), "-o", str(out)) == 2
    err = capsys.readouterr().err
    assert where in err and why in err, err
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))  # atomic: nothing partial
    # --skip-invalid: the rest is processed, the skipped records are reported
    assert run(model, "fold", str(src), "-o", str(out), "--skip-invalid") == 0
    err = capsys.readouterr().err
    assert "skipped 1 invalid record" in err and why in err
    skipped = (tmp_path / "out.skipped.tsv").read_text().splitlines()
    assert skipped[0] == "id\tline\treason\tsource" and len(skipped) == 2
    assert out.read_text().count(">") >= 1


def test_empty_and_missing_files(model, tmp_path, capsys):
    (tmp_path / "e.fa").write_text("")
    assert run(model, "classify", str(tmp_path / "e.fa"), "-o", str(tmp_path / "o.tsv")) == 2
    assert "empty input" in capsys.readouterr().err
    assert not (tmp_path / "o.tsv").exists()
    assert run(model, "classify", str(tmp_path / "nope.fa")) == 2
    assert "no such file" in capsys.readouterr().err


def test_stdin(model, tmp_path, monkeypatch, capsys):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(FA.encode())))
    assert run(model, "fold", "-") == 0
    assert capsys.readouterr().out.count(">") == 4


def test_missing_head_is_a_clear_error(tmp_path, fa, capsys):
    bare = str(save_micro_model(tmp_path / "bare", heads=()))
    assert main(["classify", str(fa), "--model", bare, "-q"]) == 2
    assert "no nrc head" in capsys.readouterr().err


def test_training_commands_parse_their_own_options(capsys):
    with pytest.raises(SystemExit):  # one parser tree: unknown flags are argparse errors
        main(["evaluate", "--no-such-flag"])
    with pytest.raises(SystemExit):
        main(["finetune", "classify", "x.fa", "--out", "o", "--epochs", "0"])
    assert "must be >= 1" in capsys.readouterr().err


def test_special_output_files_are_written_through(model, fa, tmp_path):
    """A FIFO (like /dev/null or /dev/stdout) is written directly, never replaced by a rename."""
    import os
    import stat
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    assert run(model, "fold", str(fa), "-o", str(fifo)) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert got[0].count(">") == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fa", "pipe"]


def test_progress_lines_when_stderr_is_not_a_terminal(model, tmp_path, monkeypatch, caplog):
    """A cluster log gets a line every PROGRESS_EVERY_S: records, rate, share of the file read."""
    import logging

    import rnaernie.io.runner as runner

    monkeypatch.setattr(runner, "PROGRESS_EVERY_S", 0.0)
    src = tmp_path / "many.fa"
    src.write_text("".join(f">r{i}\nACGUACGUAAGGCCAU\n" for i in range(40)))
    with caplog.at_level(logging.WARNING, logger="rnaernie.io.runner"):
        assert main(["classify", str(src), "-o", str(tmp_path / "o.tsv"), "--model", model,
                     "--chunk-size", "8"]) == 0  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if r.name == "rnaernie.io.runner"]
    assert any("classify: 40 records" in x and "100 % of the input" in x for x in lines), lines


def test_python_dash_m_runs_the_cli(tmp_path):
    """``torchrun -m rnaernie.cli`` (the scale-out recipe) needs ``python -m rnaernie.cli``."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "rnaernie.cli", "--help"], cwd=tmp_path,
                       capture_output=True, text=True, check=False)  # fmt: skip
    assert p.returncode == 0 and "screen" in p.stdout


def test_low_memory_fixes_the_mmap_threshold(model, fa, tmp_path):
    import subprocess
    import sys

    code = ("import sys; import rnaernie.cli as c; called = []; f = c.fixed_mmap_threshold; "
            "c.fixed_mmap_threshold = lambda *a: called.append(f(*a)) or True; "
            "rc = c.main(sys.argv[1:]); print(rc, called)")  # fmt: skip
    argv = ["classify", str(fa), "-o", str(tmp_path / "c.tsv"), "--model", model, "-q"]
    out = subprocess.run([sys.executable, "-c", code, *argv, "--low-memory"], capture_output=True,
                         text=True, cwd=tmp_path, check=True).stdout.split()  # fmt: skip
    assert out[0] == "0" and out[1] == ("[True]" if sys.platform.startswith("linux") else "[False]")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                         cwd=tmp_path, check=True).stdout.split()  # fmt: skip
    assert out == ["0", "[]"]
