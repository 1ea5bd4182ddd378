#!/usr/bin/env bash
# Pretrains the shipped tiny model on the Rfam corpus (resumable: rerun the same command to continue).
# Settings: scripts/pretrain_tiny.json (override the run folder with OUT=..., the levels with LEVELS=...).
set -euo pipefail
cd "$(dirname "$0")/.."
CFG=$(mktemp)
python - "$CFG" <<'PY'
import json, os, sys
cfg = json.load(open("scripts/pretrain_tiny.json"))
cfg["out"] = os.environ.get("OUT", cfg["out"])
if os.environ.get("LEVELS"):
    cfg["levels"] = os.environ["LEVELS"].split(",")
if os.environ.get("STEPS"):
    cfg["steps"] = int(os.environ["STEPS"])
json.dump(cfg, open(sys.argv[1], "w"))
PY
exec rnaernie pretrain --config "$CFG"
