"""The one prediction path: every caller — the API, the command line, screening, evaluation and
fine-tuning's own scoring — runs models through these functions.

What lives here: batching by length (:func:`length_buckets`), windows over long sequences and
their stitching, type guidance (the pretraining model fills an open type slot; a guided head runs
once per kept type), and the per-task predictions on in-memory models: :func:`embed_windows`,
:func:`type_probs`, :func:`classifier_probs`, :func:`pair_logits`, :func:`interaction_probs`. The
result types the API returns are defined here too.

Windows: sequences longer than 510 nucleotides (508 when the type slot takes two positions) are
read in windows of that length every half window, the last one aligned to the sequence end.
Pooled outputs are averaged over windows; type probabilities take the maximum over windows,
renormalised; pair logits are averaged over the windows holding both bases.

Example:
    >>> from rnaernie.model import RnaErnieConfig, RnaErnieModel
    >>> model = RnaErnieModel(RnaErnieConfig.preset("tiny")).eval()
    >>> embed_batches(model, ["ACGUACGU", "GGGAAACCC", "AUG"], pooling="mean").shape
    torch.Size([3, 256])
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .structure import DecodeOptions
from .tokenizer import Encoding, Tokenizer
from .vocab import MASK_ID, NUM_TYPES, PAD_ID, RNA_TYPES, TYPE_OFFSET

__all__ = [
    "MAX_NT",
    "PAIR_FILL",
    "POOLINGS",
    "Classification",
    "Folded",
    "Interaction",
    "TypePrediction",
    "Typing",
    "classifier_probs",
    "embed_batches",
    "embed_packed",
    "embed_windows",
    "encode_windows",
    "guidance",
    "head_decode_options",
    "interaction_probs",
    "length_buckets",
    "pair_logits",
    "stitch_pair_windows",
    "top_types",
    "type_prediction",
    "type_probs",
]

MAX_NT = 510  # 512 positions minus [CLS] and [SEP]
TYPED_NT = MAX_NT - 2  # [IND] TYPE take two more
POOLINGS = ("mean", "cls", "none")
PAIR_FILL = -1.0e4  # the logit of a pair no window holds: below any sensible threshold
# Batches are padded to a multiple of this many tokens. PyTorch's CPU kernels keep about 1 MB per
# distinct input shape, so unrounded lengths made memory grow with the input (measured: embed
# peaked at 0.83 GB for 1,000 records and 1.98 GB for 10,000); rounded, the shapes repeat.
PAD_MULTIPLE = 16
# pair_logits keeps rows × L² <= this × batch_tokens (65,536 at the default 4096): for fold on
# bpRNA TS0 (benchmarks/bench_fold.py) the fastest of one row per batch, 4, 16 and 64
PAIR_ROWS_PER_TOKEN = 16


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
    ``score``; ``probs`` (L, L) float32 pair probabilities when asked for (with a prior, those of
    the combined scores), and with ``prior="bpp"`` also ``bpp``, ViennaRNA's base-pair
    probabilities."""

    id: str
    sequence: str
    pairs: np.ndarray
    dot_bracket: str
    score: float
    probs: np.ndarray | None = field(default=None, repr=False)
    bpp: np.ndarray | None = field(default=None, repr=False)

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


# ----------------------------------------------------------------------------- batching


