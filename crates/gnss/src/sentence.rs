//! One NMEA sentence: checksum, address, and the fields an epoch needs.
//!
//! Time-bearing sentences (RMC, ZDA, GGA, GNS, GLL) and GSA are decoded here,
//! strictly, because the `nmea` crate rejects 23:59:60 and we need every field's
//! validity, not a best effort. GSV and TXT go through the `nmea` crate, with a
//! fallback for talkers it does not know (GN).

use crate::epoch::FixMode;

/// Talkers whose sentences may label a second (rule 1 in [`crate::validity`]):
/// the GNSS constellations, the combined `GN`, and the integrated navigation /
/// instrumentation talkers `IN` and `II` that relay a receiver's fix, as gpsd's
/// lexer takes them. Heading, sounder and weather talkers are ignored.
pub(crate) const TIME_TALKERS: [&[u8; 2]; 11] = [
    b"GP", b"GL", b"GA", b"GB", b"BD", b"GQ", b"QZ", b"GI", b"GN", b"IN", b"II",
];

/// Time of day as a receiver labels it; the second may be 60.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub millis: u16,
}

/// A date field as found in the sentence.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum DateField {
    /// The sentence type has no date (GGA, GNS, GLL) or left it empty.
    Absent,
    /// Present but not a date (e.g. `2208-1` from a Telit after the 2019 rollover).
    Bad,
    /// A calendar date; `two_digit_year` when the century was not sent.
    Ymd {
        year: i32,
        month: u32,
        day: u32,
        two_digit_year: bool,
    },
}

/// Which sentence it was.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Rmc,
    Zda,
    Gga,
    Gns,
    Gll,
    Gsa,
    Gsv,
    Txt,
    /// Any other standard or proprietary sentence: listed, not decoded.
    Other,
}

/// A satellite from GSV.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sat {
    pub prn: u16,
    pub snr_dbhz: Option<u8>,
}

/// What one accepted sentence says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sentence<'a> {
    pub kind: Kind,
    /// Sentence type for the epoch's list: `RMC`, or the proprietary address (`PUBX`).
    pub name: &'a str,
    /// Two-letter talker, for standard sentences.
    pub talker: Option<&'a str>,
    pub time: Option<TimeOfDay>,
    pub date: DateField,
    /// `Some(true)`: this sentence reports a real fix; `Some(false)`: it says there is none.
    pub fix: Option<bool>,
    pub sats_used: Option<u8>,
    pub hdop: Option<f32>,
    /// GSA fix dimension.
    pub fix_mode: Option<FixMode>,
    /// GSA satellites used.
    pub used_prns: Vec<u16>,
    /// GSV: satellites in view (whole group) and this sentence's satellites.
    pub sats_in_view: Option<u16>,
    pub sats: Vec<Sat>,
}

/// Outcome of checking a line's checksum.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Checked<'a> {
    /// The body (between `$` and `*`), and whether a checksum vouched for it.
    Good { body: &'a [u8], checksummed: bool },
    /// A checksum was there and wrong or malformed.
    BadChecksum,
    /// No checksum at all.
    Missing,
}

