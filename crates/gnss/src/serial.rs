//! The thin serial shell: opens the device, stamps each chunk as the read
//! returns, auto-bauds, and reopens with back-off when the device vanishes or
//! goes quiet. All parsing is in [`EpochAssembler`].

use crate::assembler::EpochAssembler;
use crate::config::{AUTOBAUD_RATES, Baud, GnssConfig};
use crate::configure::{Outcome, ReceiverInfo};
use crate::epoch::Epoch;
use crate::reports::ReceiverReport;
use crate::serial_configure::configure_receiver;
use crate::stats::ParserStats;
use serialport::SerialPort;
use skytime_timebase::{MonoNanos, TimeSource};
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Why the reader could not start.
#[derive(Debug, thiserror::Error)]
pub enum GnssError {
    /// The device is missing, busy or not a serial port.
    #[error("cannot open GNSS device {}: {source}", path.display())]
    Open {
        /// The configured device.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: serialport::Error,
    },
}

/// What the reader reports to the daemon.
#[derive(Clone, Debug, PartialEq)]
pub enum GnssEvent {
    /// One receiver output cycle, emitted at the end of its burst.
    Epoch(Epoch),
    /// Checksummed NMEA appeared at this rate (after auto-baud, or on a fixed rate).
    BaudLocked {
        /// The line's rate.
        baud: u32,
    },
    /// A whole window gave bytes but no good sentence: wrong baud rate or a noisy line.
    Garbage {
        /// Rate in use.
        baud: u32,
        /// Garbage bytes in that window.
        garbage_bytes: u64,
    },
    /// Auto-baud tried every rate without finding NMEA.
    NoNmeaAtAnyBaud,
    /// No byte for `silence_timeout_ms`; the device is being reopened.
    Silent {
        /// How long it has been quiet.
        silent_ms: u64,
    },
    /// The device failed (unplugged, I/O error); it is being reopened with back-off.
    DeviceLost {
        /// The OS error.
        error: String,
    },
    /// The device is open again after a loss or silence.
    DeviceReopened,
    /// A u-blox timing report (TIM-TP, survey-in) or the receiver's identity.
    Report(ReceiverReport),
    /// `[gnss.receiver]` configuration ran (once the line first locks, and
    /// again after the device is reopened): how it ended.
    ReceiverConfigured(Outcome),
}

/// Counters readable from other threads (metrics, status page).
#[derive(Debug, Default)]
pub struct GnssCounters {
    /// Bytes read from the device.
    pub bytes: AtomicU64,
    /// Sentences accepted.
    pub sentences: AtomicU64,
    /// Sentences dropped for a bad checksum.
    pub checksum_errors: AtomicU64,
    /// Bytes that were no sentence or frame.
    pub garbage_bytes: AtomicU64,
    /// Epochs emitted.
    pub epochs: AtomicU64,
    /// Epochs with a real fix.
    pub valid_epochs: AtomicU64,
    /// Times the device was reopened.
    pub reopens: AtomicU64,
    /// Rate the line is locked at (0: none yet).
    pub baud: AtomicU32,
    /// Whether the device is open now.
    pub connected: AtomicBool,
    /// What the receiver said it is (MON-VER, `$PMTK705`, start-up TXT), once it has.
    pub receiver: std::sync::Mutex<Option<ReceiverInfo>>,
}

impl GnssCounters {
    /// The receiver's family and firmware, once identified.
    pub fn receiver(&self) -> Option<ReceiverInfo> {
        self.receiver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn note_report(&self, report: &ReceiverReport) {
        if let ReceiverReport::Identified(info) = report {
            *self
                .receiver
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(info.clone());
        }
    }

    fn update(&self, s: &ParserStats) {
        self.bytes.store(s.bytes, Ordering::Relaxed);
        self.sentences.store(s.sentences, Ordering::Relaxed);
        self.checksum_errors
            .store(s.checksum_errors, Ordering::Relaxed);
        self.garbage_bytes.store(s.garbage_bytes, Ordering::Relaxed);
        self.epochs.store(s.epochs, Ordering::Relaxed);
        self.valid_epochs.store(s.valid_epochs, Ordering::Relaxed);
    }
}

/// Asks a running [`SerialReader::run`] to return (checked several times per
/// `idle_gap_ms`, and during back-off sleeps).
#[derive(Clone, Debug, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// Makes `run` return soon.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    fn stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Where the line stands on speed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Speed {
    /// Auto-baud is trying `AUTOBAUD_RATES[index]`.
    Probing { index: usize, tried: usize },
    /// Sentences are arriving at this rate.
    Locked(u32),
    /// A fixed rate that has not shown a sentence yet.
    Unconfirmed(u32),
}

