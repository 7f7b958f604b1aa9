//! MediaTek PMTK: the NMEA-framed commands that configure MTK-based receivers
//! (Adafruit Ultimate GPS, Quectel L76/L80/L86, GlobalTop), their `$PMTK001`
//! acknowledgements, and firmware detection from `$PMTK705` or `$GPTXT`.
//!
//! Commands follow the MTK "PMTK command packet" manual: `$PMTK` + a 3-digit
//! packet type + comma-separated fields + `*hh` (XOR checksum) + CRLF.

use std::fmt::Write as _;

/// `$body*hh\r\n` with the NMEA checksum over `body`.
pub fn sentence(body: &str) -> Vec<u8> {
    let sum = body.bytes().fold(0u8, |c, b| c ^ b);
    let mut s = String::with_capacity(body.len() + 6);
    let _ = write!(s, "${body}*{sum:02X}\r\n");
    s.into_bytes()
}

/// Sentences PMTK314 can switch on, by their field index in the command.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SentenceSet {
    /// Field 0.
    pub gll: bool,
    /// Field 1.
    pub rmc: bool,
    /// Field 2.
    pub vtg: bool,
    /// Field 3.
    pub gga: bool,
    /// Field 4.
    pub gsa: bool,
    /// Field 5 (every cycle; GSV is long, so often every 5th).
    pub gsv_every: u8,
    /// Field 17.
    pub zda: bool,
}

impl SentenceSet {
    /// What skytime reads: RMC and ZDA label the second, GGA/GSA/GSV feed the
    /// status page, GLL and VTG are noise.
    pub fn for_time_server() -> Self {
        SentenceSet {
            gll: false,
            rmc: true,
            vtg: false,
            gga: true,
            gsa: true,
            gsv_every: 5,
            zda: true,
        }
    }
}

/// PMTK314 (API_SET_NMEA_OUTPUT): 19 rate fields (0 off, n = every n-th fix):
/// GLL, RMC, VTG, GGA, GSA, GSV, GRS, GST, 5 reserved, MALM, MEPH, MDGP, MDBG,
/// ZDA, MCHN.
pub fn set_sentences(set: &SentenceSet) -> Vec<u8> {
    let mut rates = [0u8; 19];
    rates[0] = u8::from(set.gll);
    rates[1] = u8::from(set.rmc);
    rates[2] = u8::from(set.vtg);
    rates[3] = u8::from(set.gga);
    rates[4] = u8::from(set.gsa);
    rates[5] = set.gsv_every;
    rates[17] = u8::from(set.zda);
    let mut body = String::from("PMTK314");
    for r in rates {
        let _ = write!(body, ",{r}");
    }
    sentence(&body)
}

/// PMTK314,-1: back to the firmware's default sentence set (the undo of [`set_sentences`]).
pub fn default_sentences() -> Vec<u8> {
    sentence("PMTK314,-1")
}

/// PMTK251 (SET_NMEA_BAUDRATE): the receiver switches at once and does not
/// acknowledge; the new rate is confirmed by a query answered at it.
pub fn set_baud(baud: u32) -> Vec<u8> {
    sentence(&format!("PMTK251,{baud}"))
}

/// PMTK255 (SET_SYNC_PPS_NMEA): 1 starts each second's NMEA at a fixed delay
/// after the PPS edge, so the label always follows its pulse; 0 is the default.
pub fn sync_pps_nmea(on: bool) -> Vec<u8> {
    sentence(&format!("PMTK255,{}", u8::from(on)))
}

/// PMTK285 (SET_PPS_CONFIG) mode 4: the pulse is output always, `width_ms` long
/// (modes 0 off, 1 after the first fix, 2 3-D fix only, 3 2-D/3-D fix only).
pub fn pps_always(width_ms: u16) -> Vec<u8> {
    sentence(&format!("PMTK285,4,{width_ms}"))
}

/// PMTK605 (Q_RELEASE): asks for the firmware release, answered by PMTK705.
pub fn query_release() -> Vec<u8> {
    sentence("PMTK605")
}

/// The outcome a receiver reports in `$PMTK001,cmd,flag`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AckFlag {
    /// 0: the packet was invalid.
    Invalid,
    /// 1: the receiver does not support the command.
    Unsupported,
    /// 2: valid, but the action failed.
    Failed,
    /// 3: done.
    Succeeded,
}

/// A reply line from an MTK receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `$PMTK001,cmd,flag`.
    Ack {
        /// The packet type answered.
        command: u16,
        /// What became of it.
        flag: AckFlag,
    },
    /// `$PMTK705,release,build,product,...`: the firmware.
    Release(Firmware),
}

/// What an MTK receiver (or any receiver's `$GPTXT`) says it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Firmware {
    /// Chip family, e.g. `MediaTek MT3339`.
    pub family: String,
    /// The release string, e.g. `AXN_3.8_3333_16042118`.
    pub release: String,
    /// Product or SDK fields that follow, when sent.
    pub product: Option<String>,
}

