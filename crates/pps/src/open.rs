//! Opens the source `[pps] source` names.

use crate::config::{PpsConfig, PpsSourceKind};
use crate::kernel::KernelPps;
use crate::phc::PhcPps;
use crate::source::{PpsError, PpsSource};
use crate::tracker::PpsCounters;
use std::sync::Arc;

/// Opens the configured source (kernel PPS or PHC) with its counters.
pub fn open_configured(
    config: &PpsConfig,
) -> Result<(Box<dyn PpsSource>, Arc<PpsCounters>), PpsError> {
    Ok(match config.source {
        PpsSourceKind::Kernel => {
            let pps = KernelPps::open(config)?;
            let counters = pps.counters();
            (Box::new(pps), counters)
        }
        PpsSourceKind::Phc => {
            let pps = PhcPps::open(config)?;
            let counters = pps.counters();
            (Box::new(pps), counters)
        }
    })
}
