"""A thermodynamic prior for the pair logits: ViennaRNA's MFE pairs get a bonus before decoding.

The structure head and RNAfold fail on different families (on ArchiveII the head wins on tRNA and 5S
rRNA, RNAfold on SRP, tmRNA, RNase P and rRNA domains), so adding ``weight`` to the logits of the
pairs in RNAfold's minimum-free-energy structure lets the decoder keep a pair that either source
supports strongly. The weight, threshold and lonely-pair rule are chosen on a validation set (the
shipped head's ``prior_rnafold`` config entry; ``rnaernie evaluate`` chooses them on bpRNA VL0).

Needs ViennaRNA (``pip install viennarna``); RNAfold's run time comes on top of the model's (0.7 s
for one 1,000-nt sequence in ``benchmarks/results/structure.json``, against 9 ms for our decoder).

Example:
    >>> import numpy as np
    >>> z = np.zeros((4, 4), np.float32)
    >>> add_pair_bonus(z, np.array([[0, 3]]), 2.0)[[0, 3], [3, 0]].tolist()
    [2.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .dotbracket import dot_bracket_to_pairs

__all__ = ["MIN_POOL", "PRIORS", "add_pair_bonus", "rnafold_pairs"]

PRIORS = ("rnafold",)


def _rna() -> Any:
    try:
        import RNA
    except ImportError as exc:
        raise ValueError(
            "the 'rnafold' prior needs ViennaRNA's Python bindings: pip install viennarna"
        ) from exc
    return RNA


def _mfe_pairs(seq: str) -> np.ndarray:
    return dot_bracket_to_pairs(_rna().fold(seq)[0])


MIN_POOL = 32  # fewer sequences are folded in this process: starting workers would dominate

# A worker: a fresh interpreter that imports only ViennaRNA, one sequence per input line, one
# dot-bracket per output line. Fresh processes, rather than a fork of this one (which may run
# torch threads) or multiprocessing's spawn (which re-imports the caller's __main__).
_WORKER = "import sys, RNA\nfor line in sys.stdin:\n    print(RNA.fold(line.strip())[0])\n"


def rnafold_pairs(seqs: Sequence[str], processes: int = 1) -> list[np.ndarray]:
    """RNAfold MFE base pairs (default parameters, 37 °C) per sequence, (n, 2) int64 with i < j.

    With ``processes > 1`` and at least ``MIN_POOL`` sequences, the folding runs in that many
    worker interpreters (ViennaRNA holds the GIL, so threads would not help).
    """
    _rna()  # a clear error before any work when ViennaRNA is missing
    seqs = [str(s).upper().replace("T", "U") for s in seqs]
    bad = next((i for i, s in enumerate(seqs) if "\n" in s or "\r" in s), None)
    if bad is not None:
        raise ValueError(f"sequence {bad} contains a line break")
    processes = min(int(processes), len(seqs))
    if processes <= 1 or len(seqs) < MIN_POOL:
        return [_mfe_pairs(s) for s in seqs]
    return [dot_bracket_to_pairs(db) for db in _fold_in_workers(seqs, processes)]


def _fold_in_workers(seqs: list[str], processes: int) -> list[str]:
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    chunks = [c.tolist() for c in np.array_split(np.arange(len(seqs)), processes)]

    def run(idx: list[int]) -> list[str]:
        text = "".join(seqs[i] + "\n" for i in idx)
        r = subprocess.run([sys.executable, "-c", _WORKER], input=text, capture_output=True,
                           text=True, check=False)  # fmt: skip
        out = r.stdout.splitlines()
        if r.returncode != 0 or len(out) != len(idx):
            raise RuntimeError(
                f"an RNAfold worker failed (exit status {r.returncode}, {len(out)} of {len(idx)} "
                f"structures): {r.stderr.strip()[-500:]}"
            )
        return out

    with ThreadPoolExecutor(len(chunks)) as ex:  # the threads only wait on the workers' pipes
        return [db for part in ex.map(run, chunks) for db in part]


def add_pair_bonus(logits: np.ndarray, pairs: np.ndarray, weight: float) -> np.ndarray:
    """A copy of the symmetric (L, L) ``logits`` with ``weight`` added at every ``(i, j)`` and
    ``(j, i)`` of ``pairs``."""
    out = np.array(logits, dtype=np.float32, copy=True)
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(p) and (p.min() < 0 or p.max() >= out.shape[0]):
        raise ValueError(f"pairs index outside a {out.shape[0]}-nt score matrix")
    out[p[:, 0], p[:, 1]] += weight
    out[p[:, 1], p[:, 0]] += weight
    return out
