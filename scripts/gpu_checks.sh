#!/usr/bin/env bash
# The GPU checks, benchmarks and time-capped fine-tunings, in one command that finishes by a deadline:
#
#   OUT=/some/dir DEADLINE_S=520 bash scripts/gpu_checks.sh
#
# 1. installs rnaernie (editable; builds the C++ core)                       -> install.log
# 2. GPU benchmarks, alone on the GPU: Triton attention vs SDPA flash, and whole-model embedding
#    throughput, Triton vs SDPA, and against multimolecule when its wheels were carried
#    (bash scripts/gpu_wheels.sh; carry .gpuwheels)                          -> check/, model_gpu.json
# 3. in parallel: the kernel correctness tests on CUDA (small shapes with fixed configs, real sizes
#    autotuned) and the fine-tunings of scripts/finetune_all.sh's recipes, each under a wall-time cap that
#    ends the LR schedule in time (attention forced to SDPA there: the Triton backward is checked
#    by the tests running beside them, not relied on)                   -> ft-*/ (metrics.json, log)
# 4. packs the results: $OUT/results.tar.gz (logs, JSON, test XML, metrics) and the fine-tuned
#    models in fp16 as $OUT/models.tar.part-* (15 MB pieces; `cat models.tar.part-* | tar x`).
#
# Data: $RNAERNIE_DATA (default ./.gpudata: nrc, bprna_ts0_vl0_tr0, mirtarraw, lncrna_mouse_prelnc
# copied from ../shared/data, plus rfam14_2_seed_typed for PLAN=pretrain). Pretrained: V2 (default:
# the shipped base, v3; V2=runs/pretrain-tiny-c2/final reproduces the v2 recipes) and V1
# (default ./.gpuruns/v1, the 3,000-step checkpoint); SHIPPED: the shipped model (its heads).
# DEVICE=cpu and a small CAP_MIN make a dry run.
# PLAN=all (default) runs everything above; PLAN=checks only the benchmarks and the kernel tests;
# PLAN=nrc-sweep only the nRC fine-tuning variants (dropout, type guidance, LR), each scored on a
# 10 % validation part of the training set too.
# PLAN=pretrain: continued pretraining of $V2 on the GPU (scripts/pretrain_gpu.json, a
# PRETRAIN_MIN-minute cap) beside the same run with base-level masking only (the masking ablation at
# the same budget), then the nRC fine-tunings from both (guided / unguided; scratch for reference) and
# three structure fine-tunings (the continued base at two LRs; the shipped structure head continued),
# without their VL0/TS0 evaluation (done on the CPU afterwards). Brings the continued base back in fp32.
# PLAN=pretrain-diagnosis: the decisive pretraining comparison (scripts/pretrain_diagnosis.py
# --mode heldout, base-level masking, held-out masked-base accuracy and loss against tokens seen):
# random against sinusoidal position initialisation, side by side, DIAG_TOKENS tokens each (default
# 5e7) or until the deadline                                           -> diagnosis/*.json(l)
# PLAN=nrc-aug: the shipped nRC recipe (unguided, from $V2) with the [MASK] augmentation at
# MASK_PROBS (default "0 0.1 0.2"), each twice at once: on 90 % of the training set, scored on the
# other 10 % (choose the probability there), and on all of it, scored on test (ship that one).
set -uo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."
T0=$(date +%s)
DEADLINE_S=${DEADLINE_S:-520}
OUT=${OUT:?set OUT}
W=$(mktemp -d)
DEVICE=${DEVICE:-cuda}
export RNAERNIE_DATA=${RNAERNIE_DATA:-$PWD/.gpudata}
D=$RNAERNIE_DATA
SHIPPED=${SHIPPED:-rnaernie/data/models/rnaernie-tiny}
V2=${V2:-$SHIPPED}
V1=${V1:-.gpuruns/v1}
PLAN=${PLAN:-all}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
left() { echo $((DEADLINE_S - ($(date +%s) - T0))); }
log() { echo "[$(($(date +%s) - T0)) s] $*" | tee -a "$W/run.log"; }

log "install"
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    timeout 150 "$PY" -m pip install --no-build-isolation --no-deps -e . >"$W/install.log" 2>&1 ||
        log "install FAILED (see install.log)"
