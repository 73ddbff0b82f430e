//! The runner's own checks after a run: the heap samples (plot and growth bound) and the
//! bytes the guest left on its disk image.

use std::path::Path;

use anyhow::{Context, Result};
use cargo_unikraft::heap_plot::HeapSamples;
use conformance_protocol::report::{Line, Status};

/// The most the bytes in use may grow from the first heap sample to the last, over a whole
/// conformance run (buffers std keeps, such as stdout's, are a few KiB).
const HEAP_GROWTH_BOUND: u64 = 64 << 10;

/// `--heap-plot`: the main run's heap samples drawn into `path` (`host.heap-plot`), and the
/// growth over the run checked from the same samples (`host.heap-growth`).
pub(super) fn heap_plot_cases(transcript: &str, path: &Path, label: &str) -> Vec<String> {
    let samples = HeapSamples::from_transcript(transcript);
    let growth = match (samples.samples.first(), samples.samples.last()) {
        (Some(first), Some(last)) if last.live <= first.live + HEAP_GROWTH_BOUND => format!(
            "PASS host.heap-growth {} B in use at the start, {} B at the end (bound: {} KiB more)",
            first.live,
            last.live,
            HEAP_GROWTH_BOUND >> 10
        ),
        (Some(first), Some(last)) => format!(
            "FAIL host.heap-growth {} B in use at the start, {} B at the end: more than {} KiB of growth",
            first.live,
            last.live,
            HEAP_GROWTH_BOUND >> 10
        ),
        _ => "FAIL host.heap-growth no heap samples".to_string(),
    };
    vec![heap_plot_case(&samples, path, label), growth]
}

fn heap_plot_case(samples: &HeapSamples, path: &Path, label: &str) -> String {
    let peak = samples.samples.iter().map(|s| s.peak).max().unwrap_or(0);
    match samples.write_svg(path, &format!("conformance ({label})")) {
        Ok(()) => format!(
            "PASS host.heap-plot {} samples ({} dropped), peak {} KiB, drawn to {}",
            samples.samples.len(),
            samples.dropped,
            peak / 1024,
            path.display()
        ),
        Err(e) => format!("FAIL host.heap-plot {e:#}"),
    }
}

/// The sector size of a disk image as the backends expose it.
const IMAGE_SECTOR_SIZE: usize = 512;

/// The guest wrote `conformance_protocol::block`'s pattern over its sectors; the image
/// must hold it.
pub(super) fn check_disk(disk: &Path) -> Result<String> {
    use conformance_protocol::block::{first_mismatch, FIRST_SECTOR, SECTORS};
    let image = std::fs::read(disk)?;
    let start = FIRST_SECTOR as usize * IMAGE_SECTOR_SIZE;
    let written = image
        .get(start..start + SECTORS as usize * IMAGE_SECTOR_SIZE)
        .context("the disk image is shorter than the sectors the guest writes")?;
    let last = FIRST_SECTOR + SECTORS - 1;
    let (status, detail) = match first_mismatch(written, FIRST_SECTOR, IMAGE_SECTOR_SIZE) {
        None => (Status::Pass, format!("sectors {FIRST_SECTOR}..={last} of the disk image hold what the guest wrote")),
        Some((k, i)) => (Status::Fail, format!("byte {i} of sector {k} differs from what the guest wrote")),
    };
    Ok(Line::Case { status, case: "host.block-image", detail: &detail }.to_string())
}

/// `block.encrypted` wrote the pattern through the encrypted layer on its partition: the
/// partition must hold something, and none of the plaintext sectors, at any offset.
pub(super) fn check_encrypted_partition(disk: &Path) -> Result<String> {
    use conformance_protocol::block::{fill, ENCRYPTED_FIRST_SECTOR, ENCRYPTED_SECTORS, FIRST_SECTOR, SECTORS};
    let ss = IMAGE_SECTOR_SIZE;
    let image = std::fs::read(disk)?;
    let start = ENCRYPTED_FIRST_SECTOR as usize * ss;
    let part = image
        .get(start..start + ENCRYPTED_SECTORS as usize * ss)
        .context("the disk image is shorter than the encrypted partition")?;
    let mut plain = vec![0u8; SECTORS as usize * ss];
    fill(&mut plain, FIRST_SECTOR, ss);
    let leaked = plain.chunks(ss).position(|sector| part.windows(ss).any(|w| w == sector));
    let (status, detail) = match leaked {
        _ if part.iter().all(|&b| b == 0) => (Status::Fail, "the encrypted partition is all zeros".to_string()),
        Some(k) => (Status::Fail, format!("plaintext sector {} is in the encrypted partition", FIRST_SECTOR + k as u64)),
        None => (
            Status::Pass,
            format!("the encrypted partition (sectors {ENCRYPTED_FIRST_SECTOR}..+{ENCRYPTED_SECTORS}) holds none of the {SECTORS} plaintext sectors"),
        ),
    };
    Ok(Line::Case { status, case: "host.block-encrypted-image", detail: &detail }.to_string())
}
