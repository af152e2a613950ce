#!/usr/bin/env bash
# Runs every benchmarks/bench_*.py script with its default settings (each prints its own
# measurements) in the project's virtualenv. For other settings run one script directly, e.g.
#   .venv/bin/python benchmarks/bench_predict.py --help
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
shopt -s nullglob
scripts=(benchmarks/bench_*.py)
if [ ${#scripts[@]} -eq 0 ]; then
    echo "bench.sh: no benchmark scripts in benchmarks/" >&2
    exit 1
fi
status=0
for script in "${scripts[@]}"; do
    printf '\033[1m[bench]\033[0m %s\n' "$script"
    .venv/bin/python "$script" || { echo "bench.sh: $script failed" >&2; status=1; }
done
exit "$status"
