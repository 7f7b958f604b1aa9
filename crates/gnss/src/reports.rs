//! What a receiver says besides its epochs: u-blox timing reports (TIM-TP for
//! the qErr correction, survey-in progress) and what the receiver is (MON-VER,
//! `$PMTK705`, start-up `$GPTXT`), gathered by the assembler for the daemon.

use crate::configure::ReceiverInfo;
use crate::pmtk;
use crate::ubx::{self, messages};
use skytime_timebase::Arrival;
use std::collections::VecDeque;

/// One report, in arrival order with the epochs (defined in `skytime-core`).
pub use skytime_core::ReceiverReport;

/// Reports kept when nobody takes them (replaying a capture): the newest win.
const MAX_QUEUED: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct Reports {
    queue: VecDeque<ReceiverReport>,
    identity: Option<ReceiverInfo>,
}

impl Reports {
    fn push(&mut self, report: ReceiverReport) {
        if self.queue.len() == MAX_QUEUED {
            self.queue.pop_front();
        }
        self.queue.push_back(report);
    }

    pub(crate) fn take(&mut self) -> Vec<ReceiverReport> {
        self.queue.drain(..).collect()
    }

    pub(crate) fn identity(&self) -> Option<&ReceiverInfo> {
        self.identity.as_ref()
    }

    /// A checked UBX frame (sync to checksum).
    pub(crate) fn on_ubx(&mut self, frame: &[u8], arrival: Arrival) {
        let Ok((frame, _)) = ubx::Frame::parse(frame) else {
            return;
        };
        match messages::decode(&frame) {
            Some(messages::Message::TimePulse(report)) => {
                self.push(ReceiverReport::TimePulse { report, arrival });
            }
            Some(messages::Message::SurveyIn(s)) => self.push(ReceiverReport::SurveyIn(s)),
            Some(messages::Message::Version(v)) => {
                self.identify(v.family(), v.firmware().to_owned());
            }
            Some(messages::Message::Ack(_)) | None => {}
        }
    }

    /// A checksummed sentence body that may name the receiver (`PMTK705`, `TXT`).
    pub(crate) fn on_text(&mut self, body: &[u8]) {
        let Ok(text) = std::str::from_utf8(body) else {
            return;
        };
        let firmware = if text.starts_with("PMTK705,") {
            match pmtk::parse_reply(text) {
                Some(pmtk::Reply::Release(fw)) => Some(fw),
                _ => None,
            }
        } else if text.get(2..6) == Some("TXT,") {
            pmtk::firmware_from_txt(text)
        } else {
            None
        };
        if let Some(fw) = firmware {
            self.identify(fw.family, fw.release);
        }
    }

    /// Merges what is known: a specific family beats a generic one, a
    /// non-empty firmware the empty one; reports a change once.
    fn identify(&mut self, family: String, firmware: String) {
        let merged = match &self.identity {
            None => ReceiverInfo { family, firmware },
            Some(old) => ReceiverInfo {
                family: if family.len() >= old.family.len() || !old.family.starts_with(&family) {
                    family
                } else {
                    old.family.clone()
                },
                firmware: if firmware.is_empty() {
                    old.firmware.clone()
                } else {
                    firmware
                },
            },
        };
        if self.identity.as_ref() != Some(&merged) {
            tracing::info!(family = %merged.family, firmware = %merged.firmware, "GNSS receiver identified");
            self.identity = Some(merged.clone());
            self.push(ReceiverReport::Identified(merged));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ublox_start_up_text_gives_family_then_firmware() {
        let mut r = Reports::default();
        r.on_text(b"GPTXT,01,01,02,HW UBX-M8030 00080000");
        r.on_text(b"GPTXT,01,01,02,ROM CORE 3.01 (107888)");
        r.on_text(b"GPTXT,01,01,01,ANTENNA OK");
        let info = r.identity().expect("identified");
        assert_eq!(info.family, "u-blox M8030");
        assert_eq!(info.firmware, "3.01 (107888)");
        assert_eq!(
            r.take().len(),
            2,
            "two changes reported, the antenna line ignored"
        );
    }

    #[test]
    fn pmtk705_and_mon_ver_identify() {
        let mut r = Reports::default();
        r.on_text(b"PMTK705,AXN_3.8_3333_16042118,0000,V3.8.1 GP+GL,");
        assert_eq!(
            r.identity().map(|i| i.family.as_str()),
            Some("MediaTek MT3333")
        );
        let v = messages::ReceiverVersion {
            software: "ROM CORE 3.01 (107888)".into(),
            hardware: "00080000".into(),
            extensions: vec!["FWVER=TIM 1.10".into(), "MOD=LEA-M8T-0".into()],
        };
        let mut r = Reports::default();
        r.on_ubx(&messages::encode_mon_ver(&v), Arrival::default());
        let info = r.identity().expect("identified");
        assert_eq!(
            (info.family.as_str(), info.firmware.as_str()),
            ("u-blox LEA-M8T-0", "TIM 1.10")
        );
    }

    #[test]
    fn timing_reports_are_queued_with_their_arrival_and_bounded() {
        let mut r = Reports::default();
        let tp = messages::TimePulseReport {
            tow_ms: 1000,
            tow_sub_ms: 0,
            q_err_ps: -1234,
            week: 2400,
            time_base: messages::TimeBase::Utc,
            utc_available: true,
            raim: 0,
            q_err_valid: true,
            time_ref_gnss: 0,
            utc_standard: 0,
        };
        for _ in 0..100 {
            r.on_ubx(&messages::encode_tim_tp(&tp), Arrival::default());
        }
        let taken = r.take();
        assert_eq!(taken.len(), MAX_QUEUED);
        assert!(
            matches!(taken[0], ReceiverReport::TimePulse { report, .. } if report.q_err_ps == -1234)
        );
        assert!(r.take().is_empty());
    }
}
