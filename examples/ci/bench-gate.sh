#!/usr/bin/env bash
# Benchmark a TensorFlow Serving REST endpoint, gate the results, write a report: the CI flow as a
# plain script (the GitHub Actions workflow next to it runs this same script).
#
#   examples/ci/bench-gate.sh URL [THRESHOLD ...]
#   examples/ci/bench-gate.sh http://127.0.0.1:8501 'p99<50ms' 'error_rate<1%' 'throughput_ips>=200'
#
# Thresholds use `tfsbench check`'s language (docs/check.md); without any, the gate is
# 'error_rate<1%' and 'p99<1s'. Environment (all optional):
#   TFSBENCH        how to run tfsbench (default: tfsbench), e.g. "python -m tfsbench"
#   MODEL           model name, or '{kind}' for one model per payload kind (default: numeric)
#   KINDS           payload kinds, comma-separated (default: numeric)
#   BATCH_SIZES     (default: 1,8)       CONCURRENCY (default: 2)
#   DURATION        measured time per run (default: 5s)      WARMUP (default: 1s)
#   CONFIG          a sweep TOML file ([sweep], [check]) used instead of the grid variables above;
#                   its [check] thresholds are added to the ones given here
#   BASELINE        a run file or sweep directory to compare with (significant regressions fail)
#   MAX_REGRESSION  tolerance for the baseline comparison (default: 10%)
#   OUT             output directory (default: results/ci): sweep/, report/, junit.xml, summary.md
#   READY_MODEL     model to wait for before the sweep (default: the first of MODEL/KINDS; none with CONFIG)
#   READY_TIMEOUT_S seconds to wait for it to be AVAILABLE (default: 120; needs curl)
#
# Exit status is `tfsbench check`'s: 0 all pass, 1 a threshold or regression failed, 2 bad input or
# a sweep that could not run. The report is written in every case where the sweep ran.
set -euo pipefail

if [[ $# -lt 1 || "$1" == -h || "$1" == --help ]]; then
  sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
  [[ $# -lt 1 ]] && exit 2 || exit 0
fi
URL="${1%/}"
shift
THRESHOLDS=("$@")
if [[ ${#THRESHOLDS[@]} -eq 0 && -z "${CONFIG:-}" ]]; then
  THRESHOLDS=('error_rate<1%' 'p99<1s')
fi

read -r -a TFS <<< "${TFSBENCH:-tfsbench}"
MODEL="${MODEL:-numeric}"
OUT="${OUT:-results/ci}"
mkdir -p "$OUT"
SUMMARY="${GITHUB_STEP_SUMMARY:-$OUT/summary.md}"

log() { printf 'bench-gate: %s\n' "$*" >&2; }

# 1. Wait (bounded) until the model answers; TF Serving loads models in the background.
first_model="${READY_MODEL:-}"
if [[ -z "$first_model" && -z "${CONFIG:-}" ]]; then
  first_model="${MODEL//\{kind\}/${KINDS:-numeric}}"
  first_model="${first_model%%,*}"
fi
if [[ -n "$first_model" ]] && command -v curl >/dev/null 2>&1; then
  deadline=$(( $(date +%s) + ${READY_TIMEOUT_S:-120} ))
  until curl -fsS "$URL/v1/models/$first_model" 2>/dev/null | grep -q '"AVAILABLE"'; do
    if (( $(date +%s) >= deadline )); then
      log "model '$first_model' at $URL is not AVAILABLE after ${READY_TIMEOUT_S:-120}s"
      exit 2
    fi
    sleep 2
  done
fi

# 2. Fail fast on a threshold typo, before minutes of load.
GATE_ARGS=()
for t in "${THRESHOLDS[@]}"; do GATE_ARGS+=(--threshold "$t"); done
[[ -n "${CONFIG:-}" ]] && GATE_ARGS+=(--config "$CONFIG")
"${TFS[@]}" check --dry-run "${GATE_ARGS[@]}" >/dev/null

# 3. Sweep: one result file per configuration, plus manifest.json.
SWEEP=("${TFS[@]}" sweep --url "$URL" --out "$OUT/sweep" --no-progress --no-resume)
if [[ -n "${CONFIG:-}" ]]; then
  SWEEP+=(--config "$CONFIG")
else
  SWEEP+=(--model "$MODEL" --kinds "${KINDS:-numeric}" --batch-sizes "${BATCH_SIZES:-1,8}"
          --concurrency "${CONCURRENCY:-2}" --duration "${DURATION:-5s}" --warmup "${WARMUP:-1s}")
fi
log "running: ${SWEEP[*]}"
if ! "${SWEEP[@]}"; then
  log "the sweep failed; nothing to gate"
  exit 2
fi

# 4. Gate: thresholds (and the baseline, if any). JUnit XML for test reporters, Markdown for the job summary.
CHECK=("${TFS[@]}" check "$OUT/sweep" --junit "$OUT/junit.xml" --summary "$SUMMARY" "${GATE_ARGS[@]}")
[[ -n "${BASELINE:-}" ]] && CHECK+=(--baseline "$BASELINE" --max-regression "${MAX_REGRESSION:-10%}")
set +e
"${CHECK[@]}"
status=$?
set -e

# 5. Report, whatever the verdict: the figures say why a gate failed.
if ! "${TFS[@]}" report "$OUT/sweep" --out "$OUT/report" --title "tfsbench CI: $URL" >/dev/null; then
  log "could not write the report"
  [[ $status -eq 0 ]] && status=2
fi
log "report: $OUT/report/report.html; gate exit status $status"
exit "$status"
