"""Bad input, as a matrix: for every command (and the matching API call), bad files, bad model
folders, bad options and bad outputs end with exit status 2 (API: ``ValueError`` /
``FileNotFoundError`` / ``PermissionError``), one line naming what was wrong and where, and no
file at the output path."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _micro_model import save_micro_model
from safetensors.numpy import load_file, save_file

import rnaernie
from rnaernie.cli import main

FA = ">a\nACGUACGUAAGGCCAU\n>b\nGGGGAAAACCCC\n"
PAIRS = "id\tseq_a\tseq_b\np1\tUAGCUUAUCAGACUGAUGUUGA\tACGUACGUAAGGCCAUAUGC\n"
# command -> (its output name, extra arguments)
COMMANDS = {
    "embed": ("out.npy", []),
    "classify": ("out.tsv", []),
    "fold": ("out.dbn", []),
    "screen": ("out.tsv", ["--window", "20", "--stride", "10"]),
    "motifs": ("out.tsv", []),
}
MODEL_FREE = {"motifs"}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_micro_model(
        tmp_path_factory.mktemp("micro"), heads=("nrc", "structure", "interaction", "screen")
    )


def _run(cmd, src, out, model, *extra, capsys=None):
    argv = [cmd, str(src), "-o", str(out), "-q", *extra]
    if cmd not in MODEL_FREE:
        argv += ["--model", str(model)]
    rc = main(argv)
    err = capsys.readouterr().err.strip() if capsys else ""
    return rc, err


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, a word the message must hold)."""
    good = gzip.compress(FA.encode())
    files = {
        "empty": (b"", "empty input"),
        "truncated_gzip": (good[: len(good) // 2], "truncated or corrupt gzip"),
        "binary": (bytes(range(256)) * 4, "binary"),
        "invalid_letter": (b">a\nACGU!ACGU\n", "invalid character"),
        "no_header": (b"ACGUACGU\n", "before a '>' header"),
        "duplicate_id": (b">a\nACGU\n>a\nACGU\n", "duplicate"),
    }
    out = {}
    for name, (data, word) in files.items():
        p = tmp / f"{name}.fa"
        p.write_bytes(data)
        out[name] = (p, word)
    d = tmp / "folder.fa"
    d.mkdir()
    out["directory"] = (d, "is a directory")
    out["missing"] = (tmp / "missing.fa", "no such file")
    return out


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_bad_input_files(cmd, model, tmp_path, capsys):
    out = tmp_path / COMMANDS[cmd][0]
    for name, (src, word) in _bad_files(tmp_path).items():
        rc, err = _run(cmd, src, out, model, *COMMANDS[cmd][1], capsys=capsys)
        assert rc == 2, (name, err)
        assert len(err.splitlines()) == 1 and word in err and f"rnaernie {cmd}: error" in err, name
        assert str(src.name) in err, (name, err)
        assert not out.exists() and not Path(str(out) + ".tmp").exists(), name


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files")
def test_unreadable_input(model, tmp_path, capsys):
    src = tmp_path / "secret.fa"
    src.write_text(FA)
    src.chmod(0)
    rc, err = _run("classify", src, tmp_path / "o.tsv", model, capsys=capsys)
    assert rc == 2 and "secret.fa" in err


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_bad_outputs(cmd, model, tmp_path, capsys):
    src = tmp_path / "in.fa"
    src.write_text(FA)
    name = COMMANDS[cmd][0]
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = {
        "missing parent": tmp_path / "no" / "such" / name,
        "parent is a file": afile / name,
        "output is a directory": tmp_path,
    }
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        cases["unwritable"] = ro / name
    for what, out in cases.items():
        rc, err = _run(cmd, src, out, model, *COMMANDS[cmd][1], capsys=capsys)
        assert rc == 2 and len(err.splitlines()) == 1, (what, err)
        assert str(out) in err or str(out.parent) in err, (what, err)
    if Path("/dev/full").exists() and cmd in ("classify", "motifs"):  # written straight through
        rc, err = _run(cmd, src, "/dev/full", model, capsys=capsys)
        assert rc == 2 and "No space left" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["classify", "--chunk-size", "0"],
        ["classify", "--threads", "-3"],
        ["classify", "--top-k", "0"],
        ["classify", "--top-k", "-1"],
        ["classify", "--batch-tokens", "x"],
        ["embed", "--shard-size", "-1"],
        ["screen", "--evalue", "0"],
        ["screen", "--evalue", "-1"],
        ["screen", "--window", "0"],
        ["screen", "--stride", "-1"],
        ["fold", "--threshold", "nan"],
        ["fold", "--max-length", "0"],
    ],
)
def test_bad_numeric_options_fail_at_parse_time(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv[:1], "in.fa", *argv[1:]])
    assert e.value.code == 2
    assert argv[1] in capsys.readouterr().err


