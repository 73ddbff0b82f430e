//! `--heap-plot FILE`: a guest's heap over time, drawn as an SVG after the run.
//!
//! A guest started with `--heap-sample-ms=N` prints one line per sample
//! (`shared_core::heap::sampler` writes them; the grammar is `console_protocol::heap_sample`):
//!
//! ```text
//! heap-sample t_ms=1500 live=20480 peak=1069056 blocks=37
//! heap-sample-dropped count=3
//! ```
//!
//! [`HeapSamples`] collects them from the console (the runner's `on_line`) and
//! [`HeapSamples::write_svg`] draws bytes in use and the peak against time with `plotters`
//! (SVG backend only).

use std::path::Path;

use anyhow::{bail, Context, Result};
use plotters::prelude::*;

/// The boot argument that makes a guest print samples, and the interval the tools ask for.
pub const SAMPLE_ARG: &str = "--heap-sample-ms";
pub const DEFAULT_SAMPLE_MS: u64 = 100;

/// One `heap-sample` line (the grammar the guest prints with).
pub use console_protocol::heap_sample::Sample as HeapSample;

/// The samples of one run, in console order.
#[derive(Debug, Default, Clone)]
pub struct HeapSamples {
    pub samples: Vec<HeapSample>,
    /// Samples the guest took but could not print (its ring was full).
    pub dropped: u64,
}

impl HeapSamples {
    /// Takes one console line (anything that is not a sample line is ignored).
    pub fn on_line(&mut self, line: &str) {
        if let Some(sample) = HeapSample::parse(line) {
            self.samples.push(sample);
        } else if let Some(dropped) = console_protocol::heap_sample::Dropped::parse(line) {
            self.dropped += dropped.count;
        }
    }

    /// The samples in a whole console transcript.
    pub fn from_transcript(text: &str) -> HeapSamples {
        let mut samples = HeapSamples::default();
        text.lines().for_each(|line| samples.on_line(line));
        samples
    }

    /// Draws the samples (bytes in use, and the peak) against time as an SVG in `path`,
    /// titled `title`. Fails when there is no sample to draw.
    pub fn write_svg(&self, path: &Path, title: &str) -> Result<()> {
        if self.samples.is_empty() {
            bail!(
                "no `heap-sample` lines on the console: the app must run under `unikernel::main!` \
                 and get `{SAMPLE_ARG}=N` (the tools add it with --heap-plot)"
            );
        }
        let svg = self.svg(title).map_err(|e| anyhow::anyhow!("drawing the heap plot: {e}"))?;
        std::fs::write(path, svg).with_context(|| format!("write {}", path.display()))
    }

    fn svg(&self, title: &str) -> Result<String, Box<dyn std::error::Error>> {
        let kib = |bytes: u64| bytes as f64 / 1024.0;
        let end_s = self.samples.iter().map(|s| s.t_ms).max().unwrap_or(0).max(1) as f64 / 1000.0;
        let top = self.samples.iter().map(|s| s.peak.max(s.live)).max().unwrap_or(0).max(1024);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (960, 540)).into_drawing_area();
            root.fill(&WHITE)?;
            let caption = match self.dropped {
                0 => format!("{title}: heap ({} samples)", self.samples.len()),
                n => format!("{title}: heap ({} samples, {n} dropped)", self.samples.len()),
            };
            let mut chart = ChartBuilder::on(&root)
                .caption(caption, ("sans-serif", 22))
                .margin(16)
                .x_label_area_size(44)
                .y_label_area_size(80)
                .build_cartesian_2d(0f64..end_s, 0f64..kib(top) * 1.1)?;
            chart.configure_mesh().x_desc("time since start (s)").y_desc("heap (KiB)").draw()?;
            let points = |value: fn(&HeapSample) -> u64| {
                self.samples.iter().map(move |s| (s.t_ms as f64 / 1000.0, kib(value(s)))).collect::<Vec<_>>()
            };
            chart
                .draw_series(LineSeries::new(points(|s| s.live), BLUE.stroke_width(2)))?
                .label("in use")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
            chart
                .draw_series(LineSeries::new(points(|s| s.peak), RED))?
                .label("peak")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
            chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
            root.present()?;
        }
        Ok(svg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcript_gives_its_samples_and_dropped_counts() {
        assert_eq!(SAMPLE_ARG, format!("--{}", console_protocol::heap_sample::BOOT_ARG));
        let line = "heap-sample t_ms=1500 live=20480 peak=1069056 blocks=37";
        let samples = HeapSamples::from_transcript(&format!("boot\n{line}\nheap-sample-dropped count=3\n{line}\n"));
        assert_eq!((samples.samples.len(), samples.dropped), (2, 3));
    }

    #[test]
    fn the_svg_holds_one_point_per_sample_in_each_series() {
        let samples = HeapSamples::from_transcript(
            &(0..50)
                .map(|i| {
                    format!("heap-sample t_ms={} live={} peak={} blocks=1\n", i * 100, 4096 + i * 100, 9000 + i * 100)
                })
                .collect::<String>(),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heap.svg");
        samples.write_svg(&path, "test").unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
        assert!(svg.contains("test: heap (50 samples)"));
        let series = polyline_points(&svg);
        assert!(series.iter().filter(|&&n| n == 50).count() >= 2, "{series:?}");
        assert!(HeapSamples::default().write_svg(&path, "empty").is_err());
    }

    /// How many points each `<polyline>` of an SVG has.
    pub fn polyline_points(svg: &str) -> Vec<usize> {
        svg.split("<polyline")
            .skip(1)
            .filter_map(|p| p.split("points=\"").nth(1)?.split('"').next())
            .map(|points| points.split_whitespace().count())
            .collect()
    }
}
