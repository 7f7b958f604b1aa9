//! Starting, running and stopping the daemon.
//!
//! Start-up opens every device and binds every socket before any thread runs,
//! so a missing serial or PPS device, a port in use, or a bad config ends the
//! process with one clear line and a non-zero status, never a panic or a box
//! that looks up but serves nothing.

use crate::cli::{Cli, Endpoint};
use crate::config::{Config, ConfigLoadError, DEFAULT_CONFIG_PATH, LogFormat, format_problems};
use crate::discipline::{self, Discipline, Input, InputSender};
use crate::instance::{self, LockError, StateDirLock};
use crate::paths;
use crate::state::{DaemonState, Endpoints};
use anyhow::{Context, Result, anyhow};
use arc_swap::ArcSwap;
use skytime_gnss::{GnssEvent, ReceiverReport, SerialReader};
use skytime_ntp::{NtpServer, SystemState};
use skytime_pps::{PpsEvent, PpsSource, PpsThread, PpsThreadOptions};
use skytime_refclock::{Clock, Refclock};
use skytime_sim::Scenario;
use skytime_sim::hat::{DEFAULT_REALTIME_SCENARIO, SimulatedHat};
use skytime_timebase::{HostClock, TimeSource};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// `skytimed`'s whole life: returns the process exit status.
pub fn main(cli: Cli) -> ExitCode {
    if let Some(path) = &cli.check_config {
        return check_config(path);
    }
    if let Some(crate::cli::Command::Simulate { scenario, config }) = &cli.command {
        return match crate::simulate::run(scenario, config.as_deref()) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("skytimed: error: {}", one_line(&e));
                ExitCode::from(1)
            }
        };
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line (a bad config file lists one line per problem).
            eprintln!("skytimed: error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// An error and its causes on one line, without repeating a cause that a
/// library error already spelled out in its own message.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// `--check-config FILE`: every problem with its line, exit 0 only when clean.
fn check_config(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => match check_devices(&config) {
            Ok(()) => {
                println!("{}: OK", path.display());
                ExitCode::SUCCESS
            }
            Err(problem) => {
                eprintln!("{}: {problem}", path.display());
                eprintln!("{}: 1 problem(s)", path.display());
                ExitCode::from(1)
            }
        },
        Err(ConfigLoadError::Invalid { path, problems }) => {
            eprintln!("{}", format_problems(&path, &problems));
            eprintln!("{}: {} problem(s)", path.display(), problems.len());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("skytimed: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Checks what can be checked of the configured devices on this machine: a
/// PHC source's device, when present, must answer as a PTP hardware clock
/// with an external-timestamp channel. Absent, it is only noted (the file
/// may be checked for another box); pin and channel are checked at open.
fn check_devices(config: &Config) -> std::result::Result<(), String> {
    if config.pps.source != skytime_pps::PpsSourceKind::Phc {
        return Ok(());
    }
    let device = &config.pps.phc_device;
    if !device.exists() {
        println!(
            "note: pps.phc_device {} is not present on this machine (fine when checking a file for another box)",
            device.display()
        );
        return Ok(());
    }
    skytime_pps::probe_phc(device).map_err(|e| format!("pps.phc_device: {e}"))
}

/// The configuration this run uses, and the state directory it holds.
struct Resolved {
    config: Config,
    /// Held (locked) for the daemon's life; `None` for the packaged daemon,
    /// whose directory systemd owns.
    state_dir: Option<StateDirLock>,
    /// The simulated instance number, when one was claimed.
    instance: Option<u32>,
}

/// The configuration this run uses: the file, then command-line overrides.
/// Under `--simulate` without `--state-dir` it claims the first free
/// simulated instance (or `--instance N`): its directory and its ports.
fn resolve_config(cli: &Cli) -> Result<Resolved> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path)?,
        None if !cli.simulate && Path::new(DEFAULT_CONFIG_PATH).exists() => {
            Config::load(Path::new(DEFAULT_CONFIG_PATH))?
        }
        None => Config::packaged_defaults(),
    };
    let mut instance = None;
    let state_dir = match (&cli.state_dir, cli.simulate) {
        (Some(dir), _) => Some(instance::lock_state_dir(dir).map_err(|e| match e {
            LockError::InUse { .. } => anyhow!(
                "{e} (give another --state-dir{})",
                if cli.simulate {
                    ", or leave it out to take the next free simulated instance"
                } else {
                    ""
                }
            ),
            other => anyhow!(other),
        })?),
        (None, true) => {
            let ports_given =
                !cli.listen.is_empty() && cli.metrics_listen.is_some() && cli.web_listen.is_some();
            let claimed = instance::claim(cli.instance, !ports_given)?;
            let layout = claimed.layout;
            instance = Some(layout.number);
            config.ntp.listen = vec![layout.ntp];
            config.metrics.listen = layout.metrics;
            config.web.listen = layout.web;
            Some(claimed.lock)
        }
        (None, false) => None,
    };
    if cli.simulate {
        // The simulated box is self-contained: loopback ports (instance 1's
        // when its state directory was given), its own drift file and socket.
        if instance.is_none()
            && let Some(first) = instance::InstanceLayout::of(1)
        {
            config.ntp.listen = vec![first.ntp];
            config.metrics.listen = first.metrics;
            config.web.listen = first.web;
        }
        config.control.group = None;
    }
    if let Some(lock) = &state_dir {
        config.refclock.drift_file = Some(lock.dir().join("drift"));
        config.control.socket = paths::control_socket_in(lock.dir());
        if config.nts.cookie_key_file.is_none() {
            config.nts.cookie_key_file = Some(crate::nts::cookie_key_file_in(lock.dir()));
        }
    }
    if !cli.listen.is_empty() {
        config.ntp.listen = cli.listen.clone();
    }
    for (endpoint, arg) in [
        (&mut config.metrics, cli.metrics_listen),
        (&mut config.web, cli.web_listen),
    ] {
        match arg {
            Some(Endpoint::Off) => endpoint.enabled = false,
            Some(Endpoint::At(addr)) => {
                endpoint.enabled = true;
                endpoint.listen = addr;
            }
            None => {}
        }
    }
    if let Some(level) = &cli.log_level {
        config.log.level = level.clone();
    }
    let problems = config.validate();
    if !problems.is_empty() {
        let text: Vec<String> = problems.iter().map(|(k, m)| format!("{k}: {m}")).collect();
        return Err(anyhow!("invalid settings: {}", text.join("; ")));
    }
    Ok(Resolved {
        config,
        state_dir,
        instance,
    })
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn run(cli: Cli) -> Result<()> {
    let Resolved {
        config,
        state_dir,
        instance,
    } = resolve_config(&cli)?;
    init_logging(&config);
    if let Some(number) = instance {
        tracing::info!(
            instance = number,
            state_dir = %state_dir.as_ref().map(|d| d.dir().display().to_string()).unwrap_or_default(),
            "simulated instance {number} (look at it with `skytimectl --instance {number} status`)"
        );
    }
    // Held until the daemon has stopped: no other skytimed may use the directory.
    let _state_dir = state_dir;
    if cli.simulate {
        let scenario = match &cli.scenario {
            Some(path) => {
                Scenario::load(path).with_context(|| format!("scenario {}", path.display()))?
            }
            None => Scenario::parse(DEFAULT_REALTIME_SCENARIO, "built-in")
                .context("built-in scenario")?,
        };
        let hat = SimulatedHat::start(&scenario)?;
        let mut config = config;
        config.gnss.device = hat.tty_path().to_path_buf();
        tracing::info!(
            serial = %hat.tty_path().display(),
            scenario = %scenario.name,
            "simulated GPS hat started (host clock untouched; the disciplined clock is simulated)"
        );
        let clock = hat.clock();
        let pps_hat = Arc::new(std::sync::Mutex::new(Some(hat.pps())));
        let opener = move || {
            pps_hat
                .lock()
                .ok()
                .and_then(|mut p| p.take())
                .ok_or_else(|| skytime_pps::PpsError::Disconnected {
                    path: "simulated PPS".into(),
                    reason: "the simulated PPS cannot be reopened".into(),
                })
        };
        let time: Arc<dyn TimeSource> = Arc::new(clock.clone());
        let serial = SerialReader::open(&config.gnss, Arc::clone(&time))?;
        let result = serve(config, clock, time, serial, opener, None);
        drop(hat);
        result
    } else {
        let clock = skytime_kernel::KernelClock::new();
        // The serial reader stamps arrivals with the same kernel clock.
        let time: Arc<dyn TimeSource> = Arc::new(HostClock);
        let serial = SerialReader::open(&config.gnss, Arc::clone(&time))?;
        // Fail now, with the fix in the message, rather than in the PPS thread.
        let (first, counters) = skytime_pps::open_configured(&config.pps)?;
        let pps_config = config.pps.clone();
        let mut first = Some(first);
        let shared = Arc::clone(&counters);
        let opener = move || match first.take() {
            Some(pps) => Ok(pps),
            None => skytime_pps::reopen_configured(&pps_config, &shared),
        };
        serve(config, clock, time, serial, opener, Some(counters))
    }
}

/// Binds and runs everything on `clock` (kernel or simulated) until a shutdown
/// signal. `time` reads the same clock; `pps_counters` is `None` under simulation.
fn serve<C, S, O>(
    config: Config,
    clock: C,
    time: Arc<dyn TimeSource>,
    serial: SerialReader,
    open_pps: O,
    pps_counters: Option<Arc<skytime_pps::PpsCounters>>,
) -> Result<()>
where
    C: Clock + 'static,
    S: PpsSource + 'static,
    O: FnMut() -> Result<S, skytime_pps::PpsError> + Send + 'static,
{
    let simulated = pps_counters.is_none();

    // 1. Sockets, all bound before any thread starts (devices are already open).
    let ntp_state = Arc::new(ArcSwap::from_pointee(SystemState::unsynchronised()));
    let ntp = NtpServer::bind(&config.ntp, Arc::clone(&time), Arc::clone(&ntp_state))?;
    let ntp_addrs = ntp.local_addrs();
    let nts = crate::nts::NtsSetup::prepare(&config.nts, ntp_addrs.first().map(|a| a.port()))?;
    let ntp = match &nts {
        Some(nts) => ntp.with_nts(nts.cookie_keys()),
        None => ntp,
    };

    // 2. The discipline core, from the drift file if there is one.
    let drift = match &config.refclock.drift_file {
        Some(path) => match skytime_refclock::drift::load(path) {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable drift file");
                None
            }
        },
        None => None,
    };
    if let Some(d) = &drift {
        tracing::info!(
            frequency_fast_ppm = -d.frequency_ppm,
            "starting from the drift file"
        );
    }
    let started = clock.realtime();
    let mut refclock = Refclock::new(&config.refclock, clock, drift);
    if let Some(path) = &config.refclock.drift_file {
        let path = skytime_refclock::thermal::persist::path_beside(path);
        match skytime_refclock::thermal::persist::load(&path) {
            Ok(Some(record)) => {
                refclock.restore_thermal(&record);
                tracing::info!(path = %path.display(), "starting from the thermal file (temperature model, wander)");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable thermal file")
            }
        }
    }
    let daemon = Arc::new(DaemonState::new(refclock.status(), simulated, started));
    let _ = daemon.gnss.set(serial.counters());
    if let Some(c) = pps_counters {
        let _ = daemon.pps.set(c);
    }

    // 3. Operator surfaces (control socket, metrics, status page).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("skytimed-io")
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    let surfaces = crate::surfaces::start(&runtime, &config, Arc::clone(&daemon))?;
    if let Some(nts) = nts {
        let _ = daemon.nts.set(Arc::clone(&nts.status));
        nts.start(&runtime)?;
    }

    // 4. Threads.
    let stop = Arc::new(AtomicBool::new(false));
    let (inputs, receiver) = discipline::channel();
    let ntp = Arc::new(ntp.spawn()?);
    let _ = daemon.ntp.set(Arc::clone(&ntp));
    let serial_stop = serial.stop_handle();
    let gnss_thread = spawn_serial(serial, inputs.clone())?;
    let pps_inputs = inputs.clone();
    let pps_thread = PpsThread::spawn(
        open_pps,
        PpsThreadOptions {
            realtime_priority: Some(50),
            ..PpsThreadOptions::default()
        },
        move |event| match event {
            PpsEvent::Edge(edge) => {
                if pps_inputs.send(Input::Pps(edge)) {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            }
            PpsEvent::Silent | PpsEvent::Error(_) => ControlFlow::Continue(()),
        },
    )
    .context("cannot start the PPS thread")?;
    let sensor_thread = match &config.refclock.temperature_sensor {
        Some(path) => Some(
            crate::thermal_sensor::spawn(
                path.clone(),
                config.refclock.temperature_scale,
                std::time::Duration::from_millis(config.refclock.temperature_interval_ms),
                inputs.clone(),
                Arc::clone(&stop),
            )
            .context("cannot start the temperature sensor thread")?,
        ),
        None => None,
    };
    drop(inputs);
    let watchdog = watchdog_enabled();
    let discipline_thread = Discipline {
        refclock,
        inputs: receiver,
        ntp_state,
        daemon: Arc::clone(&daemon),
        drift_file: config.refclock.drift_file.clone(),
        stop: Arc::clone(&stop),
        heartbeat: Box::new(move || {
            if watchdog {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
        }),
    }
    .spawn()
    .context("cannot start the discipline thread")?;

    let endpoints = Endpoints {
        ntp: ntp_addrs.clone(),
        metrics: surfaces.metrics,
        web: surfaces.web,
        control_socket: surfaces.control_socket.clone(),
    };
    for addr in &endpoints.ntp {
        tracing::info!(%addr, "serving NTP");
    }
    if let Some(addr) = endpoints.metrics {
        tracing::info!(url = %format!("http://{addr}/metrics"), "serving Prometheus metrics");
    }
    if let Some(addr) = endpoints.web {
        tracing::info!(url = %format!("http://{addr}/"), "serving the status page");
    }
    if let Some(path) = &endpoints.control_socket {
        tracing::info!(path = %path.display(), "control socket ready (skytimectl)");
    }
    let _ = daemon.endpoints.set(endpoints);
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);

    // 5. Run until told to stop.
    runtime.block_on(wait_for_shutdown_signal());
    tracing::info!("stopping");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    stop.store(true, Ordering::Relaxed);
    serial_stop.stop();
    let _ = discipline_thread.join();
    if let Some(t) = sensor_thread {
        let _ = t.join();
    }
    pps_thread.stop();
    let _ = gnss_thread.join();
    if let Ok(handle) = Arc::try_unwrap(ntp) {
        handle.shutdown();
    }
    surfaces.stop();
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    Ok(())
}

fn spawn_serial(serial: SerialReader, inputs: InputSender) -> Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("gnss".into())
        .spawn(move || {
            serial.run(|event| match event {
                GnssEvent::Epoch(epoch) => {
                    if inputs.send(Input::Epoch(Box::new(epoch))) {
                        ControlFlow::Continue(())
                    } else {
                        ControlFlow::Break(())
                    }
                }
                // Timing reports go to the discipline beside the epochs (qErr, survey-in).
                GnssEvent::Report(
                    report @ (ReceiverReport::TimePulse { .. } | ReceiverReport::SurveyIn(_)),
                ) => {
                    if inputs.send(Input::Report(report)) {
                        ControlFlow::Continue(())
                    } else {
                        ControlFlow::Break(())
                    }
                }
                // The reader logs its own state changes once each.
                _ => ControlFlow::Continue(()),
            })
        })
        .context("cannot start the serial thread")
}

fn watchdog_enabled() -> bool {
    sd_notify::watchdog_enabled().is_some()
}

async fn wait_for_shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Without signal handlers, run until killed.
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn scratch(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("skytimed-resolve-{tag}-{}", std::process::id()))
    }

    #[test]
    fn simulate_with_a_state_dir_stays_on_loopback_and_locks_it() {
        let dir = scratch("given");
        let dir_arg = dir.display().to_string();
        let cli = Cli::parse_from(["skytimed", "--simulate", "--state-dir", &dir_arg]);
        let resolved = resolve_config(&cli).expect("resolves");
        assert_eq!(resolved.config.ntp.listen[0].to_string(), "127.0.0.1:12300");
        assert_eq!(resolved.config.web.listen.to_string(), "127.0.0.1:12380");
        assert_eq!(
            resolved.config.metrics.listen.to_string(),
            "127.0.0.1:12390"
        );
        assert_eq!(resolved.config.control.socket, dir.join("skytimed.sock"));
        assert_eq!(resolved.instance, None);
        // A second daemon on the same directory is refused while this one holds it.
        let second = resolve_config(&cli).err().map(|e| one_line(&e));
        assert!(
            second
                .as_deref()
                .is_some_and(|m| m.contains("in use by another running skytimed")),
            "{second:?}"
        );
        drop(resolved);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
