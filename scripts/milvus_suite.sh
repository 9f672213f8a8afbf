#!/usr/bin/env bash
# milvus_suite.sh - run Milvus's own MilvusClient test suite against this cluster and
# write the compatibility report (docs/compatibility.md and docs/compatibility.json).
#
# SUITE_DIR is the `tests/python_client` directory of Milvus's 2.5 branch, exported
# outside this repository (nothing of the suite is committed here), e.g.
#   scripts/milvus_suite.sh --export /path/to/milvus.git 2.5 /work/suite
# which writes /work/suite/python_client and its provenance file
# /work/suite/python_client/.milvus-suite-source (repo, branch, commit).
#
# A run: creates or reuses a venv with the suite's requirements (pymilvus pinned to
# $PYMILVUS_VERSION instead of the suite's release candidate), starts a private cluster
# (its own etcd, nats-server and the eight roles of bin/milvus on free loopback ports,
# data in a temporary directory), runs pytest over SUITE_DIR/milvus_client/FILES
# (default: every test_milvus_client_*.py) selecting the levels with the suite's
# pytest-tagging option (--tags L0 --tags L1), with a per-test timeout (a hang counts as
# a failure), then scripts/milvus_suite_report.py turns the junit xml into the report.
# Everything it starts it stops, by pid. Nothing is built: run scripts/build.sh first.
#
# A run of every file writes docs/compatibility.{md,json}; the docs/compatibility.json
# already there (the previous run) is the report's "before" column. A run of some FILES
# writes its report to the output directory instead (see --docs).
#
# Options:
#   --tags "L0 L1"  suite levels (CaseLabel) to run (default "L0 L1")
#   --timeout S     per-test timeout in seconds (default 120; pytest-timeout)
#   --workers N     pytest-xdist workers (default 1: one test at a time)
#   -k EXPR         only tests matching the pytest -k expression
#   --out DIR       where junit.xml, report.html, pytest.log, the suite's logs and the
#                   cluster's logs go (default: a new ${TMPDIR:-/tmp}/milvus-suite.XXXXXX;
#                   kept, its path is printed)
#   --docs DIR      write compatibility.md/json into DIR (default docs/ for a run of every
#                   file, the --out directory otherwise); its compatibility.json, if any,
#                   is the "before"
#   --no-report     run the suite only
#   --keep-data     keep the cluster's data (etcd, NATS store, segment files) in --out
#   --auth          run the roles with common.security.authorizationEnabled; the smoke
#                   check and the suite connect as root:Milvus (for test_milvus_client_rbac.py,
#                   whose tests are tagged RBAC: --tags RBAC)
#   --export GIT_DIR REF DEST   export tests/python_client of REF from the git repository
#                   GIT_DIR into DEST/python_client with its provenance file, and exit
#                   (SUITE_REPO names the repository in the report; default GIT_DIR)
#   -h, --help      show this help
# Environment:
#   MILVUS_SUITE_VENV  the venv (default $HOME/.cache/milvus-suite-venv)
#   PYMILVUS_VERSION   pymilvus for the venv (default 2.5.18)
#   MILVUS_BIN         the binary (default bin/milvus)
#   MILVUS_SUITE_CONFIG  a milvus.yaml for the roles (default: none, built-in defaults)
#   SUITE_REPO, SUITE_BRANCH, SUITE_COMMIT  provenance in the report (default: read from
#                   SUITE_DIR/.milvus-suite-source)
#   STARTUP_TIMEOUT    seconds to wait for the cluster (default 60)
# Exit status: 0 when the suite ran (whatever its results), 1 when the cluster or the
# venv could not be set up, 2 on a bad command line.
#
# Usage: scripts/milvus_suite.sh [OPTIONS] SUITE_DIR [FILES...]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ME=milvus_suite.sh

die() { echo "$ME: $*" >&2; exit 1; }
usage_error() { echo "$ME: $* (see --help)" >&2; exit 2; }

