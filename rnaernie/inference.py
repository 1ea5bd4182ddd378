"""Fast embedding of many sequences: sort by length, batch by a token budget, unsort the outputs.

Sorting makes every batch nearly free of padding, so the encoder spends its time on real tokens;
batches are bounded by ``batch_tokens`` (rows × padded length) rather than a row count, so short
sequences run in large batches and long ones in small batches.

Example:
    >>> from rnaernie.config import RnaErnieConfig
    >>> from rnaernie.model import RnaErnieModel
    >>> model = RnaErnieModel(RnaErnieConfig.preset("tiny")).eval()
    >>> emb = embed_batches(model, ["ACGUACGU", "GGGAAACCC", "AUG"], pooling="mean")
    >>> emb.shape
    torch.Size([3, 256])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .vocab import PAD_ID

POOLINGS = ("mean", "cls", "none")


def _as_rows(inputs: Any, max_length: int, truncate: bool) -> tuple[np.ndarray, np.ndarray]:
    """Inputs → (padded ids (N, L) int64, lengths (N,) int64)."""
    if hasattr(inputs, "input_ids") and hasattr(inputs, "lengths"):  # an Encoding
        return np.asarray(inputs.input_ids, dtype=np.int64), np.asarray(
            inputs.lengths, dtype=np.int64
        )
    if isinstance(inputs, (str, bytes)):
        raise TypeError("embed_batches expects a list of sequences; wrap a single one in a list")
    items = list(inputs)
    if not items:
        return np.zeros((0, 0), dtype=np.int64), np.zeros(0, dtype=np.int64)
    if isinstance(items[0], (str, bytes)):
        from .tokenizer import Tokenizer

        enc = Tokenizer(max_length=max_length).encode_batch(items, truncate=truncate)
        return np.asarray(enc.input_ids, dtype=np.int64), np.asarray(enc.lengths, dtype=np.int64)
    rows = [
        np.asarray(x.cpu() if isinstance(x, Tensor) else x, dtype=np.int64).ravel() for x in items
    ]
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    ids = np.full((len(rows), int(lengths.max())), PAD_ID, dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
    return ids, lengths


def length_buckets(
    lengths: np.ndarray, batch_tokens: int, max_batch_size: int | None = None
) -> Iterator[np.ndarray]:
    """Yield index arrays of batches, longest first, each with ``rows × max length <= batch_tokens``
    (a single row longer than the budget still forms its own batch)."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    start, n = 0, len(order)
    while start < n:
        longest = max(int(lengths[order[start]]), 1)
        size = max(1, batch_tokens // longest)
        if max_batch_size is not None:
            size = min(size, max_batch_size)
        yield order[start : start + size]
        start += size


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
    """Embed sequences with an :class:`~rnaernie.model.RnaErnieModel` (or a head holding one).

    Args:
        model: the encoder, or any head with the encoder at ``.ernie``.
        inputs: a list of sequences (str; tokenized here), a list of 1-D token-id arrays
            (``[CLS] seq [SEP]`` already added), or an ``Encoding`` from the tokenizer.
        pooling: ``"mean"`` (mean of the final hidden states over the real tokens, [CLS] and [SEP]
            included), ``"cls"`` (the [CLS] state, not the tanh pooler), or ``"none"``.
        batch_tokens: budget of rows × padded length per forward pass.
        max_batch_size: optional cap on rows per batch.
        max_length, truncate: passed to the tokenizer for string inputs.
        device: where to run (default: the model's device).

    Returns:
        (N, C) float tensor in input order, or for ``pooling="none"`` a list of N (len_i, C)
        tensors (real tokens only).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if batch_tokens < 1:
        raise ValueError("batch_tokens must be positive")
    encoder = getattr(model, "ernie", model)
    if device is None:
        device = next(encoder.parameters()).device
    ids_np, lengths = _as_rows(inputs, max_length, truncate)
    n = len(lengths)
    ids_all = torch.from_numpy(ids_np)
    hidden = encoder.config.hidden_size
    out: Tensor | list[Tensor | None]
    out = torch.empty(n, hidden) if pooling != "none" else [None] * n
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.inference_mode():
            for idx in length_buckets(lengths, batch_tokens, max_batch_size):
                lens = torch.from_numpy(lengths[idx])
                L = int(lens.max())
                ids = ids_all[torch.from_numpy(idx), :L].to(device, non_blocking=True)
                mask = torch.arange(L)[None, :] < lens[:, None]
                h = encoder(ids, mask.to(device), return_pooler=False).last_hidden_state
                h = h.float()  # pool in fp32 even for a bf16 model
                if pooling == "cls":
                    pooled = h[:, 0]
                elif pooling == "mean":
                    m = mask.to(device, torch.float32).unsqueeze(-1)  # (b, L, 1)
                    pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
                else:
                    h = h.cpu()
                    for j, i in enumerate(idx.tolist()):
                        out[i] = h[j, : int(lens[j])].clone()  # type: ignore[index]
                    continue
                out[torch.from_numpy(idx)] = pooled.cpu()  # type: ignore[index]
    finally:
        encoder.train(was_training)
    return out  # type: ignore[return-value]


def embed(
    model: torch.nn.Module, seqs: Sequence[str], pooling: str = "mean", **kwargs: Any
) -> Tensor | list[Tensor]:
    """Shorthand for :func:`embed_batches` on a list of sequence strings."""
    return embed_batches(model, list(seqs), pooling=pooling, **kwargs)


PAIR_FILL = -1.0e4  # the logit of a pair no window holds: below any sensible threshold


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
