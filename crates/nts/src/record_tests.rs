use super::*;
use proptest::prelude::*;

fn rec(critical: bool, kind: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_record(&mut out, critical, kind, body);
    out
}

fn chrony_request() -> Vec<u8> {
    [
        rec(true, record_type::NEXT_PROTOCOL, &[0, 0]),
        rec(true, record_type::AEAD_ALGORITHM, &[0, 15, 0, 30]),
        rec(true, record_type::END_OF_MESSAGE, &[]),
    ]
    .concat()
}

#[test]
fn a_typical_request_negotiates_ntpv4_and_aes_siv() {
    let req = decode_request(&chrony_request())
        .expect("valid")
        .expect("complete");
    assert!(req.negotiated());
    let cookies = [[7u8; 100], [8u8; 100]];
    let response = success_response(&req, cookies.iter().map(|c| &c[..]), Some(1123));
    let records = split_records(&response).expect("ends with EoM");
    let kinds: Vec<_> = records
        .iter()
        .map(|r| (r.critical, r.kind, r.body.len()))
        .collect();
    assert_eq!(
        kinds,
        [
            (true, record_type::NEXT_PROTOCOL, 2),
            (false, record_type::AEAD_ALGORITHM, 2),
            (false, record_type::NEW_COOKIE, 100),
            (false, record_type::NEW_COOKIE, 100),
            (true, record_type::NTPV4_PORT, 2),
            (true, record_type::END_OF_MESSAGE, 0),
        ]
    );
    assert_eq!(records[1].body, [0, 15]);
    assert_eq!(records[4].body, 1123u16.to_be_bytes());
}

#[test]
fn every_prefix_of_a_request_asks_for_more() {
    let full = chrony_request();
    for cut in 0..full.len() {
        assert_eq!(decode_request(&full[..cut]), Ok(None), "cut at {cut}");
    }
}

#[test]
fn unsupported_offers_get_empty_lists_and_no_cookies() {
    let request = [
        rec(true, record_type::NEXT_PROTOCOL, &[0x80, 1]),
        rec(true, record_type::END_OF_MESSAGE, &[]),
    ]
    .concat();
    let req = decode_request(&request).expect("valid").expect("complete");
    assert!(!req.negotiated());
    let response = success_response(&req, [&[1u8; 100][..]], None);
    let records = split_records(&response).expect("complete");
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.body.is_empty()));
    let no_siv = [
        rec(true, record_type::NEXT_PROTOCOL, &[0, 0]),
        rec(false, record_type::AEAD_ALGORITHM, &[0, 30]),
        rec(true, record_type::END_OF_MESSAGE, &[]),
    ]
    .concat();
    let req = decode_request(&no_siv).expect("valid").expect("complete");
    assert_eq!((req.wants_ntpv4, req.offers_aes_siv), (true, false));
}

