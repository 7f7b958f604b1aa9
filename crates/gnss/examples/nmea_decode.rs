//! `cargo run -p skytime-gnss --example nmea_decode -- FILE|-`: the same decoding
//! as `skytimectl nmea decode`, for use before the daemon's CLI is built.

use skytime_gnss::capture::{self, CaptureOptions, EpochLine};
use std::io::{self, Read, Write};

fn main() -> io::Result<()> {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: nmea_decode FILE|-");
        std::process::exit(2);
    };
    let input: Box<dyn Read> = if path == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(&path)?)
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let summary = capture::decode_reader(input, &CaptureOptions::default(), |e| {
        serde_json::to_writer(&mut out, &EpochLine::from(e)).map_err(io::Error::other)?;
        out.write_all(b"\n")
    })?;
    out.flush()?;
    eprintln!(
        "summary: {}",
        serde_json::to_string(&summary).map_err(io::Error::other)?
    );
    Ok(())
}
