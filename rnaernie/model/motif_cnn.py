"""The screening detector's scanning stage: a small dilated 1-D CNN over one-hot nucleotides.

It scores every position for every family (``h[c, t]``, a receptive field of
``1 + (kernel − 1) · Σ dilations`` nt) and a window by multiple-instance pooling: family ``c``'s
logit is ``max_t h[c, t]`` over the window, background's a learnt constant ``b``; the window's
log-odds of family ``c`` against background is then ``max_t h[c, t] − b``. Being a convolution, it
runs once over a whole chunk of a chromosome (each strand), and a window's score is a sliding
maximum, so its cost is per nucleotide, not per window nucleotide.

Stored as ``cnn.safetensors`` (weights; the hyper-parameters and labels in its metadata) beside
the detector head.

    >>> import torch
    >>> net = MotifCNN(n_families=3, channels=8)
    >>> net(one_hot(["ACGUACGU", "GGGG"])).shape            # (batch, families + background)
    torch.Size([2, 4])
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["CNN_FILE", "MotifCNN", "bucket", "one_hot"]

CNN_FILE = "cnn.safetensors"
_CODE = np.full(256, 4, dtype=np.int64)
for _k, _c in enumerate("ACGU"):
    _CODE[ord(_c)] = _k
_CODE[ord("T")] = 3


ROW_STEP, LENGTH_STEP = 64, 8  # window batches: rows padded to a power of two up to ROW_STEP,
# then to multiples of it; columns to multiples of LENGTH_STEP


def bucket(n: int, step: int) -> int:
    """``n`` rounded up to a multiple of ``step`` (at least ``step``)."""
    return max(step, -(-n // step) * step)


def one_hot(seqs: Sequence[str], length: int | None = None) -> Tensor:
    """(N, 4, L) float32 one-hot of upper-case RNA/DNA (``T`` = ``U``; any other letter, and the
    padding past a sequence's end, is all zeros). ``L`` = ``length`` or the longest sequence."""
    n = len(seqs)
    width = length if length is not None else max((len(s) for s in seqs), default=0)
    codes = np.full((n, width), 4, dtype=np.int64)
    for i, s in enumerate(seqs):
        b = np.frombuffer(s[:width].encode("latin-1", "replace"), dtype=np.uint8)
        codes[i, : len(b)] = _CODE[b]
    eye = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), np.float32)])
    return torch.from_numpy(eye[codes].transpose(0, 2, 1).copy())


def _conv(conv: nn.Conv1d, h: Tensor) -> Tensor:
    """``conv`` over (N, C, 1, L) ``h`` as a 2-D convolution (channels-last)."""
    w = conv.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    return nn.functional.conv2d(h, w, conv.bias, padding=(0, conv.padding[0]),
                                dilation=(1, conv.dilation[0]))  # fmt: skip


def _norm(norm: nn.Module, h: Tensor) -> Tensor:
    """A 1-D batch norm (or the identity) over (N, C, 1, L) ``h``."""
    return h if isinstance(norm, nn.Identity) else norm(h.squeeze(2)).unsqueeze(2)