fi
"$PY" -c "import rnaernie, rnaernie._core" >>"$W/install.log" 2>&1 || log "rnaernie not importable"
if compgen -G ".gpuwheels/*.whl" >/dev/null; then  # carried (scripts/gpu_wheels.sh): multimolecule
    timeout 120 "$PY" -m pip install --no-index --no-deps .gpuwheels/*.whl >>"$W/install.log" 2>&1 ||
        log "carried wheels: install FAILED (see install.log)"
fi
{ nvidia-smi || true; "$PY" -c "import torch, triton; print(torch.__version__, torch.version.cuda, triton.__version__)"; } >"$W/machine.txt" 2>&1

if [ "$PLAN" = pretrain-diagnosis ]; then
    mkdir -p "$W/diagnosis"
    for pos in random sinusoidal; do
        (timeout $(($(left) - 30)) "$PY" scripts/pretrain_diagnosis.py --mode heldout --n 0 --device "$DEVICE" \
            --corpus "$D/rfam14_2_seed_typed/rfam14.2_seed_typed.tsv.gz" --pos-init "$pos" --levels base \
            --lr 1e-3 --batch-tokens 32768 --max-tokens "${DIAG_TOKENS:-5e7}" --eval-tokens 2e6 \
            --max-minutes $((($(left) - 45) / 60)) --threads 4 --out "$W/diagnosis/heldout_$pos.json" \
            >"$W/diagnosis/heldout_$pos.log" 2>&1; echo "rc=$?" >>"$W/diagnosis/heldout_$pos.log") &
    done
    wait
    for pos in random sinusoidal; do log "diagnosis $pos: $(grep '\[eval\]' "$W/diagnosis/heldout_$pos.log" | tail -1)"; done
fi

if [ "$PLAN" = pretrain ]; then  # the two pretrainings, in parallel, before the fine-tunings
    for name in pretrain pretrain-baseonly; do
        mkdir -p "$W/$name"
        "$PY" -c '
import json, sys
out, name, corpus, init, minutes, device = sys.argv[1:]
cfg = json.load(open("scripts/pretrain_gpu.json"))
cfg.update(out=out, corpus=corpus, init_from=init, max_minutes=float(minutes), device=device)
if name.endswith("baseonly"):
    cfg["levels"] = ["base"]
json.dump(cfg, open(out + "/config.json", "w"), indent=1)
' "$W/$name" "$name" "$D/rfam14_2_seed_typed/rfam14.2_seed_typed.tsv.gz" "$V2" "${PRETRAIN_MIN:-3.5}" "$DEVICE"
        (OMP_NUM_THREADS=4 RNAERNIE_ATTN_IMPL=sdpa timeout $(($(left) - 15)) "$PY" -m rnaernie.cli \
            pretrain --config "$W/$name/config.json" >"$W/$name/stdout.txt" 2>&1
            echo "rc=$?" >>"$W/$name/stdout.txt") &
    done
    wait
    for name in pretrain pretrain-baseonly; do
        log "$name: $(tail -1 "$W/$name/stdout.txt") $(grep '"eval"' "$W/$name/log.jsonl" | tail -1 | cut -c1-400)"
        rm -rf "$W/$name/checkpoint"
    done
fi

if [ "$DEVICE" = cuda ] && { [ "$PLAN" = all ] || [ "$PLAN" = checks ]; }; then
    log "benchmarks: attention"
    mkdir -p "$W/check"
    RNAERNIE_BENCH_DIR="$W/check" timeout 120 "$PY" -m pytest -p no:cacheprovider -q -k "not packed" \
        benchmarks/bench_attention_gpu.py --benchmark-only --benchmark-json="$W/check/bench_attention.json" \
        --benchmark-columns=median,iqr,rounds >"$W/check/bench_attention.log" 2>&1 || log "attention bench rc=$?"
    log "benchmarks: packed (varlen) attention vs padded SDPA"
    RNAERNIE_BENCH_DIR="$W/check" timeout 120 "$PY" -m pytest -p no:cacheprovider -q -k packed \
        benchmarks/bench_attention_gpu.py --benchmark-only --benchmark-json="$W/check/bench_attention_packed.json" \
        --benchmark-columns=median,iqr,rounds >"$W/check/bench_attention_packed.log" 2>&1 || log "packed bench rc=$?"
    log "benchmarks: model"
    # -P: the repository root off sys.path (its kernels/ would shadow transformers' `kernels`)
    RNAERNIE_BENCH_DIR="$W" timeout 160 "$PY" -P -m pytest -p no:cacheprovider -q \
        benchmarks/bench_model_gpu.py --benchmark-only --benchmark-json="$W/bench_model_gpu_raw.json" \
        --benchmark-columns=median,iqr,rounds >"$W/bench_model_gpu.log" 2>&1 || log "model bench rc=$?"
    log "benchmarks: screening (the CNN and the language model on the GPU, the homology search on 16 cores)"
    timeout 150 "$PY" scripts/screen_benchmark.py --data-dir "$D" --device cuda --threads 16 \
        --out "$W/check/screen_gpu.json" >"$W/check/screen_gpu.log" 2>&1 || log "screen bench rc=$?"
fi

# ---- fine-tunings, in parallel; each stops training CAP_MIN minutes after it starts --------------
EVAL_MARGIN=${EVAL_MARGIN:-110}  # evaluation after training (structure: VL0 threshold + TS0 decode)
CAP_MIN=${CAP_MIN:-$("$PY" -c "print(round(max(0.5, ($(left) - $EVAL_MARGIN) / 60), 2))")}
log "fine-tunings with a ${CAP_MIN} min training cap each"
ft() {  # name, then the rnaernie finetune arguments
    local name=$1
    shift
    mkdir -p "$W/ft-$name"
    (OMP_NUM_THREADS=2 RNAERNIE_ATTN_IMPL=sdpa TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 \
        timeout $(($(left) - 15)) "$PY" -m rnaernie.cli finetune "$@" --device "$DEVICE" \
        --max-minutes "$CAP_MIN" --out "$W/ft-$name" >"$W/ft-$name/log.txt" 2>&1
        echo "rc=$?" >>"$W/ft-$name/log.txt") &
}
CLS=(--batch-tokens 4096 --lr 2e-4)
STRUCT=("$D/bprna_ts0_vl0_tr0/TR0.dbn.gz" --valid "$D/bprna_ts0_vl0_tr0/VL0.dbn" --test "$D/bprna_ts0_vl0_tr0/TS0.dbn")
if [ "$PLAN" = nrc-sweep ]; then
    NRC=("$D/nrc/train.fasta" --test "$D/nrc/test.fasta" --pretrained "$V2" --valid-fraction 0.1 --epochs 30 --batch-tokens 4096)
    ft nrc-unguided-d0 classify "${NRC[@]}" --no-type-guidance --lr 2e-4
    ft nrc-guided-d0 classify "${NRC[@]}" --lr 2e-4
    ft nrc-unguided-d0.1 classify "${NRC[@]}" --no-type-guidance --lr 2e-4 --dropout 0.1
    ft nrc-guided-d0.1 classify "${NRC[@]}" --lr 2e-4 --dropout 0.1
    ft nrc-unguided-d0.2 classify "${NRC[@]}" --no-type-guidance --lr 2e-4 --dropout 0.2
    ft nrc-guided-d0.2 classify "${NRC[@]}" --lr 2e-4 --dropout 0.2
    ft nrc-unguided-d0.1-lr1e-4 classify "${NRC[@]}" --no-type-guidance --lr 1e-4 --dropout 0.1
elif [ "$PLAN" = pretrain ]; then
    NEW=$W/pretrain/final
    if [ ! -f "$NEW/model.safetensors" ]; then
        log "no continued base (see pretrain/stdout.txt): fine-tuning from $V2"
        NEW=$V2
    fi
    NRC=("$D/nrc/train.fasta" --test "$D/nrc/test.fasta" --epochs 60 "${CLS[@]}")
    ft nrc-guided classify "${NRC[@]}" --pretrained "$NEW"
    ft nrc-unguided classify "${NRC[@]}" --pretrained "$NEW" --no-type-guidance
    ft nrc-baseonly-unguided classify "${NRC[@]}" --pretrained "$W/pretrain-baseonly/final" --no-type-guidance
    ft nrc-scratch classify "${NRC[@]}" --pretrained '' --no-type-guidance
    TR0=("$D/bprna_ts0_vl0_tr0/TR0.dbn.gz" --epochs 40)
    ft structure-v3-lr1e-4 structure "${TR0[@]}" --pretrained "$NEW" --lr 1e-4
    ft structure-v3-lr3e-4 structure "${TR0[@]}" --pretrained "$NEW" --lr 3e-4
    ft structure-head-cont structure "${TR0[@]}" --pretrained "$SHIPPED/heads/structure" --lr 1e-4
elif [ "$PLAN" = nrc-aug ]; then
    NRC=("$D/nrc/train.fasta" --test "$D/nrc/test.fasta" --pretrained "$V2" --no-type-guidance --epochs 60 "${CLS[@]}")
    for p in ${MASK_PROBS:-0 0.1 0.2}; do
        ft "nrc-m$p-valid" classify "${NRC[@]}" --mask-prob "$p" --valid-fraction 0.1
        ft "nrc-m$p" classify "${NRC[@]}" --mask-prob "$p"
    done
elif [ "$PLAN" = all ]; then
    ft nrc-unguided classify "$D/nrc/train.fasta" --test "$D/nrc/test.fasta" --pretrained "$V2" --no-type-guidance --epochs 60 "${CLS[@]}"
    ft nrc-guided classify "$D/nrc/train.fasta" --test "$D/nrc/test.fasta" --pretrained "$V2" --epochs 60 "${CLS[@]}"
    ft nrc-scratch classify "$D/nrc/train.fasta" --test "$D/nrc/test.fasta" --pretrained '' --no-type-guidance --epochs 60 "${CLS[@]}"
    ft structure-v1 structure "${STRUCT[@]}" --pretrained "$V1" --epochs 40
    ft structure-guided-v1 structure "${STRUCT[@]}" --pretrained "$V1" --type-guided --epochs 40
    ft structure-v2-lr1e-4 structure "${STRUCT[@]}" --pretrained "$V2" --lr 1e-4 --epochs 40
    ft interaction interact "$D/mirtarraw" --split grouped --pretrained "$V2" --epochs 20
    ft lncrna classify "$D/lncrna_mouse_prelnc/train.fasta.gz" --test "$D/lncrna_mouse_prelnc/test.fasta.gz" --pretrained "$V2" --no-type-guidance --epochs 20 --batch-tokens 8192 --lr 2e-4 --max-windows 4
fi

if [ "$DEVICE" = cuda ] && { [ "$PLAN" = all ] || [ "$PLAN" = checks ]; }; then
    log "kernel correctness tests (beside the fine-tunings)"
    mkdir -p "$W/check"
    RNAERNIE_TRITON_AUTOTUNE=0 timeout 200 "$PY" -m pytest -p no:cacheprovider -q -W ignore::UserWarning -W ignore::FutureWarning \
        tests/test_kernels_attention.py tests/test_kernels_masking.py tests/test_attention_dispatch.py \
        --junitxml="$W/check/tests_small.xml" >"$W/check/tests_small.log" 2>&1 || log "small tests rc=$?"
    timeout 150 "$PY" -m pytest -p no:cacheprovider -q -W ignore::UserWarning -W ignore::FutureWarning tests/test_kernels_gpu.py \
        "tests/test_model.py::test_cuda_auto_matches_sdpa_forward_backward" \
        "tests/test_shipped_model.py::test_cuda_auto_dtype_matches_cpu_float32" \
        --junitxml="$W/check/tests_gpu.xml" >"$W/check/tests_gpu.log" 2>&1 || log "gpu tests rc=$?"
    log "tests done"
fi
wait
log "fine-tunings done"
for d in "$W"/ft-*; do
    log "$(basename "$d"): $(tail -1 "$d/log.txt") $(cat "$d/metrics.json" 2>/dev/null | tr -d '\n ' | cut -c1-300)"
done

# ---- pack --------------------------------------------------------------------------------------
mkdir -p "$W/models"
[ "${PACK_MODELS:-1}" = 1 ] || rm -f "$W"/ft-*/model.safetensors  # PACK_MODELS=0: metrics only
for d in "$W"/ft-*; do
    [ -f "$d/model.safetensors" ] || continue
    name=$(basename "$d")
    case "$name" in ft-nrc-scratch | ft-nrc-baseonly-unguided | ft-nrc-*-valid)  # their metrics are enough
        rm -f "$d/model.safetensors"
        continue ;;
    esac
    case "$name" in *structure*) kind=structure ;; *interaction*) kind=interaction ;; *) kind=nrc ;; esac
    "$PY" scripts/fp16_head.py "$kind" "$d" "$W/models/$name" || log "fp16 copy of $d failed"
    if [ -f "$d/metrics.json" ]; then cp "$d/metrics.json" "$W/models/$name/"; fi
    rm -f "$d/model.safetensors"
done
if [ -f "$W/pretrain/final/model.safetensors" ]; then  # the continued base, fp32 as shipped
    mkdir -p "$W/models/pretrain-final" && mv "$W/pretrain/final"/* "$W/models/pretrain-final/"
fi
rm -rf "$W/pretrain-baseonly/final"
cp "$W/run.log" "$OUT/run.log"
tar -C "$W" --exclude=models -czf "$OUT/results.tar.gz" .
tar -C "$W" -cf - models | split -b 15M - "$OUT/models.tar.part-"
log "packed: $(ls "$OUT" | tr '\n' ' ')"
cp "$W/run.log" "$OUT/run.log"
