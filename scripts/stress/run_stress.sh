#!/usr/bin/env bash
# Build rnaernie._core with AddressSanitizer + UBSan into a separate location and run the native
# stress tests against it. The normal (editable) install is not touched.
#
# Usage: scripts/stress/run_stress.sh [N_PER_FAMILY] [SEED]
#   ASAN_PREFIX   where the sanitized package is installed (default /tmp/rnaernie-asan)
#   SKIP_BUILD=1  reuse an existing $ASAN_PREFIX
#   STRUCT_ITERS  iterations for scripts/stress/stress_structure.py (default 2000)
#   ONLY          comma-separated families/probes to run (e.g. ONLY=masking,probe_encode_np_str)
#   STRESS_JSON   also write the full summary as JSON to this path
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PREFIX="${ASAN_PREFIX:-/tmp/rnaernie-asan}"
N="${1:-12000}"
SEED="${2:-0}"
PY="${PYTHON:-python}"
SITE="$("$PY" -c 'import numpy, os; print(os.path.dirname(os.path.dirname(numpy.__file__)))')"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  echo "== building the sanitized extension into $PREFIX (build dir build/asan)"
  rm -rf "$PREFIX"
  (cd "$ROOT" && "$PY" -m pip install --no-build-isolation --no-deps -q \
      -Ccmake.define.RNAERNIE_SANITIZE=ON -Cbuild-dir=build/asan -Ccmake.build-type=RelWithDebInfo \
      --target "$PREFIX" .)
fi

# libstdc++ is preloaded too: otherwise ASan's __cxa_throw interceptor finds no real __cxa_throw (python
# is C) and every C++ exception aborts with "CHECK failed: asan_interceptors.cpp ... real___cxa_throw".
PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
# python -S: skip site-packages processing so the editable-install finder (a .pth hook that wins over
# PYTHONPATH) does not load the normal build; numpy & co. come from $SITE on PYTHONPATH instead.
export PYTHONPATH="$PREFIX:$SITE"
export LD_PRELOAD="$PRELOAD"
# PYTHONMALLOC=malloc: route Python objects through malloc so ASan sees their frees (pymalloc arenas
# would hide a use-after-free of a temporary str).
export PYTHONMALLOC=malloc
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export RNAERNIE_STRESS_SANITIZED=1
export OMP_NUM_THREADS=1

cd "$ROOT"
"$PY" -S scripts/stress/stress_native.py --n "$N" --seed "$SEED" \
  --structure-iters "${STRUCT_ITERS:-2000}" --python "$PY -S" ${ONLY:+--only "$ONLY"}
