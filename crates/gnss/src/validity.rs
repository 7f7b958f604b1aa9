//! When a second counts as valid: the rules, matched to what receivers really
//! send. A second labels a PPS edge only if it is [`crate::Epoch::valid`], so
//! each rule trades missed seconds against wrong ones; every rule has a test
//! below, built from a gpsd capture where one shows it, else a synthetic sentence.
//!
//! 1. **Talkers.** Time sentences (RMC, ZDA, GGA, GNS, GLL) and GSA/GSV are
//!    taken from the GNSS talkers `GP GL GA GB BD GQ QZ GI GN` and from the
//!    integrated navigation / instrumentation talkers `IN` and `II`, which relay
//!    a receiver's own fix (gpsd's lexer takes the same). Heading, sounder and
//!    weather talkers (`HC`, `SD`, `WI`...) and proprietary `$P...` sentences
//!    never label a second.
//! 2. **RMC and GLL.** Status `A` is a fix unless the NMEA 2.3 mode says `N`
//!    (not valid), `E` (dead reckoning), `M` (manual) or `S` (simulator); an
//!    absent mode (pre-2.3) is no objection. Status `V` denies a fix. The NMEA
//!    4.1 navigational status after the mode is ignored: `V` there means "not
//!    provided" on u-blox M9 and Quectel receivers with a good fix.
//! 3. **GGA and GNS.** Quality 1–5 (mode `A D P R F` for GNS) with at least one
//!    satellite is a fix; quality 0, 6 (dead reckoning), 7 (manual) or 8
//!    (simulator) denies one. Quality 1–5 with 0 or no satellites is *neither*:
//!    some receivers always report 0 satellites there, so RMC `A` with a valid
//!    mode decides, while a GGA-only second with 0 satellites stays invalid (gpsd
//!    reports no fix for it too).
//! 4. **GSA.** Mode 1 (no fix) denies a fix; modes 2 and 3 say nothing about
//!    validity on their own.
//! 5. **The second.** Valid only when some sentence claims a fix and none of the
//!    same second denies one.
//! 6. **Dates.** A malformed date (`2208-1`) or two sentences disagreeing on the
//!    date make the second invalid.
//! 7. **Leap seconds.** A label of 23:59:60 is valid only on the last day of a month.

#[cfg(test)]
mod tests {
    use crate::{Epoch, EpochAssembler, ParserConfig};
    use chrono::NaiveDate;
    use skytime_timebase::Arrival;

    /// `$body*hh` with its checksum and CRLF.
    fn nmea(body: &str) -> String {
        let sum = body.bytes().fold(0u8, |c, b| c ^ b);
        format!("${body}*{sum:02X}\r\n")
    }

    /// Epochs from a text stream, for historical dates (pivot 2000-01-01).
    fn epochs(text: &str) -> Vec<Epoch> {
        let pivot = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(NaiveDate::MIN);
        let mut asm = EpochAssembler::with_pivot(&ParserConfig::default(), pivot);
        asm.set_date_hint(NaiveDate::from_ymd_opt(2018, 9, 7));
        let mut out = Vec::new();
        asm.push(text.as_bytes(), Arrival::default(), &mut out);
        asm.finish(&mut out);
        out
    }

    fn valid(text: &str) -> Vec<bool> {
        epochs(text).iter().map(|e| e.valid).collect()
    }

    #[test]
    fn rule_1_integrated_navigation_and_every_gnss_talker_label_seconds() {
        // No capture in the corpus has these talkers on time sentences: synthetic.
        for talker in ["IN", "II", "BD", "GQ", "QZ", "GI", "GA", "GB", "GL", "GN"] {
            let text = nmea(&format!(
                "{talker}RMC,120000.00,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,A"
            ));
            let out = epochs(&text);
            assert_eq!(out.len(), 1, "{talker}RMC labels a second");
            assert!(out[0].valid, "{talker}RMC with a fix is valid");
            assert_eq!(out[0].talker, talker);
        }
        let text = nmea("INZDA,120001.00,13,04,2015,00,00");
        assert_eq!(epochs(&text).len(), 1, "INZDA labels a second");
    }

    #[test]
    fn rule_1_heading_and_proprietary_talkers_never_label_a_second() {
        for body in [
            "HCRMC,120000.00,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,A",
            "WIZDA,120000.00,13,04,2015,00,00",
        ] {
            assert!(epochs(&nmea(body)).is_empty(), "{body}");
        }
    }

    #[test]
    fn rule_2_rmc_status_mode_and_ignored_navigational_status() {
        // quectel-l76k-nmea.log: NMEA 4.1 navigational status V on a good fix.
        let quectel =
            "$GNRMC,055234.000,A,4739.71890,N,12219.58362,W,0.00,286.35,050826,,,A,V*13\r\n";
        assert_eq!(valid(quectel), [true]);
        // tomtom-mkII.log: status V.
        assert_eq!(
            valid("$GPRMC,175742,V,5125.8697,N,00524.2288,E,0.0000,0.000,200610,,*3D\r\n"),
            [false]
        );
        // Status A but mode N, E, M or S: synthetic.
        for mode in ["N", "E", "M", "S"] {
            let text = nmea(&format!(
                "GPRMC,120000,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,{mode}"
            ));
            assert_eq!(valid(&text), [false], "mode {mode}");
        }
        // firefly-II.log: NMEA 2.1 RMC without a mode field.
        assert_eq!(
            valid("$GPRMC,005947.00,A,3715.6616,N,12157.6709,W,0.0,0.0,080710,,*2F\r\n"),
            [true]
        );
    }

