//! The thermal file beside the drift file (`<drift>.thermal`): the learned
//! temperature model and the wander statistics, so that a box restarted and
//! losing its antenna at once still predicts its frequency from temperature
//! and still remembers how far its oscillator wanders.
//!
//! Format: `key value…` lines, `#` comments; written to a temporary file and
//! renamed, as the drift file is.

use super::{TempcoModel, WalkEstimate};
use crate::wander::LAGS;
use std::io::Write;
use std::path::{Path, PathBuf};

/// First line of the file.
const MAGIC: &str = "# skytime thermal model v1";

/// What is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct ThermalRecord {
    /// The temperature the model is centred on (°C) and the model
    /// (coefficients, covariance); None when no sensor has been read.
    pub model: Option<(f64, TempcoModel)>,
    /// Wander left unexplained by the model: (horizon s, ns).
    pub residual_wander: Vec<(i64, f64)>,
    /// The plain (uncompensated) worst wander per horizon of [`LAGS`], raw ns.
    pub wander: Vec<Option<f64>>,
    /// The random walk left unexplained by the model, with its degrees of
    /// freedom (a sufficient statistic: a box with days of history keeps
    /// them across a restart).
    pub residual_walk: Option<WalkEstimate>,
}

/// Why the file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ThermalFileError {
    /// Reading or writing failed.
    #[error("thermal file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not one we wrote, or is damaged.
    #[error("thermal file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Where the thermal file lives for a drift file.
pub fn path_beside(drift_file: &Path) -> PathBuf {
    let mut name = drift_file
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "drift".into());
    name.push(".thermal");
    drift_file.with_file_name(name)
}

fn pairs(v: &[(i64, f64)]) -> String {
    v.iter()
        .map(|(t, w)| format!("{t}:{w:.3}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl ThermalRecord {
    /// The file's text.
    pub fn to_text(&self) -> String {
        let model = match &self.model {
            Some((t_ref_c, m)) => {
                let cov: Vec<String> = m.p.iter().flatten().map(|v| format!("{v:e}")).collect();
                let x: Vec<String> = m.x.iter().map(|v| format!("{v:e}")).collect();
                let range = m
                    .range_k
                    .map_or(String::new(), |(lo, hi)| format!("range_k {lo:e} {hi:e}\n"));
                format!(
                    "t_ref_c {t_ref_c:.4}\ncoefficients {}\ncovariance {}\nblocks {}\n{range}",
                    x.join(" "),
                    cov.join(" "),
                    m.blocks
                )
            }
            None => String::new(),
        };
        let wander: Vec<(i64, f64)> = LAGS
            .iter()
            .zip(self.wander.iter())
            .filter_map(|(&t, w)| w.map(|w| (t, w)))
            .collect();
        let walk = self.residual_walk.map_or(String::new(), |w| {
            format!("residual_walk {:e} {:e}\n", w.q_ppb2_per_s, w.dof)
        });
        format!(
            "{MAGIC}\n{model}residual_wander {}\nwander {}\n{walk}",
            pairs(&self.residual_wander),
            pairs(&wander),
        )
    }

    /// Parses the file's text; `path` is only for the error.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ThermalFileError> {
        let bad = |reason: String| ThermalFileError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        if text.lines().next() != Some(MAGIC) {
            return Err(bad("not a skytime thermal file".into()));
        }
        let num = |s: &str| -> Result<f64, ThermalFileError> {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(format!("{s:?} is not a number")))
        };
        let pair_list = |rest: &[&str]| -> Result<Vec<(i64, f64)>, ThermalFileError> {
            rest.iter()
                .map(|p| {
                    let (t, w) = p.split_once(':').ok_or_else(|| bad(format!("{p:?}")))?;
                    let t: i64 = t.parse().map_err(|_| bad(format!("horizon {t:?}")))?;
                    let w = num(w)?;
                    if !LAGS.contains(&t) || w < 0.0 {
                        return Err(bad(format!("wander {p:?}")));
                    }
                    Ok((t, w))
                })
                .collect()
        };
        let (mut t_ref, mut x, mut p, mut blocks) = (None, None, None, None);
        let mut range_k = None;
        let (mut residual, mut wander) = (Vec::new(), vec![None; LAGS.len()]);
        let mut residual_walk = None;
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some((&key, rest)) = fields.split_first() else {
                continue;
            };
            match key {
                k if k.starts_with('#') => {}
                "t_ref_c" if rest.len() == 1 => t_ref = Some(num(rest[0])?),
                // Three coefficients (and a 3×3 covariance) from before the
                // quadratic term: it starts from its prior.
                "coefficients" if rest.len() == 3 || rest.len() == 4 => {
                    let v: Vec<f64> = rest.iter().map(|s| num(s)).collect::<Result<_, _>>()?;
                    x = Some(std::array::from_fn(|i| v.get(i).copied().unwrap_or(0.0)));
                }
                "covariance" if rest.len() == 9 || rest.len() == 16 => {
                    let v: Vec<f64> = rest.iter().map(|s| num(s)).collect::<Result<_, _>>()?;
                    let n = if v.len() == 9 { 3 } else { 4 };
                    let mut m = TempcoModel::new().p;
                    for (i, row) in m.iter_mut().enumerate().take(n) {
                        row[..n].copy_from_slice(&v[i * n..(i + 1) * n]);
                    }
                    p = Some(m);
                }
                "range_k" if rest.len() == 2 => {
                    range_k = Some((num(rest[0])?, num(rest[1])?));
                }
                "blocks" if rest.len() == 1 => {
                    blocks = Some(rest[0].parse::<u64>().map_err(|_| bad("blocks".into()))?)
                }
                "residual_wander" => residual = pair_list(rest)?,
                "residual_walk" if rest.len() == 2 => {
                    residual_walk = Some(
                        WalkEstimate::new(num(rest[0])?, num(rest[1])?)
                            .ok_or_else(|| bad(format!("residual_walk {rest:?}")))?,
                    );
                }
                "wander" => {
                    for (t, w) in pair_list(rest)? {
                        if let Some(i) = LAGS.iter().position(|&l| l == t) {
                            wander[i] = Some(w);
                        }
                    }
                }
                other => return Err(bad(format!("unexpected line {other:?}"))),
            }
        }
        let model = match (t_ref, x, p, blocks) {
            (Some(t_ref_c), Some(x), Some(p), Some(blocks)) => {
                let mut file = TempcoModel::new();
                file.x = x;
                file.p = p;
                file.blocks = blocks;
                file.range_k = range_k;
                let mut m = TempcoModel::restored(&file)
                    .ok_or_else(|| bad("covariance is not positive or range reversed".into()))?;
                // `restored` re-opens f0 for use; the record keeps the file's values.
                m.p = p;
                Some((t_ref_c, m))
            }
            (None, None, None, None) => None,
            _ => return Err(bad("the model is incomplete".into())),
        };
        Ok(Self {
            model,
            residual_wander: residual,
            wander,
            residual_walk,
        })
    }
}

