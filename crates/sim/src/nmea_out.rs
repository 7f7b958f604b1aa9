//! What a GNSS receiver writes on its serial line each second: NMEA 0183
//! sentences (RMC, GGA, GSA, GSV, ZDA) with correct checksums, 23:59:60 when a
//! leap second is inserted, and the u-blox `UBX-NAV-TIMELS` frame that
//! announces a leap second in the hours before it (NMEA has no sentence for it).
//!
//! Both the simulated-time runner and the real-time simulated hat use these
//! bytes, so the real `skytime_gnss` parser is what reads them.

use chrono::Datelike;
use skytime_timebase::{LeapChange, UtcSecond};
use std::fmt::Write as _;

/// Which talker the receiver uses for its time-bearing sentences.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Talker {
    /// GPS only (MTK3339-style hats).
    #[default]
    Gp,
    /// Multi-constellation (u-blox M8 and later).
    Gn,
}

impl Talker {
    fn as_str(self) -> &'static str {
        match self {
            Talker::Gp => "GP",
            Talker::Gn => "GN",
        }
    }
}

/// The receiver's fix, as its sentences report it.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct FixInfo {
    /// A real fix (RMC status A, GGA quality 1); false gives status V, quality 0.
    pub valid: bool,
    /// Satellites used in the fix.
    pub sats_used: u8,
    /// Satellites in view (one GSV sentence per four).
    pub sats_visible: u8,
    /// Horizontal dilution of precision.
    pub hdop: f32,
    /// Antenna latitude, degrees north.
    pub latitude_deg: f64,
    /// Antenna longitude, degrees east.
    pub longitude_deg: f64,
    /// Antenna altitude above mean sea level, metres.
    pub altitude_m: f64,
    /// Talker of RMC/GGA/GSA/ZDA.
    pub talker: Talker,
}

impl FixInfo {
    /// A healthy 3-D fix on a rooftop antenna.
    pub fn good() -> Self {
        Self {
            valid: true,
            sats_used: 7,
            sats_visible: 8,
            hdop: 0.95,
            latitude_deg: 52.118_72,
            longitude_deg: 5.180_67,
            altitude_m: 14.2,
            talker: Talker::Gp,
        }
    }

    /// No fix: the receiver talks but has nothing to say (antenna unplugged).
    pub fn none() -> Self {
        Self {
            valid: false,
            sats_used: 0,
            sats_visible: 0,
            hdop: 99.99,
            ..Self::good()
        }
    }
}

impl Default for FixInfo {
    fn default() -> Self {
        Self::good()
    }
}

/// GPS − UTC in seconds before any leap second the simulator inserts (since 2017).
pub const GPS_UTC_OFFSET_S: i8 = 18;

/// Appends `$body*CS\r\n`.
fn sentence(out: &mut String, body: &str) {
    let cs = body.bytes().fold(0u8, |acc, b| acc ^ b);
    let _ = write!(out, "${body}*{cs:02X}\r\n");
}

/// `ddmm.mmmm,N` / `dddmm.mmmm,E` for NMEA.
fn lat_lon(lat: f64, lon: f64) -> String {
    let part = |v: f64, deg_width: usize, pos: char, neg: char| {
        let hemi = if v < 0.0 { neg } else { pos };
        let v = v.abs();
        let deg = v.trunc();
        let min = (v - deg) * 60.0;
        // `deg` is whole already: `.0` prints it without a cast or rounding.
        format!("{deg:0deg_width$.0}{min:07.4},{hemi}")
    };
    format!("{},{}", part(lat, 2, 'N', 'S'), part(lon, 3, 'E', 'W'))
}

