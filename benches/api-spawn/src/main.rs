//! Cold spawn of `/bin/true` through the stockade Rust API, timed in-process.
//!
//! Usage:
//!   api-spawn [N] [WARMUP]   run WARMUP + N spawns, print JSON
//!                            {"n":..,"helper":..,"p50_ns":..,"p95_ns":..,"mean_ns":..,"samples_ns":[..]}
//!   api-spawn --serve        for each line read on stdin, run one spawn and
//!                            print its latency in ns (or "ERR <msg>") on stdout;
//!                            lets benches/spawn.sh interleave it with other variants.
//!
//! Each sample times `Sandbox::new().command(["/bin/true"]).status()` end to end:
//! plan, helper spawn, namespace setup, the command, and reaping. The helper is
//! found the library's usual way (STOCKADE_INIT, a stockade-init next to this
//! executable, else this executable itself: every binary linking stockade
//! carries the helper entry point).

use std::io::{BufRead, Write};
use std::time::Instant;

/// `STOCKADE_BENCH_PREWARM=1`: keep one sandbox pre-warmed (`Sandbox::prewarm`).
fn prewarm_enabled() -> bool {
    std::env::var_os("STOCKADE_BENCH_PREWARM").is_some_and(|v| v == "1")
}

fn one() -> Result<u64, String> {
    let sandbox = stockade::Sandbox::new().command(["/bin/true"]);
    static PREWARM: std::sync::Once = std::sync::Once::new();
    let mut failed = None;
    PREWARM.call_once(|| {
        if prewarm_enabled() {
            failed = sandbox.prewarm().err();
        }
    });
    if let Some(e) = failed {
        return Err(format!("prewarm: {e}"));
    }
    let t = Instant::now();
    let st = sandbox.status().map_err(|e| e.to_string())?;
    let ns = t.elapsed().as_nanos() as u64;
    if !st.success() {
        return Err(format!("/bin/true ended with {st}"));
    }
    Ok(ns)
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    // nearest-rank percentile
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn helper_desc() -> String {
    if let Some(p) = std::env::var_os("STOCKADE_INIT") {
        return format!("STOCKADE_INIT={}", p.to_string_lossy());
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            for d in [Some(dir), dir.parent()].into_iter().flatten() {
                if d.join("stockade-init").exists() {
                    return format!("next-to-exe {}", d.join("stockade-init").display());
                }
            }
        }
    }
    "self-exec".into()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        let stdin = std::io::stdin();
        let mut out = std::io::stdout().lock();
        for line in stdin.lock().lines() {
            if line.is_err() {
                break;
            }
            let reply = match one() {
                Ok(ns) => ns.to_string(),
                Err(e) => format!("ERR {}", e.replace('\n', " ")),
            };
            if writeln!(out, "{reply}").and_then(|_| out.flush()).is_err() {
                break;
            }
        }
        return;
    }
    let n: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(300);
    let warmup: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    for _ in 0..warmup {
        if let Err(e) = one() {
            eprintln!("api-spawn: warmup spawn failed: {e}");
            std::process::exit(1);
        }
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        match one() {
            Ok(ns) => samples.push(ns),
            Err(e) => {
                eprintln!("api-spawn: spawn failed: {e}");
                std::process::exit(1);
            }
        }
    }
    let mut sorted = samples.clone();
    sorted.sort_unstable();
    let mean = samples.iter().sum::<u64>() as f64 / samples.len().max(1) as f64;
    let list = samples.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    println!(
        "{{\"n\":{},\"helper\":\"{}\",\"p50_ns\":{},\"p95_ns\":{},\"mean_ns\":{:.0},\"samples_ns\":[{}]}}",
        samples.len(),
        helper_desc().replace('\\', "\\\\").replace('"', "\\\""),
        pct(&sorted, 50.0),
        pct(&sorted, 95.0),
        mean,
        list
    );
}
