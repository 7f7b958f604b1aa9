//! What to send to a receiver, in which order, and how to take it back: the
//! plans for u-blox (UBX) and MediaTek (PMTK) receivers built from
//! [`ReceiverSetup`](super::ReceiverSetup).

use super::settings::{ReceiverProtocol, ReceiverSetup, TimingModeSetting, UbxConfigInterface};
use crate::pmtk;
use crate::ubx::{self, config as cfg};

/// The reply that confirms one step.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// ACK-ACK for this class and id (ACK-NAK refuses).
    UbxAck {
        /// Class of the message sent.
        class: u8,
        /// Id of the message sent.
        id: u8,
    },
    /// A MON-VER answer.
    UbxVersion,
    /// `$PMTK001,<command>,3` (another flag refuses).
    PmtkAck(u16),
    /// A `$PMTK705` answer.
    PmtkRelease,
}

/// One message and the reply that confirms it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What the step does, for logs.
    pub what: &'static str,
    /// The bytes to write.
    pub bytes: Vec<u8>,
    /// The confirming reply.
    pub expect: Expect,
    /// What undoes this step alone, when the plan has no whole reload.
    pub undo: Option<Vec<u8>>,
}

impl Step {
    pub(super) fn ubx(what: &'static str, bytes: Vec<u8>) -> Self {
        let (class, id) = (bytes[2], bytes[3]);
        Step {
            what,
            bytes,
            expect: Expect::UbxAck { class, id },
            undo: None,
        }
    }

    fn pmtk(what: &'static str, bytes: Vec<u8>, command: u16, undo: Option<Vec<u8>>) -> Self {
        Step {
            what,
            bytes,
            expect: Expect::PmtkAck(command),
            undo,
        }
    }
}

/// A change of the line's speed, always the last step: sent at the old rate,
/// confirmed by `probe` answered at the new one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaudChange {
    /// The command (not waited for: receivers switch before or while acknowledging).
    pub command: Vec<u8>,
    /// Rate before.
    pub from: u32,
    /// Rate after.
    pub to: u32,
}

/// Everything the configurator sends to one receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Asked first, changes nothing: a receiver that does not answer it is
    /// used as it is; its answer names the receiver.
    pub probe: Step,
    /// The configuration, in order.
    pub steps: Vec<Step>,
    /// One step that undoes every step (u-blox: reload the saved configuration);
    /// without it, the applied steps' own `undo`s are sent in reverse.
    pub reload: Option<Step>,
    /// Optional speed change, after every step.
    pub baud: Option<BaudChange>,
    /// u-blox: what the plan was built from, so that it can be rebuilt with
    /// the message set the receiver MON-VER names takes.
    pub ubx: Option<UbxSettings>,
}

/// The u-blox settings a plan is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UbxSettings {
    /// Legacy CFG messages, CFG-VALSET, or chosen from MON-VER.
    pub interface: UbxConfigInterface,
    /// Pulse width once locked, µs.
    pub pulse_width_us: u32,
    /// Antenna cable delay, ns.
    pub antenna_cable_delay_ns: i16,
    /// The timing mode to set, if any.
    pub timing_mode: Option<cfg::TimingMode>,
    /// The rate to move the line to, if any.
    pub baud: Option<u32>,
    /// The line's rate now.
    pub current_baud: u32,
}

/// The message set a u-blox plan is written in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UbxMessages {
    /// CFG-PRT, CFG-MSG, CFG-TP5, CFG-TMODE3.
    Legacy,
    /// CFG-VALSET in one transaction; `timing_mode`: whether the receiver has
    /// the CFG-TMODE-* keys (M10 has not).
    Valset {
        /// Send the timing mode keys.
        timing_mode: bool,
    },
}

impl Plan {
    /// The plan for `setup` on a line now running at `current_baud`; `None`
    /// when the receiver is to be left alone.
    pub fn for_setup(setup: &ReceiverSetup, current_baud: u32) -> Option<Plan> {
        match setup.protocol {
            ReceiverProtocol::None => None,
            ReceiverProtocol::Ubx => {
                let settings = UbxSettings::of(setup, current_baud);
                let messages = match settings.interface {
                    UbxConfigInterface::Valset => UbxMessages::Valset { timing_mode: true },
                    UbxConfigInterface::Auto | UbxConfigInterface::Legacy => UbxMessages::Legacy,
                };
                Some(Plan::ublox(&settings, messages))
            }
            ReceiverProtocol::Pmtk => Some(mediatek(setup, current_baud)),
        }
    }
}

