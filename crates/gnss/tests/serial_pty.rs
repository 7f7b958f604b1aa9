//! The serial shell against a real pseudo-terminal, as the simulated hat
//! drives it: prompt epochs at the end of each burst, auto-baud, a device that
//! vanishes and comes back, a line of garbage, and a missing device.

use skytime_gnss::{Baud, GnssConfig, GnssError, GnssEvent, SerialReader};
use skytime_timebase::{HostClock, TimeSource};
use std::fs::File;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn nmea(body: &str) -> String {
    let sum = body.bytes().fold(0u8, |c, b| c ^ b);
    format!("${body}*{sum:02X}\r\n")
}

/// One second of receiver output, labelled now (so the live pivot accepts it).
fn burst(at: chrono::DateTime<chrono::Utc>) -> String {
    let hms = at.format("%H%M%S").to_string();
    let ddmmyy = at.format("%d%m%y").to_string();
    [
        nmea(&format!(
            "GPRMC,{hms}.000,A,4404.1306,N,12118.8515,W,0.03,225.97,{ddmmyy},,,A"
        )),
        nmea(&format!(
            "GPGGA,{hms}.000,4404.1306,N,12118.8515,W,1,08,0.98,1127.7,M,-19.6,M,,"
        )),
        nmea("GPGSA,A,3,20,16,09,03,07,10,23,19,,,,,1.64,0.98,1.31"),
    ]
    .concat()
}

fn utc_now() -> chrono::DateTime<chrono::Utc> {
    let t = HostClock.realtime();
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

/// A pty whose slave is reachable through a stable symlink, like a udev alias.
struct Pty {
    master: File,
    _slave: std::os::fd::OwnedFd,
}

fn new_pty(link: &Path) -> Pty {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave_path = nix::unistd::ttyname(&pty.slave).expect("ttyname of pty slave");
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(&slave_path, link).expect("symlink to pty");
    Pty {
        master: File::from(pty.master),
        _slave: pty.slave,
    }
}

fn temp_link(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("skytime-gnss-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("gps0")
}

fn config(device: &Path, baud: Baud) -> GnssConfig {
    GnssConfig {
        device: device.to_owned(),
        baud,
        silence_timeout_ms: 1500,
        reopen_backoff_max_ms: 200,
        autobaud_window_ms: 1100,
        ..GnssConfig::default()
    }
}

fn start(
    cfg: &GnssConfig,
) -> (
    Receiver<GnssEvent>,
    skytime_gnss::StopHandle,
    JoinHandle<()>,
) {
    let clock: Arc<dyn TimeSource> = Arc::new(HostClock);
    let reader = SerialReader::open(cfg, clock).expect("open pty");
    let stop = reader.stop_handle();
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        reader.run(|ev| {
            if tx.send(ev).is_err() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
    });
    (rx, stop, handle)
}

/// Waits for the first event matching `want`, returning the ones skipped.
fn wait_for(
    rx: &Receiver<GnssEvent>,
    timeout: Duration,
    want: impl Fn(&GnssEvent) -> bool,
) -> (Option<GnssEvent>, Vec<GnssEvent>) {
    let deadline = Instant::now() + timeout;
    let mut skipped = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(ev) if want(&ev) => return (Some(ev), skipped),
            Ok(ev) => skipped.push(ev),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                return (None, skipped);
            }
        }
    }
}

fn stop_and_join(stop: &skytime_gnss::StopHandle, handle: JoinHandle<()>) {
    stop.stop();
    handle.join().expect("reader thread does not panic");
}

