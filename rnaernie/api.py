"""The library API other tools embed: ``rnaernie.load(...)`` → an :class:`RnaErnie` with ``embed``,
``predict_type``, ``classify``, ``fold`` and ``interact``.

A model directory (the shipped ``rnaernie-tiny`` or any local directory) holds::

    config.json, model.safetensors      # RnaErnieForPreTraining (encoder + MLM head + type head)
    heads/nrc/        config.json, model.safetensors, labels.json   # sequence classification
    heads/structure/  config.json, model.safetensors                # contact prediction
    heads/interaction/ config.json, model.safetensors [, labels.json]

Heads are optional and loaded on first use; a missing one raises ``ValueError`` naming the
directory it looked for. A multimolecule ``save_pretrained`` directory works as the root too (its
type head is then untrained). Nothing is ever downloaded.

Every method takes a list of sequence strings, a list of ``(id, seq)`` pairs, or a FASTA/FASTQ path
(``str`` / ``Path``; a bare string is always read as a path — wrap a single sequence in a list). Work
runs in length-bucketed batches under ``torch.inference_mode``; results come back in input order.
The object holds no mutable state besides the lazily loaded heads (loaded under a lock), so one
instance may be shared by several threads.

Sequences longer than the model's 510 nucleotides: ``embed``, ``predict_type`` and ``classify`` cut
them into windows of 510 nt with a stride of 255 (the last window aligned to the sequence end) and
average the window outputs (pooled embeddings, probabilities); per-nucleotide embeddings
(``pooling="none"``) average the windows covering each nucleotide; ``fold`` averages the pair logits
of the windows holding both bases of a pair (up to ``max_length``, default 4000 nt).

Example:
    >>> import rnaernie
    >>> m = rnaernie.load("path/to/model")  # doctest: +SKIP
    >>> m.embed(["ACGUACGU", "GGGAAACCC"]).shape  # doctest: +SKIP
    (2, 256)
    >>> m.fold(["GGGGAAAACCCC"])[0].dot_bracket  # doctest: +SKIP
    '((((....))))'
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import predict
from .io import Record, read_fasta
from .kmer import KMER_FILE, KmerClassifier, combine_experts
from .model import (
    MODEL_NAMES,
    RnaErnieForContactPrediction,
    RnaErnieForInteraction,
    RnaErnieForPreTraining,
    RnaErnieForSequenceClassification,
    resolve_model_dir,
)
from .predict import (
    Classification,
    Folded,
    Interaction,
    TypePrediction,
)
from .screen import Detector, Locus, detect
from .structure import DecodeOptions, decode_batch, decoder_inputs, pair_probabilities
from .structure.prior import PRIORS, Fusion, add_pair_bonus, rnafold_pairs, vienna_partition
from .tokenizer import Tokenizer, normalise

__all__ = [
    "MODEL_NAMES",
    "Classification",
    "Folded",
    "Interaction",
    "RnaErnie",
    "TypePrediction",
    "load",
    "resolve_dtype",
    "resolve_model_dir",
]

logger = logging.getLogger(__name__)

MAX_NT = predict.MAX_NT
DECODERS = {"nussinov": "nested", "greedy": "greedy", "mea": "mea", "threshknot": "threshknot"}
FOLD_MAX_NT = 4000  # fold's default length limit: the cubic decoder takes about a second there
FOLD_AREA = 1 << 25  # fold works on groups of sequences with sum(L²) ≤ this (128 MB of fp32 logits)
HEADS = {  # name → the head class stored in heads/<name>
    "nrc": RnaErnieForSequenceClassification,
    "lncrna": RnaErnieForSequenceClassification,
    "structure": RnaErnieForContactPrediction,
    "interaction": RnaErnieForInteraction,
    "screen": RnaErnieForSequenceClassification,  # the detector head (see rnaernie.screen)
}
BACKENDS = ("torch", "onnx")
CLASSIFIER_HEADS = ("nrc", "lncrna")  # sequence classifiers that classify(head=...) can use


def load(
    name_or_path: str | os.PathLike[str] = "rnaernie-tiny",
    device: str | torch.device = "cpu",
    threads: int | None = None,
    int8: bool = False,
    dtype: str | torch.dtype = "float32",
    backend: str = "torch",
) -> RnaErnie:
    """Load a model directory (or a shipped name) for inference.

    Args:
        name_or_path: ``"rnaernie-tiny"`` or a local directory (ours or multimolecule's).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, … (``"auto"``: CUDA when available).
        threads: CPU threads for torch (a process-wide setting, applied once here) and the tokenizer.
        int8: dynamic int8 quantisation of the Linear layers (CPU only).
        dtype: weights and activations: ``"float32"`` (default), ``"bfloat16"``, ``"float16"`` or
            ``"auto"`` (see :func:`resolve_dtype`). Outputs are float32 whatever the dtype.
        backend: ``"torch"`` (default) or ``"onnx"``: the encoders run in ONNX Runtime
            (:mod:`rnaernie.model.onnx_backend`; CPU, float32, or int8 with ``int8=True``).
    """
    return RnaErnie(name_or_path, device=device, threads=threads, int8=int8, dtype=dtype,
                    backend=backend)  # fmt: skip


DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def _cpu_has_native_bf16() -> bool:
    """AMX tiles or AVX-512 BF16 dot products (torch's private probes; absent in some builds)."""
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        probe = getattr(torch.cpu, name, None)
        try:
            if probe is not None and bool(probe()):
                return True
        except RuntimeError:
            pass
    return False


def resolve_dtype(dtype: str | torch.dtype, device: str | torch.device = "cpu") -> torch.dtype:
    """The inference dtype for a name (``float32``/``fp32``, ``bfloat16``/``bf16``,
    ``float16``/``fp16``, ``auto``) or a torch dtype.

    ``"auto"`` picks bfloat16 where the hardware multiplies it natively (a CPU with AMX tiles or
    AVX-512 BF16, a CUDA GPU that supports bf16), float16 on other CUDA GPUs, and float32
    otherwise.
    """
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype must be float32, bfloat16 or float16, got {dtype}")
        return dtype
    if dtype == "auto":
        dev = torch.device(device)
        if dev.type == "cuda":
            with torch.cuda.device(dev):
                return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if dev.type == "cpu" and _cpu_has_native_bf16() else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)} or 'auto', got {dtype!r}")
    return DTYPES[dtype]


