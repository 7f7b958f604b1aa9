//! Legacy CFG messages or CFG-VALSET: chosen from what MON-VER says the
//! receiver is. Protocol 27 (generation 9) added VALSET; from protocol 34
//! (M10) the legacy CFG-PRT/MSG/TP5/TMODE3 are gone; M10 has no timing mode.

use super::plan::UbxMessages;
use super::settings::UbxConfigInterface;
use crate::ubx::messages::ReceiverVersion;

/// First protocol version with CFG-VALSET.
const VALSET_SINCE: (u16, u16) = (27, 0);
/// First protocol version without the legacy CFG messages.
const LEGACY_UNTIL: (u16, u16) = (34, 0);

fn protocol_text(version: &ReceiverVersion) -> String {
    version
        .protocol_version()
        .map_or_else(|| "unknown".to_owned(), |(a, b)| format!("{a}.{b:02}"))
}

/// The message set for `interface` on the receiver `version` describes, or
/// why the receiver cannot be configured that way (it is then left as it is).
pub fn choose(
    interface: UbxConfigInterface,
    version: &ReceiverVersion,
) -> Result<UbxMessages, String> {
    let protocol = version.protocol_version();
    let m10 = version.is_m10();
    let no_legacy = m10 || protocol.is_some_and(|p| p >= LEGACY_UNTIL);
    // Unknown protocol: take the operator's word for VALSET.
    let has_valset = m10 || protocol.is_none_or(|p| p >= VALSET_SINCE);
    let valset = UbxMessages::Valset { timing_mode: !m10 };
    match interface {
        UbxConfigInterface::Auto if no_legacy => Ok(valset),
        UbxConfigInterface::Auto => Ok(UbxMessages::Legacy),
        UbxConfigInterface::Legacy if no_legacy => Err(format!(
            "{} (protocol {}) has no legacy CFG messages: set ubx_config_interface = \"auto\" or \"valset\"",
            version.family(),
            protocol_text(version)
        )),
        UbxConfigInterface::Legacy => Ok(UbxMessages::Legacy),
        UbxConfigInterface::Valset if has_valset => Ok(valset),
        UbxConfigInterface::Valset => Err(format!(
            "{} (protocol {}) has no CFG-VALSET (protocol 27 and later): set ubx_config_interface = \"auto\" or \"legacy\"",
            version.family(),
            protocol_text(version)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use UbxConfigInterface::{Auto, Legacy, Valset};

    fn rx(hardware: &str, ext: &[&str]) -> ReceiverVersion {
        ReceiverVersion {
            software: "ROM CORE".into(),
            hardware: hardware.into(),
            extensions: ext.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    #[test]
    fn each_generation_gets_the_messages_it_has() {
        let m8t = rx("00080000", &["PROTVER=22.00", "MOD=LEA-M8T-0"]);
        let f9t = rx("00190000", &["PROTVER=29.20", "MOD=ZED-F9T"]);
        let m10 = rx("000A0000", &["PROTVER=34.10", "MOD=MAX-M10S"]);
        let x20 = rx("00220000", &["PROTVER=50.10"]);
        let unknown = rx("00190000", &[]);
        let valset = |timing_mode| Ok(UbxMessages::Valset { timing_mode });
        assert_eq!(choose(Auto, &m8t), Ok(UbxMessages::Legacy));
        assert_eq!(
            choose(Auto, &f9t),
            Ok(UbxMessages::Legacy),
            "gen 9 takes both"
        );
        assert_eq!(choose(Auto, &m10), valset(false), "M10: no timing mode");
        assert_eq!(choose(Auto, &x20), valset(true));
        assert_eq!(choose(Auto, &unknown), Ok(UbxMessages::Legacy));
        assert_eq!(choose(Valset, &f9t), valset(true));
        assert_eq!(choose(Valset, &unknown), valset(true));
        assert_eq!(choose(Legacy, &f9t), Ok(UbxMessages::Legacy));
        let refused = choose(Legacy, &m10).expect_err("M10 has no CFG-TP5");
        assert!(
            refused.contains("MAX-M10S") && refused.contains("34.10"),
            "{refused}"
        );
        let refused = choose(Valset, &m8t).expect_err("M8 has no VALSET");
        assert!(refused.contains("22.00"), "{refused}");
    }
}