fn baud_change(setup: &ReceiverSetup, current_baud: u32, command: Vec<u8>) -> Option<BaudChange> {
    setup
        .baud
        .filter(|&to| to != current_baud)
        .map(|to| BaudChange {
            command,
            from: current_baud,
            to,
        })
}

impl UbxSettings {
    /// The u-blox part of `[gnss.receiver]`.
    pub fn of(setup: &ReceiverSetup, current_baud: u32) -> Self {
        let timing_mode = match setup.timing_mode {
            TimingModeSetting::Keep => None,
            TimingModeSetting::Navigation => Some(cfg::TimingMode::Disabled),
            TimingModeSetting::SurveyIn => Some(cfg::TimingMode::SurveyIn {
                min_duration_s: setup.survey_in_min_duration_s,
                accuracy_limit_tenth_mm: setup.survey_in_accuracy_mm.saturating_mul(10),
            }),
            TimingModeSetting::Fixed => setup.fixed_position().map(cfg::TimingMode::Fixed),
        };
        UbxSettings {
            interface: setup.ubx_config_interface,
            pulse_width_us: setup.pulse_width_us(),
            antenna_cable_delay_ns: setup.antenna_cable_delay_ns,
            timing_mode,
            baud: setup.baud.filter(|&to| to != current_baud),
            current_baud,
        }
    }
}

impl Plan {
    /// The u-blox plan for `settings` in the message set `messages`.
    pub fn ublox(settings: &UbxSettings, messages: UbxMessages) -> Plan {
        let (steps, baud_command) = match messages {
            UbxMessages::Legacy => (
                ublox_legacy(settings),
                settings.baud.map(|to| {
                    let both = cfg::PROTO_UBX | cfg::PROTO_NMEA;
                    cfg::cfg_prt_uart(cfg::PORT_UART1, to, both, both)
                }),
            ),
            UbxMessages::Valset { timing_mode } => (
                super::plan_valset::steps(settings, timing_mode),
                settings.baud.map(super::plan_valset::baud_command),
            ),
        };
        Plan {
            probe: Step {
                what: "MON-VER",
                bytes: ubx::poll(ubx::CLASS_MON, ubx::ID_MON_VER),
                expect: Expect::UbxVersion,
                undo: None,
            },
            steps,
            reload: Some(Step::ubx(
                "reload saved configuration",
                cfg::cfg_cfg_reload(),
            )),
            baud: settings
                .baud
                .zip(baud_command)
                .map(|(to, command)| BaudChange {
                    command,
                    from: settings.current_baud,
                    to,
                }),
            ubx: Some(settings.clone()),
        }
    }
}

/// u-blox, legacy messages: UBX and NMEA both ways, the time sentences on and
/// the noise off (enabled before anything is disabled, so the time never goes
/// quiet), TIM-TP and NAV-TIMELS each second, the 1 PPS, the timing mode, then
/// the speed. Undo: reload the receiver's saved configuration (CFG-CFG).
fn ublox_legacy(settings: &UbxSettings) -> Vec<Step> {
    use cfg::nmea_id;
    let both = cfg::PROTO_UBX | cfg::PROTO_NMEA;
    let mut steps = vec![
        Step::ubx(
            "UBX and NMEA on UART1",
            cfg::cfg_prt_uart(cfg::PORT_UART1, settings.current_baud, both, both),
        ),
        Step::ubx("RMC on", cfg::cfg_msg_nmea(nmea_id::RMC, 1)),
        Step::ubx("ZDA on", cfg::cfg_msg_nmea(nmea_id::ZDA, 1)),
        Step::ubx("GGA on", cfg::cfg_msg_nmea(nmea_id::GGA, 1)),
        Step::ubx("GSA on", cfg::cfg_msg_nmea(nmea_id::GSA, 1)),
        Step::ubx("GSV on", cfg::cfg_msg_nmea(nmea_id::GSV, 1)),
        Step::ubx("TIM-TP on", cfg::enable_tim_tp()),
        Step::ubx(
            "NAV-TIMELS on",
            cfg::cfg_msg(ubx::CLASS_NAV, ubx::ID_TIMELS, 1),
        ),
        Step::ubx("GLL off", cfg::cfg_msg_nmea(nmea_id::GLL, 0)),
        Step::ubx("VTG off", cfg::cfg_msg_nmea(nmea_id::VTG, 0)),
        Step::ubx(
            "1 PPS on UTC",
            cfg::TimePulse::one_pps_utc(settings.pulse_width_us, settings.antenna_cable_delay_ns)
                .encode(),
        ),
    ];
    if let Some(mode) = settings.timing_mode {
        if matches!(mode, cfg::TimingMode::SurveyIn { .. }) {
            steps.push(Step::ubx(
                "TIM-SVIN on",
                cfg::cfg_msg(ubx::CLASS_TIM, ubx::ID_TIM_SVIN, 1),
            ));
        }
        steps.push(Step::ubx("timing mode", mode.encode()));
    }
    steps
}

