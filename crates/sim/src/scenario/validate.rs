//! The semantic checks a scenario passes before it runs: each problem named
//! by its key, so a typo'd or contradictory fixture fails loudly.

use super::*;

impl Scenario {
    /// Every semantic problem, as (key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = Vec::new();
        let mut bad = |k: &str, m: String| p.push((k.to_string(), m));
        if self.name.trim().is_empty() {
            bad("name", "must not be empty".into());
        }
        if self.duration_s == 0 {
            bad("duration_s", "must be at least 1".into());
        }
        if self.duration_s > 40 * 86_400 {
            bad(
                "duration_s",
                "longer than 40 days; split the scenario".into(),
            );
        }
        if self.warmup_s >= self.duration_s {
            bad(
                "warmup_s",
                format!("must be less than duration_s ({})", self.duration_s),
            );
        }
        match parse_utc(&self.start_utc) {
            None => bad(
                "start_utc",
                format!("`{}` is not an RFC 3339 instant", self.start_utc),
            ),
            Some(t) if t.nanosecond() != 0 => bad(
                "start_utc",
                "must be a whole second (the simulated receiver labels whole seconds)".into(),
            ),
            Some(_) => {}
        }
        let finite_nonneg = |v: f64| v.is_finite() && v >= 0.0;
        let c = &self.clock;
        for (k, v) in [
            ("clock.initial_offset_s", c.initial_offset_s),
            ("clock.initial_freq_ppm", c.initial_freq_ppm),
            (
                "clock.temperature_coeff_ppm_per_k",
                c.temperature_coeff_ppm_per_k,
            ),
            (
                "clock.temperature_quadratic_ppm_per_k2",
                c.temperature_quadratic_ppm_per_k2,
            ),
        ] {
            if !v.is_finite() {
                bad(k, "must be a finite number".into());
            }
        }
        if c.initial_offset_s.abs() > 1.0e6 {
            bad("clock.initial_offset_s", "beyond ±1e6 s".into());
        }
        if c.initial_freq_ppm.abs() > 500.0 {
            bad(
                "clock.initial_freq_ppm",
                "beyond ±500 ppm (the kernel's range)".into(),
            );
        }
        if !finite_nonneg(c.freq_random_walk_ppm) {
            bad("clock.freq_random_walk_ppm", "must be ≥ 0".into());
        }
        for (key, list) in [
            ("clock.temperature", &c.temperature),
            ("clock.hidden_heat", &c.hidden_heat),
        ] {
            for (i, t) in list.iter().enumerate() {
                if !finite_nonneg(t.at_s) || !finite_nonneg(t.ramp_s) || !t.kelvin_step.is_finite()
                {
                    bad(
                        &format!("{key}[{i}]"),
                        "at_s and ramp_s must be ≥ 0, kelvin_step finite".into(),
                    );
                }
            }
        }
        for (i, l) in c.load_heat.iter().enumerate() {
            let ok = finite_nonneg(l.from_s)
                && l.to_s.is_finite()
                && l.to_s > l.from_s
                && l.kelvin.is_finite()
                && l.time_constant_s.is_finite()
                && l.time_constant_s > 0.0;
            if !ok {
                bad(
                    &format!("clock.load_heat[{i}]"),
                    "needs 0 ≤ from_s < to_s, finite kelvin, time_constant_s > 0".into(),
                );
            }
        }
        for (i, k) in c.coefficient_changes.iter().enumerate() {
            if !finite_nonneg(k.at_s) || !k.ppm_per_k.is_finite() || k.ppm_per_k.abs() > 10.0 {
                bad(
                    &format!("clock.coefficient_changes[{i}]"),
                    "needs at_s ≥ 0 and |ppm_per_k| ≤ 10".into(),
                );
            }
        }
        let sn = &self.sensor;
        if !(sn.base_c.is_finite() && (-40.0..=100.0).contains(&sn.base_c)) {
            bad("sensor.base_c", "must be between -40 and 100 °C".into());
        }
        for (k, v) in [
            ("sensor.noise_k", sn.noise_k),
            ("sensor.quantisation_k", sn.quantisation_k),
            ("sensor.lag_s", sn.lag_s),
        ] {
            if !finite_nonneg(v) {
                bad(k, "must be ≥ 0".into());
            }
        }
        if !(1..=600).contains(&sn.interval_s) {
            bad("sensor.interval_s", "must be 1..=600".into());
        }
        for (i, j) in sn.jump.iter().enumerate() {
            if !(finite_nonneg(j.from_s)
                && j.to_s.is_finite()
                && j.to_s > j.from_s
                && j.offset_k.is_finite())
            {
                bad(
                    &format!("sensor.jump[{i}]"),
                    "needs 0 ≤ from_s < to_s and a finite offset_k".into(),
                );
            }
        }
        if !finite_nonneg(self.pps.jitter_ns) {
            bad("pps.jitter_ns", "must be ≥ 0".into());
        }
        if !self.pps.latency_ns.is_finite() || self.pps.latency_ns.abs() >= 1.0e8 {
            bad("pps.latency_ns", "must be finite and under 0.1 s".into());
        }
        if !finite_nonneg(self.pps.spurious_per_hour) || self.pps.spurious_per_hour > 36_000.0 {
            bad(
                "pps.spurious_per_hour",
                "must be between 0 and 36000".into(),
            );
        }
        let n = &self.nmea;
        if !(0.0..1000.0).contains(&n.delay_ms) {
            bad(
                "nmea.delay_ms",
                "must be in 0..1000 (the burst ends inside the second it labels)".into(),
            );
        }
        if !finite_nonneg(n.jitter_ms) || n.jitter_ms > 500.0 {
            bad("nmea.jitter_ms", "must be between 0 and 500".into());
        }
        let windows = [
            ("pps.outages", &self.pps.outages),
            ("nmea.outages", &n.outages),
            ("nmea.invalid_fix", &n.invalid_fix),
            ("sensor.freeze", &self.sensor.freeze),
            ("sensor.garbage", &self.sensor.garbage),
            ("sensor.missing", &self.sensor.missing),
        ];
        for (key, list) in windows {
            for (i, w) in list.iter().enumerate() {
                if !(w.from_s.is_finite()
                    && w.to_s.is_finite()
                    && w.from_s >= 0.0
                    && w.to_s > w.from_s)
                {
                    bad(&format!("{key}[{i}]"), "needs 0 ≤ from_s < to_s".into());
                }
            }
        }
        for (i, w) in n.wrong_second.iter().enumerate() {
            if !(w.from_s.is_finite() && w.to_s.is_finite() && w.from_s >= 0.0 && w.to_s > w.from_s)
            {
                bad(
                    &format!("nmea.wrong_second[{i}]"),
                    "needs 0 ≤ from_s < to_s".into(),
                );
            }
            if w.offset_s == 0 {
                bad(
                    &format!("nmea.wrong_second[{i}].offset_s"),
                    "0 is not a wrong second".into(),
                );
            }
        }
        let r = &self.receiver;
        if !finite_nonneg(r.timing_clock_hz)
            || (r.timing_clock_hz > 0.0 && !(1e6..=1e10).contains(&r.timing_clock_hz))
        {
            bad(
                "receiver.timing_clock_hz",
                "must be 0 (exact pulse) or between 1e6 and 1e10".into(),
            );
        }
        if !r.clock_offset_ppb.is_finite() || r.clock_offset_ppb.abs() > 100_000.0 {
            bad(
                "receiver.clock_offset_ppb",
                "must be finite and within ±100000".into(),
            );
        }
        for (key, v) in [
            ("receiver.clock_random_walk_ppb", r.clock_random_walk_ppb),
            ("receiver.q_err_noise_ps", r.q_err_noise_ps),
        ] {
            if !finite_nonneg(v) {
                bad(key, "must be ≥ 0".into());
            }
        }
        for (key, v) in [
            (
                "receiver.tim_tp_drop_probability",
                r.tim_tp_drop_probability,
            ),
            (
                "receiver.tim_tp_duplicate_probability",
                r.tim_tp_duplicate_probability,
            ),
            (
                "receiver.tim_tp_late_probability",
                r.tim_tp_late_probability,
            ),
        ] {
            if !(0.0..=1.0).contains(&v) {
                bad(key, "must be between 0 and 1".into());
            }
        }
        if r.survey_in_min_s > 0
            && !(r.survey_in_accuracy_m.is_finite() && r.survey_in_accuracy_m > 0.0)
        {
            bad(
                "receiver.survey_in_accuracy_m",
                "must be > 0 when survey_in_min_s is set".into(),
            );
        }
        match (&self.leap.insert_at_utc, &self.leap.delete_at_utc) {
            (Some(_), Some(_)) => bad(
                "leap",
                "give insert_at_utc or delete_at_utc, not both".into(),
            ),
            (Some(v), None) => {
                if let Err(m) = parse_leap(v, LeapChange::Insert) {
                    bad("leap.insert_at_utc", m);
                }
            }
            (None, Some(v)) => {
                if let Err(m) = parse_leap(v, LeapChange::Delete) {
                    bad("leap.delete_at_utc", m);
                }
            }
            (None, None) => {}
        }
        if let (Some(ev), Some(start)) = (self.leap_event(), self.start_unix_nanos()) {
            if ev.midnight_unix_secs() * NANOS_PER_SEC <= start.0 {
                bad("leap", "the leap second is before start_utc".into());
            }
        }
        p
    }
}