/// Reads the thermal file; a missing one is `Ok(None)`.
pub fn load(path: &Path) -> Result<Option<ThermalRecord>, ThermalFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => ThermalRecord::parse(&text, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ThermalFileError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes the thermal file atomically (temporary file, sync, rename).
pub fn save(path: &Path, record: &ThermalRecord) -> Result<(), ThermalFileError> {
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "thermal".into());
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(record.to_text().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|source| ThermalFileError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ThermalRecord {
        let mut model = TempcoModel::new();
        model.x = [-18_000.0, 101.5, 5_200.0, -3.5];
        model.range_k = Some((-1.5, 4.25));
        model.p[1][1] = 9.0;
        model.p[1][2] = 3.0;
        model.p[2][1] = 3.0;
        model.blocks = 77;
        ThermalRecord {
            model: Some((41.25, model)),
            residual_wander: vec![(64, 120.5), (1024, 9_000.0)],
            wander: vec![Some(1.0), None, Some(3.0), None, Some(400_000.0)],
            residual_walk: WalkEstimate::new(0.31, 412.5),
        }
    }

    #[test]
    fn the_record_round_trips_through_the_file() {
        let dir = std::env::temp_dir().join(format!("skytime-thermal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = path_beside(&dir.join("drift"));
        assert!(path.ends_with("drift.thermal"));
        assert!(load(&path).expect("missing is fine").is_none());
        let r = record();
        save(&path, &r).expect("save");
        let back = load(&path).expect("load").expect("present");
        assert_eq!(back.model, r.model);
        assert_eq!(back.residual_wander, r.residual_wander);
        assert_eq!(back.wander, r.wander);
        assert_eq!(back.residual_walk, r.residual_walk);
        let older = ThermalRecord {
            residual_walk: None,
            ..record()
        };
        let text = older.to_text();
        assert!(!text.contains("residual_walk"));
        assert_eq!(
            ThermalRecord::parse(&text, Path::new("x")).expect("a file without the walk"),
            older
        );
        let no_sensor = ThermalRecord {
            model: None,
            ..record()
        };
        save(&path, &no_sensor).expect("save");
        assert_eq!(load(&path).expect("load"), Some(no_sensor));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_from_before_the_quadratic_term_still_loads() {
        let text = "# skytime thermal model v1\nt_ref_c 40.0000\ncoefficients -1.8e4 1e2 5e3\n\
                    covariance 1e2 0 0 0 4e0 0 0 0 1e6\nblocks 50\nresidual_wander \nwander \n";
        let r = ThermalRecord::parse(text, Path::new("x")).expect("old file");
        let (_, m) = r.model.expect("model");
        assert!((m.x[1] - 100.0).abs() < 1e-9 && m.x[3].abs() < 1e-12);
        assert!((m.p[1][1] - 4.0).abs() < 1e-9);
        assert!(m.p[3][3] > 1.0, "the quadratic term starts from its prior");
        assert!(m.quadratic().is_none() && m.range_k.is_none());
    }

    #[test]
    fn damaged_files_are_errors_not_models() {
        let good = record().to_text();
        let cases = [
            String::new(),
            "hello\n".into(),
            good.replace("blocks 77", "blocks many"),
            good.replace("t_ref_c 41.2500", "t_ref_c NaN"),
            good.replace("residual_wander 64:120.500", "residual_wander 65:1"),
            good.replace("blocks 77\n", ""),
            good.replace("range_k -1.5e0 4.25e0", "range_k 5e0 4.25e0"),
            good.replace("residual_walk 3.1e-1 4.125e2", "residual_walk 3.1e-1 2"),
            good.replace("residual_walk 3.1e-1 4.125e2", "residual_walk -1 400"),
        ];
        for text in cases {
            assert!(
                ThermalRecord::parse(&text, Path::new("x")).is_err(),
                "accepted {text:?}"
            );
        }
    }
}