/// Reads a receiver on a serial device (or a pseudo-terminal under `--simulate`).
pub struct SerialReader {
    config: GnssConfig,
    clock: Arc<dyn TimeSource>,
    port: Option<Box<dyn SerialPort>>,
    counters: Arc<GnssCounters>,
    stop: StopHandle,
    speed: Speed,
    /// `[gnss.receiver]` has run on this device since it was (re)opened.
    receiver_configured: bool,
}

impl std::fmt::Debug for SerialReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialReader")
            .field("device", &self.config.device)
            .field("speed", &self.speed)
            .field("open", &self.port.is_some())
            .finish()
    }
}

/// Per-window evidence for auto-baud and the wrong-baud warning.
struct Window {
    start: MonoNanos,
    sentences: u64,
    garbage: u64,
    bytes: u64,
}

impl SerialReader {
    /// Opens the device now so a missing/unreadable device fails at start-up
    /// with one clear error.
    pub fn open(config: &GnssConfig, clock: Arc<dyn TimeSource>) -> Result<Self, GnssError> {
        let speed = match config.baud {
            Baud::Fixed(b) => Speed::Unconfirmed(b),
            Baud::Auto => Speed::Probing {
                index: AUTOBAUD_RATES.iter().position(|&b| b == 9600).unwrap_or(0),
                tried: 0,
            },
        };
        let mut reader = Self {
            config: config.clone(),
            clock,
            port: None,
            counters: Arc::new(GnssCounters::default()),
            stop: StopHandle::default(),
            speed,
            receiver_configured: false,
        };
        let port = reader.open_port().map_err(|source| GnssError::Open {
            path: config.device.clone(),
            source,
        })?;
        reader.port = Some(port);
        reader.counters.connected.store(true, Ordering::Relaxed);
        Ok(reader)
    }

    /// Atomics readable from other threads (metrics).
    pub fn counters(&self) -> Arc<GnssCounters> {
        Arc::clone(&self.counters)
    }

