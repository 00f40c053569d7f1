#!/usr/bin/env bash
# Warm sessions (issue 6, item 6), side by side in one run, as root and then as the
# unprivileged user `stockade-test`:
#   latency of /bin/true: bare exec, session exec (warm), cold spawn, bwrap
#       (interleaved rounds; p50/p90 and ratios to bare and to bwrap)
#   Rss/Pss of an idle session's processes (init and helper)
#   how many idle sessions fit in 1 GiB (open until summed Pss >= 1 GiB or CAP,
#       extrapolate if CAP comes first; then close all and check nothing is left)
# The helper is the release stockade-init (STOCKADE_INIT).
#
# Usage: benches/session.sh
#   env: N (default 300 samples per variant), WARMUP (20), CAP (300 sessions),
#        BENCH_USER (stockade-test), SKIP_UNPRIV=1, SKIP_BUILD=1,
#        QUIET_WAIT (300 s) / QUIET_MAX_BUSY (10 %): wait for an idle host before each pass.
# Run by hand as root, not in CI. Targets: session exec p50 <= 1.5x bare exec;
# idle session <= 2 MiB beyond the command.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
BENCH_USER=${BENCH_USER:-stockade-test}
export N=${N:-300} WARMUP=${WARMUP:-20} CAP=${CAP:-300}

die() { echo "session.sh: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (it benchmarks as root and, via runuser, as $BENCH_USER)"
BWRAP=$(command -v bwrap || true)
[[ -n $BWRAP ]] || die "bwrap not found (apt-get install bubblewrap)"
if [[ -z ${SKIP_UNPRIV:-} ]] && ! id -u "$BENCH_USER" >/dev/null 2>&1; then
    die "user $BENCH_USER does not exist (useradd -M $BENCH_USER), or set SKIP_UNPRIV=1"
fi

if [[ -z ${SKIP_BUILD:-} ]]; then
    echo "building stockade-init (release) ..." >&2
    (cd "$root" && cargo build --release -q -p stockade --bin stockade-init)
    echo "building benches/session-bench (release) ..." >&2
    cargo build --release -q --manifest-path "$here/session-bench/Cargo.toml"
fi
for f in "$root/target/release/stockade-init" "$here/session-bench/target/release/session-bench"; do
    [[ -x $f ]] || die "$f missing after build"
done

# Stage where the unprivileged user can read and run them.
stage=$(mktemp -d /tmp/stockade-session-bench.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/init"
install -m 0755 "$here/session-bench/target/release/session-bench" "$stage/bin/"
install -m 0755 "$root/target/release/stockade-init" "$stage/init/"
chmod 0755 "$stage" "$stage/bin" "$stage/init"

# shellcheck source=common.sh
. "$here/common.sh"

echo "host: $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- sandbox-core || echo ' (sandbox-core has uncommitted edits)')"

pass() { # $1 = label; rest = command prefix
    local label=$1 before after
    shift
    wait_quiet
    before=$(cpu_busy_pct)
    echo
    echo "######## $label (host ${before}% busy just before)"
    (cd /tmp && "$@" env N="$N" WARMUP="$WARMUP" CAP="$CAP" BWRAP="$BWRAP" \
        STOCKADE_INIT="$stage/init/stockade-init" "$stage/bin/session-bench")
    after=$(cpu_busy_pct)
    echo "(host ${after}% busy just after; load average $(cut -d' ' -f1-3 /proc/loadavg))"
}

pass "as root"
if [[ -z ${SKIP_UNPRIV:-} ]]; then
    pass "as $BENCH_USER (unprivileged)" runuser -u "$BENCH_USER" --
fi
