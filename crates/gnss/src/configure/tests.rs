//! The configurator against simulated receivers that speak UBX or PMTK, on a
//! line where a reply sent at one rate is lost to a host reading at another.

use super::*;
use crate::pmtk;
use crate::ubx::valset::{self, Transaction, decode_valset};
use crate::ubx::{self, messages};
use std::collections::{BTreeMap, HashMap};

/// How the simulated receiver answers one message (class, id).
#[derive(Copy, Clone, Debug, PartialEq)]
enum Answer {
    Ack,
    Nak,
    Silent,
}

/// A u-blox receiver: RAM configuration, a saved one, and a UART rate.
struct SimUblox {
    baud: u32,
    answers: HashMap<(u8, u8), Answer>,
    /// Answers nothing at all (wrong protocol, wrong wiring).
    mute: bool,
    /// ACKs CFG-PRT but keeps its rate.
    ignores_baud: bool,
    /// CFG messages applied to RAM since the last reload.
    ram: Vec<(u8, u8)>,
    received: Vec<(u8, u8)>,
    /// What MON-VER answers.
    version: ReceiverVersion,
    /// Has the legacy CFG-PRT/MSG/TP5/TMODE3 (an M10 NAKs them).
    legacy: bool,
    /// Has the CFG-TMODE-* keys (an M10 NAKs a VALSET naming one).
    timing_keys: bool,
    /// How the n-th CFG-VALSET is answered (beyond the list: as `answers` says).
    valset_answers: Vec<Answer>,
    valsets_seen: usize,
    /// A VALSET transaction in progress: nothing of it applied yet.
    pending: Option<Vec<valset::Item>>,
    /// Keys set in RAM by VALSET since the last reload.
    ram_keys: BTreeMap<u32, Vec<u8>>,
}

const LEGACY_CFG: [u8; 4] = [
    ubx::ID_CFG_PRT,
    ubx::ID_CFG_MSG,
    ubx::ID_CFG_TP5,
    ubx::ID_CFG_TMODE3,
];

impl SimUblox {
    fn new() -> Self {
        SimUblox {
            baud: 9600,
            answers: HashMap::new(),
            mute: false,
            ignores_baud: false,
            ram: Vec::new(),
            received: Vec::new(),
            version: ReceiverVersion {
                software: "EXT CORE 1.00 (f10c36)".into(),
                hardware: "00190000".into(),
                extensions: vec![
                    "FWVER=TIM 2.20".into(),
                    "PROTVER=29.20".into(),
                    "MOD=ZED-F9T".into(),
                ],
            },
            legacy: true,
            timing_keys: true,
            valset_answers: Vec::new(),
            valsets_seen: 0,
            pending: None,
            ram_keys: BTreeMap::new(),
        }
    }

    /// An M10: VALSET only, no timing mode.
    fn m10() -> Self {
        SimUblox {
            version: ReceiverVersion {
                software: "ROM SPG 5.10 (7b202e)".into(),
                hardware: "000A0000".into(),
                extensions: vec![
                    "FWVER=SPG 5.10".into(),
                    "PROTVER=34.10".into(),
                    "MOD=MAX-M10S".into(),
                ],
            },
            legacy: false,
            timing_keys: false,
            ..SimUblox::new()
        }
    }