# --- 0. command line -----------------------------------------------------------------
TAGS="L0 L1"
TIMEOUT=120
WORKERS=1
KEXPR=""
OUT=""
DOCS=""
REPORT=true
KEEP_DATA=false
AUTH=false
POSITIONAL=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --tags) [[ $# -ge 2 ]] || usage_error "--tags needs a value"; TAGS=$2; shift ;;
        --timeout) [[ $# -ge 2 ]] || usage_error "--timeout needs a value"; TIMEOUT=$2; shift ;;
        --workers) [[ $# -ge 2 ]] || usage_error "--workers needs a value"; WORKERS=$2; shift ;;
        -k) [[ $# -ge 2 ]] || usage_error "-k needs a value"; KEXPR=$2; shift ;;
        --out) [[ $# -ge 2 ]] || usage_error "--out needs a value"; OUT=$2; shift ;;
        --docs) [[ $# -ge 2 ]] || usage_error "--docs needs a value"; DOCS=$2; shift ;;
        --no-report) REPORT=false ;;
        --keep-data) KEEP_DATA=true ;;
        --auth) AUTH=true ;;
        --export)
            [[ $# -ge 4 ]] || usage_error "--export needs GIT_DIR REF DEST"
            git_dir=$2 ref=$3 dest=$4
            commit=$(git --git-dir="$git_dir" rev-parse --verify "$ref^{commit}") \
                || die "no commit '$ref' in $git_dir"
            [[ ! -e $dest/python_client ]] || die "$dest/python_client exists; remove it first"
            mkdir -p "$dest"
            tmp_export=$(mktemp -d "$dest/.export.XXXXXX")
            git --git-dir="$git_dir" archive "$commit" tests/python_client | tar -x -C "$tmp_export"
            mv "$tmp_export/tests/python_client" "$dest/python_client"
            rm -rf "$tmp_export"
            {
                echo "repo=${SUITE_REPO:-$git_dir}"
                echo "branch=$ref"
                echo "commit=$commit"
                echo "commit_date=$(git --git-dir="$git_dir" show -s --format=%cI "$commit")"
            } >"$dest/python_client/.milvus-suite-source"
            echo "$ME: exported tests/python_client of $ref ($commit) to $dest/python_client"
            exit 0
            ;;
        -h|--help) sed -n '2,52p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; POSITIONAL+=("$@"); break ;;
        -*) usage_error "unknown option: $1" ;;
        *) POSITIONAL+=("$1") ;;
    esac
    shift
done
[[ ${#POSITIONAL[@]} -ge 1 ]] || usage_error "SUITE_DIR is required"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || usage_error "--timeout '$TIMEOUT' is not a number of seconds"
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || usage_error "--workers '$WORKERS' is not a positive number"
read -r -a TAG_LIST <<<"$TAGS"
[[ ${#TAG_LIST[@]} -ge 1 ]] || usage_error "--tags is empty"

SUITE_DIR=$(cd "${POSITIONAL[0]}" 2>/dev/null && pwd) || die "no directory ${POSITIONAL[0]}"
[[ -f $SUITE_DIR/conftest.py && -d $SUITE_DIR/milvus_client ]] \
    || die "$SUITE_DIR is not the suite's python_client directory (no conftest.py, milvus_client/)"

FILES=()
ALL_FILES=true
if [[ ${#POSITIONAL[@]} -gt 1 ]]; then
    ALL_FILES=false
    for f in "${POSITIONAL[@]:1}"; do
        name=$(basename "$f")
        [[ $name == *.py ]] || name="$name.py"
        [[ -f $SUITE_DIR/milvus_client/$name ]] || die "no test file milvus_client/$name in $SUITE_DIR"
        FILES+=("milvus_client/$name")
    done
else
    while IFS= read -r f; do
        FILES+=("milvus_client/$(basename "$f")")
    done < <(find "$SUITE_DIR/milvus_client" -maxdepth 1 -name 'test_milvus_client_*.py' | LC_ALL=C sort)
    [[ ${#FILES[@]} -gt 0 ]] || die "no test_milvus_client_*.py in $SUITE_DIR/milvus_client"
fi

# Provenance of the suite.
source_value() { # key
    local file=$SUITE_DIR/.milvus-suite-source
    [[ -f $file ]] || return 0
    sed -n "s/^$1=//p" "$file" | head -n 1
}
SUITE_REPO=${SUITE_REPO:-$(source_value repo)}
SUITE_BRANCH=${SUITE_BRANCH:-$(source_value branch)}
SUITE_COMMIT=${SUITE_COMMIT:-$(source_value commit)}

MILVUS_BIN=${MILVUS_BIN:-$REPO/bin/milvus}
[[ -x $MILVUS_BIN ]] || die "$MILVUS_BIN is missing: build it first (scripts/build.sh)"
if [[ $MILVUS_BIN == "$REPO/bin/milvus" ]] \
    && [[ -n $(find "$REPO/src" "$REPO/Cargo.toml" -newer "$MILVUS_BIN" -print -quit 2>/dev/null) ]]; then
    echo "$ME: warning: $MILVUS_BIN is older than the sources (scripts/build.sh rebuilds it)" >&2
fi
# Recorded now: a rebuild during the run does not change what the roles run.
BINARY_INFO="$("$MILVUS_BIN" --version 2>/dev/null | head -n 1 || true), built $(date -u -r "$MILVUS_BIN" '+%Y-%m-%d %H:%M UTC')"
if [[ -n ${MILVUS_SUITE_CONFIG:-} ]]; then
    [[ -f $MILVUS_SUITE_CONFIG ]] || die "MILVUS_SUITE_CONFIG=$MILVUS_SUITE_CONFIG is not a file"
    MILVUS_SUITE_CONFIG=$(cd "$(dirname "$MILVUS_SUITE_CONFIG")" && pwd)/$(basename "$MILVUS_SUITE_CONFIG")
fi
for tool in etcd etcdctl curl python3; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (scripts/install_deps.sh installs etcd)"
done
command -v nats-server >/dev/null 2>&1 || [[ -x /usr/sbin/nats-server ]] \
    || die "'nats-server' not found (scripts/install_deps.sh installs it)"

# --- 1. the venv -------------------------------------------------------------------
PYMILVUS_VERSION=${PYMILVUS_VERSION:-2.5.18}
VENV=${MILVUS_SUITE_VENV:-$HOME/.cache/milvus-suite-venv}
[[ -f $SUITE_DIR/requirements.txt ]] || die "no requirements.txt in $SUITE_DIR"
# The suite's requirements without its test.pypi index, its pymilvus release candidate
# and the plugins that change how pytest runs or prints (locust is only for its perf
# tests); pymilvus pinned instead; `py` for pytest-html 3 under pytest 8.
REQS=$(
    sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$SUITE_DIR/requirements.txt" \
        | grep -v '^$' \
        | grep -viE '^(--|pymilvus|locust|pytest-sugar|pytest-parallel|pytest-random-order)' || true
    echo "pymilvus==$PYMILVUS_VERSION"
    echo "py"
)
REQS_SUM=$(printf '%s\n' "$REQS" | sha256sum | cut -d' ' -f1)
STAMP=$VENV/.milvus-suite-requirements
if [[ -e $VENV ]] && ! "$VENV/bin/python" -c '' >/dev/null 2>&1; then
    echo "$ME: $VENV is broken; recreating it"
    rm -rf "$VENV"
fi
if [[ ! -f $STAMP || $(cat "$STAMP") != "$REQS_SUM" ]]; then
    echo "$ME: installing the suite's requirements (pymilvus $PYMILVUS_VERSION) into $VENV"
    [[ -e $VENV ]] || python3 -m venv "$VENV"
    req_file=$(mktemp)
    printf '%s\n' "$REQS" >"$req_file"
    if ! PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
        "$VENV/bin/pip" install -q -r "$req_file"; then
        rm -f "$req_file"
        die "pip install failed in $VENV"
    fi
    rm -f "$req_file"
    echo "$REQS_SUM" >"$STAMP"
fi
PY=$VENV/bin/python
INSTALLED_PYMILVUS=$("$PY" -c 'import importlib.metadata as m; print(m.version("pymilvus"))') \
    || die "pymilvus does not import in $VENV"

# --- 2. directories ------------------------------------------------------------------
if [[ -z $OUT ]]; then
    OUT=$(mktemp -d "${TMPDIR:-/tmp}/milvus-suite.XXXXXX")
else
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
fi
LOGS=$OUT/cluster-logs
DATA=$OUT/data
mkdir -p "$LOGS" "$DATA" "$OUT/suite-logs"
if [[ -z $DOCS ]]; then
    if [[ $ALL_FILES == true && -z $KEXPR ]]; then DOCS=$REPO/docs; else DOCS=$OUT; fi
fi
mkdir -p "$DOCS"
DOCS=$(cd "$DOCS" && pwd)

# --- 3. cleanup (by pid, everything this run started) -------------------------------
PIDS=() NAMES=()
stop_pids() { # indexes into PIDS: SIGTERM them, wait up to 20 s, then SIGKILL
    local i deadline=$((SECONDS + 20))
    for i in "$@"; do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
    for i in "$@"; do
        while kill -0 "${PIDS[i]}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        if kill -0 "${PIDS[i]}" 2>/dev/null; then
            echo "$ME: ${NAMES[i]} (pid ${PIDS[i]}) did not stop in 20 s; SIGKILL" >&2
            kill -KILL "${PIDS[i]}" 2>/dev/null || true
        fi
    done
}
cleanup() {
    local rc=$? i roles=() infra=()
    trap - EXIT INT TERM
    for i in "${!PIDS[@]}"; do
        case ${NAMES[i]} in etcd|nats) infra+=("$i") ;; *) roles+=("$i") ;; esac
    done
    # The roles first, then nats-server and etcd they depend on.
    [[ ${#roles[@]} -eq 0 ]] || stop_pids "${roles[@]}"
    [[ ${#infra[@]} -eq 0 ]] || stop_pids "${infra[@]}"
    if [[ $KEEP_DATA != true ]]; then rm -rf "$DATA"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- 4. free loopback ports ------------------------------------------------------------
ROLES=(rootcoord datacoord querycoord indexcoord datanode indexnode querynode proxy)
declare -A PREFIX=(
    [rootcoord]=ROOT_COORD [proxy]=PROXY [querycoord]=QUERY_COORD [querynode]=QUERY_NODE
    [indexcoord]=INDEX_COORD [indexnode]=INDEX_NODE [datacoord]=DATA_COORD [datanode]=DATA_NODE
)
# Bind every socket at once (so the ports differ), then release them.
read -r -a PORTS <<<"$(python3 -c '
import socket
socks = [socket.socket() for _ in range(11)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
')"
ETCD_PORT=${PORTS[0]} ETCD_PEER=${PORTS[1]} NATS_PORT=${PORTS[2]}
declare -A PORT=()
for i in "${!ROLES[@]}"; do PORT[${ROLES[i]}]=${PORTS[i + 3]}; done
PROXY_PORT=${PORT[proxy]}

# --- 5. etcd and nats-server (the project's scripts, on the chosen ports) -------------
ETCD_CLIENT_PORT=$ETCD_PORT ETCD_PEER_PORT=$ETCD_PEER ETCD_DATA_DIR=$DATA/etcd/data \
    LOG_DIR=$LOGS bash "$REPO/scripts/start_etcd.sh" >"$LOGS/start_etcd.out" 2>&1 \
    || { cat "$LOGS/start_etcd.out" >&2; die "etcd did not start"; }
PIDS+=("$(cat "$DATA/etcd/etcd.pid")") NAMES+=(etcd)
NATS_PORT=$NATS_PORT NATS_STORE_DIR=$DATA/nats/store LOG_DIR=$LOGS \
    bash "$REPO/scripts/start_nats.sh" >"$LOGS/start_nats.out" 2>&1 \
    || { cat "$LOGS/start_nats.out" >&2; die "nats-server did not start"; }
PIDS+=("$(cat "$DATA/nats/nats.pid")") NAMES+=(nats)

# --- 6. the eight roles ------------------------------------------------------------------
mkdir -p "$DATA/storage" "$DATA/pids" "$DATA/run"
config_args=()
[[ -z ${MILVUS_SUITE_CONFIG:-} ]] || config_args=(--config "$MILVUS_SUITE_CONFIG")
AUTH_ENV=()
! $AUTH || AUTH_ENV=(COMMON_SECURITY_AUTHORIZATION_ENABLED=true)
ROLE_PIDS=()
for role in "${ROLES[@]}"; do
    prefix=${PREFIX[$role]}
    (
        cd "$DATA/run"   # no ./milvus.yaml here: built-in defaults unless --config
        exec env \
            ETCD_ENDPOINTS="127.0.0.1:$ETCD_PORT" \
            NATSMQ_ADDRESS="nats://127.0.0.1:$NATS_PORT" \
            LOCAL_STORAGE_PATH="$DATA/storage" \
            MILVUS_PID_DIR="$DATA/pids" \
            "${AUTH_ENV[@]}" \
            "${prefix}_ADDRESS=127.0.0.1" \
            "${prefix}_PORT=${PORT[$role]}" \
            "$MILVUS_BIN" run "$role" "${config_args[@]}"
    ) >"$LOGS/$role.log" 2>&1 </dev/null &
    PIDS+=("$!") NAMES+=("$role") ROLE_PIDS+=("$!")
done

healthz() { # port -> HTTP status of GET /healthz, or 000
    curl --noproxy '*' -s -o /dev/null -w '%{http_code}' --connect-timeout 1 --max-time 2 \
        "http://127.0.0.1:$1/healthz" || true
}
startup_deadline=$((SECONDS + ${STARTUP_TIMEOUT:-60}))
for i in "${!ROLES[@]}"; do
    role=${ROLES[i]}
    until [[ $(healthz "${PORT[$role]}") == 200 ]]; do
        if ! kill -0 "${ROLE_PIDS[i]}" 2>/dev/null; then
            tail -n 30 "$LOGS/$role.log" >&2 || true
            die "$role (pid ${ROLE_PIDS[i]}) exited during startup; log $LOGS/$role.log"
        fi
        if ((SECONDS >= startup_deadline)); then
            tail -n 30 "$LOGS/$role.log" >&2 || true
            die "$role not healthy on port ${PORT[$role]} after ${STARTUP_TIMEOUT:-60} s"
        fi
        sleep 0.5
    done
done
# The proxy answers pymilvus (the same client call every test starts with).
if ! NO_PROXY='*' no_proxy='*' timeout 60 "$PY" -c '
import sys
from pymilvus import MilvusClient
c = MilvusClient(uri=sys.argv[1], token=sys.argv[2], timeout=30)
c.list_collections()
print("server version:", c.get_server_version())
' "http://127.0.0.1:$PROXY_PORT" "$($AUTH && echo root:Milvus)" >"$LOGS/smoke.out" 2>&1; then
    cat "$LOGS/smoke.out" >&2
    die "pymilvus cannot list collections through the proxy on port $PROXY_PORT"
fi
echo "$ME: cluster up: proxy 127.0.0.1:$PROXY_PORT, etcd $ETCD_PORT, nats $NATS_PORT, logs $LOGS"

# --- 7. the suite --------------------------------------------------------------------
PYTEST_ARGS=("${FILES[@]}" -p milvus_suite_plugin -p no:cacheprovider)
for t in "${TAG_LIST[@]}"; do PYTEST_ARGS+=(--tags "$t"); done
PYTEST_ARGS+=(
    --host 127.0.0.1 --port "$PROXY_PORT"
    --timeout "$TIMEOUT"
    --junitxml "$OUT/junit.xml" -o junit_family=xunit2
    --html "$OUT/report.html" --self-contained-html
    -rfE
)
[[ -z $KEXPR ]] || PYTEST_ARGS+=(-k "$KEXPR")
! $AUTH || PYTEST_ARGS+=(--user root --password Milvus --token root:Milvus)
[[ $WORKERS == 1 ]] || PYTEST_ARGS+=(-n "$WORKERS" --dist loadgroup)
echo "$ME: pytest ${PYTEST_ARGS[*]}  (in $SUITE_DIR; output $OUT/pytest.log)"
start_epoch=$(date +%s)
set +e
(
    cd "$SUITE_DIR"
    exec env CI_LOG_PATH="$OUT/suite-logs" PYTHONPATH="$REPO/scripts" \
        PYTHONDONTWRITEBYTECODE=1 NO_PROXY='*' no_proxy='*' \
        "$PY" -m pytest "${PYTEST_ARGS[@]}"
) >"$OUT/pytest.log" 2>&1
pytest_rc=$?
set -e
WALL=$(($(date +%s) - start_epoch))
tail -n 3 "$OUT/pytest.log"
echo "$ME: pytest exited $pytest_rc after ${WALL} s"
# pytest: 0 all passed, 1 some failed, 5 nothing selected; anything else means the run
# itself broke.
[[ $pytest_rc -ne 5 ]] || die "no test selected (FILES, --tags and -k select none); see $OUT/pytest.log"
if [[ $pytest_rc -gt 1 || ! -s $OUT/junit.xml ]]; then
    tail -n 40 "$OUT/pytest.log" >&2
    die "pytest did not complete (exit $pytest_rc); see $OUT/pytest.log"
fi

# Which roles died during the run (a crash is part of the result).
DEAD=()
for i in "${!ROLES[@]}"; do
    kill -0 "${ROLE_PIDS[i]}" 2>/dev/null || DEAD+=("${ROLES[i]}")
done
[[ ${#DEAD[@]} -eq 0 ]] || echo "$ME: warning: exited during the run: ${DEAD[*]} (logs in $LOGS)" >&2

# --- 8. the report -------------------------------------------------------------------
if [[ $REPORT == true ]]; then
    cmd="scripts/milvus_suite.sh"
    [[ $TAGS == "L0 L1" ]] || cmd+=" --tags \"$TAGS\""
    [[ $TIMEOUT == 120 ]] || cmd+=" --timeout $TIMEOUT"
    [[ $WORKERS == 1 ]] || cmd+=" --workers $WORKERS"
    [[ -z $KEXPR ]] || cmd+=" -k \"$KEXPR\""
    cmd+=" SUITE_DIR"
    [[ $ALL_FILES == true ]] || cmd+=" ${POSITIONAL[*]:1}"
    project_commit=$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git -C "$REPO" status --porcelain -- src Cargo.toml 2>/dev/null) ]]; then
        project_commit+=" (with uncommitted changes)"
    fi
    "$PY" "$REPO/scripts/milvus_suite_report.py" \
        --junit "$OUT/junit.xml" \
        --before "$DOCS/compatibility.json" \
        --out-md "$DOCS/compatibility.md" \
        --out-json "$DOCS/compatibility.json" \
        --suite-repo "${SUITE_REPO:-unknown}" \
        --suite-branch "${SUITE_BRANCH:-unknown}" \
        --suite-commit "${SUITE_COMMIT:-unknown}" \
        --pymilvus "$INSTALLED_PYMILVUS" \
        --tags "$TAGS" --timeout "$TIMEOUT" --workers "$WORKERS" \
        --wall-seconds "$WALL" \
        --project-commit "$project_commit" \
        --binary "$BINARY_INFO" \
        --command "$cmd" \
        --files "${FILES[@]}" \
        --dead-roles "${DEAD[*]:-}"
    echo "$ME: wrote $DOCS/compatibility.md and $DOCS/compatibility.json"
fi
echo "$ME: junit $OUT/junit.xml, html $OUT/report.html, logs $OUT/suite-logs and $LOGS"
