//! How honest and how tight a run's holdover bound was, read from its
//! per-second trace (see [`crate::runner::TRACE_HEADER`]): the holdover
//! sweep (many seeds) and the scenario benchmark both judge the bound by it.

/// What one run says about its holdover bound.
#[derive(Clone, Debug, PartialEq)]
pub struct HoldoverDigest {
    /// Seconds in holdover.
    pub holdover_s: u64,
    /// Of those, the seconds served as synchronised.
    pub holdover_served_s: u64,
    /// Largest |error| over the served holdover seconds, ns.
    pub holdover_max_err_ns: f64,
    /// The largest bound served in the longest holdover episode (reached as
    /// the outage ends), ns.
    pub peak_bound_ns: f64,
    /// That bound's ratio to the episode's largest |error| (NaN without a
    /// served holdover).
    pub peak_ratio: f64,
    /// The smallest bound / |error| while coasting (served holdover seconds
    /// up to each episode's largest bound; below 1: served wrong).
    pub coast_min_ratio: f64,
    /// The second of the run where `coast_min_ratio` was seen.
    pub coast_min_at_s: u64,
    /// The same after the bound collapsed (pulses back, state still holdover).
    pub return_min_ratio: f64,
}

impl Default for HoldoverDigest {
    fn default() -> Self {
        Self {
            holdover_s: 0,
            holdover_served_s: 0,
            holdover_max_err_ns: 0.0,
            peak_bound_ns: 0.0,
            peak_ratio: f64::NAN,
            coast_min_ratio: f64::INFINITY,
            coast_min_at_s: 0,
            return_min_ratio: f64::INFINITY,
        }
    }
}

/// One served holdover second: (second, |error| ns, bound ns).
type Served = (u64, f64, f64);

/// Digests a per-second trace (header line first); lines it cannot read are
/// skipped.
pub fn digest_trace(trace: &str) -> HoldoverDigest {
    let mut out = HoldoverDigest::default();
    let mut episode: Vec<Served> = Vec::new();
    let mut longest = 0usize;
    for line in trace.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        if cols.len() < 6 {
            continue;
        }
        let t: u64 = cols[0].parse().unwrap_or(0);
        let err: f64 = cols[2].parse().unwrap_or(f64::NAN);
        let holdover = cols[3] == "holdover";
        let serving = cols[4] == "1";
        let bound: f64 = cols[5].parse().unwrap_or(f64::NAN);
        if !holdover {
            close_episode(&mut episode, &mut longest, &mut out);
            continue;
        }
        out.holdover_s += 1;
        if !serving {
            continue;
        }
        out.holdover_served_s += 1;
        out.holdover_max_err_ns = out.holdover_max_err_ns.max(err.abs());
        episode.push((t, err.abs(), bound));
    }
    close_episode(&mut episode, &mut longest, &mut out);
    out
}

/// Folds one holdover episode's served seconds into `out`.
fn close_episode(ep: &mut Vec<Served>, longest: &mut usize, out: &mut HoldoverDigest) {
    if ep.is_empty() {
        return;
    }
    // The bound grows while coasting and collapses when pulses return.
    let peak = ep
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.2.total_cmp(&b.1.2))
        .map_or(0, |(i, _)| i);
    for (i, &(t, err, bound)) in ep.iter().enumerate() {
        let ratio = bound / err.max(1.0);
        if i <= peak && ratio < out.coast_min_ratio {
            out.coast_min_ratio = ratio;
            out.coast_min_at_s = t;
        }
        if i > peak {
            out.return_min_ratio = out.return_min_ratio.min(ratio);
        }
    }
    if ep.len() > *longest {
        *longest = ep.len();
        let max_err = ep.iter().fold(0.0f64, |m, e| m.max(e.1));
        out.peak_bound_ns = ep[peak].2;
        out.peak_ratio = ep[peak].2 / max_err.max(1.0);
    }
    ep.clear();
}

/// Median of the finite values of `v`; NaN when there are none.
pub fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::TRACE_HEADER;

    fn line(t: u64, err: f64, state: &str, serving: bool, bound: f64) -> String {
        format!("{t},x,{err},{state},{},{bound}", u8::from(serving))
    }

    #[track_caller]
    fn assert_close(got: f64, want: f64, what: &str) {
        assert!((got - want).abs() < 1e-9, "{got}, want {want}: {what}");
    }

    #[test]
    fn the_longest_episode_gives_the_peak_ratio_and_the_tightest_second_is_found() {
        let mut lines = vec![
            TRACE_HEADER.to_string(),
            line(0, 5.0, "locked", true, 100.0),
        ];
        // A short episode, then a longer one whose bound peaks at 800 ns.
        lines.push(line(1, 50.0, "holdover", true, 200.0));
        lines.push(line(2, 1.0, "locked", true, 50.0));
        for (t, err, bound) in [(3, 10.0, 300.0), (4, 100.0, 500.0), (5, 80.0, 800.0)] {
            lines.push(line(t, err, "holdover", true, bound));
        }
        // Pulses back: the bound collapses, still in holdover.
        lines.push(line(6, 20.0, "holdover", true, 60.0));
        lines.push(line(7, 9000.0, "holdover", false, 60.0));
        let d = digest_trace(&lines.join("\n"));
        assert_eq!((d.holdover_s, d.holdover_served_s), (6, 5));
        assert_close(d.peak_bound_ns, 800.0, "the bound as the outage ends");
        assert_close(d.peak_ratio, 8.0, "800 ns over the episode's worst 100 ns");
        assert_eq!((d.coast_min_ratio, d.coast_min_at_s), (4.0, 1));
        assert_close(d.return_min_ratio, 3.0, "after the bound collapsed");
        assert_close(
            d.holdover_max_err_ns,
            100.0,
            "unserved seconds do not count",
        );
    }

    #[test]
    fn no_holdover_no_ratio_and_the_median_ignores_what_is_not_a_number() {
        let d = digest_trace(&format!(
            "{TRACE_HEADER}\n{}",
            line(0, 5.0, "locked", true, 9.0)
        ));
        assert!(d.peak_ratio.is_nan());
        assert_close(median(&[3.0, f64::NAN, 1.0, 2.0]), 2.0, "NaN is skipped");
        assert_close(median(&[4.0, 1.0]), 2.5, "the mean of the middle two");
        assert!(median(&[]).is_nan());
    }
}
