//! The NTP server inside the real `skytimed --simulate`, against the real
//! chrony client (interleaved mode with a shared key, long-running `chronyd -x`
//! shown by `chronyc ntpdata`), ntpdig, and hostile datagrams.

use skytime_e2e::{Daemon, TempDir, ntpdig, raw_query, run_with_timeout};
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHRONYD: &str = "/usr/sbin/chronyd";
const CHRONYC: &str = "/usr/bin/chronyc";
const KEYS: &str = "10 AES128 HEX:6E1C1D8B2C0A8E3F4A5B6C7D8E9F0A1B\n11 SHA1 HEX:00112233445566778899AABBCCDDEEFF00112233\n";

fn wait_for_stratum_one(daemon: &mut Daemon) {
    let server = SocketAddr::from(([127, 0, 0, 1], daemon.port));
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        assert!(
            daemon.is_running(),
            "skytimed died:\n{}",
            daemon.log_lines().join("\n")
        );
        if let Ok(Some(r)) = raw_query(server, Duration::from_millis(300))
            && r.stratum == 1
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no stratum 1:\n{}",
            daemon.log_lines().join("\n")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// skytimed --simulate with a keyfile and a rate limit loose enough for a
/// client polling every second.
fn daemon_with_keys(dir: &TempDir) -> Daemon {
    let keyfile = dir.path().join("ntp.keys");
    fs::write(&keyfile, KEYS).expect("keyfile");
    let config = dir.path().join("skytime.toml");
    fs::write(
        &config,
        format!(
            "[ntp]\nkeyfile = \"{}\"\n\n[ntp.ratelimit]\ninterval_log2_s = -1\nburst = 16\n",
            keyfile.display()
        ),
    )
    .expect("config");
    let config = config.display().to_string();
    Daemon::simulate(&["--config", &config]).expect("start skytimed --simulate")
}

/// A long-running `chronyd -x` client (never touches the clock), killed when dropped.
struct ChronyClient {
    child: Child,
    socket: PathBuf,
    _dir: TempDir,
}

impl ChronyClient {
    fn start(server_line: &str) -> ChronyClient {
        let dir = TempDir::new("ntp-chronyx");
        // chronyd refuses a command socket in a directory others can read.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        let socket = dir.path().join("chronyd.sock");
        let keys = dir.path().join("keys");
        fs::write(&keys, KEYS).expect("client keyfile");
        let conf = dir.path().join("chrony.conf");
        fs::write(
            &conf,
            format!(
                "{server_line}\nkeyfile {}\ncmdport 0\nbindcmdaddress {}\npidfile {}\n",
                keys.display(),
                socket.display(),
                dir.path().join("chronyd.pid").display()
            ),
        )
        .expect("chrony.conf");
        let child = Command::new(CHRONYD)
            .args(["-x", "-u", "root", "-d", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chronyd -x");
        ChronyClient {
            child,
            socket,
            _dir: dir,
        }
    }

    fn ntpdata(&self) -> String {
        run_with_timeout(
            Command::new(CHRONYC)
                .arg("-h")
                .arg(&self.socket)
                .args(["-n", "ntpdata"]),
            Duration::from_secs(5),
        )
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
    }
}

impl Drop for ChronyClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field<'a>(ntpdata: &'a str, name: &str) -> Option<&'a str> {
    ntpdata
        .lines()
        .find(|l| l.trim_start().starts_with(name))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim())
}

#[test]
fn chronyd_x_client_runs_interleaved_and_authenticated_against_skytimed() {
    skytime_e2e::require_tool(CHRONYD);
    let dir = TempDir::new("ntp-xleave");
    let mut daemon = daemon_with_keys(&dir);
    wait_for_stratum_one(&mut daemon);
    let client = ChronyClient::start(&format!(
        "server 127.0.0.1 port {} minpoll 0 maxpoll 0 xleave key 10",
        daemon.port
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut data = String::new();
    while Instant::now() < deadline {
        data = client.ntpdata();
        let good_rx: u64 = field(&data, "Total good RX")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if field(&data, "Interleaved") == Some("Yes") && good_rx >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("chronyc ntpdata against skytimed --simulate (xleave, key 10):\n{data}");
    assert_eq!(field(&data, "Interleaved"), Some("Yes"), "{data}");
    assert_eq!(field(&data, "Authenticated"), Some("Yes"), "{data}");
    assert_eq!(field(&data, "Stratum"), Some("1"), "{data}");
    assert_eq!(field(&data, "Leap status"), Some("Normal"), "{data}");
    assert_eq!(field(&data, "Mode"), Some("Server"), "{data}");
    let offset_s: f64 = field(&data, "Offset")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    assert!(offset_s.abs() < 1e-3, "offset {offset_s} s\n{data}");
}

#[test]
fn ntpdig_gets_stratum_one_and_hostile_datagrams_get_nothing() {
    let mut daemon = Daemon::simulate(&[]).expect("start skytimed --simulate");
    wait_for_stratum_one(&mut daemon);
    let server = SocketAddr::from(([127, 0, 0, 1], daemon.port));

    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut request = [0u8; 48];
    request[0] = (4 << 3) | 3;
    let mut hostile: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x1b; 12],
        request[..47].to_vec(),
        vec![0u8; 3000],
    ];
    for (version, mode) in [(0u8, 3u8), (7, 3), (4, 6), (2, 7), (4, 1), (4, 4), (4, 5)] {
        let mut p = request.to_vec();
        p[0] = (version << 3) | mode;
        hostile.push(p);
    }
    let mut bad_ef = request.to_vec();
    bad_ef.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    hostile.push(bad_ef);
    let mut buf = [0u8; 4096];
    for p in &hostile {
        sock.send_to(p, server).expect("send");
        assert!(
            sock.recv_from(&mut buf).is_err(),
            "answered a hostile {}-byte datagram",
            p.len()
        );
    }
    assert!(
        daemon.is_running(),
        "skytimed died:\n{}",
        daemon.log_lines().join("\n")
    );

    let report = ntpdig("127.0.0.1", daemon.port).expect("ntpdig");
    assert_eq!(report.stratum, 1, "{:?}", report.json);
    assert_eq!(report.leap, "no-leap", "{:?}", report.json);
    assert!(report.offset_s.abs() < 1e-3, "{:?}", report.json);
}
