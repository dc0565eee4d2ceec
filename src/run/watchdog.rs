//! A run's time budget: a thread that waits for the job's deadline and then interrupts the
//! warehouse, so a load or feature query that outlasts the budget stops too (rule
//! expressions stop on their own through the engine's progress check).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::rules::engine::Deadline;

pub(super) struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    warehouse: Arc<Mutex<Option<Arc<duckdb::InterruptHandle>>>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Watches `deadline`, which must have started.
    pub(super) fn start(deadline: Arc<Deadline>) -> Watchdog {
        let (stop, stopped) = mpsc::channel::<()>();
        let warehouse: Arc<Mutex<Option<Arc<duckdb::InterruptHandle>>>> = Arc::default();
        let watched = warehouse.clone();
        let thread = std::thread::spawn(move || {
            let wait = deadline.remaining().unwrap_or_default();
            if let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                tracing::warn!("The job's time budget ran out; the warehouse is interrupted.");
                if let Some(handle) = watched.lock().ok().and_then(|h| h.clone()) {
                    handle.interrupt();
                }
            }
        });
        Watchdog { stop: Some(stop), warehouse, thread: Some(thread) }
    }

    /// The warehouse to interrupt at the deadline (`None` once it is gone).
    pub(super) fn watch(&self, handle: Option<Arc<duckdb::InterruptHandle>>) {
        if let Ok(mut slot) = self.warehouse.lock() {
            *slot = handle;
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
