#!/usr/bin/env python3
"""Kernel-side profile of a spawn's processes. Companion of trace_analyze.py.

Two modes, both over a loop driver (see trace-spawn.sh); each run is the subtree under
one direct child of the driver, processes are labelled "depth exe".

--offcpu: input `perf script -F comm,tid,time,event,trace,ip,sym` of `perf record -a -g
  -e sched:sched_switch,sched:sched_process_fork,sched:sched_process_exec`. Each
  switch-out of a task of a run is paired with its next switch-in; the blocked time is
  attributed to the kernel frames that called schedule(). Waiting for another process of
  the same spawn (wait4, poll, pipe/socket reads) is listed apart from waiting on the
  kernel itself (RCU grace periods in umount or namespace teardown, page-cache I/O).

--cpu: input `perf script -F comm,tid,time,event,ip,sym` of `perf record -a -g -F HZ
  -e cpu-clock -e sched:sched_process_fork -e sched:sched_process_exec`. On-CPU samples
  of each process, split user/kernel, and the kernel frames with the most inclusive time
  (clone's namespace creation, exit's namespace teardown, mounts, exec, page faults).
  Kernel workers are not in the spawn's tree; their samples in functions that clean up
  namespaces (cleanup_net etc.) are reported apart, as asynchronous cost per spawn.

Usage: kprof_analyze.py (--offcpu|--cpu) PERF_SCRIPT.txt --root DRIVER_PID
"""

import collections
import re
import sys

HEAD = re.compile(r"^\s*(?P<comm>.+?)\s+(?P<tid>\d+)\s+(?P<t>\d+\.\d+):\s+(?P<ev>[\w:-]+):\s*(?P<rest>.*)$")
FRAME = re.compile(r"^\s+([0-9a-f]+)\s+(\S+)")
SKIP = {"__schedule", "schedule", "schedule_timeout", "io_schedule", "schedule_preempt_disabled",
        "schedule_hrtimeout_range_clock", "schedule_hrtimeout_range", "__wait_for_common",
        "wait_for_completion", "wait_for_completion_state", "wait_for_completion_killable",
        "preempt_schedule_common", "__cond_resched", "_cond_resched", "preempt_schedule"}
WAITING_ON_PEERS = ("do_wait", "do_sys_poll", "anon_pipe_read", "pipe_read", "unix_stream_read_generic",
                    "__unix_dgram_recvmsg", "unix_dgram_recvmsg", "__skb_wait_for_more_packets",
                    "do_epoll_wait", "signalfd_dequeue", "futex_wait_queue", "do_nanosleep",
                    "exit_to_user_mode_loop")


def parse(path):
    events = []
    cur = None
    with open(path) as f:
        for line in f:
            if not line.strip():
                cur = None
                continue
            m = HEAD.match(line)
            if m:
                cur = {"comm": m["comm"], "tid": int(m["tid"]), "t": float(m["t"]), "ev": m["ev"],
                       "rest": m["rest"], "stack": []}
                events.append(cur)
                continue
            fm = FRAME.match(line)
            if fm and cur is not None:
                if not cur["stack"]:
                    cur["is_kernel"] = fm.group(1).startswith("ffffffff")
                if fm.group(1).startswith("ffffffff"):
                    cur["stack"].append(fm.group(2))
                else:
                    cur["stack"].append("[user]")
    return events


def tree(events, root):
    parent, exe, children = {}, {}, collections.defaultdict(list)
    for e in events:
        if e["ev"] == "sched:sched_process_fork":
            c = int(re.search(r"child_pid=(\d+)", e["rest"]).group(1))
            parent[c] = e["tid"]
            children[e["tid"]].append(c)
        elif e["ev"] == "sched:sched_process_exec":
            exe[e["tid"]] = re.search(r"filename=(\S+)", e["rest"]).group(1).rsplit("/", 1)[-1]
    runs = children[root]
    label = {}
    for r in runs:
        stack = [(r, 1)]
        while stack:
            tid, d = stack.pop()
            e = exe.get(tid)
            p = tid
            while e is None and p in parent:
                p = parent[p]
                e = exe.get(p)
            label[tid] = f"{d} {e}"
            stack.extend((c, d + 1) for c in children[tid])
    return runs, label


GENERIC = {"entry_SYSCALL_64_after_hwframe", "do_syscall_64", "x64_sys_call", "asm_exc_page_fault",
           "exc_page_fault", "ret_from_fork", "ret_from_fork_asm", "syscall_exit_to_user_mode",
           "asm_sysvec_apic_timer_interrupt", "sysvec_apic_timer_interrupt", "irq_exit_rcu",
           "__irq_exit_rcu", "handle_softirqs", "__do_softirq", "asm_common_interrupt", "common_interrupt"}
