"""Decoder settings of the structure head, measured on VL0 (selection) and TS0 / ArchiveII ≤ 600 nt.

For each head (and the mean of all heads' logits, an ensemble) and each decoder setting — logit
threshold × lonely pairs allowed or forbidden — the mean per-sequence F1 on every set. Also, on
ArchiveII, the score with threshold 0 when sequences over 510 nt count as empty predictions instead
of being read in windows (``arch_thr+0.0_long_scored_empty``), which shows what the windows add.

    python scripts/structure_decoding.py HEAD_DIR [HEAD_DIR ...] \\
        --data ../shared/data --cache runs/eval-cache --out benchmarks/results/structure_decoding.json

Pair logits are cached per head and set in ``--cache`` (``logits-<hash of the weights>/SET-<hash>.npz``,
:func:`rnaernie.evaluate.head_pair_logits`).
With ``--rnafold``, ViennaRNA's per-sequence F1 on TS0 and ArchiveII (MFE pairs cached the way
``rnaernie evaluate`` caches them) and a paired bootstrap (10,000 resamples) of the mean F1 difference between each head's (and the ensemble's) VL0-chosen
setting and RNAfold: its 95 % interval says whether a lead is more than noise; plus both F1s per
ArchiveII family.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rnaernie.evaluate import head_pair_logits, paired_bootstrap, rnafold_structures
from rnaernie.structure import DecodeOptions, f1, read_dbn
from rnaernie.training.structure import THRESHOLDS, per_sequence_f1, score_structures


def _rnafold(name: str, recs, cache: Path) -> np.ndarray:
    """Per-sequence F1 of RNAfold's MFE structures (folded once, cached by evaluate's helper)."""
    pairs, _ = rnafold_structures(cache, name, recs)
    return np.asarray([f1(p, r.pairs) for p, r in zip(pairs, recs)])


# decoder settings: (logit threshold, no lonely pairs), named in the JSON as thr-0.5 / thr-0.5_nolp
SETTINGS = {
    f"thr{t:+.1f}{'_nolp' if nlp else ''}": DecodeOptions(threshold=t, no_lonely_pairs=nlp)
    for nlp in (False, True)
    for t in THRESHOLDS
}


ENSEMBLE = "ensemble_mean_logits"


def _sets(data: Path) -> dict:
    bp = data / "bprna_ts0_vl0_tr0"
    arch = read_dbn(data / "archiveII" / "archiveII.dbn.gz")
    return {
        "vl0": read_dbn(bp / "VL0.dbn"),
        "ts0": read_dbn(bp / "TS0.dbn"),
        "arch": [r for r in arch if len(r.sequence) <= 600],
    }


def _logits(head: Path, name: str, recs, cache: Path) -> list[np.ndarray]:
    """The head's pair logits of the set, cached by evaluate's helper (keyed by its weights)."""
    t = time.perf_counter()
    out = head_pair_logits(cache, head, name, recs)
    print(f"{head.name} {name}: logits in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def _grid(logits, recs) -> dict:
    return {
        name: round(score_structures(logits, recs, opts)["f1"], 6)
        for name, opts in SETTINGS.items()
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("heads", nargs="+", type=Path)
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--cache", type=Path, default=Path("runs/eval-cache"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/structure_decoding.json"))
    p.add_argument("--rnafold", action="store_true", help="paired bootstrap against RNA.fold")
    a = p.parse_args()
    sets = _sets(a.data)
    res: dict = {"sets": {k: len(v) for k, v in sets.items()}, "heads": [str(h) for h in a.heads]}
    logits: dict = {}
    for k, recs in sets.items():
        per_head = logits[k] = {h.name: _logits(h, k, recs, a.cache) for h in a.heads}
        for name, z in per_head.items():
            res.setdefault(name, {})[k] = _grid(z, recs)
            if k == "arch":  # without windows: ≤ 510 nt decoded, longer ones scored 0
                short = [i for i, r in enumerate(recs) if len(r.sequence) <= 510]
                f = score_structures(
                    [z[i] for i in short], [recs[i] for i in short], DecodeOptions()
                )["f1"]
                res[name]["arch_thr+0.0_long_scored_empty"] = round(f * len(short) / len(recs), 4)
        if len(per_head) > 1:
            mean = [np.mean(m, axis=0) for m in zip(*per_head.values())]
            per_head[ENSEMBLE] = mean
            res.setdefault(ENSEMBLE, {})[k] = _grid(mean, recs)
        print(k, "done", flush=True)
    for name, r in res.items():
        if name not in ("sets", "heads"):
            best = max(r["vl0"], key=r["vl0"].get)
            r["chosen_on_vl0"] = {"setting": best, **{k: r[k][best] for k in sets}}
    if a.rnafold:
        for k in ("ts0", "arch"):
            ref = _rnafold(k, sets[k], a.cache)
            res.setdefault("rnafold", {})[k] = round(float(ref.mean()), 4)
            for name, z in logits[k].items():
                r = res[name]
                ours = per_sequence_f1(z, sets[k], SETTINGS[r["chosen_on_vl0"]["setting"]])[0]
                r.setdefault("vs_rnafold", {})[k] = paired_bootstrap(ours, ref)
                if k == "arch":  # ArchiveII names start with the family: 5s_, trna_, srp_, ...
                    fam = np.array([x.name.split("_")[0].lower() for x in sets[k]])
                    r["arch_per_family_vs_rnafold"] = {
                        f: {"n": int((fam == f).sum()), "ours": round(float(ours[fam == f].mean()), 3),
                            "rnafold": round(float(ref[fam == f].mean()), 3)}
                        for f in sorted(set(fam), key=lambda f: -(fam == f).sum())
                    }  # fmt: skip
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(
        json.dumps(
            {
                n: r["chosen_on_vl0"]
                for n, r in res.items()
                if isinstance(r, dict) and "chosen_on_vl0" in r
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