/// A fixed sky: PRN, elevation, azimuth for up to 32 satellites.
fn satellite(i: u8) -> (u8, u8, u16) {
    const PRNS: [u8; 16] = [2, 5, 7, 9, 13, 15, 16, 18, 20, 21, 25, 26, 27, 29, 30, 31];
    let prn = PRNS[usize::from(i) % PRNS.len()] + 32 * (i / 16);
    let elevation = 15 + (i * 23) % 70;
    let azimuth = (u16::from(i) * 47 + 20) % 360;
    (prn, elevation, azimuth)
}

/// What a u-blox M8T prints at start-up (`$GPTXT`): the chip on the hardware
/// line, then the firmware; the reader identifies the receiver from them.
pub fn ublox_startup_banner() -> Vec<u8> {
    let mut out = String::new();
    for text in [
        "u-blox ag - www.u-blox.com",
        "HW UBX-M8030 00080000",
        "ROM CORE 3.01 (107888)",
        "FWVER=TIM 1.10",
        "PROTVER=22.00",
    ] {
        sentence(&mut out, &format!("GPTXT,01,01,02,{text}"));
    }
    out.into_bytes()
}

/// One second of receiver output labelling `label`: RMC, GGA, GSA, GSV and ZDA
/// with correct checksums (about 300–400 bytes), 23:59:60 when the label is a
/// leap second, and a `UBX-NAV-TIMELS` frame first when `leap` is not `None`.
pub fn nmea_burst(label: UtcSecond, fix: &FixInfo, leap: LeapChange) -> Vec<u8> {
    let mut out = String::with_capacity(420);
    let (h, m, s) = label.hms();
    let date = label.date();
    let t = format!("{h:02}{m:02}{s:02}.00");
    let ddmmyy = format!(
        "{:02}{:02}{:02}",
        date.day(),
        date.month(),
        date.year() % 100
    );
    let talk = fix.talker.as_str();
    let pos = lat_lon(fix.latitude_deg, fix.longitude_deg);
    let used = if fix.valid { fix.sats_used.min(12) } else { 0 };

    if fix.valid {
        sentence(
            &mut out,
            &format!("{talk}RMC,{t},A,{pos},0.01,0.00,{ddmmyy},,,A"),
        );
        sentence(
            &mut out,
            &format!(
                "{talk}GGA,{t},{pos},1,{used:02},{:.2},{:.1},M,46.9,M,,",
                fix.hdop, fix.altitude_m
            ),
        );
    } else {
        sentence(&mut out, &format!("{talk}RMC,{t},V,,,,,,,{ddmmyy},,,N"));
        sentence(&mut out, &format!("{talk}GGA,{t},,,,,0,00,99.99,,,,,,"));
    }

    let mut gsa = format!("{talk}GSA,A,{}", if fix.valid { 3 } else { 1 });
    for i in 0..12u8 {
        if i < used {
            let _ = write!(gsa, ",{:02}", satellite(i).0);
        } else {
            gsa.push(',');
        }
    }
    if fix.valid {
        let pdop = fix.hdop * 1.7;
        let vdop = fix.hdop * 1.4;
        let _ = write!(gsa, ",{pdop:.2},{:.2},{vdop:.2}", fix.hdop);
    } else {
        gsa.push_str(",99.99,99.99,99.99");
    }
    sentence(&mut out, &gsa);

    let visible = fix.sats_visible.min(32);
    let pages = visible.div_ceil(4).max(1);
    for page in 0..pages {
        let mut gsv = format!("GPGSV,{pages},{},{visible:02}", page + 1);
        for i in (page * 4)..((page * 4 + 4).min(visible)) {
            let (prn, el, az) = satellite(i);
            let snr = if i < used {
                30 + (i * 7) % 18
            } else {
                18 + (i * 5) % 10
            };
            let _ = write!(gsv, ",{prn:02},{el:02},{az:03},{snr:02}");
        }
        sentence(&mut out, &gsv);
    }

    sentence(
        &mut out,
        &format!(
            "{talk}ZDA,{t},{:02},{:02},{:04},00,00",
            date.day(),
            date.month(),
            date.year()
        ),
    );

    let mut bytes = Vec::with_capacity(out.len() + 32);
    if leap != LeapChange::None {
        bytes.extend_from_slice(&ubx_nav_timels(label, leap));
    }
    bytes.extend_from_slice(out.as_bytes());
    bytes
}

