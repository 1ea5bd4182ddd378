#!/usr/bin/env bash
# Fine-tunes the shipped heads and the ablations from a pretrained run, then installs the shipped model.
#   PRE=runs/pretrain-tiny/final scripts/finetune_all.sh JOB...
# JOB: nrc | nrc-unguided | nrc-scratch | nrc-aug | structure | structure-long | structure-long2 | structure-long3 |
#      structure-long4 | structure-guided | structure-scratch | lncrna |
#      interaction | interaction-guided | interaction-scratch | interaction-official | install
set -euo pipefail
cd "$(dirname "$0")/.."
PRE=${PRE:-runs/pretrain-tiny/final}
D=${RNAERNIE_DATA:-../shared/data}
DEST=rnaernie/data/models/rnaernie-tiny
EPOCHS=${EPOCHS:-2}
CLS=(--epochs "$EPOCHS" --batch-tokens 4096 --lr 2e-4)
# the run each shipped head comes from: runs/ft-HEAD unless HEAD_RUN names another
# (e.g. NRC_RUN=runs/ft-nrc-unguided STRUCTURE_RUN=runs/gpu-h100/models/ft-structure-v1)
src() {
  local var
  var="$(echo "$1" | tr '[:lower:]' '[:upper:]')_RUN"
  echo "${!var:-runs/ft-$1}"
}
for job in "$@"; do
  case "$job" in
    nrc) rnaernie finetune classify $D/nrc/train.fasta --test $D/nrc/test.fasta --pretrained "$PRE" "${CLS[@]}" --out runs/ft-nrc ;;
    nrc-unguided) rnaernie finetune classify $D/nrc/train.fasta --test $D/nrc/test.fasta --pretrained "$PRE" --no-type-guidance "${CLS[@]}" --out runs/ft-nrc-unguided ;;
    nrc-scratch) rnaernie finetune classify $D/nrc/train.fasta --test $D/nrc/test.fasta --pretrained '' --no-type-guidance "${CLS[@]}" --out runs/ft-nrc-scratch ;;
    nrc-aug)  # the [MASK] augmentation (0.15) against none: 90 % of train, 28 minutes each, one thread each, at once
      for p in 0 0.15; do
        mkdir -p "runs/nrc-aug/m${p#0.}"
        OMP_NUM_THREADS=1 rnaernie finetune classify $D/nrc/train.fasta --test $D/nrc/test.fasta --pretrained "$PRE" \
          --no-type-guidance --valid-fraction 0.1 --epochs 20 --batch-tokens 4096 --lr 2e-4 --max-minutes 28 \
          --mask-prob $p --out "runs/nrc-aug/m${p#0.}" >"runs/nrc-aug/m${p#0.}/log.txt" 2>&1 &
      done
      wait ;;
    structure) rnaernie finetune structure $D/bprna_ts0_vl0_tr0/TR0.dbn.gz --valid $D/bprna_ts0_vl0_tr0/VL0.dbn --test $D/bprna_ts0_vl0_tr0/TS0.dbn --pretrained "$PRE" --out runs/ft-structure ;;
    structure-scratch) rnaernie finetune structure $D/bprna_ts0_vl0_tr0/TR0.dbn.gz --valid $D/bprna_ts0_vl0_tr0/VL0.dbn --test $D/bprna_ts0_vl0_tr0/TS0.dbn --pretrained '' --out runs/ft-structure-scratch ;;
    structure-long)  # the GPU structure-v1 head, one more CPU epoch with sequences up to 510 nt
      rnaernie finetune structure $D/bprna_ts0_vl0_tr0/TR0.dbn.gz --pretrained "${STRUCTURE_INIT:-runs/gpu-h100/models/ft-structure-v1}" --max-length 510 --epochs 1 --lr 1e-4 --out runs/ft-structure-long ;;
    structure-long2)  # structure-long, two more CPU epochs (sequences up to 510 nt, another shuffle)
      rnaernie finetune structure $D/bprna_ts0_vl0_tr0/TR0.dbn.gz --pretrained runs/ft-structure-long --max-length 510 --epochs 2 --lr 1e-4 --seed 1 --out runs/ft-structure-long2 ;;
    structure-long3)  # structure-long2, two more CPU epochs (another shuffle): the shipped head
      rnaernie finetune structure $D/bprna_ts0_vl0_tr0/TR0.dbn.gz --pretrained runs/ft-structure-long2 --max-length 510 --epochs 2 --lr 1e-4 --seed 2 --out runs/ft-structure-long3 ;;
    structure-long4)  # structure-long3, two more CPU epochs (another shuffle)
      rnaernie finetune structure $D/bprna_ts0_vl0_tr0/TR0.dbn.gz --pretrained runs/ft-structure-long3 --max-length 510 --epochs 2 --lr 1e-4 --seed 3 --out runs/ft-structure-long4 ;;
    structure-guided) rnaernie finetune structure $D/bprna_ts0_vl0_tr0/TR0.dbn.gz --valid $D/bprna_ts0_vl0_tr0/VL0.dbn --test $D/bprna_ts0_vl0_tr0/TS0.dbn --pretrained "$PRE" --type-guided --out runs/ft-structure-guided ;;
    lncrna) rnaernie finetune classify $D/lncrna_mouse_prelnc/train.fasta.gz --pretrained "$PRE" --no-type-guidance --epochs "${LNC_EPOCHS:-2}" --batch-tokens 8192 --lr 2e-4 --max-windows 4 --out runs/ft-lncrna ;;
    interaction) rnaernie finetune interact $D/mirtarraw --split grouped --pretrained "$PRE" --epochs "${INT_EPOCHS:-3}" --out runs/ft-interaction ;;
    interaction-guided) rnaernie finetune interact $D/mirtarraw --split grouped --pretrained "$PRE" --type-guided --epochs "${INT_EPOCHS:-3}" --out runs/ft-interaction-guided ;;
    interaction-scratch) rnaernie finetune interact $D/mirtarraw --split grouped --pretrained '' --epochs "${INT_EPOCHS:-3}" --out runs/ft-interaction-scratch ;;
    interaction-official) rnaernie finetune interact $D/mirtarraw --split official --pretrained "$PRE" --epochs "${INT_EPOCHS:-3}" --out runs/ft-interaction-official ;;
    install)
      # the encoder stays fp32 (< 16 MiB); heads are stored fp16 (half the size, loaded back as fp32)
      mkdir -p "$DEST/heads"
      cp "$PRE"/config.json "$PRE"/model.safetensors "$DEST"/
      for h in ${HEADS:-nrc structure interaction}; do
        rm -rf "$DEST/heads/$h" && mkdir -p "$DEST/heads/$h"
        python scripts/fp16_head.py "$h" "$(src "$h")" "$DEST/heads/$h"
        if [ "$h" = structure ]; then  # decoder and prior settings, chosen on VL0 with the stored fp16 weights
          python scripts/choose_structure_settings.py "$DEST/heads/structure" --data $D
        fi
        if [ "$h" = nrc ]; then  # the k-mer classifier that classify multiplies with the head
          python scripts/fit_kmer_head.py "$DEST/heads/nrc" $D/nrc/train.fasta
        fi
      done ;;
    *) echo "unknown job $job" >&2; exit 2 ;;
  esac
done
