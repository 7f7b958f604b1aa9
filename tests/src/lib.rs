//! Shared harness for the end-to-end tests: building and starting the real
//! `skytimed`, finding free ports, and running the real chrony and ntpdig
//! clients against it. Nothing here imitates a peer; it only drives them.
//! `skytime-ntp`'s integration tests use the same drivers against the server
//! in-process (this crate depends on no skytime crate, so there is no cycle).

pub mod pki;

use anyhow::{Context, Result, anyhow, bail};
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The workspace root, for locating binaries, configs and scenarios.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Directory holding this test build's binaries (`target/<profile>/`).
fn binary_dir() -> PathBuf {
    // The test executable lives in target/<profile>/deps/.
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().and_then(Path::parent).map(Path::to_path_buf))
        .unwrap_or_else(|| workspace_root().join("target/debug"))
}

/// Path to a workspace binary (`skytimed`, `skytimectl`), built once per test
/// process with the same profile and target directory as the tests, so the
/// tests always exercise the current sources.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let release = binary_dir().file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "-p", "skytimed", "--bins"])
            .current_dir(workspace_root());
        if release {
            cmd.arg("--release");
        }
        match cmd.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("cargo build -p skytimed failed: {s}")),
            Err(e) => Err(format!("cannot run cargo: {e}")),
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    binary_dir().join(name)
}

/// A distinct loopback source address per call (127.0.1.1, 127.0.1.2, ...),
/// so test clients are separate clients to the server's per-client rate
/// limit, as separate machines on a LAN would be.
pub fn next_client_address() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + std::process::id() * 7;
    format!(
        "127.{}.{}.{}",
        1 + (n >> 16) % 200,
        (n >> 8) & 0xff,
        1 + (n & 0xff) % 254
    )
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind an ephemeral UDP port: {e}"))
}

/// The real chrony daemon, run only with `-Q` or `-x` (never touches the clock).
pub const CHRONYD: &str = "/usr/sbin/chronyd";
/// chrony's command client, for `ntpdata` of a [`ChronyClient`].
pub const CHRONYC: &str = "/usr/bin/chronyc";

/// Fails the test with an actionable message if a peer program is missing.
pub fn require_tool(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: run the README's test command, which installs chrony and ntpsec-ntpdig"
    );
}