class MotifCNN(nn.Module):
    """Dilated residual 1-D CNN (batch-normalised) → per-position family logits; see the module
    docstring."""

    def __init__(self, n_families: int, channels: int = 64, kernel: int = 9,
                 dilations: Sequence[int] = (1, 2, 4, 8), labels: Sequence[str] | None = None):  # fmt: skip
        super().__init__()
        if kernel % 2 == 0 or kernel < 1:
            raise ValueError(f"kernel must be odd and positive, got {kernel}")
        self.hparams = {"n_families": int(n_families), "channels": int(channels),
                        "kernel": int(kernel), "dilations": [int(d) for d in dilations]}  # fmt: skip
        self.labels = list(labels) if labels is not None else None
        self.stem = nn.Conv1d(4, channels, kernel, padding=kernel // 2)
        self.stem_norm = nn.BatchNorm1d(channels)
        self.blocks = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=d * (kernel // 2), dilation=d)
            for d in dilations
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(channels) for _ in dilations)
        self.out = nn.Conv1d(channels, n_families, 1)
        self.background = nn.Parameter(torch.zeros(1))

    @property
    def receptive_field(self) -> int:
        k = self.hparams["kernel"]
        return 1 + (k - 1) * (1 + sum(self.hparams["dilations"]))

    def positions(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """(N, 4, L) one-hot → (N, families, L) per-position logits. ``lengths`` (N,): each row
        is a sequence of that length padded to ``L``; every layer then sees zeros past its end,
        as it would with the sequence alone (its positions get the numbers they get unpadded).

        The convolutions run as 2-D ones over an (N, C, 1, L) channels-last view: the same
        function, 1.5× (float32) to 2× (bfloat16) faster than 1-D ones on a CPU."""
        keep = None
        if lengths is not None:
            keep = (torch.arange(x.shape[-1], device=x.device) < lengths[:, None])[:, None, None, :]
            keep = keep.to(x.dtype)
        h = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        h = torch.relu(_norm(self.stem_norm, _conv(self.stem, h)))
        for conv, norm in zip(self.blocks, self.norms):
            if keep is not None:
                h = h * keep
            h = h + torch.relu(_norm(norm, _conv(conv, h)))
        return _conv(self.out, h).squeeze(2)

    def folded(self) -> MotifCNN:
        """A copy for inference (evaluation mode) with each batch normalisation folded into the
        convolution before it: the same function in fewer operations."""
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        net = copy.deepcopy(self).eval()
        net.stem = fuse_conv_bn_eval(net.stem, net.stem_norm)
        net.stem_norm = nn.Identity()
        for i, (conv, norm) in enumerate(zip(net.blocks, net.norms)):
            net.blocks[i] = fuse_conv_bn_eval(conv, norm)
            net.norms[i] = nn.Identity()
        return net

    def forward(
        self, x: Tensor, mask: Tensor | None = None, lengths: Tensor | None = None
    ) -> Tensor:
        """(N, 4, L) one-hot → (N, families + 1) window logits (background last). ``mask``
        (N, L) bool marks the real positions (default: positions with a nucleotide); ``lengths``
        as for :meth:`positions`."""
        h = self.positions(x, lengths)
        if mask is None:
            mask = x.sum(1) > 0
        h = h.masked_fill(~mask[:, None, :], -1e4)
        fam = h.amax(-1)
        return torch.cat([fam, self.background.expand(len(fam), 1)], 1)

    def window_logits(self, seqs: Sequence[str], batch_size: int = 512, *,
                      fixed: int | None = None) -> np.ndarray:  # fmt: skip
        """(N, families + 1) window logits (background last) of ``seqs``, each window on its
        own (whatever else is in its batch), float64, in batches on the network's device and in
        its dtype. ``fixed``: every batch is ``batch_size`` rows of ``fixed`` columns (no window
        is longer): a window's logits are then bit for bit the same whatever shares its batch
        (the convolution library computes every row of one shape alike), which the screen's
        sharded runs need when chunks are grouped differently."""
        w = next(self.parameters())
        out = []
        with torch.inference_mode():
            for a in range(0, len(seqs), batch_size):
                batch = list(seqs[a : a + batch_size])
                n = len(batch)
                # Padded to a few shapes (the CPU's convolution library keeps a primitive, tens
                # of MB, for every shape it sees): empty rows, and columns past each window's end
                # that every layer sees as zeros, as it would with the window alone.
                longest = max(map(len, batch))
                if fixed is not None and longest > fixed:
                    raise ValueError(f"a window of {longest} nt is longer than fixed={fixed}")
                length = bucket(fixed if fixed is not None else longest, LENGTH_STEP)
                rows = 1 << (n - 1).bit_length() if n <= ROW_STEP else bucket(n, ROW_STEP)
                if fixed is not None:
                    rows = batch_size
                batch += [""] * (min(rows, max(batch_size, n)) - n)
                x = one_hot(batch, length).to(w.device, w.dtype)
                lengths = None  # (the empty rows are thrown away: they need no mask)
                if any(len(b) < length for b in batch[:n]):
                    lengths = torch.tensor([len(b) for b in batch], device=w.device)
                out.append(self(x, lengths=lengths)[:n].double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.hparams["n_families"] + 1))

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        if path.is_dir():
            path = path / CNN_FILE
        meta = {"hparams": json.dumps(self.hparams), "labels": json.dumps(self.labels)}
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()},
                  str(path), metadata=meta)  # fmt: skip
        return path

    @classmethod
    def load(cls, path: str | Path) -> MotifCNN:
        from safetensors import safe_open

        path = Path(path)
        if path.is_dir():
            path = path / CNN_FILE
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}
            hp, labels = json.loads(meta["hparams"]), json.loads(meta["labels"])
            net = cls(**hp, labels=labels)
            net.load_state_dict(state)
        except Exception as e:  # a missing or damaged file, bad metadata, mismatched tensors
            raise ValueError(f"{path}: cannot read the screening CNN: {e}") from None
        return net.eval()