    /// A CFG-VALSET the receiver has accepted the frame of: the transaction
    /// rules of the interface description. Returns whether it ACKs.
    fn valset(&mut self, payload: &[u8]) -> bool {
        let Ok(v) = decode_valset(payload) else {
            self.pending = None;
            return false;
        };
        let unknown_key = v
            .items
            .iter()
            .any(|i| !self.timing_keys && (i.key_id >> 16) & 0xFF == 0x03);
        if unknown_key {
            self.pending = None;
            return false;
        }
        let apply = match (v.transaction, self.pending.take()) {
            (Transaction::None, _) => v.items,
            (Transaction::Start, _) => {
                self.pending = Some(v.items);
                return true;
            }
            (Transaction::Ongoing, Some(mut p)) => {
                p.extend(v.items);
                self.pending = Some(p);
                return true;
            }
            (Transaction::Apply, Some(mut p)) => {
                p.extend(v.items);
                p
            }
            (Transaction::Ongoing | Transaction::Apply, None) => return false,
        };
        for item in apply {
            if item.key_id == valset::key::UART1_BAUDRATE.id && !self.ignores_baud {
                let b: [u8; 4] = item.value[..].try_into().expect("U4");
                self.baud = u32::from_le_bytes(b);
            }
            self.ram_keys.insert(item.key_id, item.value);
        }
        true
    }

    /// Bytes arriving at `host_baud`; returns replies with the rate they are sent at.
    fn receive(&mut self, bytes: &[u8], host_baud: u32) -> Vec<(u32, Vec<u8>)> {
        if host_baud != self.baud || self.mute {
            return Vec::new();
        }
        let mut replies = Vec::new();
        for f in ubx::frames(bytes) {
            self.received.push((f.class, f.id));
            if (f.class, f.id) == (ubx::CLASS_MON, ubx::ID_MON_VER) && f.payload.is_empty() {
                replies.push((self.baud, messages::encode_mon_ver(&self.version)));
                continue;
            }
            let mut answer = *self.answers.get(&(f.class, f.id)).unwrap_or(&Answer::Ack);
            if f.class == ubx::CLASS_CFG {
                if f.id == valset::ID_CFG_VALSET {
                    if let Some(a) = self.valset_answers.get(self.valsets_seen) {
                        answer = *a;
                    }
                    self.valsets_seen += 1;
                } else {
                    // Any other CFG message cancels a transaction.
                    self.pending = None;
                }
                if !self.legacy && LEGACY_CFG.contains(&f.id) {
                    answer = Answer::Nak;
                }
            }
            if answer == Answer::Ack
                && (f.class, f.id) == (ubx::CLASS_CFG, valset::ID_CFG_VALSET)
                && !self.valset(f.payload)
            {
                answer = Answer::Nak;
            }
            if answer == Answer::Nak && f.id == valset::ID_CFG_VALSET {
                self.pending = None;
            }
            match answer {
                Answer::Silent => continue,
                Answer::Nak => {
                    replies.push((self.baud, messages::encode_ack(false, f.class, f.id)));
                    continue;
                }
                Answer::Ack => {
                    replies.push((self.baud, messages::encode_ack(true, f.class, f.id)));
                }
            }
            if (f.class, f.id) == (ubx::CLASS_CFG, ubx::ID_CFG_CFG) {
                self.ram.clear();
                self.ram_keys.clear();
            } else if f.id != valset::ID_CFG_VALSET {
                self.ram.push((f.class, f.id));
            }
            if (f.class, f.id) == (ubx::CLASS_CFG, ubx::ID_CFG_PRT) && !self.ignores_baud {
                self.baud =
                    u32::from_le_bytes([f.payload[8], f.payload[9], f.payload[10], f.payload[11]]);
            }
        }
        replies
    }
}

/// Runs the configurator against a receiver until it finishes; returns the
/// outcome and the rate the host ended at.
fn run(
    c: &mut Configurator,
    mut receive: impl FnMut(&[u8], u32) -> Vec<(u32, Vec<u8>)>,
    decode: fn(&[u8]) -> Vec<Reply>,
) -> (Outcome, u32) {
    let mut now = MonoNanos(0);
    let mut host_baud = 9600;
    let mut actions = c.start(now);
    for _ in 0..1000 {
        let mut replies = Vec::new();
        for a in actions.drain(..) {
            match a {
                Action::Send(bytes) => replies.extend(receive(&bytes, host_baud)),
                Action::SetHostBaud(b) => host_baud = b,
            }
        }
        for (rate, bytes) in replies {
            if rate != host_baud {
                continue; // sent at a rate the host is not reading at: garbage
            }
            for reply in decode(&bytes) {
                actions.extend(c.on_reply(&reply, now));
            }
        }
        if let Some(o) = c.outcome() {
            return (o.clone(), host_baud);
        }
        if actions.is_empty() {
            now = c.deadline().expect("a deadline while unfinished");
            actions = c.on_tick(now);
        }
    }
    panic!("configurator never finished");
}