/// The MTK chip in a release string `AXN_x.y_CHIP_...`, e.g. `3333`.
fn mtk_chip(release: &str) -> Option<&str> {
    release
        .split('_')
        .find(|p| p.len() == 4 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses a checksum-verified sentence body (between `$` and `*`) as a PMTK reply.
pub fn parse_reply(body: &str) -> Option<Reply> {
    let mut fields = body.split(',');
    match fields.next()? {
        "PMTK001" => {
            let command = fields.next()?.parse().ok()?;
            let flag = match fields.next()? {
                "0" => AckFlag::Invalid,
                "1" => AckFlag::Unsupported,
                "2" => AckFlag::Failed,
                "3" => AckFlag::Succeeded,
                _ => return None,
            };
            Some(Reply::Ack { command, flag })
        }
        "PMTK705" => {
            let release = fields.next()?.trim().to_owned();
            if release.is_empty() {
                return None;
            }
            let _build = fields.next();
            let product = fields
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let family = match mtk_chip(&release) {
                Some(chip) => format!("MediaTek MT{chip}"),
                None => "MediaTek".to_owned(),
            };
            Some(Reply::Release(Firmware {
                family,
                release,
                product: (!product.is_empty()).then_some(product),
            }))
        }
        _ => None,
    }
}

/// Firmware from a `$xxTXT` body, when its text names one: u-blox prints
/// `HW UBX-M8030 00080000` and `ROM CORE 3.01 (107888)` at start-up, Quectel
/// and SkyTraq print their versions similarly. Other text gives `None`.
pub fn firmware_from_txt(body: &str) -> Option<Firmware> {
    // $GPTXT,total,number,severity,text
    let text = body.splitn(5, ',').nth(4)?.trim();
    if let Some(hw) = text.strip_prefix("HW UBX-") {
        // The hardware line names the chip; the firmware comes in later lines.
        let chip = hw.split_whitespace().next()?;
        return Some(Firmware {
            family: format!("u-blox {chip}"),
            release: String::new(),
            product: None,
        });
    }
    if let Some(sw) = text
        .strip_prefix("ROM CORE ")
        .or_else(|| text.strip_prefix("FWVER="))
    {
        return Some(Firmware {
            family: "u-blox".to_owned(),
            release: sw.to_owned(),
            product: None,
        });
    }
    let release = text
        .strip_prefix("Version: ")
        .or_else(|| text.strip_prefix("SW="))?;
    Some(Firmware {
        family: "receiver".to_owned(),
        release: release.trim().to_owned(),
        product: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_match_published_sentences() {
        // Each as sent by other drivers and application notes.
        assert_eq!(set_baud(115_200), b"$PMTK251,115200*1F\r\n");
        assert_eq!(sync_pps_nmea(true), b"$PMTK255,1*2D\r\n");
        assert_eq!(pps_always(100), b"$PMTK285,4,100*38\r\n");
        assert_eq!(query_release(), b"$PMTK605*31\r\n");
        let all = SentenceSet {
            gll: true,
            rmc: true,
            vtg: true,
            gga: true,
            gsa: true,
            gsv_every: 5,
            zda: true,
        };
        assert_eq!(
            set_sentences(&all),
            b"$PMTK314,1,1,1,1,1,5,0,0,0,0,0,0,0,0,0,0,0,1,0*2D\r\n"
        );
        let rmc_only = SentenceSet {
            gll: false,
            vtg: false,
            gga: false,
            gsa: false,
            gsv_every: 0,
            zda: false,
            ..all
        };
        assert_eq!(
            set_sentences(&rmc_only),
            b"$PMTK314,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0*29\r\n"
        );
    }

    #[test]
    fn time_server_sentence_set() {
        let s = String::from_utf8(set_sentences(&SentenceSet::for_time_server())).expect("ascii");
        assert!(s.starts_with("$PMTK314,0,1,0,1,1,5,0,0,0,0,0,0,0,0,0,0,0,1,0*"));
    }

    #[test]
    fn acks_and_release() {
        assert_eq!(
            parse_reply("PMTK001,314,3"),
            Some(Reply::Ack {
                command: 314,
                flag: AckFlag::Succeeded
            })
        );
        assert_eq!(
            parse_reply("PMTK001,285,1"),
            Some(Reply::Ack {
                command: 285,
                flag: AckFlag::Unsupported
            })
        );
        assert_eq!(parse_reply("PMTK001,285,9"), None);
        assert_eq!(parse_reply("PMTK001,x,3"), None);
        // As an MT3333 answers PMTK605.
        assert_eq!(
            parse_reply("PMTK705,AXN_3.8_3333_16042118,0000,V3.8.1 GP+GL,"),
            Some(Reply::Release(Firmware {
                family: "MediaTek MT3333".into(),
                release: "AXN_3.8_3333_16042118".into(),
                product: Some("V3.8.1 GP+GL".into()),
            }))
        );
        assert_eq!(parse_reply("PMTK705,"), None);
        assert_eq!(parse_reply("GPRMC,1"), None);
    }

    #[test]
    fn firmware_from_ublox_txt() {
        let fw = firmware_from_txt("GPTXT,01,01,02,HW UBX-M8030 00080000").expect("u-blox HW");
        assert_eq!(
            (fw.family.as_str(), fw.release.as_str()),
            ("u-blox M8030", "")
        );
        let fw = firmware_from_txt("GPTXT,01,01,02,ROM CORE 3.01 (107888)").expect("u-blox SW");
        assert_eq!(fw.release, "3.01 (107888)");
        assert_eq!(firmware_from_txt("GPTXT,01,01,02,ANTSTATUS=OK"), None);
        // gpsd corpus, ublox captures: the antenna line names nothing.
        assert_eq!(firmware_from_txt("GPTXT,01,01,01,ANTENNA OK"), None);
        assert_eq!(firmware_from_txt("GPTXT,01,01"), None);
    }
}
