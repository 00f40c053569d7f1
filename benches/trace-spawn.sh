#!/usr/bin/env bash
# Where does the time of one sandboxed `/bin/true` go? Companion to spawn.sh, run by
# hand as root. Produces, for the chosen variant:
#   1. an strace -f -tt -T of ONE run (names every syscall; ptrace inflates each
#      syscall by tens of microseconds, so use it for "what", not "how long");
#   2. a low-overhead timeline over N runs: perf record of the sched fork/exec/exit
#      tracepoints plus the few syscalls that mark phases (clone, execve, mount,
#      pivot_root, umount2, ...): medians of when each phase starts and ends;
#   3. per-syscall durations over N runs: perf record of raw_syscalls (a few us of
#      overhead per syscall): top 10 syscalls, top user-space gaps, time by category;
#   4. off-CPU time by kernel stack (what each process blocks on in the kernel);
#   5. on-CPU kernel profile by process (clone's namespace creation, exit's teardown,
#      mounts, exec, page faults) and the asynchronous cleanup left to kernel workers.
#
# Usage: benches/trace-spawn.sh [cli|api|bwrap] [OUTDIR]
#   env: RUNS (default 30), PROFILE_HZ (default 10000), SKIP_BUILD=1, QUIET_WAIT / QUIET_MAX_BUSY as in spawn.sh
# Needs strace and perf (apt-get install strace linux-perf).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
variant=${1:-cli}
outdir=${2:-$(mktemp -d /tmp/stockade-trace.XXXXXX)}
RUNS=${RUNS:-30}
PY=/usr/bin/python3

die() { echo "trace-spawn.sh: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "run as root"
command -v strace >/dev/null || die "strace not found (apt-get install strace)"
command -v perf >/dev/null || die "perf not found (apt-get install linux-perf)"
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

if [[ -z ${SKIP_BUILD:-} ]]; then
    (cd "$root" && cargo build --release -q -p stockade-cli -p stockade)
    [[ $variant != api ]] || cargo build --release -q --manifest-path "$here/api-spawn/Cargo.toml"
fi

# shellcheck source=common.sh
. "$here/common.sh"
make_bwrap_argv /usr/bin/bwrap

# A loop driver. The analyzers treat each direct child of the driver as one run (the
# driver's pid is written by the /bin/sh wrapper in record() below).
cat >"$outdir/loop.py" <<'EOF'
import os, sys
n, argv = int(sys.argv[1]), sys.argv[2:]
for _ in range(n):
    pid = os.posix_spawn(argv[0], argv, os.environ)
    os.waitpid(pid, 0)
EOF

case $variant in
cli) one=("$root/target/release/stockade" run -- /bin/true)
     loop=("$PY" "$outdir/loop.py" "$RUNS" "${one[@]}") ;;
bwrap) one=("${bwrap_argv[@]}")
     loop=("$PY" "$outdir/loop.py" "$RUNS" "${one[@]}") ;;
api) # runs = the helper processes api-spawn starts; the host-side planning before
     # each helper spawn is not in the timeline (it is in spawn.sh's API figure).
     one=("$here/api-spawn/target/release/api-spawn" 1 0)
     loop=("$here/api-spawn/target/release/api-spawn" "$RUNS" 0) ;;
*) die "variant must be cli, api or bwrap" ;;
esac
# the strace of one api run also sees the host process above the runs
strace_offset=0
[[ $variant != api ]] || strace_offset=1

echo "== strace -f -tt -T of one run: $outdir/strace.txt" >&2
strace -f -tt -T -s 120 -o "$outdir/strace.txt" "${one[@]}" >/dev/null

marks=(clone clone3 execve unshare sethostname mount open_tree move_mount pivot_root umount capset
    seccomp landlock_restrict_self exit_group wait4)
light_events=sched:sched_process_fork,sched:sched_process_exec,sched:sched_process_exit
tracepoints=$(perf list 'syscalls:*' 2>/dev/null || true)
for s in "${marks[@]}"; do
    if grep -q "syscalls:sys_enter_$s " <<<"$tracepoints"; then
        light_events+=,syscalls:sys_enter_$s,syscalls:sys_exit_$s
    fi
