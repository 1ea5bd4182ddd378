"""Writes a structure head's decoder settings into its config, chosen on bpRNA VL0.

    python scripts/choose_structure_settings.py HEAD_DIR --data ../shared/data --cache runs/eval-cache

Sets ``decode`` (the decoder options of the model alone) and ``prior_rnafold`` (weight and
decoder options with ViennaRNA's MFE pairs as a prior), each the best mean
per-sequence F1 on VL0 over the grids ``rnaernie evaluate`` uses (the same choice it makes for a
head without them). The head is rewritten in place, in the precision its weights were stored in.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors import safe_open

from rnaernie.evaluate import rnafold_structures
from rnaernie.model import RnaErnieForContactPrediction
from rnaernie.predict import pair_logits
from rnaernie.structure import read_dbn
from rnaernie.training.structure import choose_decoding, choose_prior


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("head", type=Path)
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--cache", type=Path, default=Path("runs/eval-cache"))
    a = p.parse_args()
    model = RnaErnieForContactPrediction.from_pretrained(a.head)
    if model.config.extra.get("type_guided"):
        raise SystemExit(f"{a.head}: type-guided heads are not supported here")
    with safe_open(a.head / "model.safetensors", "pt") as f:  # the stored precision, kept
        stored = next(t.dtype for k in f.keys() if (t := f.get_tensor(k)).is_floating_point())
    vl0 = read_dbn(a.data / "bprna_ts0_vl0_tr0" / "VL0.dbn")
    logits = pair_logits(model, [r.sequence for r in vl0], replace_invalid=True)
    best = choose_decoding(model, vl0, logits=logits).to_dict()
    mfe, _ = rnafold_structures(a.cache, "bprna_vl0", vl0)
    prior = choose_prior(logits, vl0, mfe)
    model.config.extra = {**model.config.extra, "decode": best, "prior_rnafold": prior}
    model.save_pretrained(a.head, dtype=stored)
    print(json.dumps({"decode": best, "prior_rnafold": prior}))


if __name__ == "__main__":
    main()