/// Verifies `*hh` (either case, trailing spaces tolerated).
pub(crate) fn check(line: &[u8]) -> Checked<'_> {
    let Some(star) = line.iter().rposition(|&b| b == b'*') else {
        return Checked::Missing;
    };
    let body = &line[..star];
    let mut hex = &line[star + 1..];
    while let [rest @ .., b' '] = hex {
        hex = rest;
    }
    let [h, l] = hex else {
        return Checked::BadChecksum;
    };
    let (Some(h), Some(l)) = (hex_digit(*h), hex_digit(*l)) else {
        return Checked::BadChecksum;
    };
    let sum = body.iter().fold(0u8, |c, &b| c ^ b);
    if sum == (h << 4) | l {
        Checked::Good {
            body,
            checksummed: true,
        }
    } else {
        Checked::BadChecksum
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Why a checksummed sentence was still rejected.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

/// Decodes a verified body (no `$`, no `*hh`). `nmea_buf` is scratch space for
/// handing a normalised sentence to the `nmea` crate.
pub(crate) fn parse<'a>(body: &'a [u8], nmea_buf: &mut String) -> Result<Sentence<'a>, Malformed> {
    let text = std::str::from_utf8(body).map_err(|_| Malformed)?;
    let mut fields = text.split(',');
    let address = fields.next().ok_or(Malformed)?;
    if address.len() < 2
        || address.len() > 12
        || !address
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(Malformed);
    }
    let mut s = Sentence {
        kind: Kind::Other,
        name: address,
        talker: None,
        time: None,
        date: DateField::Absent,
        fix: None,
        sats_used: None,
        hdop: None,
        fix_mode: None,
        used_prns: Vec::new(),
        sats_in_view: None,
        sats: Vec::new(),
    };
    if address.starts_with('P') || address.len() != 5 {
        return Ok(s); // proprietary ($PUBX, $PSTI, ...) or non-standard: listed only
    }
    let (talker, kind) = address.split_at(2);
    s.name = kind;
    s.talker = Some(talker);
    let gnss_talker = TIME_TALKERS
        .iter()
        .any(|t| t.as_slice() == talker.as_bytes());
    s.kind = match kind {
        _ if !gnss_talker => Kind::Other,
        "RMC" => Kind::Rmc,
        "ZDA" => Kind::Zda,
        "GGA" => Kind::Gga,
        "GNS" => Kind::Gns,
        "GLL" => Kind::Gll,
        "GSA" => Kind::Gsa,
        "GSV" => Kind::Gsv,
        "TXT" => Kind::Txt,
        _ => Kind::Other,
    };
    let f: Vec<&str> = fields.collect();
    let get = |i: usize| f.get(i).copied().unwrap_or("");
    match s.kind {
        Kind::Rmc => {
            s.time = parse_time(get(0))?;
            s.fix = status_fix(get(1), get(11));
            s.date = parse_ddmmyy(get(8));
        }
        Kind::Zda => {
            s.time = parse_time(get(0))?;
            s.date = parse_zda_date(get(1), get(2), get(3));
        }
        Kind::Gga => {
            s.time = parse_time(get(0))?;
            s.sats_used = opt_num::<u8>(get(6))?;
            s.hdop = opt_num::<f32>(get(7))?;
            s.fix = match get(5) {
                "" => None,
                // Rule 3: a fix with 0 or no satellites is neither a claim nor a denial.
                "1" | "2" | "3" | "4" | "5" => s.sats_used.filter(|&n| n > 0).map(|_| true),
                // 0 no fix, 6 dead reckoning, 7 manual, 8 simulator: not the sky.
                "0" | "6" | "7" | "8" => Some(false),
                _ => return Err(Malformed),
            };
        }
        Kind::Gns => {
            s.time = parse_time(get(0))?;
            s.sats_used = opt_num::<u8>(get(6))?;
            s.hdop = opt_num::<f32>(get(7))?;
            let mode = get(5);
            if !mode.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(Malformed);
            }
            s.fix = if mode.is_empty() {
                None
            } else {
                let any_fix = mode
                    .bytes()
                    .any(|b| matches!(b, b'A' | b'D' | b'P' | b'R' | b'F'));
                match (any_fix, s.sats_used) {
                    (false, _) => Some(false),
                    (true, Some(n)) if n > 0 => Some(true),
                    (true, _) => None, // rule 3, as for GGA
                }
            };
        }
        Kind::Gll => {
            s.time = parse_time(get(4))?;
            s.fix = status_fix(get(5), get(6));
        }
        Kind::Gsa => {
            s.fix_mode = match get(1) {
                "" => None,
                "1" => Some(FixMode::NoFix),
                "2" => Some(FixMode::Fix2D),
                "3" => Some(FixMode::Fix3D),
                _ => return Err(Malformed),
            };
            for i in 2..14 {
                if let Some(prn) = opt_num::<u16>(get(i))? {
                    s.used_prns.push(prn);
                }
            }
            s.hdop = opt_num::<f32>(get(15))?;
        }
        Kind::Gsv => parse_gsv(body, &f, &mut s, nmea_buf)?,
        Kind::Txt => {
            // Only validated: text is for humans, not for the time.
            normalise(body, nmea_buf);
            if !matches!(nmea::parse_str(nmea_buf), Ok(nmea::ParseResult::TXT(_))) {
                return Err(Malformed);
            }
        }
        Kind::Other => {}
    }
    Ok(s)
}

/// Rebuilds `$body*hh` for the `nmea` crate (also for sentences accepted without a checksum).
fn normalise(body: &[u8], buf: &mut String) {
    use std::fmt::Write as _;
    let sum = body.iter().fold(0u8, |c, &b| c ^ b);
    buf.clear();
    buf.push('$');
    buf.extend(body.iter().map(|&b| char::from(b)));
    let _ = write!(buf, "*{sum:02X}");
}

