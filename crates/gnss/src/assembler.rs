//! The sans-IO core: bytes plus their arrival time in, labelled epochs out.
//!
//! An epoch is every sentence of one receiver output cycle. It ends when a
//! sentence labels a different time of day, when the line goes quiet for
//! `idle_gap_ms` (the end of a burst, which is what makes epochs prompt on a live
//! line), or at the end of input.

use crate::config::ParserConfig;
use crate::configure::ReceiverInfo;
use crate::epoch::{Epoch, FixMode, SatelliteInfo};
use crate::framer::{Framed, Framer};
use crate::reports::{ReceiverReport, Reports};
use crate::sentence::{self, Checked, DateField, Kind, Sat, Sentence, TimeOfDay};
use crate::stats::ParserStats;
use crate::ubx::{self, LeapReport};
use chrono::{Datelike, Days, NaiveDate};
use skytime_timebase::{Arrival, LeapChange, MonoNanos, NANOS_PER_SEC, UtcSecond};

/// Days in 1024 GPS weeks: how far back a week-number rollover throws a date.
pub const ROLLOVER_DAYS: u64 = 1024 * 7;

/// A date is carried from one epoch to the next (for GGA-only seconds) only
/// across gaps shorter than this: beyond it, midnight may have passed unseen.
const DATE_CARRY_MAX_NS: i64 = 3600 * NANOS_PER_SEC;

/// Every sentence of one cycle, gathered while it is open.
#[derive(Debug)]
struct Building {
    time: Option<TimeOfDay>,
    talker: Option<String>,
    date: Option<NaiveDate>,
    date_bad: bool,
    date_conflict: bool,
    says_fix: bool,
    says_no_fix: bool,
    fix_mode: Option<FixMode>,
    used_prns: Vec<u16>,
    sats_used: Option<u8>,
    hdop: Option<f32>,
    in_view: Vec<([u8; 2], u16)>,
    sats: Vec<([u8; 2], Sat)>,
    sentences: Vec<String>,
    first_byte: Arrival,
    last_byte: Arrival,
}

impl Building {
    fn new(first_byte: Arrival) -> Self {
        Self {
            time: None,
            talker: None,
            date: None,
            date_bad: false,
            date_conflict: false,
            says_fix: false,
            says_no_fix: false,
            fix_mode: None,
            used_prns: Vec::new(),
            sats_used: None,
            hdop: None,
            in_view: Vec::new(),
            sats: Vec::new(),
            sentences: Vec::new(),
            first_byte,
            last_byte: first_byte,
        }
    }
}

fn fix_rank(m: FixMode) -> u8 {
    match m {
        FixMode::Unknown => 0,
        FixMode::NoFix => 1,
        FixMode::Fix2D => 2,
        FixMode::Fix3D => 3,
    }
}

/// The date an earlier epoch was labelled with, for time-only sentences.
#[derive(Copy, Clone, Debug)]
struct DateAnchor {
    date: NaiveDate,
    time: TimeOfDay,
    monotonic: MonoNanos,
}

/// Turns a receiver's byte stream into [`Epoch`]s. Sans-IO: the caller reads
/// the device and passes each chunk with the time it arrived.
#[derive(Debug)]
pub struct EpochAssembler {
    allow_missing_checksum: bool,
    idle_gap_ns: i64,
    pivot: NaiveDate,
    framer: Framer,
    stats: ParserStats,
    open: Option<Building>,
    last_rx: Option<Arrival>,
    last_closed: Option<TimeOfDay>,
    last_dated: Option<DateAnchor>,
    date_hint: Option<NaiveDate>,
    pending_leap: Option<LeapReport>,
    /// (change, Unix seconds of the midnight the leap ends at).
    leap_event: Option<(LeapChange, i64)>,
    reports: Reports,
    nmea_buf: String,
}

impl EpochAssembler {
    /// An assembler for a live line: the rollover pivot is the configured one,
    /// never earlier than the build date.
    pub fn new(config: &ParserConfig) -> Self {
        Self::with_pivot(config, config.effective_pivot())
    }

    /// An assembler with an explicit rollover pivot, which may be earlier than
    /// the build date: for replaying historical captures and simulations only.
    pub fn with_pivot(config: &ParserConfig, pivot: NaiveDate) -> Self {
        Self {
            allow_missing_checksum: config.allow_missing_checksum,
            idle_gap_ns: i64::from(config.idle_gap_ms) * 1_000_000,
            pivot,
            framer: Framer::new(),
            stats: ParserStats::default(),
            open: None,
            last_rx: None,
            last_closed: None,
            last_dated: None,
            date_hint: None,
            pending_leap: None,
            leap_event: None,
            reports: Reports::default(),
            nmea_buf: String::with_capacity(128),
        }
    }