/// MediaTek: the sentence set, NMEA synchronised to the pulse, the pulse
/// always on, then the speed. MTK has no "reload": the sentence set and the
/// sync have documented defaults to go back to; the pulse setting goes last
/// and, once accepted, is the state skytime wants whatever follows.
fn mediatek(setup: &ReceiverSetup, current_baud: u32) -> Plan {
    let width_ms = u16::try_from(setup.pulse_width_ms).unwrap_or(u16::MAX);
    let steps = vec![
        Step::pmtk(
            "sentence set",
            pmtk::set_sentences(&pmtk::SentenceSet::for_time_server()),
            314,
            Some(pmtk::default_sentences()),
        ),
        Step::pmtk(
            "NMEA synchronised to the pulse",
            pmtk::sync_pps_nmea(true),
            255,
            Some(pmtk::sync_pps_nmea(false)),
        ),
        Step::pmtk("PPS always on", pmtk::pps_always(width_ms), 285, None),
    ];
    let baud = baud_change(
        setup,
        current_baud,
        setup.baud.map_or_else(Vec::new, pmtk::set_baud),
    );
    Plan {
        probe: Step {
            what: "PMTK605 release query",
            bytes: pmtk::query_release(),
            expect: Expect::PmtkRelease,
            undo: None,
        },
        steps,
        reload: None,
        baud,
        ubx: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ublox_plan_enables_before_it_disables_and_ends_with_the_speed() {
        let setup = ReceiverSetup {
            protocol: ReceiverProtocol::Ubx,
            baud: Some(115_200),
            timing_mode: TimingModeSetting::SurveyIn,
            ..ReceiverSetup::default()
        };
        let plan = Plan::for_setup(&setup, 9600).expect("u-blox");
        let whats: Vec<&str> = plan.steps.iter().map(|s| s.what).collect();
        let first_off = whats
            .iter()
            .position(|w| w.ends_with("off"))
            .expect("an off step");
        assert!(whats[..first_off].iter().all(|w| !w.ends_with("off")));
        assert!(
            whats.contains(&"TIM-SVIN on"),
            "survey-in progress reported"
        );
        assert_eq!(whats.last(), Some(&"timing mode"));
        let baud = plan.baud.expect("a speed change");
        assert_eq!((baud.from, baud.to), (9600, 115_200));
        assert_eq!(baud.command[6 + 8..6 + 12], 115_200u32.to_le_bytes());
        assert_eq!(
            plan.steps[0].bytes[6 + 8..6 + 12],
            9600u32.to_le_bytes(),
            "protocols set at the current rate first"
        );
        assert!(
            Plan::for_setup(&setup, 115_200)
                .expect("u-blox")
                .baud
                .is_none()
        );
        assert_eq!(
            Plan::for_setup(&ReceiverSetup::default(), 9600),
            None,
            "off by default"
        );
        let keep = Plan::for_setup(
            &ReceiverSetup {
                protocol: ReceiverProtocol::Ubx,
                ..ReceiverSetup::default()
            },
            9600,
        )
        .expect("u-blox");
        assert!(
            keep.steps.iter().all(|s| s.what != "timing mode"),
            "keep sends no CFG-TMODE3"
        );
    }

    #[test]
    fn mediatek_plan_has_undos_for_what_has_a_default() {
        let setup = ReceiverSetup {
            protocol: ReceiverProtocol::Pmtk,
            ..ReceiverSetup::default()
        };
        let plan = Plan::for_setup(&setup, 9600).expect("MediaTek");
        assert_eq!(plan.reload, None);
        let expects: Vec<Expect> = plan.steps.iter().map(|s| s.expect).collect();
        assert_eq!(
            expects,
            [
                Expect::PmtkAck(314),
                Expect::PmtkAck(255),
                Expect::PmtkAck(285)
            ]
        );
        assert_eq!(plan.steps[2].bytes, b"$PMTK285,4,100*38\r\n");
        assert!(plan.steps[..2].iter().all(|s| s.undo.is_some()));
    }
}
