#!/usr/bin/env bash
# Pretrains the shipped tiny model on the Rfam corpus (resumable: rerun the same command to continue).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/pretrain-tiny}
LEVELS=${LEVELS:-base,subsequence,motif}
exec rnaernie pretrain \
  --corpus ../shared/data/rfam14_2_seed_typed/rfam14.2_seed_typed.tsv.gz \
  --preset tiny --levels "$LEVELS" --steps "${STEPS:-1000}" --batch-tokens 8192 --lr 7e-4 --warmup-steps 100 \
  --eval-every 500 --checkpoint-every 50 --log-every 10 --seed 0 --out "$OUT"
