#!/usr/bin/env bash
# Runs a gp_jax config on every worker of a Cloud TPU VM pod (one process per host).
#
#   launch/tpu_pod.sh --tpu=NAME --zone=ZONE [--project=P] [--create=v4-32] [--setup] \
#       [--dry-run] --config=configs/imagenet_resnet50.py --workdir=/mnt/shared/W ...
#
# --create=TYPE creates the pod first (runtime $TPU_RUNTIME, default tpu-ubuntu2204-base);
# --setup copies this checkout to ~/gp_jax on every worker and builds its .venv with
# jax[tpu]; then every worker runs gp_jax.main with --coordinator_address=auto, so
# jax.distributed.initialize() finds the pod's processes. The workdir must be shared by
# all workers (an NFS or Filestore mount: results are written with the local file API),
# and the dataset (--config.dataset.data_dir) readable from each.
# --dry-run prints the gcloud commands instead of running them.
set -euo pipefail

tpu=""; zone=""; project=""; create=""; setup=0; dry_run=0; args=()
for a in "$@"; do
  case "$a" in
    --tpu=*) tpu="${a#*=}" ;;
    --zone=*) zone="${a#*=}" ;;
    --project=*) project="${a#*=}" ;;
    --create=*) create="${a#*=}" ;;
    --setup) setup=1 ;;
    --dry-run|--dry_run) dry_run=1 ;;
    *) args+=("$a") ;;
  esac
done
if [[ -z "$tpu" || -z "$zone" ]]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  echo "error: pass --tpu=NAME and --zone=ZONE" >&2; exit 2
fi
gcloud_tpu=(gcloud compute tpus tpu-vm)
where=("$tpu" "--zone=$zone"); [[ -n "$project" ]] && where+=("--project=$project")

run() {  # prints (dry run) or runs one command
  if [[ $dry_run == 1 ]]; then printf '%q ' "$@"; echo; else "$@"; fi
}
quoted_args=$(printf '%q ' "${args[@]}")

if [[ -n "$create" ]]; then
  run "${gcloud_tpu[@]}" create "${where[@]}" "--accelerator-type=$create" \
      "--version=${TPU_RUNTIME:-tpu-ubuntu2204-base}"
fi
if [[ $setup == 1 ]]; then
  root="$(cd "$(dirname "$0")/.." && pwd)"
  run "${gcloud_tpu[@]}" scp --recurse "$root" "${where[0]}:~/gp_jax" "${where[@]:1}" --worker=all
  run "${gcloud_tpu[@]}" ssh "${where[@]}" --worker=all --command \
      "cd ~/gp_jax && make venv && .venv/bin/pip install -U 'jax[tpu]'"
fi
run "${gcloud_tpu[@]}" ssh "${where[@]}" --worker=all --command \
    "cd ~/gp_jax && .venv/bin/python -m gp_jax.main --coordinator_address=auto $quoted_args"
