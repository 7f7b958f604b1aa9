//! Every byte string through the NTS-KE request decoder, whole and fed in two
//! pieces the way TCP may deliver it: no panic, the same verdict either way,
//! and every answer a well-formed response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skytime_nts::record::{self, MAX_REQUEST_LEN};

fuzz_target!(|data: &[u8]| {
    let whole = record::decode_request(data);
    if let Ok(None) = whole {
        assert!(data.len() < MAX_REQUEST_LEN);
    }
    // A prefix never yields a verdict the whole contradicts: a complete
    // request at a prefix means the whole has bytes after End of Message.
    if let Some(cut) = data.first().map(|b| usize::from(*b) % (data.len() + 1)) {
        if let Ok(Some(_)) = record::decode_request(&data[..cut]) {
            assert!(cut == data.len() || whole.is_err());
        }
    }
    let response = match &whole {
        Ok(Some(req)) => record::success_response(req, [&[0u8; 100][..]], Some(1123)),
        Err(e) => record::error_response(e.code()),
        Ok(None) => return,
    };
    assert!(record::split_records(&response).is_some());
});
