//! Behaviour of the whole discipline in the small simulated world of
//! [`crate::testsim`]: pairing, rejection, every state transition, leaps, drift.
//! The sub-machines' own tests sit beside them in `discipline/`.

use crate::Clock;
use crate::testsim::{Obs, World, error_stats, served_bad, test_config};
use crate::{DriftRecord, RefclockConfig, ReferenceId, SyncState};
use skytime_timebase::{Arrival, LeapChange, TimeSource, UnixNanos};

/// The observation `t` seconds after the start.
fn at(obs: &[Obs], t: i64) -> &Obs {
    &obs[usize::try_from(t).expect("a second after the start")]
}

fn state_at(obs: &[Obs], t: i64) -> SyncState {
    at(obs, t).status.state
}

fn first(obs: &[Obs], from: i64, state: SyncState) -> Option<i64> {
    obs.iter()
        .find(|o| o.t_s >= from && o.status.state == state)
        .map(|o| o.t_s)
}

mod acquisition;
mod holdover;
mod labels;
mod leaps;
