#!/usr/bin/env bash
# Cost of the access and syscall rings, side by side in one run:
#   (b) a raw syscall loop: bare, bwrap, bwrap + stockade's filter, stockade;
#   (c) real work: find /usr, git status on a large tree, make -j2, in stockade
#       vs bwrap running exactly stockade's seccomp filter.
# Filter attach time per spawn is benches/seccomp-attach (see its README).
#
#   bash benches/rings.sh            # RINGS_REPS=7 RINGS_CALLS=4000000 by default
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source benches/common.sh

command -v bwrap >/dev/null || { echo "rings.sh: needs bubblewrap (apt-get install bubblewrap)" >&2; exit 1; }
cargo build --release -q -p stockade-cli
cargo build --release -q -p stockade-examples --example dump_seccomp_filter
work=$(mktemp -d /tmp/stockade-rings.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

target/release/examples/dump_seccomp_filter >"$work/filter.bpf" 2>/dev/null
gcc -O2 -o "$work/syscall_loop" benches/rings/syscall_loop.c

# A large git tree: 30,000 files in 300 directories, committed.
mkdir -p "$work/repo"
(
    cd "$work/repo"
    git init -q
    for d in $(seq 1 300); do
        mkdir "d$d"
        for f in $(seq 1 100); do echo "$d $f" >"d$d/f$f.txt"; done
    done
    git add -A && git -c user.email=b@e -c user.name=bench commit -qm init
)
# A small parallel compile.
mkdir -p "$work/build"
for i in $(seq 1 8); do
    printf 'int f%d(int x) { int s = 0; for (int i = 0; i < x; i++) s += i * %d; return s; }\n' "$i" "$i" >"$work/build/f$i.c"
done
printf 'int main(void) { return 0; }\n' >"$work/build/main.c"
cat >"$work/build/Makefile" <<'MK'
SRCS := $(wildcard *.c)
OBJS := $(SRCS:.c=.o)
prog: $(OBJS)
	gcc -o $@ $^
%.o: %.c
	gcc -O2 -c -o $@ $<
clean:
	rm -f *.o prog
MK

wait_quiet
echo "kernel $(uname -r), $(nproc) CPUs; filter $(($(stat -c %s "$work/filter.bpf") / 8)) instructions"
python3 benches/rings/driver.py target/release/stockade "$work/filter.bpf" "$work/syscall_loop" "$work"
