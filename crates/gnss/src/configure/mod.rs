//! Receiver configuration, sans-IO: a state machine that sends a [`Plan`],
//! waits for each acknowledgement, retries on silence, and on a refusal or
//! lasting silence takes back what it changed, so a receiver is either
//! configured or used exactly as it was, never left half-configured.
//!
//! The caller owns the line: it performs each [`Action`] in order (a `Send`
//! must be on the wire before a following `SetHostBaud`), feeds the replies a
//! [`ReplyReader`] finds in what it reads to [`Configurator::on_reply`], and
//! calls [`Configurator::on_tick`]
//! once [`Configurator::deadline`] has passed. The speed change comes last and
//! counts only when the receiver answers at the new rate.

mod interface;
mod plan;
mod plan_valset;
mod replies;
mod settings;

pub use interface::choose as choose_ubx_messages;
pub use plan::{BaudChange, Expect, Plan, Step, UbxMessages, UbxSettings};
pub use replies::ReplyReader;
pub use settings::{ReceiverProtocol, ReceiverSetup, TimingModeSetting, UbxConfigInterface};

use crate::pmtk;
use crate::ubx::messages::{Message, ReceiverVersion};
use skytime_timebase::MonoNanos;

/// What the caller must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the receiver.
    Send(Vec<u8>),
    /// Switch the host side of the line to this rate.
    SetHostBaud(u32),
}

/// A reply read from the receiver, already decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A UBX message.
    Ubx(Message),
    /// A PMTK sentence.
    Pmtk(pmtk::Reply),
}

/// What the receiver says it is (defined in `skytime-core`).
pub use skytime_core::ReceiverInfo;

/// How configuration ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every step acknowledged; read the line at `baud`.
    Configured {
        /// The line's rate now.
        baud: u32,
    },
    /// Nothing changed, or everything changed was taken back; read at `baud`.
    UsedAsIs {
        /// The line's rate now.
        baud: u32,
        /// Why, for the log and the status page.
        reason: String,
    },
    /// After a speed change the receiver answered at neither rate: its state
    /// is unknown and the reader must find the rate again (auto-baud).
    Unreachable {
        /// Why.
        reason: String,
    },
}

/// Patience with each message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait for a reply this long before sending again, ns.
    pub reply_timeout_ns: i64,
    /// Sends of each message before the receiver counts as silent.
    pub attempts: u8,
}