ASYNC = ("cleanup_net", "free_nsproxy", "put_mnt_ns", "delayed_mntput", "cleanup_mnt", "free_user_ns",
         "destroy_pid_namespace", "free_ipc", "rcu_do_batch", "kfree_rcu_work", "vfree", "ops_undo_list",
         "ops_exit_list", "free_netdev", "netdev_run_todo")


def cpu_mode(events, root):
    runs, label = tree(events, root)
    n = max(1, len(runs))
    samples = [e for e in events if e["ev"] == "cpu-clock"]
    if len(samples) > 1:
        ts = sorted(e["t"] for e in samples[:2000])
        gaps = [b - a for a, b in zip(ts, ts[1:]) if b > a]
        period = min(gaps) if gaps else 0.0001
    else:
        period = 0.0001
    # per-CPU sampling period: samples of one CPU are spaced by the period; with several
    # CPUs the global minimum gap understates it, so use the configured rate if given
    if "--hz" in sys.argv:
        period = 1.0 / float(sys.argv[sys.argv.index("--hz") + 1])
    ms = period * 1e3
    per_lab = collections.Counter()
    split = collections.Counter()
    incl = collections.Counter()
    async_k = collections.Counter()
    for e in samples:
        st = e["stack"]
        kern = [f for f in st if f not in GENERIC and not f.startswith("[")]
        if e["tid"] in label:
            lab = label[e["tid"]]
            per_lab[lab] += 1
            is_k = e.get("is_kernel", False)
            split[(lab, "kernel" if is_k else "user")] += 1
            if is_k:
                for f in dict.fromkeys(kern):
                    incl[(lab, f)] += 1
        elif e["comm"].startswith("kworker") or e["comm"].startswith("rcu"):
            hit = next((f for f in st if f in ASYNC), None)
            if hit:
                async_k[hit] += 1
    print(f"runs: {len(runs)}; on-CPU ms per run (sampling period {ms:.3f} ms; sampling overhead inflates all)")
    for lab in sorted(per_lab):
        k, u = split[(lab, "kernel")], split[(lab, "user")]
        print(f"\n[{lab}] {per_lab[lab] * ms / n:.3f} ms on CPU: kernel {k * ms / n:.3f}, user {u * ms / n:.3f}")
        top = sorted(((c, f) for (l, f), c in incl.items() if l == lab), reverse=True)
        shown = 0
        for c, f in top:
            if c * ms / n < 0.01 or shown >= 14:
                break
            print(f"    {c * ms / n:7.3f} ms  {f}")
            shown += 1
    if async_k:
        print("\n-- kernel workers (not in the spawn's tree), namespace/mount cleanup, ms per spawn --")
        for f, c in async_k.most_common(8):
            print(f"    {c * ms / n:7.3f} ms  {f}")


def main():
    args = sys.argv[1:]
    root = int(args[args.index("--root") + 1])
    values = {args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--root", "--hz")}
    path = next(a for a in args if not a.startswith("--") and a not in values)
    events = parse(path)
    if "--cpu" in args:
        cpu_mode(events, root)
        return
    runs, label = tree(events, root)

    out_at = {}
    kernel_wait = collections.defaultdict(float)
    peer_wait = collections.defaultdict(float)
    for e in events:
        if e["ev"] != "sched:sched_switch":
            continue
        m = re.search(r"prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=.* next_pid=(\d+)", e["rest"])
        if not m:
            continue
        prev, state, nxt = int(m.group(1)), m.group(2), int(m.group(3))
        if nxt in out_at:
            t0, lab, st, key = out_at.pop(nxt)
            dt = (e["t"] - t0) * 1e3
            if st.startswith("R"):
                key = "preempted (runnable, waiting for a CPU)"
                kernel_wait[(lab, key)] += dt
            elif key.startswith("kernel_clone"):
                peer_wait[(lab, "vfork: waiting for the child to exec (" + key + ")")] += dt
            elif any(w in key for w in WAITING_ON_PEERS):
                peer_wait[(lab, key)] += dt
            else:
                kernel_wait[(lab, key)] += dt
        if prev in label:
            frames = [f for f in e["stack"] if f not in SKIP and not f.startswith("[")]
            kern = []
            for f in frames:
                if f.startswith("entry_SYSCALL") or f in ("do_syscall_64",):
                    break
                kern.append(f)
            key = " <- ".join(kern[:4]) or "?"
            out_at[prev] = (e["t"], label[prev], state, key)

    n = max(1, len(runs))
    print(f"runs: {len(runs)}; mean off-CPU ms per run, by process and kernel stack (innermost first)")
    print("\n-- blocked on the kernel (not on another process of the spawn) --")
    for (lab, key), v in sorted(kernel_wait.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {v / n:7.3f} ms  [{lab}] {key}")
    print("\n-- waiting for another process of the spawn --")
    for (lab, key), v in sorted(peer_wait.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {v / n:7.3f} ms  [{lab}] {key}")


if __name__ == "__main__":
    main()
