//! Charts for the executive report, drawn as PNG (mail clients strip SVG and `data:` URIs,
//! so the mail carries them inline by Content-ID). Text uses the DejaVu Sans font built into
//! the binary, so no system fonts are needed.

use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

const FONT: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
/// Drawn at twice the size it is shown at, so it stays sharp on high-density screens.
const SCALE: u32 = 2;
pub const WIDTH: u32 = 680;
pub const HEIGHT: u32 = 280;

/// One series of values, one per category (or per point of a line).
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
    pub color: RGBColor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Series stacked on each other in one bar per category.
    Stacked,
    /// Series side by side within each category.
    Grouped,
    /// One line per series across the categories (points in time).
    Line,
}

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("the built-in chart font does not load")]
    Font,
    #[error("chart `{title}`: {source}")]
    Draw { title: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("{0}")]
    Png(#[from] png::EncodingError),
}

fn register_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let loaded =
        REGISTERED.get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if *loaded { Ok(()) } else { Err(ChartError::Font) }
}

/// A colour for a grade, from its name where it says one (`red`, `high`, `churn`...), else
/// from a palette by position.
pub fn grade_color(grade: &str, position: usize) -> RGBColor {
    let g = grade.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| g.contains(w));
    if has(&["red", "high", "churn", "alert", "critical", "risk"]) {
        RGBColor(0xd6, 0x45, 0x45)
    } else if has(&["yellow", "amber", "medium", "shrink", "watch", "warn"]) {
        RGBColor(0xf0, 0xad, 0x2c)
    } else if has(&["green", "low", "retain", "healthy", "ok", "grow"]) {
        RGBColor(0x3c, 0xa5, 0x5c)
    } else {
        PALETTE[position % PALETTE.len()]
    }
}

pub const PALETTE: [RGBColor; 6] = [
    RGBColor(0x2c, 0x7b, 0xe5),
    RGBColor(0x7b, 0x61, 0xc8),
    RGBColor(0x1f, 0xa2, 0xb4),
    RGBColor(0x9a, 0xa5, 0xb1),
    RGBColor(0xe0, 0x7a, 0x3f),
    RGBColor(0x52, 0x60, 0x6d),
];

/// `$1.2M`, `$350k`, `$900`: axis labels.
pub fn compact_money(v: f64) -> String {
    compact_money_in(v, "$")
}

/// [`compact_money`] in another currency (`€1.2M`, `CHF 350k`).
pub fn compact_money_in(v: f64, currency: &str) -> String {
    let a = v.abs();
    let (n, unit) = if a >= 1e9 {
        (v / 1e9, "B")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = if n.fract().abs() < 0.05 || n.abs() >= 100.0 { format!("{n:.0}") } else { format!("{n:.1}") };
    let space = if currency.chars().last().is_some_and(char::is_alphabetic) { " " } else { "" };
    format!("{}{currency}{space}{}{unit}", if text.starts_with('-') { "-" } else { "" }, text.trim_start_matches('-'))
}

/// Draws a chart of money values over `categories` and returns it as PNG bytes.
pub fn draw(
    title: &str,
    categories: &[String],
    series: &[Series],
    layout: Layout,
    currency: &str,
) -> Result<Vec<u8>, ChartError> {
    register_font()?;
    let (w, h) = (WIDTH * SCALE, HEIGHT * SCALE);
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        let draw =
            |source: Box<dyn std::error::Error + Send + Sync>| ChartError::Draw { title: title.to_string(), source };
        plot(&root, title, categories, series, layout, currency).map_err(|e| draw(e.to_string().into()))?;
        root.present().map_err(|e| draw(Box::new(e)))?;
    }
    encode_png(&pixels, w, h)
}

