//! The report's SVG plots, drawn with plotters into strings (the CLI writes them atomically).

use plotters::prelude::*;

use super::Report;
use crate::trajectory::views::Stage;

/// One colour per set, the real set first (black): Okabe and Ito's colour-blind-safe palette.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0xF0, 0xE4, 0x42),
];

fn colour(set: usize) -> RGBColor {
    PALETTE[set % PALETTE.len()]
}

/// A figure of the report: written as `file` beside it and inlined in `report.html`.
#[derive(Debug, serde::Serialize)]
pub struct Figure {
    pub id: &'static str,
    pub file: &'static str,
    pub title: &'static str,
    /// How to read it.
    pub caption: String,
    pub svg: String,
}

/// Every figure of the report, in order.
pub fn figures(report: &Report) -> anyhow::Result<Vec<Figure>> {
    let [e0, e1] = report.embedding_pca_explained;
    Ok(vec![
        Figure {
            id: "embeddings",
            file: "embeddings_pca.svg",
            title: "Where simulated code sits among real code",
            caption: format!(
                "The study's Figure 2: each stream's first, middle and last submission, embedded and projected on the \
                 first two principal components of all sets' embeddings together ({:.1}% and {:.1}% of the variance), \
                 one panel per stage on the same axes. Real students are black. A generator whose points cover the \
                 black cloud writes code like theirs; one that sits in a corner writes one kind of program.",
                100.0 * e0,
                100.0 * e1
            ),
            svg: embeddings_pca(report)?,
        },
        Figure {
            id: "error-types",
            file: "error_types.svg",
            title: "Error types per stage",
            caption: "The study's Figure 3: the share of each label at each stage, per set, with √(p(1−p)/N) bars. \
                      Real novices start with many logical and runtime errors and end mostly with no_error; a \
                      generator that is too good starts at no_error."
                .into(),
            svg: error_types(report)?,
        },
        Figure {
            id: "progress",
            file: "progress.svg",
            title: "Progress per normalized step",
            caption: "The study's Figure 4: pass rate, style score and edit distance to the previous attempt at each \
                      normalized step (each stream mapped onto its problem's typical real length), with 95% intervals, \
                      a line per set. Realistic streams climb slowly and make small edits."
                .into(),
            svg: progress(report)?,
        },
        Figure {
            id: "attempts",
            file: "attempts.svg",
            title: "Attempts per stream",
            caption: "How many attempts each stream has: real students against each generator (share of streams). \
                      A generator that stops too early or never stops shows here first."
                .into(),
            svg: attempts(report)?,
        },
    ])
}

/// Split off a strip at the top of `root` with one swatch and name per set (wrapping onto more lines when they
/// do not fit), so no legend covers the data; the rest of `root` is returned.
fn legend_strip<'a>(
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    names: &[String],
) -> Result<DrawingArea<SVGBackend<'a>, plotters::coord::Shift>, Box<dyn std::error::Error>> {
    const LINE: i32 = 22;
    let width = root.dim_in_pixel().0 as i32;
    let mut places = Vec::with_capacity(names.len());
    let (mut x, mut y) = (12, 8);
    for name in names {
        let w = 17 + 8 * name.chars().count() as i32 + 22;
        if x > 12 && x + w > width {
            (x, y) = (12, y + LINE);
        }
        places.push((x, y));
        x += w;
    }
    let (strip, rest) = root.split_vertically((y + LINE + 4) as u32);
    for (s, (name, &(x, y))) in names.iter().zip(&places).enumerate() {
        strip.draw(&Rectangle::new([(x, y + 3), (x + 12, y + 15)], colour(s).filled()))?;
        strip.draw(&Text::new(name.clone(), (x + 17, y + 2), ("sans-serif", 14).into_font()))?;
    }
    Ok(rest)
}

type Drawn = Result<(), Box<dyn std::error::Error>>;