impl RetryPolicy {
    /// The policy of a `[gnss.receiver]` section.
    pub fn of(setup: &ReceiverSetup) -> Self {
        RetryPolicy {
            reply_timeout_ns: i64::from(setup.reply_timeout_ms) * 1_000_000,
            attempts: setup.attempts.max(1),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Probe,
    Apply(usize),
    ConfirmBaud { at_new_rate: bool },
    Rollback { index: usize, reason: String },
    Done,
}

/// The configuration state machine for one receiver.
#[derive(Debug)]
pub struct Configurator {
    plan: Plan,
    policy: RetryPolicy,
    phase: Phase,
    sends_left: u8,
    deadline: Option<MonoNanos>,
    applied: usize,
    undo: Vec<Step>,
    undo_failures: Vec<&'static str>,
    host_baud: u32,
    receiver: Option<ReceiverInfo>,
    version: Option<ReceiverVersion>,
    outcome: Option<Outcome>,
}

enum Verdict {
    Confirms,
    Refuses(String),
    Unrelated,
}

impl Configurator {
    /// A configurator for `plan` on a line the host reads at `host_baud`.
    pub fn new(plan: Plan, policy: RetryPolicy, host_baud: u32) -> Self {
        Configurator {
            plan,
            policy,
            phase: Phase::Probe,
            sends_left: 0,
            deadline: None,
            applied: 0,
            undo: Vec::new(),
            undo_failures: Vec::new(),
            host_baud,
            receiver: None,
            version: None,
            outcome: None,
        }
    }

    /// Sends the probe.
    pub fn start(&mut self, now: MonoNanos) -> Vec<Action> {
        let mut out = Vec::new();
        self.enter(Phase::Probe, now, &mut out);
        out
    }

    /// When [`Configurator::on_tick`] is due; `None` once finished.
    pub fn deadline(&self) -> Option<MonoNanos> {
        self.deadline
    }

    /// How it ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// The receiver's family and firmware, once it has answered the probe.
    pub fn receiver(&self) -> Option<&ReceiverInfo> {
        self.receiver.as_ref()
    }

    fn current(&self) -> Option<&Step> {
        match &self.phase {
            Phase::Probe | Phase::ConfirmBaud { .. } => Some(&self.plan.probe),
            Phase::Apply(i) => self.plan.steps.get(*i),
            Phase::Rollback { index, .. } => self.undo.get(*index),
            Phase::Done => None,
        }
    }

    fn send_current(&mut self, now: MonoNanos, out: &mut Vec<Action>) {
        if let Some(step) = self.current() {
            out.push(Action::Send(step.bytes.clone()));
            self.deadline = Some(now.add_nanos(self.policy.reply_timeout_ns));
        }
    }

    fn enter(&mut self, phase: Phase, now: MonoNanos, out: &mut Vec<Action>) {
        self.phase = phase;
        self.sends_left = self.policy.attempts.saturating_sub(1);
        self.send_current(now, out);
    }

    fn finish(&mut self, outcome: Outcome) {
        match &outcome {
            Outcome::Configured { baud } => {
                tracing::info!(baud, "GNSS receiver configured")
            }
            Outcome::UsedAsIs { baud, reason } => {
                tracing::warn!(baud, %reason, "GNSS receiver used as it is")
            }
            Outcome::Unreachable { reason } => {
                tracing::warn!(%reason, "GNSS receiver lost during configuration; finding its rate again")
            }
        }
        self.phase = Phase::Done;
        self.deadline = None;
        self.outcome = Some(outcome);
    }

    fn judge(step: &Step, reply: &Reply) -> Verdict {
        match (step.expect, reply) {
            (Expect::UbxAck { class, id }, Reply::Ubx(Message::Ack(a)))
                if a.class == class && a.id == id =>
            {
                if a.accepted {
                    Verdict::Confirms
                } else {
                    Verdict::Refuses(format!("receiver refused {} (ACK-NAK)", step.what))
                }
            }
            (Expect::UbxVersion, Reply::Ubx(Message::Version(_)))
            | (Expect::PmtkRelease, Reply::Pmtk(pmtk::Reply::Release(_))) => Verdict::Confirms,
            (Expect::PmtkAck(cmd), Reply::Pmtk(pmtk::Reply::Ack { command, flag }))
                if *command == cmd =>
            {
                if *flag == pmtk::AckFlag::Succeeded {
                    Verdict::Confirms
                } else {
                    Verdict::Refuses(format!("receiver refused {} ({flag:?})", step.what))
                }
            }
            _ => Verdict::Unrelated,
        }
    }

    /// A reply arrived.
    pub fn on_reply(&mut self, reply: &Reply, now: MonoNanos) -> Vec<Action> {
        let mut out = Vec::new();
        match reply {
            Reply::Ubx(Message::Version(v)) if self.receiver.is_none() => {
                self.receiver = Some(ReceiverInfo {
                    family: v.family(),
                    firmware: v.firmware().to_owned(),
                });
                self.version = Some(v.clone());
            }
            Reply::Pmtk(pmtk::Reply::Release(fw)) if self.receiver.is_none() => {
                self.receiver = Some(ReceiverInfo {
                    family: fw.family.clone(),
                    firmware: fw.release.clone(),
                });
            }
            _ => {}
        }
        let Some(step) = self.current() else {
            return out;
        };
        match Self::judge(step, reply) {
            Verdict::Confirms => self.advance(now, &mut out),
            Verdict::Refuses(reason) => self.fail(reason, now, &mut out),
            Verdict::Unrelated => {}
        }
        out
    }

    /// Time passed; call when [`Configurator::deadline`] is reached.
    pub fn on_tick(&mut self, now: MonoNanos) -> Vec<Action> {
        let mut out = Vec::new();
        if self.deadline.is_none_or(|d| now < d) {
            return out;
        }
        if self.sends_left > 0 {
            self.sends_left -= 1;
            self.send_current(now, &mut out);
            return out;
        }
        match self.phase {
            Phase::ConfirmBaud { at_new_rate: true } => {
                // Perhaps the receiver never switched: listen at the old rate.
                if let Some(b) = &self.plan.baud {
                    tracing::warn!(
                        baud = b.to,
                        "GNSS receiver silent at the new rate; trying the old one"
                    );
                    self.host_baud = b.from;
                    out.push(Action::SetHostBaud(b.from));
                }
                self.enter(Phase::ConfirmBaud { at_new_rate: false }, now, &mut out);
            }
            Phase::ConfirmBaud { at_new_rate: false } => {
                self.finish(Outcome::Unreachable {
                    reason: "no answer at the new or the old rate after the speed change".into(),
                });
            }
            _ => {
                let what = self.current().map_or("a message", |s| s.what);
                let reason = format!("no reply to {what} after {} sends", self.policy.attempts);
                self.fail(reason, now, &mut out);
            }
        }
        out
    }

    fn advance(&mut self, now: MonoNanos, out: &mut Vec<Action>) {
        match self.phase.clone() {
            Phase::Probe => {
                if let Some(r) = &self.receiver {
                    tracing::info!(family = %r.family, firmware = %r.firmware, "GNSS receiver identified");
                }
                if let Err(reason) = self.fit_plan_to_receiver() {
                    let baud = self.host_baud;
                    self.finish(Outcome::UsedAsIs {
                        baud,
                        reason: format!("{reason}; nothing was changed"),
                    });
                    return;
                }
                self.apply_from(0, now, out);
            }
            Phase::Apply(i) => {
                self.applied = i + 1;
                self.apply_from(i + 1, now, out);
            }
            Phase::ConfirmBaud { at_new_rate: true } => {
                let baud = self.host_baud;
                self.finish(Outcome::Configured { baud });
            }
            Phase::ConfirmBaud { at_new_rate: false } => {
                self.rollback("receiver kept its old rate".into(), now, out);
            }
            Phase::Rollback { index, reason } => self.undo_from(index + 1, reason, now, out),
            Phase::Done => {}
        }
    }

    /// u-blox: rebuilds the plan in the message set the receiver MON-VER
    /// named takes (legacy CFG or CFG-VALSET, with or without timing mode).
    fn fit_plan_to_receiver(&mut self) -> Result<(), String> {
        let (Some(settings), Some(version)) = (self.plan.ubx.clone(), self.version.as_ref()) else {
            return Ok(());
        };
        let messages = interface::choose(settings.interface, version)?;
        if let (UbxMessages::Valset { timing_mode: false }, Some(mode)) =
            (messages, settings.timing_mode)
        {
            tracing::warn!(
                family = %version.family(),
                ?mode,
                "GNSS receiver has no timing mode (survey-in, fixed position): not supported, the rest is applied"
            );
        }
        let interface = match messages {
            UbxMessages::Legacy => "legacy CFG messages",
            UbxMessages::Valset { .. } => "CFG-VALSET",
        };
        tracing::info!(
            interface,
            protocol = version.protocol().unwrap_or("unknown"),
            "GNSS receiver configuration interface chosen"
        );
        self.plan = Plan::ublox(&settings, messages);
        Ok(())
    }

    fn apply_from(&mut self, index: usize, now: MonoNanos, out: &mut Vec<Action>) {
        if index < self.plan.steps.len() {
            self.enter(Phase::Apply(index), now, out);
            return;
        }
        let Some(change) = self.plan.baud.clone() else {
            let baud = self.host_baud;
            self.finish(Outcome::Configured { baud });
            return;
        };
        out.push(Action::Send(change.command));
        out.push(Action::SetHostBaud(change.to));
        self.host_baud = change.to;
        self.enter(Phase::ConfirmBaud { at_new_rate: true }, now, out);
    }

    fn fail(&mut self, reason: String, now: MonoNanos, out: &mut Vec<Action>) {
        match self.phase.clone() {
            Phase::Probe => {
                let baud = self.host_baud;
                self.finish(Outcome::UsedAsIs {
                    baud,
                    reason: format!("{reason}; nothing was changed"),
                });
            }
            Phase::Apply(_) | Phase::ConfirmBaud { .. } => {
                tracing::warn!(%reason, "GNSS receiver configuration failed; taking back what was set");
                self.rollback(reason, now, out);
            }
            Phase::Rollback { index, reason: why } => {
                let what = self.undo.get(index).map_or("undo", |s| s.what);
                self.undo_failures.push(what);
                tracing::warn!(step = what, %reason, "GNSS receiver did not confirm an undo");
                self.undo_from(index + 1, why, now, out);
            }
            Phase::Done => {}
        }
    }

    fn rollback(&mut self, reason: String, now: MonoNanos, out: &mut Vec<Action>) {
        self.undo = match &self.plan.reload {
            Some(reload) if self.applied > 0 => vec![reload.clone()],
            Some(_) => Vec::new(),
            None => self.plan.steps[..self.applied]
                .iter()
                .rev()
                .filter_map(|s| {
                    s.undo.clone().map(|bytes| Step {
                        what: s.what,
                        bytes,
                        expect: s.expect,
                        undo: None,
                    })
                })
                .collect(),
        };
        self.undo_from(0, reason, now, out);
    }

    fn undo_from(&mut self, index: usize, reason: String, now: MonoNanos, out: &mut Vec<Action>) {
        if index < self.undo.len() {
            self.enter(Phase::Rollback { index, reason }, now, out);
            return;
        }
        let baud = self.host_baud;
        let reason = if self.undo_failures.is_empty() {
            reason
        } else {
            format!(
                "{reason}; undo not confirmed for: {}",
                self.undo_failures.join(", ")
            )
        };
        self.finish(Outcome::UsedAsIs { baud, reason });
    }
}

#[cfg(test)]
mod tests;