#[test]
fn broken_requests_are_refused_with_the_right_error_code() {
    let eom = rec(true, record_type::END_OF_MESSAGE, &[]);
    let np = rec(true, record_type::NEXT_PROTOCOL, &[0, 0]);
    let aead = rec(false, record_type::AEAD_ALGORITHM, &[0, 15]);
    let cases: Vec<(Vec<u8>, ErrorCode, &str)> = vec![
        (
            [np.clone(), aead.clone(), rec(true, 0x1234, &[1])].concat(),
            ErrorCode::UnrecognizedCriticalRecord,
            "unknown critical",
        ),
        (
            [aead.clone(), eom.clone()].concat(),
            ErrorCode::BadRequest,
            "no next protocol",
        ),
        (
            [np.clone(), eom.clone()].concat(),
            ErrorCode::BadRequest,
            "ntpv4 without aead",
        ),
        (
            [np.clone(), np.clone(), aead.clone(), eom.clone()].concat(),
            ErrorCode::BadRequest,
            "two next protocol",
        ),
        (
            [np.clone(), aead.clone(), aead.clone(), eom.clone()].concat(),
            ErrorCode::BadRequest,
            "two aead",
        ),
        (
            [
                rec(false, record_type::NEXT_PROTOCOL, &[0, 0]),
                aead.clone(),
                eom.clone(),
            ]
            .concat(),
            ErrorCode::BadRequest,
            "non-critical next protocol",
        ),
        (
            [
                rec(true, record_type::NEXT_PROTOCOL, &[0]),
                aead.clone(),
                eom.clone(),
            ]
            .concat(),
            ErrorCode::BadRequest,
            "odd list",
        ),
        (
            [
                np.clone(),
                aead.clone(),
                rec(true, record_type::END_OF_MESSAGE, &[0]),
            ]
            .concat(),
            ErrorCode::BadRequest,
            "eom with body",
        ),
        (
            [
                np.clone(),
                aead.clone(),
                rec(false, record_type::END_OF_MESSAGE, &[]),
            ]
            .concat(),
            ErrorCode::BadRequest,
            "non-critical eom",
        ),
        (
            [np.clone(), aead.clone(), eom.clone(), vec![0]].concat(),
            ErrorCode::BadRequest,
            "bytes after eom",
        ),
        (
            [
                np.clone(),
                aead.clone(),
                rec(true, record_type::NEW_COOKIE, &[1; 8]),
                eom.clone(),
            ]
            .concat(),
            ErrorCode::BadRequest,
            "cookie in request",
        ),
        (
            [
                np.clone(),
                rec(false, record_type::AEAD_ALGORITHM, &[0; 200]),
                eom.clone(),
            ]
            .concat(),
            ErrorCode::BadRequest,
            "list too long",
        ),
        (
            [np.clone(), aead.clone(), rec(false, 0x1234, &[0; 1100])].concat(),
            ErrorCode::BadRequest,
            "oversized record",
        ),
        (
            vec![0u8; MAX_REQUEST_LEN],
            ErrorCode::BadRequest,
            "never-ending junk",
        ),
    ];
    for (bytes, code, what) in cases {
        let error = decode_request(&bytes).expect_err(what);
        assert_eq!(error.code(), code, "{what}: {error}");
        let response = error_response(error.code());
        let records = split_records(&response).expect("complete");
        assert_eq!(records[0].kind, record_type::ERROR);
        assert!(records[0].critical);
        assert_eq!(records[0].body, (code as u16).to_be_bytes());
    }
}

#[test]
fn unknown_non_critical_records_and_suggestions_are_ignored() {
    let request = [
        rec(false, 0x4321, &[1, 2, 3]),
        rec(true, record_type::NEXT_PROTOCOL, &[0, 0]),
        rec(false, record_type::NTPV4_SERVER, b"example.org"),
        rec(false, record_type::NTPV4_PORT, &[0, 123]),
        rec(true, record_type::AEAD_ALGORITHM, &[0, 15]),
        rec(true, record_type::END_OF_MESSAGE, &[]),
    ]
    .concat();
    assert!(
        decode_request(&request)
            .expect("valid")
            .expect("complete")
            .negotiated()
    );
}

proptest! {
    #[test]
    fn any_bytes_decode_without_panic_and_within_bounds(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        match decode_request(&bytes) {
            Ok(None) => prop_assert!(bytes.len() < MAX_REQUEST_LEN),
            Ok(Some(_)) => prop_assert!(bytes.len() <= MAX_REQUEST_LEN),
            Err(e) => { let _ = e.code(); }
        }
    }

    #[test]
    fn any_valid_request_split_anywhere_decodes_the_same(
        extra in proptest::collection::vec((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..5),
        algorithms in proptest::collection::vec(any::<u16>(), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut request = rec(true, record_type::NEXT_PROTOCOL, &[0, 0]);
        let body: Vec<u8> = algorithms.iter().flat_map(|a| a.to_be_bytes()).collect();
        request.extend(rec(false, record_type::AEAD_ALGORITHM, &body));
        for (kind, body) in &extra {
            // Unknown, non-critical: ignorable.
            request.extend(rec(false, (kind & 0x7fff) | 0x4000, body));
        }
        request.extend(rec(true, record_type::END_OF_MESSAGE, &[]));
        let decoded = decode_request(&request).expect("valid").expect("complete");
        prop_assert_eq!(decoded.offers_aes_siv, algorithms.contains(&AEAD_AES_SIV_CMAC_256));
        let at = cut.index(request.len());
        prop_assert_eq!(decode_request(&request[..at]), Ok(None));
    }
}
