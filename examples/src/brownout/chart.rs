//! The chart: offered load over time for every scenario, and below it the
//! tail-latency study's percentiles, with plotters' SVG backend.

use std::path::Path;

use plotters::prelude::*;

use super::report::Report;
use super::Scenario;

/// One colour per scenario, in table order (the Okabe–Ito palette, which
/// stays distinct for colour-blind readers).
const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 0, 0),
    RGBColor(213, 94, 0),
    RGBColor(230, 159, 0),
    RGBColor(204, 121, 167),
    RGBColor(0, 114, 178),
    RGBColor(86, 180, 233),
    RGBColor(0, 158, 115),
    RGBColor(240, 228, 66),
];

/// Buckets averaged on each side of a point of the plotted curves.
const SMOOTHING: usize = 2;

/// Draws the offered load of every scenario in `report` over time into an
/// SVG file at `path`: one curve per scenario (a moving average over five
/// buckets), the backend's capacity as a dashed line, the brownout window
/// shaded; below it, the tail-latency study's percentiles per strategy.
///
/// # Errors
/// The drawing or file error, as text.
///
/// ```no_run
/// # use stormguard_examples::brownout::{run, write_svg, Config, Studies};
/// let report = run(&Config::standard(), &Studies::standard(), 1, 2, |_, _, _| {})?;
/// write_svg(&report, "brownout.svg".as_ref())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_svg(report: &Report, path: &Path) -> Result<(), String> {
    draw(report, path).map_err(|e| format!("cannot draw {}: {e}", path.display()))
}

fn draw(report: &Report, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let config = &report.config;
    let bucket = config.bucket.as_secs_f64();
    let end = config.duration.as_secs_f64();
    let curves: Vec<Vec<(f64, f64)>> = report
        .scenarios
        .iter()
        .map(|r| smoothed(&r.offered_load, bucket))
        .collect();
    let highest = curves.iter().flatten().map(|&(_, y)| y).fold(1.0, f64::max);
    // Room above the curves for the legend.
    let top = highest.ceil() + 2.0;

    let root = SVGBackend::new(path, (1000, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(560);
    let mut chart = ChartBuilder::on(&upper)
        .caption(
            "Offered load on the backend during and after a brownout",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..end, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("offered load (× capacity)")
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;

    let shade = RGBColor(250, 200, 120).mix(0.35);
    let (start, stop) = (
        config.brownout_start.as_secs_f64(),
        config.brownout_end.as_secs_f64(),
    );
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(start, 0.0), (stop, top)],
            shade.filled(),
        )))?
        .label("brownout (the trigger)")
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 20, y + 6)], shade.filled()));
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, 1.0), (end, 1.0)],
            8,
            5,
            BLACK.stroke_width(2),
        ))?
        .label("capacity")
        .legend(|(x, y)| {
            EmptyElement::at((x, y))
                + PathElement::new([(0, 0), (7, 0)], BLACK.stroke_width(2))
                + PathElement::new([(12, 0), (19, 0)], BLACK.stroke_width(2))
        });

    for (i, (result, points)) in report.scenarios.iter().zip(curves).enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let width = if Scenario::BUDGETED.contains(&result.scenario) {
            3
        } else {
            2
        };
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(width)))?
            .label(result.scenario.name())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 14))
        .draw()?;
    draw_tail(report, &lower)?;
    root.present()?;
    Ok(())
}

/// The percentiles the tail panel plots, and their labels.
const PERCENTILES: [&str; 5] = ["p50", "p90", "p95", "p99", "p99.9"];

/// The tail-latency study: each strategy's latency at each percentile.
fn draw_tail<DB: DrawingBackend>(
    report: &Report,
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let points: Vec<Vec<(f64, f64)>> = report
        .tail
        .iter()
        .map(|r| {
            [r.p50, r.p90, r.p95, r.p99, r.p999]
                .iter()
                .enumerate()
                .map(|(i, d)| (i as f64, d.as_secs_f64() * 1e3))
                .collect()
        })
        .collect();
    let highest = points.iter().flatten().map(|&(_, y)| y).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Tail latency with one replica in ten 20× slower",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.2..(PERCENTILES.len() as f64 - 0.8), 0.0..highest * 1.1)?;
    chart
        .configure_mesh()
        .x_labels(PERCENTILES.len())
        .x_label_formatter(&|x| {
            let i = x.round();
            match PERCENTILES.get(i as usize) {
                Some(label) if (x - i).abs() < 1e-6 && i >= 0.0 => (*label).to_string(),
                _ => String::new(),
            }
        })
        .x_desc("percentile of call latency")
        .y_desc("latency (ms)")
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let colours = [COLOURS[0], COLOURS[1], COLOURS[6]];
    for (i, (result, series)) in report.tail.iter().zip(points).enumerate() {
        let colour = colours[i % colours.len()];
        // The retry curve nearly lies under the hedging one: drawn wider,
        // it shows around it.
        let width = if i == 1 { 7 } else { 3 };
        chart
            .draw_series(LineSeries::new(series.clone(), colour.stroke_width(width)))?
            .label(result.strategy.name())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(3)));
        chart.draw_series(
            series
                .into_iter()
                .map(move |p| Circle::new(p, 4, colour.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 14))
        .draw()?;
    Ok(())
}

/// The curve of one scenario: each bucket's offered load averaged with its
/// neighbours, at the bucket's middle.
fn smoothed(load: &[f64], bucket_secs: f64) -> Vec<(f64, f64)> {
    (0..load.len())
        .map(|b| {
            let lo = b.saturating_sub(SMOOTHING);
            let hi = (b + SMOOTHING + 1).min(load.len());
            let mean = load[lo..hi].iter().sum::<f64>() / (hi - lo) as f64;
            ((b as f64 + 0.5) * bucket_secs, mean)
        })
        .collect()
}
