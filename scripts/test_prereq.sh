#!/usr/bin/env bash
# Can this machine run a step of `make test`? Prints nothing (and exits 0) when it can; else
# one line saying what the step needs (and exits 1). `make test` skips such a step with that
# line; under CI (CI=true), which runs as root, a skipped step fails the run instead.
#
#   scripts/test_prereq.sh STEP
#
# Only two steps need more than the virtual environment:
# - slurm-check: a one-node SLURM cluster (scripts/slurm_cluster.sh start), which installs
#   slurm-wlm and munge and writes /etc/slurm/slurm.conf and /etc/munge: root, or a cluster
#   already running;
# - browser-check: headless Chromium (Debian: apt-get install chromium; .ci/run installs it).
set -uo pipefail
cd "$(dirname "$0")/.."

root() { [ "$(id -u)" = 0 ]; }
chromium_here() { command -v chromium >/dev/null || [ -x /usr/lib/chromium/chromium ]; }

case "${1:-}" in
  slurm-check)
    if ! root && ! bash scripts/slurm_cluster.sh status >/dev/null 2>&1; then
      echo "needs root: it installs slurm-wlm and munge and writes /etc/slurm/slurm.conf" \
           "(or a one-node cluster started by scripts/slurm_cluster.sh start)"
      exit 1
    fi ;;
  browser-check)
    if ! chromium_here; then
      echo "needs headless Chromium (Debian: apt-get install chromium; .ci/run installs it)"
      exit 1
    fi ;;
  "") echo "usage: $0 STEP" >&2; exit 2 ;;
esac
exit 0
