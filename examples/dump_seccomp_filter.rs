//! Write stockade's compiled seccomp program to stdout as raw `struct
//! sock_filter` records (8 bytes each), the format `bwrap --seccomp FD`
//! reads. The benchmarks use it to run bubblewrap with exactly our filter.
//!
//! ```sh
//! cargo run --example dump_seccomp_filter -- [--allow NAME]... [--deny NAME]... > filter.bpf
//! bwrap --seccomp 3 3<filter.bpf ... -- /bin/true
//! ```

use std::io::Write;

fn main() {
    let mut policy = stockade::Syscalls::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(name) = args.next() else {
            die(&format!("{flag} needs a syscall name"));
        };
        policy = match flag.as_str() {
            "--allow" => policy.allow([name]),
            "--deny" => policy.deny([name]),
            _ => die(&format!(
                "unknown option {flag} (use --allow NAME or --deny NAME)"
            )),
        };
    }
    let prog = stockade::seccomp::compile(&policy).unwrap_or_else(|e| die(&e.to_string()));
    let mut bytes = Vec::with_capacity(prog.len() * 8);
    for ins in &prog {
        bytes.extend_from_slice(&ins.code.to_ne_bytes());
        bytes.push(ins.jt);
        bytes.push(ins.jf);
        bytes.extend_from_slice(&ins.k.to_ne_bytes());
    }
    if let Err(e) = std::io::stdout().write_all(&bytes) {
        die(&format!("writing the program: {e}"));
    }
    eprintln!("{} instructions", prog.len());
}

fn die(msg: &str) -> ! {
    eprintln!("dump_seccomp_filter: {msg}");
    std::process::exit(2)
}
