#!/usr/bin/env bash
# Re-creates benchmarks/results/accuracy.json: `rnaernie evaluate` on the shipped model (baselines in
# the same run) plus, as `ablations`, the test metrics of every fine-tuning run docs/results.md cites
# (those found under runs/; a missing one is left out), then the structure-decoding and nRC-ensemble
# ablations (scripts/structure_decoding.py, scripts/nrc_ensemble.py).
set -euo pipefail
cd "$(dirname "$0")/.."
D=${RNAERNIE_DATA:-../shared/data}  # the evaluation data folder
# fp16 copy of a structure head with its decoder settings chosen on VL0, as the install step does
structure_fp16() {
  python scripts/fp16_head.py structure "$1" "$2"
  python scripts/choose_structure_settings.py "$2" --data $D
}
A=()
add() { if [ -f "$2" ]; then A+=(--ablation "$1=$2"); fi; }
add nrc_v1_2ep_pretrained_unguided runs/tiny-v1/ft-nrc-unguided/metrics.json
add nrc_v1_2ep_pretrained_type_guided runs/tiny-v1/ft-nrc/metrics.json
add nrc_v1_baseonly_masking_2ep_unguided runs/tiny-v1/ft-nrc-baseonly/metrics.json
add nrc_scratch_2ep_unguided runs/tiny-v1/ft-nrc-scratch/metrics.json
add nrc_v1_4ep_type_guided runs/tiny-v1/ft-nrc4/metrics.json
add nrc_v1_4ep_unguided runs/tiny-v1/ft-nrc4-unguided/metrics.json
add nrc_v2_6ep_unguided_cpu runs/ft-nrc-unguided/metrics.json
add structure_v1_1ep_unguided_cpu runs/tiny-v1/ft-structure/metrics.json
add structure_scratch runs/tiny-v1/ft-structure-scratch/metrics.json
add structure_v2_seed0_lr3e-4_collapsed runs/ft-structure-seed0-collapsed/metrics.json
add structure_v2_seed1_lr2e-4_collapsed runs/ft-structure-c2-seed1-collapsed/metrics.json
add lncrna_v2_2ep_unguided_not_shipped runs/ft-lncrna/metrics.json
add mirtarraw_grouped_v2_3ep_cpu runs/ft-interaction/metrics.json
add mirtarraw_official_v2_3ep runs/ft-interaction-official/metrics.json
add mirtarraw_grouped_scratch_3ep runs/ft-interaction-scratch/metrics.json
G=runs/gpu-h100
add nrc_v2_gpu5min_type_guided_shipped $G/ft-nrc-guided/metrics.json
add nrc_v2_gpu5min_unguided $G/ft-nrc-unguided/metrics.json
add nrc_scratch_gpu5min_unguided $G/ft-nrc-scratch/metrics.json
add structure_v1_gpu5min_unguided_shipped $G/ft-structure-v1/metrics.json
add structure_v1_gpu5min_type_guided $G/ft-structure-guided-v1/metrics.json
add structure_v2_gpu5min_lr1e-4_unguided $G/ft-structure-v2-lr1e-4/metrics.json
add lncrna_v2_gpu5min_unguided_not_shipped $G/ft-lncrna/metrics.json
add mirtarraw_grouped_v2_gpu5min_shipped $G/ft-interaction/metrics.json
S=runs/gpu-h100-nrc-sweep
for v in unguided-d0 guided-d0 unguided-d0.1 guided-d0.1 unguided-d0.2 guided-d0.2 unguided-d0.1-lr1e-4; do
  add nrc_v2_gpu2.7min_90pct_${v} $S/ft-nrc-$v/metrics.json
done
add structure_v1_cpu_3ep_unguided runs/ft-structure-3ep-v1/metrics.json
add structure_scratch_cpu_3ep runs/ft-structure-3ep-scratch/metrics.json
# H200 runs (scripts/gpu_checks.sh PLAN=pretrain, PLAN=nrc-sweep): v3 = v2 + 3.5 GPU minutes of
# pretraining; v3-baseonly = the same with base-level masking only; heads fine-tuned 4.2 minutes each
T=runs/gpu-h200
add nrc_v3_gpu4.2min_unguided_shipped $T/ft-nrc-unguided/metrics.json
add nrc_v3_gpu4.2min_type_guided $T/ft-nrc-guided/metrics.json
add nrc_v3baseonly_gpu4.2min_unguided $T/ft-nrc-baseonly-unguided/metrics.json
add nrc_scratch_gpu4.2min_unguided $T/ft-nrc-scratch/metrics.json
for v in unguided-d0 guided-d0 unguided-d0.1 guided-d0.1 unguided-d0.2 guided-d0.2 unguided-d0.1-lr1e-4; do
  l=$v && [[ $v == *-d0 ]] && l=${v%-d0}-d0.1-from-config  # no --dropout: the v3 config's 0.1
  add nrc_v3_gpu2.3min_90pct_${l} runs/gpu-h200-nrc-sweep/ft-nrc-$v/metrics.json
