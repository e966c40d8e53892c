//! The report's charts, drawn with plotters into SVG text that the page inlines. Every chart has a
//! title and axis units; colours are fixed per stack, so a stack looks the same on every chart.

use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::{RangedCoordf64, RangedCoordi32};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use crate::text::escape;

/// One line or bar group: a label (a stack) and its points.
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend's label.
    pub label: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
}

/// A stack's colour: the same one on every chart of every report.
pub fn colour(stack: &str) -> RGBColor {
    // A scale-out's counts (`http-redis@2`) in their stack's colour.
    let stack = stack.split('@').next().unwrap_or(stack);
    match stack {
        "nats" => RGBColor(31, 119, 180),
        "nats-redis" => RGBColor(23, 190, 207),
        "nats-cluster" => RGBColor(44, 160, 44),
        "nats-raw-echo" => RGBColor(127, 127, 127),
        "http-raw-echo" => RGBColor(188, 189, 34),
        "http-memory" => RGBColor(255, 127, 14),
        "http-redis" => RGBColor(214, 39, 40),
        "http-rabbitmq" => RGBColor(148, 103, 189),
        // Each validation-off control in a paler shade of the stack it copies.
        "nats-unvalidated" => RGBColor(174, 199, 232),
        "http-memory-unvalidated" => RGBColor(255, 187, 120),
        other => {
            let hash = other.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
            let c = Palette99::pick(hash as usize).to_rgba();
            RGBColor(c.0, c.1, c.2)
        }
    }
}

