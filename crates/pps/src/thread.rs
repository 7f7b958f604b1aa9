//! The dedicated PPS thread: blocks in the source's fetch with a timeout, hands
//! every edge to a callback, and survives a vanished device by reopening it.

use crate::source::{PpsEdge, PpsError, PpsSource};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the PPS thread reports.
#[derive(Debug)]
pub enum PpsEvent {
    /// A pulse of the selected edge.
    Edge(PpsEdge),
    /// No pulse within the fetch timeout (liveness: the discipline ticks on it).
    Silent,
    /// The source failed; the thread waits and reopens it.
    Error(PpsError),
}

/// How the PPS thread runs.
#[derive(Clone, Debug)]
pub struct PpsThreadOptions {
    /// Longest single wait for an edge; also bounds how late a stop is noticed.
    pub fetch_timeout: Duration,
    /// First wait before reopening a failed source; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest wait between reopen attempts.
    pub max_backoff: Duration,
    /// SCHED_FIFO priority to request (best effort; needs CAP_SYS_NICE), so a
    /// busy box never delays the pulse's user-space half.
    pub realtime_priority: Option<i32>,
}

impl Default for PpsThreadOptions {
    fn default() -> Self {
        Self {
            fetch_timeout: Duration::from_millis(1500),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            realtime_priority: None,
        }
    }
}

/// A running PPS thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub struct PpsThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

fn try_realtime_priority(priority: i32) -> bool {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: sched_setscheduler on the calling thread (pid 0) with a valid,
    // initialised sched_param; it only changes this thread's scheduling.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
}

/// Sleeps up to `total`, waking early when `stop` is set.
fn sleep_unless_stopped(stop: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(50);
    let mut left = total;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let d = left.min(step);
        std::thread::sleep(d);
        left = left.saturating_sub(d);
    }
}

