"""ONNX export of the encoder (and a sequence-classification head), for tools outside Python.

The graph takes ``input_ids`` and ``attention_mask`` (int64, (B, L), dynamic batch and length,
padding on the right, as :class:`~rnaernie.tokenizer.Tokenizer` produces them) and returns
``last_hidden_state`` (B, L, H) float32, plus ``logits`` (B, C) with a classifier head. Exported
with attention ``"eager"`` (plain matmul + softmax ops) through ``torch.onnx.export``'s dynamo
exporter; needs the ``onnx`` extra (onnx, onnxscript; onnxruntime to run it).

Example:
    >>> export_onnx("rnaernie-tiny", "tiny.onnx")  # doctest: +SKIP
    >>> import onnxruntime as ort  # doctest: +SKIP
    >>> ort.InferenceSession("tiny.onnx").run(None, {"input_ids": ids, "attention_mask": mask})
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from ..tokenizer import Tokenizer
from .heads import RnaErnieForSequenceClassification
from .pretrained import resolve_model_dir

__all__ = ["export_encoder", "export_onnx"]


class _Graph(nn.Module):
    def __init__(self, model: nn.Module, head: bool) -> None:
        super().__init__()
        self.model, self.head = model, head

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, ...]:
        if not self.head:
            return (self.model(input_ids, attention_mask, return_pooler=False).last_hidden_state,)
        out = self.model.ernie(input_ids, attention_mask)
        logits = self.model.classifier(out.pooler_output)  # eval: dropout is the identity
        return out.last_hidden_state, logits


def export_onnx(
    model: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    head: str | None = None,
    int8: bool = False,
) -> Path:
    """Write ``out`` (.onnx): the encoder of ``model`` (a shipped name or a model directory), or
    with ``head`` (e.g. ``"nrc"``) that sequence-classification head, encoder included. The file is
    written to a temporary file beside it and renamed. Returns the path.

    ``int8``: ONNX Runtime's dynamic quantisation (int8 weights of the MatMul/Gemm layers,
    activations quantised per call; ``onnxruntime.quantization.quantize_dynamic``): a file a
    quarter the size that ONNX Runtime runs about 1.6× faster on a CPU, hidden states at a cosine
    of about 0.9999 to fp32 (``benchmarks/results/onnx_cpu.json``)."""
    from ..io import check_output

    root = resolve_model_dir(model)
    out = Path(out)
    check_output(out)
    if head is None:
        from .encoder import RnaErnieModel

        net = RnaErnieModel.from_pretrained(root, attn_implementation="eager")
    else:
        d = root / "heads" / head
        if not (d / "model.safetensors").is_file():
            raise ValueError(f"{root} has no {head} head (expected {d / 'model.safetensors'})")
        net = RnaErnieForSequenceClassification.from_pretrained(d, attn_implementation="eager")
        if net.config.extra.get("type_guided"):
            raise ValueError(f"{d}: a type-guided head needs the type indicator; not exportable")
    return _export(_Graph(net.eval().float(), head is not None), out, int8)


def export_encoder(encoder: nn.Module, out: str | os.PathLike[str], *, int8: bool = False) -> Path:
    """Write the ONNX graph of an in-memory :class:`~rnaernie.model.RnaErnieModel` (e.g. a head's
    ``.ernie``; a float32 copy with eager attention is exported, the module is not changed):
    inputs ``input_ids``, ``attention_mask``, output ``last_hidden_state``. As :func:`export_onnx`
    otherwise."""
    import copy

    net = copy.deepcopy(encoder).eval().float()
    net.set_attn_implementation("eager")
    return _export(_Graph(net, False), Path(out), int8)


def _export(graph: nn.Module, out: Path, int8: bool) -> Path:
    enc = Tokenizer().encode_batch(["ACGUACGU", "GGC"])  # two rows, one padded
    ids, mask = torch.from_numpy(enc.input_ids), torch.from_numpy(enc.attention_mask)
    names = ["last_hidden_state"] + (["logits"] if graph.head else [])
    dims = {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"}}
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")  # processes exporting at once don't mix
    try:
        with warnings.catch_warnings():  # (no no_grad: it makes mkldnn ops ONNX cannot express)
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, (ids, mask), str(tmp), dynamo=True,
                              input_names=["input_ids", "attention_mask"], output_names=names,
                              dynamic_shapes=dims, external_data=False, verbose=False)  # fmt: skip
        if int8:
            _quantize(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _quantize(path: Path) -> None:
    """Replace the fp32 graph at ``path`` by its dynamically quantised int8 version."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ValueError("int8 export needs onnxruntime: pip install 'rnaernie[onnx]'") from exc
    q = path.with_name(path.name + ".int8.tmp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(path), str(q), weight_type=QuantType.QInt8)
        os.replace(q, path)
    finally:
        q.unlink(missing_ok=True)
