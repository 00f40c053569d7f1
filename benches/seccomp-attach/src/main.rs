//! Attach time of seccomp filters: the compiled default policy, a naive
//! linear equivalent, and a 1-instruction `RET ALLOW` floor.
//!
//! Usage: `seccomp-attach [N]` (default 2000 samples per variant). Variants
//! are interleaved round-robin so that drift (frequency, other load) hits all
//! of them alike. The attach cost grows with the work the kernel does per
//! filter: copy and check, cBPF → eBPF conversion, JIT, and the action cache
//! (`seccomp_cache_prepare` emulates the filter for every syscall number).

mod attach;
mod linear;

use stockade::seccomp::{compile, sock_filter, BpfProgram, Policy};

const WARMUP: usize = 50;

fn pct(sorted: &[u64], p: f64) -> f64 {
    // Nearest rank, in µs.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1] as f64 / 1000.0
}

fn main() -> std::io::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("N is a number"))
        .unwrap_or(2000);
    let floor: BpfProgram = vec![sock_filter {
        code: 0x06,
        jt: 0,
        jf: 0,
        k: libc::SECCOMP_RET_ALLOW,
    }];
    let variants: [(&str, BpfProgram); 3] = [
        (
            "stockade compile(default)",
            compile(&Policy::default()).expect("default policy compiles"),
        ),
        ("naive linear", linear::build(&Policy::default())),
        ("floor RET ALLOW", floor),
    ];
    let sampler = attach::Sampler::new()?;
    let mut samples = vec![Vec::with_capacity(n); variants.len()];
    for round in 0..WARMUP + n {
        for (i, (_, prog)) in variants.iter().enumerate() {
            let ns = sampler.sample(prog)?;
            if round >= WARMUP {
                samples[i].push(ns);
            }
        }
    }
    println!("seccomp attach time, N={n} per variant (fresh child each, first filter)");
    println!(
        "{:<28} {:>6} {:>9} {:>9}",
        "variant", "insns", "p50 µs", "p90 µs"
    );
    for ((name, prog), mut s) in variants.iter().zip(samples) {
        s.sort_unstable();
        println!(
            "{name:<28} {:>6} {:>9.1} {:>9.1}",
            prog.len(),
            pct(&s, 50.0),
            pct(&s, 90.0)
        );
    }
    Ok(())
}
