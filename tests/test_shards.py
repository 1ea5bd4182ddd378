"""Sharding: deterministic shards, part files, resume, merge; a sharded run == a single run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _micro_model import save_micro_model
from hypothesis import given, settings
from hypothesis import strategies as st

from rnaernie.cli import main
from rnaernie.io import Invalid, Record, iter_records
from rnaernie.io.runner import batches, iter_shards, part_stem
from rnaernie.io.writers import NpyWriter


def _fasta(n: int) -> str:
    rng = np.random.default_rng(0)
    return "".join(
        f">r{i}\n{''.join(rng.choice(list('ACGU'), int(rng.integers(8, 60))))}\n" for i in range(n)
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(save_micro_model(tmp_path_factory.mktemp("micro")))


def test_iter_shards_and_names():
    shards = [(s, [i for i, _ in g]) for s, g in iter_shards("abcdefg", 3)]
    assert shards == [(0, [0, 1, 2]), (1, [3, 4, 5]), (2, [6])]
    assert str(part_stem("out/res.tsv", 3)) == "out/res.part-00003"


@given(st.lists(st.integers(-1, 30), max_size=40), st.integers(1, 6), st.integers(0, 50))
@settings(max_examples=300, deadline=None)
def test_batches_cut_where_the_count_or_the_nt_is_reached(lengths, size, nt):
    # -1: an invalid record (no sequence)
    items = [Invalid(f"r{i}", 1, "bad") if n < 0 else Record(f"r{i}", "A" * n)
             for i, n in enumerate(lengths)]  # fmt: skip
    got = list(batches(iter(items), size, nt))
    assert [x for b in got for x in b] == items and all(got)
    held = [sum(len(getattr(x, "seq", "")) for x in b) for b in got]
    for b, h in zip(got[:-1], held[:-1]):  # a batch ends at the first item that fills it
        assert len(b) == size or (nt and h >= nt)
    for b, h in zip(got, held):  # and not before
        assert len(b) <= size and (not nt or h - len(getattr(b[-1], "seq", "")) < nt)
    with pytest.raises(ValueError):
        next(batches(items, 0))


def test_reader_recovers_and_reads_fastq(tmp_path):
    p = tmp_path / "x.fa"
    p.write_text(">a\nAC\nGU\n>b\n>c\nAC\n")
    items = list(iter_records(p))
    assert items[0].seq == "ACGU" and isinstance(items[1], Invalid) and items[2].id == "c"
    q = tmp_path / "x.fq"
    q.write_text("@r1\nACGU\n+\nIIII\n@r2\nGG\n+\nI\n@r3\nCC\n+\nII\n")
    items = list(iter_records(q))
    assert [type(x).__name__ for x in items] == ["Record", "Invalid", "Record"]
    assert "malformed FASTQ" in items[1].message and "line 5" in items[1].message


def test_npy_writer_streams(tmp_path):
    w = NpyWriter(tmp_path / "a.npy", 3)
    w.write(np.ones((2, 3)))
    w.write(np.zeros((1, 3)))
    w.commit()
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), [[1, 1, 1], [1, 1, 1], [0, 0, 0]])


@pytest.mark.parametrize("ext", [".tsv", ".npy", ".parquet"])
def test_two_ranks_equal_single_run(model, tmp_path, monkeypatch, ext):
    fa = tmp_path / "in.fa"
    fa.write_text(_fasta(23) + ">bad\nACXG\n")
    cmd = "classify" if ext != ".npy" else "embed"
    base = [cmd, str(fa), "--model", model, "-q", "--skip-invalid", "--chunk-size", "4"]
    single = tmp_path / f"single{ext}"
    assert main([*base, "-o", str(single)]) == 0
    out = tmp_path / f"sharded{ext}"
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        assert main([*base, "-o", str(out), "--shard-size", "8"]) == 0
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert not out.exists()  # rank 0 finished first: parts wait for `rnaernie merge`
    assert sorted(p.name for p in tmp_path.glob("sharded.part-*"))[0].startswith(
        "sharded.part-00000"
    )
    assert main(["merge", str(out)]) == 0
    assert not list(tmp_path.glob("sharded.part-*"))
    if ext == ".npy":
        np.testing.assert_array_equal(np.load(out), np.load(single))
        assert (tmp_path / "sharded.ids.txt").read_text() == (
            tmp_path / "single.ids.txt"
        ).read_text()
    elif ext == ".parquet":
        import pyarrow.parquet as pq

        assert pq.read_table(out).equals(pq.read_table(single))
    else:
        assert out.read_bytes() == single.read_bytes()
    assert (tmp_path / "sharded.skipped.tsv").read_text() == (
        tmp_path / "single.skipped.tsv"
    ).read_text()


def test_resume_skips_finished_parts(model, tmp_path, capsys):
    fa = tmp_path / "in.fa"
    fa.write_text(_fasta(10))
    out = tmp_path / "o.tsv"
    argv = [
        "classify",
        str(fa),
        "--model",
        model,
        "-q",
        "-o",
        str(out),
        "--shard-size",
        "4",
        "--keep-parts",
    ]
    assert main(argv) == 0
    ref = out.read_text()
    part1 = Path(str(part_stem(out, 1)) + ".tsv")
    mtime = part1.stat().st_mtime_ns
    Path(str(part_stem(out, 2)) + ".tsv").unlink()
    out.unlink()
    assert main([*argv, "--resume"]) == 0
    assert part1.stat().st_mtime_ns == mtime  # finished part not redone
    assert out.read_text() == ref


def test_torchrun_style_two_processes_gloo(model, tmp_path):
    """Two real processes with RANK/WORLD_SIZE/MASTER_ADDR: gloo barrier, rank 0 merges."""
    fa = tmp_path / "in.fa"
    fa.write_text(_fasta(12))
    single = tmp_path / "single.tsv"
    assert (
        main(["classify", str(fa), "--model", model, "-q", "-o", str(single), "--chunk-size", "3"])
        == 0
    )
    out = tmp_path / "dist.tsv"
    code = "import sys; from rnaernie.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [
        "classify",
        str(fa),
        "--model",
        model,
        "-q",
        "-o",
        str(out),
        "--shard-size",
        "3",
        "--chunk-size",
        "3",
    ]
    env = {
        **os.environ,
        "WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(29500 + os.getpid() % 1000),
    }
    procs = [
        subprocess.Popen(  # cwd: `python -c` puts it first on sys.path; keep the source tree off it
            [sys.executable, "-c", code, *argv],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            cwd=tmp_path,
        )
        for r in (0, 1)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert out.read_bytes() == single.read_bytes()
    assert not list(tmp_path.glob("dist.part-*"))
