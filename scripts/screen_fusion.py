"""Choose the screening detector's homology settings on validation data: the seed (exact 11-mers
or spaced seeds), the alignment scores (match, mismatch, gap costs and the ungapped X-drop:
BLASTN's 2/−3 and 1/−1 schemes), the ungapped-extension gate (which windows are aligned with gaps;
the rest cannot be hits) and the CNN's weight in the fused log-odds (0 = homology alone).

Validation, as `rnaernie finetune screen` splits it (seed 0): 10 % of each nRC training family
held out (the scanning CNN of the shipped detector never trained on them); the library is the
other 90 % plus the Rfam seed members of their Rfam families, minus any sequence identical to a
held-out one, and without the members that align in 5 or more of the real transcripts
(`purge_promiscuous`). The held-out members are planted, on random strands, 1 kb apart in
dinucleotide-shuffled transcripts of the calibration part of `lncrna_mouse_prelnc/train`
(never seen in training); 2 Mb of the same background alone gives the score of 1 false window per
Mb searched. A member counts as found when a window on its strand that covers ≥ 50 % of it (or
lies within it) scores above that and names its family. Rule: the CNN weight with the best mean
sensitivity over the 13 families (the best scheme and gate), then, in that scheme, the highest
gate within 0.5 points of the best. With several seeds (``--seed``), the seed first: of the seeds
whose best mean sensitivity lies within 0.5 points of the best seed's, the one that searches the
background fastest (at its best row); then the rule above within that seed.

    python scripts/screen_fusion.py --out benchmarks/results/screen_fusion_valid.json
    python scripts/screen_fusion.py --scheme 1,-1,2,1,12:17,18,19,20 --seed 11111111111 \
        --seed 11110101100110111 --out benchmarks/results/screen_seed_valid.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

import rnaernie
from rnaernie.homology import HomologySettings, Library
from rnaernie.io import read_fasta
from rnaernie.kmer import shuffled_genome
from rnaernie.model.motif_cnn import MotifCNN
from rnaernie.screen import cnn_log_odds, homology_log_odds, window_spans
from rnaernie.tokenizer import normalise, reverse_complement
from rnaernie.training.common import read_labelled_fasta, stratified_holdout
from rnaernie.training.screen import library_members, purge_promiscuous

# match,mismatch,gap_open,gap_extend,xdrop: gates (ungapped score, the scheme's units)
SCHEMES = ("2,-3,5,2,20:26,30,34,38", "1,-1,2,1,12:17,18,19,20")
WEIGHTS = (0.0, 0.5, 1.0, 2.0)
WINDOW, STRIDE = 200, 100


def scan(lib: Library, cnn: MotifCNN, seq: str, threads: int):
    """Per strand: window spans, homology bits (N, F), aligned (N,), CNN log-odds bits (N, F)."""
    spans = window_spans(len(seq), WINDOW, STRIDE)
    out = {}
    for st in "+-":
        s = seq if st == "+" else reverse_complement(seq)
        starts = [a if st == "+" else len(seq) - b for a, b in spans]
        z, a = homology_log_odds(lib, s, starts, WINDOW, threads=threads)
        c = np.zeros_like(a.scores)
        idx = np.flatnonzero(a.aligned)
        c[idx] = cnn_log_odds(cnn, [s[starts[i] : starts[i] + WINDOW] for i in idx])
        out[st] = (np.array(spans), z / math.log(2), a.aligned, c / math.log(2))
    return out


def fused(res, w: float):
    z = res[1] + w * res[3]
    z = np.where(res[2][:, None], z, -np.inf)
    return z.max(1), z.argmax(1)


def sensitivity(genome_res, back_res, back_mb: float, planted, w: float, labels):
    b = np.concatenate([fused(back_res[st], w)[0] for st in "+-"])
    b = np.sort(b[np.isfinite(b)])[::-1]
    k = int(back_mb)  # one false window per Mb searched
    thr = float(b[k - 1]) if len(b) >= k else -np.inf
    found = np.zeros(len(planted), bool)
    for st in "+-":
        spans = genome_res[st][0]
        score, fam = fused(genome_res[st], w)
        for j, (a, e, gst, f) in enumerate(planted):
            if gst != st:
                continue
            ov = np.minimum(spans[:, 1], e) - np.maximum(spans[:, 0], a)
            win = ov >= 0.5 * min(e - a, WINDOW)
            found[j] = bool(((score > thr) & (fam == f) & win).any())
    fams = np.array([p[3] for p in planted])
    per = {labels[f]: round(float(found[fams == f].mean()), 4) for f in range(len(labels))}
    return thr, round(float(np.mean(list(per.values()))), 4), per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=os.environ.get("RNAERNIE_DATA", "../shared/data"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--background-mb", type=float, default=2.0)
    ap.add_argument("--k", type=int, default=HomologySettings().k, help="seed length")
    ap.add_argument("--seed", action="append", default=None,
                    help="a spaced seed's pattern to try, '1' must match, '0' need not "
                    "(repeatable; default: k contiguous ones)")  # fmt: skip
    ap.add_argument(
        "--scheme",
        action="append",
        default=None,
        help="alignment scores and gates to try, 'match,mismatch,gap_open,gap_extend,"
        "xdrop:gate,gate,...' (repeatable; default: " + " and ".join(SCHEMES) + ")",
    )
    ap.add_argument("--out", default="benchmarks/results/screen_fusion_valid.json")
    a = ap.parse_args()
    schemes = []
    for text in a.scheme or SCHEMES:
        try:
            head, _, gates = text.partition(":")
            m, x, go, ge, xd = (int(v) for v in head.split(","))
            scores = dict(match=m, mismatch=x, gap_open=go, gap_extend=ge, xdrop=xd)
            schemes.append((scores, [int(g) for g in gates.split(",")]))
        except ValueError:
            ap.error(f"--scheme needs 'match,mismatch,gap_open,gap_extend,xdrop:gate,...', "
                     f"got {text!r}")  # fmt: skip
    torch.set_num_threads(a.threads)
    data = Path(a.data_dir)
    head = Path(rnaernie.__file__).parent / "data/models/rnaernie-tiny/heads/screen"
    cnn = MotifCNN.load(head).eval()
    labels = cnn.labels[:-1]
    train = data / "nrc" / "train.fasta"
    seqs, y, _ = read_labelled_fasta(train, labels=labels)
    ids = [r.id for r in read_fasta(train, allow_duplicates=True)]
    held = stratified_holdout(y, 0.1, seed=0)
    keep = np.setdiff1d(np.arange(len(seqs)), held)
    members, fams, _, counts = library_members(
        [seqs[i] for i in keep], y[keep], [ids[i] for i in keep],
        rfam=data / "rfam14_2_seed_typed" / "rfam14.2_seed_typed.tsv.gz",
        exclude=[seqs[i] for i in held],
    )  # fmt: skip
    rng = np.random.default_rng(0)  # the calibration transcripts of `finetune screen --seed 0`
    tx = [r.seq for r in read_fasta(data / "lncrna_mouse_prelnc" / "train.fasta.gz",
                                    allow_duplicates=True)]  # fmt: skip
    order = rng.permutation(len(tx))
    cal = [tx[i] for i in order[: round(0.2 * len(tx))]]
    real = [tx[i] for i in order[round(0.2 * len(tx)) :]]
    flanks = shuffled_genome(cal, 1000 * len(held) + 1000, rng)
    parts, planted, pos = [], [], 0
    for k, i in enumerate(held):
        s = normalise(seqs[i])
        st = "+" if rng.random() < 0.5 else "-"
        parts.append(flanks[1000 * k : 1000 * (k + 1)])
        pos += 1000
        parts.append(s if st == "+" else reverse_complement(s))
        planted.append((pos, pos + len(s), st, int(y[i])))
        pos += len(s)
    genome = "".join(parts)
    back = shuffled_genome(cal, int(a.background_mb * 1e6), np.random.default_rng(1))
    back_mb = 2 * len(back) / 1e6
    rows = []
    for pattern in a.seed or ["1" * a.k]:
        for scores, gates in schemes:
            for gate in gates:
                settings = replace(HomologySettings(), k=pattern.count("1"),
                                   seed="" if set(pattern) == {"1"} else pattern,
                                   ungapped=gate, **scores)  # fmt: skip
                # the library as `finetune screen` builds it with these settings
                lib_seqs, lib_fams, _, dropped = purge_promiscuous(
                    members, fams, labels, real, settings=settings
                )
                lib = Library(lib_seqs, lib_fams, labels, settings)
                t0 = time.perf_counter()
                rb = scan(lib, cnn, back, a.threads)
                secs = time.perf_counter() - t0
                rg = scan(lib, cnn, genome, a.threads)
                aligned = float(np.concatenate([rb[st][2] for st in "+-"]).mean())
                for w in WEIGHTS:
                    thr, mean, per = sensitivity(rg, rb, back_mb, planted, w, labels)
                    rows.append({"seed": pattern, **scores, "ungapped": gate, "cnn_weight": w,
                                 "mean_sensitivity": mean, "sensitivity": per,
                                 "bits_at_1_per_mb": round(thr, 3), "promiscuous_dropped": dropped,
                                 "background_aligned": round(aligned, 4),
                                 "background_mb_per_s": round(len(back) / 1e6 / secs, 3)})  # fmt: skip
                    print(json.dumps(rows[-1]), flush=True)
    keys = ("seed", "match", "mismatch", "gap_open", "gap_extend", "xdrop", "cnn_weight")
    # the seed: the fastest of those within 0.5 points of the best (first of equals: listed order)
    by_seed: dict[str, dict] = {}
    for r in rows:
        if (
            r["seed"] not in by_seed
            or r["mean_sensitivity"] > by_seed[r["seed"]]["mean_sensitivity"]
        ):
            by_seed[r["seed"]] = r
    top = max(r["mean_sensitivity"] for r in by_seed.values())
    close = [r for r in by_seed.values() if r["mean_sensitivity"] >= top - 0.005]
    best = max(close, key=lambda r: r["background_mb_per_s"])
    same = [r for r in rows if all(r[k] == best[k] for k in keys)]
    gate = max(
        r["ungapped"] for r in same if r["mean_sensitivity"] >= best["mean_sensitivity"] - 0.005
    )
    out = {
        "validation": {"held_out_members": len(held), "genome_nt": len(genome),
                       "background_mb_searched": back_mb, "library": counts,
                       "threads": a.threads, "criterion": "1 false window per Mb searched"},
        "chosen": {**{k: best[k] for k in keys}, "ungapped": gate},
        "rows": rows,
    }  # fmt: skip
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["chosen"]))


if __name__ == "__main__":
    main()
