//! The report's SVG plots, drawn with plotters into strings (the CLI writes them atomically).

use plotters::prelude::*;

use super::streams::StreamRealism;
use super::{Functionality, Progress, Report, StagePoints};
use crate::trajectory::views::Stage;

/// One colour per set, the real set first (black), ten in all: Paul Tol's colour-blind-safe "bright" scheme, then
/// Okabe and Ito's orange and a brown. No two are near-identical (Okabe-Ito alone pairs sky blue with blue and
/// orange with vermillion), and each set also has its own marker.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0x44, 0x77, 0xAA),
    RGBColor(0xEE, 0x66, 0x77),
    RGBColor(0x22, 0x88, 0x33),
    RGBColor(0xCC, 0xBB, 0x44),
    RGBColor(0x66, 0xCC, 0xEE),
    RGBColor(0xAA, 0x33, 0x77),
    RGBColor(0xBB, 0xBB, 0xBB),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x8C, 0x51, 0x0A),
];

fn colour(set: usize) -> RGBColor {
    PALETTE[set % PALETTE.len()]
}

/// The marker shapes, one per set after the colours (so an eleventh set differs from the first by its shape).
#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Square,
    Triangle,
    Cross,
    Diamond,
}

const MARKERS: [Marker; 5] = [Marker::Circle, Marker::Square, Marker::Triangle, Marker::Cross, Marker::Diamond];

/// Set `set`'s marker at `at` (data or pixel coordinates), about `size` pixels across.
fn marker<'a, DB: DrawingBackend + 'a, C: Clone + 'a>(
    set: usize,
    at: C,
    size: i32,
    style: ShapeStyle,
) -> DynElement<'a, DB, C> {
    let half = size / 2;
    let at = EmptyElement::at(at);
    match MARKERS[set % MARKERS.len()] {
        Marker::Circle => (at + Circle::new((0, 0), half, style)).into_dyn(),
        Marker::Square => (at + Rectangle::new([(-half, -half), (half, half)], style)).into_dyn(),
        Marker::Triangle => (at + TriangleMarker::new((0, 0), half + 1, style)).into_dyn(),
        Marker::Cross => (at + Cross::new((0, 0), half, style.stroke_width(2))).into_dyn(),
        Marker::Diamond => {
            let d = half + 1;
            (at + Polygon::new(vec![(0, -d), (d, 0), (0, d), (-d, 0)], style)).into_dyn()
        }
    }
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

/// The sets a figure shows: the real one always, and the simulated sets `shown` names (all when `None`).
struct Shown<'a>(Option<&'a [String]>);

impl Shown<'_> {
    /// The items of `items` (one per set, the real set first) whose set is shown.
    fn pick<'t, T>(&self, items: &'t [T], set: impl Fn(&T) -> &str) -> Vec<&'t T> {
        items
            .iter()
            .enumerate()
            .filter(|(i, item)| *i == 0 || self.0.is_none_or(|names| names.iter().any(|n| n == set(item))))
            .map(|(_, item)| item)
            .collect()
    }
}

/// Every figure of the report, in order, showing the real set and the simulated sets `shown` names (all when
/// `None`; the tables always show every set).
pub fn figures(report: &Report, shown: Option<&[String]>) -> anyhow::Result<Vec<Figure>> {
    let shown = Shown(shown);
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
            svg: embeddings_pca(
                &shown.pick(&report.embedding_points, |(name, _)| name),
                report.embedding_pca_explained,
            )?,
        },
        Figure {
            id: "error-types",
            file: "error_types.svg",
            title: "Error types per stage",
            caption: "The study's Figure 3: the share of each label at each stage, per set, with √(p(1−p)/N) bars. \
                      Real novices start with many logical and runtime errors and end mostly with no_error; a \
                      generator that is too good starts at no_error."
                .into(),
            svg: error_types(&shown.pick(&report.functionality, |f| &f.set))?,
        },
        Figure {
            id: "progress",
            file: "progress.svg",
            title: "Progress per normalized step",
            caption: "The study's Figure 4: pass rate, style score and edit distance to the previous attempt at each \
                      normalized step (each stream mapped onto its problem's typical real length), with 95% intervals, \
                      a line per set. Realistic streams climb slowly and make small edits."
                .into(),
            svg: progress(&shown.pick(&report.progress, |p| &p.set))?,
        },
        Figure {
            id: "attempts",
            file: "attempts.svg",
            title: "Attempts per stream",
            caption: "How many attempts each stream has: real students against each generator (share of streams). \
                      A generator that stops too early or never stops shows here first."
                .into(),
            svg: attempts(&shown.pick(&report.stream_realism, |s| &s.set))?,
        },
    ])
}

