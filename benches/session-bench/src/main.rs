//! Warm sessions, side by side in one run (issue 6, item 6).
//!
//! 1. Latency of `/bin/true`, N samples per variant, in interleaved rounds (each
//!    round runs every variant once, starting at a rotating variant) so that drift
//!    hits all variants alike:
//!      bare     std::process::Command("/bin/true"), null stdio, waited
//!      session  session.command(["/bin/true"]).status() in one warm session
//!      cold     Sandbox::new().command(["/bin/true"]).status()
//!      bwrap    bwrap with the comparable minimal root (benches/common.sh's
//!               make_bwrap_argv), null stdio, waited
//! 2. Memory of an idle session: Rss/Pss/private of each of its processes (every
//!    descendant of this process while only the session is open), from
//!    /proc/PID/smaps_rollup.
//! 3. Idle sessions per GiB: open sessions until the summed Pss of all their
//!    processes reaches 1 GiB or CAP sessions (then extrapolate), close them all,
//!    verify nothing is left.
//!
//! Env: N (300), WARMUP (20), CAP (300), BWRAP (bwrap from PATH).
//! The helper is found the library's usual way (STOCKADE_INIT, ...).

use std::collections::HashMap;
use std::process::{Command, Stdio as PStdio};
use std::time::{Duration, Instant};

use stockade::{Sandbox, Session, Stdio};

fn env_num(k: &str, d: usize) -> usize {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn bwrap_argv(bwrap: &str) -> Vec<String> {
    let mut v: Vec<String> = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for d in ["bin", "lib", "lib64", "sbin"] {
        let p = format!("/{d}");
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = std::fs::read_link(&p).unwrap();
                v.extend(["--symlink".into(), t.to_string_lossy().into_owned(), p]);
            }
            Ok(m) if m.is_dir() => v.extend(["--ro-bind".into(), p.clone(), p]),
            _ => {}
        }
    }
    for s in ["--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc", "/bin/true"] {
        v.push(s.into());
    }
    v
}

fn run_cmd(argv: &[String]) {
    let st = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(PStdio::null())
        .stdout(PStdio::null())
        .stderr(PStdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{}: {e}", argv[0]));
    assert!(st.success(), "{argv:?} ended with {st}");
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn us(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

// ---- /proc helpers -----------------------------------------------------------

/// pid -> (ppid, comm) for every process.
fn proc_table() -> HashMap<u32, (u32, String)> {
    let mut t = HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let (Some(l), Some(r)) = (stat.find('('), stat.rfind(')')) else { continue };
        let comm = stat[l + 1..r].to_string();
        let ppid = stat[r + 2..].split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        t.insert(pid, (ppid, comm));
    }
    t
}

/// Every descendant of this process: (pid, comm).
fn descendants() -> Vec<(u32, String)> {
    let me = std::process::id();
    let t = proc_table();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, (ppid, _)) in &t {
        children.entry(*ppid).or_default().push(pid);
    }
    let mut out = Vec::new();
    let mut frontier = vec![me];
    while let Some(p) = frontier.pop() {
        for &pid in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            out.push((pid, t[&pid].1.clone()));
            frontier.push(pid);
        }
    }
    out.sort();
    out
}

#[derive(Default, Clone, Copy)]
struct Mem {
    rss: u64,
    pss: u64,
    private: u64, // Private_Clean + Private_Dirty (USS), kB
}

impl std::ops::AddAssign for Mem {
    fn add_assign(&mut self, o: Mem) {
        self.rss += o.rss;
        self.pss += o.pss;
        self.private += o.private;
    }
}

/// kB fields of /proc/PID/smaps_rollup; `Err` when unreadable (an unprivileged
/// caller cannot read a non-dumpable process's smaps).
fn mem_of(pid: u32) -> Result<Mem, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).map_err(|e| e.to_string())?;
    let f = |k: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Mem { rss: f("Rss:"), pss: f("Pss:"), private: f("Private_Clean:") + f("Private_Dirty:") })
}

/// Fallback from the world-readable /proc/PID/status: Rss = VmRSS, and Pss and
/// private estimated as RssAnon + RssShmem (an upper bound for the private part;
/// file pages, shared with every other stockade-init, are left out of Pss).
fn mem_est(pid: u32) -> Option<Mem> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let f = |k: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let anon = f("RssAnon:") + f("RssShmem:");
    Some(Mem { rss: f("VmRSS:"), pss: anon, private: anon })
}

/// smaps_rollup, else the status estimate; bool = estimated.
fn mem_any(pid: u32) -> Option<(Mem, bool)> {
    match mem_of(pid) {
        Ok(m) => Some((m, false)),
        Err(_) => mem_est(pid).map(|m| (m, true)),
    }
}

fn meminfo(k: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(k))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// (busy, total) jiffies of all CPUs from /proc/stat.
fn cpu_jiffies() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap();
    let v: Vec<u64> = s.lines().next().unwrap().split_whitespace().skip(1).take(8).map(|x| x.parse().unwrap()).collect();
    let total: u64 = v.iter().sum();
    (total - v[3] - v[4], total)
}

