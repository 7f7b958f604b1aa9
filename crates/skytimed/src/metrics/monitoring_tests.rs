//! Everything the shipped Prometheus rules and Grafana dashboard query is
//! exported.

use super::tests::scrape_sample;

#[test]
fn every_metric_the_alert_rules_use_is_exported() {
    let text = scrape_sample();
    let rules = include_str!("../../../../monitoring/skytime-alerts.yml");
    let mut used: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("skytime_") && !w.starts_with("skytime_builtin"))
        .collect();
    used.sort_unstable();
    used.dedup();
    // Every rule queries skytimed, or Prometheus's own `up` for it.
    for rule in rules.split("- alert:").skip(1) {
        assert!(
            rule.contains("skytime_") || rule.contains("up{job=\"skytime\"}"),
            "a rule that queries nothing of skytimed's:{rule}"
        );
    }
    assert!(!used.is_empty(), "no skytime_ metric found in the rules");
    for name in used {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{'])),
            "{name} is used by monitoring/skytime-alerts.yml but not exported:\n{text}"
        );
    }
}

/// Every PromQL query string of a Grafana dashboard (`expr`, and the
/// variables' `definition`).
fn dashboard_queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(q)) => out.push(q.clone()),
                    _ => dashboard_queries(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                dashboard_queries(v, out);
            }
        }
        _ => {}
    }
}

/// The metric names a query uses: identifiers left once label matchers,
/// grouping clauses, ranges, strings, variables and PromQL's own words
/// are taken out.
fn metric_names(query: &str) -> Vec<String> {
    const PROMQL: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "rate",
        "irate",
        "increase",
        "abs",
        "by",
        "without",
        "on",
        "ignoring",
        "and",
        "or",
        "unless",
        "label_values",
        "instance",
        "clamp_min",
        "clamp_max",
        "delta",
        "deriv",
        "max_over_time",
        "min_over_time",
        "avg_over_time",
        "topk",
        "bottomk",
        "time",
    ];
    let mut cleaned = String::new();
    let mut depth_brace = 0;
    let mut depth_bracket = 0;
    let mut in_string = false;
    for c in query.chars() {
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '[' => depth_bracket += 1,
            ']' => depth_bracket -= 1,
            _ if depth_brace > 0 || depth_bracket > 0 => {}
            _ => cleaned.push(c),
        }
    }
    // Grouping labels: `by (a, b)` / `without (a)`.
    for word in ["by", "without", "on", "ignoring"] {
        while let Some(at) = cleaned.find(&format!("{word} (")) {
            let end = cleaned[at..]
                .find(')')
                .map_or(cleaned.len(), |e| at + e + 1);
            cleaned.replace_range(at..end, " ");
        }
    }
    let mut names = Vec::new();
    for word in cleaned.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$')) {
        let first = word.chars().next().unwrap_or(' ');
        if word.is_empty() || first.is_ascii_digit() || first == '$' {
            continue;
        }
        if !PROMQL.contains(&word) {
            names.push(word.to_string());
        }
    }
    names
}

#[test]
fn every_metric_the_grafana_dashboard_queries_is_exported() {
    let text = scrape_sample();
    let raw = include_str!("../../../../monitoring/grafana/skytime-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(raw).unwrap_or_else(|e| panic!("dashboard is not JSON: {e}"));
    for key in ["title", "uid", "panels", "schemaVersion", "__inputs"] {
        assert!(dashboard.get(key).is_some(), "dashboard has no {key}");
    }
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    // The walk found every query the file holds.
    let in_file = raw.matches("\"expr\":").count() + raw.matches("\"definition\":").count();
    assert_eq!(queries.len(), in_file, "{queries:?}");
    let mut used = std::collections::BTreeSet::new();
    for query in &queries {
        let names = metric_names(query);
        assert!(!names.is_empty(), "no metric in {query}");
        for name in names {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&name) && l[name.len()..].starts_with([' ', '{'])),
                "{name} (in `{query}`) is not exported by skytimed:\n{text}"
            );
            used.insert(name);
        }
    }
    // What the dashboard promises to show.
    for promised in [
        "skytime_state",
        "skytime_offset_seconds",
        "skytime_root_dispersion_seconds",
        "skytime_frequency_fast_ppm",
        "skytime_pps_reach",
        "skytime_nmea_reach",
        "skytime_satellites_used",
        "skytime_ntp_requests_total",
        "skytime_alert_active",
    ] {
        assert!(
            used.contains(promised),
            "no panel shows {promised}: {used:?}"
        );
    }
}

#[test]
fn metric_names_are_found_in_queries() {
    assert_eq!(
        metric_names(
            r#"sum by (instance, outcome) (rate(skytime_ntp_requests_total{instance=~"$instance"}[$__rate_interval]))"#
        ),
        ["skytime_ntp_requests_total"]
    );
    assert_eq!(
        metric_names(r#"-skytime_root_dispersion_seconds{a="b"} == 1 or up"#),
        ["skytime_root_dispersion_seconds", "up"]
    );
}
