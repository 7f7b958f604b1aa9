//! The thin shell around the [`Configurator`]: runs it on the open serial port
//! once the line is locked, before epochs are read from it.

use crate::configure::{
    Action, Configurator, Outcome, Plan, ReceiverInfo, ReceiverSetup, ReplyReader, RetryPolicy,
};
use serialport::SerialPort;
use skytime_timebase::TimeSource;
use std::io;

/// Configures the receiver on `port` (read at `baud`); returns how it ended
/// and what the receiver said it is. Returns early, with the receiver used
/// as it is, when `stopped` says so.
pub(crate) fn configure_receiver(
    port: &mut dyn SerialPort,
    setup: &ReceiverSetup,
    baud: u32,
    clock: &dyn TimeSource,
    stopped: &dyn Fn() -> bool,
) -> (Outcome, Option<ReceiverInfo>) {
    let Some(plan) = Plan::for_setup(setup, baud) else {
        let outcome = Outcome::UsedAsIs {
            baud,
            reason: "receiver configuration is off".into(),
        };
        return (outcome, None);
    };
    tracing::info!(protocol = ?setup.protocol, baud, "configuring the GNSS receiver");
    let mut machine = Configurator::new(plan, RetryPolicy::of(setup), baud);
    let mut replies = ReplyReader::default();
    let mut buf = [0u8; 1024];
    let mut actions = machine.start(clock.monotonic());
    loop {
        for action in actions.drain(..) {
            let done = match action {
                Action::Send(bytes) => port.write_all(&bytes).and_then(|()| port.flush()),
                // flush() drains the output first, so the last command leaves at the old rate.
                Action::SetHostBaud(rate) => port
                    .flush()
                    .and_then(|()| port.set_baud_rate(rate).map_err(io::Error::from)),
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, "GNSS receiver configuration: write to the device failed");
            }
        }
        if let Some(outcome) = machine.outcome() {
            return (outcome.clone(), machine.receiver().cloned());
        }
        if stopped() {
            let outcome = Outcome::UsedAsIs {
                baud,
                reason: "stopped while configuring".into(),
            };
            return (outcome, machine.receiver().cloned());
        }
        match port.read(&mut buf) {
            Ok(0) => {
                let outcome = Outcome::Unreachable {
                    reason: "device hung up while configuring".into(),
                };
                return (outcome, machine.receiver().cloned());
            }
            Ok(n) => {
                let now = clock.monotonic();
                for reply in replies.push(&buf[..n]) {
                    actions.extend(machine.on_reply(&reply, now));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                // The device failed mid-way: what was sent cannot be taken back now.
                let outcome = Outcome::Unreachable {
                    reason: format!("device failed while configuring: {e}"),
                };
                return (outcome, machine.receiver().cloned());
            }
        }
        let now = clock.monotonic();
        if machine.deadline().is_some_and(|d| now >= d) {
            actions.extend(machine.on_tick(now));
        }
    }
}
