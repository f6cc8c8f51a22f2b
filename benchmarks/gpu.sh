#!/usr/bin/env bash
# Run the benchmark cases with JAX on a CUDA GPU: chainnmf, the analytic JAX
# updates and the machine limits (matmul rate, bandwidth) run on the GPU;
# scikit-learn and the paper's NumPy loop still run on the CPU cores.
#
# Needs the CUDA build of JAX next to the benchmark extra, for example:
#     pip install -e ".[bench]" "jax[cuda12]"
# Extra arguments go to run.py, for example --quick or --cases dense-kl.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python benchmarks/run.py --device gpu "$@"
