//! NTS end to end: the real `skytimed --simulate` serving NTS to Debian's
//! chrony 4.3 (`chronyd -x`, never touching the clock) across a certificate
//! swap and a restart; two skytimed instances sharing a cookie key file;
//! and a mixed fleet: a chrony NTS server and a skytimed reading its `ntskeys`.

use skytime_e2e::pki::TestCa;
use skytime_e2e::{CHRONYD, ChronyClient, Daemon, TempDir, free_udp_port, ntpdata_field};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free TCP port")
}

/// Writes a config serving NTS on `ke_port` with the given key file role.
fn write_config(dir: &Path, name: &str, ke_port: u16, key_file: &Path, role: &str) -> String {
    let config = dir.join(name);
    fs::write(
        &config,
        format!(
            "[ntp.ratelimit]\nenabled = false\n\n[nts]\ncertificate = \"{}\"\nprivate_key = \"{}\"\nke_listen = [\"127.0.0.1:{ke_port}\"]\ncookie_key_file = \"{}\"\ncookie_key_role = \"{role}\"\n",
            dir.join("nts.crt").display(),
            dir.join("nts.key").display(),
            key_file.display(),
        ),
    )
    .expect("write config");
    config.display().to_string()
}

/// `skytimed --simulate` on a fixed NTP port (so a restart keeps it).
fn start(ntp_port: u16, config: &str) -> Daemon {
    let state = TempDir::new("nts-state");
    let args: Vec<String> = [
        "--simulate",
        "--listen",
        &format!("127.0.0.1:{ntp_port}"),
        "--state-dir",
        &state.path().display().to_string(),
        "--metrics-listen",
        "127.0.0.1:0",
        "--web-listen",
        "127.0.0.1:0",
        "--config",
        config,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut daemon = Daemon::spawn(&args, ntp_port, state).expect("start skytimed");
    daemon
        .wait_for_log("serving NTS-KE", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    daemon
}

fn counter(ntpdata: &str, name: &str) -> u64 {
    ntpdata_field(ntpdata, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{ntpdata}"))
}

/// The authdata row of the server: (mode, KE attempts, NAKs, cookies, last KE age s).
fn authdata_row(client: &ChronyClient) -> (String, Vec<String>) {
    let text = client.chronyc(&["authdata"]);
    let row = text
        .lines()
        .find(|l| l.starts_with("127.0.0.1"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    (text, row)
}

/// Seconds from chrony's "Last" column (e.g. `12`, `3m`, `2h`).
fn age_s(text: &str) -> u64 {
    let (digits, unit): (String, String) = text.chars().partition(|c| c.is_ascii_digit());
    let n: u64 = digits.parse().unwrap_or(0);
    match unit.as_str() {
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => n,
    }
}

/// Waits for the client's next poll to be sent and answered; returns
/// (TX, RX) counters then.
fn after_next_poll(client: &ChronyClient) -> (u64, u64) {
    let before = counter(&client.ntpdata(), "Total TX");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let data = client.ntpdata();
        if counter(&data, "Total TX") > before {
            std::thread::sleep(Duration::from_millis(300));
            let data = client.ntpdata();
            return (counter(&data, "Total TX"), counter(&data, "Total RX"));
        }
        assert!(
            Instant::now() < deadline,
            "chronyd stopped polling:\n{data}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn chrony_uses_nts_across_a_certificate_swap_and_a_restart_without_new_nts_ke() {
    skytime_e2e::require_tool(CHRONYD);
    let work = TempDir::new("nts-chrony");
    let ca = TestCa::new().expect("CA");
    let ca_file = work.path().join("ca.pem");
    ca.write_ca(&ca_file).expect("write CA");
    ca.issue_to(
        &work.path().join("nts.crt"),
        &work.path().join("nts.key"),
        "skytime one",
    )
    .expect("issue");
    let (ntp_port, ke_port) = (free_udp_port(), free_tcp_port());
    let key_file = work.path().join("cookie-keys");
    let config = write_config(work.path(), "skytime.toml", ke_port, &key_file, "writer");
    let mut daemon = start(ntp_port, &config);
    daemon
        .wait_for_stratum_one(Duration::from_secs(45))
        .unwrap_or_else(|e| panic!("{e}"));

    let client = ChronyClient::start_with(
        "nts-client",
        &format!(
            "server 127.0.0.1 port {ntp_port} nts ntsport {ke_port} minpoll 1 maxpoll 1 iburst"
        ),
        None,
        &format!("ntstrustedcerts {}\n", ca_file.display()),
    )
    .expect("start chronyd -x");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sources = client.chronyc(&["sources"]);
        let (authdata, row) = authdata_row(&client);
        if sources
            .lines()
            .any(|l| l.starts_with("^*") && l.contains("127.0.0.1"))
            && row.get(1).is_some_and(|m| m == "NTS")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chrony never selected skytime over NTS:\n{sources}\n{authdata}\n{}",
            daemon.log_lines().join("\n")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (authdata, row) = authdata_row(&client);
    eprintln!(
        "--- chronyc -n authdata (selected)\n{authdata}--- chronyc -n sources\n{}",
        client.chronyc(&["sources"])
    );
    // Columns: Name Mode KeyID Type KLen Last Atmp NAK Cook CLen.
    assert_eq!(row[1], "NTS");
    assert_eq!(row[4], "256", "AES-SIV-CMAC-256");
    assert_eq!(row[9], "100", "cookie length");
    let first_ke_age = age_s(&row[5]);

    // 1. Certificate swap: renew in place, SIGHUP; clients notice nothing.
    let (tx0, rx0) = after_next_poll(&client);
    ca.issue_to(
        &work.path().join("nts.crt"),
        &work.path().join("nts.key"),
        "skytime renewed",
    )
    .expect("renew");
    // SAFETY: kill(2) on the PID of the daemon this test started.
    unsafe {
        libc::kill(
            libc::pid_t::try_from(daemon.pid()).expect("a pid fits pid_t"),
            libc::SIGHUP,
        )
    };
    daemon
        .wait_for_log("NTS certificate reloaded", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..3 {
        after_next_poll(&client);
    }
    let (tx1, rx1) = after_next_poll(&client);
    assert_eq!(
        tx1 - tx0,
        rx1 - rx0,
        "a poll went unanswered across the certificate swap"
    );

    // 2. Restart right after a poll: the new process reads the same cookie
    //    key file, so the client's cookies stay good.
    let (tx2, rx2) = after_next_poll(&client);
    daemon.terminate().expect("stop skytimed");
    let restarted = start(ntp_port, &config);
    for _ in 0..4 {
        after_next_poll(&client);
    }
    let (tx3, rx3) = after_next_poll(&client);
    assert_eq!(
        tx3 - tx2,
        rx3 - rx2,
        "a poll went unanswered across the restart"
    );

    let (authdata, row) = authdata_row(&client);
    let sources = client.chronyc(&["sources"]);
    eprintln!(
        "--- chronyc -n authdata (after swap and restart)\n{authdata}--- chronyc -n sources\n{sources}"
    );
    eprintln!("--- chronyc -n ntpdata\n{}", client.ntpdata());
    assert_eq!(row[1], "NTS");
    assert_eq!(row[7], "0", "no NTS NAK");
    assert!(
        age_s(&row[5]) > first_ke_age,
        "the last NTS-KE is older than before: no new NTS-KE (was {first_ke_age} s, now {})",
        row[5]
    );
    assert!(
        restarted.log_lines().iter().all(|l| !l.contains("nts_nak")),
        "{}",
        restarted.log_lines().join("\n")
    );
}

/// NTS-KE with a rustls client: (C2S/S2C keys, cookies).
fn nts_ke(ca_pem: &str, ke_port: u16) -> (skytime_nts::SessionKeys, Vec<Vec<u8>>) {
    use rustls::pki_types::pem::PemObject;
    use std::io::{Read, Write};
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA pem"))
        .expect("root");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("TLS 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"ntske/1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", ke_port)).expect("connect NTS-KE");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut request = Vec::new();
    use skytime_nts::record::{self, record_type};
    record::write_record(&mut request, true, record_type::NEXT_PROTOCOL, &[0, 0]);
    record::write_record(&mut request, true, record_type::AEAD_ALGORITHM, &[0, 15]);
    record::write_record(&mut request, true, record_type::END_OF_MESSAGE, &[]);
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    tls.write_all(&request).expect("send request");
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response);
    let keys = skytime_nts::ke_server::client_session_keys(&conn).expect("exporter");
    let records = record::split_records(&response).expect("complete response");
    let cookies = records
        .iter()
        .filter(|r| r.kind == record_type::NEW_COOKIE)
        .map(|r| r.body.to_vec())
        .collect();
    (keys, cookies)
}

/// One NTS request over UDP; the cookies of an authentic reply.
fn nts_query(
    ntp_port: u16,
    keys: &skytime_nts::SessionKeys,
    cookie: &[u8],
) -> Result<Vec<Vec<u8>>, String> {
    let mut header = [0u8; 48];
    header[0] = (4 << 3) | 3;
    header[40..48].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_be_bytes());
    let unique_id = [0x5a; 32];
    let request =
        skytime_nts::ef::client::build_request(&header, &unique_id, cookie, 1, &keys.c2s, &[7; 16]);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    sock.send_to(&request, ("127.0.0.1", ntp_port))
        .expect("send");
    let mut buf = [0u8; 2048];
    let (n, _) = sock
        .recv_from(&mut buf)
        .map_err(|e| format!("no reply: {e}"))?;
    if &buf[12..16] == b"NTSN" {
        return Err("NTS NAK".into());
    }
    skytime_nts::ef::client::open_reply(&buf[..n], &unique_id, &keys.s2c).map_err(str::to_string)
}

#[test]
fn two_boxes_sharing_a_cookie_key_file_accept_each_others_cookies() {
    let work = TempDir::new("nts-fleet");
    let ca = TestCa::new().expect("CA");
    ca.issue_to(
        &work.path().join("nts.crt"),
        &work.path().join("nts.key"),
        "fleet",
    )
    .expect("issue");
    let key_file = work.path().join("fleet-cookie-keys");
    let (ntp_a, ke_a) = (free_udp_port(), free_tcp_port());
    let writer = write_config(work.path(), "a.toml", ke_a, &key_file, "writer");
    let _a = start(ntp_a, &writer);
    // The reader starts from the file the writer created (shared storage).
    let (ntp_b, ke_b) = (free_udp_port(), free_tcp_port());
    let reader = write_config(work.path(), "b.toml", ke_b, &key_file, "reader");
    let _b = start(ntp_b, &reader);
    let stranger_keys = work.path().join("stranger-keys");
    let (ntp_c, ke_c) = (free_udp_port(), free_tcp_port());
    let stranger = write_config(work.path(), "c.toml", ke_c, &stranger_keys, "writer");
    let _c = start(ntp_c, &stranger);

    // A cookie from A's NTS-KE works at B, and the fresh cookie B returns
    // works at A; and the other way round.
    let (keys_a, cookies_a) = nts_ke(&ca.pem, ke_a);
    assert_eq!(cookies_a.len(), skytime_nts::ke_server::COOKIES_PER_SESSION);
    let from_b = nts_query(ntp_b, &keys_a, &cookies_a[0]).expect("B accepts A's cookie");
    assert_eq!(from_b.len(), 2, "the spent cookie and one placeholder");
    nts_query(ntp_a, &keys_a, &from_b[0]).expect("A accepts the cookie B issued");
    let (keys_b, cookies_b) = nts_ke(&ca.pem, ke_b);
    nts_query(ntp_a, &keys_b, &cookies_b[0]).expect("A accepts B's NTS-KE cookie");
    // A box with its own key file is no member: NTS NAK.
    assert_eq!(
        nts_query(ntp_c, &keys_a, &cookies_a[1]),
        Err("NTS NAK".to_string())
    );
}

#[test]
fn a_chrony_server_and_a_skytime_box_reading_its_key_file_accept_each_others_cookies() {
    skytime_e2e::require_tool(CHRONYD);
    let work = TempDir::new("nts-mixed-fleet");
    let ca = TestCa::new().expect("CA");
    ca.issue_to(
        &work.path().join("nts.crt"),
        &work.path().join("nts.key"),
        "mixed fleet",
    )
    .expect("issue");
    // chronyd -x (never touches the clock) as an NTS server that rotates its
    // own keys and dumps them to ntsdumpdir.
    let dump = work.path().join("chrony-dump");
    fs::create_dir_all(&dump).expect("dump dir");
    let (ntp_chrony, ke_chrony) = (free_udp_port(), free_tcp_port());
    let _chrony = ChronyClient::start_with(
        "nts-chrony-server",
        &format!("port {ntp_chrony}\nbindaddress 127.0.0.1\nallow 127.0.0.0/8\nlocal stratum 1"),
        None,
        &format!(
            "ntsport {ke_chrony}\nntsserverkey {}\nntsservercert {}\nntsdumpdir {}\n",
            work.path().join("nts.key").display(),
            work.path().join("nts.crt").display(),
            dump.display()
        ),
    )
    .expect("start chronyd -x");
    let key_file = dump.join("ntskeys");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !key_file.exists() {
        assert!(Instant::now() < deadline, "chronyd wrote no ntskeys");
        std::thread::sleep(Duration::from_millis(100));
    }
    // skytimed follows chrony's key file as a fleet reader.
    let (ntp_sky, ke_sky) = (free_udp_port(), free_tcp_port());
    let config = write_config(work.path(), "reader.toml", ke_sky, &key_file, "reader");
    let _sky = start(ntp_sky, &config);

    // chrony's NTS-KE cookie works at skytime, and the fresh cookie skytime
    // returns works at chrony.
    let (keys_c, cookies_c) = nts_ke(&ca.pem, ke_chrony);
    // chrony's count is its own choice (8 in 4.3); two are used here.
    assert!(
        cookies_c.len() >= 2,
        "chrony handed out {} cookies",
        cookies_c.len()
    );
    let from_sky =
        nts_query(ntp_sky, &keys_c, &cookies_c[0]).expect("skytime accepts chrony's cookie");
    nts_query(ntp_chrony, &keys_c, &from_sky[0]).expect("chrony accepts the cookie skytime issued");
    // skytime's NTS-KE cookie works at chrony, and chrony's reply cookie at skytime.
    let (keys_s, cookies_s) = nts_ke(&ca.pem, ke_sky);
    let from_chrony =
        nts_query(ntp_chrony, &keys_s, &cookies_s[0]).expect("chrony accepts skytime's cookie");
    nts_query(ntp_sky, &keys_s, &from_chrony[0]).expect("skytime accepts chrony's reply cookie");
}