    /// A handle that makes [`SerialReader::run`] return.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    fn current_baud(&self) -> u32 {
        match self.speed {
            Speed::Probing { index, .. } => AUTOBAUD_RATES[index % AUTOBAUD_RATES.len()],
            Speed::Locked(b) | Speed::Unconfirmed(b) => b,
        }
    }

    fn read_timeout(&self) -> Duration {
        // A quarter of the idle gap: a burst's end is seen within 1.25 gaps.
        Duration::from_millis(u64::from(self.config.idle_gap_ms / 4).max(2))
    }

    fn open_port(&self) -> serialport::Result<Box<dyn SerialPort>> {
        let path = self.config.device.to_string_lossy();
        serialport::new(path, self.current_baud())
            .timeout(self.read_timeout())
            .open()
    }

    /// Blocking loop for a dedicated thread: reads, auto-bauds, reopens with
    /// back-off on loss/silence, calls `sink` for each event; returns when `sink`
    /// returns `ControlFlow::Break` or the [`StopHandle`] is used.
    pub fn run(mut self, mut sink: impl FnMut(GnssEvent) -> ControlFlow<()>) {
        let mut assembler = EpochAssembler::new(&self.config.parser());
        let mut epochs = Vec::new();
        let mut buf = [0u8; 4096];
        let silence_ns = i64::from(self.config.silence_timeout_ms) * 1_000_000;
        let window_ns = i64::from(self.config.autobaud_window_ms) * 1_000_000;
        let mut last_rx = self.clock.monotonic();
        let mut window = self.new_window(last_rx, assembler.stats());
        let mut silent = false;
        let mut garbage_warned = false;
        let mut backoff_ms = 0u32;
        tracing::info!(device = %self.config.device.display(), baud = %self.config.baud, "GNSS reader started");
        macro_rules! emit {
            ($ev:expr) => {
                if sink($ev).is_break() {
                    return;
                }
            };
        }

        while !self.stop.stopped() {
            let Some(port) = self.port.as_mut() else {
                // Lost or silent: reopen with back-off.
                backoff_ms = if backoff_ms == 0 {
                    250
                } else {
                    (backoff_ms * 2).min(self.config.reopen_backoff_max_ms)
                };
                if !self.sleep(Duration::from_millis(u64::from(backoff_ms))) {
                    return;
                }
                match self.open_port() {
                    Ok(p) => {
                        self.port = Some(p);
                        self.counters.connected.store(true, Ordering::Relaxed);
                        self.counters.reopens.fetch_add(1, Ordering::Relaxed);
                        assembler.reset_line();
                        last_rx = self.clock.monotonic();
                        window = self.new_window(last_rx, assembler.stats());
                        // A replugged receiver has lost its RAM configuration.
                        self.receiver_configured = false;
                        tracing::info!(device = %self.config.device.display(), "GNSS device reopened");
                        emit!(GnssEvent::DeviceReopened);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, retry_ms = backoff_ms, "GNSS device still unavailable");
                    }
                }
                continue;
            };
            match port.read(&mut buf) {
                Ok(0) => {
                    // A tty read returns 0 on hangup: the device is gone.
                    let err = io::Error::new(io::ErrorKind::UnexpectedEof, "end of file (hangup)");
                    if let Some(ev) = self.lost(&mut assembler, &mut epochs, &err) {
                        for e in epochs.drain(..) {
                            emit!(GnssEvent::Epoch(e));
                        }
                        emit!(ev);
                    }
                    continue;
                }
                Ok(n) => {
                    let arrival = self.clock.arrival();
                    assembler.push(&buf[..n], arrival, &mut epochs);
                    last_rx = arrival.monotonic;
                    backoff_ms = 0;
                    if silent {
                        silent = false;
                        tracing::info!("GNSS data resumed");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    let now = self.clock.arrival();
                    assembler.flush_idle(now, &mut epochs);
                    let quiet_ns = now.monotonic.nanos_since(last_rx);
                    if quiet_ns >= silence_ns {
                        if !silent {
                            silent = true;
                            tracing::warn!(
                                device = %self.config.device.display(),
                                silent_ms = quiet_ns / 1_000_000,
                                "GNSS line silent; reopening the device with back-off"
                            );
                        }
                        self.port = None;
                        self.counters.connected.store(false, Ordering::Relaxed);
                        assembler.finish(&mut epochs);
                        for e in epochs.drain(..) {
                            emit!(GnssEvent::Epoch(e));
                        }
                        emit!(GnssEvent::Silent {
                            silent_ms: u64::try_from(quiet_ns / 1_000_000).unwrap_or(0)
                        });
                        continue;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if let Some(ev) = self.lost(&mut assembler, &mut epochs, &e) {
                        for e in epochs.drain(..) {
                            emit!(GnssEvent::Epoch(e));
                        }
                        emit!(ev);
                    }
                    continue;
                }
            }
            self.counters.update(assembler.stats());
            for e in epochs.drain(..) {
                emit!(GnssEvent::Epoch(e));
            }
            for r in assembler.take_reports() {
                self.counters.note_report(&r);
                emit!(GnssEvent::Report(r));
            }

            // Speed: lock as soon as sentences flow; judge garbage per window.
            let stats = assembler.stats();
            let now = self.clock.monotonic();
            let good = stats.sentences - window.sentences;
            let window_over = now.nanos_since(window.start) >= window_ns;
            match self.speed {
                Speed::Probing { .. } | Speed::Unconfirmed(_) if good >= 2 => {
                    let baud = self.current_baud();
                    self.speed = Speed::Locked(baud);
                    self.counters.baud.store(baud, Ordering::Relaxed);
                    garbage_warned = false;
                    tracing::info!(baud, "GNSS line locked: checksummed NMEA arriving");
                    window = self.new_window(now, stats);
                    emit!(GnssEvent::BaudLocked { baud });
                    if self.config.receiver.enabled() && !self.receiver_configured {
                        self.receiver_configured = true;
                        let Some(port) = self.port.as_mut() else {
                            continue;
                        };
                        let stop = self.stop.clone();
                        let (outcome, info) = configure_receiver(
                            port.as_mut(),
                            &self.config.receiver,
                            baud,
                            &*self.clock,
                            &|| stop.stopped(),
                        );
                        match &outcome {
                            Outcome::Configured { baud } | Outcome::UsedAsIs { baud, .. } => {
                                self.speed = Speed::Locked(*baud);
                                self.counters.baud.store(*baud, Ordering::Relaxed);
                            }
                            Outcome::Unreachable { .. } => {
                                self.speed = match self.config.baud {
                                    Baud::Auto => Speed::Probing { index: 0, tried: 0 },
                                    Baud::Fixed(b) => Speed::Unconfirmed(b),
                                };
                                let rate = self.current_baud();
                                if let Some(p) = self.port.as_mut() {
                                    let _ = p.set_baud_rate(rate);
                                }
                                self.counters.baud.store(0, Ordering::Relaxed);
                            }
                        }
                        assembler.reset_line();
                        let now = self.clock.monotonic();
                        last_rx = now;
                        window = self.new_window(now, assembler.stats());
                        if let Some(info) = info {
                            let report = ReceiverReport::Identified(info);
                            self.counters.note_report(&report);
                            emit!(GnssEvent::Report(report));
                        }
                        emit!(GnssEvent::ReceiverConfigured(outcome));
                    }
                }
                Speed::Probing { index, tried } if window_over => {
                    let tried = tried + 1;
                    if tried % AUTOBAUD_RATES.len() == 0 {
                        tracing::warn!(
                            device = %self.config.device.display(),
                            rates = ?AUTOBAUD_RATES,
                            "no NMEA at any baud rate: check the receiver, its wiring and its output protocol"
                        );
                        emit!(GnssEvent::NoNmeaAtAnyBaud);
                    }
                    self.speed = Speed::Probing {
                        index: (index + 1) % AUTOBAUD_RATES.len(),
                        tried,
                    };
                    let baud = self.current_baud();
                    tracing::debug!(baud, "auto-baud: trying next rate");
                    if let Some(p) = self.port.as_mut()
                        && let Err(e) = p.set_baud_rate(baud)
                    {
                        tracing::debug!(error = %e, "cannot change baud rate");
                    }
                    assembler.reset_line();
                    window = self.new_window(now, assembler.stats());
                }
                Speed::Locked(baud) | Speed::Unconfirmed(baud) if window_over => {
                    let garbage = stats.garbage_bytes - window.garbage;
                    let bytes = stats.bytes - window.bytes;
                    if good == 0 && bytes > 0 && garbage > 0 {
                        if !garbage_warned {
                            garbage_warned = true;
                            tracing::warn!(
                                device = %self.config.device.display(),
                                baud,
                                garbage_bytes = garbage,
                                window_ms = self.config.autobaud_window_ms,
                                "GNSS line gives only garbage: wrong baud rate or a noisy line; no time taken from it"
                            );
                            emit!(GnssEvent::Garbage {
                                baud,
                                garbage_bytes: garbage
                            });
                        }
                        if self.config.baud == Baud::Auto {
                            self.speed = Speed::Probing {
                                index: AUTOBAUD_RATES.iter().position(|&b| b == baud).unwrap_or(0),
                                tried: 0,
                            };
                            self.counters.baud.store(0, Ordering::Relaxed);
                        }
                    } else if good > 0 && garbage_warned {
                        garbage_warned = false;
                        tracing::info!(baud, "GNSS line clean again");
                    }
                    window = self.new_window(now, assembler.stats());
                }
                _ => {}
            }
        }
    }

    fn new_window(&self, now: MonoNanos, s: &ParserStats) -> Window {
        Window {
            start: now,
            sentences: s.sentences,
            garbage: s.garbage_bytes,
            bytes: s.bytes,
        }
    }

    /// The device failed: log once, close it, flush what was open.
    fn lost(
        &mut self,
        assembler: &mut EpochAssembler,
        epochs: &mut Vec<Epoch>,
        err: &io::Error,
    ) -> Option<GnssEvent> {
        self.port = None;
        self.counters.connected.store(false, Ordering::Relaxed);
        assembler.finish(epochs);
        tracing::warn!(
            device = %self.config.device.display(),
            error = %err,
            "GNSS device lost; reopening with back-off"
        );
        Some(GnssEvent::DeviceLost {
            error: err.to_string(),
        })
    }

    /// Sleeps in short slices so a stop request is honoured; false if stopped.
    fn sleep(&self, total: Duration) -> bool {
        let slice = Duration::from_millis(50);
        let mut left = total;
        while !left.is_zero() {
            if self.stop.stopped() {
                return false;
            }
            let d = left.min(slice);
            std::thread::sleep(d);
            left -= d;
        }
        !self.stop.stopped()
    }
}
