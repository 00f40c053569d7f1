//! Attach time of seccomp filters: the compiled default policy, a naive
//! linear equivalent, and a 1-instruction `RET ALLOW` floor; then Landlock's
//! share of a spawn (ruleset preparation in the init, `restrict_self` in the
//! last hop).
//!
//! Usage: `seccomp-attach [N]` (default 2000 samples per variant). Variants
//! are interleaved round-robin so that drift (frequency, other load) hits all
//! of them alike. The attach cost grows with the work the kernel does per
//! filter: copy and check, cBPF → eBPF conversion, JIT, and the action cache
//! (`seccomp_cache_prepare` emulates the filter for every syscall number).

mod attach;
mod landlock;
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
    landlock_report(n)
}

fn landlock_report(n: usize) -> std::io::Result<()> {
    let rules = landlock::default_rules();
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let prepared = stockade::landlock::PreparedRuleset::prepare(
        &rules,
        stockade::landlock::IfUnsupported::Fail,
    )
    .map_err(std::io::Error::other)?;
    let (mut prep, mut restrict) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for round in 0..WARMUP + n {
        let p = landlock::prepare_ns(&rules)?;
        let r = landlock::restrict_ns(&prepared, fds[0], fds[1])?;
        if round >= WARMUP {
            prep.push(p);
            restrict.push(r);
        }
    }
    let paths = rules.paths().count();
    println!(
        "\nlandlock, ABI {}, default rule set ({paths} paths), N={n}",
        prepared.abi()
    );
    println!("{:<35} {:>9} {:>9}", "step", "p50 µs", "p90 µs");
    for (name, mut s) in [
        ("prepare (init, before fork)", prep),
        ("restrict_self (last hop)", restrict),
    ] {
        s.sort_unstable();
        println!("{name:<35} {:>9.1} {:>9.1}", pct(&s, 50.0), pct(&s, 90.0));
    }
    Ok(())
}
