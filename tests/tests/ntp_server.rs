//! The NTP server inside the real `skytimed --simulate`, against the real
//! chrony client (interleaved mode with a shared key, long-running `chronyd -x`
//! shown by `chronyc ntpdata`), ntpdig, and hostile datagrams.

use skytime_e2e::{CHRONYD, ChronyClient, Daemon, TempDir, ntpdata_field as field, ntpdig};
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

const KEYS: &str = "10 AES128 HEX:6E1C1D8B2C0A8E3F4A5B6C7D8E9F0A1B\n11 SHA1 HEX:00112233445566778899AABBCCDDEEFF00112233\n";

/// Polls until the server answers stratum 1, or fails after 45 s.
fn wait_for_stratum_one(daemon: &mut Daemon) {
    daemon
        .wait_for_stratum_one(Duration::from_secs(45))
        .unwrap_or_else(|e| panic!("{e}"));
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

#[test]
fn chronyd_x_client_runs_interleaved_and_authenticated_against_skytimed() {
    skytime_e2e::require_tool(CHRONYD);
    let dir = TempDir::new("ntp-xleave");
    let mut daemon = daemon_with_keys(&dir);
    wait_for_stratum_one(&mut daemon);
    let client = ChronyClient::start(
        "ntp-chronyx",
        &format!(
            "server 127.0.0.1 port {} minpoll 0 maxpoll 0 xleave key 10",
            daemon.port
        ),
        Some(KEYS),
    )
    .expect("start chronyd -x");
    let data = client.wait_for(Duration::from_secs(30), |d| {
        let good_rx: u64 = field(d, "Total good RX")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        field(d, "Interleaved") == Some("Yes") && good_rx >= 4
    });
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
    for (version, mode) in [(0u8, 3u8), (7, 3), (4, 6), (2, 7), (4, 2), (4, 4), (4, 5)] {
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
