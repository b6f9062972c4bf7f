#!/usr/bin/env bash
# The accelerator benchmark in one command, for a lent GPU (BENCHMARKS.md, table 10).
#
#   make gpu-wheels            # here, once: the packages the GPU machine lacks -> .gpu_wheels/
#   bash benchmarks/gpu.sh     # there, through the device tool, carrying .gpu_wheels:
#                              #   installs the wheels offline, runs `benchmarks.bench --only=gpu`
#                              #   (under 8 minutes), writes bench_gpu.json (and $OUT/ if set)
#   bash benchmarks/gpu.sh --smoke   # anywhere: tiny shapes on whatever jax sees (a test runs it)
#
# The GPU machine has jax (CUDA), torch, flax, optax and orbax but reaches no package
# registry: the rest travel as wheels, installed with --no-index into /tmp/gp_jax_site.
# Each row prints as it finishes and rewrites bench_gpu.json, so a cut-off run keeps them.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
QUICK=""
if [[ "${1:-}" == "--smoke" ]]; then QUICK="--quick"; fi
WHEELS=${GPU_WHEELS:-.gpu_wheels}
if [[ -d "$WHEELS" ]] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  echo "gpu.sh: installing $(ls "$WHEELS"/*.whl | wc -l) carried wheels (offline)"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/gp_jax_site "$WHEELS"/*.whl
  export PYTHONPATH="/tmp/gp_jax_site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
"$PYTHON" -c "import jax; print('gpu.sh: jax', jax.__version__, jax.devices())"
OUTDIR=${GPU_BENCH_OUT:-.}
status=0
timeout "${GPU_BENCH_TIMEOUT:-510}" "$PYTHON" -m benchmarks.bench --only=gpu $QUICK \
  --out="$OUTDIR" || status=$?
if [[ -n "${OUT:-}" && -f "$OUTDIR/bench_gpu.json" ]]; then cp "$OUTDIR/bench_gpu.json" "$OUT/"; fi
echo "gpu.sh: done (exit $status); figures in $OUTDIR/bench_gpu.json"
exit $status