fn parse_gsv<'a>(
    body: &[u8],
    f: &[&str],
    s: &mut Sentence<'a>,
    nmea_buf: &mut String,
) -> Result<(), Malformed> {
    normalise(body, nmea_buf);
    if let Ok(nmea::ParseResult::GSV(g)) = nmea::parse_str(nmea_buf) {
        s.sats_in_view = Some(g.sats_in_view);
        for sat in g.sats_info.iter().flatten() {
            s.sats.push(Sat {
                prn: u16::try_from(sat.prn()).map_err(|_| Malformed)?,
                snr_dbhz: sat.snr().map(snr_dbhz),
            });
        }
        return Ok(());
    }
    // GN talkers and NMEA 4.11 layouts the crate does not take: count, number,
    // in view, then (prn, elevation, azimuth, snr) groups, maybe a signal id.
    let total: Option<u16> = opt_num(f.first().copied().unwrap_or(""))?;
    let in_view: Option<u16> = opt_num(f.get(2).copied().unwrap_or(""))?;
    if total.is_none() || in_view.is_none() {
        return Err(Malformed);
    }
    s.sats_in_view = in_view;
    for group in f.get(3..).unwrap_or(&[]).chunks(4) {
        if let [prn, _, _, snr] = group
            && let Some(prn) = opt_num::<u16>(prn)?
        {
            let snr = opt_num::<u8>(snr)?;
            s.sats.push(Sat { prn, snr_dbhz: snr });
        }
    }
    Ok(())
}

/// RMC/GLL status plus the NMEA 2.3 mode indicator. (The NMEA 4.1
/// navigational status that follows is about navigation safety, and `V` there
/// means "not provided": u-blox M9 and Quectel send it with every good fix.)
fn status_fix(status: &str, mode: &str) -> Option<bool> {
    let mode_ok = !matches!(mode, "N" | "E" | "M" | "S");
    match status {
        "A" => Some(mode_ok),
        "V" => Some(false),
        _ => None,
    }
}

/// `hhmmss` or `hhmmss.fff...`; empty means "no time yet".
pub(crate) fn parse_time(field: &str) -> Result<Option<TimeOfDay>, Malformed> {
    if field.is_empty() {
        return Ok(None);
    }
    let b = field.as_bytes();
    if b.len() < 6 || !b[..6].iter().all(u8::is_ascii_digit) {
        return Err(Malformed);
    }
    let two = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
    let (hour, minute, second) = (two(0), two(2), two(4));
    let mut millis = 0u16;
    match &b[6..] {
        [] => {}
        [b'.', frac @ ..] if frac.iter().all(u8::is_ascii_digit) => {
            for (i, &d) in frac.iter().take(3).enumerate() {
                millis += u16::from(d - b'0') * [100, 10, 1][i];
            }
        }
        _ => return Err(Malformed),
    }
    if hour > 23 || minute > 59 || second > 60 || (second == 60 && (hour != 23 || minute != 59)) {
        return Err(Malformed);
    }
    Ok(Some(TimeOfDay {
        hour,
        minute,
        second,
        millis,
    }))
}

/// GSV's SNR field (0..99 dB-Hz) as a whole number; out-of-range or NaN reads as 0..99.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "clamped to 0..=99 first (NaN casts to 0), which fits u8"
)]
fn snr_dbhz(x: f32) -> u8 {
    x.clamp(0.0, 99.0) as u8
}

fn parse_ddmmyy(field: &str) -> DateField {
    let b = field.as_bytes();
    if b.is_empty() {
        return DateField::Absent;
    }
    if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
        return DateField::Bad;
    }
    let two = |i: usize| u32::from(b[i] - b'0') * 10 + u32::from(b[i + 1] - b'0');
    let year = i32::from(b[4] - b'0') * 10 + i32::from(b[5] - b'0');
    ymd(year, two(2), two(0), true)
}

