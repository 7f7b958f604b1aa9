//! What each scenario must achieve, kept apart from the scenario files (which
//! describe the world, not the verdict) in `scenarios/targets.toml`.
//!
//! Every scenario, listed or not, must have `served_bad_s = 0`: serving a
//! wrong time as synchronised is never acceptable.

use crate::runner::ScenarioReport;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Upper limits on a scenario's report fields (all optional; "≤").
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Most RMS offset after warm-up, ns.
    pub rms_offset_ns: Option<f64>,
    /// Most |offset| after warm-up, ns.
    pub max_abs_offset_ns: Option<f64>,
    /// Latest lock (must lock).
    pub lock_time_s: Option<u64>,
    /// Latest first synchronised second (must synchronise).
    pub sync_time_s: Option<u64>,
    /// Most seconds served wrong (default 0 for every scenario).
    pub served_bad_s: Option<u64>,
    /// Most |offset| in holdover, ns.
    pub holdover_max_abs_offset_ns: Option<f64>,
    /// Most clock steps.
    pub steps: Option<u64>,
}

/// One target checked against a report.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// Report field.
    pub field: &'static str,
    /// What the run achieved, as printed.
    pub achieved: String,
    /// The limit, as printed.
    pub limit: String,
    /// Whether the limit was met.
    pub met: bool,
}

impl Targets {
    /// Checks `report` against these targets (plus `served_bad_s` ≤ 0 when unset).
    pub fn check(&self, report: &ScenarioReport) -> Vec<Verdict> {
        let mut v = Vec::new();
        let secs = |s: Option<u64>| s.map(|s| s as f64);
        // A missing result (never locked, never synchronised) meets no limit,
        // except in holdover, where "never needed" is fine.
        let checks = [
            (
                "rms_offset_ns",
                Some(report.rms_offset_ns),
                self.rms_offset_ns,
                false,
            ),
            (
                "max_abs_offset_ns",
                Some(report.max_abs_offset_ns),
                self.max_abs_offset_ns,
                false,
            ),
            (
                "lock_time_s",
                secs(report.lock_time_s),
                secs(self.lock_time_s),
                false,
            ),
            (
                "sync_time_s",
                secs(report.sync_time_s),
                secs(self.sync_time_s),
                false,
            ),
            (
                "served_bad_s",
                Some(report.served_bad_s as f64),
                Some(self.served_bad_s.unwrap_or(0) as f64),
                false,
            ),
            (
                "holdover_max_abs_offset_ns",
                report.holdover_max_abs_offset_ns,
                self.holdover_max_abs_offset_ns,
                true,
            ),
            ("steps", Some(report.steps as f64), secs(self.steps), false),
        ];
        for (field, got, limit, missing_ok) in checks {
            let Some(limit) = limit else { continue };
            v.push(Verdict {
                field,
                achieved: got.map_or("null".into(), |g| format!("{g}")),
                limit: format!("≤ {limit}"),
                met: got.map_or(missing_ok, |g| g <= limit),
            });
        }
        v
    }
}

/// Targets by scenario name.
pub type TargetTable = BTreeMap<String, Targets>;

/// Reads `targets.toml` (scenario name → [`Targets`]); unknown keys are errors.
pub fn load_targets(path: &Path) -> Result<TargetTable, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ScenarioReport {
        ScenarioReport {
            name: "x".into(),
            rms_offset_ns: 50.0,
            max_abs_offset_ns: 400.0,
            lock_time_s: None,
            sync_time_s: Some(10),
            served_bad_s: 0,
            holdover_max_abs_offset_ns: None,
            steps: 2,
        }
    }

    #[test]
    fn limits_are_upper_bounds_and_missing_results_fail_them() {
        let t = Targets {
            rms_offset_ns: Some(60.0),
            max_abs_offset_ns: Some(300.0),
            lock_time_s: Some(20),
            steps: Some(1),
            holdover_max_abs_offset_ns: Some(1000.0),
            ..Default::default()
        };
        let v = t.check(&report());
        let met: Vec<(&str, bool)> = v.iter().map(|x| (x.field, x.met)).collect();
        assert_eq!(
            met,
            [
                ("rms_offset_ns", true),
                ("max_abs_offset_ns", false),
                ("lock_time_s", false),
                ("served_bad_s", true),
                ("holdover_max_abs_offset_ns", true),
                ("steps", false),
            ]
        );
    }

    #[test]
    fn served_bad_is_checked_even_without_targets() {
        let mut r = report();
        r.served_bad_s = 1;
        let v = Targets::default().check(&r);
        assert_eq!(v.len(), 1);
        assert!(!v[0].met);
    }

    #[test]
    fn project_targets_parse_and_name_existing_scenarios() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        let table = load_targets(&dir.join("targets.toml")).expect("targets.toml");
        let names: Vec<String> = crate::scenario::project_scenarios(&dir)
            .expect("scenarios")
            .into_iter()
            .map(|(_, s)| s.name)
            .collect();
        for name in table.keys() {
            assert!(
                names.contains(name),
                "targets.toml names unknown scenario {name}"
            );
        }
        assert!(table.contains_key("s0-chrony-anchor"));
    }
}