done
# CPU: the [MASK] augmentation of the nRC fine-tuning (--mask-prob) against none, 28
# minutes each (about 7 epochs) on the same 90 % of train, from v3 (scripts/finetune_all.sh nrc-aug)
add nrc_v3_cpu28min_90pct_unguided runs/nrc-aug/m0/metrics.json
add nrc_v3_cpu28min_90pct_unguided_mask0.15 runs/nrc-aug/m15/metrics.json
rnaernie evaluate --data-dir $D --cache runs/eval-cache --out benchmarks/results/accuracy.json "${A[@]}"
# The decoder-setting ablation (the GPU structure-v1 head, alone and with the GPU v2 head) and the nRC head ensembles, each written to its own JSON; they need the run
# directories under runs/.
V1HEAD=$G/models/ft-structure-v1
if [ -d $G/models/ft-structure-v2-lr1e-4 ]; then
  python scripts/structure_decoding.py $V1HEAD \
    $G/models/ft-structure-v2-lr1e-4 --data $D --cache runs/eval-cache --rnafold
fi
# the structure-v1 head beside the three H200 structure heads (v3 at LR 1e-4 and 3e-4, the v1 head
# fine-tuned 4.2 GPU minutes more), compared on VL0
if [ -d $T/models/ft-structure-head-cont ]; then
  python scripts/structure_decoding.py $V1HEAD \
    $T/models/ft-structure-v3-lr1e-4 $T/models/ft-structure-v3-lr3e-4 \
    $T/models/ft-structure-head-cont --data $D --cache runs/eval-cache --rnafold \
    --out benchmarks/results/structure_h200_heads.json
fi
# the shipped structure head (structure-v1 + one CPU epoch with sequences up to 510 nt) against it
if [ -d $V1HEAD ]; then
  python scripts/structure_decoding.py rnaernie/data/models/rnaernie-tiny/heads/structure $V1HEAD \
    --data $D --cache runs/eval-cache --rnafold --out benchmarks/results/structure_long.json
fi
# the shipped structure head (structure-long3: the v1 head + 5 CPU epochs with TR0 sequences up to
# 510 nt) against the same head after 3 epochs (structure-long2) and after 1 (structure-long), each
# fp16 with settings chosen on VL0 as the install step does
if [ -f runs/ft-structure-long2/model.safetensors ] && [ -f runs/ft-structure-long/model.safetensors ]; then
  for r in long2 long; do structure_fp16 runs/ft-structure-$r runs/fp16-structure-$r; done
  python scripts/structure_decoding.py rnaernie/data/models/rnaernie-tiny/heads/structure runs/fp16-structure-long2 \
    runs/fp16-structure-long --data $D --cache runs/eval-cache --rnafold \
    --out benchmarks/results/structure_cpu_epochs.json
fi
NRC_HEADS=($G/models/ft-nrc-guided $G/models/ft-nrc-unguided $S/models/ft-nrc-*)
if [ -d $G/models/ft-nrc-guided ]; then
  python scripts/nrc_ensemble.py "${NRC_HEADS[@]}" --data $D --cache runs/eval-cache \
    --indicator runs/pretrain-tiny-c2/final --versus-kmer  # the v2 base they were fine-tuned from
fi
if [ -d $T/models/ft-nrc-guided ]; then  # the two v3 H200 heads and their ensemble
  python scripts/nrc_ensemble.py $T/models/ft-nrc-unguided $T/models/ft-nrc-guided --data $D \
    --cache runs/eval-cache --versus-kmer --out benchmarks/results/nrc_ensemble_v3.json
fi
# the shipped nRC head against the k-mer baseline, paired by test sequence
python scripts/nrc_ensemble.py rnaernie/data/models/rnaernie-tiny/heads/nrc --data $D \
  --cache runs/eval-cache --versus-kmer --out benchmarks/results/nrc_vs_kmer.json
# the shipped nRC head multiplied with its k-mer classifier (what classify does) and, as controls,
# other heads multiplied with the k-mer baseline: the v3 type-guided head, the v2 unguided head and
# the same architecture fine-tuned from scratch (both 5.3 H100 minutes)
python scripts/nrc_ensemble.py rnaernie/data/models/rnaernie-tiny/heads/nrc $T/models/ft-nrc-guided \
  $G/models/ft-nrc-unguided $G/models/ft-nrc-scratch --no-ensembles --times-kmer --data $D \
  --cache runs/eval-cache --out benchmarks/results/nrc_kmer_hybrid.json
# the same rule on validation data: the CPU head fine-tuned on 90 % of train, scored on the other 10 %
if [ -f runs/nrc-aug/m0/model.safetensors ]; then
  python scripts/nrc_kmer_holdout.py runs/nrc-aug/m0 --fraction 0.1 --seed 0 --data $D \
    --out benchmarks/results/nrc_kmer_holdout.json
fi
# not shipped: the shipped structure head after two more CPU epochs, 7 in all (finetune_all.sh
# structure-long4), fp16 with its settings chosen on VL0, against the shipped head
if [ -f runs/ft-structure-long4/model.safetensors ]; then
  structure_fp16 runs/ft-structure-long4 runs/fp16-structure-long4
  python scripts/structure_decoding.py runs/fp16-structure-long4 rnaernie/data/models/rnaernie-tiny/heads/structure \
    --data $D --cache runs/eval-cache --rnafold --out benchmarks/results/structure_long_7ep.json
fi
