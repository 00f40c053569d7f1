//! Spawn latency must not grow with the host's size: the host `posix_spawn`s
//! a small helper instead of forking itself (DESIGN.md, "Process creation").
//!
//! One test in its own file, so Cargo runs it in its own process with nothing
//! else competing for the CPU or adding to our RSS.

mod common;

use std::time::{Duration, Instant};

use common::require_root;
use stockade::Sandbox;

const RUNS: usize = 30;
const BIG: usize = 1 << 30;
const PAGE: usize = 4096;

fn median_spawn(sandbox: &Sandbox) -> Duration {
    // Warm-up: page cache, helper lookup.
    for _ in 0..3 {
        assert!(sandbox.status().expect("spawn").success());
    }
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let st = sandbox.status().expect("spawn");
            let d = t.elapsed();
            assert!(st.success(), "{st}");
            d
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kb * 1024
}

/// Touch 1 GiB so it is really resident.
fn grow() -> Vec<u8> {
    let mut big = vec![0u8; BIG];
    for i in (0..BIG).step_by(PAGE) {
        big[i] = 1;
    }
    std::hint::black_box(big)
}

#[test]
fn spawn_latency_is_independent_of_host_size() {
    require_root();
    let found = Sandbox::new().command(["/bin/true"]);
    // The fallback path: the test binary re-executed as the helper.
    let self_exec = Sandbox::new()
        .command(["/bin/true"])
        .helper(std::env::current_exe().unwrap());

    // Alternate small and large rounds and keep each condition's best median:
    // transient load from other processes inflates a round, never deflates it.
    let (mut small, mut large) = (Duration::MAX, Duration::MAX);
    let (mut small_self, mut large_self) = (Duration::MAX, Duration::MAX);
    let (mut small_rss, mut big_rss) = (0, 0);
    for _ in 0..3 {
        small_rss = rss_bytes();
        small = small.min(median_spawn(&found));
        small_self = small_self.min(median_spawn(&self_exec));
        let big = grow();
        big_rss = rss_bytes();
        assert!(
            big_rss >= small_rss + (BIG as u64) * 9 / 10,
            "positive control: RSS only went from {small_rss} to {big_rss} bytes"
        );
        large = large.min(median_spawn(&found));
        large_self = large_self.min(median_spawn(&self_exec));
        assert_eq!(
            big.iter().step_by(PAGE).filter(|&&b| b == 1).count(),
            BIG / PAGE
        );
        drop(big);
    }

    let ratio = large.as_secs_f64() / small.as_secs_f64();
    let ratio_self = large_self.as_secs_f64() / small_self.as_secs_f64();
    println!(
        "spawn latency, best median of {RUNS} `/bin/true` sandboxes (helper found next to the executable):\n  \
         host RSS {:>5} MiB: {small:?}\n  host RSS {:>5} MiB: {large:?}\n  ratio {ratio:.3}",
        small_rss >> 20,
        big_rss >> 20
    );
    println!(
        "spawn latency, best median of {RUNS}, self-exec fallback helper:\n  small host: {small_self:?}\n  \
         1 GiB host: {large_self:?}\n  ratio {ratio_self:.3}"
    );
    // The issue asks for "within 10%"; a 2-core CI box is too noisy to assert
    // that, but a fork of a 1 GiB host would be tens of times slower.
    assert!(
        ratio < 1.5,
        "spawn latency grew with host size: {small:?} -> {large:?} (x{ratio:.2})"
    );
    assert!(
        ratio_self < 1.5,
        "self-exec spawn latency grew with host size: {small_self:?} -> {large_self:?} (x{ratio_self:.2})"
    );
}