# ----------------------------------------------------------------------------- inputs


def as_records(inputs: Any, ids: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """``(ids, seqs)`` from a list of strings / ``(id, seq)`` pairs / records, or a FASTA path."""
    if isinstance(inputs, (str, os.PathLike)):
        p = Path(inputs)
        if p.is_dir():
            raise ValueError(f"{str(inputs)!r} is a directory, not a FASTA/FASTQ file")
        if not p.is_file() and str(inputs) != "-":
            raise ValueError(
                f"{str(inputs)[:40]!r} is not a file; a single string is read as a FASTA path, "
                "wrap a sequence in a list"
            )
        recs = list(read_fasta(inputs))
        return [r.id for r in recs], [r.seq for r in recs]
    items = list(inputs)
    if items and hasattr(items[0], "seq") and hasattr(items[0], "id"):
        out_ids, seqs = [str(r.id) for r in items], [r.seq for r in items]
    elif items and isinstance(items[0], tuple):
        if any(len(x) != 2 for x in items):
            raise ValueError("(id, sequence) pairs must all have two items")
        out_ids, seqs = [str(a) for a, _ in items], [b for _, b in items]
    else:
        out_ids, seqs = [f"seq{i}" for i in range(len(items))], items
    for k, s in enumerate(seqs):  # None is not the text "None"
        if not isinstance(s, str):
            raise ValueError(f"sequence {k} ({out_ids[k]!r}): expected str, got {type(s).__name__}")
    if ids is not None:
        if len(ids) != len(seqs):
            raise ValueError(f"got {len(ids)} ids for {len(seqs)} sequences")
        out_ids = [str(i) for i in ids]
    return out_ids, seqs


# ----------------------------------------------------------------------------- the model


class RnaErnie:
    """An RNAErnie model for inference; see the module docstring. Build with :func:`load`."""

    def __init__(
        self,
        name_or_path: str | os.PathLike[str] = "rnaernie-tiny",
        *,
        device: str | torch.device = "cpu",
        threads: int | None = None,
        int8: bool = False,
        dtype: str | torch.dtype = "float32",
        backend: str = "torch",
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.backend = backend
        self.path = resolve_model_dir(name_or_path)
        if str(device) == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if backend == "onnx":
            if self.device.type != "cpu":
                raise ValueError("backend 'onnx' runs on the CPU only (device='cpu')")
            if dtype == "auto":  # ONNX graphs are float32 (or int8)
                dtype = "float32"
        if int8 and self.device.type != "cpu":
            raise ValueError("int8 quantisation is for CPU inference only")
        if int8 and dtype == "auto":  # int8 quantisation runs in float32
            dtype = "float32"
        self.dtype = resolve_dtype(dtype, self.device)
        if int8 and self.dtype != torch.float32:
            raise ValueError(f"int8 quantisation needs dtype float32, got {self.dtype}")
        if threads is not None:
            if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
                raise ValueError(f"threads must be a non-negative int, got {threads!r}")
            if threads:
                torch.set_num_threads(threads)
        self.int8 = bool(int8)
        self.tokenizer = Tokenizer(max_length=MAX_NT + 2, threads=int(threads or 0))
        self.pretraining = self._load_model(RnaErnieForPreTraining, self.path)
        self.config = self.pretraining.config
        self._heads: dict[str, tuple[Any, list[str] | None]] = {}
        self._kmer_heads: dict[str, KmerClassifier | None] = {}
        self._detectors: dict[tuple, Detector] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        c = self.config
        return (
            f"RnaErnie({str(self.path)!r}, {c.num_hidden_layers}x{c.hidden_size}, "
            f"device={self.device}, dtype={str(self.dtype).removeprefix('torch.')}, "
            f"{'backend=onnx, ' if self.backend == 'onnx' else ''}"
            f"heads={self.available_heads()})"
        )

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)

    def available_heads(self) -> list[str]:
        return [h for h in HEADS if (self.path / "heads" / h / "model.safetensors").is_file()]

    def _load_model(self, cls: type, path: Path) -> Any:
        onnx = self.backend == "onnx"
        model = cls.from_pretrained(path, int8=self.int8 and not onnx, hidden_dropout=0.0,
                                    attention_dropout=0.0)  # fmt: skip
        return self._with_backend(model.to(self.device, self.dtype).eval())

    def _with_backend(self, model: Any) -> Any:
        """``model`` with its encoder (``.ernie``) in ONNX Runtime when the backend is onnx."""
        if self.backend == "onnx":
            from .model.onnx_backend import OnnxEncoder

            if self.dtype != torch.float32:
                raise ValueError(f"backend 'onnx' needs dtype float32, got {self.dtype}")
            model.ernie = OnnxEncoder(model.ernie, int8=self.int8)
        return model

    def _head(self, name: str) -> tuple[Any, list[str] | None]:
        with self._lock:
            if name not in self._heads:
                d = self.path / "heads" / name
                if not (d / "model.safetensors").is_file():
                    raise ValueError(
                        f"the model at {str(self.path)!r} has no {name} head "
                        f"(expected {d / 'model.safetensors'}); available heads: "
                        f"{', '.join(self.available_heads()) or 'none'}"
                    )
                model = self._load_model(HEADS[name], d)
                labels = None
                if (d / "labels.json").is_file():
                    labels = [str(x) for x in json.loads((d / "labels.json").read_text())]
                    if len(labels) != model.config.num_labels:
                        raise ValueError(
                            f"{d / 'labels.json'} has {len(labels)} labels but the head has "
                            f"{model.config.num_labels} outputs"
                        )
                self._heads[name] = (model, labels)
            return self._heads[name]

    def _kmer_head(self, name: str) -> KmerClassifier | None:
        """The k-mer classifier stored beside head ``name``, or None."""
        with self._lock:
            if name not in self._kmer_heads:
                f = self.path / "heads" / name / KMER_FILE
                self._kmer_heads[name] = KmerClassifier.load(f) if f.is_file() else None
            return self._kmer_heads[name]

    def _indicator(self, model: Any) -> Any:
        """The pretraining model, for a head fine-tuned with type guidance; else None."""
        return self.pretraining if model.config.extra.get("type_guided", False) else None

    # -- embeddings

    def embed(
        self,
        seqs: Any,
        pooling: str = "mean",
        batch_tokens: int = 8192,
        *,
        ids: Sequence[str] | None = None,
    ) -> np.ndarray | list[np.ndarray]:
        """Sequence embeddings from the final encoder layer.

        Args:
            seqs: sequences, ``(id, seq)`` pairs or a FASTA path.
            pooling: ``"mean"`` (over all real tokens, [CLS]/[SEP] included), ``"cls"``, or
                ``"none"`` (per-nucleotide states, [CLS]/[SEP] dropped).
            batch_tokens: padded tokens per forward pass.

        Returns:
            (N, H) float32, or for ``"none"`` a list of N (L_i, H) float32 arrays. Sequences over
            510 nt: the mean over windows (pooled) or over the windows covering each nucleotide.
        """
        _positive("batch_tokens", batch_tokens)
        names, seqs = as_records(seqs, ids)
        return predict.embed_windows(self.pretraining, self.tokenizer, names, seqs,
                                     pooling=pooling, batch_tokens=batch_tokens)  # fmt: skip

    # -- RNA type (pretraining head)

    def predict_type(
        self,
        seqs: Any,
        top_k: int = 3,
        batch_tokens: int = 8192,
        *,
        method: str = "mlm",
        ids: Sequence[str] | None = None,
    ) -> list[TypePrediction]:
        """Top-k of the 28 RNA types per sequence.

        ``method="mlm"`` (default) lets the MLM head fill an open type slot
        (``[CLS] seq [IND] [MASK] [SEP]``), restricted to type tokens — the indicator of type-guided
        fine-tuning, and the more accurate of the two on held-out data (MODEL_CARD.md);
        ``method="head"`` uses the type head on the pooled [CLS].
        Long sequences: the maximum over windows of each type's probability, renormalised.
        """
        _positive("top_k", top_k)
        _positive("batch_tokens", batch_tokens)
        names, seqs = as_records(seqs, ids)
        if not seqs:
            return []
        probs = predict.type_probs(self.pretraining, seqs, names=names, tokenizer=self.tokenizer,
                                   method=method, batch_tokens=batch_tokens)  # fmt: skip
        return [predict.type_prediction(names[i], probs[i], top_k) for i in range(len(seqs))]

    # -- classification head

    def classify(
        self,
        seqs: Any,
        top_k: int = 1,
        batch_tokens: int = 8192,
        *,
        with_type: bool = True,
        ids: Sequence[str] | None = None,
        head: str = "nrc",
        kmer: bool = True,
    ) -> list[Classification]:
        """Top-k labels of a classifier head (softmax, averaged over windows), plus the RNA type
        (top 1) that the pretraining model's MLM head puts in the open type slot, when
        ``with_type``. A head trained with type guidance predicts type-guided
        (:func:`rnaernie.predict.classifier_probs`).

        ``head``: ``"nrc"`` (13 ncRNA families, the default) or ``"lncrna"`` (lncRNA vs mRNA).
        ``kmer``: when the head carries a k-mer classifier (``kmer_logreg.safetensors``, see
        :mod:`rnaernie.kmer`; the shipped nRC head does), the probabilities are the renormalised
        product of the model's and the k-mer classifier's (more accurate on nRC: see
        docs/results.md); ``kmer=False`` gives the model's alone.
        """
        if head not in CLASSIFIER_HEADS:
            raise ValueError(f"head must be one of {', '.join(CLASSIFIER_HEADS)}, not {head!r}")
        _positive("top_k", top_k)
        _positive("batch_tokens", batch_tokens)
        names, seqs = as_records(seqs, ids)
        model, labels = self._head(head)
        if not seqs:
            return []
        labels = labels or [str(k) for k in range(model.config.num_labels)]
        indicator = self._indicator(model)
        types = (
            predict.type_probs(
                self.pretraining,
                seqs,
                names=names,
                tokenizer=self.tokenizer,
                batch_tokens=batch_tokens,
            )
            if (with_type or indicator is not None)
            else None
        )
        probs = predict.classifier_probs(model, seqs, indicator=indicator, tprobs=types,
                                         names=names, tokenizer=self.tokenizer,
                                         batch_tokens=batch_tokens)  # fmt: skip
        expert = self._kmer_head(head) if kmer else None
        if expert is not None:
            if expert.labels != labels:
                raise ValueError(
                    f"the {head} head's {KMER_FILE} has labels {expert.labels}, the head {labels}"
                )
            probs = combine_experts(probs, expert.predict_proba(seqs, names=names))
        k = min(int(top_k), len(labels))
        out = []
        for i in range(len(seqs)):
            order = np.argsort(-probs[i], kind="stable")[:k]
            tp = predict.type_prediction(names[i], types[i], 1) if with_type else None
            out.append(Classification(names[i], tuple(labels[j] for j in order),
                                      tuple(float(probs[i, j]) for j in order), tp))  # fmt: skip
        return out

    # -- structure head

    def pair_logits(
        self,
        seqs: Any,
        batch_tokens: int = 4096,
        *,
        ids: Sequence[str] | None = None,
        max_length: int = FOLD_MAX_NT,
    ) -> list[np.ndarray]:
        """The structure head's (L, L) float32 pair logits per sequence, as :meth:`fold` decodes
        them (windows over 510 nt, see there), for other decoders or for ensembling."""
        _positive("batch_tokens", batch_tokens)
        names, seqs = as_records(seqs, ids)
        model, _ = self._head("structure")
        _check_fold_lengths(names, seqs, max_length)
        return predict.pair_logits(model, seqs, indicator=self._indicator(model), names=names,
                                   tokenizer=self.tokenizer, batch_tokens=batch_tokens)  # fmt: skip

    def fold(
        self,
        seqs: Any,
        threshold: float | None = None,
        decoder: str | None = None,
        batch_tokens: int = 4096,
        *,
        canonical_only: bool = True,
        min_loop: int = 3,
        return_probs: bool = False,
        no_lonely_pairs: bool | None = None,
        max_length: int = FOLD_MAX_NT,
        prior: str | None = None,
        prior_weight: float | None = None,
        ids: Sequence[str] | None = None,
        gamma: float | None = None,
    ) -> list[Folded]:
        """Secondary structures from the ``heads/structure`` pair logits.

        Args:
            threshold: pairs need a logit above it (default: the head's, chosen on a validation
                set at fine-tuning time (its config's ``decode`` entry); else 0.0, probability 0.5).
            decoder: ``"nussinov"`` (best nested structure, C++ DP), ``"greedy"`` (mutual best
                partners, pseudoknots allowed), ``"mea"`` (maximum expected accuracy over the
                pair probabilities, ``gamma`` default 1) or ``"threshknot"`` (mutual best
                partners with probability ≥ ``threshold``, default 0.3; pseudoknots allowed); see
                :class:`rnaernie.structure.DecodeOptions`. The probabilities are the sigmoid of
                the (prior-combined) logits. Default: the decoder chosen on the validation set
                with the prior (``"nussinov"`` without one).
            batch_tokens: budget of rows × padded length (the pair tensors grow as L², so rows
                per batch are further capped at ``batch_tokens * 16 / L²``, L the batch's
                longest).
            return_probs: also return the (L, L) sigmoid pair probabilities (and with
                ``prior="bpp"`` ViennaRNA's base-pair probabilities, ``Folded.bpp``).
            no_lonely_pairs: forbid isolated pairs (no stacked neighbour), as RNAfold's ``--noLP``
                (default: the head's, chosen on the validation set with the threshold; else
                False). Nested and MEA decoders only.
            max_length: longest sequence accepted (``ValueError`` naming the sequence beyond it):
                decoding takes O(L³) time and the pair matrix O(L²) memory.
            prior: a thermodynamic prior from ViennaRNA (:mod:`rnaernie.structure.prior`; needs
                ``viennarna``). ``"rnafold"`` adds ``prior_weight`` to the logits of the pairs of
                the MFE structure (weight and decoder settings: the head's ``prior_rnafold``
                entry, else 2.0 and the head's decoder settings). ``"bpp"`` fuses the logits with
                the base-pair probabilities of the partition function (the head's ``prior_bpp``
                entry: a logistic regression and its decoder, chosen on the validation set).

        The head's threshold and lonely-pair defaults were chosen for its default decoder; another
        ``decoder`` starts from 0.0 (probability 0.5; 0.3 for threshknot) and γ = 1. Sequences are
        processed in groups of bounded ``sum(L²)``, so memory does not grow with the input.

        Sequences over 510 nt are read in windows of 510 nt every 255 nt (508/254 for a
        type-guided head); a pair gets the mean logit of the windows holding both bases, so pairs
        that no window holds (over about 255 to 510 nt apart) are never predicted.
        """
        if decoder is not None and decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        _positive("batch_tokens", batch_tokens)
        if prior is not None and prior not in PRIORS:
            raise ValueError(f"prior must be None or one of {PRIORS}, got {prior!r}")
        if prior is not None:
            rnafold_pairs([])  # a missing ViennaRNA fails here, before any model work
        if prior_weight is not None and not (
            isinstance(prior_weight, (int, float)) and math.isfinite(prior_weight)
        ):
            raise ValueError(f"prior_weight must be a finite number, got {prior_weight!r}")
        if prior_weight is not None and prior != "rnafold":
            raise ValueError("prior_weight is a setting of prior='rnafold'")

        names, seqs = as_records(seqs, ids)
        model, _ = self._head("structure")
        extra = model.config.extra
        fusion = None
        if prior == "bpp":
            if "prior_bpp" not in extra:
                raise ValueError(
                    "this structure head has no fitted base-pair-probability fusion (its config "
                    "lacks 'prior_bpp'; scripts/structure_fusion.py --write-head fits one on bpRNA VL0)"
                )
            fusion = Fusion.from_dict(extra["prior_bpp"])
            head_options = DecodeOptions.from_dict(fusion.decode)
        else:  # the head's settings, chosen on validation data (with the MFE prior if given)
            head_options = predict.head_decode_options(extra, prior)
        if decoder is None or DECODERS[decoder] == head_options.method:
            options = head_options
        else:
            options = DecodeOptions(method=DECODERS[decoder],
                                    threshold=0.3 if decoder == "threshknot" else 0.0)  # fmt: skip
        if gamma is not None and options.method != "mea":
            raise ValueError("gamma is a setting of decoder='mea'")
        given = {"threshold": threshold, "no_lonely_pairs": no_lonely_pairs, "gamma": gamma}
        options = options.replace(canonical_only=canonical_only, min_loop=min_loop,
                                  **{k: v for k, v in given.items() if v is not None})  # fmt: skip
        if prior == "rnafold" and prior_weight is None:
            prior_weight = float(extra.get("prior_rnafold", {}).get("weight", 2.0))
        if not seqs:
            return []
        _check_fold_lengths(names, seqs, max_length)
        norm = [normalise(s) for s in seqs]
        out: list[Folded] = []
        procs = torch.get_num_threads()
        for grp in _groups_by_area([len(s) for s in norm], FOLD_AREA):  # bounded L x L memory
            mats = predict.pair_logits(model, [seqs[i] for i in grp], names=[names[i] for i in grp],
                                       indicator=self._indicator(model), tokenizer=self.tokenizer,
                                       batch_tokens=batch_tokens)  # fmt: skip
            parts = [None] * len(grp)
            if prior == "rnafold":
                mfe = rnafold_pairs([norm[i] for i in grp], processes=procs)
                mats = [add_pair_bonus(m, p, prior_weight) for m, p in zip(mats, mfe)]
            elif fusion is not None:
                parts = vienna_partition([norm[i] for i in grp], processes=procs)
                mats = [fusion(norm[i], m, p) for i, m, p in zip(grp, mats, parts)]
            res = decode_batch([norm[i] for i in grp], decoder_inputs(mats, options), options,
                               num_threads=max(1, procs))  # fmt: skip
            for i, m, r, part in zip(grp, mats, res, parts):
                probs = bpp = None
                if return_probs:
                    probs = pair_probabilities(m)
                    bpp = None if part is None else part.dense()
                out.append(Folded(names[i], norm[i], r.pairs, r.dot_bracket, r.score, probs, bpp))
        return out

    # -- interaction head

    def interact(
        self,
        pairs: Iterable[tuple[str, str]] | Iterable[tuple[str, str, str]],
        batch_size: int = 64,
    ) -> list[Interaction]:
        """Score (miRNA, target) pairs with ``heads/interaction`` (two-tower head, 2 classes).

        ``pairs``: ``(a, b)`` or ``(id, a, b)`` tuples, the miRNA ``a`` written 5'→3' (the shipped
        head was trained so; MirTarRAW's file stores it reversed, see :mod:`rnaernie.training.interaction`).
        Each sequence is cut to 508 nt. A head fine-tuned with type guidance runs type-guided.
        """
        items = list(pairs)
        _positive("batch_size", batch_size)
        model, labels = self._head("interaction")
        if not items:
            return []
        if model.config.num_labels != 2:
            raise ValueError(
                f"the interaction head has {model.config.num_labels} outputs; interact needs 2 "
                "(no interaction, interaction)"
            )
        widths = {len(x) for x in items}
        if len(widths) != 1 or widths - {2, 3}:
            raise ValueError("pairs must all be (a, b) or all be (id, a, b) tuples")
        if len(items[0]) == 3:
            names, a, b = (list(x) for x in zip(*items))
        else:
            names = [f"pair{i}" for i in range(len(items))]
            a, b = (list(x) for x in zip(*items))
        for side, seqs in (("miRNA", a), ("target", b)):  # clear errors before any model runs
            bad = [i for i, x in enumerate(seqs) if not isinstance(x, str) or not x.strip()]
            if bad:
                raise ValueError(
                    f"pair {bad[0]} ({names[bad[0]]!r}): {side} is empty or not a string"
                )
            self.tokenizer.encode_batch(seqs, names=names, truncate=True)
        probs = predict.interaction_probs(model, a, b, indicator=self._indicator(model),
                                          batch_size=batch_size)  # fmt: skip
        lab = labels or ["0", "1"]
        out: list[Interaction] = []
        for name, row in zip(names, probs):
            k = int(np.argmax(row))
            out.append(Interaction(name, lab[k], float(row[k]), tuple(map(float, row))))
        return out

    # -- screening

    def detector(self, scorer: str | None = None,
                 families: Sequence[str] | str | None = None) -> Detector:  # fmt: skip
        """The screening detector (``heads/screen``; see :mod:`rnaernie.screen`) with that
        scorer, searching ``families`` (default: all), loaded once."""
        key = (scorer, None if families is None else
               families if isinstance(families, str) else tuple(families))  # fmt: skip
        with self._lock:
            if key not in self._detectors:
                det = Detector.from_model(self, scorer=scorer, families=families)
                det.model = self._with_backend(det.model)
                self._detectors[key] = det
            return self._detectors[key]

    def screen(
        self,
        seqs: Any,
        evalue: float = 0.01,
        *,
        window: int | None = None,
        stride: int | None = None,
        strands: str = "both",
        megabases: float | None = None,
        scorer: str | None = None,
        families: Sequence[str] | str | None = None,
        batch_tokens: int = 8192,
        ids: Sequence[str] | None = None,
        soft_masked: bool = False,
    ) -> list[Locus]:
        """RNA genes in genomic sequences: loci with E-value ≤ ``evalue`` on both strands
        (:func:`rnaernie.screen.detect`; 0-based, end-exclusive forward-strand coordinates).
        ``megabases`` searched for the E-values defaults to the input's length × 2 (both strands).
        ``scorer``: ``"fused"`` (the default: alignment to the detector's library of family
        members + the scanning CNN), ``"homology"``, ``"cnn"``, ``"model"`` or ``"kmer"``
        (:data:`rnaernie.screen.SCORERS`). ``families``: search only these (names as
        :meth:`classify` gives them, e.g. ``["tRNA"]``), as ``cmsearch`` with their models would.
        ``soft_masked``: lower-case letters (a soft-masked genome's repeats) start no seed of the
        homology search (the ``fused`` and ``homology`` scorers).
        """
        _positive("batch_tokens", batch_tokens)
        names, seqs = as_records(seqs, ids)
        return detect(self.detector(scorer, families), [Record(n, s) for n, s in zip(names, seqs)],
                      evalue=evalue, window=window, stride=stride, strands=strands,
                      batch_tokens=batch_tokens, megabases=megabases,
                      soft_masked=soft_masked)  # fmt: skip


def _groups_by_area(lengths: Sequence[int], area: int) -> list[list[int]]:
    """Consecutive indices in groups whose ``sum(L²)`` stays within ``area`` (a longer single
    sequence forms its own group)."""
    groups: list[list[int]] = []
    cur: list[int] = []
    used = 0
    for i, n in enumerate(lengths):
        if cur and used + n * n > area:
            groups.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += n * n
    if cur:
        groups.append(cur)
    return groups


def _positive(name: str, value: Any) -> None:
    """The API's rule for counts (the CLI's ``positive_int`` is the same): an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_fold_lengths(names: list[str], seqs: list[str], max_length: int) -> None:
    _positive("max_length", max_length)
    for i, n in enumerate(len(normalise(s)) for s in seqs):
        if n > max_length:
            raise ValueError(
                f"sequence {i} ({names[i]!r}) has {n} nt; fold handles at most "
                f"{max_length} (decoding is cubic in length: raise max_length, or cut the "
                "sequence into windows, e.g. with `rnaernie screen --tasks structure`)"
            )