/// utime+stime+cutime+cstime of this process, in jiffies.
fn own_jiffies() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<u64> = s[s.rfind(')').unwrap() + 2..].split(' ').skip(11).take(4).map(|x| x.parse().unwrap_or(0)).collect();
    f.iter().sum()
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn main() {
    let n = env_num("N", 300);
    let warmup = env_num("WARMUP", 20);
    let cap = env_num("CAP", 300);
    let bwrap = std::env::var("BWRAP").unwrap_or_else(|_| "bwrap".into());
    let uid = unsafe { libc_getuid() };
    let helper = std::env::var("STOCKADE_INIT").map(|p| format!("STOCKADE_INIT={p}")).unwrap_or("library default".into());
    println!("== session-bench: uid {uid}, N={n} per variant, warmup {warmup}, helper {helper}");

    let base = Sandbox::new().stdin(Stdio::Null).stdout(Stdio::Null).stderr(Stdio::Null);
    let fds_before = fd_count();

    // ---- 1. latency -----------------------------------------------------------
    let session = base.session().expect("open session");
    let cold = base.clone().command(["/bin/true"]);
    let bw = bwrap_argv(&bwrap);
    let bare = vec!["/bin/true".to_string()];
    let names = ["bare exec", "session exec", "cold spawn", "bwrap"];
    let run = |i: usize| -> Duration {
        let t = Instant::now();
        match i {
            0 => run_cmd(&bare),
            1 => assert!(session.command(["/bin/true"]).status().expect("session exec").success()),
            2 => assert!(cold.status().expect("cold spawn").success()),
            _ => run_cmd(&bw),
        }
        t.elapsed()
    };
    for r in 0..warmup {
        for k in 0..4 {
            run((r + k) % 4);
        }
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); 4];
    let (b0, t0j) = cpu_jiffies();
    let own0 = own_jiffies();
    let t0 = Instant::now();
    for r in 0..n {
        for k in 0..4 {
            let i = (r + k) % 4;
            samples[i].push(run(i));
        }
    }
    let wall = t0.elapsed();
    let (b1, t1j) = cpu_jiffies();
    let own1 = own_jiffies();
    let busy = 100.0 * (b1 - b0) as f64 / (t1j - t0j).max(1) as f64;
    let own = 100.0 * (own1 - own0) as f64 / (t1j - t0j).max(1) as f64;
    let stats: Vec<(Duration, Duration, f64)> = samples
        .iter_mut()
        .map(|v| {
            v.sort();
            let mean = v.iter().map(|d| us(*d)).sum::<f64>() / v.len() as f64;
            (pct(v, 50.0), pct(v, 90.0), mean)
        })
        .collect();
    let (bare50, bw50) = (us(stats[0].0), us(stats[3].0));
    println!(
        "\n-- latency of /bin/true, {n} interleaved rounds ({:.1} s); host CPUs {busy:.0}% busy during it, of which this bench and the children it reaped ~{own:.0}%",
        wall.as_secs_f64()
    );
    println!("{:<14} {:>10} {:>10} {:>10} {:>10} {:>10}", "variant", "p50 us", "p90 us", "mean us", "p50/bare", "p50/bwrap");
    for (i, (p50, p90, mean)) in stats.iter().enumerate() {
        println!(
            "{:<14} {:>10.0} {:>10.0} {:>10.0} {:>9.2}x {:>9.2}x",
            names[i],
            us(*p50),
            us(*p90),
            mean,
            us(*p50) / bare50,
            us(*p50) / bw50
        );
    }
    let ratio = us(stats[1].0) / bare50;
    println!(
        "target session exec p50 <= 1.5x bare exec: {:.2}x -> {}",
        ratio,
        if ratio <= 1.5 { "MET" } else { "NOT MET" }
    );
    drop(cold);

    // ---- 2. idle session memory --------------------------------------------------
    // The latency session is now idle (after its commands). Only it is open, so
    // every descendant of this process belongs to it.
    std::thread::sleep(Duration::from_millis(200));
    println!("\n-- idle session memory (the latency session, after {} commands; kB from smaps_rollup)", n + warmup);
    println!("session.pid() = {} (init, PID 1 inside)", session.pid());
    println!("{:<8} {:<16} {:>8} {:>8} {:>8}  role", "pid", "comm", "Rss", "Pss", "Private");
    let mut tot = Mem::default();
    let mut estimated = 0;
    let table = proc_table();
    for (pid, comm) in descendants() {
        let role = if pid == session.pid() {
            "init"
        } else if table.get(&session.pid()).map(|x| x.0) == Some(pid) {
            "helper (init's parent)"
        } else {
            ""
        };
        match mem_any(pid) {
            Some((m, est)) => {
                let mark = if est { "~" } else { "" };
                println!(
                    "{:<8} {:<16} {:>8} {:>8} {:>8}  {role}{}",
                    pid,
                    comm,
                    m.rss,
                    format!("{mark}{}", m.pss),
                    format!("{mark}{}", m.private),
                    if est { " (smaps_rollup unreadable: not dumpable; ~ = RssAnon+RssShmem from status)" } else { "" }
                );
                estimated += est as usize;
                tot += m;
            }
            None => println!("{:<8} {:<16} gone  {role}", pid, comm),
        }
    }
    let q = if estimated > 0 { "~" } else { "" };
    println!(
        "idle session total: Rss {:.2} MiB, Pss {q}{:.2} MiB, private {q}{:.2} MiB (no command running, so all of it is beyond the command)",
        mib(tot.rss),
        mib(tot.pss),
        mib(tot.private),
    );
    println!(
        "target idle session <= 2 MiB beyond the command: by Rss {} / by Pss {}{}",
        if tot.rss <= 2048 { "MET" } else { "NOT MET" },
        if tot.pss <= 2048 { "MET" } else { "NOT MET" },
        if estimated > 0 { " (Pss partly estimated)" } else { "" }
    );
    session.close().expect("close");

    // ---- 3. sessions per GiB ----------------------------------------------------
    const GIB_KB: u64 = 1024 * 1024;
    let avail0 = meminfo("MemAvailable:");
    let kern0 = meminfo("Slab:") + meminfo("PageTables:") + meminfo("KernelStack:");
    let mut open: Vec<Session> = Vec::new();
    let mut open_times = Vec::new();
    let mut sum = Mem::default();
    let mut est = 0usize;
    let mut err = None;
    let measure = || {
        let mut s = Mem::default();
        let mut est = 0usize;
        for (pid, _) in descendants() {
            if let Some((m, e)) = mem_any(pid) {
                s += m;
                est += e as usize;
            }
        }
        (s, est)
    };
    let t0 = Instant::now();
    while open.len() < cap {
        let t = Instant::now();
        match base.session() {
            Ok(s) => {
                open_times.push(t.elapsed());
                open.push(s);
            }
            Err(e) => {
                err = Some(e.to_string());
                break;
            }
        }
        if open.len() % 25 == 0 {
            (sum, est) = measure();
            if sum.pss >= GIB_KB {
                break;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    if !open.is_empty() {
        (sum, est) = measure();
    }
    let k = open.len();
    let procs = descendants().len();
    let avail1 = meminfo("MemAvailable:");
    let kern1 = meminfo("Slab:") + meminfo("PageTables:") + meminfo("KernelStack:");
    open_times.sort();
    println!("\n-- idle sessions per GiB");
    println!(
        "opened {k} sessions in {:.1} s (open p50 {:.0} us, p90 {:.0} us), {procs} processes{}",
        t0.elapsed().as_secs_f64(),
        open_times.get(open_times.len() / 2).map(|d| us(*d)).unwrap_or(0.0),
        if open_times.is_empty() { 0.0 } else { us(pct(&open_times, 90.0)) },
        err.map(|e| format!("; stopped by error: {e}")).unwrap_or_default()
    );
    if k > 0 {
        let per = sum.pss as f64 / k as f64;
        let kern = kern1 as f64 - kern0 as f64;
        let avail = avail0 as f64 - avail1 as f64;
        println!(
            "summed over all their processes: Pss {:.1} MiB, Rss {:.1} MiB, private {:.1} MiB -> {:.0} kB Pss per session{}",
            mib(sum.pss),
            mib(sum.rss),
            mib(sum.private),
            per,
            if est > 0 { format!(" ({est} processes' Pss estimated from status, see above)") } else { String::new() }
        );
        println!(
            "kernel side (not in Pss): Slab+PageTables+KernelStack grew {:.1} MiB ({:.0} kB/session); MemAvailable fell {:.1} MiB ({:.0} kB/session)",
            kern / 1024.0,
            kern / k as f64,
            avail / 1024.0,
            avail / k as f64
        );
        if sum.pss >= GIB_KB {
            println!("1 GiB of summed Pss reached at {k} sessions");
        } else {
            println!(
                "cap of {k} sessions hit first (summed Pss {:.1} MiB < 1 GiB); extrapolated: {:.0} idle sessions per GiB by Pss, {:.0} by Pss + kernel growth, {} by MemAvailable drop (noisy: other load moves it)",
                mib(sum.pss),
                GIB_KB as f64 / per,
                GIB_KB as f64 / (per + kern / k as f64),
                if avail > 0.0 { format!("{:.0}", GIB_KB as f64 / (avail / k as f64)) } else { "n/a".into() }
            );
        }
    }
    let t = Instant::now();
    for s in open {
        s.close().expect("close");
    }
    let close_t = t.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    let left = descendants();
    let fds_after = fd_count();
    println!(
        "closed all in {:.2} s; leftover processes: {} {:?}; fds before {fds_before}, after {fds_after} -> {}",
        close_t.as_secs_f64(),
        left.len(),
        left,
        if left.is_empty() && fds_after == fds_before { "CLEAN" } else { "LEFTOVERS" }
    );
}

extern "C" {
    #[link_name = "getuid"]
    fn libc_getuid() -> u32;
}
