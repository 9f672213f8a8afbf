#!/usr/bin/env bash
# mutants.sh - shows that the tests fail when the bugs they exist to catch come back.
#
# Each tests/mutants/NAME.patch reintroduces one bug (a "mutant"). Its header, the
# lines before the diff, says what it is:
#   Check:  the test check it targets
#   Bug:    what the patch breaks
#   Test:   the arguments to `cargo test --release` that run the check
#   Expect: text the failing run must print (shows the right check caught it)
# For each mutant the script applies the patch to this working tree, runs the test,
# and takes the patch back out (also on Ctrl-C), then prints one verdict a line:
#   KILLED    the test failed and printed Expect
#   KILLED*   the test failed, but without Expect (another check caught it first)
#   SURVIVED  the test passed with the bug in: the check is not doing its job
#   NO-BUILD  the mutant did not compile (fix the patch)
# Logs go to target/mutants/NAME.log; the table to target/mutants/summary.md.
# Exits 1 if a mutant survived or did not build.
#
# Usage:
#   scripts/mutants.sh                 every mutant (about 40 minutes on 2 cores)
#   scripts/mutants.sh NAME...         those mutants
#   scripts/mutants.sh --check         only check that every patch still applies
#                                      (tests/mutants.rs runs this in CI)
#   scripts/mutants.sh --list          name, check and test of each mutant
# Env: MUTANT_TIMEOUT (seconds per test run, default 1200).
# Needs what scripts/test.sh sets up (etcd, nats-server, the .venv with pymilvus).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
DIR=tests/mutants
OUT=target/mutants
TIMEOUT=${MUTANT_TIMEOUT:-1200}

field() { # field NAME FILE: the header value
    sed -n "/^diff --git/q; s/^$1: //p" "$2" | head -1
}

names() {
    local f
    for f in "$DIR"/*.patch; do basename "$f" .patch; done
}

check_all() {
    local n bad=0
    for n in $(names); do
        local p="$DIR/$n.patch"
        for k in Check Bug Test Expect; do
            if [[ -z $(field "$k" "$p") ]]; then
                echo "mutants.sh: $p has no '$k:' header line" >&2
                bad=1
            fi
        done
        if ! git apply --check "$p" 2>/dev/null; then
            echo "mutants.sh: $p no longer applies to this tree:" >&2
            git apply --check "$p" >&2 || true
            bad=1
        fi
    done
    return $bad
}

case "${1:-}" in
--check)
    check_all
    echo "mutants.sh: $(names | wc -l) mutants, every one applies"
    exit 0
    ;;
--list)
    for n in $(names); do
        printf '%s\n  check: %s\n  bug:   %s\n  test:  cargo test --release %s\n' \
            "$n" "$(field Check "$DIR/$n.patch")" "$(field Bug "$DIR/$n.patch")" \
            "$(field Test "$DIR/$n.patch")"
    done
    exit 0
    ;;
-h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
esac

if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
if [[ -x "$REPO/.venv/bin/python" ]]; then
    export MILVUS_TEST_PYTHON="$REPO/.venv/bin/python"
fi

wanted=("$@")
[[ ${#wanted[@]} -gt 0 ]] || mapfile -t wanted < <(names)
for n in "${wanted[@]}"; do
    [[ -f "$DIR/$n.patch" ]] || { echo "mutants.sh: no mutant $n (see --list)" >&2; exit 2; }
done
check_all

mkdir -p "$OUT"
applied=""
restore() {
    if [[ -n $applied ]]; then
        git apply -R "$DIR/$applied.patch"
        applied=""
    fi
}
trap 'restore; exit 130' INT TERM
trap restore EXIT

summary="$OUT/summary.md"
{
    echo "| mutant | verdict | seconds | check |"
    echo "|---|---|---|---|"
} >"$summary"
failed=0
for n in "${wanted[@]}"; do
    p="$DIR/$n.patch"
    read -r -a targs <<<"$(field Test "$p")"
    expect=$(field Expect "$p")
    log="$OUT/$n.log"
    git apply "$p"
    applied=$n
    start=$(date +%s)
    set +e
    timeout "$TIMEOUT" cargo test --release "${targs[@]}" -- --test-threads=1 >"$log" 2>&1
    rc=$?
    set -e
    secs=$(($(date +%s) - start))
    restore
    if grep -qE '^error\[E[0-9]+\]|could not compile' "$log"; then
        verdict=NO-BUILD
        failed=1
    elif [[ $rc -eq 0 ]]; then
        verdict=SURVIVED
        failed=1
    elif grep -qF -- "$expect" "$log"; then
        verdict=KILLED
    else
        verdict="KILLED*"
    fi
    [[ $rc -eq 124 ]] && verdict="$verdict (timed out after ${TIMEOUT}s)"
    printf '%-28s %-9s %5ss  %s\n' "$n" "$verdict" "$secs" "$log"
    echo "| $n | $verdict | $secs | $(field Check "$p") |" >>"$summary"
done
echo "mutants.sh: table in $summary"
exit $failed
