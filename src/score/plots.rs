//! The report's SVG plots, drawn with plotters into strings (the CLI writes them atomically).

use plotters::prelude::*;

use super::Report;

/// One colour per set, the real set first.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x22, 0x22, 0x22),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
];

fn colour(set: usize) -> RGBColor {
    PALETTE[set % PALETTE.len()]
}

type Drawn = Result<(), Box<dyn std::error::Error>>;

fn render(size: (u32, u32), draw: impl FnOnce(DrawingArea<SVGBackend, plotters::coord::Shift>) -> Drawn) -> anyhow::Result<String> {
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
    render((1200, 420), |root| {
        let panels = root.split_evenly((1, 3));
        for (stage, panel) in panels.iter().enumerate() {
            let title = report.functionality.first().map_or("", |f| f.stages[stage].stage.as_str());
            let mut chart = ChartBuilder::on(panel)
                .caption(title, ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(40)
                .build_cartesian_2d(0.0..4.0, 0.0..1.0)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .light_line_style(TRANSPARENT)
                // Ticks every 0.5: the label names sit at the middle of each group of bars.
                .x_labels(9)
                .x_label_formatter(&|x: &f64| {
                    let names = ["no_error", "logical", "runtime", "compile"];
                    if (x.fract() - 0.5).abs() < 1e-9 { names.get(*x as usize).map_or(String::new(), |s| s.to_string()) } else { String::new() }
                })
                .y_desc("share")
                .draw()?;
            let width = 0.8 / sets as f64;
            for (s, f) in report.functionality.iter().enumerate() {
                for (l, share) in f.stages[stage].shares.iter().enumerate() {
                    let x0 = l as f64 + 0.1 + s as f64 * width;
                    chart.draw_series([Rectangle::new([(x0, 0.0), (x0 + width * 0.9, share.share)], colour(s).filled())])?;
                    let mid = x0 + width * 0.45;
                    chart.draw_series([ErrorBar::new_vertical(
                        mid,
                        (share.share - share.error).max(0.0),
                        share.share,
                        (share.share + share.error).min(1.0),
                        BLACK.stroke_width(1),
                        4,
                    )])?;
                }
                if stage == 0 {
                    chart.draw_series([Rectangle::new([(0.0, 0.0), (0.0, 0.0)], colour(s).filled())])?
                        .label(f.set.as_str())
                        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour(s).filled()));
                }
            }
            if stage == 0 {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .border_style(BLACK)
                    .background_style(WHITE.mix(0.8))
                    .draw()?;
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
    render((1200, 420), |root| {
        let panels = root.split_evenly((1, 3));
        let max_step = report.progress.iter().flat_map(|p| p.steps.iter().map(|s| s.step)).max().unwrap_or(1);
        for ((title, pick, (min, max)), panel) in metrics.iter().zip(panels.iter()) {
            let values = report.progress.iter().flat_map(|p| p.steps.iter().map(|s| pick(s)));
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), m| {
                (lo.min(m.mean - m.ci95), hi.max(m.mean + m.ci95))
            });
            let (lo, hi) = if lo.is_finite() && hi > lo { (lo.max(*min), hi.min(*max)) } else { (0.0, 1.0) };
            let pad = (hi - lo) * 0.05;
            let mut chart = ChartBuilder::on(panel)
                .caption(*title, ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(45)
                .build_cartesian_2d(0.5..max_step as f64 + 0.5, (lo - pad)..(hi + pad))?;
            chart.configure_mesh().light_line_style(TRANSPARENT).x_desc("normalized step").draw()?;
            for (s, p) in report.progress.iter().enumerate() {
                let c = colour(s);
                let points: Vec<(f64, f64)> = p.steps.iter().map(|st| (st.step as f64, pick(st).mean)).collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?
                    .label(p.set.as_str())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], c.stroke_width(2)));
                chart.draw_series(p.steps.iter().map(|st| {
                    let m = pick(st);
                    let (low, high) = ((m.mean - m.ci95).max(*min), (m.mean + m.ci95).min(*max));
                    ErrorBar::new_vertical(st.step as f64, low, m.mean, high, c.stroke_width(1), 4)
                }))?;
            }
            if *title == "pass rate" {
                chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
            }
        }
        Ok(())
    })
}

/// The embeddings of each set on the first two principal components of the pooled embeddings.
pub fn embeddings_pca(report: &Report) -> anyhow::Result<String> {
    render((700, 600), |root| {
        let all = report.embedding_points.iter().flat_map(|(_, p)| p.iter());
        let (x0, x1, y0, y1) = all.fold((f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY), |b, &(x, y)| {
            (b.0.min(x), b.1.max(x), b.2.min(y), b.3.max(y))
        });
        let (x0, x1, y0, y1) = if x0.is_finite() && x1 > x0 && y1 > y0 { (x0, x1, y0, y1) } else { (-1.0, 1.0, -1.0, 1.0) };
        let [e0, e1] = report.embedding_pca_explained;
        let mut chart = ChartBuilder::on(&root)
            .caption("code embeddings, PCA", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc(format!("PC1 ({:.1}%)", 100.0 * e0))
            .y_desc(format!("PC2 ({:.1}%)", 100.0 * e1))
            .draw()?;
        for (s, (name, points)) in report.embedding_points.iter().enumerate() {
            let c = colour(s);
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 2, c.mix(0.5).filled())))?
                .label(name.as_str())
                .legend(move |(x, y)| Circle::new((x + 5, y), 4, c.filled()));
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
        Ok(())
    })
}
