#!/usr/bin/env bash
# Fine-tunes the shipped heads and the ablations from a pretrained run, then installs the shipped model.
#   PRE=runs/pretrain-tiny/final scripts/finetune_all.sh [nrc|nrc-unguided|nrc-scratch|structure|structure-scratch|install]...
set -euo pipefail
cd "$(dirname "$0")/.."
PRE=${PRE:-runs/pretrain-tiny/final}
D=../shared/data
DEST=rnaernie/data/models/rnaernie-tiny
EPOCHS=${EPOCHS:-2}
CLS=(--epochs "$EPOCHS" --batch-tokens 4096 --lr 2e-4)
for job in "$@"; do
  case "$job" in
    nrc) rnaernie finetune classify $D/nrc/train.fasta --test $D/nrc/test.fasta --pretrained "$PRE" "${CLS[@]}" --out runs/ft-nrc ;;
    nrc-unguided) rnaernie finetune classify $D/nrc/train.fasta --test $D/nrc/test.fasta --pretrained "$PRE" --no-type-guidance "${CLS[@]}" --out runs/ft-nrc-unguided ;;
    nrc-scratch) rnaernie finetune classify $D/nrc/train.fasta --test $D/nrc/test.fasta --pretrained '' --no-type-guidance "${CLS[@]}" --out runs/ft-nrc-scratch ;;
    structure) rnaernie finetune structure $D/bprna_ts0_vl0_tr0/TR0.dbn.gz --valid $D/bprna_ts0_vl0_tr0/VL0.dbn --test $D/bprna_ts0_vl0_tr0/TS0.dbn --pretrained "$PRE" --out runs/ft-structure ;;
    structure-scratch) rnaernie finetune structure $D/bprna_ts0_vl0_tr0/TR0.dbn.gz --valid $D/bprna_ts0_vl0_tr0/VL0.dbn --test $D/bprna_ts0_vl0_tr0/TS0.dbn --pretrained '' --out runs/ft-structure-scratch ;;
    install)
      mkdir -p "$DEST/heads"
      cp "$PRE"/config.json "$PRE"/model.safetensors "$DEST"/
      for h in nrc structure; do
        mkdir -p "$DEST/heads/$h" && cp runs/ft-$h/config.json runs/ft-$h/model.safetensors "$DEST/heads/$h/"
        [ -f runs/ft-$h/labels.json ] && cp runs/ft-$h/labels.json "$DEST/heads/$h/"
      done ;;
    *) echo "unknown job $job" >&2; exit 2 ;;
  esac
done
