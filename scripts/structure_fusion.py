"""Pair logits fused with ViennaRNA base-pair probabilities: settings chosen on bpRNA VL0, scored on
TS0, ArchiveII ≤ 600 and ArchiveII family by family (each family's fusion refitted without it).

    python scripts/structure_fusion.py HEAD_DIR --data ../shared/data --cache runs/eval-cache \\
        --out benchmarks/results/structure_fusion.json [--write-head]

Candidates, all chosen by mean per-sequence F1 on VL0 (the learned fusion scored there by 2-fold
cross-fitting, so it is not scored on the sequences it was fitted on):

* ``sum_w``: fused logit = logit + w · logit(p), w in ``WEIGHTS``;
* ``fusion``: :class:`rnaernie.structure.prior.Fusion` fitted by logistic regression on VL0 (its
  features include how diffuse the head's probabilities are, to trust the logits less there);

each decoded by MEA (γ grid), ThreshKnot (threshold grid) or the nested decoder (logit threshold
grid), with and without lonely pairs where the decoder allows it. The chosen predictor is compared,
per sequence with a paired bootstrap, to RNAfold MFE, ViennaRNA's MEA (γ = 1) from the same
probabilities, the head alone and the head with the MFE prior (its ``decode`` and
``prior_rnafold`` settings).

ArchiveII by family: VL0 sequences are assigned to the ArchiveII family of their nearest ArchiveII
sequence (cosine of 4-mer spectra ≥ ``FAMILY_COSINE``); for each family the chosen rule's fusion is
refitted and its decoder re-chosen on VL0 without that family's sequences. Caveat: the head itself is trained on
TR0, which shares families with ArchiveII. The mean over families is bootstrapped within families.

Both rules are a :class:`~rnaernie.structure.prior.Fusion` (the sum: coefficients 1 and w);
``--write-head`` stores the chosen one, with its decoder settings, as the head's ``prior_bpp``
config entry, which ``fold --prior bpp`` reads.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from rnaernie.evaluate import head_pair_logits, paired_bootstrap, vienna_partitions
from rnaernie.kmer import kmer_spectra
from rnaernie.model import RnaErnieForContactPrediction
from rnaernie.structure import DecodeOptions, decode_batch, decoder_inputs, f1, read_dbn
from rnaernie.structure.decoders import PROBABILITY_METHODS
from rnaernie.structure.prior import FEATURES, Fusion, add_pair_bonus
from rnaernie.training.structure import THRESHOLDS

WEIGHTS = (0.25, 0.5, 1.0, 2.0)
FAMILY_COSINE = 0.8
SEED = 0
THREADS = os.cpu_count() or 1


def decoders() -> dict[str, DecodeOptions]:
    out = {}
    for nlp in (False, True):
        tag = "_nolp" if nlp else ""
        for g in (0.5, 1.0, 2.0, 3.0, 4.0, 6.0):
            out[f"mea_g{g}{tag}"] = DecodeOptions(method="mea", gamma=g, no_lonely_pairs=nlp)
        for t in THRESHOLDS:
            out[f"nested_t{t:+.1f}{tag}"] = DecodeOptions(threshold=t, no_lonely_pairs=nlp)
    for t in (0.2, 0.25, 0.3, 0.35, 0.4, 0.5):
        out[f"threshknot_t{t}"] = DecodeOptions(method="threshknot", threshold=t)
    return out


DECODERS = decoders()


class Scores:
    """Fused logits of some sequences and, computed once when a decoder needs them, their
    sigmoid probabilities."""

    def __init__(self, logits: list[np.ndarray]):
        self.logits = logits
        self._probs: list[np.ndarray] | None = None

    def for_decoder(self, opts: DecodeOptions) -> list[np.ndarray]:
        """What ``opts``' decoder reads (:func:`decoder_inputs`), the probabilities computed once."""
        if opts.method not in PROBABILITY_METHODS:
            return self.logits
        if self._probs is None:
            self._probs = decoder_inputs(self.logits, opts)
        return self._probs


def per_seq(seqs, fused, truth, opts: DecodeOptions) -> np.ndarray:
    """Per-sequence F1 of fused logits (a list or :class:`Scores`) decoded with ``opts``
    (sigmoid first for mea / threshknot)."""
    sc = fused if isinstance(fused, Scores) else Scores(fused)
    res = decode_batch(seqs, sc.for_decoder(opts), opts, num_threads=THREADS)
    return np.asarray([f1(r.pairs, t) for r, t in zip(res, truth)])


def best_decoder(seqs, fused, truth) -> tuple[str, float]:
    sc = Scores(fused)
    scores = {k: float(per_seq(seqs, sc, truth, o).mean()) for k, o in DECODERS.items()}
    k = max(scores, key=scores.get)
    return k, scores[k]


def sum_rule(w: float, decode: dict | None = None) -> Fusion:
    """The fused logit ``logit + w · logit(p)`` as a :class:`Fusion`."""
    coef = tuple({"logit": 1.0, "bpp_logit": w}.get(f, 0.0) for f in FEATURES)
    return Fusion(coef, 0.0, decode or {})