fn plot<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    categories: &[String],
    series: &[Series],
    layout: Layout,
    currency: &str,
) -> Result<(), Box<dyn std::error::Error + 'static>>
where
    DB::ErrorType: 'static,
{
    let s = SCALE as i32;
    let n = categories.len().max(1);
    let top = match layout {
        Layout::Stacked => {
            (0..n).map(|c| series.iter().map(|x| x.values.get(c).copied().unwrap_or(0.0)).sum()).fold(0.0, f64::max)
        }
        _ => series.iter().flat_map(|x| x.values.iter().copied()).fold(0.0, f64::max),
    };
    let top = if top <= 0.0 { 1.0 } else { top * 1.12 };
    let text = |size: i32| ("sans-serif", size * s).into_font();
    let grey = RGBColor(0x52, 0x60, 0x6d);
    let mut chart = ChartBuilder::on(root)
        .caption(title, text(15).color(&RGBColor(0x1f, 0x29, 0x33)))
        .margin(10 * s)
        .x_label_area_size(24 * s)
        .y_label_area_size(56 * s)
        .build_cartesian_2d(0f64..n as f64, 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(0xee, 0xf1, 0xf4))
        .axis_style(RGBColor(0xcb, 0xd2, 0xd9))
        .y_labels(5)
        .y_label_formatter(&|y| compact_money_in(*y, currency))
        .y_label_style(text(11).color(&grey))
        .draw()?;
    // Category labels under the middle of each category (a line chart shows at most about
    // eight, evenly spread).
    let step = if layout == Layout::Line { categories.len().div_ceil(8).max(1) } else { 1 };
    let label_style = text(11).color(&grey).pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Center,
        plotters::style::text_anchor::VPos::Top,
    ));
    for (c, label) in categories.iter().enumerate() {
        if !(categories.len() - 1 - c).is_multiple_of(step) {
            continue;
        }
        let (px, py) = chart.backend_coord(&(c as f64 + 0.5, 0.0));
        root.draw(&Text::new(label.clone(), (px, py + 6 * s), label_style.clone()))?;
    }
    // Category `c` spans [c, c+1); its label sits at the middle.
    match layout {
        Layout::Stacked => {
            for (i, x) in series.iter().enumerate() {
                let color = x.color;
                let rects = (0..n).map(|c| {
                    let below: f64 = series[..i].iter().map(|p| p.values.get(c).copied().unwrap_or(0.0)).sum();
                    let v = x.values.get(c).copied().unwrap_or(0.0);
                    Rectangle::new([(c as f64 + 0.2, below), (c as f64 + 0.8, below + v)], color.filled())
                });
                chart.draw_series(rects)?.label(x.name.clone()).legend(move |(lx, ly)| {
                    Rectangle::new([(lx, ly - 5 * s), (lx + 10 * s, ly + 5 * s)], color.filled())
                });
            }
        }
        Layout::Grouped => {
            let k = series.len().max(1) as f64;
            let width = 0.7 / k;
            for (i, x) in series.iter().enumerate() {
                let color = x.color;
                let rects = (0..n).map(|c| {
                    let left = c as f64 + 0.15 + i as f64 * width;
                    let v = x.values.get(c).copied().unwrap_or(0.0);
                    Rectangle::new([(left, 0.0), (left + width * 0.92, v)], color.filled())
                });
                chart.draw_series(rects)?.label(x.name.clone()).legend(move |(lx, ly)| {
                    Rectangle::new([(lx, ly - 5 * s), (lx + 10 * s, ly + 5 * s)], color.filled())
                });
            }
        }
        Layout::Line => {
            for x in series {
                let color = x.color;
                let points: Vec<(f64, f64)> = x.values.iter().enumerate().map(|(c, v)| (c as f64 + 0.5, *v)).collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2 * SCALE)))?
                    .label(x.name.clone())
                    .legend(move |(lx, ly)| {
                        PathElement::new(vec![(lx, ly), (lx + 12 * s, ly)], color.stroke_width(2 * SCALE))
                    });
                chart.draw_series(points.iter().map(|p| Circle::new(*p, 3 * s, color.filled())))?;
            }
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0xe3, 0xe7, 0xec))
        .label_font(text(11))
        .margin(6 * s)
        .draw()?;
    Ok(())
}

/// One grade's churn rate with its interval, for [`rates`].
#[derive(Debug, Clone)]
pub struct RateBar {
    pub grade: String,
    pub rate: f64,
    pub low: f64,
    pub high: f64,
    pub color: RGBColor,
}

fn percent_axis(y: &f64) -> String {
    format!("{:.0}%", y * 100.0)
}

