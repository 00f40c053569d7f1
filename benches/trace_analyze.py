#!/usr/bin/env python3
"""Where does a sandboxed spawn's time go? Analyzer for benches/trace-spawn.sh.

Input: `perf script` text of a `perf record` with raw_syscalls:sys_enter/sys_exit and
sched:sched_process_{fork,exec,exit}, taken over a loop driver that spawns the same
command N times; optionally an `strace -f -tt -T` file of one run of that command,
used only to name the syscalls (arguments) in the report.

Each run is the subtree under one direct child of the driver. Processes in a run are
labelled by depth and executable ("1 stockade", "2 stockade-init", ...), and syscalls
by (label, name, nth occurrence of that name in that process), so the same syscall
can be compared across runs. All figures are medians over runs.

Tracepoint overhead is a few microseconds per syscall (perf record, not ptrace), so
cheap syscalls look a little slower than they are; the relative picture holds.

Usage: trace_analyze.py PERF_SCRIPT.txt [STRACE.txt] [--root DRIVER_PID] [--json OUT.json]
                        [--strace-depth-offset N]
"""

import collections
import json
import re
import statistics
import sys

UNISTD = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"


def syscall_names():
    names = {}
    try:
        with open(UNISTD) as f:
            for line in f:
                m = re.match(r"#define __NR_(\w+)\s+(\d+)", line)
                if m:
                    names[int(m.group(2))] = m.group(1)
    except OSError:
        pass
    return names


NAMES = syscall_names()
LINE = re.compile(r"^\s*(?P<comm>.+?)\s+(?P<pid>\d+)/(?P<tid>\d+)\s+\[\d+\]\s+(?P<t>\d+\.\d+):\s+(?P<ev>[\w:]+):\s*(?P<rest>.*)$")


class Proc:
    def __init__(self, tid, parent, t):
        self.tid, self.parent, self.start = tid, parent, t
        self.children = []
        self.exe = None
        self.exec_t = None
        self.exit_t = None
        self.sys = []  # (name, t_enter, dur, args)
        self.open = None

    def label_exe(self, inherited):
        return (self.exe or inherited).rsplit("/", 1)[-1]


def parse_perf(path, root_pid=None):
    procs = {}
    order = []
    root = None
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            tid, t, ev, rest = int(m["tid"]), float(m["t"]), m["ev"], m["rest"]
            if ev == "sched:sched_process_fork":
                c = int(re.search(r"child_pid=(\d+)", rest).group(1))
                if tid not in procs:
                    procs[tid] = Proc(tid, None, t)
                    order.append(tid)
                p = Proc(c, tid, t)
                procs[c] = p
                procs[tid].children.append(c)
                continue
            p = procs.get(tid)
            if p is None:
                p = procs[tid] = Proc(tid, None, t)
                order.append(tid)
            if ev == "sched:sched_process_exec":
                p.exe = re.search(r"filename=(\S+)", rest).group(1)
                p.exec_t = t
                if root is None and (root_pid is None or tid == root_pid):
                    root = tid
            elif ev == "sched:sched_process_exit":
                p.exit_t = t
            elif ev == "raw_syscalls:sys_enter":
                nr = int(re.match(r"NR (\d+)", rest).group(1))
                p.open = (nr, t, rest.split(" ", 2)[2] if rest.count(" ") >= 2 else "")
            elif ev.startswith("syscalls:sys_enter_"):
                p.open = (ev[len("syscalls:sys_enter_"):], t, rest)
            elif ev.startswith("syscalls:sys_exit_"):
                name = ev[len("syscalls:sys_exit_"):]
                if p.open and p.open[0] == name:
                    mm = re.search(r"(0x[0-9a-f]+|-?\d+)\s*$", rest)
                    p.sys.append((name, p.open[1], t - p.open[1], p.open[2], int(mm.group(1), 0) if mm else 0))
                p.open = None
            elif ev == "raw_syscalls:sys_exit":
                mm = re.match(r"NR (-?\d+) = (-?\d+)", rest)
                nr = int(mm.group(1))
                if p.open and p.open[0] == nr:
                    name = NAMES.get(nr, f"nr{nr}")
                    p.sys.append((name, p.open[1], t - p.open[1], p.open[2], int(mm.group(2))))
                p.open = None
    return procs, root


