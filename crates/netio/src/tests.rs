//! The batches and options against real loopback sockets.

use super::*;
use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::time::Duration;

fn pair() -> (UdpSocket, UdpSocket) {
    let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
    b.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    (a, b)
}

#[test]
fn a_batch_reads_payload_source_and_kernel_timestamp() {
    let (a, b) = pair();
    enable_rx_timestamps(b.as_fd()).expect("SO_TIMESTAMPNS");
    let to = b.local_addr().expect("addr");
    a.send_to(b"first", to).expect("send");
    a.send_to(b"second datagram", to).expect("send");
    let mut rx = RxBatch::new(8, 64);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        rx.recv(b.as_fd(), Wait::ForOne).expect("recv");
        seen.extend(rx.iter().map(|d| {
            (
                d.payload.to_vec(),
                d.source,
                d.rx_time.is_some(),
                d.truncated,
            )
        }));
    }
    let from = a.local_addr().expect("addr");
    assert_eq!(seen[0], (b"first".to_vec(), Some(from), true, false));
    assert_eq!(
        seen[1],
        (b"second datagram".to_vec(), Some(from), true, false)
    );
}

#[test]
fn a_long_datagram_is_marked_truncated() {
    let (a, b) = pair();
    a.send_to(&[7u8; 100], b.local_addr().expect("addr"))
        .expect("send");
    let mut rx = RxBatch::new(1, 48);
    assert_eq!(rx.recv(b.as_fd(), Wait::Blocking).expect("recv"), 1);
    let d = rx.get(0).expect("datagram");
    assert!(d.truncated);
    assert_eq!(d.payload.len(), 48);
    assert!(d.rx_time.is_none(), "no stamp was asked for");
    assert!(rx.get(1).is_none());
}

#[test]
fn nothing_queued_is_would_block() {
    let (_a, b) = pair();
    let mut rx = RxBatch::new(4, 48);
    let err = rx.recv(b.as_fd(), Wait::Never).expect_err("empty");
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    assert!(rx.is_empty());
}

#[test]
fn a_sent_batch_arrives_whole_with_pktinfo_on_a_wildcard_socket() {
    let server = UdpSocket::bind("0.0.0.0:0").expect("bind");
    server
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    set_int_option(server.as_fd(), libc::IPPROTO_IP, libc::IP_PKTINFO, 1).expect("pktinfo");
    let port = server.local_addr().expect("addr").port();
    let (client, _) = pair();
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    client
        .send_to(b"ask", SocketAddr::from(([127, 0, 0, 1], port)))
        .expect("send");
    let mut rx = RxBatch::new(4, 64);
    rx.recv(server.as_fd(), Wait::ForOne).expect("recv");
    let d = rx.get(0).expect("datagram");
    assert_eq!(d.destination, Destination::V4(Ipv4Addr::LOCALHOST));
    let (to, from) = (d.source.expect("source"), d.destination);
    let mut tx = TxBatch::new(4, 64);
    for k in 0..3 {
        tx.payload_mut(k)[..5].copy_from_slice(b"reply");
        tx.payload_mut(k)[5] = b'0' + u8::try_from(k).expect("small");
        tx.prepare(k, 6, to, from, false);
    }
    assert_eq!(tx.send(server.as_fd(), 0..3).expect("send"), 3);
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    for _ in 0..3 {
        let (n, src) = client.recv_from(&mut buf).expect("reply");
        assert_eq!(src, SocketAddr::from(([127, 0, 0, 1], port)));
        got.push(buf[..n].to_vec());
    }
    assert_eq!(
        got,
        [b"reply0".to_vec(), b"reply1".to_vec(), b"reply2".to_vec()]
    );
}

#[test]
fn a_requested_transmit_timestamp_comes_back_with_its_id() {
    let (a, b) = pair();
    enable_tx_timestamp_reports(a.as_fd()).expect("SO_TIMESTAMPING");
    let mut tx = TxBatch::new(2, 16);
    tx.payload_mut(0)[..2].copy_from_slice(b"hi");
    tx.prepare(
        0,
        2,
        b.local_addr().expect("addr"),
        Destination::Unknown,
        true,
    );
    assert_eq!(tx.send(a.as_fd(), 0..1).expect("send"), 1);
    let mut stamp = None;
    for _ in 0..100 {
        stamp = recv_tx_timestamp(a.as_fd());
        if stamp.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let stamp = stamp.expect("a TX timestamp on the error queue");
    assert_eq!(stamp.id, Some(0));
    assert!(stamp.time.is_some());
    assert!(
        recv_tx_timestamp(a.as_fd()).is_none(),
        "one request, one stamp"
    );
}

#[test]
fn a_reused_batch_resets_what_the_last_read_wrote() {
    let (a, b) = pair();
    let to = b.local_addr().expect("addr");
    let mut rx = RxBatch::new(4, 32);
    // A long datagram marks its header truncated; a later short one in the
    // same slot must not inherit the flag, nor a shorter length limit.
    a.send_to(&[1u8; 100], to).expect("send");
    assert_eq!(rx.recv(b.as_fd(), Wait::ForOne).expect("recv"), 1);
    assert!(rx.get(0).expect("first").truncated);
    for round in 0..3u8 {
        let sizes = [5usize, 32, 7];
        for (k, len) in sizes.iter().enumerate() {
            a.send_to(
                &vec![round * 10 + u8::try_from(k).expect("small"); *len],
                to,
            )
            .expect("send");
        }
        let mut seen = Vec::new();
        while seen.len() < sizes.len() {
            rx.recv(b.as_fd(), Wait::ForOne).expect("recv");
            seen.extend(
                rx.iter()
                    .map(|d| (d.payload.to_vec(), d.truncated, d.source)),
            );
        }
        for (k, (payload, truncated, source)) in seen.iter().enumerate() {
            assert_eq!(payload.len(), sizes[k], "round {round} datagram {k}");
            assert!(
                payload
                    .iter()
                    .all(|&x| x == round * 10 + u8::try_from(k).expect("small"))
            );
            assert!(!truncated, "round {round} datagram {k}");
            assert_eq!(*source, Some(a.local_addr().expect("addr")));
        }
    }
}

#[test]
fn one_plain_datagram_goes_by_sendto_and_arrives_whole() {
    let (a, b) = pair();
    let to = b.local_addr().expect("addr");
    let mut tx = TxBatch::new(2, 64);
    tx.payload_mut(0)[..4].copy_from_slice(b"ping");
    tx.prepare(0, 4, to, Destination::Unknown, false);
    tx.payload_mut(1)[..4].copy_from_slice(b"pong");
    tx.prepare(1, 4, to, Destination::Unknown, false);
    assert_eq!(tx.send(a.as_fd(), 0..1).expect("send one"), 1);
    assert_eq!(tx.send(a.as_fd(), 1..2).expect("send one"), 1);
    let mut buf = [0u8; 16];
    for want in [&b"ping"[..], b"pong"] {
        let (n, from) = b.recv_from(&mut buf).expect("recv");
        assert_eq!(&buf[..n], want);
        assert_eq!(from, a.local_addr().expect("addr"));
    }
}