#[test]
fn epochs_arrive_at_the_end_of_each_burst_and_survive_a_replug() {
    let link = temp_link("replug");
    let mut pty = new_pty(&link);
    let (rx, stop, handle) = start(&config(&link, Baud::Auto));
    let clock = HostClock;

    let base = utc_now();
    for i in 0..3 {
        // One receiver second per burst (sent faster than real time).
        let now = base + chrono::Duration::seconds(i);
        pty.master
            .write_all(burst(now).as_bytes())
            .expect("write burst");
        let written = clock.arrival();
        // The epoch must come without waiting for the next burst: it is the
        // idle gap after this one that closes it.
        let (ev, before) = wait_for(&rx, Duration::from_millis(900), |e| {
            matches!(e, GnssEvent::Epoch(_))
        });
        let Some(GnssEvent::Epoch(e)) = ev else {
            panic!("burst {i}: no epoch before the next second");
        };
        assert!(e.valid, "burst {i}: {e:?}");
        assert_eq!(
            u32::from(e.utc.hms().2),
            chrono::Timelike::second(&now),
            "label is the burst's second"
        );
        assert_eq!(e.sentences, ["RMC", "GGA", "GSA"]);
        assert!(e.first_byte.monotonic <= e.last_byte.monotonic);
        assert!(e.last_byte.monotonic.nanos_since(written.monotonic).abs() < 500_000_000);
        if i == 0 {
            // Auto-baud locked on the first rate tried, 9600.
            assert!(
                before.contains(&GnssEvent::BaudLocked { baud: 9600 }),
                "{before:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }

    // Unplug: the master goes away, the slave reads EIO.
    drop(pty);
    let (lost, _) = wait_for(&rx, Duration::from_secs(3), |e| {
        matches!(e, GnssEvent::DeviceLost { .. })
    });
    assert!(lost.is_some(), "device loss is reported");

    // Plug back in (a new pty behind the same path): reopened, epochs resume.
    let mut pty = new_pty(&link);
    let (reopened, _) = wait_for(&rx, Duration::from_secs(3), |e| {
        *e == GnssEvent::DeviceReopened
    });
    assert!(reopened.is_some(), "device reopened without restarting");
    pty.master
        .write_all(burst(base + chrono::Duration::seconds(10)).as_bytes())
        .expect("write burst");
    let (ev, _) = wait_for(&rx, Duration::from_secs(2), |e| {
        matches!(e, GnssEvent::Epoch(_))
    });
    assert!(
        matches!(ev, Some(GnssEvent::Epoch(ref e)) if e.valid),
        "{ev:?}"
    );

    stop_and_join(&stop, handle);
    let _ = std::fs::remove_dir_all(link.parent().unwrap_or(Path::new("/nonexistent")));
}

#[test]
fn garbage_at_the_wrong_baud_rate_gives_a_warning_and_no_epoch() {
    let link = temp_link("garbage");
    let mut pty = new_pty(&link);
    let cfg = config(&link, Baud::Fixed(9600));
    let (rx, stop, handle) = start(&cfg);
    // What a 4800-baud receiver looks like at 9600: bytes, never a sentence.
    let mut x: u32 = 0x1234_5678;
    let deadline = Instant::now() + Duration::from_millis(2600);
    while Instant::now() < deadline {
        let chunk: Vec<u8> = (0..64)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        pty.master.write_all(&chunk).expect("write garbage");
        std::thread::sleep(Duration::from_millis(60));
    }
    let (warning, skipped) = wait_for(&rx, Duration::from_secs(2), |e| {
        matches!(e, GnssEvent::Garbage { .. })
    });
    assert!(
        matches!(warning, Some(GnssEvent::Garbage { baud: 9600, .. })),
        "{warning:?}"
    );
    assert!(
        !skipped
            .iter()
            .any(|e| matches!(e, GnssEvent::Epoch(ep) if ep.valid)),
        "garbage produced a valid epoch: {skipped:?}"
    );
    stop_and_join(&stop, handle);
    drop(pty);
    let _ = std::fs::remove_dir_all(link.parent().unwrap_or(Path::new("/nonexistent")));
}

#[test]
fn silence_is_reported_and_the_device_reopened() {
    let link = temp_link("silence");
    let _pty = new_pty(&link);
    let (rx, stop, handle) = start(&config(&link, Baud::Fixed(9600)));
    let (silent, _) = wait_for(&rx, Duration::from_secs(4), |e| {
        matches!(e, GnssEvent::Silent { .. })
    });
    assert!(silent.is_some());
    let (reopened, _) = wait_for(&rx, Duration::from_secs(3), |e| {
        *e == GnssEvent::DeviceReopened
    });
    assert!(reopened.is_some());
    stop_and_join(&stop, handle);
    let _ = std::fs::remove_dir_all(link.parent().unwrap_or(Path::new("/nonexistent")));
}

#[test]
fn a_missing_device_is_one_clear_error() {
    let cfg = config(Path::new("/dev/skytime-no-such-gps"), Baud::Fixed(9600));
    let err = SerialReader::open(&cfg, Arc::new(HostClock)).expect_err("must fail");
    let GnssError::Open { ref path, .. } = err;
    assert_eq!(path, Path::new("/dev/skytime-no-such-gps"));
    let msg = err.to_string();
    assert!(msg.contains("/dev/skytime-no-such-gps"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
}

/// Answers UBX commands written to the pty like a u-blox receiver: MON-VER
/// for the poll, ACK-ACK for everything else. Returns when the line closes.
fn answer_ubx(mut master: File) {
    use skytime_gnss::ubx::{self, messages};
    use std::io::Read;
    let mut acc = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => acc.extend_from_slice(&buf[..n]),
        }
        let mut replies = Vec::new();
        let mut at = 0;
        while at + 1 < acc.len() {
            match ubx::Frame::parse(&acc[at..]) {
                Ok((f, used)) => {
                    if (f.class, f.id) == (ubx::CLASS_MON, ubx::ID_MON_VER) {
                        replies.extend(messages::encode_mon_ver(&messages::ReceiverVersion {
                            software: "ROM CORE 3.01 (107888)".into(),
                            hardware: "00080000".into(),
                            extensions: vec!["FWVER=TIM 1.10".into(), "MOD=LEA-M8T-0".into()],
                        }));
                    } else {
                        replies.extend(messages::encode_ack(true, f.class, f.id));
                    }
                    at += used;
                }
                Err(ubx::FrameError::Truncated { .. }) => break,
                Err(_) => at += 1,
            }
        }
        acc.drain(..at);
        if !replies.is_empty() && master.write_all(&replies).is_err() {
            return;
        }
    }
}

#[test]
fn a_ublox_receiver_is_configured_once_the_line_locks() {
    use skytime_gnss::ReceiverReport;
    use skytime_gnss::configure::{Outcome, ReceiverProtocol};
    use std::sync::atomic::{AtomicBool, Ordering};
    let link = temp_link("configure");
    let pty = new_pty(&link);
    let mut cfg = config(&link, Baud::Fixed(9600));
    cfg.receiver.protocol = ReceiverProtocol::Ubx;
    let (rx, stop, handle) = start(&cfg);

    let answering = pty.master.try_clone().expect("clone pty master");
    std::thread::spawn(move || answer_ubx(answering));
    let talking = Arc::new(AtomicBool::new(true));
    let mut writer = pty.master.try_clone().expect("clone pty master");
    let keep_talking = Arc::clone(&talking);
    let bursts = std::thread::spawn(move || {
        while keep_talking.load(Ordering::Relaxed) {
            if writer.write_all(burst(utc_now()).as_bytes()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });

    let (done, skipped) = wait_for(&rx, Duration::from_secs(20), |e| {
        matches!(e, GnssEvent::ReceiverConfigured(_))
    });
    assert_eq!(
        done,
        Some(GnssEvent::ReceiverConfigured(Outcome::Configured {
            baud: 9600
        })),
        "events before: {skipped:?}"
    );
    assert!(
        skipped.iter().any(|e| matches!(
            e,
            GnssEvent::Report(ReceiverReport::Identified(i)) if i.family == "u-blox LEA-M8T-0"
        )),
        "{skipped:?}"
    );
    // Epochs keep coming after configuration.
    let (epoch, _) = wait_for(
        &rx,
        Duration::from_secs(5),
        |e| matches!(e, GnssEvent::Epoch(ep) if ep.valid),
    );
    assert!(epoch.is_some());
    talking.store(false, Ordering::Relaxed);
    let _ = bursts.join();
    stop_and_join(&stop, handle);
    drop(pty);
}