/// Split off a strip at the top of `root` with one swatch and name per set (wrapping onto more lines when they
/// do not fit), so no legend covers the data; the rest of `root` is returned.
fn legend_strip<'a>(
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    names: &[String],
) -> Result<DrawingArea<SVGBackend<'a>, plotters::coord::Shift>, Box<dyn std::error::Error>> {
    const LINE: i32 = 26;
    let width = root.dim_in_pixel().0 as i32;
    let mut places = Vec::with_capacity(names.len());
    let (mut x, mut y) = (12, 8);
    for name in names {
        let w = 22 + 10 * name.chars().count() as i32 + 24;
        if x > 12 && x + w > width {
            (x, y) = (12, y + LINE);
        }
        places.push((x, y));
        x += w;
    }
    let (strip, rest) = root.split_vertically((y + LINE + 4) as u32);
    for (s, (name, &(x, y))) in names.iter().zip(&places).enumerate() {
        strip.draw(&marker(s, (x + 8, y + 10), 14, colour(s).filled()))?;
        strip.draw(&Text::new(name.clone(), (x + 22, y + 1), ("sans-serif", LABEL).into_font()))?;
    }
    Ok(rest)
}

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Font sizes in the SVG's pixels. A figure is 1,200 pixels wide and shown at about 900 on a 1,280-pixel page, so
/// these read as 13 and 15 pixels there.
const LABEL: u32 = 17;
const CAPTION: u32 = 20;

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
fn error_types(functionality: &[&Functionality]) -> anyhow::Result<String> {
    let sets = functionality.len();
    let names: Vec<String> = functionality.iter().map(|f| f.set.clone()).collect();
    render((1200, 460), |root| {
        let panels = legend_strip(&root, &names)?.split_evenly((1, 3));
        for (stage, panel) in panels.iter().enumerate() {
            let mut chart = ChartBuilder::on(panel)
                .caption(Stage::ALL[stage].as_str(), ("sans-serif", CAPTION))
                .margin(8)
                .x_label_area_size(40)
                .y_label_area_size(76)
                .build_cartesian_2d(0.0..4.0, 0.0..1.0)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .light_line_style(TRANSPARENT)
                .label_style(("sans-serif", LABEL))
                .axis_desc_style(("sans-serif", LABEL))
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
            for (s, f) in functionality.iter().enumerate() {
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
fn progress(progress: &[&Progress]) -> anyhow::Result<String> {
    type Pick = fn(&super::ProgressPoint) -> super::MeanCi;
    // Each metric with the range its values can take (a pass rate lies in [0, 1] whatever its interval says).
    let metrics: [(&str, Pick, (f64, f64)); 3] = [
        ("pass rate", |p| p.pass_rate, (0.0, 1.0)),
        ("style score", |p| p.style, (f64::NEG_INFINITY, f64::INFINITY)),
        ("edit distance", |p| p.edit_distance, (0.0, f64::INFINITY)),
    ];
    let names: Vec<String> = progress.iter().map(|p| p.set.clone()).collect();
    render((1200, 460), |root| {
        let panels = legend_strip(&root, &names)?.split_evenly((1, 3));
        let max_step = progress.iter().flat_map(|p| p.steps.iter().map(|s| s.step)).max().unwrap_or(1);
        for ((title, pick, (min, max)), panel) in metrics.iter().zip(panels.iter()) {
            let values = progress.iter().flat_map(|p| p.steps.iter().map(pick));
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), m| {
                (lo.min(m.mean - m.ci95), hi.max(m.mean + m.ci95))
            });
            let (lo, hi) = if lo.is_finite() && hi > lo { (lo.max(*min), hi.min(*max)) } else { (0.0, 1.0) };
            let pad = (hi - lo) * 0.05;
            let mut chart = ChartBuilder::on(panel)
                .caption(*title, ("sans-serif", CAPTION))
                .margin(8)
                .x_label_area_size(48)
                .y_label_area_size(76)
                .build_cartesian_2d(0.5..max_step as f64 + 0.5, (lo - pad)..(hi + pad))?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .label_style(("sans-serif", LABEL))
                .axis_desc_style(("sans-serif", LABEL))
                .x_desc("normalized step")
                .y_desc(*title)
                .draw()?;
            for (s, p) in progress.iter().enumerate() {
                let c = colour(s);
                let points: Vec<(f64, f64)> = p.steps.iter().map(|st| (st.step as f64, pick(st).mean)).collect();
                chart.draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?;
                for p in points {
                    chart.plotting_area().draw(&marker(s, p, 9, c.filled()))?;
                }
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
fn embeddings_pca(points: &[&(String, StagePoints)], explained: [f64; 2]) -> anyhow::Result<String> {
    let names: Vec<String> = points.iter().map(|(name, _)| name.clone()).collect();
    render((1200, 470), |root| {
        let all = points.iter().flat_map(|(_, stages)| stages.iter().flatten());
        let (x0, x1, y0, y1) = all
            .fold((f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY), |b, &(x, y)| {
                (b.0.min(x), b.1.max(x), b.2.min(y), b.3.max(y))
            });
        let (x0, x1, y0, y1) =
            if x0.is_finite() && x1 > x0 && y1 > y0 { (x0, x1, y0, y1) } else { (-1.0, 1.0, -1.0, 1.0) };
        let [e0, e1] = explained;
        let panels = legend_strip(&root, &names)?.split_evenly((1, 3));
        for (stage, panel) in panels.iter().enumerate() {
            let mut chart = ChartBuilder::on(panel)
                .caption(Stage::ALL[stage].as_str(), ("sans-serif", CAPTION))
                .margin(8)
                .x_label_area_size(48)
                .y_label_area_size(76)
                .build_cartesian_2d(x0..x1, y0..y1)?;
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .label_style(("sans-serif", LABEL))
                .axis_desc_style(("sans-serif", LABEL))
                .x_desc(format!("PC1 ({:.1}%)", 100.0 * e0))
                .y_desc(format!("PC2 ({:.1}%)", 100.0 * e1))
                .draw()?;
            // Simulated sets first, the real set last, so real students stay visible on top.
            for (s, (_, stages)) in points.iter().enumerate().rev() {
                let c = colour(s);
                for &p in &stages[stage] {
                    chart.plotting_area().draw(&marker(s, p, 8, c.mix(0.6).filled()))?;
                }
            }
        }
        Ok(())
    })
}

/// Share of streams with each number of attempts, bars side by side per set.
fn attempts(streams: &[&StreamRealism]) -> anyhow::Result<String> {
    let names: Vec<String> = streams.iter().map(|s| s.set.clone()).collect();
    // Long tails are pooled into the last bar so the common lengths stay readable.
    const MOST: usize = 15;
    let shares: Vec<Vec<f64>> = streams
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
    let longest = streams.iter().flat_map(|s| s.attempts_histogram.keys().copied()).max().unwrap_or(1).clamp(1, MOST);
    let top = shares.iter().flatten().copied().fold(0.0, f64::max).max(0.05) * 1.08;
    render((1200, 420), |root| {
        let area = legend_strip(&root, &names)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(0.5..longest as f64 + 0.5, 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", LABEL))
            .axis_desc_style(("sans-serif", LABEL))
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
