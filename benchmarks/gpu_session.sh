#!/bin/bash
# The lent-GPU checks of the CUDA target, in one call of the device tool (see
# /work/.library/device/README.md): the CUDA tests on the real GPU, `jitgrad bench --device
# cuda`, and the per-kernel profile. Logs go to $OUT (or /tmp/gpu_session).
#
#   bash benchmarks/gpu_session.sh [tests] [bench] [profile]      (default: all three)
#
# The device image's NumPy 2.5 breaks numba-cuda 0.30: carry a NumPy 2.4 wheel in .whl/.
# On an H100 the phases took about 1.5, 3 and 1.5 minutes (the timeouts below fit one
# 10-minute call).
set -u
OUT=${OUT:-/tmp/gpu_session}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 JITGRAD_CACHE_DIR=${JITGRAD_CACHE_DIR:-/tmp/jitgrad-cache}
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
fi
phases=${*:-tests bench profile}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader
python3 -c "import sys, numpy, numba, numba.cuda as c, torch; print(sys.version.split()[0], \
'numpy', numpy.__version__, 'numba', numba.__version__, 'numba.cuda at', c.__file__, \
'torch', torch.__version__, torch.cuda.is_available()); c.detect()" 2>&1 | tail -8
for phase in $phases; do
    start=$(date +%s)
    case $phase in
    tests)
        JITGRAD_TEST_CUDA=gpu JITGRAD_TEST_WORKERS=8 timeout 180 python3 -m pytest \
            tests/test_cuda_sim.py tests/test_cuda_eager.py \
            tests/test_bench.py::test_gpu_suite_under_the_simulator \
            -p no:cacheprovider -q -rfEs >"$OUT/tests.log" 2>&1
        echo "tests: exit $? in $(( $(date +%s) - start )) s"; tail -25 "$OUT/tests.log" ;;
    bench)
        timeout 300 python3 -m jitgrad bench --device cuda --threads 8 \
            --json "$OUT/bench.json" >"$OUT/bench.log" 2>&1
        echo "bench: exit $? in $(( $(date +%s) - start )) s"
        grep -v '^\[' "$OUT/bench.log" | tail -60 ;;
    profile)
        timeout 60 python3 -m benchmarks.gpu_profile W1,W3,W4,W5 >"$OUT/profile.log" 2>&1
        timeout 40 python3 -m benchmarks.gpu_profile W1 --n 67108864 >>"$OUT/profile.log" 2>&1
        echo "profile: exit $? in $(( $(date +%s) - start )) s"; cat "$OUT/profile.log" ;;
    esac
done
