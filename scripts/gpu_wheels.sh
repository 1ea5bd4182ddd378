#!/usr/bin/env bash
# The wheels that the GPU machine lacks for the multimolecule comparison of
# benchmarks/bench_model_gpu.py, fetched here for its Python (3.12) into .gpuwheels/ (git-ignored,
# about 4 MB). Carry that folder to the GPU run; scripts/gpu_checks.sh installs it (--no-deps: the
# machine's torch, transformers, pandas, scipy, pyarrow and the rest stay as they are).
#
#   bash scripts/gpu_wheels.sh && <device run, carry .gpuwheels> bash scripts/gpu_checks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${PYVER:-3.12}
rm -rf .gpuwheels
python3 -m pip download --no-deps --only-binary=:all: --python-version "$PYVER" -d .gpuwheels -q \
    multimolecule==0.2.2 chanfig==0.0.117 danling==0.4.8 datasets==5.2.0 torchdata==0.11.0 \
    lazy-imports==1.2.0 python-frontmatter==1.3.0 gitpython==3.2.1 gitdb==4.0.12 smmap==5.0.3 \
    dill==0.4.1 multiprocess==0.70.19
ls .gpuwheels
