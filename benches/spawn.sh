#!/usr/bin/env bash
# Cold-spawn latency of `/bin/true`, side by side in one run:
#   bare             posix_spawn(/bin/true) + waitpid from the driver
#   bwrap            bwrap --unshare-all ... /bin/true (a comparable minimal root)
#   stockade-cli     stockade run -- /bin/true
#   api(self-exec)   Sandbox::new().command(["/bin/true"]).status() in a running
#                    host process; helper = the host executable itself
#   api(init)        the same with STOCKADE_INIT = the release stockade-init
#   api(prewarm)     the same after Sandbox::prewarm(): helper and namespaces
#                    prepared ahead of time, one fresh sandbox per call
# as root and as the unprivileged user `stockade-test`.
#
# Usage: benches/spawn.sh [OUT.json]
#   env: ITERS (default 300), WARMUP (default 20), BENCH_USER (default stockade-test),
#        SKIP_UNPRIV=1 to run as root only, SKIP_BUILD=1 to reuse existing builds,
#        COMPONENTS=1 to add rows for the parts of a spawn (see components()),
#        QUIET_WAIT (default 300 s) / QUIET_MAX_BUSY (default 10 %): before each pass,
#        wait for the host to be idle (a concurrent build skews everything).
# Run by hand (as root), not in CI. Targets from the issue:
#   CLI p50 <= 0.5x bwrap p50, API p50 <= 0.4x bwrap p50.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out_json=${1:-}
[[ -z $out_json || $out_json == /* ]] || out_json="$PWD/$out_json"
ITERS=${ITERS:-300}
WARMUP=${WARMUP:-20}
BENCH_USER=${BENCH_USER:-stockade-test}
PY=/usr/bin/python3 # the system one: the unprivileged user can run it too

die() { echo "spawn.sh: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (it benchmarks as root and, via runuser, as $BENCH_USER)"
[[ -x $PY ]] || die "$PY not found (apt-get install python3)"
BWRAP=$(command -v bwrap || true)
[[ -n $BWRAP ]] || die "bwrap not found (apt-get install bubblewrap)"
if [[ -z ${SKIP_UNPRIV:-} ]] && ! id -u "$BENCH_USER" >/dev/null 2>&1; then
    die "user $BENCH_USER does not exist (useradd -M $BENCH_USER), or set SKIP_UNPRIV=1"
fi

# ---- build ---------------------------------------------------------------
if [[ -z ${SKIP_BUILD:-} ]]; then
    echo "building stockade (release) ..." >&2
    (cd "$root" && cargo build --release -q -p stockade-cli -p stockade)
    echo "building benches/api-spawn (release) ..." >&2
    cargo build --release -q --manifest-path "$here/api-spawn/Cargo.toml"
fi
for f in "$root/target/release/stockade" "$root/target/release/stockade-init" \
    "$here/api-spawn/target/release/api-spawn"; do
    [[ -x $f ]] || die "$f missing after build"
done

# ---- stage binaries where the unprivileged user can run them -------------
# Layout: stockade-init sits next to the CLI as in target/release (the library decides
# whether the CLI uses it or execs itself as the helper); api-spawn sits where neither
# its directory nor the parent has a stockade-init, so api(self-exec) always execs the
# host executable itself (the no-install path of a Rust user) and api(init) uses
# STOCKADE_INIT.
stage=$(mktemp -d /tmp/stockade-bench.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/cli" "$stage/api/bin" "$stage/init"
install -m 0755 "$root/target/release/stockade" "$root/target/release/stockade-init" "$stage/cli/"
install -m 0755 "$here/api-spawn/target/release/api-spawn" "$stage/api/bin/"
install -m 0755 "$root/target/release/stockade-init" "$stage/init/"
install -m 0644 "$here/spawn_driver.py" "$stage/"
chmod 0755 "$stage" "$stage"/*/ "$stage/api/bin"

# shellcheck source=common.sh
. "$here/common.sh"
make_bwrap_argv "$BWRAP"

json_array() { "$PY" -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@"; }

# COMPONENTS=1 adds rows that bound the parts of a spawn: starting each of our
# executables (exec + dynamic linking + runtime init, no sandbox), and the kernel's
# cost of the namespaces alone (util-linux unshare creating the same set, then
# fork + exec /bin/true), with and without the network namespace.
components() {
    [[ -n ${COMPONENTS:-} ]] || return 0
    local unshare
    unshare=$(command -v unshare) || return 0
    cat <<EOF
,
    {"name": "c:exec stockade --version", "argv": $(json_array "$stage/cli/stockade" --version)},
    {"name": "c:exec stockade-init", "argv": $(json_array "$stage/cli/stockade-init"), "allow_fail": true},
    {"name": "c:unshare all ns", "argv": $(json_array "$unshare" -UnmiuCpf /bin/true)},
    {"name": "c:unshare all but net", "argv": $(json_array "$unshare" -UmiuCpf /bin/true)}
EOF
}

write_config() { # $1 = label, $2 = file
    cat >"$2" <<EOF
{
  "label": "$1",
  "warmup": $WARMUP,
  "iters": $ITERS,
  "variants": [
    {"name": "bare", "argv": $(json_array /bin/true)},
    {"name": "bwrap", "argv": $(json_array "${bwrap_argv[@]}")},
    {"name": "stockade-cli", "argv": $(json_array "$stage/cli/stockade" run -- /bin/true), "target_x_bwrap": 0.5},
    {"name": "api(self-exec)", "serve": $(json_array "$stage/api/bin/api-spawn" --serve), "target_x_bwrap": 0.4},
    {"name": "api(init)", "serve": $(json_array "$stage/api/bin/api-spawn" --serve),
     "env": {"STOCKADE_INIT": "$stage/init/stockade-init"}, "target_x_bwrap": 0.4},
    {"name": "api(prewarm)", "serve": $(json_array "$stage/api/bin/api-spawn" --serve),
     "env": {"STOCKADE_BENCH_PREWARM": "1"}, "target_x_bwrap": 0.4}$(components)
  ]
}
EOF
    chmod 0644 "$2"
}

# Quick sanity check: every variant must succeed once before timing anything.
for argv in "/bin/true" "${bwrap_argv[*]}" "$stage/cli/stockade run -- /bin/true"; do
    $argv || die "sanity run failed: $argv"
done

cd "$stage" # a directory the unprivileged user can enter
write_config root "$stage/root.cfg.json"
wait_quiet
"$PY" "$stage/spawn_driver.py" "$stage/root.cfg.json" "$stage/root.json"
parts=("$stage/root.json")

if [[ -z ${SKIP_UNPRIV:-} ]]; then
    write_config "unprivileged ($BENCH_USER)" "$stage/unpriv.cfg.json"
    touch "$stage/unpriv.json" && chown "$BENCH_USER" "$stage/unpriv.json"
    wait_quiet
    runuser -u "$BENCH_USER" -- "$PY" "$stage/spawn_driver.py" "$stage/unpriv.cfg.json" "$stage/unpriv.json"
    parts+=("$stage/unpriv.json")
fi

# ---- combined JSON --------------------------------------------------------
if [[ -n $out_json ]]; then
    "$PY" - "$out_json" "$root" "$BWRAP" "${parts[@]}" <<'EOF'
import json, os, platform, subprocess, sys
out, root, bwrap, parts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
def cmd(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True, cwd=root).stdout.strip()
    except OSError:
        return None
doc = {
    "bench": "spawn /bin/true",
    "host": {
        "kernel": platform.release(),
        "nproc": os.cpu_count(),
        "bwrap": cmd(bwrap, "--version"),
        "git_rev": cmd("git", "rev-parse", "HEAD"),
        "git_dirty": bool(cmd("git", "status", "--porcelain", "--", "sandbox-core", "sandbox-cli")),
    },
    "runs": [json.load(open(p)) for p in parts],
}
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
print(f"\nJSON written to {out}")
EOF
fi
