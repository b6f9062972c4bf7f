#!/usr/bin/env bash
# N processes of gp_jax.main on this machine, joined through 127.0.0.1 (as on N hosts).
#
#   launch/local_multiprocess.sh N [--dry-run] [--devices_per_process=K] [--port=P] \
#       --config=configs/digits_resnet20.py --workdir=W [--stages=...] [--config.mesh.model=2]
#
# Process 0 prints to the terminal; process i>0 logs to W/logs/process_<i>.log.
# --devices_per_process=K gives each process K fake CPU devices (JAX_NUM_CPU_DEVICES).
# If one process fails, the others are stopped; the exit code is the first failure's.
set -euo pipefail

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
if [[ $# -lt 1 || ! "$1" =~ ^[0-9]+$ || "$1" -lt 1 ]]; then
  usage >&2; echo "error: the first argument is the number of processes (>= 1)" >&2; exit 2
fi
num=$1; shift
dry_run=0; devices=""; port=""; args=(); workdir=""
for a in "$@"; do
  case "$a" in
    --dry-run|--dry_run) dry_run=1 ;;
    --devices_per_process=*) devices="${a#*=}" ;;
    --port=*) port="${a#*=}" ;;
    *) [[ "$a" == --workdir=* ]] && workdir="${a#*=}"; args+=("$a") ;;
  esac
done
if [[ -z "$workdir" ]]; then echo "error: pass --workdir=W" >&2; exit 2; fi
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"; [[ -x "$python" ]] || python=python3
if [[ -z "$port" ]]; then
  port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
env_prefix=(env "PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH}")
[[ -n "$devices" ]] && env_prefix+=("JAX_NUM_CPU_DEVICES=$devices" "JAX_PLATFORMS=cpu")

command_for() {  # the command line of process $1
  echo "${env_prefix[*]} $python -m gp_jax.main --coordinator_address=127.0.0.1:$port" \
       "--num_processes=$num --process_id=$1 ${args[*]}"
}
if [[ $dry_run == 1 ]]; then
  for ((i = 0; i < num; i++)); do command_for "$i"; done
  exit 0
fi

mkdir -p "$workdir/logs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup INT TERM
for ((i = 0; i < num; i++)); do
  cmd=("${env_prefix[@]}" "$python" -m gp_jax.main "--coordinator_address=127.0.0.1:$port"
       "--num_processes=$num" "--process_id=$i" "${args[@]}")
  if [[ $i == 0 ]]; then "${cmd[@]}" & else "${cmd[@]}" >"$workdir/logs/process_$i.log" 2>&1 & fi
  pids+=($!)
done
status=0
# Wait for each process; on the first failure stop the rest (they would wait on it).
live=("${pids[@]}")
while (( ${#live[@]} > 0 )); do
  set +e; wait -n -p done_pid "${live[@]}"; code=$?; set -e
  live=($(printf '%s\n' "${live[@]}" | grep -vx "$done_pid" || true))
  if [[ $code != 0 && $status == 0 ]]; then
    status=$code
    echo "error: process with pid $done_pid exited with code $code; stopping the others" \
         "(logs: $workdir/logs/)" >&2
    cleanup
  fi
done
exit "$status"