fn render(
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend, plotters::coord::Shift>) -> Drawn,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        draw(root.clone()).map_err(|e| anyhow::anyhow!("drawing a plot: {e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(svg)
}

/// Label shares per stage (one panel per stage), bars per set, with √(p(1−p)/N) error bars.
pub fn error_types(report: &Report) -> anyhow::Result<String> {
    let sets = report.functionality.len();
    let names: Vec<String> = report.functionality.iter().map(|f| f.set.clone()).collect();
    render((1200, 460), |root| {
        let panels = legend_strip(&root, &names)?.split_evenly((1, 3));
        for (stage, panel) in panels.iter().enumerate() {
            let mut chart = ChartBuilder::on(panel)
                .caption(Stage::ALL[stage].as_str(), ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d(0.0..4.0, 0.0..1.0)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .light_line_style(TRANSPARENT)
                // Ticks every 0.5: the label names sit at the middle of each group of bars.
                .x_labels(9)
                .x_label_formatter(&|x: &f64| {
                    let names = ["no_error", "logical", "runtime", "compile"];
                    if (x.fract() - 0.5).abs() < 1e-9 {
                        names.get(*x as usize).map_or(String::new(), |s| s.to_string())
                    } else {
                        String::new()
                    }
                })
                .y_desc("share of submissions")
                .draw()?;
            let width = 0.8 / sets as f64;
            for (s, f) in report.functionality.iter().enumerate() {
                for (l, share) in f.stages[stage].shares.iter().enumerate() {
                    let x0 = l as f64 + 0.1 + s as f64 * width;
                    chart.draw_series([Rectangle::new(
                        [(x0, 0.0), (x0 + width * 0.9, share.share)],
                        colour(s).filled(),
                    )])?;
                    let mid = x0 + width * 0.45;
                    let (low, high) = ((share.share - share.error).max(0.0), (share.share + share.error).min(1.0));
                    chart.draw_series([ErrorBar::new_vertical(
                        mid,
                        low,
                        share.share,
                        high,
                        RGBColor(0x70, 0x70, 0x70).stroke_width(1),
                        4,
                    )])?;
                }
            }
        }
        Ok(())
    })
}

/// Pass rate, style score and edit distance against normalized step, a line per set with 95% intervals.
pub fn progress(report: &Report) -> anyhow::Result<String> {
    type Pick = fn(&super::ProgressPoint) -> super::MeanCi;
    // Each metric with the range its values can take (a pass rate lies in [0, 1] whatever its interval says).
    let metrics: [(&str, Pick, (f64, f64)); 3] = [
        ("pass rate", |p| p.pass_rate, (0.0, 1.0)),
        ("style score", |p| p.style, (f64::NEG_INFINITY, f64::INFINITY)),
        ("edit distance", |p| p.edit_distance, (0.0, f64::INFINITY)),
    ];
    let names: Vec<String> = report.progress.iter().map(|p| p.set.clone()).collect();
    render((1200, 460), |root| {
        let panels = legend_strip(&root, &names)?.split_evenly((1, 3));
        let max_step = report.progress.iter().flat_map(|p| p.steps.iter().map(|s| s.step)).max().unwrap_or(1);
        for ((title, pick, (min, max)), panel) in metrics.iter().zip(panels.iter()) {
            let values = report.progress.iter().flat_map(|p| p.steps.iter().map(pick));
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), m| {
                (lo.min(m.mean - m.ci95), hi.max(m.mean + m.ci95))
            });
            let (lo, hi) = if lo.is_finite() && hi > lo { (lo.max(*min), hi.min(*max)) } else { (0.0, 1.0) };
            let pad = (hi - lo) * 0.05;
            let mut chart = ChartBuilder::on(panel)
                .caption(*title, ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(35)
                .y_label_area_size(50)
                .build_cartesian_2d(0.5..max_step as f64 + 0.5, (lo - pad)..(hi + pad))?;
            chart.configure_mesh().light_line_style(TRANSPARENT).x_desc("normalized step").y_desc(*title).draw()?;
            for (s, p) in report.progress.iter().enumerate() {
                let c = colour(s);
                let points: Vec<(f64, f64)> = p.steps.iter().map(|st| (st.step as f64, pick(st).mean)).collect();
                chart.draw_series(LineSeries::new(points, c.stroke_width(2)))?;
                chart.draw_series(p.steps.iter().map(|st| {
                    let m = pick(st);
                    let (low, high) = ((m.mean - m.ci95).max(*min), (m.mean + m.ci95).min(*max));
                    ErrorBar::new_vertical(st.step as f64, low, m.mean, high, c.stroke_width(1), 4)
                }))?;
            }
        }
        Ok(())
    })
}

/// The embeddings of each set's first, middle and last rows on the first two principal components of the
/// pooled embeddings: one panel per stage, the same axes in all three.
pub fn embeddings_pca(report: &Report) -> anyhow::Result<String> {
    let names: Vec<String> = report.embedding_points.iter().map(|(name, _)| name.clone()).collect();
    render((1200, 470), |root| {
        let all = report.embedding_points.iter().flat_map(|(_, stages)| stages.iter().flatten());
        let (x0, x1, y0, y1) = all
            .fold((f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY), |b, &(x, y)| {
                (b.0.min(x), b.1.max(x), b.2.min(y), b.3.max(y))
            });
        let (x0, x1, y0, y1) =
            if x0.is_finite() && x1 > x0 && y1 > y0 { (x0, x1, y0, y1) } else { (-1.0, 1.0, -1.0, 1.0) };
        let [e0, e1] = report.embedding_pca_explained;
        let panels = legend_strip(&root, &names)?.split_evenly((1, 3));
        for (stage, panel) in panels.iter().enumerate() {
            let mut chart = ChartBuilder::on(panel)
                .caption(Stage::ALL[stage].as_str(), ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(35)
                .y_label_area_size(50)
                .build_cartesian_2d(x0..x1, y0..y1)?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .x_desc(format!("PC1 ({:.1}%)", 100.0 * e0))
                .y_desc(format!("PC2 ({:.1}%)", 100.0 * e1))
                .draw()?;
            // Simulated sets first, the real set last, so real students stay visible on top.
            for (s, (_, stages)) in report.embedding_points.iter().enumerate().rev() {
                let c = colour(s);
                chart.draw_series(stages[stage].iter().map(|&p| Circle::new(p, 3, c.mix(0.55).filled())))?;
            }
        }
        Ok(())
    })
}

/// Share of streams with each number of attempts, bars side by side per set.
pub fn attempts(report: &Report) -> anyhow::Result<String> {
    let names: Vec<String> = report.stream_realism.iter().map(|s| s.set.clone()).collect();
    // Long tails are pooled into the last bar so the common lengths stay readable.
    const MOST: usize = 15;
    let shares: Vec<Vec<f64>> = report
        .stream_realism
        .iter()
        .map(|s| {
            let total = s.attempts_histogram.values().sum::<usize>().max(1) as f64;
            let mut bins = vec![0.0; MOST];
            for (&len, &count) in &s.attempts_histogram {
                bins[len.clamp(1, MOST) - 1] += count as f64 / total;
            }
            bins
        })
        .collect();
    let longest = report
        .stream_realism
        .iter()
        .flat_map(|s| s.attempts_histogram.keys().copied())
        .max()
        .unwrap_or(1)
        .clamp(1, MOST);
    let top = shares.iter().flatten().copied().fold(0.0, f64::max).max(0.05) * 1.08;
    render((1200, 420), |root| {
        let area = legend_strip(&root, &names)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(0.5..longest as f64 + 0.5, 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(longest)
            .x_label_formatter(&|x: &f64| {
                let n = x.round() as usize;
                if (x - x.round()).abs() > 1e-9 || n == 0 {
                    String::new()
                } else if n == MOST {
                    format!("{MOST}+")
                } else {
                    n.to_string()
                }
            })
            .x_desc("attempts in the stream")
            .y_desc("share of streams")
            .draw()?;
        let width = 0.8 / shares.len().max(1) as f64;
        for (s, bins) in shares.iter().enumerate() {
            for (b, &share) in bins.iter().enumerate().take(longest) {
                let x0 = b as f64 + 1.0 - 0.4 + s as f64 * width;
                chart.draw_series([Rectangle::new([(x0, 0.0), (x0 + width * 0.9, share)], colour(s).filled())])?;
            }
        }
        Ok(())
    })
}
