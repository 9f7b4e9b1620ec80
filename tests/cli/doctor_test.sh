#!/usr/bin/env bash
# kiln doctor (facts, self-benchmark, warnings), the process environment Kiln chooses at start-up
# (a user's value wins, KILN_NO_TUNE_ENV turns it off, kiln-ml started directly re-executes once),
# and kiln version without LibTorch.
set -euo pipefail
KILN="$1"
KILN_ML="$(dirname "$KILN")/kiln-ml"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$(dirname "${BASH_SOURCE[0]}")/../lib/require_tools.sh"  # missing_tool
unset OPENBLAS_CORETYPE OMP_WAIT_POLICY KILN_ENV_PREPARED KILN_ENV_SET KILN_NO_TUNE_ENV
json() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

"$KILN" doctor --json --seconds 0.2 --size 256 >"$tmp/d.json" || fail "kiln doctor --json failed"
for key in cpu_model cpu_features blas blas_core threads gemm_fp32_gflops gemm_int8_gops peak_fp32_gflops; do
  [[ "$(json "$tmp/d.json" "'$key' in d")" == True ]] || fail "doctor --json lacks $key"
done
# The build's stand-ins for LibTorch's unused libraries (cmake/torch_unused_libs.sh) are what kiln-ml loads.
stand_ins="$(find "$(dirname "$KILN")/torch-unused-libs" -name 'lib*' 2>/dev/null | wc -l)"
[[ "$(json "$tmp/d.json" "d['torch_unused_lib_stand_ins']")" == "$stand_ins" ]] \
  || fail "doctor: $(json "$tmp/d.json" "d['torch_unused_lib_stand_ins']") stand-ins loaded, the build made $stand_ins"
[[ "$(json "$tmp/d.json" "d['blas']")" == OpenBLAS ]] || fail "doctor: BLAS is not OpenBLAS: $(cat "$tmp/d.json")"
[[ "$(json "$tmp/d.json" "d['gemm_fp32_gflops'] > 1")" == True ]] || fail "doctor: fp32 GEMM rate missing"
# The peak counts the faster of the nominal and the measured clock, so no GEMM reads above it (a
# virtual machine's /proc/cpuinfo shows the nominal clock of a core that boosts past it).
if [[ "$(uname -m)" == x86_64 ]]; then
  [[ "$(json "$tmp/d.json" "d['cpu_mhz_measured'] > 500")" == True ]] || fail "doctor: no measured clock: $(cat "$tmp/d.json")"
fi
[[ "$(json "$tmp/d.json" "d['peak_mhz'] >= max(d['cpu_mhz'], d['cpu_mhz_measured'])")" == True ]] || fail "doctor: peak clock"
[[ "$(json "$tmp/d.json" "d['gemm_fp32_gflops'] <= 1.1 * d['peak_fp32_gflops']")" == True ]] \
  || fail "doctor: fp32 GEMM above the CPU's peak: $(json "$tmp/d.json" "(d['gemm_fp32_gflops'], d['peak_fp32_gflops'])")"
[[ "$(json "$tmp/d.json" "'OMP_WAIT_POLICY=PASSIVE' in d['environment_set']")" == True ]] \
  || fail "kiln did not set OMP_WAIT_POLICY: $(json "$tmp/d.json" "d['environment_set']")"
best="$(json "$tmp/d.json" "d['blas_core_best']")"
core="$(json "$tmp/d.json" "d['blas_core']")"
if [[ -n "$best" ]]; then
  [[ "$core" == "$best" ]] || fail "OpenBLAS runs $core, the CPU supports $best"
  [[ "$(json "$tmp/d.json" "d['warnings']")" != *"generic"*"kernels on a CPU"* ]] || fail "doctor warns about kernels Kiln chose"
fi
[[ "$(json "$tmp/d.json" "d['threads']")" == "$(nproc)" ]] || fail "doctor threads default is not all cores"
"$KILN" --threads 1 doctor --json --no-bench >"$tmp/t1.json"
[[ "$(json "$tmp/t1.json" "d['threads']")" == 1 ]] || fail "--threads 1 not honoured by doctor"
[[ "$(json "$tmp/t1.json" "d['gemm_fp32_gflops']")" == None ]] || fail "--no-bench still benchmarked"

# The user's value wins, and doctor warns when it is a weaker kernel than the CPU supports.
OPENBLAS_CORETYPE=Prescott OMP_WAIT_POLICY=ACTIVE "$KILN" doctor --json --no-bench >"$tmp/u.json"
[[ "$(json "$tmp/u.json" "d['blas_core']")" == Prescott ]] || fail "the user's OPENBLAS_CORETYPE was overridden"
[[ "$(json "$tmp/u.json" "d['omp_wait_policy']")" == ACTIVE ]] || fail "the user's OMP_WAIT_POLICY was overridden"
[[ "$(json "$tmp/u.json" "'OPENBLAS_CORETYPE=Prescott' in d['environment_kept']")" == True ]] || fail "kept values not reported"
if [[ -n "$best" ]]; then
  grep -q "generic 'Prescott' kernels on a CPU that supports '$best'" "$tmp/u.json" || fail "no warning for generic kernels"
  OPENBLAS_CORETYPE=Prescott "$KILN" doctor --no-bench >"$tmp/u.txt"
  grep -q "^warning: OpenBLAS runs its generic 'Prescott' kernels" "$tmp/u.txt" || fail "text output lacks the warning"
fi

# Off switch, and kiln-ml started directly (not through kiln) prepares itself by re-executing once.
KILN_NO_TUNE_ENV=1 "$KILN" doctor --json --no-bench >"$tmp/off.json"
[[ "$(json "$tmp/off.json" "d['environment_set']")" == "[]" ]] || fail "KILN_NO_TUNE_ENV=1 still set variables"
"$KILN_ML" doctor --json --no-bench >"$tmp/direct.json"
[[ "$(json "$tmp/direct.json" "d['reexecuted']")" == True ]] || fail "kiln-ml started directly did not re-execute"
[[ "$(json "$tmp/direct.json" "d['blas_core']")" == "$core" ]] || fail "kiln-ml direct runs other kernels than kiln"

# Bad flags name the fix.
set +e; "$KILN" doctor --seconds 0 >"$tmp/out" 2>"$tmp/err"; rc=$?; set -e
[[ $rc -eq 2 ]] && grep -q "doctor.seconds_per_benchmark must be in (0, 60], got 0" "$tmp/err" || { cat "$tmp/err"; fail "bad --seconds"; }

# kiln version answers without starting kiln-ml (no LibTorch load).
if command -v strace >/dev/null; then
  out="$(strace -f -e trace=execve "$KILN" version 2>&1 >/dev/null)"
  [[ "$out" != *kiln-ml* ]] || fail "kiln version started kiln-ml"
else
  missing_tool strace strace "that kiln version does not start kiln-ml"
fi
version_out=$("$KILN" version)  # not piped into grep -q: its early exit would SIGPIPE kiln under pipefail
grep -q "^libtorch [0-9]" <<<"$version_out" || fail "kiln version lacks the LibTorch version"
echo "doctor: all checks passed"