    /// Moves the pivot for a capture whose `# Date:` header arrived after the
    /// assembler was built. Crate-private: a live line's pivot never moves back.
    pub(crate) fn set_capture_pivot(&mut self, pivot: NaiveDate) {
        self.pivot = pivot;
    }

    /// Forgets a partial line (the device was reopened or changed speed).
    pub fn reset_line(&mut self) {
        self.framer.reset();
    }

    /// The GPS week-rollover pivot in force.
    pub fn pivot(&self) -> NaiveDate {
        self.pivot
    }

    /// A date for time-only streams that never send one (a capture's `# Date:`
    /// header). Dates from the receiver, or carried from its last dated epoch, win.
    pub fn set_date_hint(&mut self, date: Option<NaiveDate>) {
        self.date_hint = date;
    }

    /// Feed bytes as they arrived; completed epochs are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], arrival: Arrival, out: &mut Vec<Epoch>) {
        if bytes.is_empty() {
            return;
        }
        self.stats.bytes += bytes.len() as u64;
        self.last_rx = Some(arrival);
        for &b in bytes {
            self.step(b, arrival, out);
            while let Some(r) = self.framer.replay.pop() {
                self.step(r, arrival, out);
            }
        }
    }

    /// The line went quiet at `now` (end of a burst): close the current epoch if
    /// it has been idle long enough.
    pub fn flush_idle(&mut self, now: Arrival, out: &mut Vec<Epoch>) {
        let Some(last) = self.last_rx else {
            return;
        };
        if now.monotonic.nanos_since(last.monotonic) < self.idle_gap_ns {
            return;
        }
        self.take_unterminated(last, out);
        self.close(out);
    }

    /// End of input: close whatever is open. The assembler stays usable (the
    /// serial shell calls this when a device is lost, then keeps feeding).
    pub fn finish(&mut self, out: &mut Vec<Epoch>) {
        if let Some(last) = self.last_rx {
            self.take_unterminated(last, out);
        }
        self.framer.reset();
        self.close(out);
    }

    /// Counters so far.
    pub fn stats(&self) -> &ParserStats {
        &self.stats
    }

    /// Timing reports and identity changes since the last call, in arrival
    /// order (at most the 64 newest are kept for a caller that never asks).
    pub fn take_reports(&mut self) -> Vec<ReceiverReport> {
        self.reports.take()
    }

    /// What the receiver said it is (MON-VER, `$PMTK705`, `$GPTXT`), if it has.
    pub fn receiver(&self) -> Option<&ReceiverInfo> {
        self.reports.identity()
    }

    /// A sentence complete up to its checksum but not yet terminated when the
    /// line paused (some receivers send the line end with the next burst).
    fn take_unterminated(&mut self, arrival: Arrival, out: &mut Vec<Epoch>) {
        let line = &self.framer.line;
        let n = line.len();
        if self.framer.in_sentence() && n >= 3 && line[n - 3] == b'*' {
            if let Checked::Good { .. } = sentence::check(line) {
                let start = self.framer.frame_start;
                let line = std::mem::take(&mut self.framer.line);
                self.framer.reset();
                self.on_line(&line, start, arrival, out);
                self.framer.line = line;
                self.framer.line.clear();
            }
        }
    }

    #[inline]
    fn step(&mut self, b: u8, arrival: Arrival, out: &mut Vec<Epoch>) {
        match self.framer.push(b, arrival, &mut self.stats) {
            Framed::Nothing | Framed::Sirf => {}
            Framed::Sentence => {
                let start = self.framer.frame_start;
                let line = std::mem::take(&mut self.framer.line);
                self.on_line(&line, start, arrival, out);
                self.framer.line = line;
            }
            Framed::Ubx => {
                let frame = std::mem::take(&mut self.framer.binary);
                self.on_ubx(&frame);
                self.reports.on_ubx(&frame, arrival);
                self.framer.binary = frame;
            }
        }
    }

    fn on_ubx(&mut self, frame: &[u8]) {
        if frame.len() >= 6 && frame[2] == ubx::CLASS_NAV && frame[3] == ubx::ID_TIMELS {
            if let Some(report) = ubx::decode_timels(&frame[6..frame.len() - 2]) {
                self.stats.leap_reports += 1;
                self.pending_leap = Some(report);
            }
        }
    }

    fn on_line(&mut self, line: &[u8], start: Arrival, end: Arrival, out: &mut Vec<Epoch>) {
        self.stats.lines += 1;
        let body = match sentence::check(line) {
            Checked::Good { body, .. } => body,
            Checked::BadChecksum => {
                self.stats.checksum_errors += 1;
                return;
            }
            Checked::Missing if self.allow_missing_checksum => line,
            Checked::Missing => {
                self.stats.missing_checksums += 1;
                return;
            }
        };
        match sentence::parse(body, &mut self.nmea_buf) {
            Ok(s) => {
                if matches!(s.kind, Kind::Txt | Kind::Other) {
                    self.reports.on_text(body);
                }
                self.apply(&s, start, end, out)
            }
            Err(_) => self.stats.malformed_sentences += 1,
        }
    }

    fn apply(&mut self, s: &Sentence<'_>, start: Arrival, end: Arrival, out: &mut Vec<Epoch>) {
        self.stats.sentences += 1;
        if let Some(t) = s.time {
            if self.last_closed == Some(t) {
                self.stats.late_sentences += 1;
                return;
            }
            if self
                .open
                .as_ref()
                .and_then(|b| b.time)
                .is_some_and(|bt| bt != t)
            {
                self.close(out);
            }
        }
        let date = match s.date {
            DateField::Absent => None,
            DateField::Bad => Some(None),
            DateField::Ymd {
                year,
                month,
                day,
                two_digit_year,
            } => Some(self.resolve_date(year, month, day, two_digit_year)),
        };
        let b = self.open.get_or_insert_with(|| Building::new(start));
        b.last_byte = end;
        if !b.sentences.iter().any(|n| n == s.name) {
            b.sentences.push(s.name.to_owned());
        }
        if let Some(t) = s.time
            && b.time.is_none()
        {
            b.time = Some(t);
            b.talker = s.talker.map(str::to_owned);
        }
        match date {
            None => {}
            Some(None) => b.date_bad = true,
            Some(Some(d)) => match b.date {
                None => b.date = Some(d),
                Some(prev) if prev != d => b.date_conflict = true,
                Some(_) => {}
            },
        }
        match s.fix {
            Some(true) => b.says_fix = true,
            Some(false) => b.says_no_fix = true,
            None => {}
        }
        if matches!(s.kind, Kind::Gga | Kind::Gns) {
            b.sats_used = b.sats_used.or(s.sats_used);
            b.hdop = s.hdop.or(b.hdop);
        }
        if s.kind == Kind::Gsa {
            if let Some(m) = s.fix_mode
                && b.fix_mode.is_none_or(|cur| fix_rank(m) > fix_rank(cur))
            {
                b.fix_mode = Some(m);
            }
            b.used_prns.extend_from_slice(&s.used_prns);
            b.hdop = b.hdop.or(s.hdop);
        }
        if s.kind == Kind::Gsv {
            let talker = talker_key(s.talker);
            if let Some(n) = s.sats_in_view {
                match b.in_view.iter_mut().find(|(t, _)| *t == talker) {
                    Some((_, v)) => *v = (*v).max(n),
                    None => b.in_view.push((talker, n)),
                }
            }
            for sat in &s.sats {
                let full = b.sats.len() >= 256;
                match b
                    .sats
                    .iter_mut()
                    .find(|(t, x)| *t == talker && x.prn == sat.prn)
                {
                    Some((_, x)) => x.snr_dbhz = x.snr_dbhz.max(sat.snr_dbhz),
                    None if !full => b.sats.push((talker, *sat)),
                    None => {}
                }
            }
        }
        if b.used_prns.len() > 256 {
            b.used_prns.truncate(256);
        }
    }

    /// Century for two-digit years (GPS era: 80..99 → 19xx), then the 1024-week
    /// rollover against the pivot.
    fn resolve_date(
        &mut self,
        year: i32,
        month: u32,
        day: u32,
        two_digit: bool,
    ) -> Option<NaiveDate> {
        let year = match (two_digit, year) {
            (true, y) if y >= 80 => 1900 + y,
            (true, y) => 2000 + y,
            (false, y) => y,
        };
        let mut date = NaiveDate::from_ymd_opt(year, month, day)?;
        let mut corrected = false;
        // At most a few rollovers: anything needing more is not a GPS date.
        for _ in 0..4 {
            if date >= self.pivot {
                break;
            }
            date = date.checked_add_days(Days::new(ROLLOVER_DAYS))?;
            corrected = true;
        }
        if date < self.pivot {
            return None;
        }
        if corrected {
            self.stats.rollover_corrections += 1;
        }
        Some(date)
    }

    fn close(&mut self, out: &mut Vec<Epoch>) {
        let Some(b) = self.open.take() else {
            return;
        };
        let Some(time) = b.time else {
            self.stats.untimed_bursts += 1;
            return;
        };
        self.last_closed = Some(time);
        let date = b.date.or_else(|| {
            self.last_dated
                .filter(|a| {
                    let gap = b.first_byte.monotonic.nanos_since(a.monotonic);
                    (0..DATE_CARRY_MAX_NS).contains(&gap)
                })
                .and_then(|a| {
                    if time < a.time {
                        a.date.succ_opt()
                    } else {
                        Some(a.date)
                    }
                })
                .or(self.date_hint)
        });
        let Some(date) = date else {
            self.stats.undated_epochs += 1;
            return;
        };
        let Some(utc) = UtcSecond::new(date, time.hour, time.minute, time.second) else {
            self.stats.undated_epochs += 1;
            return;
        };
        self.last_dated = Some(DateAnchor {
            date,
            time,
            monotonic: b.first_byte.monotonic,
        });
        // 23:59:60 exists only at the end of a month.
        let leap_label_ok = !utc.is_leap_second() || utc.is_last_day_of_month();
        let gsa_says_no_fix = b.fix_mode == Some(FixMode::NoFix);
        let valid = b.says_fix
            && !b.says_no_fix
            && !gsa_says_no_fix
            && !b.date_bad
            && !b.date_conflict
            && leap_label_ok;
        let leap = self.leap_for(&utc);

        let satellites = b
            .sats
            .iter()
            .map(|(_, s)| SatelliteInfo {
                prn: s.prn,
                snr_dbhz: s.snr_dbhz,
                used: b.used_prns.contains(&s.prn),
            })
            .collect();
        let sats_used = b.sats_used.or_else(|| {
            (b.fix_mode.is_some()).then(|| u8::try_from(b.used_prns.len()).unwrap_or(u8::MAX))
        });
        let sats_visible = (!b.in_view.is_empty()).then(|| {
            let sum: u32 = b.in_view.iter().map(|(_, n)| u32::from(*n)).sum();
            u8::try_from(sum).unwrap_or(u8::MAX)
        });
        self.stats.epochs += 1;
        if valid {
            self.stats.valid_epochs += 1;
        }
        out.push(Epoch {
            utc,
            millis: time.millis,
            valid,
            fix_mode: b.fix_mode.unwrap_or_default(),
            sats_used,
            sats_visible,
            hdop: b.hdop,
            leap,
            talker: b.talker.unwrap_or_default(),
            sentences: b.sentences,
            satellites,
            first_byte: b.first_byte,
            last_byte: b.last_byte,
        });
    }

    /// The announced leap for the end of this epoch's month, from NAV-TIMELS.
    fn leap_for(&mut self, utc: &UtcSecond) -> LeapChange {
        let now = utc.unix_secs();
        if let Some(report) = self.pending_leap.take() {
            self.leap_event = match report.change {
                LeapChange::None => None,
                change => {
                    let event = now + i64::from(report.time_to_event_s);
                    let midnight = (event + 43_200).div_euclid(86_400) * 86_400;
                    // The event is a UTC midnight; anything else is a bad report.
                    ((event - midnight).abs() <= 120).then_some((change, midnight))
                }
            };
        }
        let Some((change, midnight)) = self.leap_event else {
            return LeapChange::None;
        };
        if now >= midnight && !utc.is_leap_second() {
            self.leap_event = None;
            return LeapChange::None;
        }
        let last_day = chrono::DateTime::from_timestamp(midnight - 1, 0).map(|t| t.date_naive());
        match last_day {
            Some(d) if d.year() == utc.date().year() && d.month() == utc.date().month() => change,
            _ => LeapChange::None,
        }
    }
}

fn talker_key(t: Option<&str>) -> [u8; 2] {
    match t.map(str::as_bytes) {
        Some([a, b]) => [*a, *b],
        _ => [0, 0],
    }
}