/// Churn rate by grade, as bars with their 95% intervals as whiskers and the base rate as a
/// dashed line; PNG bytes.
pub fn rates(title: &str, bars: &[RateBar], base_rate: Option<f64>) -> Result<Vec<u8>, ChartError> {
    register_font()?;
    let (w, h) = (WIDTH * SCALE, HEIGHT * SCALE);
    canvas(w, h, title, |root| {
        let s = SCALE as i32;
        let text = |size: i32| ("sans-serif", size * s).into_font();
        let grey = RGBColor(0x52, 0x60, 0x6d);
        let top = bars.iter().map(|b| b.high).fold(base_rate.unwrap_or(0.0), f64::max).clamp(0.05, 1.0) * 1.1;
        let n = bars.len().max(1) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(title, text(15).color(&RGBColor(0x1f, 0x29, 0x33)))
            .margin(10 * s)
            .x_label_area_size(24 * s)
            .y_label_area_size(48 * s)
            .build_cartesian_2d(0f64..n, 0f64..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(0xee, 0xf1, 0xf4))
            .axis_style(RGBColor(0xcb, 0xd2, 0xd9))
            .y_labels(5)
            .y_label_formatter(&percent_axis)
            .y_label_style(text(11).color(&grey))
            .draw()?;
        let label_style = text(11).color(&grey).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ));
        for (c, b) in bars.iter().enumerate() {
            let x = c as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x + 0.25, 0.0), (x + 0.75, b.rate)],
                b.color.filled(),
            )))?;
            let whisker = RGBColor(0x1f, 0x29, 0x33).stroke_width(SCALE);
            let lines = [
                vec![(x + 0.5, b.low), (x + 0.5, b.high)],
                vec![(x + 0.42, b.low), (x + 0.58, b.low)],
                vec![(x + 0.42, b.high), (x + 0.58, b.high)],
            ];
            chart.draw_series(lines.into_iter().map(|l| PathElement::new(l, whisker)))?;
            let (px, py) = chart.backend_coord(&(x + 0.5, 0.0));
            root.draw(&Text::new(b.grade.clone(), (px, py + 6 * s), label_style.clone()))?;
        }
        if let Some(base) = base_rate {
            let dashed = (0..40).map(|i| {
                let x0 = n * i as f64 / 40.0;
                PathElement::new(vec![(x0, base), (x0 + n / 80.0, base)], grey.stroke_width(SCALE))
            });
            chart.draw_series(dashed)?;
        }
        Ok(())
    })
}

/// ROC curves, one per rule set, over the diagonal a coin toss would draw; PNG bytes.
pub fn roc_curves(title: &str, curves: &[(String, Vec<(f64, f64)>)]) -> Result<Vec<u8>, ChartError> {
    register_font()?;
    let (w, h) = (WIDTH * SCALE, HEIGHT * 3 / 2 * SCALE);
    canvas(w, h, title, |root| {
        let s = SCALE as i32;
        let text = |size: i32| ("sans-serif", size * s).into_font();
        let grey = RGBColor(0x52, 0x60, 0x6d);
        let mut chart = ChartBuilder::on(root)
            .caption(title, text(15).color(&RGBColor(0x1f, 0x29, 0x33)))
            .margin(10 * s)
            .x_label_area_size(36 * s)
            .y_label_area_size(48 * s)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(0xee, 0xf1, 0xf4))
            .axis_style(RGBColor(0xcb, 0xd2, 0xd9))
            .x_labels(6)
            .y_labels(6)
            .x_desc("accounts that stayed, flagged")
            .y_desc("churned accounts, flagged")
            .x_label_formatter(&percent_axis)
            .y_label_formatter(&percent_axis)
            .label_style(text(11).color(&grey))
            .axis_desc_style(text(11).color(&grey))
            .draw()?;
        chart.draw_series(std::iter::once(PathElement::new(vec![(0.0, 0.0), (1.0, 1.0)], grey.stroke_width(SCALE))))?;
        for (i, (name, points)) in curves.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2 * SCALE)))?
                .label(name.clone())
                .legend(move |(lx, ly)| {
                    PathElement::new(vec![(lx, ly), (lx + 12 * s, ly)], color.stroke_width(2 * SCALE))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0xe3, 0xe7, 0xec))
            .label_font(text(11))
            .margin(6 * s)
            .draw()?;
        Ok(())
    })
}

/// The size a trend line is shown at beside a metric.
pub const SPARK_WIDTH: u32 = 150;
pub const SPARK_HEIGHT: u32 = 36;

