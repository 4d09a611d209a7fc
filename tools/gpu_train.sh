#!/usr/bin/env bash
# Train detector_v1 candidates with Keras on JAX on a lent GPU machine (no TensorFlow there).
#
# The data travels as two tars of ../shared/data/faces128 (each under the 64 MiB transfer limit):
#   .gpu/a.tar = train/real + val      .gpu/b.tar = train/fake + test
# and the keras wheel (plus namex, optree) in .whl/. Stage A unpacks part A and checks the stack with a
# 2-epoch run on val; stage B unpacks part B and trains the candidates in parallel, writing to $OUT.
#   stage A: bash tools/gpu_train.sh a      stage B: EPOCHS=40 MINUTES=6.5 bash tools/gpu_train.sh b
set -euo pipefail
stage=${1:?stage a or b}
DS=/root/ds
OUT=${OUT:-/tmp/out}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$DS" "$OUT"

if [ "$stage" = a ]; then
  tar xf .gpu/a.tar -C "$DS"
  nvidia-smi -L
  python3 -c "import keras, jax; print('keras', keras.__version__, 'jax', jax.__version__, jax.devices())"
  mkdir -p /tmp/sanity && ln -sfn "$DS/val" /tmp/sanity/train && ln -sfn "$DS/val" /tmp/sanity/val
  start=$SECONDS
  python3 -m models.train --arch v1 --data /tmp/sanity --out /tmp/sanity_out \
      --epochs 3 --workers 8 2>&1 | tr '\r' '\n' | grep -E "epoch [0-9]+/3: 100%|saved|wall|rror" | tail -8
  echo "sanity wall $((SECONDS - start)) s"
  exit 0
fi

tar xf .gpu/b.tar -C "$DS"
for d in train/real train/fake val/real val/fake test/real test/fake; do
  [ -d "$DS/$d" ] || { echo "missing $DS/$d: stage A did not run on this machine"; exit 3; }
done
EPOCHS=${EPOCHS:-40}
MINUTES=${MINUTES:-6.5}
common=(--arch v1 --data "$DS" --out "$OUT" --epochs "$EPOCHS" --patience 12 --time-limit "$MINUTES" --workers 5 --seed 0 --quiet)
python3 -m models.train "${common[@]}" --name v1_a > "$OUT/v1_a.log" 2>&1 &
python3 -m models.train "${common[@]}" --name v1_b --learning-rate 1e-3 > "$OUT/v1_b.log" 2>&1 &
python3 -m models.train "${common[@]}" --name v1_c --width 1.25 > "$OUT/v1_c.log" 2>&1 &
wait
tail -n 3 "$OUT"/*.log
ls -la "$OUT"
