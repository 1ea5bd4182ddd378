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
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .finetune import top_types
from .inference import embed_batches, length_buckets, stitch_pair_windows
from .kmer import KMER_FILE, KmerClassifier, combine_experts
from .tokenizer import Encoding, Tokenizer
from .vocab import NUM_TYPES, RNA_TYPES, TYPE_OFFSET

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

MODEL_NAMES = ("rnaernie-tiny",)
MAX_NT = 510  # 512 positions minus [CLS] and [SEP]
FOLD_MAX_NT = 4000  # fold's default length limit: the cubic decoder takes about a second there
FOLD_AREA = 1 << 25  # fold works on groups of sequences with sum(L²) ≤ this (128 MB of fp32 logits)
WINDOW, WINDOW_STRIDE = 510, 255
HEADS = ("nrc", "lncrna", "structure", "interaction")
CLASSIFIER_HEADS = ("nrc", "lncrna")  # sequence classifiers that classify(head=...) can use
_NORMALISE = str.maketrans("acgutT", "ACGUUU")


def resolve_model_dir(name_or_path: str | os.PathLike[str]) -> Path:
    """A shipped model name (``rnaernie-tiny``) → its package directory; anything else is a path."""
    if str(name_or_path) in MODEL_NAMES:
        p = Path(str(resources.files("rnaernie").joinpath("data", "models", str(name_or_path))))
        if not (p / "model.safetensors").is_file():
            raise ValueError(
                f"the shipped model {name_or_path!r} is not installed ({p} has no model.safetensors)"
            )
        return p
    p = Path(name_or_path).expanduser()
    if not p.is_dir():
        raise ValueError(
            f"model {str(name_or_path)!r} is neither a shipped name ({', '.join(MODEL_NAMES)}) "
            "nor an existing directory"
        )
    if not (p / "model.safetensors").is_file():
        raise ValueError(f"model directory {str(p)!r} has no model.safetensors")
    return p


def load(
    name_or_path: str | os.PathLike[str] = "rnaernie-tiny",
    device: str | torch.device = "cpu",
    threads: int | None = None,
    int8: bool = False,
    dtype: str | torch.dtype = "float32",
) -> RnaErnie:
    """Load a model directory (or a shipped name) for inference.

    Args:
        name_or_path: ``"rnaernie-tiny"`` or a local directory (ours or multimolecule's).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, … (``"auto"``: CUDA when available).
        threads: CPU threads for torch (a process-wide setting, applied once here) and the tokenizer.
        int8: dynamic int8 quantisation of the Linear layers (CPU only).
        dtype: weights and activations: ``"float32"`` (default), ``"bfloat16"``, ``"float16"`` or
            ``"auto"`` (see :func:`resolve_dtype`). Outputs are float32 whatever the dtype.
    """
    return RnaErnie(name_or_path, device=device, threads=threads, int8=int8, dtype=dtype)


DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def _cpu_has_amx_bf16() -> bool:
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private; absent in some builds
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def resolve_dtype(dtype: str | torch.dtype, device: str | torch.device = "cpu") -> torch.dtype:
    """The inference dtype for a name (``float32``/``fp32``, ``bfloat16``/``bf16``,
    ``float16``/``fp16``, ``auto``) or a torch dtype.

    ``"auto"`` picks bfloat16 where the hardware multiplies it natively (a CPU with AMX tiles, a
    CUDA GPU that supports bf16), float16 on other CUDA GPUs, and float32 otherwise.
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
        return torch.bfloat16 if dev.type == "cpu" and _cpu_has_amx_bf16() else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)} or 'auto', got {dtype!r}")
    return DTYPES[dtype]


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TypePrediction:
    """Top-k RNA types of one sequence: ``types`` and ``probabilities`` (descending)."""

    id: str
    types: tuple[str, ...]
    probabilities: tuple[float, ...]

    @property
    def type(self) -> str:
        return self.types[0]

    @property
    def probability(self) -> float:
        return self.probabilities[0]


@dataclass(frozen=True)
class Classification:
    """Top-k labels of the classification head, plus the pretraining head's RNA type."""

    id: str
    labels: tuple[str, ...]
    probabilities: tuple[float, ...]
    rna_type: TypePrediction | None = None

    @property
    def label(self) -> str:
        return self.labels[0]

    @property
    def probability(self) -> float:
        return self.probabilities[0]


