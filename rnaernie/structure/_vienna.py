"""ViennaRNA calls behind :mod:`rnaernie.structure.prior`, importable and runnable as a worker.

Run as a script (``python _vienna.py mfe`` or ``python _vienna.py pf OUT.npz``) it reads one
sequence per line from stdin: ``mfe`` prints one dot-bracket per line, ``pf`` writes every
sequence's partition-function results to ``OUT.npz`` (plain arrays, no pickles). A worker is a
fresh interpreter that imports only ViennaRNA and numpy, not the caller's modules or threads.
"""

from __future__ import annotations

import sys
import time

import numpy as np

BPP_CUTOFF = (
    1e-4  # base-pair probabilities below it are not kept (MEA and the fusion treat them as 0)
)
MEA_GAMMA = 1.0  # ViennaRNA's default for RNAfold --MEA


def mfe(seq: str) -> str:
    """RNAfold's minimum-free-energy structure (default parameters, 37 °C)."""
    import RNA

    return RNA.fold(seq)[0]


def partition(seq: str) -> tuple[str, str, np.ndarray, np.ndarray, float]:
    """MFE structure, ViennaRNA's MEA structure (``MEA_GAMMA``), the pairs ``(n, 2)`` with
    ``i < j`` (0-based) whose probability is ``≥ BPP_CUTOFF`` and those probabilities, and the
    seconds of MFE + partition function + probabilities."""
    import RNA

    t = time.perf_counter()
    fc = RNA.fold_compound(seq)
    structure, energy = fc.mfe()
    fc.exp_params_rescale(energy)  # scale for the partition function (avoids overflow)
    fc.pf()
    # the pairs above the cut-off only (a dense (L + 1)² copy would cost O(L²) Python floats)
    plist = [e for e in fc.plist_from_probs(BPP_CUTOFF) if e.type == 0]  # type 0: base pairs
    seconds = time.perf_counter() - t
    pairs = np.array([(e.i - 1, e.j - 1) for e in plist], dtype=np.int32).reshape(-1, 2)
    probs = np.array([e.p for e in plist], dtype=np.float32)
    mea = fc.MEA(MEA_GAMMA)[0]
    return structure, mea, pairs, probs, seconds


def pack(results: list[tuple[str, str, np.ndarray, np.ndarray, float]]) -> dict[str, np.ndarray]:
    """:func:`partition` results of many sequences as flat arrays (the worker's ``.npz``)."""
    counts = [len(r[3]) for r in results]
    width = max([1] + [len(r[0]) for r in results])
    return {
        "mfe": np.asarray([r[0] for r in results], dtype=f"<U{width}"),
        "mea": np.asarray([r[1] for r in results], dtype=f"<U{width}"),
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "pairs": np.concatenate([r[2] for r in results] or [np.zeros((0, 2), np.int32)]),
        "probs": np.concatenate([r[3] for r in results] or [np.zeros(0, np.float32)]),
        "seconds": np.asarray([r[4] for r in results], dtype=np.float64),
    }


def main(argv: list[str]) -> None:
    seqs = [line.strip() for line in sys.stdin]
    if argv[0] == "mfe":
        sys.stdout.write("".join(mfe(s) + "\n" for s in seqs))
    else:
        np.savez(argv[1], **pack([partition(s) for s in seqs]))


if __name__ == "__main__":
    main(sys.argv[1:])
