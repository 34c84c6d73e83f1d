//! The process' memory, read from `/proc/self/status` at scrape time (Linux; elsewhere the
//! metrics are absent). The names are the ones every Prometheus client library uses, so the
//! usual dashboards find them.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

#[derive(Debug)]
pub(crate) struct ProcessCollector;

/// (resident, virtual) bytes of this process.
pub(crate) fn memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((kib("VmRSS:")? * 1024, kib("VmSize:")? * 1024))
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some((resident, virt)) = memory() else {
            return Ok(());
        };
        for (name, help, value) in [
            (
                "process_resident_memory",
                "Resident memory size in bytes.",
                resident,
            ),
            (
                "process_virtual_memory",
                "Virtual memory size in bytes.",
                virt,
            ),
        ] {
            let gauge = ConstGauge::new(value as i64);
            let metric =
                encoder.encode_descriptor(name, help, Some(&Unit::Bytes), gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn resident_memory_is_read_from_proc() {
        let (resident, virt) = super::memory().expect("/proc/self/status");
        assert!(resident > 1024 * 1024, "resident {resident}");
        assert!(virt >= resident);
    }
}