fn decode(bytes: &[u8]) -> Vec<Reply> {
    ReplyReader::default().push(bytes)
}

fn ublox_setup() -> ReceiverSetup {
    ReceiverSetup {
        protocol: ReceiverProtocol::Ubx,
        baud: Some(115_200),
        timing_mode: TimingModeSetting::SurveyIn,
        ..ReceiverSetup::default()
    }
}

fn ublox_configurator() -> Configurator {
    let setup = ublox_setup();
    Configurator::new(
        Plan::for_setup(&setup, 9600).expect("a plan"),
        RetryPolicy::of(&setup),
        9600,
    )
}

#[test]
fn a_receiver_that_acks_everything_is_configured_at_the_new_rate() {
    let mut rx = SimUblox::new();
    let mut c = ublox_configurator();
    let (outcome, host) = run(&mut c, |b, h| rx.receive(b, h), decode);
    assert_eq!(outcome, Outcome::Configured { baud: 115_200 });
    assert_eq!((host, rx.baud), (115_200, 115_200));
    let plan = Plan::for_setup(&ublox_setup(), 9600).expect("u-blox");
    assert_eq!(
        rx.ram.len(),
        plan.steps.len() + 1,
        "every step and the speed"
    );
    assert!(rx.ram.contains(&(ubx::CLASS_CFG, ubx::ID_CFG_TMODE3)));
    let info = c.receiver().expect("identified");
    assert_eq!(
        (info.family.as_str(), info.firmware.as_str()),
        ("u-blox ZED-F9T", "TIM 2.20")
    );
}

#[test]
fn a_nak_rolls_everything_back_and_the_receiver_is_used_as_it_was() {
    // A navigation receiver (NEO-M8N) refuses the timing mode.
    let mut rx = SimUblox::new();
    rx.answers
        .insert((ubx::CLASS_CFG, ubx::ID_CFG_TMODE3), Answer::Nak);
    let mut c = ublox_configurator();
    let (outcome, host) = run(&mut c, |b, h| rx.receive(b, h), decode);
    let Outcome::UsedAsIs { baud, reason } = outcome else {
        panic!("expected UsedAsIs, got {outcome:?}");
    };
    assert_eq!(
        (baud, host, rx.baud),
        (9600, 9600, 9600),
        "no speed change after a refusal"
    );
    assert!(
        reason.contains("timing mode") && reason.contains("NAK"),
        "{reason}"
    );
    assert!(
        rx.ram.is_empty(),
        "the saved configuration was reloaded: {:?}",
        rx.ram
    );
    assert_eq!(rx.received.last(), Some(&(ubx::CLASS_CFG, ubx::ID_CFG_CFG)));
}

#[test]
fn a_silent_receiver_is_probed_a_few_times_and_left_untouched() {
    let mut rx = SimUblox::new();
    rx.mute = true;
    let mut sent = Vec::new();
    let mut c = ublox_configurator();
    let (outcome, _) = run(
        &mut c,
        |b, h| {
            sent.push(b.to_vec());
            rx.receive(b, h)
        },
        decode,
    );
    assert!(
        matches!(&outcome, Outcome::UsedAsIs { baud: 9600, reason } if reason.contains("nothing was changed")),
        "{outcome:?}"
    );
    assert_eq!(
        sent.len(),
        3,
        "the probe, sent `attempts` times, and nothing else"
    );
    assert!(
        sent.iter()
            .all(|b| b == &ubx::poll(ubx::CLASS_MON, ubx::ID_MON_VER))
    );
    assert!(c.receiver().is_none());
}