def fit(seqs, logits, parts, truth, idx) -> Fusion:
    return Fusion.fit([seqs[i] for i in idx], [logits[i] for i in idx], [parts[i] for i in idx],
                      [truth[i] for i in idx], seed=SEED)  # fmt: skip


def crossfit(seqs, logits, parts, truth, idx) -> list[np.ndarray]:
    """Fused logits of ``idx`` from 2-fold cross-fitting (each half by a fusion fitted on the
    other half)."""
    perm = np.random.default_rng(SEED).permutation(idx)
    halves = [perm[: len(perm) // 2], perm[len(perm) // 2 :]]
    out = {}
    for a, b in ((0, 1), (1, 0)):
        fu = fit(seqs, logits, parts, truth, halves[a])
        for i in halves[b]:
            out[int(i)] = fu(seqs[i], logits[i], parts[i])
    return [out[int(i)] for i in idx]


def choose(seqs, logits, parts, truth, idx, rules=None) -> dict:
    """Best candidate on ``idx`` of VL0: rule (among ``rules``, default all), decoder; the
    fusion refitted on all of ``idx`` when it is chosen."""
    sub = ([seqs[i] for i in idx], [truth[i] for i in idx])
    cands = {}
    for w in WEIGHTS:
        if rules is not None and f"sum_w{w}" not in rules:
            continue
        rule = sum_rule(w)
        fused = [rule(seqs[i], logits[i], parts[i]) for i in idx]
        cands[f"sum_w{w}"] = best_decoder(sub[0], fused, sub[1])
    if rules is None or "fusion" in rules:
        cands["fusion"] = best_decoder(sub[0], crossfit(seqs, logits, parts, truth, idx), sub[1])
    rule = max(cands, key=lambda k: cands[k][1])
    res = {"rule": rule, "decoder": cands[rule][0], "vl0_f1": round(cands[rule][1], 4),
           "candidates": {k: {"decoder": d, "f1": round(f, 4)} for k, (d, f) in cands.items()}}  # fmt: skip
    if rule == "fusion":
        res["fusion"] = fit(seqs, logits, parts, truth, idx)
    return res


def as_fusion(choice: dict) -> Fusion:
    """The chosen rule as a :class:`Fusion` carrying its decoder settings."""
    decode = DECODERS[choice["decoder"]].to_dict()
    if choice["rule"] == "fusion":
        return Fusion(choice["fusion"].coef, choice["fusion"].intercept, decode)
    return sum_rule(float(choice["rule"].removeprefix("sum_w")), decode)


def apply(choice: dict, seqs, logits, parts) -> list[np.ndarray]:
    fu = as_fusion(choice)
    return [fu(s, z, p) for s, z, p in zip(seqs, logits, parts)]


def families(vl0, arch) -> np.ndarray:
    """ArchiveII family of each VL0 record (nearest ArchiveII sequence by 4-mer cosine, when ≥
    ``FAMILY_COSINE``), else ``""``."""

    def spectra(recs):
        x = kmer_spectra([r.sequence for r in recs], kmax=4, replace_invalid=True)[:, -256:]
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)

    sim = spectra(vl0) @ spectra(arch).T
    fam = np.array([r.name.split("_")[0].lower() for r in arch])
    best = sim.argmax(1)
    return np.where(sim.max(1) >= FAMILY_COSINE, fam[best], "")


def baselines(head_extra: dict, seqs, logits, parts, truth) -> dict[str, np.ndarray]:
    decode_opts = DecodeOptions.from_dict(head_extra["decode"])
    pr = head_extra["prior_rnafold"]
    hybrid = [add_pair_bonus(z, p.mfe, pr["weight"]) for z, p in zip(logits, parts)]
    return {
        "rnafold_mfe": np.asarray([f1(p.mfe, t) for p, t in zip(parts, truth)]),
        "vienna_mea": np.asarray([f1(p.mea, t) for p, t in zip(parts, truth)]),
        "head_alone": per_seq(seqs, logits, truth, decode_opts),
        "head_mfe_prior": per_seq(seqs, hybrid, truth, DecodeOptions.from_dict(pr["decode"])),
    }


def compare(ours: np.ndarray, base: dict[str, np.ndarray]) -> dict:
    return {"f1": round(float(ours.mean()), 4), "n": len(ours),
            **{k: round(float(v.mean()), 4) for k, v in base.items()},
            "vs": {k: paired_bootstrap(ours, v) for k, v in base.items()}}  # fmt: skip


def family_bootstrap(a: np.ndarray, b: np.ndarray, fam: np.ndarray, n: int = 10_000) -> dict:
    """Mean over families of the per-family mean of ``a − b``, resampled within each family."""
    rng = np.random.default_rng(SEED)
    d = a - b
    groups = [d[fam == f] for f in sorted(set(fam))]
    boots = np.mean([g[rng.integers(0, len(g), size=(n, len(g)))].mean(1) for g in groups], axis=0)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    mean = float(np.mean([g.mean() for g in groups]))
    return {"mean_diff": round(mean, 4), "ci95": [round(float(lo), 4), round(float(hi), 4)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("head", type=Path)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--cache", type=Path, default=Path("runs/eval-cache"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/structure_fusion.json"))
    ap.add_argument("--write-head", action="store_true")
    a = ap.parse_args()
    t0 = time.perf_counter()
    bp = a.data / "bprna_ts0_vl0_tr0"
    arch_all = read_dbn(a.data / "archiveII" / "archiveII.dbn.gz")
    sets = {"bprna_vl0": read_dbn(bp / "VL0.dbn"), "bprna_ts0": read_dbn(bp / "TS0.dbn"),
            "archiveII_600": [r for r in arch_all if len(r.sequence) <= 600]}  # fmt: skip
    data = {}
    for k, recs in sets.items():
        seqs = [r.sequence.upper().replace("T", "U") for r in recs]
        data[k] = (seqs, head_pair_logits(a.cache, a.head, k, recs),
                   vienna_partitions(a.cache, k, recs), [r.pairs for r in recs])  # fmt: skip
        print(k, "ready", round(time.perf_counter() - t0), "s", flush=True)
    vl0 = data["bprna_vl0"]
    all_vl0 = np.arange(len(vl0[0]))
    choice = choose(*vl0, all_vl0)
    print("chosen on VL0:", {k: v for k, v in choice.items() if k != "fusion"}, flush=True)
    extra = RnaErnieForContactPrediction.from_pretrained(a.head).config.extra
    res: dict = {"head": str(a.head), "sets": {k: len(v[0]) for k, v in data.items()},
                 "chosen_on_vl0": {k: v for k, v in choice.items() if k != "fusion"}}  # fmt: skip
    res["chosen_on_vl0"]["prior_bpp"] = as_fusion(choice).to_dict()
    opts = DECODERS[choice["decoder"]]
    base_of = {}  # per-sequence F1 of the baselines, per test set (the family table reuses them)
    for k in ("bprna_ts0", "archiveII_600"):
        seqs, logits, parts, truth = data[k]
        ours = per_seq(seqs, apply(choice, seqs, logits, parts), truth, opts)
        base_of[k] = baselines(extra, seqs, logits, parts, truth)
        res[k] = compare(ours, base_of[k])
        print(k, json.dumps(res[k]), flush=True)
    # ArchiveII family by family, each with a fusion and decoder chosen without the family
    seqs, logits, parts, truth = data["archiveII_600"]
    fam = np.array([r.name.split("_")[0].lower() for r in sets["archiveII_600"]])
    vfam = families(sets["bprna_vl0"], sets["archiveII_600"])
    base = base_of["archiveII_600"]
    ours = np.zeros(len(seqs))
    per_family = {}
    for f in sorted(set(fam), key=lambda f: -(fam == f).sum()):
        keep = all_vl0[vfam != f]
        ch = choose(*vl0, keep, rules=[choice["rule"]])
        idx = np.flatnonzero(fam == f)
        fused = apply(ch, [seqs[i] for i in idx], [logits[i] for i in idx], [parts[i] for i in idx])
        ours[idx] = per_seq([seqs[i] for i in idx], fused, [truth[i] for i in idx],
                            DECODERS[ch["decoder"]])  # fmt: skip
        per_family[f] = {"n": len(idx), "vl0_left_out": int((vfam == f).sum()), "rule": ch["rule"],
                         "decoder": ch["decoder"], "fused": round(float(ours[idx].mean()), 4),
                         **{b: round(float(v[idx].mean()), 4) for b, v in base.items()}}  # fmt: skip
        print(f, json.dumps(per_family[f]), flush=True)
    res["archiveII_by_family"] = {
        "families": per_family,
        "mean_over_families": {"fused": round(float(np.mean([p["fused"] for p in per_family.values()])), 4),
                               **{b: round(float(np.mean([p[b] for p in per_family.values()])), 4)
                                  for b in base}},
        "vs": {b: family_bootstrap(ours, v, fam) for b, v in base.items()},
        "caveat": "the head is trained on bpRNA TR0, which shares families with ArchiveII; only the "
                  "fusion and decoder choice leave each family out",
    }  # fmt: skip
    pf = np.array([p.seconds for p in data["archiveII_600"][2]])
    lens = np.array([len(s) for s in data["archiveII_600"][0]])
    res["vienna_pf_seconds"] = {"archiveII_600_total": round(float(pf.sum()), 1),
                                "mean_per_sequence": round(float(pf.mean()), 4),
                                "mean_length": round(float(lens.mean()), 1)}  # fmt: skip
    res["seconds"] = round(time.perf_counter() - t0, 1)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    if a.write_head:  # the config only: the weights are not rewritten
        cfg = a.head / "config.json"
        c = json.loads(cfg.read_text())
        c.setdefault("extra", {})["prior_bpp"] = as_fusion(choice).to_dict()
        cfg.write_text(json.dumps(c, indent=2, sort_keys=True) + "\n")
        print("prior_bpp written to", cfg)


if __name__ == "__main__":
    main()
