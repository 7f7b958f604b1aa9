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

/// Opens the configured source again after its device vanished, counting into
/// the first opening's `counters`: status and metrics hold those, so a new set
/// would leave them frozen at the old source's values.
pub fn reopen_configured(
    config: &PpsConfig,
    counters: &Arc<PpsCounters>,
) -> Result<Box<dyn PpsSource>, PpsError> {
    let counters = Arc::clone(counters);
    Ok(match config.source {
        PpsSourceKind::Kernel => Box::new(KernelPps::open(config)?.counting_into(counters)),
        PpsSourceKind::Phc => Box::new(PhcPps::open(config)?.counting_into(counters)),
    })
}
