//! Host side of the VM test (tests/vm): the GNSS receiver and its pulse for a
//! guest whose serial ports are QEMU Unix-socket chardevs.
//!
//! At each true second (host clock + `--true-offset-s`) it writes a short
//! burst to the PPS socket (the guest's ttyS2, where the skytime_vm_pps line
//! discipline turns it into a `pps_event()`), then the NMEA of that second,
//! from the simulated receiver's sentence writer, to the NMEA socket (ttyS1).
//! Faults are switched by files in `--control-dir`: `pps-off` stops the
//! pulse, `nmea-off` closes the NMEA connection until the file is removed.

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use skytime_sim::nmea_out::{FixInfo, nmea_burst};
use skytime_sim::true_seconds::label_true_second;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bytes per pulse: more than the guest 16550A's receive trigger level (8),
/// so the UART interrupts at once instead of after its FIFO timeout.
const PULSE_BYTES: [u8; 16] = [0x55; 16];
/// When the receiver starts its sentences after the pulse, as real ones do.
const NMEA_DELAY: Duration = Duration::from_millis(150);
/// How long before the boundary the feeder stops sleeping and spins: more
/// than a busy host's wake-up latency, so the pulse leaves on time.
const SPIN_BEFORE: Duration = Duration::from_millis(20);
/// Pulses per line of lateness statistics on stderr.
const REPORT_EVERY: usize = 60;

struct Args {
    nmea_socket: PathBuf,
    pps_socket: PathBuf,
    control_dir: PathBuf,
    true_offset_s: i64,
    leap_day: Option<NaiveDate>,
}

fn parse_args() -> Result<Args> {
    let mut nmea_socket = None;
    let mut pps_socket = None;
    let mut control_dir = None;
    let mut true_offset_s = 0;
    let mut leap_day = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--nmea-socket" => nmea_socket = Some(PathBuf::from(value)),
            "--pps-socket" => pps_socket = Some(PathBuf::from(value)),
            "--control-dir" => control_dir = Some(PathBuf::from(value)),
            "--true-offset-s" => {
                true_offset_s = value
                    .parse()
                    .with_context(|| format!("--true-offset-s {value}"))?
            }
            "--leap-day" => {
                leap_day = Some(
                    NaiveDate::parse_from_str(&value, "%Y-%m-%d")
                        .with_context(|| format!("--leap-day {value} (want YYYY-MM-DD)"))?,
                )
            }
            other => bail!(
                "unknown option {other}; usage: skytime-vm-feeder --nmea-socket P --pps-socket P \
                 --control-dir D [--true-offset-s N] [--leap-day YYYY-MM-DD]"
            ),
        }
    }
    Ok(Args {
        nmea_socket: nmea_socket.context("--nmea-socket is required")?,
        pps_socket: pps_socket.context("--pps-socket is required")?,
        control_dir: control_dir.context("--control-dir is required")?,
        true_offset_s,
        leap_day,
    })
}

/// One QEMU chardev socket, reconnected whenever it is wanted and missing.
struct Line {
    path: PathBuf,
    name: &'static str,
    stream: Option<UnixStream>,
}

impl Line {
    fn new(path: PathBuf, name: &'static str) -> Self {
        Self {
            path,
            name,
            stream: None,
        }
    }

    /// Writes `bytes`, connecting first if needed; false if nothing was written.
    fn write(&mut self, bytes: &[u8]) -> bool {
        if self.stream.is_none() {
            match UnixStream::connect(&self.path) {
                Ok(s) => {
                    eprintln!("feeder: {} connected to {}", self.name, self.path.display());
                    drain_guest_output(&s);
                    self.stream = Some(s);
                }
                Err(_) => return false, // QEMU not up yet: try again next second.
            }
        }
        let Some(s) = self.stream.as_mut() else {
            return false;
        };
        match s.write_all(bytes) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("feeder: {} write failed ({e}); reconnecting", self.name);
                self.disconnect();
                false
            }
        }
    }

    fn close(&mut self) {
        if self.disconnect() {
            eprintln!("feeder: {} closed", self.name);
        }
    }

    /// Ends the connection for QEMU too: the drain thread holds a duplicate
    /// of the socket, so dropping ours alone would leave the chardev
    /// connected, and QEMU would never accept the next one (an NMEA cut
    /// that never ended). `shutdown` also ends the drain thread's read.
    fn disconnect(&mut self) -> bool {
        match self.stream.take() {
            Some(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
                true
            }
            None => false,
        }
    }
}