    /// hemi.log: a Hemisphere receiver reporting quality 1 with 00 satellites.
    const HEMI_GGA: &str =
        "$GPGGA,194050.00,4221.8237733,N,07101.9411707,W,1,00,3.3,10.835,M,-33.320,M,,*62\r\n";

    #[test]
    fn rule_3_zero_satellites_in_gga_neither_claims_nor_denies() {
        // Alone (as in the capture, where gpsd reports mode 1): not valid.
        assert_eq!(valid(HEMI_GGA), [false]);
        // With RMC A and a valid mode in the same second: valid.
        let rmc = nmea("GPRMC,194050.00,A,4221.8237733,N,07101.9411707,W,0.0,330.6,070918,,,A");
        assert_eq!(valid(&[HEMI_GGA, &rmc].concat()), [true]);
        // The same with an empty satellite field, and with GNS: synthetic.
        let gga = nmea("GPGGA,194051.00,4221.8237,N,07101.9411,W,1,,3.3,10.8,M,-33.3,M,,");
        let rmc = nmea("GPRMC,194051.00,A,4221.8237,N,07101.9411,W,0.0,330.6,070918,,,D");
        assert_eq!(valid(&[gga, rmc].concat()), [true]);
        let gns = nmea("GNGNS,194052.00,4221.8237,N,07101.9411,W,AA,00,3.3,10.8,-33.3,,");
        let rmc = nmea("GNRMC,194052.00,A,4221.8237,N,07101.9411,W,0.0,330.6,070918,,,A");
        assert_eq!(valid(&[gns, rmc].concat()), [true]);
    }

    #[test]
    fn rule_3_gga_quality_denies_or_claims() {
        // hemi.log: quality 0 with no time; the next second quality 1 with 4 satellites.
        let text =
            ["$GPGGA,194057.50,4221.8237090,N,07101.9439268,W,1,04,1.4,7.671,M,-33.057,M,,*52\r\n"]
                .concat();
        assert_eq!(valid(&text), [true]);
        for quality in [0, 6, 7, 8] {
            let gga = nmea(&format!(
                "GPGGA,120000,4404.1306,N,12118.8515,W,{quality},09,0.98,1127.7,M,-19.6,M,,"
            ));
            let rmc = nmea("GPRMC,120000,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,A");
            assert_eq!(valid(&[rmc, gga].concat()), [false], "quality {quality}");
        }
    }

    #[test]
    fn rule_4_gsa_mode_1_denies_a_fix() {
        // tomtom-mkII.log's GSA mode 1, after a synthetic RMC A of the same second.
        let rmc = nmea("GPRMC,175742,A,5125.8697,N,00524.2288,E,0.0000,0.000,200610,,,A");
        let gsa = "$GPGSA,A,1,,,,,,,,,,,,,,,,*32\r\n";
        assert_eq!(valid(&[rmc.as_str(), gsa].concat()), [false]);
        let gsa3 = nmea("GPGSA,A,3,20,16,09,03,07,10,23,19,27,30,,,1.64,0.98,1.31");
        assert_eq!(valid(&[rmc, gsa3].concat()), [true]);
    }

    #[test]
    fn rule_5_a_time_only_second_is_not_valid() {
        // hemi.log: ZDA alone claims no fix.
        assert_eq!(valid("$GPZDA,193913.00,07,09,2018,00,00*63\r\n"), [false]);
    }

    #[test]
    fn rule_6_bad_or_conflicting_dates_invalidate() {
        // april6_2019.log: a Telit's malformed date after the 2019 rollover.
        let telit = "$GPRMC,000231.099,A,4829.0005,N,00022.0015,E,0.15,212.28,2208-1,,,A*73\r\n";
        let zda = nmea("GPZDA,000231.099,22,08,2019,,");
        assert_eq!(valid(&[telit, &zda].concat()), [false]);
        let rmc = nmea("GPRMC,120000,A,4404.1306,N,12118.8515,W,0.03,225.97,130415,,,A");
        let zda = nmea("GPZDA,120000,14,04,2015,,");
        assert_eq!(valid(&[rmc, zda].concat()), [false]);
    }

    #[test]
    fn rule_7_leap_second_label_only_at_month_end() {
        let end = nmea("GPRMC,235960,A,4404.1306,N,12118.8515,W,0.03,225.97,311216,,,A");
        let mid = nmea("GPRMC,235960,A,4404.1306,N,12118.8515,W,0.03,225.97,151216,,,A");
        assert_eq!(valid(&end), [true]);
        assert_eq!(valid(&mid), [false]);
    }
}
