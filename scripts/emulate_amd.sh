#!/usr/bin/env bash
# Run a command as if on the 2-core AMD EPYC of issue 24, from an Intel with AMX (as root):
# oneDNN may not use AMX (ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 keeps AVX-512 BF16, as that
# AMD has), and the command gets 1.4 of the 2 cores (a cgroup-v1 CFS quota), about 1.43
# times slower: the ratio of run-seconds measured on that AMD against this Intel.
#
#   bash scripts/emulate_amd.sh bash -c 'time make book'
#   CI=true bash scripts/emulate_amd.sh bash .ci/run
set -euo pipefail
group=/sys/fs/cgroup/cpu/kdlib-amd
mkdir -p "$group"
echo 100000 >"$group/cpu.cfs_period_us"
echo 140000 >"$group/cpu.cfs_quota_us"
echo $$ >"$group/tasks"
export ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16
exec "$@"