/// A scratch directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory under the system temp dir.
    pub fn new(tag: &str) -> Self {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("skytime-e2e-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        TempDir(dir)
    }
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A running `skytimed` started by a test. Killed (by its PID, via the
/// `Child` handle) when dropped; its log is kept in memory for assertions.
pub struct Daemon {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    started: Instant,
    /// The NTP port it serves on 127.0.0.1.
    pub port: u16,
    /// Scratch directory for its control socket and drift file.
    pub dir: TempDir,
}

impl Daemon {
    /// `skytimed --simulate` on a free loopback port, with its control socket,
    /// metrics and status page kept inside a private scratch directory.
    pub fn simulate(extra_args: &[&str]) -> Result<Daemon> {
        let port = free_udp_port();
        let dir = TempDir::new("daemon");
        let listen = format!("127.0.0.1:{port}");
        let mut args: Vec<String> = vec!["--simulate".into(), "--listen".into(), listen];
        args.push("--state-dir".into());
        args.push(dir.path().display().to_string());
        // Tests run side by side: any free ports, read back from the log.
        for flag in ["--metrics-listen", "--web-listen"] {
            args.push(flag.into());
            args.push("127.0.0.1:0".into());
        }
        args.extend(extra_args.iter().map(|s| s.to_string()));
        Self::spawn(&args, port, dir)
    }

    /// Starts `skytimed` with exactly these arguments.
    pub fn spawn(args: &[String], port: u16, dir: TempDir) -> Result<Daemon> {
        Self::spawn_with_env(args, &[], port, dir)
    }

    /// Starts `skytimed` with these arguments and extra environment variables
    /// (e.g. a private `XDG_RUNTIME_DIR` for its default state directories).
    pub fn spawn_with_env(
        args: &[String],
        env: &[(&str, &Path)],
        port: u16,
        dir: TempDir,
    ) -> Result<Daemon> {
        let mut child = Command::new(binary("skytimed"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawn skytimed")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(|l| l.ok()) {
                    if std::env::var_os("SKYTIME_E2E_ECHO").is_some() {
                        eprintln!("[skytimed] {line}");
                    }
                    if let Ok(mut l) = log.lock() {
                        l.push(line);
                    }
                }
            });
        }
        Ok(Daemon {
            child,
            log,
            started: Instant::now(),
            port,
            dir,
        })
    }

    /// Seconds since the daemon was started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Everything the daemon logged so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until a log line contains `needle`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log_lines().into_iter().find(|l| l.contains(needle)) {
                return Ok(line);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "skytimed exited ({status}) before logging {needle:?}:\n{}",
                    self.log_lines().join("\n")
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "no {needle:?} in skytimed's log after {timeout:?}:\n{}",
                    self.log_lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls with plain client requests until the daemon serves stratum 1 and
    /// returns its uptime then; fails if it dies or `timeout` passes first.
    pub fn wait_for_stratum_one(&mut self, timeout: Duration) -> Result<Duration> {
        let server = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_running() {
                bail!("skytimed died:\n{}", self.log_lines().join("\n"));
            }
            if let Ok(Some(reply)) = raw_query(server, Duration::from_millis(300))
                && reply.stratum == 1
            {
                return Ok(self.uptime());
            }
            if Instant::now() >= deadline {
                bail!(
                    "no stratum 1 within {timeout:?}:\n{}",
                    self.log_lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The child's PID (for /proc-based measurements).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for exit; returns the exit status. The scratch
    /// directory stays until the `Daemon` is dropped.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        self.stop_with(libc::SIGTERM)
    }

    /// Sends `signal` (SIGTERM, or SIGINT as Ctrl-C does) and waits up to 10 s
    /// for the exit status.
    pub fn stop_with(&mut self, signal: libc::c_int) -> Result<std::process::ExitStatus> {
        let pid = i32::try_from(self.child.id()).context("pid out of range")?;
        // SAFETY: kill(2) on the PID of a child this process spawned and has not reaped.
        unsafe { libc::kill(pid, signal) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("skytimed did not exit within 10 s of signal {signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a program to completion with a timeout, capturing its output.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {cmd:?}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(child.wait_with_output()?);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            bail!(
                "{cmd:?} timed out after {timeout:?}; stdout: {} stderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What ntpdig reported for one query (its `-j` JSON).
#[derive(Debug, Clone)]
pub struct NtpdigReport {
    /// Offset of the local (host) clock from the server, seconds.
    pub offset_s: f64,
    /// Stratum the server sent.
    pub stratum: u64,
    /// Leap status as ntpdig words it ("no-leap", "add-leap", "del-leap", "unsync").
    pub leap: String,
    /// The whole JSON object, for anything else.
    pub json: serde_json::Value,
}

/// Queries `host` on `port` with the real ntpdig (ntpsec), from a fresh
/// loopback source address for IPv4 (see [`next_client_address`]). Four
/// samples; ntpdig reports the best.
pub fn ntpdig(host: &str, port: u16) -> Result<NtpdigReport> {
    let source = if host.contains(':') {
        String::new()
    } else {
        next_client_address()
    };
    ntpdig_from(host, port, &source)
}

/// Queries with ntpdig from `source` ("" for the kernel's choice). ntpdig has
/// no port or source option, so Python's `socket.getaddrinfo` is wrapped to
/// substitute the port, and new IPv4 sockets are bound to the source first.
pub fn ntpdig_from(host: &str, port: u16, source: &str) -> Result<NtpdigReport> {
    require_tool("/usr/bin/ntpdig");
    const WRAPPER: &str = "import socket, runpy, sys\n\
        orig = socket.getaddrinfo\n\
        port = int(sys.argv[1])\n\
        source = sys.argv[2]\n\
        socket.getaddrinfo = lambda host, _port, *a, **k: orig(host, port, *a, **k)\n\
        class Bound(socket.socket):\n\
        \x20   def __init__(self, family=socket.AF_INET, *a, **k):\n\
        \x20       super().__init__(family, *a, **k)\n\
        \x20       if source and family == socket.AF_INET:\n\
        \x20           self.bind((source, 0))\n\
        socket.socket = Bound\n\
        sys.argv = ['ntpdig'] + sys.argv[3:]\n\
        runpy.run_path('/usr/bin/ntpdig', run_name='__main__')\n";
    let out = run_with_timeout(
        Command::new("/usr/bin/python3").args([
            "-c",
            WRAPPER,
            &port.to_string(),
            source,
            "-j",
            "-t",
            "2",
            // Four samples 100 ms apart; ntpdig reports the one with the
            // smallest synchronisation distance, as NTP's clock filter would,
            // so one sample delayed by this machine's scheduler does not decide.
            "-p",
            "4",
            "-g",
            "100",
            host,
        ]),
        Duration::from_secs(15),
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| {
            anyhow!(
                "ntpdig printed no JSON (status {}): stdout {stdout:?} stderr {:?}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let json: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("parse {line}"))?;
    Ok(NtpdigReport {
        offset_s: json["offset"]
            .as_f64()
            .ok_or_else(|| anyhow!("no offset in {line}"))?,
        stratum: json["stratum"]
            .as_u64()
            .ok_or_else(|| anyhow!("no stratum in {line}"))?,
        leap: json["leap"].as_str().unwrap_or_default().to_string(),
        json,
    })
}

/// A long-running `chronyd -x` client (never touches the clock), read through
/// `chronyc ntpdata`, which shows every field the server returned. Killed by
/// its PID (via the `Child` handle) when dropped.
pub struct ChronyClient {
    child: Child,
    socket: PathBuf,
    _dir: TempDir,
}

impl ChronyClient {
    /// Starts `chronyd -x` with one `server_line` (e.g. `server 127.0.0.1
    /// port P xleave`) and, when given, a keyfile with these contents.
    pub fn start(tag: &str, server_line: &str, keyfile: Option<&str>) -> Result<ChronyClient> {
        Self::start_with(tag, server_line, keyfile, "")
    }

    /// As [`ChronyClient::start`], with extra configuration lines (e.g.
    /// `ntstrustedcerts FILE`).
    pub fn start_with(
        tag: &str,
        server_line: &str,
        keyfile: Option<&str>,
        extra_conf: &str,
    ) -> Result<ChronyClient> {
        require_tool(CHRONYD);
        require_tool(CHRONYC);
        let dir = TempDir::new(tag);
        // chronyd refuses a command socket in a directory others can read.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
            .context("chmod the chronyd directory")?;
        let socket = dir.path().join("chronyd.sock");
        let mut conf = format!(
            "{server_line}\ncmdport 0\nbindcmdaddress {}\npidfile {}\n",
            socket.display(),
            dir.path().join("chronyd.pid").display()
        );
        conf.push_str(extra_conf);
        if let Some(keys) = keyfile {
            let path = dir.path().join("keys");
            fs::write(&path, keys).context("write the client keyfile")?;
            conf.push_str(&format!("keyfile {}\n", path.display()));
        }
        let conf_path = dir.path().join("chrony.conf");
        fs::write(&conf_path, conf).context("write chrony.conf")?;
        let child = Command::new(CHRONYD)
            .args(["-x", "-u", "root", "-d", "-f"])
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn chronyd -x")?;
        Ok(ChronyClient {
            child,
            socket,
            _dir: dir,
        })
    }

    /// `chronyc ntpdata` now ("" if chronyc fails or hangs).
    pub fn ntpdata(&self) -> String {
        self.chronyc(&["ntpdata"])
    }

    /// Any `chronyc -n` command (`authdata`, `sources`...): its output, or ""
    /// if chronyc fails or hangs.
    pub fn chronyc(&self, command: &[&str]) -> String {
        run_with_timeout(
            Command::new(CHRONYC)
                .arg("-h")
                .arg(&self.socket)
                .arg("-n")
                .args(command),
            Duration::from_secs(5),
        )
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
    }

    /// Polls `chronyc ntpdata` until `done` holds or `timeout` passes,
    /// returning the last output either way.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < timeout {
            last = self.ntpdata();
            if done(&last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        last
    }
}

impl Drop for ChronyClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of one `Name : value` line of `chronyc ntpdata` output.
pub fn ntpdata_field<'a>(ntpdata: &'a str, name: &str) -> Option<&'a str> {
    ntpdata
        .lines()
        .find(|l| l.trim_start().starts_with(name))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim())
}

/// What a one-shot `chronyd -Q` measured of the server.
#[derive(Debug, Clone)]
pub struct ChronyReport {
    /// "System clock wrong by X seconds": host clock minus server, as chrony says it.
    pub clock_wrong_by_s: f64,
    /// Leap status column of chrony's measurements log (N, +, -, ?).
    pub leap: String,
    /// Stratum the server sent.
    pub stratum: u32,
    /// Reference id, as chrony's log prints it (hex).
    pub refid_hex: String,
    /// Root dispersion the server sent, seconds.
    pub root_dispersion_s: f64,
    /// Everything chronyd printed.
    pub output: String,
}

/// Runs the real one-shot chrony client (`chronyd -Q`, never touches the
/// clock) against 127.0.0.1:`port`, from a fresh loopback source address
/// (`bindacqaddress`), and reads what it measured.
pub fn chrony_oneshot(port: u16) -> Result<ChronyReport> {
    chrony_oneshot_from(port, &next_client_address())
}

/// [`chrony_oneshot`] from the given IPv4 source address.
pub fn chrony_oneshot_from(port: u16, source: &str) -> Result<ChronyReport> {
    require_tool(CHRONYD);
    let dir = TempDir::new("chronyq");
    let pidfile = dir.path().join("chronyd.pid");
    let out = run_with_timeout(
        Command::new(CHRONYD).args([
            "-Q".to_string(),
            "-u".into(),
            "root".into(),
            "-t".into(),
            "20".into(),
            format!("server 127.0.0.1 port {port} iburst maxsamples 1"),
            "cmdport 0".into(),
            format!("pidfile {}", pidfile.display()),
            format!("logdir {}", dir.path().display()),
            "log measurements".into(),
            format!("bindacqaddress {source}"),
        ]),
        Duration::from_secs(30),
    )?;
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let wrong_by = output
        .lines()
        .find_map(|l| {
            let rest = l.split("System clock wrong by ").nth(1)?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .ok_or_else(|| anyhow!("chronyd -Q did not report an offset:\n{output}"))?;
    let log = fs::read_to_string(dir.path().join("measurements.log")).unwrap_or_default();
    let row = log
        .lines()
        .rev()
        .find(|l| l.split_whitespace().nth(2) == Some("127.0.0.1"))
        .ok_or_else(|| anyhow!("no measurement row in chrony's log:\n{log}\n{output}"))?;
    let cols: Vec<&str> = row.split_whitespace().collect();
    // Date Time IP L St 123 567 ABCD LP RP Score Offset PeerDel PeerDisp RootDel RootDisp Refid MTxRx
    if cols.len() < 17 {
        bail!("unexpected chrony measurement row: {row}");
    }
    Ok(ChronyReport {
        clock_wrong_by_s: wrong_by,
        leap: cols[3].to_string(),
        stratum: cols[4]
            .parse()
            .with_context(|| format!("stratum in {row}"))?,
        root_dispersion_s: cols[15]
            .parse()
            .with_context(|| format!("root disp in {row}"))?,
        refid_hex: cols[16].to_string(),
        output,
    })
}

/// The header fields of one raw NTP reply, for the checks that need the
/// bytes themselves (LI and stratum before lock, when clients may refuse to print).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawReply {
    /// Leap indicator (3 = unsynchronised).
    pub leap_indicator: u8,
    /// Protocol version.
    pub version: u8,
    /// Mode (4 = server).
    pub mode: u8,
    /// Stratum (16 or 0 = unsynchronised).
    pub stratum: u8,
}

/// Sends one plain NTPv4 client request and returns the reply's header, or
/// `None` if the server stayed silent for `timeout`.
pub fn raw_query(server: SocketAddr, timeout: Duration) -> Result<Option<RawReply>> {
    let bind = if server.is_ipv4() {
        format!("{}:0", next_client_address())
    } else {
        "[::1]:0".to_string()
    };
    let sock = UdpSocket::bind(bind.as_str())?;
    sock.set_read_timeout(Some(timeout))?;
    let mut req = [0u8; 48];
    req[0] = (4 << 3) | 3; // LI 0, version 4, mode 3 (client)
    req[40..48].copy_from_slice(&0x1234_5678_9abc_def0u64.to_be_bytes());
    sock.send_to(&req, server)?;
    let mut buf = [0u8; 1024];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) if n >= 48 => {
            if buf[24..32] != req[40..48] {
                bail!("reply's origin timestamp does not echo our transmit timestamp");
            }
            Ok(Some(RawReply {
                leap_indicator: buf[0] >> 6,
                version: (buf[0] >> 3) & 7,
                mode: buf[0] & 7,
                stratum: buf[1],
            }))
        }
        Ok((n, _)) => bail!("short reply of {n} bytes"),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