#[test]
fn silence_mid_sequence_is_retried_then_rolled_back() {
    let mut rx = SimUblox::new();
    rx.answers
        .insert((ubx::CLASS_CFG, ubx::ID_CFG_TP5), Answer::Silent);
    let mut c = ublox_configurator();
    let (outcome, _) = run(&mut c, |b, h| rx.receive(b, h), decode);
    assert!(
        matches!(&outcome, Outcome::UsedAsIs { reason, .. } if reason.contains("no reply to 1 PPS on UTC after 3 sends")),
        "{outcome:?}"
    );
    let tp5_sends = rx
        .received
        .iter()
        .filter(|m| **m == (ubx::CLASS_CFG, ubx::ID_CFG_TP5))
        .count();
    assert_eq!(tp5_sends, 3);
    assert!(rx.ram.is_empty());
}

#[test]
fn a_lost_reload_is_reported_not_hidden() {
    let mut rx = SimUblox::new();
    rx.answers
        .insert((ubx::CLASS_CFG, ubx::ID_CFG_TMODE3), Answer::Nak);
    rx.answers
        .insert((ubx::CLASS_CFG, ubx::ID_CFG_CFG), Answer::Silent);
    let mut c = ublox_configurator();
    let (outcome, _) = run(&mut c, |b, h| rx.receive(b, h), decode);
    assert!(
        matches!(&outcome, Outcome::UsedAsIs { reason, .. } if reason.contains("undo not confirmed for: reload saved configuration")),
        "{outcome:?}"
    );
}

#[test]
fn a_receiver_that_keeps_its_rate_is_found_at_the_old_one_and_rolled_back() {
    let mut rx = SimUblox::new();
    rx.ignores_baud = true;
    let mut c = ublox_configurator();
    let (outcome, host) = run(&mut c, |b, h| rx.receive(b, h), decode);
    assert!(
        matches!(&outcome, Outcome::UsedAsIs { baud: 9600, reason } if reason.contains("kept its old rate")),
        "{outcome:?}"
    );
    assert_eq!(host, 9600);
    assert!(rx.ram.is_empty());
}

#[test]
fn a_receiver_gone_after_the_speed_change_is_unreachable() {
    let mut rx = SimUblox::new();
    let mut switched = false;
    let mut c = ublox_configurator();
    let (outcome, _) = run(
        &mut c,
        |b, h| {
            if switched {
                return Vec::new();
            }
            let r = rx.receive(b, h);
            switched = rx.baud != 9600;
            r
        },
        decode,
    );
    assert!(
        matches!(outcome, Outcome::Unreachable { .. }),
        "{outcome:?}"
    );
}

/// A MediaTek receiver: PMTK001 for each command, PMTK705 for PMTK605.
struct SimMtk {
    baud: u32,
    unsupported: Vec<u16>,
    applied: Vec<String>,
}

impl SimMtk {
    fn receive(&mut self, bytes: &[u8], host_baud: u32) -> Vec<(u32, Vec<u8>)> {
        if host_baud != self.baud {
            return Vec::new();
        }
        let text = String::from_utf8_lossy(bytes);
        let body = text
            .trim()
            .trim_start_matches('$')
            .split('*')
            .next()
            .unwrap_or("");
        let command: u16 = body.get(4..7).and_then(|c| c.parse().ok()).unwrap_or(0);
        match command {
            605 => vec![(
                self.baud,
                pmtk::sentence("PMTK705,AXN_5.1.7_3333_19020118,0027,Quectel-L76,1.0"),
            )],
            251 => {
                self.baud = body[8..].parse().unwrap_or(self.baud);
                Vec::new()
            }
            c if self.unsupported.contains(&c) => {
                vec![(self.baud, pmtk::sentence(&format!("PMTK001,{c},1")))]
            }
            c => {
                self.applied.push(body.to_owned());
                vec![(self.baud, pmtk::sentence(&format!("PMTK001,{c},3")))]
            }
        }
    }
}

