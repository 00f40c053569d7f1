//! One lazily started worker thread for housekeeping that must not delay the
//! caller: reaping a sandbox's owner during namespace teardown, starting the
//! next pre-warmed helper.

use std::sync::mpsc::{channel, SendError, Sender};
use std::sync::{Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

/// Run `job` on the worker thread; inline if no thread can be had.
pub(crate) fn run(job: Job) {
    static WORKER: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    let tx = WORKER.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        // If the thread cannot start, `rx` is dropped and sends below fail.
        let _ = std::thread::Builder::new()
            .name("stockade-bg".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            });
        Mutex::new(tx)
    });
    let sent = tx.lock().unwrap_or_else(|p| p.into_inner()).send(job);
    if let Err(SendError(job)) = sent {
        job();
    }
}