def parse_strace(path):
    """{(depth, exe, name, nth): text} for one strace -f run (depth 1 = the traced command)."""
    lines = collections.defaultdict(list)  # pid -> [(name, text)]
    parent, exe, first_seen, first = {}, {}, {}, None
    clones = []  # (time, pid, returned pid) of clone-like calls
    pending = {}
    rx = re.compile(r"^(\d+)\s+(\d+):(\d+):(\d+\.\d+)\s+(.*)$")
    with open(path) as f:
        for raw in f:
            m = rx.match(raw.rstrip("\n"))
            if not m:
                continue
            pid, text = int(m.group(1)), m.group(5)
            t = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
            first_seen.setdefault(pid, t)
            if first is None:
                first = pid
            if text.startswith("<..."):
                name = text.split()[1]
                t0, head = pending.pop(pid, (t, name + "(...)"))
                text = head + " " + text.split("resumed>", 1)[-1].strip()
            elif text.endswith("<unfinished ...>"):
                pending[pid] = (t, text.replace("<unfinished ...>", "").strip())
                continue
            else:
                t0 = t
            mm = re.match(r"(\w+)\(", text)
            if not mm:
                continue
            name = mm.group(1)
            if name in ("clone", "clone3", "vfork", "fork"):
                r = re.search(r"= (\d+)", text.rsplit(")", 1)[-1])
                if r:
                    clones.append((t0, pid, int(r.group(1))))
            if name == "execve" and "= 0" in text.rsplit(")", 1)[-1]:
                exe[pid] = re.match(r'execve\("([^"]+)"', text).group(1)
            lines[pid].append((name, text))
    # a clone made inside a new pid namespace returns the child's pid in that namespace,
    # which strace does not translate: give such children the nearest earlier clone
    for t0, ppid, child in clones:
        if child in first_seen:
            parent[child] = ppid
    orphans = sorted((t, p) for p, t in first_seen.items() if p != first and p not in parent)
    unresolved = sorted((t0, ppid) for t0, ppid, child in clones if child not in first_seen)
    for t, p in orphans:
        before = [u for u in unresolved if u[0] <= t]
        if before:
            parent[p] = before[-1][1]
            unresolved.remove(before[-1])

    def depth(pid):
        d = 1
        while pid in parent:
            pid = parent[pid]
            d += 1
        return d

    def exe_of(pid):
        while pid not in exe and pid in parent:
            pid = parent[pid]
        return exe.get(pid, "?").rsplit("/", 1)[-1]

    out = {}
    for pid, ls in lines.items():
        counts = collections.Counter()
        d, e = depth(pid), exe_of(pid)
        for name, text in ls:
            counts[name] += 1
            out[(d, e, name, counts[name])] = text
    return out


def med(xs):
    return statistics.median(xs) if xs else 0.0


def analyze(procs, root):
    runs = []
    for c in procs[root].children:
        tree, stack = [], [(c, 1, procs[root].exe or "")]
        while stack:
            tid, d, inh = stack.pop()
            p = procs[tid]
            tree.append((p, d, p.label_exe(inh)))
            for cc in p.children:
                stack.append((cc, d + 1, p.label_exe(inh)))
        runs.append(tree)

    # end of run: the driver's wait4/waitid returning after the run child exited
    drv = procs[root]
    milestones = collections.defaultdict(list)
    sys_dur = collections.defaultdict(list)
    sys_args = {}
    gaps = collections.defaultdict(list)
    cat_tot = collections.defaultdict(list)
    totals = []
    for tree in runs:
        p0 = tree[0][0]
        t0 = p0.start
        waits = [s for s in drv.sys if s[0] in ("wait4", "waitid") and s[1] + s[2] >= (p0.exit_t or t0)]
        t_end = waits[0][1] + waits[0][2] if waits else (p0.exit_t or t0)
        totals.append((t_end - t0) * 1e3)
        for p, d, exe in tree:
            lab = f"{d} {exe}"
            milestones[(lab, "fork")].append((p.start - t0) * 1e3)
            if p.exec_t:
                milestones[(lab, "exec " + p.exe.rsplit("/", 1)[-1] + " done")].append((p.exec_t - t0) * 1e3)
            if p.exit_t:
                milestones[(lab, "exit")].append((p.exit_t - t0) * 1e3)
            firsts = {}
            for name, ts, dur, args, ret in p.sys:
                if name in MILESTONE_SYSCALLS:
                    if name not in firsts:
                        firsts[name] = True
                        milestones[(lab, f"{name} #1 enter")].append((ts - t0) * 1e3)
                        milestones[(lab, f"{name} #1 return")].append((ts + dur - t0) * 1e3)
                    else:
                        milestones[(lab, f"{name} last return")].append((ts + dur - t0) * 1e3)
            counts = collections.Counter()
            cats = collections.Counter()
            prev_end, prev_name = (p.exec_t or p.start), "start"
            for name, ts, dur, args, ret in p.sys:
                counts[name] += 1
                key = (d, exe, name, counts[name])
                sys_dur[key].append(dur * 1e3)
                sys_args.setdefault(key, args)
                cats[category(name)] += dur * 1e3
                gap = ts - prev_end
                gaps[(d, exe, f"after {prev_name}", f"before {name}#{counts[name]}")].append(gap * 1e3)
                prev_end, prev_name = ts + dur, f"{name}#{counts[name]}"
            for k, v in cats.items():
                cat_tot[(lab, k)].append(v)
            if p.exit_t:
                gaps[(d, exe, f"after {prev_name}", "exit")].append((p.exit_t - prev_end) * 1e3)
    return runs, totals, milestones, sys_dur, sys_args, gaps, cat_tot


# syscalls whose first call (enter, return) and last return mark the timeline
MILESTONE_SYSCALLS = {
    "clone", "clone3", "vfork", "execve", "unshare", "sethostname", "pivot_root", "umount2", "umount",
    "mount", "open_tree", "move_mount", "capset", "seccomp", "landlock_restrict_self", "exit_group",
}