fn mtk_setup() -> ReceiverSetup {
    ReceiverSetup {
        protocol: ReceiverProtocol::Pmtk,
        baud: Some(115_200),
        ..ReceiverSetup::default()
    }
}

#[test]
fn a_mediatek_receiver_is_configured_and_confirmed_at_the_new_rate() {
    let mut rx = SimMtk {
        baud: 9600,
        unsupported: vec![],
        applied: vec![],
    };
    let setup = mtk_setup();
    let mut c = Configurator::new(
        Plan::for_setup(&setup, 9600).expect("a plan"),
        RetryPolicy::of(&setup),
        9600,
    );
    let (outcome, host) = run(&mut c, |b, h| rx.receive(b, h), decode);
    assert_eq!(outcome, Outcome::Configured { baud: 115_200 });
    assert_eq!(host, 115_200);
    assert_eq!(rx.applied.len(), 3);
    assert_eq!(
        c.receiver().map(|r| r.family.as_str()),
        Some("MediaTek MT3333")
    );
}

#[test]
fn a_mediatek_refusal_undoes_the_applied_steps_in_reverse() {
    let mut rx = SimMtk {
        baud: 9600,
        unsupported: vec![285],
        applied: vec![],
    };
    let setup = mtk_setup();
    let mut c = Configurator::new(
        Plan::for_setup(&setup, 9600).expect("a plan"),
        RetryPolicy::of(&setup),
        9600,
    );
    let (outcome, _) = run(&mut c, |b, h| rx.receive(b, h), decode);
    assert!(
        matches!(&outcome, Outcome::UsedAsIs { baud: 9600, reason } if reason.contains("PPS always on")),
        "{outcome:?}"
    );
    assert_eq!(
        rx.applied[2..],
        ["PMTK255,0".to_owned(), "PMTK314,-1".to_owned()],
        "sync, then the sentence set, back to their defaults"
    );
    assert_eq!(rx.baud, 9600);
}

fn valset_setup(interface: UbxConfigInterface) -> ReceiverSetup {
    ReceiverSetup {
        ubx_config_interface: interface,
        ..ublox_setup()
    }
}

fn configurator_for(setup: &ReceiverSetup) -> Configurator {
    Configurator::new(
        Plan::for_setup(setup, 9600).expect("a plan"),
        RetryPolicy::of(setup),
        9600,
    )
}

fn legacy_sent(rx: &SimUblox) -> bool {
    rx.received
        .iter()
        .any(|(c, i)| *c == ubx::CLASS_CFG && LEGACY_CFG.contains(i))
}

#[test]
fn an_m10_is_configured_with_valset_and_without_a_timing_mode() {
    let mut rx = SimUblox::m10();
    let mut c = configurator_for(&valset_setup(UbxConfigInterface::Auto));
    let (outcome, host) = run(&mut c, |b, h| rx.receive(b, h), decode);
    assert_eq!(outcome, Outcome::Configured { baud: 115_200 });
    assert_eq!((host, rx.baud), (115_200, 115_200));
    assert!(
        !legacy_sent(&rx),
        "no legacy CFG sent to an M10: {:?}",
        rx.received
    );
    assert_eq!(
        rx.ram_keys.get(&0x2091_017E),
        Some(&vec![1]),
        "TIM-TP on UART1"
    );
    assert_eq!(rx.ram_keys.get(&0x1005_0007), Some(&vec![1]), "TP1 on");
    assert_eq!(
        rx.ram_keys.get(&0x4052_0001),
        Some(&115_200u32.to_le_bytes().to_vec())
    );
    assert!(
        rx.ram_keys.keys().all(|k| (k >> 16) & 0xFF != 0x03),
        "survey-in not sent to a receiver without timing mode"
    );
    assert_eq!(
        c.receiver().map(|r| r.family.as_str()),
        Some("u-blox MAX-M10S")
    );
}