/// GPS epoch (1980-01-06T00:00:00Z) in POSIX seconds.
const GPS_EPOCH_UNIX_S: i64 = 315_964_800;

/// A `UBX-NAV-TIMELS` frame (class 0x01, id 0x26, 24-byte payload) announcing
/// `leap` at the end of the month of `label`, as a u-blox M8 reports it after
/// decoding the GPS almanac's leap-second fields.
pub fn ubx_nav_timels(label: UtcSecond, leap: LeapChange) -> Vec<u8> {
    let date = label.date();
    // The last day of the label's month: leap seconds happen at its end.
    let mut last = date;
    while let Some(next) = last.succ_opt() {
        if next.month() != date.month() {
            break;
        }
        last = next;
    }
    let midnight = last
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(0, |t| t.and_utc().timestamp());
    let time_to_event = midnight - label.unix_secs() - i64::from(label.is_leap_second());
    let ls_change: i8 = match leap {
        LeapChange::Insert => 1,
        LeapChange::Delete => -1,
        LeapChange::None => 0,
    };
    let gps_days = (last
        .and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp())
        - GPS_EPOCH_UNIX_S)
        .div_euclid(86_400);
    let week = u16::try_from(gps_days / 7).unwrap_or(u16::MAX);
    // 1 = Sunday, as the GPS ICD counts.
    let day_of_week = u16::try_from(gps_days.rem_euclid(7) + 1).expect("1..=7");
    let tow_ms = u32::try_from(
        (label.unix_secs() - GPS_EPOCH_UNIX_S + i64::from(GPS_UTC_OFFSET_S)).rem_euclid(604_800)
            * 1000,
    )
    .expect("a week of milliseconds fits u32");

    let mut payload = Vec::with_capacity(24);
    payload.extend_from_slice(&tow_ms.to_le_bytes()); // iTOW
    payload.push(0); // version
    payload.extend_from_slice(&[0, 0, 0]); // reserved1
    payload.push(2); // srcOfCurrLs: GPS
    payload.push(GPS_UTC_OFFSET_S as u8); // currLs
    payload.push(2); // srcOfLsChange: GPS
    payload.push(ls_change.cast_unsigned()); // lsChange
    payload.extend_from_slice(&(i32::try_from(time_to_event).unwrap_or(i32::MAX)).to_le_bytes());
    payload.extend_from_slice(&week.to_le_bytes()); // dateOfLsGpsWn
    payload.extend_from_slice(&day_of_week.to_le_bytes()); // dateOfLsGpsDn
    payload.extend_from_slice(&[0, 0, 0]); // reserved2
    payload.push(0x03); // valid: validCurrLs | validTimeToLsEvent
    ubx_frame(0x01, 0x26, &payload)
}