def category(name):
    if name in ("mount", "umount2", "umount", "open_tree", "move_mount", "mount_setattr", "pivot_root", "fsopen", "fsmount", "fsconfig"):
        return "mounts"
    if name in ("clone", "clone3", "vfork", "fork", "unshare", "setns"):
        return "clone/unshare"
    if name in ("execve", "execveat"):
        return "execve"
    if name in ("wait4", "waitid", "poll", "ppoll", "recvmsg", "recvfrom", "read", "epoll_wait", "pselect6", "select"):
        return "blocking read/wait"
    if name in ("prctl", "capset", "capget", "setresuid", "setresgid", "seccomp", "landlock_create_ruleset",
                "landlock_add_rule", "landlock_restrict_self"):
        return "caps/prctl/seccomp/landlock"
    if name in ("mmap", "munmap", "mprotect", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq",
                "prlimit64"):
        return "memory/loader"
    if name in ("rt_sigaction", "rt_sigprocmask", "sigaltstack", "signalfd4"):
        return "signals"
    if name in ("exit_group", "exit"):
        return "exit"
    return "files/other"


def main():
    args = sys.argv[1:]
    out_json, root_pid = None, None
    if "--json" in args:
        i = args.index("--json")
        out_json = args[i + 1]
        del args[i : i + 2]
    strace_offset = 0
    if "--strace-depth-offset" in args:
        # strace of one run may see more levels above the runs (api: the host itself)
        i = args.index("--strace-depth-offset")
        strace_offset = int(args[i + 1])
        del args[i : i + 2]
    if "--root" in args:
        i = args.index("--root")
        root_pid = int(args[i + 1])
        del args[i : i + 2]
    procs, root = parse_perf(args[0], root_pid)
    if root is None:
        sys.exit("trace_analyze: the driver process was not found in the trace")
    names = parse_strace(args[1]) if len(args) > 1 else {}
    runs, totals, milestones, sys_dur, sys_args, gaps, cat_tot = analyze(procs, root)
    n = len(runs)
    print(f"runs: {n}   median total (driver fork -> wait returns): {med(totals):.3f} ms (traced)")

    print("\n-- timeline: median offset from the driver's fork, ms --")
    rows = sorted(((med(v), k) for k, v in milestones.items() if len(v) >= n // 2), key=lambda r: r[0])
    prev = 0.0
    for t, (lab, ev) in rows:
        print(f"  {t:8.3f}  (+{t - prev:6.3f})  [{lab}] {ev}")
        prev = t

    def describe(key):
        d, exe, name, nth = key
        s = names.get((d + strace_offset, exe, name, nth))
        if s:
            return s if len(s) < 150 else s[:147] + "..."
        return f"{name}({sys_args.get(key, '')[:80]})"

    print("\n-- top 10 syscalls by median duration (blocking waits excluded) --")
    ranked = sorted(
        ((med(v), k) for k, v in sys_dur.items() if len(v) >= n // 2 and category(k[2]) != "blocking read/wait"),
        reverse=True,
    )
    top = []
    for dur, key in ranked[:10]:
        d, exe, name, nth = key
        print(f"  {dur:7.3f} ms  [{d} {exe}] {name} #{nth}: {describe(key)}")
        top.append({"ms": round(dur, 4), "process": f"{d} {exe}", "syscall": name, "nth": nth, "text": describe(key)})

    print("\n-- blocking waits (time a process sat waiting on another), median --")
    for dur, key in sorted(
        ((med(v), k) for k, v in sys_dur.items() if len(v) >= n // 2 and category(k[2]) == "blocking read/wait"),
        reverse=True,
    )[:6]:
        d, exe, name, nth = key
        print(f"  {dur:7.3f} ms  [{d} {exe}] {name} #{nth}: {describe(key)}")

    print("\n-- top 8 user-space gaps between syscalls (CPU work, page faults, dynamic linking) --")
    gtop = []
    for dur, key in sorted(((med(v), k) for k, v in gaps.items() if len(v) >= n // 2), reverse=True)[:8]:
        d, exe, a, b = key
        print(f"  {dur:7.3f} ms  [{d} {exe}] {a} .. {b}")
        gtop.append({"ms": round(dur, 4), "process": f"{d} {exe}", "between": f"{a} .. {b}"})

    print("\n-- syscall time by category and process, median ms per run --")
    by_lab = collections.defaultdict(dict)
    for (lab, cat), v in cat_tot.items():
        by_lab[lab][cat] = med(v)
    for lab in sorted(by_lab):
        cats = ", ".join(f"{c} {v:.3f}" for c, v in sorted(by_lab[lab].items(), key=lambda kv: -kv[1]) if v >= 0.01)
        print(f"  [{lab}] {cats}")

    if out_json:
        with open(out_json, "w") as f:
            json.dump(
                {
                    "runs": n,
                    "median_total_ms": med(totals),
                    "timeline": [{"ms": round(t, 4), "process": lab, "event": ev} for t, (lab, ev) in rows],
                    "top_syscalls": top,
                    "top_gaps": gtop,
                    "categories_ms": by_lab,
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
