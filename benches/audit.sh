#!/usr/bin/env bash
# Cost of recording refused syscalls (issue 9), side by side in one run:
# the same syscall loop bare, in bwrap with stockade's filter (if bwrap is
# installed), and in stockade with refused syscalls recorded (the default:
# seccomp user notification, answered by the host) and not recorded
# (`--no-syscall-events`: refused in the kernel).
#   - allowed syscalls (getppid: cached by the kernel; ioctl: argument check):
#     the ratio events-on / events-off must stay at ~1.00;
#   - a refused syscall (mount): per-call time with the host round trip,
#     which is the latency of a denied-syscall event.
#
#   bash benches/audit.sh          # AUDIT_REPS=7 by default
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -q -p stockade-cli
cargo build --release -q -p stockade-examples --example dump_seccomp_filter
work=$(mktemp -d /var/tmp/stockade-audit.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
target/release/examples/dump_seccomp_filter >"$work/filter.bpf" 2>/dev/null
gcc -O2 -o "$work/syscall_loop" benches/rings/syscall_loop.c
python3 benches/audit/driver.py target/release/stockade "$work/filter.bpf" "$work/syscall_loop"
