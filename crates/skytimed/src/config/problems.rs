//! Turning a TOML file into a typed config while collecting *every* problem,
//! each with its dotted key and line number.
//!
//! serde stops at the first error, which makes for a miserable edit-run-edit
//! loop on a headless box. So: unknown keys are gathered with `serde_ignored`
//! (no `deny_unknown_fields` anywhere), and on a type error the offending key is
//! located from the error's span, recorded, removed from a copy of the document,
//! and deserialisation is retried until it succeeds.

use serde::de::DeserializeOwned;
use std::fmt;
use std::ops::Range;
use toml_edit::{Document, DocumentMut, Item};

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path (`gnss.baud`), empty for file-level errors.
    pub key: String,
    /// 1-based line in the file, when the key or error is located in it.
    pub line: Option<usize>,
    /// What is wrong, and where useful, what would be right.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.key.is_empty()) {
            (Some(line), false) => write!(f, "line {line}: {}: {}", self.key, self.message),
            (Some(line), true) => write!(f, "line {line}: {}", self.message),
            (None, false) => write!(f, "{}: {}", self.key, self.message),
            (None, true) => write!(f, "{}", self.message),
        }
    }
}

/// Deserialises `text` into `T`, returning the value only when there were no
/// problems at all, and otherwise every problem found. `known_keys` (dotted
/// paths a complete config can have) powers "did you mean" hints.
pub fn deserialize_all<T: DeserializeOwned>(
    text: &str,
    known_keys: &[String],
) -> Result<T, Vec<ConfigProblem>> {
    match deserialize_repairing(text, known_keys) {
        (Some(value), problems) if problems.is_empty() => Ok(value),
        (_, problems) => Err(problems),
    }
}

/// Like [`deserialize_all`], but also returns the value obtained after dropping
/// every offending key (so defaults stand in), when the file could be parsed at
/// all. Semantic checks can then run over it and report their problems too.
pub fn deserialize_repairing<T: DeserializeOwned>(
    text: &str,
    known_keys: &[String],
) -> (Option<T>, Vec<ConfigProblem>) {
    let original = match Document::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let problem = ConfigProblem {
                key: String::new(),
                line: e.span().map(|s| line_of(text, s.start)),
                message: format!("not valid TOML: {}", e.message()),
            };
            return (None, vec![problem]);
        }
    };
    let mut problems = Vec::new();
    let mut current = text.to_string();
    // Each retry removes one key, so the loop is bounded by the number of keys.
    for _ in 0..256 {
        let mut unknown = Vec::new();
        let result = toml::Deserializer::parse(&current)
            .and_then(|de| serde_ignored::deserialize(de, |path| unknown.push(path.to_string())));
        for key in unknown {
            problems.push(ConfigProblem {
                line: locate(&original, &key),
                message: unknown_key_message(&key, known_keys),
                key,
            });
        }
        match result {
            Ok(value) => return (Some(value), dedup(problems)),
            Err(e) => {
                let doc = match Document::parse(current.as_str()) {
                    Ok(doc) => doc,
                    Err(_) => break,
                };
                let key = e.span().and_then(|span| key_at(&doc, &span));
                let Some(key) = key else {
                    problems.push(ConfigProblem {
                        key: String::new(),
                        line: e.span().map(|s| line_of(&current, s.start)),
                        message: e.message().to_string(),
                    });
                    break;
                };
                problems.push(ConfigProblem {
                    line: locate(&original, &key),
                    message: e.message().to_string(),
                    key: key.clone(),
                });
                match remove_key(&current, &key) {
                    Some(next) => current = next,
                    None => break,
                }
            }
        }
    }
    (None, dedup(problems))
}

/// Attaches line numbers to semantic problems found after deserialisation.
pub fn locate_problems(text: &str, problems: Vec<(String, String)>) -> Vec<ConfigProblem> {
    let doc = Document::parse(text).ok();
    problems
        .into_iter()
        .map(|(key, message)| ConfigProblem {
            line: doc.as_ref().and_then(|d| locate(d, &key)),
            key,
            message,
        })
        .collect()
}

fn dedup(mut problems: Vec<ConfigProblem>) -> Vec<ConfigProblem> {
    let mut seen = std::collections::HashSet::new();
    problems.retain(|p| seen.insert((p.key.clone(), p.message.clone())));
    problems.sort_by_key(|p| (p.line.unwrap_or(usize::MAX), p.key.clone()));
    problems
}