#[test]
fn a_timing_receiver_told_to_use_valset_gets_its_timing_mode_in_the_transaction() {
    let mut rx = SimUblox::new();
    let mut c = configurator_for(&valset_setup(UbxConfigInterface::Valset));
    let (outcome, _) = run(&mut c, |b, h| rx.receive(b, h), decode);
    assert_eq!(outcome, Outcome::Configured { baud: 115_200 });
    assert!(!legacy_sent(&rx));
    assert_eq!(rx.ram_keys.get(&0x2003_0001), Some(&vec![1]), "survey-in");
    assert_eq!(rx.ram_keys.get(&0x2091_0098), Some(&vec![1]), "TIM-SVIN on");
}

#[test]
fn a_nak_to_the_applying_valset_leaves_nothing_applied() {
    let mut rx = SimUblox::new();
    // ports, messages, pulse ACKed into the transaction; the timing mode refused.
    rx.valset_answers = vec![Answer::Ack, Answer::Ack, Answer::Ack, Answer::Nak];
    let mut c = configurator_for(&valset_setup(UbxConfigInterface::Valset));
    let (outcome, host) = run(&mut c, |b, h| rx.receive(b, h), decode);
    assert!(
        matches!(&outcome, Outcome::UsedAsIs { baud: 9600, reason } if reason.contains("timing mode") && reason.contains("NAK")),
        "{outcome:?}"
    );
    assert_eq!((host, rx.baud), (9600, 9600));
    assert!(
        rx.ram_keys.is_empty() && rx.pending.is_none(),
        "{:?}",
        rx.ram_keys
    );
    assert_eq!(rx.received.last(), Some(&(ubx::CLASS_CFG, ubx::ID_CFG_CFG)));
}

#[test]
fn a_silent_valset_is_retried_then_the_transaction_is_dropped() {
    let mut rx = SimUblox::m10();
    rx.valset_answers = vec![Answer::Ack, Answer::Silent, Answer::Silent, Answer::Silent];
    let mut c = configurator_for(&valset_setup(UbxConfigInterface::Auto));
    let (outcome, _) = run(&mut c, |b, h| rx.receive(b, h), decode);
    assert!(
        matches!(&outcome, Outcome::UsedAsIs { reason, .. } if reason.contains("no reply to message set after 3 sends")),
        "{outcome:?}"
    );
    assert!(rx.ram_keys.is_empty() && rx.pending.is_none());
}

#[test]
fn an_interface_the_receiver_lacks_is_refused_before_anything_is_sent() {
    for (mut rx, interface, says) in [
        (SimUblox::m10(), UbxConfigInterface::Legacy, "no legacy CFG"),
        (
            SimUblox {
                version: ReceiverVersion {
                    software: "ROM CORE 3.01 (107888)".into(),
                    hardware: "00080000".into(),
                    extensions: vec!["PROTVER=22.00".into(), "MOD=LEA-M8T-0".into()],
                },
                ..SimUblox::new()
            },
            UbxConfigInterface::Valset,
            "no CFG-VALSET",
        ),
    ] {
        let mut c = configurator_for(&valset_setup(interface));
        let (outcome, _) = run(&mut c, |b, h| rx.receive(b, h), decode);
        assert!(
            matches!(&outcome, Outcome::UsedAsIs { baud: 9600, reason } if reason.contains(says) && reason.contains("nothing was changed")),
            "{outcome:?}"
        );
        assert_eq!(
            rx.received,
            [(ubx::CLASS_MON, ubx::ID_MON_VER)],
            "only the probe"
        );
    }
}

mod never_half_configured {
    use super::*;
    use proptest::prelude::*;

    fn answer() -> impl Strategy<Value = Answer> {
        prop_oneof![6 => Just(Answer::Ack), 1 => Just(Answer::Nak), 1 => Just(Answer::Silent)]
    }