impl PpsThread {
    /// Starts a thread named `pps` that opens a source with `open`, fetches from
    /// it until `on_event` breaks or the thread is stopped, and reopens it after
    /// an error (waiting with exponential backoff). Logs one line per change
    /// of the source's health, never one per pulse.
    pub fn spawn<S, O, F>(
        mut open: O,
        options: PpsThreadOptions,
        mut on_event: F,
    ) -> std::io::Result<Self>
    where
        S: PpsSource + 'static,
        O: FnMut() -> Result<S, PpsError> + Send + 'static,
        F: FnMut(PpsEvent) -> ControlFlow<()> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new().name("pps".into()).spawn(move || {
            if let Some(p) = options.realtime_priority {
                if try_realtime_priority(p) {
                    tracing::info!(priority = p, "PPS thread runs SCHED_FIFO");
                } else {
                    // Refused under the packaged unit (RestrictRealtime=yes) by design:
                    // the kernel stamps the pulse in its interrupt handler, so this
                    // thread's latency never touches accuracy.
                    tracing::info!(priority = p, "PPS thread at normal priority (real-time scheduling not permitted); pulse timestamps are taken by the kernel");
                }
            }
            let mut backoff = options.min_backoff;
            let mut silent_logged = false;
            'reopen: while !flag.load(Ordering::Relaxed) {
                let mut source = match open() {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, retry_s = backoff.as_secs_f64(), "PPS source unavailable");
                        if on_event(PpsEvent::Error(e)).is_break() {
                            return;
                        }
                        sleep_unless_stopped(&flag, backoff);
                        backoff = (backoff * 2).min(options.max_backoff);
                        continue;
                    }
                };
                tracing::info!(source = %source.describe(), "PPS source open");
                while !flag.load(Ordering::Relaxed) {
                    let event = match source.fetch(options.fetch_timeout) {
                        Ok(Some(edge)) => {
                            if silent_logged {
                                tracing::info!(source = %source.describe(), "PPS pulses resumed");
                                silent_logged = false;
                            }
                            backoff = options.min_backoff;
                            PpsEvent::Edge(edge)
                        }
                        Ok(None) => {
                            if !silent_logged {
                                tracing::warn!(source = %source.describe(), timeout_ms = u64::try_from(options.fetch_timeout.as_millis()).unwrap_or(u64::MAX), "no PPS pulse");
                                silent_logged = true;
                            }
                            PpsEvent::Silent
                        }
                        Err(e) => {
                            tracing::error!(error = %e, retry_s = backoff.as_secs_f64(), "PPS source failed; reopening");
                            if on_event(PpsEvent::Error(e)).is_break() {
                                return;
                            }
                            sleep_unless_stopped(&flag, backoff);
                            backoff = (backoff * 2).min(options.max_backoff);
                            continue 'reopen;
                        }
                    };
                    if on_event(event).is_break() {
                        return;
                    }
                }
            }
        })?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }

    /// Asks the thread to stop and waits for it (at most one fetch timeout).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for PpsThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skytime_timebase::{MonoNanos, UnixNanos};
    use std::sync::Mutex;
    use std::sync::mpsc;

    /// One scripted fetch result: an edge's sequence number, silence, or a failure.
    type Step = Result<Option<u32>, ()>;

    /// A scripted source: yields the next item of its script per fetch.
    struct Scripted {
        script: Arc<Mutex<Vec<Step>>>,
    }
    impl PpsSource for Scripted {
        fn fetch(&mut self, _timeout: Duration) -> Result<Option<PpsEdge>, PpsError> {
            let next = self.script.lock().expect("lock").pop();
            match next {
                Some(Ok(Some(seq))) => Ok(Some(PpsEdge {
                    sequence: seq,
                    timestamp: UnixNanos::from_secs_nanos(i64::from(seq), 0),
                    received: MonoNanos(0),
                    uncertainty_ns: 0,
                })),
                Some(Ok(None)) | None => {
                    std::thread::sleep(Duration::from_millis(1));
                    Ok(None)
                }
                Some(Err(())) => Err(PpsError::Disconnected {
                    path: "scripted".into(),
                    reason: "unplugged".into(),
                }),
            }
        }
        fn describe(&self) -> String {
            "scripted".into()
        }
    }

    #[test]
    fn delivers_edges_and_reopens_after_an_error() {
        // Popped from the end: edge 1, silence, error, (reopen) edge 2, edge 3.
        let script = Arc::new(Mutex::new(vec![
            Ok(Some(3)),
            Ok(Some(2)),
            Err(()),
            Ok(None),
            Ok(Some(1)),
        ]));
        let opens = Arc::new(Mutex::new(0));
        let (tx, rx) = mpsc::channel();
        let s = Arc::clone(&script);
        let o = Arc::clone(&opens);
        let options = PpsThreadOptions {
            min_backoff: Duration::from_millis(1),
            ..Default::default()
        };
        let thread = PpsThread::spawn(
            move || {
                *o.lock().expect("lock") += 1;
                Ok(Scripted {
                    script: Arc::clone(&s),
                })
            },
            options,
            move |ev| {
                let tag = match ev {
                    PpsEvent::Edge(e) => format!("edge{}", e.sequence),
                    PpsEvent::Silent => "silent".into(),
                    PpsEvent::Error(_) => "error".into(),
                };
                let done = tag == "edge3";
                let _ = tx.send(tag);
                if done {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
        .expect("spawn");
        let mut seen = Vec::new();
        while let Ok(tag) = rx.recv_timeout(Duration::from_secs(5)) {
            seen.push(tag);
        }
        thread.stop();
        assert_eq!(seen, ["edge1", "silent", "error", "edge2", "edge3"]);
        assert_eq!(*opens.lock().expect("lock"), 2);
    }

    #[test]
    fn stops_promptly_while_the_source_is_silent() {
        let script = Arc::new(Mutex::new(Vec::new()));
        let thread = PpsThread::spawn(
            move || {
                Ok(Scripted {
                    script: Arc::clone(&script),
                })
            },
            PpsThreadOptions::default(),
            |_| ControlFlow::Continue(()),
        )
        .expect("spawn");
        let t0 = std::time::Instant::now();
        thread.stop();
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
}