fn unknown_key_message(key: &str, known: &[String]) -> String {
    let (parent, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let best = known
        .iter()
        .filter_map(|k| {
            let (kp, kl) = k.rsplit_once('.').unwrap_or(("", k));
            if kp != parent {
                return None;
            }
            let prefix = kl.len() >= 3 && (leaf.starts_with(kl) || kl.starts_with(leaf));
            let score = if prefix { 1 } else { edit_distance(leaf, kl) };
            (score <= 2.max(kl.len() / 3)).then_some((score, k))
        })
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, k)) => format!("unknown key (did you mean `{k}`?)"),
        None => "unknown key".to_string(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line on which a dotted key path is written, if it is in the document.
pub fn locate<S: AsRef<str>>(doc: &Document<S>, dotted: &str) -> Option<usize> {
    let raw = doc.raw();
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    let mut line = None;
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let (key, item) = table.get_key_value(part)?;
        line = key
            .span()
            .or_else(|| item.span())
            .map(|s| line_of(raw, s.start))
            .or(line);
        if i + 1 == parts.len() {
            break;
        }
        match item {
            Item::Table(t) => table = t,
            Item::Value(toml_edit::Value::InlineTable(t)) => table = t,
            // Array elements and deeper: the line of the array is the best we have.
            _ => break,
        }
    }
    line
}

/// The deepest key whose value's span contains `span`.
fn key_at<S: AsRef<str>>(doc: &Document<S>, span: &Range<usize>) -> Option<String> {
    fn walk(table: &dyn toml_edit::TableLike, span: &Range<usize>, prefix: &str) -> Option<String> {
        for (name, item) in table.iter() {
            let path = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            };
            let inner = match item {
                Item::Table(t) => walk(t, span, &path),
                Item::Value(toml_edit::Value::InlineTable(t)) => walk(t, span, &path),
                _ => None,
            };
            if inner.is_some() {
                return inner;
            }
            let key_span = table.key(name).and_then(|k| k.span());
            let contains = |s: Option<Range<usize>>| {
                s.is_some_and(|s| s.start <= span.start && span.end <= s.end.max(s.start + 1))
            };
            if !matches!(item, Item::Table(_)) && (contains(item.span()) || contains(key_span)) {
                return Some(path);
            }
        }
        None
    }
    walk(doc.as_table(), span, "").or_else(|| {
        // A table-level error (e.g. a whole section of the wrong type): name the table.
        doc.as_table().iter().find_map(|(name, item)| {
            item.span()
                .filter(|s| s.start <= span.start && span.end <= s.end)
                .map(|_| name.to_string())
        })
    })
}

/// A copy of the document without the dotted key.
fn remove_key(text: &str, dotted: &str) -> Option<String> {
    let mut doc: DocumentMut = text.parse().ok()?;
    let parts: Vec<&str> = dotted.split('.').collect();
    let (last, parents) = parts.split_last()?;
    let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
    for part in parents {
        table = match table.get_mut(part)? {
            Item::Table(t) => t,
            Item::Value(toml_edit::Value::InlineTable(t)) => t,
            _ => return None,
        };
    }
    table.remove(last)?;
    Some(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(default)]
    struct Serial {
        device: String,
        baud: u32,
    }

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(default)]
    struct Log {
        level: String,
    }

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(default)]
    struct Top {
        gnss: Serial,
        log: Log,
    }

    fn known() -> Vec<String> {
        ["gnss", "gnss.device", "gnss.baud", "log", "log.level"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn a_good_file_deserialises() {
        let t: Top = deserialize_all("[gnss]\ndevice = \"/dev/x\"\nbaud = 9600\n", &known())
            .expect("valid config");
        assert_eq!(t.gnss.baud, 9600);
    }

    #[test]
    fn every_unknown_key_and_type_error_is_reported_with_its_line() {
        let text = "[gnss]\ndevice = \"/dev/x\"\nbaud_rat = 9600\nbaud = \"fast\"\n\n[log]\nlevle = \"info\"\n[extra]\nx = 1\n";
        let problems = deserialize_all::<Top>(text, &known()).expect_err("has problems");
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(
            lines
                .iter()
                .any(|l| l
                    .starts_with("line 3: gnss.baud_rat: unknown key (did you mean `gnss.baud`?)")),
            "{lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("line 4: gnss.baud:")),
            "{lines:#?}"
        );
        assert!(
            lines.iter().any(
                |l| l.starts_with("line 7: log.levle: unknown key (did you mean `log.level`?)")
            ),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("line 8: extra: unknown key")),
            "{lines:#?}"
        );
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let problems =
            deserialize_all::<Top>("[gnss]\nbaud = = 3\n", &known()).expect_err("bad toml");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(2), "{problems:?}");
    }

    #[test]
    fn semantic_problems_are_located() {
        let text = "[gnss]\n\nbaud = 7\n";
        let p = locate_problems(
            text,
            vec![("gnss.baud".into(), "not a standard rate".into())],
        );
        assert_eq!(p[0].to_string(), "line 3: gnss.baud: not a standard rate");
        let p = locate_problems(text, vec![("gnss.device".into(), "missing".into())]);
        assert_eq!(p[0].to_string(), "gnss.device: missing");
    }
}
