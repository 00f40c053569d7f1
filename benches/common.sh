# Shared by spawn.sh and trace-spawn.sh (sourced, not run).

# bwrap_argv: bwrap's comparable minimal root, adapted to the host (merged-/usr
# symlinks where the host has them), running /bin/true. $1 = the bwrap binary.
make_bwrap_argv() {
    bwrap_argv=("$1" --unshare-all --die-with-parent --new-session --ro-bind /usr /usr)
    local d
    for d in bin lib lib64 sbin; do
        if [[ -L /$d ]]; then
            bwrap_argv+=(--symlink "$(readlink "/$d")" "/$d")
        elif [[ -d /$d ]]; then
            bwrap_argv+=(--ro-bind "/$d" "/$d")
        fi
    done
    bwrap_argv+=(--tmpfs /tmp --dev /dev --proc /proc /bin/true)
}

cpu_busy_pct() { # busy % of all CPUs over one second
    local a b
    read -r _ a1 a2 a3 a4 a5 a6 a7 a8 _ </proc/stat; a=$((a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8)); ai=$((a4 + a5))
    sleep 1
    read -r _ b1 b2 b3 b4 b5 b6 b7 b8 _ </proc/stat; b=$((b1 + b2 + b3 + b4 + b5 + b6 + b7 + b8)); bi=$((b4 + b5))
    echo $((100 - 100 * (bi - ai) / (b - a)))
}

# Spawn latency on a small VM is very sensitive to other load (a cargo build next door
# doubles it): wait until the host is idle, up to QUIET_WAIT seconds (default 300).
wait_quiet() {
    local waited=0 busy me
    me=$(basename "$0")
    while :; do
        busy=$(cpu_busy_pct)
        ((busy <= ${QUIET_MAX_BUSY:-10})) && return 0
        if ((waited >= ${QUIET_WAIT:-300})); then
            echo "$me: WARNING: host still ${busy}% busy after ${waited}s; results will be noisy" >&2
            return 0
        fi
        ((waited == 0)) && echo "$me: host ${busy}% busy, waiting for it to go idle ..." >&2
        waited=$((waited + 1))
    done
}
