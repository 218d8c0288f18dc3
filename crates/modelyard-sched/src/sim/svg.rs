//! The JCT chart: one cumulative distribution curve per policy, log-scaled time, as SVG.

use std::path::Path;

use plotters::prelude::*;

/// Writes the CDF of each policy's sorted completion times (seconds) to an SVG file.
pub fn jct_cdf(path: &Path, series: &[(String, Vec<f64>)]) -> Result<(), String> {
    std::fs::write(path, jct_cdf_svg(series)?).map_err(|e| e.to_string())
}

/// The CDF of each policy's sorted completion times (seconds), as an SVG document.
pub fn jct_cdf_svg(series: &[(String, Vec<f64>)]) -> Result<String, String> {
    let mut svg = String::new();
    draw(&mut svg, series)?;
    Ok(svg)
}

fn draw(svg: &mut String, series: &[(String, Vec<f64>)]) -> Result<(), String> {
    let root = SVGBackend::with_string(svg, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let lo = series
        .iter()
        .filter_map(|(_, v)| v.first())
        .fold(f64::INFINITY, |a, &b| a.min(b))
        .max(1.0);
    let hi = series
        .iter()
        .filter_map(|(_, v)| v.last())
        .fold(lo * 10.0, |a, &b| a.max(b));
    let mut chart = ChartBuilder::on(&root)
        .caption("Job completion time CDF", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("job completion time (s, log scale)")
        .y_desc("fraction of jobs")
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, (name, v)) in series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        // At most ~400 points per curve keep the file small.
        let step = (v.len() / 400).max(1);
        let n = v.len() as f64;
        let pts = v
            .iter()
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i + 1 == v.len())
            .map(|(i, &x)| (x.max(lo), (i + 1) as f64 / n));
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