/// A metric's trend as a small line without axes, its last point marked: values oldest
/// first, a missing one a gap.
pub fn sparkline(values: &[Option<f64>], color: RGBColor) -> Result<Vec<u8>, ChartError> {
    let (w, h) = (SPARK_WIDTH * SCALE, SPARK_HEIGHT * SCALE);
    canvas(w, h, "trend", |root| {
        let known: Vec<f64> = values.iter().flatten().copied().filter(|v| v.is_finite()).collect();
        let (lo, hi) = known.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
        if !known.is_empty() {
            // A flat series sits in the middle; otherwise a little room above and below.
            let pad = if hi > lo { (hi - lo) * 0.15 } else { hi.abs().max(1.0) * 0.5 };
            let n = values.len().max(2) as f64 - 1.0;
            let mut chart = ChartBuilder::on(root)
                .margin(4 * SCALE)
                .build_cartesian_2d(0f64..n.max(1.0), (lo - pad)..(hi + pad))?;
            let line = color.stroke_width(2 * SCALE);
            let mut run: Vec<(f64, f64)> = Vec::new();
            let mut runs = Vec::new();
            for (i, v) in values.iter().enumerate() {
                match v.filter(|x| x.is_finite()) {
                    Some(v) => run.push((i as f64, v)),
                    None => runs.push(std::mem::take(&mut run)),
                }
            }
            runs.push(run);
            for r in runs.into_iter().filter(|r| !r.is_empty()) {
                chart.draw_series(LineSeries::new(r, line))?;
            }
            if let Some((i, Some(v))) = values.iter().enumerate().next_back() {
                chart.draw_series(std::iter::once(Circle::new((i as f64, *v), 3 * SCALE as i32, color.filled())))?;
            }
        }
        Ok(())
    })
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// A white canvas `w` by `h` pixels, painted by `paint`, as PNG.
fn canvas(
    w: u32,
    h: u32,
    title: &str,
    paint: impl FnOnce(&Area) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<Vec<u8>, ChartError> {
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        let failed = |e: String| ChartError::Draw { title: title.to_string(), source: e.into() };
        paint(&root).map_err(|e| failed(e.to_string()))?;
        root.present().map_err(|e| failed(e.to_string()))?;
    }
    encode_png(&pixels, w, h)
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_labels_are_compact() {
        assert_eq!(compact_money(0.0), "$0");
        assert_eq!(compact_money(950.0), "$950");
        assert_eq!(compact_money(1500.0), "$1.5k");
        assert_eq!(compact_money(2_000_000.0), "$2M");
        assert_eq!(compact_money(12_340_000.0), "$12.3M");
        assert_eq!(compact_money(250_000_000.0), "$250M");
    }

    #[test]
    fn charts_are_png_of_the_stated_size() {
        let series = vec![
            Series { name: "high".into(), values: vec![1.0e6, 2.0e5], color: grade_color("high", 0) },
            Series { name: "low".into(), values: vec![3.0e6, 0.0], color: grade_color("low", 1) },
        ];
        for layout in [Layout::Stacked, Layout::Grouped, Layout::Line] {
            let png = draw("ARR", &["1".into(), "2".into()], &series, layout, "$").unwrap();
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            let decoder = png::Decoder::new(std::io::Cursor::new(&png));
            let info = decoder.read_info().unwrap();
            assert_eq!((info.info().width, info.info().height), (WIDTH * SCALE, HEIGHT * SCALE));
        }
    }

    #[test]
    fn calibration_charts_are_png() {
        let bar = RateBar { grade: "red".into(), rate: 0.4, low: 0.2, high: 0.6, color: grade_color("red", 0) };
        for png in [
            rates("Churn by grade", &[bar], Some(0.12)).unwrap(),
            roc_curves("ROC", &[("health".into(), vec![(0.0, 0.0), (0.3, 0.7), (1.0, 1.0)])]).unwrap(),
        ] {
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        }
    }

    #[test]
    fn grades_get_colours_from_their_names() {
        assert_eq!(grade_color("red", 5), grade_color("high", 0));
        assert_eq!(grade_color("green", 5), grade_color("low", 0));
        assert_eq!(grade_color("stage x", 0), PALETTE[0]);
    }
}
