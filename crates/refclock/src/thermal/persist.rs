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
                format!(
                    "t_ref_c {t_ref_c:.4}\ncoefficients {:e} {:e} {:e}\ncovariance {}\nblocks {}\n",
                    m.x[0],
                    m.x[1],
                    m.x[2],
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
                "coefficients" if rest.len() == 3 => {
                    x = Some([num(rest[0])?, num(rest[1])?, num(rest[2])?])
                }
                "covariance" if rest.len() == 9 => {
                    let v: Vec<f64> = rest.iter().map(|s| num(s)).collect::<Result<_, _>>()?;
                    p = Some([[v[0], v[1], v[2]], [v[3], v[4], v[5]], [v[6], v[7], v[8]]]);
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
                let mut m = TempcoModel::restored(x, p, blocks)
                    .ok_or_else(|| bad("covariance is not positive".into()))?;
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
        model.x = [-18_000.0, 101.5, 5_200.0];
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
    fn damaged_files_are_errors_not_models() {
        let good = record().to_text();
        let cases = [
            String::new(),
            "hello\n".into(),
            good.replace("blocks 77", "blocks many"),
            good.replace("t_ref_c 41.2500", "t_ref_c NaN"),
            good.replace("residual_wander 64:120.500", "residual_wander 65:1"),
            good.replace("blocks 77\n", ""),
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
