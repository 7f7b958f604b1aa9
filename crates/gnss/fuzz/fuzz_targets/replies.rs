//! Arbitrary bytes, cut into reads at fuzzer-chosen points, through the
//! reader of configuration replies (UBX frames and PMTK sentences): no panic,
//! and the replies do not depend on where the reads were cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skytime_gnss::configure::ReplyReader;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let whole = ReplyReader::default().push(stream);
    let mut reader = ReplyReader::default();
    let mut split = Vec::new();
    for chunk in stream.chunks(usize::from(cut).max(1)) {
        split.extend(reader.push(chunk));
    }
    assert_eq!(split, whole);
});