/// Wraps a payload in UBX sync chars, class, id, length and the 8-bit Fletcher checksum.
pub fn ubx_frame(class: u8, id: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    let mut frame = vec![0xB5, 0x62, class, id];
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(payload);
    let (mut a, mut b) = (0u8, 0u8);
    for &byte in &frame[2..] {
        a = a.wrapping_add(byte);
        b = b.wrapping_add(a);
    }
    frame.push(a);
    frame.push(b);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn label(y: i32, mo: u32, d: u32, h: u8, mi: u8, s: u8) -> UtcSecond {
        let date = NaiveDate::from_ymd_opt(y, mo, d).expect("date");
        UtcSecond::new(date, h, mi, s).expect("label")
    }

    fn sentences(bytes: &[u8]) -> Vec<String> {
        let text = std::str::from_utf8(bytes).expect("ascii");
        text.split("\r\n")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_sentence_has_a_correct_checksum_and_crlf() {
        for fix in [FixInfo::good(), FixInfo::none()] {
            let bytes = nmea_burst(label(2026, 3, 1, 12, 34, 56), &fix, LeapChange::None);
            assert!(bytes.ends_with(b"\r\n"));
            for s in sentences(&bytes) {
                let (body, cs) = s[1..].split_once('*').expect("has *");
                let want = body.bytes().fold(0u8, |a, b| a ^ b);
                assert_eq!(u8::from_str_radix(cs, 16).expect("hex"), want, "{s}");
                assert!(s.len() <= 82, "NMEA max length: {s}");
            }
        }
    }

    #[test]
    fn burst_fits_a_9600_baud_second_comfortably() {
        let n = nmea_burst(
            label(2026, 3, 1, 12, 34, 56),
            &FixInfo::good(),
            LeapChange::None,
        )
        .len();
        assert!((280..=420).contains(&n), "{n} bytes");
    }

    #[test]
    fn sentences_carry_the_label_and_fix_state() {
        let good = sentences(&nmea_burst(
            label(2026, 3, 1, 12, 34, 56),
            &FixInfo::good(),
            LeapChange::None,
        ));
        let kinds: Vec<&str> = good.iter().map(|s| &s[3..6]).collect();
        assert_eq!(kinds, ["RMC", "GGA", "GSA", "GSV", "GSV", "ZDA"]);
        assert!(
            good[0].starts_with("$GPRMC,123456.00,A,5207.1232,N,00510.8402,E"),
            "{}",
            good[0]
        );
        assert!(good[0].contains(",010326,"), "{}", good[0]);
        assert!(
            good[5].starts_with("$GPZDA,123456.00,01,03,2026,"),
            "{}",
            good[5]
        );
        let bad = sentences(&nmea_burst(
            label(2026, 3, 1, 12, 34, 56),
            &FixInfo::none(),
            LeapChange::None,
        ));
        assert!(bad[0].starts_with("$GPRMC,123456.00,V,"));
        assert!(bad[1].contains(",0,00,"));
    }

    #[test]
    fn leap_second_label_prints_as_60() {
        let s = sentences(&nmea_burst(
            label(2016, 12, 31, 23, 59, 60),
            &FixInfo {
                talker: Talker::Gn,
                ..FixInfo::good()
            },
            LeapChange::None,
        ));
        assert!(s[0].starts_with("$GNRMC,235960.00,A"), "{}", s[0]);
        assert!(
            s.last()
                .expect("zda")
                .starts_with("$GNZDA,235960.00,31,12,2016")
        );
    }

    #[test]
    fn timels_frame_is_well_formed_and_counts_down_to_midnight() {
        let bytes = nmea_burst(
            label(2016, 12, 31, 22, 0, 0),
            &FixInfo::good(),
            LeapChange::Insert,
        );
        let f = &bytes[..32];
        assert_eq!(&f[..6], &[0xB5, 0x62, 0x01, 0x26, 24, 0]);
        let (mut a, mut b) = (0u8, 0u8);
        for &x in &f[2..30] {
            a = a.wrapping_add(x);
            b = b.wrapping_add(a);
        }
        assert_eq!((f[30], f[31]), (a, b));
        let p = &f[6..30];
        assert_eq!(p[9].cast_signed(), GPS_UTC_OFFSET_S, "currLs");
        assert_eq!(p[11].cast_signed(), 1, "lsChange");
        assert_eq!(
            i32::from_le_bytes([p[12], p[13], p[14], p[15]]),
            7200,
            "timeToLsEvent"
        );
        // 2016-12-31 is GPS week 1929, a Saturday (day 7).
        assert_eq!(u16::from_le_bytes([p[16], p[17]]), 1929);
        assert_eq!(u16::from_le_bytes([p[18], p[19]]), 7);
        assert_eq!(p[23], 3);
        assert!(bytes[32..].starts_with(b"$GPRMC"));
    }

    /// Parses bursts with the real `skytime_gnss` assembler, one burst per second.
    fn parse(bursts: &[Vec<u8>], pivot: NaiveDate) -> Vec<skytime_gnss::Epoch> {
        let mut asm =
            skytime_gnss::EpochAssembler::with_pivot(&skytime_gnss::ParserConfig::default(), pivot);
        let mut out = Vec::new();
        for (i, b) in bursts.iter().enumerate() {
            let t = skytime_timebase::Arrival {
                monotonic: skytime_timebase::MonoNanos(i64::try_from(i).unwrap() * 1_000_000_000),
                realtime: skytime_timebase::UnixNanos(i64::try_from(i).unwrap() * 1_000_000_000),
            };
            asm.push(b, t, &mut out);
            let idle = skytime_timebase::Arrival {
                monotonic: t.monotonic.add_nanos(500_000_000),
                realtime: t.realtime.add_nanos(500_000_000),
            };
            asm.flush_idle(idle, &mut out);
        }
        out
    }

    #[test]
    fn the_real_parser_reads_back_label_fix_and_leap() {
        let before = label(2016, 12, 31, 23, 59, 59);
        let leap = before.next(LeapChange::Insert);
        let after = leap.next(LeapChange::None);
        let gn = FixInfo {
            talker: Talker::Gn,
            ..FixInfo::good()
        };
        let bursts = [
            nmea_burst(before, &gn, LeapChange::Insert),
            nmea_burst(leap, &gn, LeapChange::Insert),
            nmea_burst(after, &FixInfo::none(), LeapChange::None),
        ];
        let epochs = parse(&bursts, NaiveDate::from_ymd_opt(2016, 12, 1).expect("date"));
        assert_eq!(epochs.len(), 3);
        assert_eq!(epochs[0].utc, before);
        assert_eq!(epochs[1].utc, leap);
        assert!(epochs[1].utc.is_leap_second());
        assert_eq!(epochs[2].utc, after);
        assert!(epochs[0].valid && epochs[1].valid && !epochs[2].valid);
        assert_eq!(epochs[0].sats_used, Some(7));
        assert_eq!(epochs[0].sats_visible, Some(8));
        assert_eq!(epochs[0].talker, "GN");
        assert_eq!(
            epochs[0].leap,
            LeapChange::Insert,
            "UBX-NAV-TIMELS understood"
        );
        // The parser lists each sentence type once.
        assert_eq!(epochs[0].sentences, ["RMC", "GGA", "GSA", "GSV", "ZDA"]);
        assert_eq!(epochs[0].satellites.len(), 8);
    }

    #[test]
    fn timels_agrees_with_the_gnss_decoder() {
        let l = label(2030, 6, 30, 23, 0, 0);
        let frame = ubx_nav_timels(l, LeapChange::Delete);
        let report = skytime_gnss::ubx::decode_timels(&frame[6..30]).expect("decodes");
        assert_eq!(report.change, LeapChange::Delete);
        assert_eq!(report.current_leap_s, Some(GPS_UTC_OFFSET_S));
        assert_eq!(i64::from(report.time_to_event_s), 3600);
    }

    proptest::proptest! {
        #[test]
        fn any_second_round_trips_through_the_real_parser(secs in 1_600_000_000i64..2_500_000_000, valid: bool) {
            let l = UtcSecond::from_unix_secs(secs).expect("label");
            let fix = if valid { FixInfo::good() } else { FixInfo::none() };
            let pivot = l.date().checked_sub_days(chrono::Days::new(30)).expect("date");
            let epochs = parse(&[nmea_burst(l, &fix, LeapChange::None)], pivot);
            proptest::prop_assert_eq!(epochs.len(), 1);
            proptest::prop_assert_eq!(epochs[0].utc, l);
            proptest::prop_assert_eq!(epochs[0].valid, valid);
        }
    }
}
