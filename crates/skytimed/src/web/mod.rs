//! The status page: one self-contained page (HTML, CSS and JavaScript built
//! into the binary, no external assets, works offline) that polls a small
//! JSON API. Every handler reads snapshots only, so the page can never slow
//! the discipline.
//!
//! Routes: `/` (the page), `/app.js`, `/style.css`, `/api/status` (the
//! [`crate::ctl::protocol::StatusReport`] `skytimectl status --json` prints),
//! `/api/history` (the last hour, one point per second, as columns),
//! `/api/sources`, `/api/clients`.

pub mod limits;

use crate::ctl::protocol::{DEFAULT_CLIENT_LIMIT, MAX_CLIENT_LIMIT};
use crate::ctl::report::ReportContext;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const STYLE_CSS: &str = include_str!("style.css");

/// Only this origin's own scripts and styles, and `fetch` to itself.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode: {e}"),
        )
            .into_response(),
    }
}

/// The last hour as columns (compact, and what a plot wants).
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct HistoryColumns {
    /// Seconds since the Unix epoch (disciplined clock).
    pub t: Vec<i64>,
    /// Offset estimate, ns.
    pub offset_ns: Vec<f64>,
    /// Jitter estimate, ns.
    pub jitter_ns: Vec<f64>,
    /// Root dispersion, ns.
    pub root_dispersion_ns: Vec<f64>,
    /// Temperature sensor reading, °C (null: none).
    #[serde(default)]
    pub temperature_c: Vec<Option<f64>>,
    /// 1 while in holdover.
    #[serde(default)]
    pub holdover: Vec<u8>,
}

/// `?since=UNIX_SECONDS`: only newer points.
#[derive(Debug, Deserialize)]
struct HistoryQuery {
    since: Option<i64>,
}

/// `?limit=N`.
#[derive(Debug, Deserialize)]
struct ClientsQuery {
    limit: Option<usize>,
}

fn finite(v: f64) -> f64 {
    if v.is_finite() {
        (v * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// The daemon's history, newer than `since`, as columns.
pub fn history_columns(ctx: &ReportContext, since: Option<i64>) -> HistoryColumns {
    let points = ctx.history();
    let mut out = HistoryColumns::default();
    for p in points
        .iter()
        .filter(|p| since.is_none_or(|s| p.at.secs() > s))
    {
        out.t.push(p.at.secs());
        out.offset_ns.push(finite(p.offset_ns));
        out.jitter_ns.push(finite(p.jitter_ns));
        out.root_dispersion_ns.push(finite(p.root_dispersion_ns));
        out.temperature_c.push(
            p.temperature_c
                .filter(|c| c.is_finite())
                .map(|c| (c * 1000.0).round() / 1000.0),
        );
        out.holdover.push(u8::from(p.holdover));
    }
    out
}

/// The status page's router.
pub fn router(ctx: Arc<ReportContext>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route(
            "/api/status",
            get(|State(ctx): State<Arc<ReportContext>>| async move { json(&ctx.status()) }),
        )
        .route(
            "/api/sources",
            get(|State(ctx): State<Arc<ReportContext>>| async move { json(&ctx.sources()) }),
        )
        .route(
            "/api/clients",
            get(
                |State(ctx): State<Arc<ReportContext>>, Query(q): Query<ClientsQuery>| async move {
                    json(
                        &ctx.clients(
                            q.limit
                                .unwrap_or(DEFAULT_CLIENT_LIMIT)
                                .min(MAX_CLIENT_LIMIT),
                        ),
                    )
                },
            ),
        )
        .route(
            "/api/history",
            get(
                |State(ctx): State<Arc<ReportContext>>, Query(q): Query<HistoryQuery>| async move {
                    json(&history_columns(&ctx, q.since))
                },
            ),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: see / for the status page\n",
            )
        })
        .with_state(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{DaemonState, HistoryPoint};
    use skytime_timebase::{MonoNanos, UnixNanos};

    #[test]
    fn history_is_columns_filtered_by_since() {
        let daemon = Arc::new(DaemonState::new(
            crate::fixtures::locked_status(),
            true,
            UnixNanos(0),
        ));
        let points = 10;
        for s in 0..points {
            daemon.record(HistoryPoint {
                at: UnixNanos::from_secs_nanos(1000 + s, 0),
                offset_ns: s as f64 * 1.25,
                jitter_ns: f64::NAN,
                root_dispersion_ns: 5.0,
                temperature_c: Some(41.5),
                holdover: false,
            });
        }
        let ctx = ReportContext::new(daemon, MonoNanos(0), String::new(), String::new());
        assert!(
            history_columns(&ctx, None).t.is_empty(),
            "served before the first refresh"
        );
        ctx.refresh_history();
        let all = history_columns(&ctx, None);
        assert_eq!(all.t, (1000..1000 + points).collect::<Vec<_>>());
        let recent = history_columns(&ctx, Some(1006));
        assert_eq!(recent.t, vec![1007, 1008, 1009]);
        assert_eq!(recent.offset_ns, vec![8.8, 10.0, 11.3]);
        assert_eq!(recent.jitter_ns, vec![0.0; 3], "NaN must not reach JSON");
    }

    #[test]
    fn the_page_uses_no_external_asset() {
        for (name, text) in [
            ("index.html", INDEX_HTML),
            ("app.js", APP_JS),
            ("style.css", STYLE_CSS),
        ] {
            for needle in ["http://", "https://", "//cdn", "@import"] {
                let hits: Vec<&str> = text
                    .lines()
                    .filter(|l| l.contains(needle) && !l.contains("http://www.w3.org/2000/svg"))
                    .collect();
                assert!(hits.is_empty(), "{name} refers outside: {hits:?}");
            }
        }
        assert!(INDEX_HTML.contains("src=\"app.js\""));
        assert!(INDEX_HTML.contains("href=\"style.css\""));
    }
}