def test_stride_larger_than_window(model, tmp_path, capsys):
    src = tmp_path / "in.fa"
    src.write_text(FA)
    rc, err = _run("screen", src, tmp_path / "o.tsv", model, "--window", "28", "--stride", "29",
                   capsys=capsys)  # fmt: skip
    assert rc == 2 and "--stride 29 is larger than --window 28" in err


def _broken_models(tmp: Path, model: Path) -> dict[str, tuple[Path, str]]:
    out = {}

    def copy(name: str) -> Path:
        d = tmp / name
        shutil.copytree(model, d)
        return d

    w = load_file(str(model / "heads/nrc/model.safetensors"))
    d = copy("missing_tensor")
    save_file({k: v for k, v in w.items() if not k.startswith("classifier")},
              str(d / "heads/nrc/model.safetensors"))  # fmt: skip
    out["missing_tensor"] = (d, "missing from the file: classifier")
    d = copy("extra_tensor")
    save_file(
        {**w, "extra.weight": np.zeros(2, np.float32)}, str(d / "heads/nrc/model.safetensors")
    )
    out["extra_tensor"] = (d, "unexpected tensors in the file")
    d = copy("fewer_layers")
    cfg = json.loads((d / "heads/nrc/config.json").read_text())
    (d / "heads/nrc/config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 1}))
    out["fewer_layers"] = (d, "unexpected tensors")
    d = copy("wrong_shape")
    (d / "heads/nrc/config.json").write_text(json.dumps({**cfg, "intermediate_size": 48}))
    out["wrong_shape"] = (d, "shape mismatch")
    d = copy("wrong_type")
    (d / "heads/nrc/config.json").write_text(json.dumps({**cfg, "hidden_size": "32"}))
    out["wrong_type"] = (d, "'hidden_size' must be int")
    d = copy("bad_json")
    (d / "heads/nrc/config.json").write_text("{")
    out["bad_json"] = (d, "not valid JSON")
    for name, data in (("truncated", (model / "heads/nrc/model.safetensors").read_bytes()[:100]),
                       ("empty", b""), ("random", os.urandom(4096))):  # fmt: skip
        d = copy(f"{name}_weights")
        (d / "heads/nrc/model.safetensors").write_bytes(data)
        out[f"{name}_weights"] = (d, "not a readable safetensors file")
    return out


def test_bad_model_folders(model, tmp_path, capsys):
    src = tmp_path / "in.fa"
    src.write_text(FA)
    out = tmp_path / "o.tsv"
    for name, (d, word) in _broken_models(tmp_path, model).items():
        rc = main(["classify", str(src), "-o", str(out), "-q", "--model", str(d)])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and word in err and len(err.splitlines()) == 1, (name, err)
        assert str(d / "heads" / "nrc") in err, (name, err)
        assert not out.exists()
        with pytest.raises(ValueError, match=word.replace("(", r"\(")):
            rnaernie.load(d).classify(["ACGUACGU"])


def test_api_bad_inputs(model, tmp_path):
    m = rnaernie.load(model)
    for call in (m.embed, m.classify, m.fold, m.predict_type):
        with pytest.raises(ValueError, match="empty"):
            call([""])
        with pytest.raises(ValueError, match="expected str, got NoneType"):
            call([("id", None)])
        with pytest.raises(ValueError, match="is a directory"):
            call(str(tmp_path))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="top_k must be a positive int"):
            m.classify(["ACGU"], top_k=bad)
        with pytest.raises(ValueError, match="batch_tokens must be a positive int"):
            m.embed(["ACGU"], batch_tokens=bad)
    with pytest.raises(ValueError, match="threads must be a non-negative int"):
        rnaernie.load(model, threads=-3)


def test_gzip_on_stdin(tmp_path):
    """``cat x.fa.gz | rnaernie motifs -`` reads gzip from stdin."""
    code = "import sys; from rnaernie.cli import main; sys.exit(main(sys.argv[1:]))"
    p = subprocess.run([sys.executable, "-c", code, "motifs", "-", "-q"], cwd=tmp_path,
                       input=gzip.compress(FA.encode()), capture_output=True, check=False)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().splitlines()[0] == "id\tstart\tend\tmotif\tsource"


def test_motifs_rows_are_unique_tsv_safe_and_skip_invalid(tmp_path, capsys):
    import csv

    src = tmp_path / "in.fa"
    src.write_text(">a\tb\nGGACUGAUGGACUGA\n>bad\nACGU!\n>c\nUUUUUUUU\n")
    out = tmp_path / "m.tsv"
    assert main(["motifs", str(src), "-o", str(out), "-q"]) == 2
    assert "record 'bad'" in capsys.readouterr().err and not out.exists()
    assert main(["motifs", str(src), "-o", str(out), "-q", "--skip-invalid"]) == 0
    with out.open() as fh:
        rows = list(csv.reader(fh, delimiter="\t"))[1:]
    assert rows and {r[0] for r in rows} <= {"a\tb", "c"}  # the tab stays inside the id field
    assert len(rows) == len({tuple(r) for r in rows})  # no duplicate rows
    assert "bad" in (tmp_path / "m.skipped.tsv").read_text()
