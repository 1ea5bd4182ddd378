#!/usr/bin/env bash
# Kernel checks and benchmarks for a machine with one CUDA GPU (prepared for an H100; at most
# ~9 min by the per-step timeouts, expected ~4-6 min; run with timeout_s=600).
#
#   OUT=/some/dir bash scripts/gpu_check.sh
#
# 1. machine description           -> $OUT/machine.txt
# 2. small-shape kernel tests      -> $OUT/tests_small.xml   (the interpreter tests, run on CUDA,
#    with one fixed config per kernel, RNAERNIE_TRITON_AUTOTUNE=0, to bound compile time)
# 3. real-size kernel-vs-reference -> $OUT/tests_gpu.xml     (tests/test_kernels_gpu.py, autotuned)
# 4. benchmarks vs SDPA flash      -> $OUT/bench_attention.json (pytest-benchmark) and
#                                     $OUT/attention_gpu_summary.json (TFLOP/s + ratios)
# Everything is logged to $OUT/log.txt. Works without installing rnaernie: if
# `import rnaernie.kernels` fails, a throw-away shim package points at ./kernels.
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$REPO/benchmarks/results/gpu_check}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET

RUN_DIR="$REPO"
if ! (cd "$REPO" && "$PY" -c "import rnaernie.kernels.attention" 2>/dev/null); then
    SHIM="$(mktemp -d)"
    mkdir -p "$SHIM/rnaernie"
    echo '"""Shim: only rnaernie.kernels, for scripts/gpu_check.sh."""' > "$SHIM/rnaernie/__init__.py"
    ln -s "$REPO/kernels" "$SHIM/rnaernie/kernels"
    export PYTHONPATH="$SHIM${PYTHONPATH:+:$PYTHONPATH}"
    RUN_DIR="$SHIM"
    echo "rnaernie not importable from $REPO; using the kernels-only shim at $SHIM"
fi

{
    date -u +"%Y-%m-%dT%H:%M:%SZ"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
    "$PY" -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
} | tee "$OUT/machine.txt"

# -c/--rootdir: use the repo's pytest settings from whichever directory we run in.
PYTEST=("$PY" -m pytest -c "$REPO/pyproject.toml" --rootdir "$REPO" -p no:cacheprovider)
status=0

echo "== small-shape kernel tests on CUDA (fixed configs) =="
(cd "$RUN_DIR" && RNAERNIE_TRITON_AUTOTUNE=0 timeout 200 "${PYTEST[@]}" -q \
    "$REPO/tests/test_kernels_attention.py" "$REPO/tests/test_kernels_masking.py" \
    --junitxml="$OUT/tests_small.xml") || status=1

echo "== real-size kernel-vs-reference tests =="
(cd "$RUN_DIR" && timeout 150 "${PYTEST[@]}" -q -m gpu "$REPO/tests/test_kernels_gpu.py" \
    --junitxml="$OUT/tests_gpu.xml") || status=1

echo "== benchmarks: Triton vs SDPA flash =="
(cd "$RUN_DIR" && RNAERNIE_BENCH_DIR="$OUT" timeout 200 "${PYTEST[@]}" -q \
    "$REPO/benchmarks/bench_attention_gpu.py" --benchmark-only \
    --benchmark-json="$OUT/bench_attention.json" \
    --benchmark-columns=median,iqr,rounds --benchmark-sort=name) || status=1

if [ -f "$OUT/attention_gpu_summary.json" ]; then
    "$PY" - "$OUT/attention_gpu_summary.json" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
print(s["machine"])
for r in s["rows"]:
    print(f'{r["mode"]:8s} {r["dtype"]} L={r["L"]:5d}  triton {r.get("triton_tflops", float("nan")):7.1f}'
          f'  sdpa {r.get("sdpa_flash_tflops", float("nan")):7.1f} TFLOP/s  ratio {r.get("triton_over_sdpa", float("nan")):.2f}')
PYEOF
fi
echo "gpu_check finished with status $status"
exit $status
