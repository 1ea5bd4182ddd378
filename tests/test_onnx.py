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
