"""ONNX Runtime as the encoder's backend: ``load(..., backend="onnx")`` / ``--backend onnx``.

:class:`OnnxEncoder` stands in for a :class:`~rnaernie.model.RnaErnieModel` inside any head
(``model.ernie``): the embeddings and transformer layers run in an ONNX Runtime session of the
encoder's exported graph (:func:`~rnaernie.model.export.export_encoder`, float32, or int8 with
``int8=True``); the pooler and every head layer stay in PyTorch. CPU inference only. The graphs are
exported once per set of weights and cached under ``$RNAERNIE_CACHE`` (default
``~/.cache/rnaernie``) in ``onnx/``; the export takes a few seconds.

On the shipped model ONNX Runtime's fp32 is slower than PyTorch's fp32 (0.85×) and its int8 about as
fast as PyTorch bf16 (``benchmarks/results/onnx_cpu.json``), so PyTorch stays the default; the
backend gives the outputs the exported graph gives to tools outside Python.

Example:
    >>> from rnaernie.api import load
    >>> m = load("rnaernie-tiny", backend="onnx")  # doctest: +SKIP
    >>> m.embed(["GGGGAAAACCCC"]).shape  # doctest: +SKIP
    (1, 256)
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save
from torch import Tensor, nn

from .encoder import RnaErnieModelOutput

__all__ = ["OnnxEncoder", "cache_dir"]


def cache_dir() -> Path:
    """Where exported graphs are kept: ``$RNAERNIE_CACHE/onnx`` (default ``~/.cache/rnaernie``)."""
    root = os.environ.get("RNAERNIE_CACHE") or Path.home() / ".cache" / "rnaernie"
    return Path(root) / "onnx"


def _key(encoder: nn.Module, int8: bool) -> str:
    """A hash of the encoder's weights and config (and the precision of the graph)."""
    h = hashlib.sha1(
        save({k: v.detach().float().contiguous() for k, v in encoder.state_dict().items()})
    )
    h.update(json.dumps(encoder.config.to_dict(), sort_keys=True, default=str).encode())
    h.update(b"int8" if int8 else b"fp32")
    return h.hexdigest()[:20]


class OnnxEncoder(nn.Module):
    """An encoder whose layers run in ONNX Runtime; called like ``RnaErnieModel``.

    Only ``input_ids`` and ``attention_mask`` are supported: other token types or positions,
    attention maps and hidden states of every layer raise ``ValueError``.
    """

    def __init__(self, encoder: nn.Module, *, int8: bool = False, threads: int | None = None):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ValueError(
                "backend 'onnx' needs onnxruntime: pip install 'rnaernie[onnx]'"
            ) from exc
        from .export import export_encoder

        self.config = encoder.config
        self.pooler = encoder.pooler
        self.embeddings = encoder.embeddings  # kept for heads tied to the word embeddings (MLM)
        self.int8 = bool(int8)
        self.register_parameter("_anchor", nn.Parameter(torch.empty(0), requires_grad=False))
        path = cache_dir() / f"{_key(encoder, self.int8)}.onnx"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            export_encoder(encoder, path, int8=self.int8)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        with open(path, "rb") as f:  # read once: the session does not keep the file open
            self.session = ort.InferenceSession(f.read(), opts, providers=["CPUExecutionProvider"])
        self.path = path

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_pooler: bool = True,
    ) -> RnaErnieModelOutput:
        if token_type_ids is not None and bool(token_type_ids.any()):
            raise ValueError("backend 'onnx' supports token type 0 only")
        if position_ids is not None or output_attentions or output_hidden_states:
            raise ValueError(
                "backend 'onnx' returns the last hidden state only (no position_ids, attentions "
                "or per-layer hidden states)"
            )
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (B, L), got shape {tuple(input_ids.shape)}")
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_token_id
        feed = {
            "input_ids": np.ascontiguousarray(input_ids.cpu().numpy(), dtype=np.int64),
            "attention_mask": np.ascontiguousarray(attention_mask.cpu().numpy(), dtype=np.int64),
        }
        h = torch.from_numpy(self.session.run(None, feed)[0])
        pooled = self.pooler(h) if (self.pooler is not None and return_pooler) else None
        return RnaErnieModelOutput(h, pooled)
