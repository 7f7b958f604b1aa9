//! Behaviour of the sans-IO core on hand-made streams: time labels, validity,
//! leap seconds, rollover, burst timing and hostile input.

use chrono::NaiveDate;
use skytime_gnss::capture::iso_millis;
use skytime_gnss::{Epoch, EpochAssembler, FixMode, ParserConfig, build_date, ubx};
use skytime_timebase::{Arrival, LeapChange, MonoNanos, UnixNanos};

/// A sentence with its checksum and CRLF.
fn nmea(body: &str) -> String {
    let sum = body.bytes().fold(0u8, |c, b| c ^ b);
    format!("${body}*{sum:02X}\r\n")
}

fn at_ms(ms: i64) -> Arrival {
    Arrival {
        monotonic: MonoNanos(ms * 1_000_000),
        realtime: UnixNanos(1_700_000_000_000_000_000 + ms * 1_000_000),
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

/// An assembler for historical test dates (pivot 2000-01-01).
fn historic() -> EpochAssembler {
    EpochAssembler::with_pivot(&ParserConfig::default(), date(2000, 1, 1))
}

fn run(asm: &mut EpochAssembler, text: &str) -> Vec<Epoch> {
    let mut out = Vec::new();
    asm.push(text.as_bytes(), Arrival::default(), &mut out);
    asm.finish(&mut out);
    out
}

fn rmc(hms: &str, status: &str, ddmmyy: &str) -> String {
    nmea(&format!(
        "GPRMC,{hms},{status},4404.1306,N,12118.8515,W,0.03,225.97,{ddmmyy},,,A"
    ))
}

fn gga(hms: &str, quality: u8, sats: u8) -> String {
    nmea(&format!(
        "GPGGA,{hms},4404.1306,N,12118.8515,W,{quality},{sats:02},0.98,1127.7,M,-19.6,M,,"
    ))
}

fn zda(hms: &str, d: u32, m: u32, y: i32) -> String {
    nmea(&format!("GPZDA,{hms},{d:02},{m:02},{y},,"))
}

#[test]
fn leap_second_is_labelled_2359_60_and_followed_by_midnight() {
    let mut asm = historic();
    let text = [
        rmc("235959", "A", "311216"),
        zda("235959", 31, 12, 2016),
        rmc("235960", "A", "311216"),
        zda("235960", 31, 12, 2016),
        rmc("000000", "A", "010117"),
        zda("000000", 1, 1, 2017),
    ]
    .concat();
    let out = run(&mut asm, &text);
    let times: Vec<String> = out.iter().map(iso_millis).collect();
    assert_eq!(
        times,
        [
            "2016-12-31T23:59:59.000Z",
            "2016-12-31T23:59:60.000Z",
            "2017-01-01T00:00:00.000Z"
        ]
    );
    assert!(out.iter().all(|e| e.valid));
    assert!(out[1].utc.is_leap_second());
}

#[test]
fn leap_second_in_mid_month_is_not_valid() {
    let mut asm = historic();
    let out = run(&mut asm, &rmc("235960", "A", "151216"));
    assert_eq!(out.len(), 1);
    assert!(!out[0].valid, "23:59:60 on 15 December cannot be real");
}

#[test]
fn gga_only_seconds_take_the_date_from_rmc_and_cross_midnight() {
    let mut asm = historic();
    let text = [
        rmc("235959", "A", "300615"),
        gga("000000", 1, 8),
        gga("000001", 1, 8),
    ]
    .concat();
    let out = run(&mut asm, &text);
    let times: Vec<String> = out.iter().map(iso_millis).collect();
    assert_eq!(
        times,
        [
            "2015-06-30T23:59:59.000Z",
            "2015-07-01T00:00:00.000Z",
            "2015-07-01T00:00:01.000Z"
        ]
    );
}

#[test]
fn validity_needs_a_real_fix_and_nothing_saying_otherwise() {
    let mut asm = historic();
    let text = [
        rmc("120000", "V", "130415"),                                 // RMC void
        [rmc("120001", "A", "130415"), gga("120001", 0, 0)].concat(), // GGA says no fix
        [rmc("120002", "A", "130415"), gga("120002", 1, 0)].concat(), // 0 satellites: RMC decides
        [gga("120003", 6, 5), zda("120003", 13, 4, 2015)].concat(),   // dead reckoning
        zda("120004", 13, 4, 2015),                                   // time only, no fix claim
        [
            rmc("120005", "A", "130415"),
            nmea("GPGSA,A,1,,,,,,,,,,,,,,,"),
        ]
        .concat(), // GSA no fix
        [rmc("120006", "A", "130415"), gga("120006", 2, 9)].concat(), // good
        nmea("GPRMC,120007,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,E"), // estimated
    ]
    .concat();
    let out = run(&mut asm, &text);
    let valid: Vec<bool> = out.iter().map(|e| e.valid).collect();
    assert_eq!(
        valid,
        [false, false, true, false, false, false, true, false]
    );
    assert_eq!(out[6].sats_used, Some(9));
    assert_eq!(out[5].fix_mode, FixMode::NoFix);
}

#[test]
fn conflicting_or_broken_dates_make_the_second_invalid() {
    let mut asm = historic();
    let text = [
        [rmc("120000", "A", "130415"), zda("120000", 14, 4, 2015)].concat(),
        nmea("GPRMC,120001,A,4829.0005,N,00022.0015,E,0.15,212.28,2208-1,,,A"),
    ]
    .concat();
    let out = run(&mut asm, &text);
    assert!(!out[0].valid, "RMC and ZDA disagree on the date");
    assert_eq!(out.len(), 2, "the bad-date second still has a carried date");
    assert!(!out[1].valid);
}

#[test]
fn two_digit_years_and_week_rollover_against_the_pivot() {
    // A receiver with the 2019 rollover bug says 1999-08-22 on 2019-04-07.
    let mut asm = EpochAssembler::with_pivot(&ParserConfig::default(), date(2019, 1, 1));
    let out = run(&mut asm, &rmc("000231.42", "A", "220899"));
    assert_eq!(iso_millis(&out[0]), "2019-04-07T00:02:31.420Z");
    assert_eq!(asm.stats().rollover_corrections, 1);

    // 2-digit years: 80..99 are 19xx, 00..79 are 20xx (no correction needed here).
    let mut asm = historic();
    let out = run(&mut asm, &rmc("120000", "A", "010179"));
    assert_eq!(out[0].utc.date(), date(2079, 1, 1));

    // A live assembler never uses a pivot before the build date.
    let config = ParserConfig {
        rollover_pivot: Some(date(2001, 1, 1)),
        ..ParserConfig::default()
    };
    let asm = EpochAssembler::new(&config);
    assert_eq!(asm.pivot(), build_date());
}

#[test]
fn live_pivot_moves_pre_build_dates_forward_by_1024_weeks() {
    let mut asm = EpochAssembler::new(&ParserConfig::default());
    let b = build_date();
    let old = b - chrono::Days::new(1024 * 7) + chrono::Days::new(3);
    let ddmmyy = old.format("%d%m%y").to_string();
    let out = run(&mut asm, &rmc("120000", "A", &ddmmyy));
    assert_eq!(out[0].utc.date(), b + chrono::Days::new(3));
}

#[test]
fn checksums_bad_and_missing() {
    let mut asm = historic();
    let good = rmc("120000", "A", "130415");
    let bad = good.replace("A,4404", "A,4405"); // same checksum, different body
    let missing = "$GPRMC,120001,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,A\r\n";
    let out = run(&mut asm, &[bad, missing.to_owned()].concat());
    assert!(out.is_empty());
    assert_eq!(asm.stats().checksum_errors, 1);
    assert_eq!(asm.stats().missing_checksums, 1);

    let config = ParserConfig {
        allow_missing_checksum: true,
        ..ParserConfig::default()
    };
    let mut asm = EpochAssembler::with_pivot(&config, date(2000, 1, 1));
    let out = run(&mut asm, missing);
    assert_eq!(out.len(), 1);
    assert!(out[0].valid);
}

#[test]
fn tolerates_dollar_dollar_cr_only_mid_sentence_start_long_lines_and_binary() {
    let mut asm = historic();
    let mut bytes = b"4.1306,N,12118.8515,W,0.03*1F\r\n".to_vec(); // started mid-sentence
    bytes.extend_from_slice(rmc("120000", "A", "130415").replace('$', "$$").as_bytes());
    bytes.extend(std::iter::repeat_n(b'Z', 1500)); // 1.5 KiB line of junk
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(&ubx::encode_timels(18, LeapChange::None, 0));
    bytes.extend_from_slice(&[0xA0, 0xA2, 0x00, 0x01, 0x29, 0x00, 0x29, 0xB0, 0xB3]); // SiRF
    bytes.extend_from_slice(
        rmc("120001", "A", "130415")
            .replace("\r\n", "\r")
            .as_bytes(),
    );
    bytes.extend_from_slice(b"$GPGGA,1200"); // truncated
    bytes.extend_from_slice(
        rmc("120002", "A", "130415")
            .replace("\r\n", "\n")
            .as_bytes(),
    );
    let mut out = Vec::new();
    asm.push(&bytes, Arrival::default(), &mut out);
    asm.finish(&mut out);
    let times: Vec<String> = out.iter().map(iso_millis).collect();
    assert_eq!(
        times,
        [
            "2015-04-13T12:00:00.000Z",
            "2015-04-13T12:00:01.000Z",
            "2015-04-13T12:00:02.000Z"
        ]
    );
    assert!(out.iter().all(|e| e.valid));
    let s = asm.stats();
    assert_eq!((s.ubx_frames, s.sirf_frames, s.truncated_lines), (1, 1, 1));
    assert!(s.garbage_bytes >= 1500);
}

#[test]
fn epoch_closes_after_the_idle_gap_with_first_and_last_byte_times() {
    let mut asm = EpochAssembler::with_pivot(&ParserConfig::default(), date(2000, 1, 1));
    let mut out = Vec::new();
    let r = rmc("120000", "A", "130415");
    let g = gga("120000", 1, 7);
    let (r1, r2) = r.split_at(20);
    asm.push(r1.as_bytes(), at_ms(100), &mut out);
    asm.push(r2.as_bytes(), at_ms(160), &mut out);
    asm.push(g.as_bytes(), at_ms(230), &mut out);
    asm.flush_idle(at_ms(260), &mut out);
    assert!(out.is_empty(), "30 ms of quiet is not the end of a burst");
    asm.flush_idle(at_ms(281), &mut out);
    assert_eq!(out.len(), 1, "50 ms of quiet ends it");
    assert_eq!(out[0].first_byte, at_ms(100));
    assert_eq!(out[0].last_byte, at_ms(230));
    assert_eq!(out[0].sentences, ["RMC", "GGA"]);
    assert!(out[0].valid);

    // A late sentence of the same second (burst split by a long pause) makes no second epoch.
    asm.push(zda("120000", 13, 4, 2015).as_bytes(), at_ms(400), &mut out);
    asm.flush_idle(at_ms(500), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(asm.stats().late_sentences, 1);
}

#[test]
fn an_unterminated_last_sentence_is_taken_when_the_line_pauses() {
    let mut asm = historic();
    let mut out = Vec::new();
    let r = rmc("120000", "A", "130415");
    asm.push(r.trim_end().as_bytes(), at_ms(0), &mut out);
    asm.flush_idle(at_ms(100), &mut out);
    assert_eq!(out.len(), 1);
    assert!(out[0].valid);
}

#[test]
fn nav_timels_announces_an_insert_for_the_end_of_the_month() {
    let mut asm = historic();
    let mut bytes = Vec::new();
    // 2016-12-31T23:00:00 is 3600 s (plus the leap itself) before the event.
    bytes.extend_from_slice(&ubx::encode_timels(17, LeapChange::Insert, 3600));
    for hms in ["230000", "235959", "235960"] {
        bytes.extend_from_slice(rmc(hms, "A", "311216").as_bytes());
    }
    bytes.extend_from_slice(rmc("000000", "A", "010117").as_bytes());
    let mut out = Vec::new();
    asm.push(&bytes, Arrival::default(), &mut out);
    asm.finish(&mut out);
    let leaps: Vec<LeapChange> = out.iter().map(|e| e.leap).collect();
    assert_eq!(
        leaps,
        [
            LeapChange::Insert,
            LeapChange::Insert,
            LeapChange::Insert,
            LeapChange::None
        ]
    );
    assert_eq!(asm.stats().leap_reports, 1);
}

#[test]
fn nav_timels_for_a_later_month_is_not_announced_yet() {
    let mut asm = historic();
    let mut bytes = ubx::encode_timels(17, LeapChange::Insert, 40 * 86_400);
    bytes.extend_from_slice(rmc("000000", "A", "221116").as_bytes());
    let mut out = Vec::new();
    asm.push(&bytes, Arrival::default(), &mut out);
    asm.finish(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].leap, LeapChange::None);
}

#[test]
fn satellites_from_gsv_and_gsa() {
    let mut asm = historic();
    let text = [
        rmc("202643.000", "A", "130415"),
        gga("202643.000", 2, 3),
        nmea("GPGSA,A,3,09,07,23,,,,,,,,,,1.64,0.98,1.31"),
        nmea("GPGSV,1,1,04,09,88,089,31,07,60,281,44,23,55,123,33,10,44,274,"),
        nmea("GLGSV,1,1,02,74,52,302,,82,25,034,33"),
    ]
    .concat();
    let out = run(&mut asm, &text);
    let e = &out[0];
    assert_eq!(e.sats_visible, Some(6));
    assert_eq!(e.satellites.len(), 6);
    assert_eq!(e.satellites.iter().filter(|s| s.used).count(), 3);
    assert_eq!(e.fix_mode, FixMode::Fix3D);
    assert_eq!(e.hdop, Some(0.98));
}

#[test]
fn tim_tp_between_sentences_is_reported_with_its_arrival() {
    use skytime_gnss::ReceiverReport;
    use skytime_gnss::ubx::messages::{TimeBase, TimePulseReport, encode_tim_tp};
    let tp = TimePulseReport {
        tow_ms: 345_601_000,
        tow_sub_ms: 0,
        q_err_ps: 8123,
        week: 2400,
        time_base: TimeBase::Utc,
        utc_available: true,
        raim: 2,
        q_err_valid: true,
        time_ref_gnss: 0,
        utc_standard: 3,
    };
    let mut asm = historic();
    let mut out = Vec::new();
    asm.push(rmc("120000", "A", "130415").as_bytes(), at_ms(0), &mut out);
    asm.push(&encode_tim_tp(&tp), at_ms(40), &mut out);
    asm.push(
        rmc("120001", "A", "130415").as_bytes(),
        at_ms(1000),
        &mut out,
    );
    asm.finish(&mut out);
    assert_eq!(out.len(), 2, "the binary frame does not disturb the epochs");
    let reports = asm.take_reports();
    assert_eq!(
        reports,
        [ReceiverReport::TimePulse {
            report: tp,
            arrival: at_ms(40)
        }]
    );
}
