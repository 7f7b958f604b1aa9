//! The discipline thread: the one owner of the refclock core.
//!
//! Serial and PPS threads send what they read into one bounded channel; this
//! thread feeds the refclock, ticks it, and publishes its status to everything
//! else (the NTP workers through their `SystemState`, the operator surfaces
//! through [`DaemonState`]). It is the only writer of both.

use crate::state::{DaemonState, HistoryPoint};
use arc_swap::ArcSwap;
use skytime_gnss::{Epoch, ReceiverReport};
use skytime_ntp::SystemState;
use skytime_pps::PpsEdge;
use skytime_refclock::{Clock, Refclock, SensorReading, Status};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the reader threads hand to the discipline.
#[derive(Debug)]
pub enum Input {
    /// A pulse.
    Pps(PpsEdge),
    /// One second of receiver output.
    Epoch(Box<Epoch>),
    /// One temperature sensor reading (stamped when the discipline takes it).
    Temperature(SensorReading),
    /// A receiver timing report (TIM-TP qErr, survey-in), stamped on arrival.
    Report(ReceiverReport),
}

/// How often the refclock is ticked when nothing arrives.
const TICK: Duration = Duration::from_millis(100);
/// How often the learned frequency is written to the drift file.
const DRIFT_SAVE_INTERVAL: Duration = Duration::from_secs(3600);
/// Room in the input channel: many seconds of input, so only a stalled
/// discipline ever fills it.
pub const INPUT_CAPACITY: usize = 64;

/// The sending side, for reader threads. Never blocks: a stalled discipline
/// costs dropped inputs (counted and logged), never a stalled PPS thread.
#[derive(Clone)]
pub struct InputSender {
    tx: SyncSender<Input>,
    dropped: Arc<AtomicU64>,
}

impl InputSender {
    /// Offers an input; false when the discipline has gone away.
    pub fn send(&self, input: Input) -> bool {
        match self.tx.try_send(input) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::error!("discipline thread is not keeping up; dropping inputs");
                }
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

/// A channel for discipline inputs.
pub fn channel() -> (InputSender, Receiver<Input>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(INPUT_CAPACITY);
    (
        InputSender {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        },
        rx,
    )
}

/// Maps the discipline's status to what the NTP server serves. The honesty
/// rule lives in `Status::serves_synchronised`; this only carries it over.
pub fn system_state(status: &Status) -> SystemState {
    SystemState {
        synchronised: status.serves_synchronised(),
        leap: status.leap,
        stratum: status.stratum,
        reference_id: status.reference_id.0,
        root_delay_ns: 0.0,
        root_dispersion_ns: status.root_dispersion_ns,
        dispersion_rate_ns_per_s: status.dispersion_rate_ns_per_s,
        as_of: status.as_of,
        reference_time: status.reference_time.unwrap_or(status.as_of),
    }
}

/// Everything the discipline thread needs.
pub struct Discipline<C: Clock + 'static> {
    /// The core.
    pub refclock: Refclock<C>,
    /// Inputs from the reader threads.
    pub inputs: Receiver<Input>,
    /// Where the NTP workers read what to serve.
    pub ntp_state: Arc<ArcSwap<SystemState>>,
    /// Where the operator surfaces read status.
    pub daemon: Arc<DaemonState>,
    /// Drift file, if kept.
    pub drift_file: Option<PathBuf>,
    /// Set to stop the thread.
    pub stop: Arc<AtomicBool>,
    /// Called about once a second while the thread is healthy (systemd watchdog).
    pub heartbeat: Box<dyn FnMut() + Send>,
}

impl<C: Clock + 'static> Discipline<C> {
    /// Runs the thread until `stop` is set; saves the drift file on the way out.
    pub fn spawn(self) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("discipline".into())
            .spawn(move || self.run())
    }

    fn run(mut self) {
        raise_priority();
        let mut last_tick = Instant::now();
        let mut last_heartbeat = Instant::now();
        let mut last_drift_save = Instant::now();
        let mut last_history_sec = i64::MIN;
        self.publish(&mut last_history_sec);
        while !self.stop.load(Ordering::Relaxed) {
            match self.inputs.recv_timeout(TICK) {
                Ok(Input::Pps(edge)) => self.refclock.on_pps(&edge),
                Ok(Input::Epoch(epoch)) => self.refclock.on_epoch(&epoch),
                Ok(Input::Report(report)) => self.refclock.on_receiver_report(&report),
                Ok(Input::Temperature(reading)) => {
                    let at = self.refclock.clock().monotonic();
                    self.refclock.on_temperature(at, &reading);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                let now = self.refclock.clock().arrival();
                self.refclock.on_tick(now);
            }
            self.publish(&mut last_history_sec);
            if last_heartbeat.elapsed() >= Duration::from_secs(1) {
                last_heartbeat = Instant::now();
                (self.heartbeat)();
            }
            if last_drift_save.elapsed() >= DRIFT_SAVE_INTERVAL {
                last_drift_save = Instant::now();
                self.save_drift();
            }
        }
        self.save_drift();
    }

    fn publish(&mut self, last_history_sec: &mut i64) {
        let status = self.refclock.status();
        self.ntp_state.store(Arc::new(system_state(&status)));
        let sec = status.as_of.secs();
        if sec != *last_history_sec {
            *last_history_sec = sec;
            self.daemon.record(HistoryPoint {
                at: status.as_of,
                offset_ns: status.offset_ns,
                jitter_ns: status.jitter_ns,
                root_dispersion_ns: status.root_dispersion_ns,
                temperature_c: status.thermal.as_ref().and_then(|t| t.reading_c),
                holdover: status.holdover.is_some(),
            });
        }
        self.daemon.status.store(Arc::new(status));
    }

    fn save_drift(&self) {
        let Some(path) = &self.drift_file else {
            return;
        };
        // The temperature model and wander statistics, beside the drift file.
        let thermal = skytime_refclock::thermal::persist::path_beside(path);
        match skytime_refclock::thermal::persist::save(&thermal, &self.refclock.thermal_record()) {
            Ok(()) => tracing::debug!(path = %thermal.display(), "thermal file saved"),
            Err(e) => {
                tracing::warn!(path = %thermal.display(), error = %e, "cannot save the thermal file")
            }
        }
        let Some(record) = self.refclock.drift_record() else {
            return;
        };
        match skytime_refclock::drift::save(path, &record) {
            Ok(()) => tracing::debug!(path = %path.display(), "drift file saved"),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot save the drift file")
            }
        }
    }
}

/// Best effort: the discipline runs SCHED_FIFO when allowed (CAP_SYS_NICE),
/// so a flood of NTP requests can never delay a pulse's processing.
fn raise_priority() {
    let param = libc::sched_param { sched_priority: 40 };
    // SAFETY: sched_setscheduler on the calling thread (pid 0) with a valid,
    // initialised sched_param; it only changes this thread's scheduling.
    let ok = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } == 0;
    if ok {
        tracing::info!(priority = 40, "discipline thread runs SCHED_FIFO");
    } else {
        tracing::info!("discipline thread at normal priority (real-time scheduling not permitted)");
    }
}