def length_buckets(
    lengths: np.ndarray,
    batch_tokens: int,
    max_batch_size: int | None = None,
    pair_tokens: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield index arrays of batches, longest first, each with ``rows × max length <= batch_tokens``
    and, with ``pair_tokens``, ``rows × max length² <= pair_tokens`` (for pair tensors, which grow
    as L²); a single row over the budget still forms its own batch."""
    if batch_tokens < 1:
        raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
    order = np.argsort(-np.asarray(lengths), kind="stable")
    start, n = 0, len(order)
    while start < n:
        size = _rows(_padded(int(lengths[order[start]])), batch_tokens, max_batch_size, pair_tokens)
        yield order[start : start + size]
        start += size


def _rows(L: int, batch_tokens: int, max_batch_size: int | None, pair_tokens: int | None) -> int:
    """Rows of padded length ``L`` a batch holds under the budgets of :func:`length_buckets`."""
    size = max(1, batch_tokens // L)
    if max_batch_size is not None:
        size = min(size, max_batch_size)
    if pair_tokens is not None:
        size = min(size, max(1, pair_tokens // (L * L)))
    return size


def _padded(n: int) -> int:
    return max(PAD_MULTIPLE, -(-n // PAD_MULTIPLE) * PAD_MULTIPLE)


def _padded_ids(ids: np.ndarray, limit: int) -> torch.Tensor:
    """(R, L) ids with ``[PAD]`` columns added up to a multiple of :data:`PAD_MULTIPLE` (at most
    ``limit``, the model's position table)."""
    ids = np.asarray(ids, dtype=np.int64)
    extra = max(0, min(_padded(ids.shape[-1]), limit) - ids.shape[-1])
    pad = [(0, 0)] * (ids.ndim - 1) + [(0, extra)]
    return torch.from_numpy(np.pad(ids, pad, constant_values=PAD_ID) if extra else ids)


def _batches(ids_all: Tensor, lengths: np.ndarray, batch_tokens: int, device,
             max_batch_size: int | None = None, pair_tokens: int | None = None,
             ) -> Iterator[tuple[np.ndarray, np.ndarray, Tensor, Tensor]]:  # fmt: skip
    """``(idx, rows, ids (..., B, L), mask (B, L))`` per length bucket (:func:`length_buckets`),
    on ``device``. ``L`` is rounded up to :data:`PAD_MULTIPLE` and a short last batch's ``B`` to a
    power of two: ``rows`` (B,) is ``idx`` with its last row repeated (drop outputs past
    ``len(idx)``), so few distinct shapes ever run."""
    for idx in length_buckets(lengths, batch_tokens, max_batch_size, pair_tokens):
        L = min(_padded(int(lengths[idx].max())), ids_all.shape[-1])
        full = _rows(L, batch_tokens, max_batch_size, pair_tokens)
        B = len(idx) if len(idx) >= full else min(full, 1 << (len(idx) - 1).bit_length())
        rows = np.pad(idx, (0, B - len(idx)), mode="edge")
        lens = torch.from_numpy(lengths[rows])
        mask = torch.arange(L)[None, :] < lens[:, None]
        yield idx, rows, ids_all[..., torch.from_numpy(rows), :L].to(device), mask.to(device)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def run_rows(
    fn: Callable[[Tensor, Tensor], Tensor],
    enc: Encoding,
    batch_tokens: int,
    device: torch.device,
    max_batch_size: int | None = None,
) -> list[np.ndarray]:
    """``fn(ids, mask) -> (b, ...)`` over length buckets of ``enc``; float32 outputs per row."""
    out: list[Any] = [None] * len(enc)
    ids_all = _padded_ids(enc.input_ids, MAX_NT + 2)  # rows of encode_windows
    lengths = np.asarray(enc.lengths, dtype=np.int64)
    with torch.inference_mode():
        for idx, _, ids, mask in _batches(ids_all, lengths, batch_tokens, device, max_batch_size):
            res = fn(ids, mask).float().cpu().numpy()
            for j, i in enumerate(idx.tolist()):
                out[i] = res[j]
    return out


def encode_windows(
    tokenizer: Tokenizer,
    seqs: Sequence[str],
    *,
    names: Sequence[str] | None = None,
    types: Sequence[str | int] | None = None,
    replace_invalid: bool = False,
) -> Encoding:
    """Rows of ``[CLS] seq [SEP]`` (or ``[CLS] seq [IND] TYPE [SEP]`` with ``types``) in windows
    of 510 (508) nucleotides every half window. An empty sequence is a ``ValueError`` naming it."""
    for i, s in enumerate(seqs):
        if not isinstance(s, str) or not s.strip():
            what = repr(names[i]) if names is not None else f"{i}"
            raise ValueError(f"sequence {what} is empty" if isinstance(s, str)
                             else f"sequence {what}: expected str, got {type(s).__name__}")  # fmt: skip
    width = MAX_NT if types is None else TYPED_NT
    return tokenizer.encode_batch(
        list(seqs), names=names, types=types, max_length=MAX_NT + 2, window=width,
        stride=width // 2, replace_invalid=replace_invalid,
    )  # fmt: skip


def mean_over_windows(rows: np.ndarray, seq_index: np.ndarray, n: int) -> np.ndarray:
    """(R, K) per-window values → (n, K) float32 mean per sequence."""
    out = np.zeros((n, rows.shape[1]), dtype=np.float64)
    np.add.at(out, seq_index, rows)
    counts = np.bincount(seq_index, minlength=n).astype(np.float64)
    return (out / np.maximum(counts, 1.0)[:, None]).astype(np.float32)


# ----------------------------------------------------------------------------- embeddings


def _as_rows(inputs: Any, max_length: int, truncate: bool) -> tuple[np.ndarray, np.ndarray]:
    """Inputs → (padded ids (N, L) int64, lengths (N,) int64)."""
    if hasattr(inputs, "input_ids") and hasattr(inputs, "lengths"):  # an Encoding
        return np.asarray(inputs.input_ids, np.int64), np.asarray(inputs.lengths, np.int64)
    if isinstance(inputs, (str, bytes)):
        raise TypeError("embed_batches expects a list of sequences; wrap a single one in a list")
    items = list(inputs)
    if not items:
        return np.zeros((0, 0), dtype=np.int64), np.zeros(0, dtype=np.int64)
    if isinstance(items[0], (str, bytes)):
        enc = Tokenizer(max_length=max_length).encode_batch(items, truncate=truncate)
        return np.asarray(enc.input_ids, np.int64), np.asarray(enc.lengths, np.int64)
    rows = [
        np.asarray(x.cpu() if isinstance(x, Tensor) else x, dtype=np.int64).ravel() for x in items
    ]
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    ids = np.full((len(rows), int(lengths.max())), PAD_ID, dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
    return ids, lengths


def embed_batches(
    model: torch.nn.Module,
    inputs: Any,
    pooling: str = "mean",
    batch_tokens: int = 4096,
    max_batch_size: int | None = None,
    max_length: int = 512,
    truncate: bool = False,
    device: torch.device | str | None = None,
) -> Tensor | list[Tensor]:
    """Embed rows with an :class:`~rnaernie.model.RnaErnieModel` (or a head holding one at
    ``.ernie``), sorted by length and batched by ``batch_tokens`` (rows × padded length).

    ``inputs``: sequences (str; tokenized here, ``max_length``/``truncate`` passed on), 1-D token-id
    arrays (``[CLS] seq [SEP]`` included) or an ``Encoding``. ``pooling``: ``"mean"`` (over the real
    tokens, [CLS] and [SEP] included), ``"cls"`` (the [CLS] state) or ``"none"``.

    Returns (N, C) float32 in input order, or for ``"none"`` a list of N (len_i, C) tensors.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    encoder = getattr(model, "ernie", model)
    device = _device(encoder) if device is None else device
    ids_np, lengths = _as_rows(inputs, max_length, truncate)
    n = len(lengths)
    ids_all = _padded_ids(ids_np, encoder.config.max_position_embeddings)
    out: Tensor | list[Tensor | None]
    out = torch.empty(n, encoder.config.hidden_size) if pooling != "none" else [None] * n
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.inference_mode():
            for idx, _, ids, mask in _batches(
                ids_all, lengths, batch_tokens, device, max_batch_size
            ):
                h = encoder(ids, mask, return_pooler=False).last_hidden_state.float()
                h, mask = h[: len(idx)], mask[: len(idx)]
                if pooling == "none":
                    h = h.cpu()
                    for j, i in enumerate(idx.tolist()):
                        out[i] = h[j, : int(lengths[i])].clone()  # type: ignore[index]
                    continue
                if pooling == "cls":
                    pooled = h[:, 0]
                else:
                    m = mask.to(device, torch.float32).unsqueeze(-1)  # (b, L, 1)
                    pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
                out[torch.from_numpy(idx)] = pooled.cpu()  # type: ignore[index]
    finally:
        encoder.train(was_training)
    return out  # type: ignore[return-value]


def embed_packed(
    model: torch.nn.Module,
    inputs: Any,
    pooling: str = "mean",
    batch_tokens: int = 65536,
    max_length: int = 512,
    truncate: bool = False,
    device: torch.device | str | None = None,
) -> Tensor:
    """:func:`embed_batches` (``"mean"`` or ``"cls"`` pooling) through the packed path: rows are
    concatenated without padding, up to ``batch_tokens`` real tokens per forward pass
    (:func:`rnaernie.model.encoder.encode_packed`; the Triton varlen attention kernel on CUDA).
    Same values as :func:`embed_batches`; no compute is spent on padding."""
    from .model.encoder import encode_packed

    if pooling not in ("mean", "cls"):
        raise ValueError(f"embed_packed pools by 'mean' or 'cls', got {pooling!r}")
    encoder = getattr(model, "ernie", model)
    device = _device(encoder) if device is None else torch.device(device)
    ids_np, lengths = _as_rows(inputs, max_length, truncate)
    out = torch.empty(len(lengths), encoder.config.hidden_size)
    ends = np.cumsum(lengths)
    start = 0
    with torch.inference_mode():
        while start < len(lengths):  # rows in input order, whole rows per pass
            budget = (ends[start - 1] if start else 0) + max(batch_tokens, int(lengths[start]))
            stop = int(np.searchsorted(ends, budget, side="right"))
            n = lengths[start:stop]
            real = np.arange(ids_np.shape[1])[None, :] < n[:, None]
            packed = torch.from_numpy(ids_np[start:stop][real]).to(device)
            cu = torch.from_numpy(np.concatenate([[0], np.cumsum(n)])).to(device)
            h = encode_packed(encoder, packed, cu, int(n.max())).float()
            if pooling == "cls":
                pooled = h[cu[:-1]]
            else:
                seg = torch.repeat_interleave(
                    torch.arange(len(n), device=device), torch.from_numpy(n).to(device)
                )
                pooled = torch.zeros(len(n), h.shape[1], device=device).index_add_(0, seg, h)
                pooled = (
                    pooled / torch.from_numpy(n).to(device, torch.float32).clamp(min=1.0)[:, None]
                )
            out[start:stop] = pooled.cpu()
            start = stop
    return out


def embed_windows(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    names: Sequence[str],
    seqs: Sequence[str],
    *,
    pooling: str = "mean",
    batch_tokens: int = 8192,
) -> np.ndarray | list[np.ndarray]:
    """Sequence embeddings of any length: (N, H) float32 (mean over windows), or for
    ``pooling="none"`` N arrays (L_i, H) (each nucleotide: the mean over the windows holding it)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    H = getattr(model, "ernie", model).config.hidden_size
    if not seqs:
        return [] if pooling == "none" else np.zeros((0, H), dtype=np.float32)
    enc = encode_windows(tokenizer, seqs, names=names)
    rows = embed_batches(model, enc, pooling=pooling, batch_tokens=batch_tokens)
    if pooling != "none":
        return mean_over_windows(rows.numpy(), enc.seq_index, len(seqs))
    sizes = (enc.end[np.r_[np.flatnonzero(np.diff(enc.seq_index)), len(enc) - 1]]).tolist()
    sums = [np.zeros((n, H), dtype=np.float32) for n in sizes]
    counts = [np.zeros((n, 1), dtype=np.float32) for n in sizes]
    for r, h in enumerate(rows):
        i, a, b = int(enc.seq_index[r]), int(enc.start[r]), int(enc.end[r])
        sums[i][a:b] += h[1:-1].numpy()
        counts[i][a:b] += 1.0
    return [s / np.maximum(c, 1.0) for s, c in zip(sums, counts)]


# ----------------------------------------------------------------------------- RNA types


def type_probs(
    pretraining: torch.nn.Module,
    seqs: Sequence[str],
    *,
    names: Sequence[str] | None = None,
    tokenizer: Tokenizer | None = None,
    method: str = "mlm",
    batch_tokens: int = 8192,
    replace_invalid: bool = False,
) -> np.ndarray:
    """(N, 28) probabilities over :data:`rnaernie.vocab.RNA_TYPES` from a pretraining model.

    ``method="mlm"``: its MLM head fills the open type slot of ``[CLS] seq [IND] [MASK] [SEP]``,
    restricted to type tokens (the indicator of type guidance); ``"head"``: the type head on the
    pooled [CLS]. Long sequences: the maximum over windows, renormalised.
    """
    if method not in ("head", "mlm"):
        raise ValueError(f"method must be 'head' or 'mlm', got {method!r}")
    tok = tokenizer or Tokenizer()
    if not len(seqs):
        return np.zeros((0, NUM_TYPES), np.float32)
    if method == "head":
        enc = encode_windows(tok, seqs, names=names, replace_invalid=replace_invalid)

        def fn(ids: Tensor, mask: Tensor) -> Tensor:
            out = pretraining.ernie(ids, mask)
            return torch.softmax(pretraining.type_head(out.pooler_output).float(), dim=-1)
    else:
        enc = encode_windows(
            tok, seqs, names=names, types=[MASK_ID] * len(seqs), replace_invalid=replace_invalid
        )

        def fn(ids: Tensor, mask: Tensor) -> Tensor:
            h = pretraining.ernie(ids, mask, return_pooler=False).last_hidden_state
            slot = mask.long().sum(-1) - 2  # [MASK] sits just before [SEP]
            hs = h[torch.arange(h.shape[0], device=h.device), slot]  # (b, C)
            logits = pretraining.mlm_head(hs, pretraining.ernie.embeddings.word_embeddings.weight)
            return torch.softmax(logits[:, TYPE_OFFSET : TYPE_OFFSET + NUM_TYPES].float(), -1)

    rows = np.stack(run_rows(fn, enc, batch_tokens, _device(pretraining)))
    out = np.zeros((len(seqs), rows.shape[1]), np.float32)
    np.maximum.at(out, enc.seq_index, rows)
    return out / out.sum(1, keepdims=True)


def top_types(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28) type probabilities → the top-k type token ids (N, k) and their renormalised
    probabilities (N, k), most probable first (ties: the lower token id)."""
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(probs, top, 1)
    return top + TYPE_OFFSET, w / w.sum(1, keepdims=True)


def type_prediction(name: str, probs: np.ndarray, top_k: int) -> TypePrediction:
    """The top ``top_k`` types of one (28,) probability row."""
    k = max(1, min(int(top_k), NUM_TYPES))
    order = np.argsort(-probs, kind="stable")[:k]
    return TypePrediction(
        name, tuple(RNA_TYPES[j] for j in order), tuple(float(probs[j]) for j in order)
    )


@dataclass
class Typing:
    """Type guidance of N sequences: type token ids (N, k) and weights (N, k); ``tokens`` is None
    (and the weights (N, 1) ones) for an unguided model."""

    tokens: np.ndarray | None
    weights: np.ndarray

    def rows(self, idx: Any) -> Typing:
        return Typing(None if self.tokens is None else self.tokens[idx], self.weights[idx])

    def column(self, k: int) -> list[int] | None:
        return None if self.tokens is None else self.tokens[:, k].tolist()


def guidance(
    indicator: torch.nn.Module | None, seqs: Sequence[str], top_k: int, **kwargs: Any
) -> Typing:
    """The top-k types of ``seqs`` from a frozen pretraining model (``indicator``), renormalised;
    ``None`` → unguided. ``kwargs`` go to :func:`type_probs`."""
    if indicator is None:
        return Typing(None, np.ones((len(seqs), 1), np.float32))
    t, w = top_types(type_probs(indicator, seqs, replace_invalid=True, **kwargs), top_k)
    return Typing(t, w.astype(np.float32))


def typed_mix(
    fn: Callable[[Tensor, Tensor], Tensor], tok: Tokenizer, seqs: list[str], typing: Typing, device
) -> Tensor:
    """Weighted sum over the k typed inputs (cut to the model limit) of ``fn(ids, mask)``."""
    total = None
    for k in range(typing.weights.shape[1]):
        enc = tok.encode_batch(seqs, types=typing.column(k), truncate=True, replace_invalid=True)
        out = fn(torch.from_numpy(enc.input_ids).to(device),
                 torch.from_numpy(enc.attention_mask).to(device))  # fmt: skip
        w = torch.from_numpy(typing.weights[:, k]).to(device, out.dtype)
        w = w.reshape(-1, *([1] * (out.dim() - 1)))
        total = out * w if total is None else total + out * w
    return total


def contact_inputs(tok: Tokenizer, seqs: list[str], typing: Typing, device) -> dict[str, Tensor]:
    """Arguments of a contact-prediction head for a batch: ``input_ids``, ``attention_mask`` of
    ``[CLS] seq [SEP]``, or when typed the (K, B, T) stacks of the K typed inputs plus
    ``type_weights`` (B, K)."""
    encs = [tok.encode_batch(seqs, types=typing.column(k), truncate=True, replace_invalid=True)
            for k in range(typing.weights.shape[1])]  # fmt: skip
    if typing.tokens is None:
        return {"input_ids": torch.from_numpy(encs[0].input_ids).to(device),
                "attention_mask": torch.from_numpy(encs[0].attention_mask).to(device)}  # fmt: skip
    return {
        "input_ids": torch.from_numpy(np.stack([e.input_ids for e in encs])).to(device),
        "attention_mask": torch.from_numpy(np.stack([e.attention_mask for e in encs])).to(device),
        "type_weights": torch.from_numpy(typing.weights).to(device),
    }


def _guided(model: torch.nn.Module, indicator: torch.nn.Module | None) -> bool:
    guided = bool(model.config.extra.get("type_guided", False))
    if guided and indicator is None:
        raise ValueError("this head was fine-tuned with type guidance: it needs the pretraining "
                         "model as its indicator")  # fmt: skip
    return guided


# ----------------------------------------------------------------------------- task heads


def classifier_probs(
    model: torch.nn.Module,
    seqs: Sequence[str],
    *,
    indicator: torch.nn.Module | None = None,
    tprobs: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    tokenizer: Tokenizer | None = None,
    batch_tokens: int = 8192,
    replace_invalid: bool = False,
) -> np.ndarray:
    """Class probabilities (N, C) of a sequence-classification head: the softmax, averaged over
    windows, at most the head's ``max_windows`` of them evenly spread. A head fine-tuned with type
    guidance runs once per top-k type of ``indicator`` (k = the head's ``top_k``; ``tprobs``: the
    (N, 28) type probabilities when already computed), its logits mixed by their weights."""
    tok = tokenizer or Tokenizer()
    extra, dev = model.config.extra, _device(model)
    seqs = list(seqs)
    if not seqs:
        return np.zeros((0, model.config.num_labels), np.float32)

    def logits(ids: Tensor, mask: Tensor) -> Tensor:
        return model(ids, mask).logits

    if not _guided(model, indicator):
        enc = encode_windows(tok, seqs, names=names, replace_invalid=replace_invalid)
        enc = enc.spread(extra.get("max_windows"))
        rows = np.stack(run_rows(lambda i, m: torch.softmax(logits(i, m).float(), -1), enc,
                                 batch_tokens, dev))  # fmt: skip
        return mean_over_windows(rows, enc.seq_index, len(seqs))
    if tprobs is None:
        tprobs = type_probs(indicator, seqs, names=names, tokenizer=tok, batch_tokens=batch_tokens,
                            replace_invalid=replace_invalid)  # fmt: skip
    types, w = top_types(tprobs, int(extra.get("top_k", 3)))
    mixed = None  # (R, C) per-window mixed logits; the windows are the same for every type
    for j in range(types.shape[1]):
        enc = encode_windows(tok, seqs, names=names, types=types[:, j].tolist(),
                             replace_invalid=replace_invalid).spread(extra.get("max_windows"))  # fmt: skip
        rows = np.stack(run_rows(logits, enc, batch_tokens, dev)) * w[enc.seq_index, j : j + 1]
        mixed = rows if mixed is None else mixed + rows
    e = np.exp(mixed - mixed.max(1, keepdims=True))
    return mean_over_windows(e / e.sum(1, keepdims=True), enc.seq_index, len(seqs))


def pair_logits(
    model: torch.nn.Module,
    seqs: Sequence[str],
    *,
    indicator: torch.nn.Module | None = None,
    names: Sequence[str] | None = None,
    tokenizer: Tokenizer | None = None,
    batch_tokens: int = 4096,
    replace_invalid: bool = False,
) -> list[np.ndarray]:
    """(L, L) float32 pair logits per sequence from a contact-prediction head; over 510 nt (508
    type-guided) stitched from half-overlapping windows (:func:`stitch_pair_windows`). Rows per
    batch are further capped at ``batch_tokens * 16 / L²``, L the batch's longest (the pair
    tensors grow as L²)."""
    tok = tokenizer or Tokenizer()
    dev = _device(model)
    if not len(seqs):
        return []
    if _guided(model, indicator):
        typing = guidance(indicator, seqs, int(model.config.extra.get("top_k", 3)), names=names,
                          tokenizer=tok, batch_tokens=batch_tokens)  # fmt: skip
        encs = [encode_windows(tok, seqs, names=names, types=typing.column(j),
                               replace_invalid=replace_invalid)
                for j in range(typing.weights.shape[1])]  # fmt: skip
    else:
        typing = None
        encs = [encode_windows(tok, seqs, names=names, replace_invalid=replace_invalid)]
    e0 = encs[0]
    rows: list[np.ndarray] = [np.zeros((0, 0), np.float32)] * len(e0)
    ids_all = _padded_ids(np.stack([e.input_ids for e in encs]), MAX_NT + 2)
    lengths = np.asarray(e0.lengths, dtype=np.int64)
    pair_tokens = max(1, batch_tokens * PAIR_ROWS_PER_TOKEN // len(encs))
    with torch.inference_mode():
        for idx, batch_rows, ids, mask in _batches(ids_all, lengths, batch_tokens, dev,
                                                   pair_tokens=pair_tokens):  # fmt: skip
            if typing is not None:  # ids: (K, B, L), one slice per kept type
                tw = torch.from_numpy(typing.weights[e0.seq_index[batch_rows]])
                z = model(ids, mask.expand(len(encs), -1, -1), type_weights=tw.to(dev)).logits
            else:
                z = model(ids[0], mask).logits
            z = z.float().cpu().numpy()  # (b, L-2, L-2)
            for j, r in enumerate(idx.tolist()):
                n = int(e0.end[r] - e0.start[r])
                rows[r] = np.ascontiguousarray(z[j, :n, :n])
    bounds = np.searchsorted(e0.seq_index, np.arange(len(seqs) + 1))  # rows are grouped
    return [
        stitch_pair_windows(int(e0.end[b - 1]), e0.start[a:b].tolist(), rows[a:b])
        for a, b in itertools.pairwise(bounds)
    ]


def head_decode_options(extra: dict, prior: str | None = None) -> DecodeOptions:
    """The decoder settings a structure head stores (chosen on validation data when it was
    fine-tuned): its config's ``extra["decode"]``, or with a prior ``extra["prior_<name>"]
    ["decode"]``; the defaults of :class:`~rnaernie.structure.DecodeOptions` where absent."""
    legacy = {"threshold": "decode_threshold", "no_lonely_pairs": "decode_no_lonely_pairs"}
    d = extra.get("decode") or {k: extra[v] for k, v in legacy.items() if v in extra}
    if prior is not None:  # heads saved before one options object kept flat keys here too
        p = extra.get(f"prior_{prior}", {})
        d = p.get("decode") or {**d, **{k: p[k] for k in legacy if k in p}}
    return DecodeOptions.from_dict(d)


def stitch_pair_windows(
    length: int, starts: Sequence[int], windows: Sequence[np.ndarray], fill: float = PAIR_FILL
) -> np.ndarray:
    """Pair logits of overlapping windows of one sequence → its (length, length) float32 matrix.

    Window ``k`` holds nucleotides ``[starts[k], starts[k] + w_k)`` and its ``(w_k, w_k)`` logits.
    Each pair gets the mean over the windows that hold both its bases; a pair that no window holds
    gets ``fill``. One window covering the whole sequence is returned as is.

    Example:
        >>> m = stitch_pair_windows(3, [0, 1], [np.zeros((2, 2)), np.ones((2, 2))])
        >>> m.tolist()
        [[0.0, 0.0, -10000.0], [0.0, 0.5, 1.0], [-10000.0, 1.0, 1.0]]
    """
    if len(starts) != len(windows) or not windows:
        raise ValueError(f"got {len(starts)} window starts and {len(windows)} windows")
    if len(windows) == 1 and starts[0] == 0 and windows[0].shape == (length, length):
        return np.ascontiguousarray(windows[0], dtype=np.float32)
    acc = np.zeros((length, length), np.float32)
    cnt = np.zeros((length, length), np.float32)
    for a, z in zip(starts, windows):
        w = z.shape[0]
        if z.shape != (w, w) or a < 0 or a + w > length:
            raise ValueError(f"window at {a} of shape {z.shape} does not fit length {length}")
        acc[a : a + w, a : a + w] += z
        cnt[a : a + w, a : a + w] += 1.0
    out = np.full((length, length), fill, np.float32)
    np.divide(acc, cnt, out=out, where=cnt > 0)
    return out


def interaction_logits(
    model: torch.nn.Module, tok: Tokenizer, a: list[str], b: list[str], ta: Typing, tb: Typing
) -> Tensor:
    """(B, 2) logits of a two-tower interaction head; each tower's pooled embedding is the
    weighted mean over its typed inputs (cut to the model limit)."""
    dev = _device(model)
    return model.classify(
        typed_mix(model.pool, tok, a, ta, dev), typed_mix(model.pool, tok, b, tb, dev)
    )


def interaction_probs(
    model: torch.nn.Module,
    a: Sequence[str],
    b: Sequence[str],
    *,
    indicator: torch.nn.Module | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """(N, 2) probabilities of (no interaction, interaction) for miRNAs ``a`` (5'→3') and
    targets ``b``; type-guided (the head's ``top_k``) for a head fine-tuned so."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    k = int(model.config.extra.get("top_k", 3))
    guided = indicator if _guided(model, indicator) else None
    ta, tb = guidance(guided, a, k), guidance(guided, b, k)
    tok = Tokenizer()
    out = np.zeros((len(a), 2), np.float32)
    with torch.inference_mode():
        for s in range(0, len(a), batch_size):
            idx = np.arange(s, min(s + batch_size, len(a)))
            z = interaction_logits(model, tok, [a[i] for i in idx], [b[i] for i in idx],
                                   ta.rows(idx), tb.rows(idx))  # fmt: skip
            out[idx] = z.float().softmax(-1).cpu().numpy()
    return out