    proptest! {
        /// Whatever the receiver answers to each kind of message, it ends
        /// configured at the rate the host reads, or with its RAM as it was
        /// (or the report says which undo went unconfirmed), or reported lost
        /// after a speed change.
        #[test]
        fn configured_or_as_it_was(
            prt in answer(), msg in answer(), tp5 in answer(), tmode in answer(), cfg in answer(),
            mute in prop::bool::weighted(0.1),
            ignores_baud in prop::bool::weighted(0.2),
            change_baud in any::<bool>(),
        ) {
            let mut rx = SimUblox::new();
            rx.mute = mute;
            rx.ignores_baud = ignores_baud;
            for (id, a) in [
                (ubx::ID_CFG_PRT, prt),
                (ubx::ID_CFG_MSG, msg),
                (ubx::ID_CFG_TP5, tp5),
                (ubx::ID_CFG_TMODE3, tmode),
                (ubx::ID_CFG_CFG, cfg),
            ] {
                rx.answers.insert((ubx::CLASS_CFG, id), a);
            }
            let setup = ReceiverSetup {
                baud: change_baud.then_some(115_200),
                ..ublox_setup()
            };
            let plan = Plan::for_setup(&setup, 9600).expect("u-blox");
            let steps = plan.steps.len();
            let mut c = Configurator::new(plan, RetryPolicy::of(&setup), 9600);
            let (outcome, host) = run(&mut c, |b, h| rx.receive(b, h), decode);
            match outcome {
                Outcome::Configured { baud } => {
                    prop_assert_eq!((baud, rx.baud), (host, host));
                    prop_assert_eq!(rx.ram.len(), steps + usize::from(change_baud));
                }
                Outcome::UsedAsIs { baud, reason } => {
                    prop_assert_eq!((baud, rx.baud), (host, host));
                    prop_assert!(
                        rx.ram.is_empty() || reason.contains("undo not confirmed"),
                        "RAM left changed: {:?} ({})", rx.ram, reason
                    );
                }
                Outcome::Unreachable { .. } => prop_assert!(change_baud),
            }
        }
    }

    proptest! {
        /// The same rule for CFG-VALSET on an M10: whatever it answers to
        /// each message of the transaction and to the reload, it ends
        /// configured with every key, or with none of them set.
        #[test]
        fn valset_configured_or_as_it_was(
            answers in prop::collection::vec(answer(), 0..6),
            cfg in answer(),
            ignores_baud in prop::bool::weighted(0.2),
            change_baud in any::<bool>(),
        ) {
            let mut rx = SimUblox::m10();
            rx.valset_answers = answers;
            rx.ignores_baud = ignores_baud;
            rx.answers.insert((ubx::CLASS_CFG, ubx::ID_CFG_CFG), cfg);
            let setup = ReceiverSetup {
                baud: change_baud.then_some(115_200),
                ..valset_setup(UbxConfigInterface::Auto)
            };
            let mut c = configurator_for(&setup);
            let (outcome, host) = run(&mut c, |b, h| rx.receive(b, h), decode);
            prop_assert!(!legacy_sent(&rx));
            match outcome {
                Outcome::Configured { baud } => {
                    prop_assert_eq!((baud, rx.baud), (host, host));
                    prop_assert!(rx.ram_keys.contains_key(&0x2091_017E));
                    prop_assert!(rx.ram_keys.contains_key(&0x1005_0007));
                }
                Outcome::UsedAsIs { baud, reason } => {
                    prop_assert_eq!((baud, rx.baud), (host, host));
                    prop_assert!(
                        rx.ram_keys.is_empty() || reason.contains("undo not confirmed"),
                        "RAM left changed: {:?} ({})", rx.ram_keys, reason
                    );
                }
                Outcome::Unreachable { .. } => prop_assert!(change_baud),
            }
        }
    }
}