fn parse_zda_date(day: &str, month: &str, year: &str) -> DateField {
    if day.is_empty() && month.is_empty() && year.is_empty() {
        return DateField::Absent;
    }
    let num = |s: &str| {
        (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    match (num(day), num(month), num(year)) {
        (Some(d), Some(m), Some(y)) => {
            i32::try_from(y).map_or(DateField::Bad, |y| ymd(y, m, d, year.len() <= 2))
        }
        _ => DateField::Bad,
    }
}

fn ymd(year: i32, month: u32, day: u32, two_digit_year: bool) -> DateField {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return DateField::Bad;
    }
    DateField::Ymd {
        year,
        month,
        day,
        two_digit_year,
    }
}

fn opt_num<T: std::str::FromStr>(field: &str) -> Result<Option<T>, Malformed> {
    if field.is_empty() {
        Ok(None)
    } else {
        field.parse().map(Some).map_err(|_| Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Sentence<'_> {
        let line = line.trim_start_matches('$').as_bytes();
        let Checked::Good { body, .. } = check(line) else {
            panic!("bad checksum in test line");
        };
        let mut buf = String::new();
        parse(body, &mut buf).expect("well formed")
    }

    #[test]
    fn checksum_good_bad_missing_and_lowercase() {
        assert!(matches!(
            check(b"GPZDA,202640.000,13,04,2015,,*54"),
            Checked::Good { .. }
        ));
        assert!(matches!(
            check(b"GPZDA,202640.000,13,04,2015,,*54  "),
            Checked::Good { .. }
        ));
        assert_eq!(
            check(b"GPZDA,202640.000,13,04,2015,,*55"),
            Checked::BadChecksum
        );
        assert_eq!(
            check(b"GPZDA,202640.000,13,04,2015,,*5"),
            Checked::BadChecksum
        );
        assert_eq!(check(b"GPZDA,202640.000,13,04,2015,,"), Checked::Missing);
        assert!(matches!(check(b"A*41"), Checked::Good { .. }));
        assert!(matches!(check(b"J*4a"), Checked::Good { .. }));
    }

    #[test]
    fn rmc_with_fix_date_and_millis() {
        let s = parsed("$GPRMC,202640.000,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,D*73");
        assert_eq!(s.kind, Kind::Rmc);
        assert_eq!(s.talker, Some("GP"));
        assert_eq!(s.fix, Some(true));
        assert_eq!(
            s.time,
            Some(TimeOfDay {
                hour: 20,
                minute: 26,
                second: 40,
                millis: 0
            })
        );
        assert_eq!(
            s.date,
            DateField::Ymd {
                year: 15,
                month: 4,
                day: 13,
                two_digit_year: true
            }
        );
    }

    #[test]
    fn fractions_parse_exactly() {
        let t = parse_time("132820.60").expect("ok").expect("some");
        assert_eq!(t.millis, 600);
        assert_eq!(
            parse_time("000231.099").expect("ok").expect("some").millis,
            99
        );
        assert_eq!(parse_time("235960").expect("ok").expect("some").second, 60);
        assert!(parse_time("125960").is_err());
        assert!(parse_time("246000").is_err());
        assert!(parse_time("12a000").is_err());
        assert_eq!(parse_time(""), Ok(None));
    }

    #[test]
    fn gga_quality_and_zero_satellites() {
        let s = parsed(
            "$GPGGA,202640.000,4404.1306,N,12118.8515,W,2,10,0.98,1127.7,M,-19.6,M,0000,0000*6C",
        );
        assert_eq!(
            (s.fix, s.sats_used, s.hdop),
            (Some(true), Some(10), Some(0.98))
        );
        let s = parsed(
            "$GPGGA,194050.00,4221.8237733,N,07101.9411707,W,1,00,3.3,10.835,M,-33.320,M,,*62",
        );
        assert_eq!(
            s.fix, None,
            "quality 1 with no satellites neither claims nor denies a fix"
        );
        let s = parsed("$GPGGA,,,,,,0,,,,M,,M,,*66");
        assert_eq!((s.time, s.fix), (None, Some(false)));
    }

    #[test]
    fn bad_rmc_date_is_flagged() {
        let s = parsed("$GPRMC,000231.099,A,4829.0005,N,00022.0015,E,0.15,212.28,2208-1,,,A*73");
        assert_eq!(s.date, DateField::Bad);
    }

    #[test]
    fn gsa_and_gsv() {
        let s = parsed("$GPGSA,A,3,20,16,09,03,07,10,23,19,27,30,,,1.64,0.98,1.31*05");
        assert_eq!(s.fix_mode, Some(FixMode::Fix3D));
        assert_eq!(s.used_prns.len(), 10);
        let s = parsed("$GPGSV,3,1,12,09,88,089,31,07,60,281,44,23,55,123,33,10,44,274,32*78");
        assert_eq!(s.sats_in_view, Some(12));
        assert_eq!(s.sats.len(), 4);
        assert_eq!(
            s.sats[1],
            Sat {
                prn: 7,
                snr_dbhz: Some(44)
            }
        );
    }

    #[test]
    fn proprietary_and_foreign_talkers_are_listed_only() {
        let s = parsed("$PGRME,15.0,M,45.0,M,25.0,M*1C");
        assert_eq!((s.kind, s.name), (Kind::Other, "PGRME"));
        let s = parsed("$HCHDG,98.3,0.0,E,12.6,W*57");
        assert_eq!(s.kind, Kind::Other);
    }
}
