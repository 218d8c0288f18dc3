//! Charts as SVG, drawn on the server with plotters: a metric per model, a metric against
//! compute (MACs per sample, log scale), and a job's metric against its steps.

use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::prelude::*;

const SIZE: (u32, u32) = (720, 380);
const BAR: RGBColor = RGBColor(37, 99, 235);
const POINT: RGBColor = RGBColor(220, 38, 38);

fn label_of(name: &str) -> String {
    let short = name.rsplit('/').next().unwrap_or(name);
    if short.chars().count() > 18 {
        format!("{}…", short.chars().take(17).collect::<String>())
    } else {
        short.to_string()
    }
}

/// The value range to plot, padded, starting at 0 for non-negative values.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let lo = if lo >= 0.0 { 0.0 } else { lo * 1.1 };
    let hi = if hi <= lo { lo + 1.0 } else { hi * 1.05 };
    (lo, hi)
}

fn empty(message: &str) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let _ = root.fill(&WHITE);
        let _ = root.draw(&Text::new(
            message.to_string(),
            (20, SIZE.1 as i32 / 2),
            ("sans-serif", 16).into_font().color(&BLACK.mix(0.6)),
        ));
        let _ = root.present();
    }
    svg
}

/// Draws on a blank white SVG of `SIZE`; a drawing error becomes a chart that says so.
fn svg_of(
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), Box<dyn std::error::Error>>,
) -> String {
    let mut svg = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|()| draw(&root).map_err(|e| e.to_string()))
            .and_then(|()| root.present().map_err(|e| e.to_string()))
    };
    match drawn {
        Ok(()) => svg,
        Err(e) => empty(&format!("cannot draw the chart: {e}")),
    }
}

/// One bar per `(model, value)`.
pub fn bars(title: &str, metric: &str, items: &[(String, f64)]) -> String {
    if items.is_empty() {
        return empty("no verified results yet");
    }
    svg_of(|root| {
        let (lo, hi) = span(items.iter().map(|(_, v)| *v));
        let n = items.len();
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d((0..n).into_segmented(), lo..hi)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) if *i < n => label_of(&items[*i].0),
                _ => String::new(),
            })
            .y_desc(metric)
            .draw()?;
        chart.draw_series(items.iter().enumerate().map(|(i, (_, v))| {
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), lo),
                    (SegmentValue::Exact(i + 1), *v),
                ],
                BAR.filled(),
            );
            bar.set_margin(0, 0, 10, 10);
            bar
        }))?;
        Ok(())
    })
}

/// One labelled point per `(model, MACs per sample, value)`; the x axis is logarithmic.
pub fn against_macs(title: &str, metric: &str, points: &[(String, f64, f64)]) -> String {
    let points: Vec<&(String, f64, f64)> = points.iter().filter(|p| p.1 > 0.0).collect();
    if points.is_empty() {
        return empty("no verified results with a structure analysis yet");
    }
    svg_of(|root| {
        let (xmin, xmax) = points
            .iter()
            .fold((f64::INFINITY, 0f64), |(a, b), p| (a.min(p.1), b.max(p.1)));
        let (lo, hi) = span(points.iter().map(|p| p.2));
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((xmin / 2.0..xmax * 2.0).log_scale(), lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("MACs per sample (log)")
            .y_desc(metric)
            .x_label_formatter(&|x| human(*x))
            .draw()?;
        chart.draw_series(points.iter().map(|(name, x, y)| {
            EmptyElement::at((*x, *y))
                + Circle::new((0, 0), 5, POINT.filled())
                + Text::new(label_of(name), (8, -14), ("sans-serif", 13).into_font())
        }))?;
        Ok(())
    })
}

/// A metric's values against the steps it was reported at, as a line with its points.
pub fn curve(title: &str, metric: &str, points: &[(f64, f64)]) -> String {
    let points: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if points.is_empty() {
        return empty("no values reported yet");
    }
    svg_of(|root| {
        let (xmin, xmax) = points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.0), b.max(p.0))
            });
        let xmax = if xmax > xmin { xmax } else { xmin + 1.0 };
        let (ymin, ymax) = points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.1), b.max(p.1))
            });
        // Curves are read for their shape: the axis spans the values, padded, not from 0.
        let pad = if ymax > ymin {
            (ymax - ymin) * 0.08
        } else {
            ymin.abs().max(1.0) * 0.1
        };
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(xmin..xmax, ymin - pad..ymax + pad)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc(metric)
            .draw()?;
        chart.draw_series(LineSeries::new(points.iter().copied(), BAR.stroke_width(2)))?;
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, BAR.filled())))?;
        Ok(())
    })
}

/// Several series of fractions (0–1) against minutes before now, one colour per series, with
/// a legend: the nodes' utilisation.
pub fn timelines(
    title: &str,
    y: &str,
    minutes: f64,
    series: &[(String, Vec<(f64, f64)>)],
) -> String {
    if series.is_empty() {
        return empty("no nodes yet");
    }
    svg_of(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(-minutes..0.0, 0.0..1.05)?;
        chart
            .configure_mesh()
            .x_desc("minutes ago")
            .y_desc(y)
            .x_label_formatter(&|x: &f64| format!("{:.0}", (-*x).max(0.0)))
            .y_label_formatter(&|v: &f64| format!("{:.0}%", *v * 100.0))
            .draw()?;
        for (i, (name, points)) in series.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|(x, y)| (*x, *y)),
                    colour.stroke_width(2),
                ))?
                .label(label_of(name))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        Ok(())
    })
}

/// `786.6K`, `4.1G`.
pub fn human(v: f64) -> String {
    let (d, s) = match v.abs() {
        x if x >= 1e12 => (1e12, "T"),
        x if x >= 1e9 => (1e9, "G"),
        x if x >= 1e6 => (1e6, "M"),
        x if x >= 1e3 => (1e3, "K"),
        _ => (1.0, ""),
    };
    format!("{:.1}{s}", v / d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_their_labels() {
        let b = bars(
            "MNIST",
            "accuracy",
            &[("admin/mnist-8".into(), 0.989), ("bob/tiny".into(), 0.9)],
        );
        assert!(
            b.starts_with("<svg") && b.contains("mnist-8") && b.contains("tiny"),
            "{b}"
        );
        let s = against_macs(
            "MNIST",
            "accuracy",
            &[("admin/mnist-8".into(), 786_560.0, 0.989)],
        );
        assert!(s.contains("<circle") && s.contains("mnist-8"), "{s}");
        assert!(bars("x", "y", &[]).contains("no verified results"));
        assert_eq!(human(786_560.0), "786.6K");
    }

    #[test]
    fn a_curve_passes_through_every_reported_step() {
        let c = curve(
            "job #1 · loss",
            "loss",
            &[(1.0, 0.9), (2.0, 0.5), (3.0, f64::NAN), (4.0, 0.2)],
        );
        assert_eq!(c.matches("<circle").count(), 3, "NaN is skipped: {c}");
        assert!(c.contains("<polyline") && c.contains("step"), "{c}");
        // One point, or all at one value, still draws (the axes get a span of their own).
        assert!(curve("t", "acc", &[(5.0, 0.75)]).contains("<circle"));
        assert!(curve("t", "acc", &[]).contains("no values"));
    }
}