/// CSS colour text of a stack, for tables.
pub fn css(stack: &str) -> String {
    let RGBColor(r, g, b) = colour(stack);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A stack's name after a dot of its colour.
pub fn dot(stack: &str) -> String {
    format!("<span class=\"dot\" style=\"background:{}\"></span>{}", css(stack), escape(stack))
}

const SIZE: (u32, u32) = (760, 340);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Why a chart was not drawn.
#[derive(Debug, thiserror::Error)]
enum DrawError {
    /// Nothing to draw.
    #[error("no data")]
    NoData,
    /// plotters refused (drawing into a string, only a bad figure can cause it).
    #[error(transparent)]
    Plotters(#[from] plotters::drawing::DrawingAreaErrorKind<std::io::Error>),
}

fn draw(body: impl FnOnce(&Area<'_>) -> Result<(), DrawError>) -> String {
    let mut svg = String::new();
    let outcome = {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)
            .map_err(DrawError::from)
            .and_then(|()| body(&root))
            .and_then(|()| Ok(root.present()?))
    };
    match outcome {
        Ok(()) => svg,
        Err(error) => {
            format!(r#"<p class="missing">chart not drawn: {}</p>"#, crate::text::escape(&error.to_string()))
        }
    }
}

fn bounds(series: &[Series], pick: impl Fn(&(f64, f64)) -> f64) -> (f64, f64) {
    let values = series.iter().flat_map(|s| s.points.iter().map(&pick)).filter(|v| v.is_finite());
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// Lines, y on a log scale (latencies): `x_desc` and `y_desc` name the axes with their units.
pub fn lines_log(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    x_labels: Option<&dyn Fn(f64) -> String>,
) -> String {
    // Under a tenfold range a log axis would carry one or two labels: such charts get a linear one.
    let (y_lo, y_hi) = bounds(series, |p| p.1);
    if y_lo.is_finite() && y_lo > 0.0 && y_hi / y_lo < 10.0 && x_labels.is_none() {
        return lines(title, x_desc, y_desc, series, &[]);
    }
    draw(|root| {
        let (x_lo, x_hi) = bounds(series, |p| p.0);
        if !x_lo.is_finite() {
            return Err(DrawError::NoData);
        }
        // From a power of ten, where a log axis has its labels.
        let y_lo = 10f64.powf(y_lo.max(1e-3).log10().floor());
        let y_hi = 10f64.powf((y_hi * 1.05).log10().ceil()).max(y_lo * 10.0);
        let x_hi = if x_hi > x_lo { x_hi } else { x_lo + 1.0 };
        let mut chart = framed(root, title, 40).build_cartesian_2d(x_lo..x_hi, (y_lo..y_hi).log_scale())?;
        let x_format = |v: &f64| x_labels.map_or_else(|| format_number(*v), |labels| labels(*v));
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc(x_desc)
            .y_desc(y_desc)
            .y_labels(12)
            .y_label_formatter(&|v| format_number(*v))
            .x_label_formatter(&x_format)
            .draw()?;
        draw_lines(&mut chart, series, true)?;
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// Every chart's frame: its title, margins, and room for the axes' labels (`x_labels` high
/// under the x axis).
fn framed<'a, 'b>(root: &'a Area<'b>, title: &str, x_labels: u32) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .margin_right(36)
        .x_label_area_size(x_labels)
        .y_label_area_size(64);
    builder
}

type LinearChart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart on linear axes fitting `series` (x from 0 or below, y from 0 with room above), its mesh
/// drawn; with the top of its y axis.
fn linear_chart<'a, 'b>(
    root: &'a Area<'b>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
) -> Result<(LinearChart<'a, 'b>, f64), DrawError> {
    let (x_lo, x_hi) = bounds(series, |p| p.0);
    let (_, y_hi) = bounds(series, |p| p.1);
    if !x_lo.is_finite() {
        return Err(DrawError::NoData);
    }
    let x_hi = if x_hi > x_lo { x_hi } else { x_lo + 1.0 };
    let y_top = (y_hi * 1.15).max(1.0);
    let mut chart = framed(root, title, 40).build_cartesian_2d(x_lo.min(0.0)..x_hi, 0.0..y_top)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|v| format_number(*v))
        .y_label_formatter(&|v| format_number(*v))
        .draw()?;
    Ok((chart, y_top))
}

/// Lines on linear axes (throughput over offered rate, memory over time).
pub fn lines(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    marks: &[(String, (f64, f64))],
) -> String {
    draw(|root| {
        let (mut chart, _) = linear_chart(root, title, x_desc, y_desc, series)?;
        draw_lines(&mut chart, series, false)?;
        for (label, point) in marks {
            let c = colour(label.split(' ').next().unwrap_or_default());
            chart.draw_series(std::iter::once(
                EmptyElement::at(*point)
                    + Circle::new((0, 0), 7, c.stroke_width(2))
                    + Text::new(label.clone(), (8, -16), ("sans-serif", 12)),
            ))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// A time span shaded behind the lines (an outage), in its stack's colour.
#[derive(Debug, Clone)]
pub struct Span {
    /// The stack it belongs to (its colour).
    pub stack: String,
    /// From and to, in x units.
    pub from: f64,
    /// To.
    pub to: f64,
}

/// Lines over time with `spans` shaded behind them: throughput and errors around an outage.
pub fn lines_over_spans(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    spans: &[Span],
) -> String {
    draw(|root| {
        let (mut chart, y_top) = linear_chart(root, title, x_desc, y_desc, series)?;
        chart.draw_series(spans.iter().map(|span| {
            Rectangle::new([(span.from, 0.0), (span.to, y_top)], colour(&span.stack).mix(0.15).filled())
        }))?;
        draw_lines(&mut chart, series, false)?;
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// One bar per category, optionally with a min..max whisker; bars are coloured by `colour_of`.
pub struct Bar {
    /// Its label under the axis.
    pub label: String,
    /// Its colour's key (a stack's name).
    pub colour: String,
    /// Its height.
    pub value: f64,
    /// Its whisker: (min, max).
    pub range: Option<(f64, f64)>,
}

/// Vertical bars by category.
pub fn bars(title: &str, y_desc: &str, bars: &[Bar]) -> String {
    draw(|root| {
        if bars.is_empty() {
            return Err(DrawError::NoData);
        }
        let top = bars.iter().map(|b| b.range.map_or(b.value, |r| r.1).max(b.value)).fold(0.0, f64::max);
        let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
        let mut chart = category_chart(root, title, y_desc, &labels, top * 1.15)?;
        for (i, bar) in bars.iter().enumerate() {
            let i = i as i32;
            let c = colour(&bar.colour);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), bar.value)],
                c.mix(0.85).filled(),
            )))?;
            if let Some((lo, hi)) = bar.range {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(SegmentValue::CenterOf(i), lo), (SegmentValue::CenterOf(i), hi)],
                    BLACK.stroke_width(2),
                )))?;
            }
        }
        Ok(())
    })
}

/// Stacked bars by category: each category's parts, bottom first, with the parts' names.
pub fn stacked(
    title: &str,
    y_desc: &str,
    categories: &[String],
    parts: &[(String, RGBColor, Vec<f64>)],
) -> String {
    draw(|root| {
        if categories.is_empty() {
            return Err(DrawError::NoData);
        }
        let totals: Vec<f64> = (0..categories.len())
            .map(|i| parts.iter().map(|p| p.2.get(i).copied().unwrap_or(0.0)).sum())
            .collect();
        let top = totals.iter().copied().fold(0.0, f64::max);
        let mut chart = category_chart(root, title, y_desc, categories, top * 1.2)?;
        let mut base = vec![0.0; categories.len()];
        for (name, c, values) in parts {
            let c = *c;
            let rects: Vec<_> = (0..categories.len())
                .map(|i| {
                    let v = values.get(i).copied().unwrap_or(0.0);
                    let r = Rectangle::new(
                        [
                            (SegmentValue::Exact(i as i32), base[i]),
                            (SegmentValue::Exact(i as i32 + 1), base[i] + v),
                        ],
                        c.filled(),
                    );
                    base[i] += v;
                    r
                })
                .collect();
            chart
                .draw_series(rects)?
                .label(name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// Each series as a line in its stack's colour (with a dot per point when `dots`), in the legend.
fn draw_lines<CT: CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, CT>,
    series: &[Series],
    dots: bool,
) -> Result<(), DrawError> {
    for s in series {
        let c = colour(&s.label);
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        if dots {
            chart.draw_series(s.points.iter().map(|p| Circle::new(*p, 3, c.filled())))?;
        }
    }
    Ok(())
}

/// The legend of the series drawn, on a light background at `position`.
fn legend<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, CT>,
    position: SeriesLabelPosition,
) -> Result<(), DrawError> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

type CategoryChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<SegmentedCoord<RangedCoordi32>, RangedCoordf64>>;

/// A chart with one slot per label along x and values up to `top` along y, its mesh drawn.
fn category_chart<'a, 'b>(
    root: &'a Area<'b>,
    title: &str,
    y_desc: &str,
    labels: &[String],
    top: f64,
) -> Result<CategoryChart<'a, 'b>, DrawError> {
    let n = labels.len() as i32;
    let mut chart = framed(root, title, 60)
        .build_cartesian_2d((0..(n - 1).max(1)).into_segmented(), 0.0..top.max(1.0))?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .disable_x_mesh()
        .y_desc(y_desc)
        .x_labels(labels.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|v| format_number(*v))
        .draw()?;
    Ok(chart)
}

/// 1234 -> "1234", 0.5 -> "0.5", 25000 -> "25k".
pub fn format_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
