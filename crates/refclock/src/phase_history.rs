//! The free-running phase ψ of recent pulses, kept by pulse number in a ring:
//! what the noise learner and the wander tracker take second differences of.

/// ψ (ns) of the last `len` pulse numbers; a slot holds its pulse number, so a
/// lookup never returns a pulse the ring has since overwritten.
#[derive(Clone, Debug)]
pub(crate) struct PhaseHistory {
    slots: Vec<Option<(i64, f64)>>,
}

impl PhaseHistory {
    /// An empty ring of `len` pulses.
    pub(crate) fn new(len: usize) -> Self {
        Self {
            slots: vec![None; len],
        }
    }

    /// Forgets every pulse (after a phase jump or relabel).
    pub(crate) fn clear(&mut self) {
        self.slots.iter_mut().for_each(|h| *h = None);
    }

    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap,
        reason = "the ring holds a few thousand pulses, and rem_euclid is in 0..len"
    )]
    fn slot(&self, idx: i64) -> usize {
        idx.rem_euclid(self.slots.len() as i64) as usize
    }

    /// Records ψ of the pulse numbered `idx`.
    pub(crate) fn insert(&mut self, idx: i64, psi_ns: f64) {
        let slot = self.slot(idx);
        self.slots[slot] = Some((idx, psi_ns));
    }

    fn at(&self, idx: i64) -> Option<f64> {
        match self.slots[self.slot(idx)] {
            Some((i, p)) if i == idx => Some(p),
            _ => None,
        }
    }

    /// The second difference at lag τ, ψ(idx) − 2ψ(idx − τ) + ψ(idx − 2τ),
    /// when all three pulses are held.
    pub(crate) fn second_difference(&self, idx: i64, tau: i64) -> Option<f64> {
        Some(self.at(idx)? - 2.0 * self.at(idx - tau)? + self.at(idx - 2 * tau)?)
    }
}