@dataclass(frozen=True)
class Folded:
    """A predicted structure: ``pairs`` (n, 2) int64 0-based i < j, ``dot_bracket``, decoder
    ``score``; ``probs`` (L, L) float32 pair probabilities when asked for."""

    id: str
    sequence: str
    pairs: np.ndarray
    dot_bracket: str
    score: float
    probs: np.ndarray | None = field(default=None, repr=False)

    @property
    def num_pairs(self) -> int:
        return int(self.pairs.shape[0])


@dataclass(frozen=True)
class Interaction:
    """Interaction head output for one pair: top label, its probability, all probabilities."""

    id: str
    label: str
    probability: float
    probabilities: tuple[float, ...]


# ----------------------------------------------------------------------------- inputs


def as_records(inputs: Any, ids: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """``(ids, seqs)`` from a list of strings / ``(id, seq)`` pairs / records, or a FASTA path."""
    if isinstance(inputs, (str, os.PathLike)):
        p = Path(inputs)
        if not p.is_file() and str(inputs) != "-":
            raise ValueError(
                f"{str(inputs)[:40]!r} is not a file; a single string is read as a FASTA path, "
                "wrap a sequence in a list"
            )
        from .io import read_fasta

        recs = list(read_fasta(inputs))
        return [r.id for r in recs], [r.seq for r in recs]
    items = list(inputs)
    if items and hasattr(items[0], "seq") and hasattr(items[0], "id"):
        out_ids, seqs = [str(r.id) for r in items], [str(r.seq) for r in items]
    elif items and isinstance(items[0], tuple):
        out_ids, seqs = [str(a) for a, _ in items], [str(b) for _, b in items]
    else:
        for k, s in enumerate(items):
            if not isinstance(s, str):
                raise ValueError(f"sequence {k}: expected str, got {type(s).__name__}")
        out_ids, seqs = [f"seq{i}" for i in range(len(items))], items
    if ids is not None:
        if len(ids) != len(seqs):
            raise ValueError(f"got {len(ids)} ids for {len(seqs)} sequences")
        out_ids = [str(i) for i in ids]
    return out_ids, seqs


def normalise(seq: str) -> str:
    """Upper-case, ``T``→``U``, whitespace removed (the tokenizer's normalisation)."""
    return "".join(seq.split()).translate(_NORMALISE).upper()


def reverse_complement(seq: str) -> str:
    """RNA reverse complement (``T`` read as ``U``; other letters become ``N``)."""
    s = normalise(seq)
    return "".join("ACGU"["UGCA".index(c)] if c in "ACGU" else "N" for c in reversed(s))


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
    ) -> None:
        from .heads import RnaErnieForPreTraining

        self.path = resolve_model_dir(name_or_path)
        if str(device) == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if int8 and self.device.type != "cpu":
            raise ValueError("int8 quantisation is for CPU inference only")
        if int8 and dtype == "auto":  # int8 quantisation runs in float32
            dtype = "float32"
        self.dtype = resolve_dtype(dtype, self.device)
        if int8 and self.dtype != torch.float32:
            raise ValueError(f"int8 quantisation needs dtype float32, got {self.dtype}")
        if threads:
            torch.set_num_threads(int(threads))
        self.int8 = bool(int8)
        self.tokenizer = Tokenizer(max_length=MAX_NT + 2, threads=int(threads or 0))
        self.pretraining = self._load_model(RnaErnieForPreTraining, self.path)
        self.config = self.pretraining.config
        self._heads: dict[str, tuple[Any, list[str] | None]] = {}
        self._kmer_heads: dict[str, KmerClassifier | None] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        c = self.config
        return (
            f"RnaErnie({str(self.path)!r}, {c.num_hidden_layers}x{c.hidden_size}, "
            f"device={self.device}, dtype={str(self.dtype).removeprefix('torch.')}, "
            f"heads={self.available_heads()})"
        )

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)

    def available_heads(self) -> list[str]:
        return [h for h in HEADS if (self.path / "heads" / h / "model.safetensors").is_file()]

    def _load_model(self, cls: type, path: Path) -> Any:
        model = cls.from_pretrained(path, int8=self.int8, hidden_dropout=0.0, attention_dropout=0.0)
        return model.to(self.device, self.dtype).eval()

    def _head(self, name: str, cls_name: str) -> tuple[Any, list[str] | None]:
        with self._lock:
            if name not in self._heads:
                from . import heads

                d = self.path / "heads" / name
                if not (d / "model.safetensors").is_file():
                    raise ValueError(
                        f"the model at {str(self.path)!r} has no {name} head "
                        f"(expected {d / 'model.safetensors'}); available heads: "
                        f"{', '.join(self.available_heads()) or 'none'}"
                    )
                model = self._load_model(getattr(heads, cls_name), d)
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

    # -- shared machinery

    def _encode(self, ids: list[str], seqs: list[str], *, window: bool, types=None) -> Encoding:
        reserve = 2 if types is not None else 0  # [IND] TYPE take two of the 512 positions
        return self.tokenizer.encode_batch(
            seqs,
            names=ids,
            types=types,
            max_length=MAX_NT + 2,
            window=(WINDOW - reserve if window else None),
            stride=(WINDOW_STRIDE - reserve // 2 if window else None),
        )

    def _run_rows(self, model: Any, enc: Encoding, batch_tokens: int, fn) -> list[Any]:
        """Run ``fn(model, ids, mask) -> (b, ...) tensor`` over length buckets; per-row outputs."""
        out: list[Any] = [None] * len(enc)
        ids_all = torch.from_numpy(np.asarray(enc.input_ids, dtype=np.int64))
        lengths = np.asarray(enc.lengths, dtype=np.int64)
        with torch.inference_mode():
            for idx in length_buckets(lengths, batch_tokens):
                lens = torch.from_numpy(lengths[idx])
                L = int(lens.max())
                ids = ids_all[torch.from_numpy(idx), :L].to(self.device)
                mask = (torch.arange(L)[None, :] < lens[:, None]).to(self.device)
                res = fn(model, ids, mask).float().cpu().numpy()
                for j, i in enumerate(idx.tolist()):
                    out[i] = res[j]
        return out

    @staticmethod
    def _mean_over_windows(rows: np.ndarray, seq_index: np.ndarray, n: int) -> np.ndarray:
        """(R, K) per-window values → (n, K) mean per sequence."""
        out = np.zeros((n, rows.shape[1]), dtype=np.float64)
        np.add.at(out, seq_index, rows)
        counts = np.bincount(seq_index, minlength=n).astype(np.float64)
        return (out / np.maximum(counts, 1.0)[:, None]).astype(np.float32)

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
        if pooling not in ("mean", "cls", "none"):
            raise ValueError(f"pooling must be 'mean', 'cls' or 'none', got {pooling!r}")
        names, seqs = as_records(seqs, ids)
        n, H = len(seqs), self.hidden_size
        if n == 0:
            return [] if pooling == "none" else np.zeros((0, H), dtype=np.float32)
        enc = self._encode(names, seqs, window=True)
        rows = embed_batches(
            self.pretraining, enc, pooling=pooling, batch_tokens=batch_tokens, device=self.device
        )
        if pooling != "none":
            return self._mean_over_windows(rows.numpy(), enc.seq_index, n)
        sums = [np.zeros((len(normalise(s)), H), dtype=np.float32) for s in seqs]
        counts = [np.zeros((len(normalise(s)), 1), dtype=np.float32) for s in seqs]
        for r, h in enumerate(rows):
            i, a, b = int(enc.seq_index[r]), int(enc.start[r]), int(enc.end[r])
            sums[i][a:b] += h[1:-1].numpy()
            counts[i][a:b] += 1.0
        return [s / np.maximum(c, 1.0) for s, c in zip(sums, counts)]

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
        if method not in ("head", "mlm"):
            raise ValueError(f"method must be 'head' or 'mlm', got {method!r}")
        names, seqs = as_records(seqs, ids)
        if not seqs:
            return []
        probs = self._type_probs(names, seqs, batch_tokens, method)
        return [_top_types(names[i], probs[i], top_k) for i in range(len(seqs))]

    def _type_probs(self, names, seqs, batch_tokens, method="mlm") -> np.ndarray:
        if method == "head":
            enc = self._encode(names, seqs, window=True)

            def fn(model, ids, mask):
                out = model.ernie(ids, mask)
                return torch.softmax(model.type_head(out.pooler_output).float(), dim=-1)
        else:
            enc = self._encode(names, seqs, window=True, types=["[MASK]"] * len(seqs))

            def fn(model, ids, mask):
                h = model.ernie(ids, mask, return_pooler=False).last_hidden_state
                slot = mask.long().sum(-1) - 2  # [MASK] sits just before [SEP]
                hs = h[torch.arange(h.shape[0], device=h.device), slot]  # (b, C)
                logits = model.mlm_head(hs, model.ernie.embeddings.word_embeddings.weight)
                return torch.softmax(logits[:, TYPE_OFFSET : TYPE_OFFSET + NUM_TYPES].float(), -1)

        rows = np.stack(self._run_rows(self.pretraining, enc, batch_tokens, fn))
        # as the type indicator of type-guided fine-tuning: max over windows, renormalised
        out = np.zeros((len(seqs), rows.shape[1]), np.float32)
        np.maximum.at(out, enc.seq_index, rows)
        return out / out.sum(1, keepdims=True)

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
        """Top-k labels of a classifier head (softmax), plus the RNA type (top 1) that the
        pretraining model's MLM head puts in the open type slot, when ``with_type``. A head trained
        with type guidance predicts type-guided (see :meth:`_classify_type_guided`). Long
        sequences: averaged over windows.

        ``head``: ``"nrc"`` (13 ncRNA families, the default) or ``"lncrna"`` (lncRNA vs mRNA).
        ``kmer``: when the head carries a k-mer classifier (``kmer_logreg.safetensors``, see
        :mod:`rnaernie.kmer`; the shipped nRC head does), the probabilities are the renormalised
        product of the model's and the k-mer classifier's (more accurate on nRC: see the README);
        ``kmer=False`` gives the model's alone.
        """
        if head not in CLASSIFIER_HEADS:
            raise ValueError(f"head must be one of {', '.join(CLASSIFIER_HEADS)}, not {head!r}")
        names, seqs = as_records(seqs, ids)
        model, labels = self._head(head, "RnaErnieForSequenceClassification")
        if not seqs:
            return []
        labels = labels or [str(k) for k in range(model.config.num_labels)]
        guided = bool(model.config.extra.get("type_guided", False))
        # RNA types from the open type slot (held out, more accurate than the [CLS] type head)
        types = (
            self._type_probs(names, seqs, batch_tokens, method="mlm")
            if (with_type or guided)
            else None
        )
        if guided:
            probs = self._classify_type_guided(model, names, seqs, batch_tokens, types)
        else:  # max_windows: set at fine-tuning time, if at all
            enc = self._encode(names, seqs, window=True).spread(
                model.config.extra.get("max_windows")
            )

            def fn(m, ids_, mask):
                return torch.softmax(m(ids_, mask).logits.float(), dim=-1)

            rows = np.stack(self._run_rows(model, enc, batch_tokens, fn))
            probs = self._mean_over_windows(rows, enc.seq_index, len(seqs))
        expert = self._kmer_head(head) if kmer else None
        if expert is not None:
            if expert.labels != labels:
                raise ValueError(
                    f"the {head} head's {KMER_FILE} has labels {expert.labels}, the head {labels}"
                )
            probs = combine_experts(probs, expert.predict_proba(seqs, names=names))
        if not with_type:
            types = None
        out = []
        k = max(1, min(int(top_k), len(labels)))
        for i in range(len(seqs)):
            order = np.argsort(-probs[i], kind="stable")[:k]
            tp = _top_types(names[i], types[i], 1) if types is not None else None
            out.append(
                Classification(
                    names[i],
                    tuple(labels[j] for j in order),
                    tuple(float(probs[i, j]) for j in order),
                    tp,
                )
            )
        return out

    def _classify_type_guided(self, model, names, seqs, batch_tokens, tprobs) -> np.ndarray:
        """Type-guided prediction (a head fine-tuned with ``type_guided``): the pretraining model's
        MLM head fills the open type slot, the top-k types (k = the head's ``top_k``) are kept with
        renormalised probabilities, the classifier runs once per type in the slot, its logits are
        mixed by those probabilities, and the softmax is averaged over windows. Returns (N, C)."""
        k = int(model.config.extra.get("top_k", 3))  # tprobs: (N, 28) open-slot type probabilities
        types, w = top_types(tprobs, k)
        mixed = None  # (R, C) per-window mixed logits; the windows are the same for every type
        for j in range(k):
            enc = self._encode(names, seqs, window=True, types=types[:, j].tolist()).spread(
                model.config.extra.get("max_windows")
            )
            rows = (
                np.stack(
                    self._run_rows(model, enc, batch_tokens, lambda m, i, msk: m(i, msk).logits)
                )
                * w[enc.seq_index, j : j + 1]
            )
            mixed = rows if mixed is None else mixed + rows
        e = np.exp(mixed - mixed.max(1, keepdims=True))
        return self._mean_over_windows(e / e.sum(1, keepdims=True), enc.seq_index, len(seqs))

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
        names, seqs = as_records(seqs, ids)
        model, _ = self._head("structure", "RnaErnieForContactPrediction")
        self._check_fold_lengths(names, seqs, max_length)
        return self._pair_logits(model, names, seqs, batch_tokens) if seqs else []

    @staticmethod
    def _check_fold_lengths(names: list[str], seqs: list[str], max_length: int) -> None:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f"max_length must be a positive int, got {max_length!r}")
        for i, n in enumerate(len(normalise(s)) for s in seqs):
            if n > max_length:
                raise ValueError(
                    f"sequence {i} ({names[i]!r}) has {n} nt; fold handles at most "
                    f"{max_length} (decoding is cubic in length: raise max_length, or cut the "
                    "sequence into windows, e.g. with `rnaernie screen --tasks structure`)"
                )

    def _pair_logits(self, model, names, seqs, batch_tokens: int) -> list[np.ndarray]:
        """(L, L) float32 pair logits per sequence; over 510 nt (508 type-guided), stitched from
        half-overlapping windows (:func:`~rnaernie.inference.stitch_pair_windows`)."""
        guided = bool(model.config.extra.get("type_guided", False))
        if guided:  # the top-k open-slot types, renormalised (as at fine-tuning time)
            k = int(model.config.extra.get("top_k", 3))
            tprobs = self._type_probs(names, seqs, batch_tokens, method="mlm")
            types, w = top_types(tprobs, k)
            w = w.astype(np.float32)
            encs = [
                self._encode(names, seqs, window=True, types=types[:, j].tolist()) for j in range(k)
            ]
        else:
            encs = [self._encode(names, seqs, window=True)]
        e0 = encs[0]
        rows: list[np.ndarray] = [np.zeros((0, 0), np.float32)] * len(e0)
        ids_all = torch.from_numpy(np.stack([np.asarray(e.input_ids, np.int64) for e in encs]))
        lengths = np.asarray(e0.lengths, dtype=np.int64)
        max_rows = max(1, (batch_tokens * 64) // (max(int(lengths.max()), 1) ** 2 * len(encs)))
        with torch.inference_mode():
            for idx in length_buckets(lengths, batch_tokens, max_rows):
                lens = torch.from_numpy(lengths[idx])
                L = int(lens.max())
                ids_ = ids_all[:, torch.from_numpy(idx), :L].to(self.device)  # (K, b, L)
                mask = (torch.arange(L)[None, :] < lens[:, None]).to(self.device)
                if guided:
                    mask = mask.expand(len(encs), -1, -1)
                    tw = torch.from_numpy(w[e0.seq_index[idx]]).to(self.device, self.dtype)
                    logits = model(ids_, mask, type_weights=tw).logits
                else:
                    logits = model(ids_[0], mask).logits
                logits = logits.float().cpu().numpy()  # (b, L-2, L-2)
                for j, r in enumerate(idx.tolist()):
                    n = int(e0.end[r] - e0.start[r])
                    rows[r] = np.ascontiguousarray(logits[j, :n, :n])
        bounds = np.searchsorted(e0.seq_index, np.arange(len(seqs) + 1))  # rows are grouped
        return [
            stitch_pair_windows(len(normalise(s)), e0.start[a:b].tolist(), rows[a:b])
            for s, a, b in zip(seqs, bounds[:-1], bounds[1:])
        ]

    def fold(
        self,
        seqs: Any,
        threshold: float | None = None,
        decoder: str = "nussinov",
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
    ) -> list[Folded]:
        """Secondary structures from the ``heads/structure`` pair logits.

        Args:
            threshold: pairs need a logit above it (default: the head's ``decode_threshold``,
                chosen on a validation set at fine-tuning time; else 0.0, i.e. probability 0.5).
            decoder: ``"nussinov"`` (best nested structure, C++ DP) or ``"greedy"`` (mutual best
                partners, pseudoknots allowed).
            batch_tokens: budget of rows × padded length (the pair tensors grow as L², so rows
                per batch are further capped at ``batch_tokens * 64 / L²``).
            return_probs: also return the (L, L) sigmoid pair probabilities.
            no_lonely_pairs: forbid isolated pairs (no stacked neighbour), as RNAfold's ``--noLP``
                (default: the head's ``decode_no_lonely_pairs``, chosen on the validation set with
                the threshold; else False). Nested decoder only.
            max_length: longest sequence accepted (``ValueError`` naming the sequence beyond it):
                decoding takes O(L³) time and the pair matrix O(L²) memory.
            prior: ``"rnafold"`` adds ``prior_weight`` to the logits of the pairs of ViennaRNA's
                MFE structure before decoding (:mod:`rnaernie.structure.prior`; needs
                ``viennarna``). Weight, threshold and lonely-pair rule default to the head's
                ``prior_rnafold`` entry (chosen on the validation set), else 2.0 and the head's
                decoder settings. ``probs`` are then those of the combined scores.

        The head's threshold and lonely-pair defaults were chosen for the nussinov decoder; with
        ``decoder="greedy"`` the threshold defaults to 0.0 (probability 0.5). Sequences are
        processed in groups of bounded ``sum(L²)``, so memory does not grow with the input.

        Sequences over 510 nt are read in windows of 510 nt every 255 nt (508/254 for a
        type-guided head); a pair gets the mean logit of the windows holding both bases, so pairs
        that no window holds (over about 255 to 510 nt apart) are never predicted.
        """
        if decoder not in ("nussinov", "greedy"):
            raise ValueError(f"decoder must be 'nussinov' or 'greedy', got {decoder!r}")
        if no_lonely_pairs and decoder == "greedy":
            raise ValueError("no_lonely_pairs needs the nussinov decoder")
        from .structure import decode_batch
        from .structure.prior import PRIORS, add_pair_bonus, rnafold_pairs

        if prior is not None and prior not in PRIORS:
            raise ValueError(f"prior must be None or one of {PRIORS}, got {prior!r}")
        if prior is not None:
            rnafold_pairs([])  # a missing ViennaRNA fails here, before any model work
        if prior_weight is not None and not (
            isinstance(prior_weight, (int, float)) and math.isfinite(prior_weight)
        ):
            raise ValueError(f"prior_weight must be a finite number, got {prior_weight!r}")
        if prior_weight is not None and prior is None:
            raise ValueError("prior_weight needs a prior (prior='rnafold')")

        names, seqs = as_records(seqs, ids)
        model, _ = self._head("structure", "RnaErnieForContactPrediction")
        if not seqs:
            return []
        self._check_fold_lengths(names, seqs, max_length)
        norm = [normalise(s) for s in seqs]
        # the head's decoder settings were chosen for the nested decoder; greedy keeps p > 0.5
        extra = model.config.extra if decoder == "nussinov" else {}
        if prior is not None:  # settings chosen with the prior on the validation set
            extra = {**extra, **_prior_settings(extra)}
            if prior_weight is None:
                prior_weight = float(model.config.extra.get("prior_rnafold", {}).get("weight", 2.0))
        if threshold is None:  # the threshold chosen on the validation set at fine-tuning time
            threshold = extra.get("decode_threshold")
        if no_lonely_pairs is None:  # chosen with it
            no_lonely_pairs = bool(extra.get("decode_no_lonely_pairs", False))
        out: list[Folded] = []
        for grp in _groups_by_area([len(s) for s in norm], FOLD_AREA):  # bounded L x L memory
            mats = self._pair_logits(model, [names[i] for i in grp], [seqs[i] for i in grp],
                                     batch_tokens)  # fmt: skip
            if prior is not None:
                mfe = rnafold_pairs([norm[i] for i in grp], processes=torch.get_num_threads())
                mats = [add_pair_bonus(m, p, prior_weight) for m, p in zip(mats, mfe)]
            res = decode_batch(
                [norm[i] for i in grp],
                mats,
                threshold=threshold,
                canonical_only=canonical_only,
                min_loop=min_loop,
                no_lonely_pairs=no_lonely_pairs,
                method="nested" if decoder == "nussinov" else "greedy",
                num_threads=max(1, torch.get_num_threads()),
            )
            for i, m, r in zip(grp, mats, res):
                probs = torch.sigmoid(torch.from_numpy(m)).numpy() if return_probs else None
                out.append(Folded(names[i], norm[i], r.pairs, r.dot_bracket, r.score, probs))
        return out

    # -- interaction head

    def interact(
        self,
        pairs: Iterable[tuple[str, str]] | Iterable[tuple[str, str, str]],
        batch_size: int = 64,
    ) -> list[Interaction]:
        """Score (miRNA, target) pairs with ``heads/interaction`` (two-tower head, 2 classes).

        ``pairs``: ``(a, b)`` or ``(id, a, b)`` tuples, the miRNA ``a`` written 5'→3' (the shipped
        head was trained so; MirTarRAW's file stores it reversed, see :mod:`rnaernie.interaction`).
        Each sequence is cut to 508 nt. A head fine-tuned with type guidance runs type-guided.
        """
        items = list(pairs)
        model, labels = self._head("interaction", "RnaErnieForInteraction")
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
            bad = [i for i, x in enumerate(seqs) if not isinstance(x, str)]
            if bad:
                raise ValueError(f"pair {bad[0]} ({names[bad[0]]!r}): {side} is not a string")
            self.tokenizer.encode_batch(seqs, names=names, truncate=True)
        from .finetune import TypeIndicator
        from .interaction import InteractionData, predict_interaction

        guided = bool(model.config.extra.get("type_guided", False))
        probs = predict_interaction(
            model,
            InteractionData(names, a, names, b, np.zeros(len(items), np.int64)),
            indicator=TypeIndicator(self.pretraining, device=self.device) if guided else None,
            top_k=int(model.config.extra.get("top_k", 3)),
            batch_size=batch_size,
            device=str(self.device),
        )
        lab = labels or ["0", "1"]
        out: list[Interaction] = []
        for name, row in zip(names, probs):
            k = int(np.argmax(row))
            out.append(Interaction(name, lab[k], float(row[k]), tuple(map(float, row))))
        return out


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


def _prior_settings(extra: dict) -> dict:
    """The decoder settings of a head config's ``prior_rnafold`` entry, as ``decode_*`` keys."""
    p = extra.get("prior_rnafold") or {}
    keys = {"threshold": "decode_threshold", "no_lonely_pairs": "decode_no_lonely_pairs"}
    return {keys[k]: v for k, v in p.items() if k in keys}


def _top_types(name: str, probs: np.ndarray, top_k: int) -> TypePrediction:
    k = max(1, min(int(top_k), NUM_TYPES))
    order = np.argsort(-probs, kind="stable")[:k]
    return TypePrediction(
        name, tuple(RNA_TYPES[j] for j in order), tuple(float(probs[j]) for j in order)
    )
