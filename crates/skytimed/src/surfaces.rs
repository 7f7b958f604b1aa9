//! The operator surfaces: control socket, Prometheus metrics, status page,
//! and the once-a-second alert evaluation. Each reads [`DaemonState`]
//! snapshots only; none can disturb the discipline.
//!
//! Everything is bound here, synchronously, before the daemon reports itself
//! ready, so a port in use or a live control socket ends start-up with one
//! clear line; the tasks then run on the daemon's tokio runtime.

use crate::alerts::AlertTask;
use crate::config::Config;
use crate::ctl::report::{ReportContext, now_mono};
use crate::ctl::server::SocketFile;
use crate::state::DaemonState;
use crate::web::limits::{BoundedListener, HTTP_IDLE_TIMEOUT, MAX_HTTP_CONNECTIONS};
use anyhow::{Context, Result};
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::Listener as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often alerts are evaluated and client rates sampled.
pub const TICK: Duration = Duration::from_secs(1);

/// What was started, and how to stop it.
#[derive(Default)]
pub struct Surfaces {
    /// Bound Prometheus address.
    pub metrics: Option<SocketAddr>,
    /// Bound status page address.
    pub web: Option<SocketAddr>,
    /// Control socket path.
    pub control_socket: Option<PathBuf>,
    stop: Option<watch::Sender<bool>>,
    socket_file: Option<SocketFile>,
}

impl Surfaces {
    /// Stops the listeners and removes the control socket (only if it is
    /// still this daemon's).
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        drop(self.socket_file.take());
    }
}

/// Binds a TCP listener for `what`, with the address in the error.
fn bind_tcp(addr: SocketAddr, what: &str) -> Result<BoundedListener> {
    let std = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} for {what}"))?;
    std.set_nonblocking(true)
        .with_context(|| format!("cannot make the {what} listener non-blocking"))?;
    let listener = tokio::net::TcpListener::from_std(std)
        .with_context(|| format!("cannot register the {what} listener"))?;
    Ok(BoundedListener::new(
        listener,
        MAX_HTTP_CONNECTIONS,
        HTTP_IDLE_TIMEOUT,
    ))
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

fn spawn_http(
    runtime: &tokio::runtime::Runtime,
    listener: BoundedListener,
    app: Router,
    stop: watch::Receiver<bool>,
    what: &'static str,
) {
    runtime.spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped(stop))
            .await
        {
            tracing::error!(error = %e, "{what} server stopped");
        }
    });
}

fn metrics_router(ctx: Arc<ReportContext>) -> Router {
    let registry = Arc::new(crate::metrics::registry(ctx));
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let registry = Arc::clone(&registry);
                async move {
                    match crate::metrics::scrape(&registry) {
                        Ok(text) => (
                            [(
                                header::CONTENT_TYPE,
                                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
                            )],
                            text,
                        )
                            .into_response(),
                        Err(e) => (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("cannot encode metrics: {e}\n"),
                        )
                            .into_response(),
                    }
                }
            }),
        )
        .route(
            "/",
            get(|| async { "skytimed: Prometheus metrics are at /metrics\n" }),
        )
}

/// Binds and starts every enabled surface on `runtime`.
pub fn start(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    daemon: Arc<DaemonState>,
) -> Result<Surfaces> {
    let _enter = runtime.enter();
    let started = now_mono();
    let pps_device = if daemon.simulated {
        "simulated".to_string()
    } else {
        match config.pps.source {
            skytime_pps::PpsSourceKind::Kernel => config.pps.device.display().to_string(),
            skytime_pps::PpsSourceKind::Phc => format!(
                "{} channel {} (PHC)",
                config.pps.phc_device.display(),
                config.pps.phc_channel
            ),
        }
    };
    let ctx = Arc::new(
        ReportContext::new(
            Arc::clone(&daemon),
            started,
            config.gnss.device.display().to_string(),
            pps_device,
        )
        .with_detection_report(config.control.detection_report.clone()),
    );
    let (stop_tx, stop_rx) = watch::channel(false);

    // Control socket first: a live daemon on it means this one must not start.
    let (listener, socket_file) =
        crate::ctl::server::bind(&config.control.socket, config.control.group.as_deref())?;
    let listener = tokio::net::UnixListener::from_std(listener)
        .context("cannot register the control socket")?;
    runtime.spawn(crate::ctl::server::serve(
        listener,
        Arc::clone(&ctx),
        stop_rx.clone(),
    ));

    let mut surfaces = Surfaces {
        control_socket: Some(socket_file.path().to_path_buf()),
        socket_file: Some(socket_file),
        ..Surfaces::default()
    };

    if let Some(addr) = config.metrics.address() {
        let listener = bind_tcp(addr, "Prometheus metrics ([metrics] listen)")?;
        surfaces.metrics = Some(listener.local_addr().context("metrics listener address")?);
        spawn_http(
            runtime,
            listener,
            metrics_router(Arc::clone(&ctx)),
            stop_rx.clone(),
            "metrics",
        );
    }
    if let Some(addr) = config.web.address() {
        let listener = bind_tcp(addr, "the status page ([web] listen)")?;
        surfaces.web = Some(
            listener
                .local_addr()
                .context("status page listener address")?,
        );
        spawn_http(
            runtime,
            listener,
            crate::web::router(Arc::clone(&ctx)),
            stop_rx.clone(),
            "status page",
        );
    }

    // Alerts and client rates, once a second.
    let alerts = AlertTask::new(config.alerts.clone(), started);
    let mut stop = stop_rx;
    let tick_ctx = Arc::clone(&ctx);
    runtime.spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.changed() => return,
            }
            alerts.step(&tick_ctx.daemon, now_mono());
            tick_ctx.sample_clients();
            tick_ctx.refresh_history();
        }
    });
    surfaces.stop = Some(stop_tx);
    Ok(surfaces)
}