done

wait_quiet
echo "== perf (phase marks only, low overhead), $RUNS runs" >&2
# The phase-mark pass records system-wide (-a): per-task events are inherited on every
# fork, which makes each fork of the traced tree slower (~0.5 ms with 30 events on a
# 2-vCPU VM). The all-syscalls pass records per task (5 events to inherit): system-wide
# it would also trace perf's own writes and every other process.
record() { # $1 = name, $2 = events, $3 = -a or nothing
    perf record -q ${3:-} -o "$outdir/$1.data" -e "$2" -- \
        /bin/sh -c 'echo $$ >"$0"; exec "$@"' "$outdir/$1.pid" "${loop[@]}" >/dev/null 2>&1
    perf script -i "$outdir/$1.data" -F comm,pid,tid,cpu,time,event,trace 2>/dev/null >"$outdir/$1.txt"
}
record light "$light_events" -a

wait_quiet
echo "== perf (all syscalls), $RUNS runs" >&2
record full raw_syscalls:sys_enter,raw_syscalls:sys_exit,sched:sched_process_fork,sched:sched_process_exec,sched:sched_process_exit

# Kernel profiles, system-wide with kernel call chains: where each process blocks
# (off-CPU), and where its CPU time goes (sampling; this inflates every phase alike).
wait_quiet
echo "== perf (off-CPU, sched_switch with call chains), $RUNS runs" >&2
perf record -q -a -g -o "$outdir/offcpu.data" \
    -e sched:sched_switch,sched:sched_process_fork,sched:sched_process_exec -- \
    /bin/sh -c 'echo $$ >"$0"; exec "$@"' "$outdir/offcpu.pid" "${loop[@]}" >/dev/null 2>&1
perf script -i "$outdir/offcpu.data" -F comm,tid,time,event,trace,ip,sym 2>/dev/null >"$outdir/offcpu.txt"
wait_quiet
echo "== perf (on-CPU sampling at ${PROFILE_HZ:=10000} Hz with call chains), $RUNS runs" >&2
perf record -q -a -g -F "$PROFILE_HZ" -o "$outdir/cpu.data" \
    -e cpu-clock -e sched:sched_process_fork -e sched:sched_process_exec -- \
    /bin/sh -c 'echo $$ >"$0"; exec "$@"' "$outdir/cpu.pid" "${loop[@]}" >/dev/null 2>&1
perf script -i "$outdir/cpu.data" -F comm,tid,time,event,trace,ip,sym 2>/dev/null >"$outdir/cpu.txt"

echo
echo "######## $variant: phase timeline (perf, phase marks only) ########"
"$PY" "$here/trace_analyze.py" "$outdir/light.txt" "$outdir/strace.txt" --root "$(cat "$outdir/light.pid")" --strace-depth-offset $strace_offset --json "$outdir/light.json" |
    sed -n '1,/^-- top 10/p' | sed '$d'
echo
echo "######## $variant: syscall costs (perf, all syscalls) ########"
"$PY" "$here/trace_analyze.py" "$outdir/full.txt" "$outdir/strace.txt" --root "$(cat "$outdir/full.pid")" --strace-depth-offset $strace_offset --json "$outdir/full.json" |
    sed -n '1p;/^-- top 10/,$p'
echo
echo "######## $variant: off-CPU time by kernel stack (perf sched_switch) ########"
"$PY" "$here/kprof_analyze.py" --offcpu "$outdir/offcpu.txt" --root "$(cat "$outdir/offcpu.pid")"
echo
echo "######## $variant: on-CPU profile by process (perf sampling, inflated) ########"
"$PY" "$here/kprof_analyze.py" --cpu "$outdir/cpu.txt" --root "$(cat "$outdir/cpu.pid")" --hz "$PROFILE_HZ"
echo
echo "raw data in $outdir" >&2
