"""Structure pictures (matplotlib, Agg backend: no display needed).

* :func:`plot_structure`: an arc diagram of the predicted pairs above the sequence axis and, when
  pair probabilities are given, the contact map (upper triangle: probabilities; lower triangle:
  predicted pairs) beside it, and when thermodynamic base-pair probabilities are given a dot plot
  (upper triangle: ViennaRNA's probabilities; lower triangle: the model's). One PNG per structure.

Example:
    >>> import numpy as np
    >>> plot_structure("x.png", "GGGGAAAACCCC", np.array([[0, 11], [1, 10]]))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

__all__ = ["plot_structure", "safe_filename"]


def safe_filename(name: str, max_len: int = 100) -> str:
    """A file name from a record id: characters other than ``[A-Za-z0-9._-]`` become ``_``."""
    s = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:max_len].lstrip(".")
    return s or "record"


def plot_structure(
    path: str | os.PathLike[str],
    sequence: str,
    pairs: np.ndarray,
    probs: np.ndarray | None = None,
    title: str | None = None,
    *,
    bpp: np.ndarray | None = None,
) -> Path:
    """Write a PNG of the structure (pairs (n, 2), 0-based) and return its path (written atomically).

    ``probs``: (L, L) pair probabilities of the prediction; ``bpp``: (L, L) ViennaRNA base-pair
    probabilities, drawn as a dot plot against ``probs`` (needs ``probs``)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.patches import Arc

    L = len(sequence)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if bpp is not None and probs is None:
        raise ValueError("a base-pair probability dot plot needs the prediction's probs")
    ncols = 1 + (probs is not None) + (bpp is not None)
    fig = Figure(figsize=(6 * ncols, 4), dpi=100)
    ax = fig.add_subplot(1, ncols, 1)
    for i, j in pairs.tolist():
        ax.add_patch(Arc(((i + j) / 2, 0), j - i, j - i, theta1=0, theta2=180, lw=0.8, color="C0"))
    ax.set_xlim(-1, max(L, 1))
    ax.set_ylim(-0.05 * max(L, 1), max(L, 1) / 2 + 1)
    ax.set_yticks([])
    ax.set_xlabel("position (0-based)")
    if L <= 80:
        for k, c in enumerate(sequence):
            ax.text(k, -0.03 * L, c, ha="center", va="top", fontsize=6)
    ax.set_title(f"{title or ''} ({len(pairs)} pairs)".strip())
    if probs is not None:
        ax2 = fig.add_subplot(1, ncols, 2)
        m = np.triu(np.asarray(probs, dtype=np.float32), 1)
        pred = np.zeros((L, L), dtype=np.float32)
        if len(pairs):
            pred[pairs[:, 1], pairs[:, 0]] = 1.0
        im = ax2.imshow(m + pred, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        fig.colorbar(im, ax=ax2, fraction=0.046)
        ax2.set_title("pair probability (upper) / predicted pairs (lower)", fontsize=8)
    if bpp is not None:
        ax3 = fig.add_subplot(1, ncols, 3)
        dots = np.triu(np.asarray(bpp, np.float32), 1) + np.tril(np.asarray(probs, np.float32), -1)
        ys, xs = np.nonzero(dots > 1e-3)
        side = 300.0 / max(L, 1)  # points per position, about: square area ∝ probability
        ax3.scatter(xs, ys, s=dots[ys, xs] * side**2, c="k", marker="s", lw=0)
        ax3.set_xlim(-0.5, L - 0.5)
        ax3.set_ylim(L - 0.5, -0.5)
        ax3.set_aspect("equal")
        ax3.set_title("ViennaRNA bpp (upper) / fused model (lower)", fontsize=8)
    fig.tight_layout()
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp.png")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
