"""ONNX export: the graph matches the PyTorch fp32 path (hidden states and classifier logits)
within 1e-4 for batch sizes and lengths other than the ones it was traced with."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _micro_model import save_micro_model

from rnaernie.cli import main
from rnaernie.model import RnaErnieForSequenceClassification
from rnaernie.tokenizer import Tokenizer

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytestmark = pytest.mark.filterwarnings("ignore")


def test_export_matches_pytorch(tmp_path, capsys):
    d = save_micro_model(tmp_path / "m", heads=("nrc",))
    out = tmp_path / "nrc.onnx"
    assert main(["export", "onnx", str(d), str(out), "--head", "nrc"]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    model = RnaErnieForSequenceClassification.from_pretrained(d / "heads" / "nrc").eval()
    rng = np.random.default_rng(0)
    for n in (1, 5):
        seqs = ["".join(rng.choice(list("ACGU"), int(k))) for k in rng.integers(3, 120, n)]
        enc = Tokenizer().encode_batch(seqs)
        hidden, logits = session.run(None, {"input_ids": enc.input_ids,
                                            "attention_mask": enc.attention_mask})  # fmt: skip
        with torch.no_grad():
            o = model.ernie(torch.from_numpy(enc.input_ids), torch.from_numpy(enc.attention_mask))
            want = model.classifier(o.pooler_output).numpy()
        real = enc.attention_mask.astype(bool)
        np.testing.assert_allclose(hidden[real], o.last_hidden_state.numpy()[real], atol=1e-4)
        np.testing.assert_allclose(logits, want, atol=1e-4)
    capsys.readouterr()
    assert main(["export", "onnx", str(d), str(tmp_path / "x.onnx"), "--head", "lncrna"]) == 2
    assert "no lncrna head" in capsys.readouterr().err


def test_int8_export_is_close_to_fp32(tmp_path):
    d = save_micro_model(tmp_path / "m", heads=())
    fp32, int8 = tmp_path / "fp32.onnx", tmp_path / "int8.onnx"
    assert main(["export", "onnx", str(d), str(fp32)]) == 0
    assert main(["export", "onnx", str(d), str(int8), "--int8"]) == 0
    assert not list(tmp_path.glob("*.tmp*"))
    names = {n.op_type for n in __import__("onnx").load(str(int8)).graph.node}
    assert "DynamicQuantizeLinear" in names or "MatMulInteger" in names
    enc = Tokenizer().encode_batch(["ACGUAGCUAGCUAGGCAUCGAUCGAUCG", "GGGAAACCC"])
    feed = {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask}
    real = enc.attention_mask.astype(bool)
    a, b = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, feed)[0][real]
            for p in (fp32, int8))  # fmt: skip
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.99


def test_onnx_backend_matches_torch(tmp_path, monkeypatch):
    from rnaernie.api import load

    monkeypatch.setenv("RNAERNIE_CACHE", str(tmp_path / "cache"))
    d = save_micro_model(tmp_path / "m")
    seqs = ["GGGGAAAACCCCAUGGCAUUUGCCAUG", "ACGUAGCUAGCUAGCUAGCGAUCGAUCG" * 2, "AUG"]
    t, o = load(d), load(d, backend="onnx")
    assert "backend=onnx" in repr(o)
    np.testing.assert_allclose(o.embed(seqs), t.embed(seqs), atol=1e-4)
    for a, b in zip(o.classify(seqs), t.classify(seqs)):
        assert a.label == b.label and np.allclose(a.probabilities, b.probabilities, atol=1e-4)
    for a, b in zip(o.fold(seqs, return_probs=True), t.fold(seqs, return_probs=True)):
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-4)
    pair = [(seqs[0], seqs[1])]
    assert abs(o.interact(pair)[0].probability - t.interact(pair)[0].probability) < 1e-4
    exported = sorted((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert len(exported) == 4  # base, nrc, structure, interaction encoders, exported once each
    load(d, backend="onnx").embed(seqs)
    assert sorted((tmp_path / "cache" / "onnx").glob("*.onnx")) == exported
    q = load(d, backend="onnx", int8=True).embed(seqs)
    e = t.embed(seqs)
    assert ((q * e).sum(1) / np.linalg.norm(q, axis=1) / np.linalg.norm(e, axis=1)).min() > 0.99
    with pytest.raises(ValueError, match="backend must be one of"):
        load(d, backend="tensorrt")
    with pytest.raises(ValueError, match="needs dtype float32"):
        load(d, backend="onnx", dtype="bfloat16")
    with pytest.raises(ValueError, match="CPU only"):
        load(d, backend="onnx", device="cuda")


def test_cli_embed_with_onnx_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("RNAERNIE_CACHE", str(tmp_path / "cache"))
    d = save_micro_model(tmp_path / "m", heads=())
    fa = tmp_path / "in.fa"
    fa.write_text(">a\nGGGGAAAACCCC\n>b\nACGUACGUAGGC\n")
    for backend in ("torch", "onnx"):
        out = tmp_path / f"{backend}.npy"
        argv = ["embed", str(fa), "-o", str(out), "--model", str(d), "-q", "--backend", backend]
        assert main([*argv, "--dtype", "float32"]) == 0
    np.testing.assert_allclose(
        np.load(tmp_path / "onnx.npy"), np.load(tmp_path / "torch.npy"), atol=1e-4
    )