/// Reads and drops what the guest sends back (a tty's echo, a getty's
/// prompts): QEMU's UART writes block the whole machine once the socket's
/// buffer is full, so an unread connection froze the guest.
fn drain_guest_output(stream: &UnixStream) {
    let Ok(mut reader) = stream.try_clone() else {
        return;
    };
    std::thread::spawn(move || {
        let mut sink = [0u8; 4096];
        while matches!(std::io::Read::read(&mut reader, &mut sink), Ok(n) if n > 0) {}
    });
}

fn host_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Sleeps until the host clock reads `target` (since the epoch), spinning the
/// last few milliseconds so the pulse leaves within microseconds of it.
fn wait_until(target: Duration) {
    let now = host_now();
    if let Some(gap) = target.checked_sub(now + SPIN_BEFORE) {
        std::thread::sleep(gap);
    }
    while host_now() < target {
        std::hint::spin_loop();
    }
}

/// Prints how late the pulses left the host (after the boundary), so the
/// run can report what part of the guest's PPS jitter is the host's.
fn report_lateness(late_us: &mut Vec<u64>) {
    if late_us.len() < REPORT_EVERY {
        return;
    }
    late_us.sort_unstable();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "q is in 0..=1, so the rounded index is in 0..len"
    )]
    let at = |q: f64| late_us[((late_us.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "feeder: pulse lateness over {} pulses: median {} us, p95 {} us, max {} us",
        late_us.len(),
        at(0.5),
        at(0.95),
        at(1.0)
    );
    late_us.clear();
}

fn flag(dir: &Path, name: &str) -> bool {
    dir.join(name).exists()
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let mut pps = Line::new(args.pps_socket.clone(), "pps");
    let mut nmea = Line::new(args.nmea_socket.clone(), "nmea");
    let fix = FixInfo::good();
    let offset_secs = args.true_offset_s;
    eprintln!(
        "feeder: true time = host + {offset_secs} s{}",
        args.leap_day
            .map(|d| format!(", leap second inserted at the end of {d}"))
            .unwrap_or_default()
    );
    let (mut pps_was_off, mut nmea_was_off) = (false, false);
    let mut late_us = Vec::with_capacity(REPORT_EVERY);
    loop {
        let next_host_secs = host_now().as_secs() + 1;
        wait_until(Duration::from_secs(next_host_secs));
        let pps_off = flag(&args.control_dir, "pps-off");
        if !pps_off && pps.write(&PULSE_BYTES) {
            let late = host_now().saturating_sub(Duration::from_secs(next_host_secs));
            late_us.push(u64::try_from(late.as_micros()).unwrap_or(u64::MAX));
            report_lateness(&mut late_us);
        }
        if pps_off != pps_was_off {
            eprintln!(
                "feeder: pps {}",
                if pps_off { "stopped" } else { "resumed" }
            );
            pps_was_off = pps_off;
        }
        let true_secs = i64::try_from(next_host_secs).unwrap_or(i64::MAX) + offset_secs;
        let Some((label, leap)) = label_true_second(true_secs, args.leap_day) else {
            bail!("true time {true_secs} s is outside the calendar");
        };
        wait_until(Duration::from_secs(next_host_secs) + NMEA_DELAY);
        let nmea_off = flag(&args.control_dir, "nmea-off");
        if nmea_off {
            nmea.close();
        } else {
            nmea.write(&nmea_burst(label, &fix, leap));
        }
        if nmea_off != nmea_was_off {
            eprintln!("feeder: nmea {}", if nmea_off { "cut" } else { "restored" });
            nmea_was_off = nmea_off;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    /// The NMEA cut must reach QEMU: after `close`, the far end sees the
    /// connection end although the drain thread held a duplicate of it.
    #[test]
    fn closing_a_line_ends_the_connection_for_the_far_end() {
        let dir = std::env::temp_dir().join(format!("skytime-feeder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("nmea.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let mut line = Line::new(path.clone(), "nmea");
        assert!(line.write(b"$GPZDA\r\n"));
        let (mut far, _) = listener.accept().expect("accept");
        far.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut got = [0u8; 8];
        far.read_exact(&mut got).expect("the burst arrives");
        line.close();
        let mut rest = [0u8; 16];
        let n = far.read(&mut rest).expect("EOF, not a timeout");
        assert_eq!(n, 0, "the far end still sees an open connection");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
