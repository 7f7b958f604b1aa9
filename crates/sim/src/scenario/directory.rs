//! A directory of scenario files, loaded in natural order.

use super::*;

/// The file in a scenario directory that holds targets, not a scenario.
pub const TARGETS_FILE: &str = "targets.toml";

/// Every scenario file (`*.toml` except [`TARGETS_FILE`]) in `dir`, loaded and
/// in natural order (s2 before s10), for benchmarks and batch runs.
pub fn project_scenarios(dir: &Path) -> Result<Vec<(std::path::PathBuf, Scenario)>, ScenarioError> {
    let read_err = |source| ScenarioError::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        let is_toml = path.extension().is_some_and(|e| e == "toml");
        let is_targets = path.file_name().is_some_and(|n| n == TARGETS_FILE);
        if is_toml && !is_targets {
            paths.push(path);
        }
    }
    // By stem: with the extension, "x-late.toml" would sort before "x.toml".
    paths.sort_by_key(|p| {
        natural_key(
            &p.file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
    });
    paths
        .into_iter()
        .map(|p| Scenario::load(&p).map(|s| (p, s)))
        .collect()
}

/// Splits a name into text and number runs so that "s10" sorts after "s2".
pub(super) fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut n = u64::from(c as u8 - b'0');
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(u64::from(d));
                chars.next();
            }
            key.push((std::mem::take(&mut text), n));
        } else {
            text.push(c);
        }
    }
    key.push((text, 0));
    key
}
