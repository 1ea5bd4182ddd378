#!/usr/bin/env bash
# Run the benchmarks and save pytest-benchmark JSON under benchmarks/results/.
#   scripts/run_benchmarks.sh            # all benchmarks/bench_*.py
#   scripts/run_benchmarks.sh motifs     # only benchmarks/bench_motifs.py
# The native-core files (tokenizer, motifs, masking) run together into results/native_core.json; any
# other bench_X.py goes to results/X.json. Extra pytest args: PYTEST_ARGS="-k rnaernie".
# pyproject's addopts carry --benchmark-skip; benchmarks/conftest.py lets --benchmark-enable win.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python}"
mkdir -p benchmarks/results
run() {  # run <json name> <files...>
  local out="benchmarks/results/$1.json"
  shift
  echo "== $* -> $out"
  "$PY" -m pytest "$@" --benchmark-enable -p no:cacheprovider --benchmark-json="$out" \
    --benchmark-columns=min,mean,median,stddev,rounds -q ${PYTEST_ARGS:-}
}
native=()
status=0
for f in benchmarks/bench_*.py; do
  name="$(basename "$f" .py)"
  name="${name#bench_}"
  if [[ $# -gt 0 && ! " $* " == *" $name "* ]]; then continue; fi
  case "$name" in
    tokenizer | motifs | masking) native+=("$f") ;;
    *) run "$name" "$f" || status=$? ;;
  esac
done
if [[ ${#native[@]} -gt 0 ]]; then
  if [[ ${#native[@]} -eq 3 ]]; then
    run native_core "${native[@]}" || status=$?
  else
    for f in "${native[@]}"; do n="$(basename "$f" .py)"; run "${n#bench_}" "$f" || status=$?; done
  fi
fi
exit $status
