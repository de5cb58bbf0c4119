//! Charts, drawn one way: Leptos `view!` SVG components. The geometry is plain Rust that builds natively and is
//! unit-tested there: axes with nice ticks and the plot area (this file), colour maps, and each chart as a list
//! of `Mark`s (`plot` for bars and lines, `grid` for heat grids and arrows). `view` (wasm32) renders marks with
//! one `view!` per kind of mark, so every chart shares the code that builds and updates them, and the
//! framework builds the markup: no string escaping and no `inner_html`. Colours that carry data are
//! `fill`/`stroke` attributes; everything else (ink, grid, type, series colours) is a CSS class.
use std::fmt;

use super::format::fmt_int;

// Public, though only the components use their functions: natively, where the components are not built, they
// are still the API the unit tests check, not dead code.
pub mod grid;
pub mod plot;
#[cfg(target_arch = "wasm32")]
mod view;

pub use grid::{Arrow, Cell, Heat};
pub use plot::{Bar, Rule};
#[cfg(target_arch = "wasm32")]
pub use view::{Arrows, BarChart, HeatGrid, Legend, LineChart};

/// Average width of a tick label's character at the charts' 13 px, to leave room for the labels.
pub const CHAR_W: f64 = 7.5;

// ---------------------------------------------------------------- numbers

/// A coordinate for an SVG attribute: one decimal, no trailing ".0" ("12", "3.5").
pub fn num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// A step of 1, 2 or 5 times a power of ten that cuts `span` into about `target` parts.
pub fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span.abs().max(1e-12) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 + 1e-9 {
        1.0
    } else if f <= 2.0 + 1e-9 {
        2.0
    } else if f <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// The multiples of `step` within [lo, hi], ends included up to rounding: a millionth of a step, so an end that
/// came from an `f32` (0.8f32 is 0.800000012) still gets its tick.
fn multiples(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let (a, b) = ((lo / step - 1e-6).ceil() as i64, (hi / step + 1e-6).floor() as i64);
    // Rounded to the step's decimals, so 3 × 0.1 is 0.3 and not 0.30000000000000004.
    let scale = 10f64.powi(decimals(step) as i32);
    (a..=b).map(|k| (k as f64 * step * scale).round() / scale).collect()
}

/// Decimals a label needs to tell ticks `step` apart.
fn decimals(step: f64) -> usize {
    (-(step.log10() + 1e-9).floor()).max(0.0) as usize
}

/// A tick's label: whole numbers with thousands separators ("8,000"), otherwise the step's decimals ("0.25").
pub fn tick_label(v: f64, step: f64) -> String {
    match decimals(step) {
        0 if v < 0.0 => format!("−{}", fmt_int((-v).round() as usize)),
        0 => fmt_int(v.round() as usize),
        d => format!("{:.*}", d, v + 0.0).replace('-', "−"),
    }
}

/// A power of ten as a label: plain between 0.001 and 1,000, else "10⁻⁵".
pub fn decade_label(k: i32) -> String {
    match k {
        0..=3 => fmt_int(10usize.pow(k as u32)),
        -3..=-1 => format!("{:.*}", (-k) as usize, 10f64.powi(k)),
        _ => {
            const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
            let digits: String = k.unsigned_abs().to_string().bytes().map(|b| SUP[(b - b'0') as usize]).collect();
            format!("10{}{digits}", if k < 0 { "⁻" } else { "" })
        }
    }
}

// ---------------------------------------------------------------- axes

#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    /// Where, in the axis' own units.
    pub at: f64,
    pub label: String,
}

/// One axis: its domain, labelled ticks inside it, and its title ("" for none). Bar charts count x in bands:
/// group i spans [i, i + 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<Tick>,
    pub title: String,
}

impl Axis {
    /// [lo, hi] with about `target` nice ticks inside it.
    pub fn linear(lo: f64, hi: f64, target: usize) -> Axis {
        let step = nice_step(hi - lo, target);
        let ticks = multiples(lo, hi, step).into_iter().map(|v| Tick { at: v, label: tick_label(v, step) }).collect();
        Axis { lo, hi, ticks, title: String::new() }
    }

    /// From 0 up to the first nice tick at or above `max`, so the top of the data has a labelled line.
    pub fn from_zero(max: f64, target: usize) -> Axis {
        let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
        let step = nice_step(max, target);
        Axis::linear(0.0, (max / step - 1e-9).ceil() * step, target)
    }

    /// Shares in [lo, hi] labelled as percentages ("80%").
    pub fn percent(lo: f64, hi: f64) -> Axis {
        let mut a = Axis::linear(lo, hi, 5);
        for t in &mut a.ticks {
            t.label = format!("{:.0}%", 100.0 * t.at);
        }
        a
    }

    /// Groups along x, one band each, labelled at their centres (a blank label is left out).
    pub fn bands(labels: Vec<String>) -> Axis {
        let hi = labels.len() as f64;
        let ticks = labels
            .into_iter()
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .map(|(i, label)| Tick { at: i as f64 + 0.5, label })
            .collect();
        Axis { lo: 0.0, hi, ticks, title: String::new() }
    }

    /// log10 of the values, from 10^lo to 10^hi, a tick at every power of ten.
    pub fn decades(lo: i32, hi: i32) -> Axis {
        let ticks = (lo..=hi).map(|k| Tick { at: k as f64, label: decade_label(k) }).collect();
        Axis { lo: lo as f64, hi: hi as f64, ticks, title: String::new() }
    }

    /// Counts up to `peak` on the scale of `log_count`. Ticks at 0 and the powers of ten, and at the peak when
    /// it is not crowded by one; 1 is left out when it would crowd 0 (within 15% of the axis, from a peak of 100).
    pub fn log_counts(peak: u32) -> Axis {
        let peak = peak.max(1);
        let at = |c: u32| log_count(c, peak);
        let mut counts = vec![0];
        let powers = std::iter::successors(Some(1u32), |c| c.checked_mul(10)).take_while(|&c| c <= peak);
        counts.extend(powers.filter(|&c| c > 1 || at(1) >= 0.15));
        if peak >= 2 * counts.last().copied().unwrap_or(1) {
            counts.push(peak);
        }
        let ticks = counts.into_iter().map(|c| Tick { at: at(c), label: fmt_int(c as usize) }).collect();
        Axis { lo: 0.0, hi: 1.0, ticks, title: String::new() }
    }

    /// The same axis drawn over [lo, hi] in other units (a histogram's activation axis over its bins).
    pub fn onto(mut self, lo: f64, hi: f64) -> Axis {
        let s = Linear::new((self.lo, self.hi), (lo, hi));
        for t in &mut self.ticks {
            t.at = s.at(t.at);
        }
        Axis { lo, hi, ..self }
    }

    pub fn titled(self, title: &str) -> Axis {
        Axis { title: title.into(), ..self }
    }

    /// The widest tick label, in characters.
    fn widest(&self) -> usize {
        self.ticks.iter().map(|t| t.label.chars().count()).max().unwrap_or(0)
    }
}

/// A count on a log scale that keeps 0, for counts that span orders of magnitude (a histogram's few strong
/// activations would vanish next to its many weak ones on a linear scale): log(1 + c) / log(1 + peak), so 0
/// is at 0 and the peak at 1.
pub fn log_count(c: u32, peak: u32) -> f64 {
    (1.0 + c as f64).ln() / (1.0 + peak.max(1) as f64).ln()
}

// ---------------------------------------------------------------- the plot area

/// A linear map from a domain to a range (pixels); a domain of zero width maps to the range's middle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Linear {
    d: (f64, f64),
    r: (f64, f64),
}

impl Linear {
    pub fn new(d: (f64, f64), r: (f64, f64)) -> Linear {
        Linear { d, r }
    }

    pub fn at(&self, v: f64) -> f64 {
        let span = self.d.1 - self.d.0;
        if span.abs() < 1e-12 {
            return (self.r.0 + self.r.1) / 2.0;
        }
        self.r.0 + (v - self.d.0) / span * (self.r.1 - self.r.0)
    }
}

/// An SVG of `width` x `height` with room around the plot for tick labels and axis titles.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plot {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

impl Plot {
    /// Margins fitted to the axes: the widest y label and the y title on the left, x labels and title below.
    pub fn new((width, height): (f64, f64), x: &Axis, y: &Axis) -> Plot {
        let titled = |a: &Axis| if a.title.is_empty() { 0.0 } else { 22.0 };
        let left = 10.0 + CHAR_W * y.widest() as f64 + titled(y);
        let bottom = 6.0 + if x.ticks.is_empty() { 0.0 } else { 20.0 } + titled(x);
        // Half the last x label may stick out past the plot's right edge.
        let last = x.ticks.last().map(|t| t.label.chars().count()).unwrap_or(0);
        let right = (CHAR_W * last as f64 / 2.0).max(12.0);
        Plot { width, height, left, right, top: 10.0, bottom }
    }

    pub fn x(&self, axis: &Axis) -> Linear {
        Linear::new((axis.lo, axis.hi), (self.left, self.width - self.right))
    }

    pub fn y(&self, axis: &Axis) -> Linear {
        Linear::new((axis.lo, axis.hi), (self.height - self.bottom, self.top))
    }

    pub fn view_box(&self) -> String {
        format!("0 0 {} {}", num(self.width), num(self.height))
    }
}

/// An SVG path through `points`, already in pixels.
pub fn line_path(points: &[(f64, f64)]) -> String {
    let mut d = String::new();
    for (i, &(x, y)) in points.iter().enumerate() {
        d += if i == 0 { "M" } else { "L" };
        d += &format!("{},{}", num(x), num(y));
    }
    d
}

// ---------------------------------------------------------------- colours

/// A colour, printed as `#rrggbb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

impl Rgb {
    pub fn into_array(self) -> [u8; 3] {
        [self.0, self.1, self.2]
    }
}

pub const WHITE: Rgb = Rgb(255, 255, 255);
pub const BLACK: Rgb = Rgb(0, 0, 0);
/// The ends of the diverging scale: negative blue, positive orange (ColorBrewer's RdBu blue and PuOr orange
/// halves): blue against orange stays apart under every common colour-vision deficiency, where blue against red
/// is weak for some readers.
pub const NEGATIVE: Rgb = Rgb(33, 102, 172);
pub const POSITIVE: Rgb = Rgb(179, 88, 6);
/// The diverging scale's stops from 0 out to each end, so lightness falls evenly on both sides.
const NEGATIVE_STOPS: [Rgb; 4] = [WHITE, Rgb(146, 197, 222), Rgb(67, 147, 195), NEGATIVE];
const POSITIVE_STOPS: [Rgb; 4] = [WHITE, Rgb(253, 184, 99), Rgb(224, 130, 20), POSITIVE];
/// Viridis (matplotlib's perceptually uniform, colour-blind-safe map) at nine even stops, used for every
/// magnitude: its lightness rises monotonically from dark violet (least) to yellow (most).
const VIRIDIS: [Rgb; 9] = [
    Rgb(68, 1, 84),
    Rgb(72, 40, 120),
    Rgb(62, 73, 137),
    Rgb(49, 104, 142),
    Rgb(38, 130, 142),
    Rgb(31, 158, 137),
    Rgb(53, 183, 121),
    Rgb(110, 206, 88),
    Rgb(253, 231, 37),
];
/// The ends of the sequential scale.
pub const LEAST: Rgb = VIRIDIS[0];
pub const MOST: Rgb = VIRIDIS[8];

/// `a` at t = 0 to `b` at t = 1 (t clamped).
pub fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let m = |x: u8, y: u8| (x as f32 + (y as f32 - x as f32) * t).round() as u8;
    Rgb(m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// `t` in [0, 1] along evenly spaced `stops`, linearly between neighbours.
fn along(stops: &[Rgb], t: f32) -> Rgb {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let x = t * (stops.len() - 1) as f32;
    let i = (x.floor() as usize).min(stops.len() - 2);
    mix(stops[i], stops[i + 1], x - i as f32)
}

/// Diverging colour for `v` on a scale of ±`max_abs`: white at 0, blue below, orange above.
pub fn diverging(v: f32, max_abs: f32) -> Rgb {
    let a = if max_abs > 0.0 { v / max_abs } else { 0.0 };
    along(if a < 0.0 { &NEGATIVE_STOPS } else { &POSITIVE_STOPS }, a.abs())
}

/// Sequential colour (viridis) for a magnitude t in [0, 1].
pub fn sequential(t: f32) -> Rgb {
    along(&VIRIDIS, t)
}

/// The highlighter for marking characters in running text by a magnitude t in [0, 1]: one hue from near-white
/// to a strong orange, so the value is carried by lightness alone (readable whatever the reader's colour vision),
/// and weak marks stay faint, where viridis would start every mark at its darkest. Solid colours, so the ink
/// `ink_on` picks for them holds in either theme.
pub fn highlight(t: f32) -> Rgb {
    mix(Rgb(253, 236, 214), Rgb(224, 112, 20), t)
}

/// WCAG relative luminance of a colour (0 black to 1 white).
pub fn luminance(c: Rgb) -> f32 {
    let f = |x: u8| {
        let x = x as f32 / 255.0;
        if x <= 0.039_28 {
            x / 12.92
        } else {
            ((x + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * f(c.0) + 0.7152 * f(c.1) + 0.0722 * f(c.2)
}

/// WCAG contrast ratio between two colours (1 to 21).
pub fn contrast(a: Rgb, b: Rgb) -> f32 {
    let (x, y) = (luminance(a), luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

/// The ink (black or white) that reads best on `bg`: text on a data colour always reaches 4.5:1.
pub fn ink_on(bg: Rgb) -> Rgb {
    if contrast(bg, BLACK) >= contrast(bg, WHITE) {
        BLACK
    } else {
        WHITE
    }
}

/// Background for a probability or other magnitude in [0, 1] on the app's magnitude map (viridis), with the ink
/// that reads on it (4.5:1), as a `style` attribute: the logit lens grids' and heat tables' cells.
pub fn heat_style(p: f32) -> String {
    let bg = sequential(p.clamp(0.0, 1.0));
    format!("background: {bg}; color: {}", ink_on(bg))
}

// ---------------------------------------------------------------- marks

/// What a chart is drawn with: plain data, so a chart's drawing is tested natively. Three kinds only, each
/// rendered by one `view!` in `view`: lines, curves, circles and arrowheads are all paths.
#[derive(Clone, Debug, PartialEq)]
pub enum Mark {
    /// A label at `at`: `anchor` is `start`, `middle` or `end`; `dy` moves it off its baseline ("0.35em"
    /// centres it on y); `turn` rotates it a quarter turn about `at`, for a y axis title that reads upwards.
    Text {
        class: &'static str,
        at: (f64, f64),
        anchor: &'static str,
        dy: &'static str,
        turn: bool,
        text: String,
    },
    /// A rectangle (x, y, width, height), coloured by its class or by `fill` when the colour carries data.
    Rect {
        class: String,
        rect: (f64, f64, f64, f64),
        fill: Option<String>,
        title: Option<String>,
    },
    Path(Path),
}

/// A path, coloured by its class or by `fill` and `stroke` when the colour carries data, with an optional
/// tooltip and, for an arrow's shaft, the data attributes the end-to-end tests read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Path {
    pub class: String,
    pub d: String,
    pub fill: Option<String>,
    pub stroke: Option<String>,
    pub title: Option<String>,
    pub data: Option<ArrowData>,
}

/// An arrow's `data-testid`, index (`data-feature`), length (`data-norm`) and angle in degrees (`data-angle`).
#[derive(Clone, Debug, PartialEq)]
pub struct ArrowData {
    pub testid: &'static str,
    pub index: usize,
    pub norm: String,
    pub angle: String,
}

impl Mark {
    /// A label that is not turned.
    pub fn text(class: &'static str, at: (f64, f64), anchor: &'static str, dy: &'static str, text: String) -> Mark {
        Mark::Text { class, at, anchor, dy, turn: false, text }
    }

    /// A y axis's title, centred at `at` and turned to read upwards.
    pub fn y_title(at: (f64, f64), text: String) -> Mark {
        Mark::Text { class: "axis-title", at, anchor: "middle", dy: "0", turn: true, text }
    }

    /// A path coloured by its class.
    pub fn path(class: impl Into<String>, d: String) -> Mark {
        Mark::Path(Path { class: class.into(), d, ..Path::default() })
    }

    /// A straight line.
    pub fn line(class: impl Into<String>, from: (f64, f64), to: (f64, f64)) -> Mark {
        Mark::path(class, line_path(&[from, to]))
    }
}

/// The marks as SVG markup, in order: what the chart's `<svg>` holds (set as its inner HTML, one call to the
/// page). Built as elements one by one, a lab update's charts cost thousands of calls from wasm into the page
/// (each attribute a string to decode), about a third of the attention lab's 13 ms update (profiled); the
/// browser's parser takes the markup in one go. Every value is escaped by `html_escape`.
pub fn svg_markup(marks: &[Mark]) -> String {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
    use std::fmt::Write;
    let mut out = String::with_capacity(marks.len() * 96);
    let title = |out: &mut String, t: &Option<String>| {
        if let Some(t) = t {
            let _ = write!(out, "<title>{}</title>", text(t));
        }
    };
    for m in marks {
        match m {
            Mark::Text { class, at, anchor, dy, turn, text: t } => {
                let _ = write!(
                    out,
                    r#"<text class="{}" x="{}" y="{}" dy="{}" text-anchor="{}""#,
                    attr(class),
                    num(at.0),
                    num(at.1),
                    attr(dy),
                    attr(anchor)
                );
                if *turn {
                    let _ = write!(out, r#" transform="rotate(-90 {} {})""#, num(at.0), num(at.1));
                }
                let _ = write!(out, ">{}</text>", text(t));
            }
            Mark::Rect { class, rect: (x, y, w, h), fill, title: tip } => {
                let _ = write!(
                    out,
                    r#"<rect class="{}" x="{}" y="{}" width="{}" height="{}""#,
                    attr(class),
                    num(*x),
                    num(*y),
                    num(*w),
                    num(*h)
                );
                if let Some(f) = fill {
                    let _ = write!(out, r#" fill="{}""#, attr(f));
                }
                out.push('>');
                title(&mut out, tip);
                out.push_str("</rect>");
            }
            Mark::Path(Path { class, d, fill, stroke, title: tip, data }) => {
                let _ = write!(out, r#"<path class="{}" d="{}""#, attr(class), attr(d));
                for (name, v) in [("fill", fill), ("stroke", stroke)] {
                    if let Some(v) = v {
                        let _ = write!(out, r#" {name}="{}""#, attr(v));
                    }
                }
                if let Some(a) = data {
                    let _ = write!(
                        out,
                        r#" data-testid="{}" data-feature="{}" data-norm="{}" data-angle="{}""#,
                        attr(a.testid),
                        a.index,
                        attr(&a.norm),
                        attr(&a.angle)
                    );
                }
                out.push('>');
                title(&mut out, tip);
                out.push_str("</path>");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_style_clamps_and_picks_readable_ink() {
        assert_eq!(heat_style(2.0), "background: #fde725; color: #000000");
        assert_eq!(heat_style(0.0), "background: #440154; color: #ffffff");
        assert_eq!(heat_style(0.25), format!("background: {}; color: #ffffff", sequential(0.25)));
    }

    #[test]
    fn marks_become_svg_markup_with_every_value_escaped() {
        let marks = vec![
            Mark::text("tick", (10.0, 20.25), "middle", "0.35em", "a < b & \"c\"".into()),
            Mark::y_title((4.0, 50.0), "loss".into()),
            Mark::Rect { class: "bar".into(), rect: (1.0, 2.0, 3.5, 4.0), fill: None, title: None },
            Mark::Rect {
                class: "cell".into(),
                rect: (0.0, 0.0, 8.0, 8.0),
                fill: Some("rgb(1,2,3)".into()),
                title: Some("L0H1: <0.5>".into()),
            },
            Mark::Path(Path {
                class: "arrow".into(),
                d: "M0 0L1 1".into(),
                fill: None,
                stroke: Some("#123".into()),
                title: None,
                data: Some(ArrowData { testid: "feature", index: 3, norm: "0.9".into(), angle: "45".into() }),
            }),
        ];
        let svg = svg_markup(&marks);
        assert_eq!(
            svg,
            concat!(
                r#"<text class="tick" x="10" y="20.3" dy="0.35em" text-anchor="middle">a &lt; b &amp; "c"</text>"#,
                r#"<text class="axis-title" x="4" y="50" dy="0" text-anchor="middle" transform="rotate(-90 4 50)">loss</text>"#,
                r#"<rect class="bar" x="1" y="2" width="3.5" height="4"></rect>"#,
                r#"<rect class="cell" x="0" y="0" width="8" height="8" fill="rgb(1,2,3)"><title>L0H1: &lt;0.5&gt;</title></rect>"#,
                r##"<path class="arrow" d="M0 0L1 1" stroke="#123" data-testid="feature" data-feature="3" data-norm="0.9" data-angle="45"></path>"##,
            )
        );
        // A quote inside an attribute cannot end it.
        let tricky = svg_markup(&[Mark::Rect {
            class: "a\" onclick=\"x".into(),
            rect: (0.0, 0.0, 1.0, 1.0),
            fill: None,
            title: None,
        }]);
        assert!(tricky.starts_with(r#"<rect class="a&quot; onclick=&quot;x""#), "{tricky}");
        assert_eq!(svg_markup(&[]), "");
    }

    fn labels(a: &Axis) -> Vec<&str> {
        a.ticks.iter().map(|t| t.label.as_str()).collect()
    }

    fn ats(a: &Axis) -> Vec<f64> {
        a.ticks.iter().map(|t| t.at).collect()
    }

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(1.0, 5), 0.2);
        assert_eq!(nice_step(6.0, 6), 1.0);
        assert_eq!(nice_step(8000.0, 5), 2000.0);
        assert_eq!(nice_step(0.6, 6), 0.1);
        assert_eq!(nice_step(0.35, 5), 0.1);
        assert_eq!(nice_step(30.0, 5), 10.0);
    }

    #[test]
    fn linear_ticks_stay_inside_and_print_their_decimals() {
        let a = Axis::linear(0.0, 1.0, 5);
        assert_eq!(labels(&a), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(ats(&a), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        // An activation axis up to 0.63: at most about six parts, so steps of 0.2; ticks stop at 0.6, the
        // domain does not.
        let a = Axis::linear(0.0, 0.63, 6);
        assert_eq!(labels(&a), ["0.0", "0.2", "0.4", "0.6"]);
        assert_eq!(a.hi, 0.63);
        assert_eq!(labels(&Axis::linear(0.0, 8000.0, 5)), ["0", "2,000", "4,000", "6,000", "8,000"]);
        assert_eq!(labels(&Axis::linear(-1.0, 1.0, 4)), ["−1.0", "−0.5", "0.0", "0.5", "1.0"]);
    }

    #[test]
    fn from_zero_ends_on_a_tick_above_the_data() {
        let a = Axis::from_zero(5.9, 6);
        assert_eq!((a.lo, a.hi), (0.0, 6.0));
        assert_eq!(labels(&a), ["0", "1", "2", "3", "4", "5", "6"]);
        let a = Axis::from_zero(0.43, 5);
        assert_eq!(a.hi, 0.5);
        assert_eq!(labels(&a), ["0.0", "0.1", "0.2", "0.3", "0.4", "0.5"]);
        // Nothing to show still gives a usable axis.
        assert_eq!(Axis::from_zero(0.0, 5).hi, 1.0);
        assert_eq!(Axis::from_zero(f64::NAN, 5).hi, 1.0);
    }

    #[test]
    fn percent_bands_and_decades() {
        assert_eq!(labels(&Axis::percent(0.8, 1.0)), ["80%", "85%", "90%", "95%", "100%"]);
        assert_eq!(labels(&Axis::percent(0.5, 1.0)), ["50%", "60%", "70%", "80%", "90%", "100%"]);
        assert_eq!(labels(&Axis::percent(0.8f32 as f64, 1.0))[0], "80%");
        let a = Axis::bands(vec!["L0H0".into(), String::new(), "L1H0".into()]);
        assert_eq!((a.lo, a.hi), (0.0, 3.0));
        assert_eq!(ats(&a), [0.5, 2.5]);
        assert_eq!(labels(&a), ["L0H0", "L1H0"]);
        let a = Axis::decades(-3, 0);
        assert_eq!(labels(&a), ["0.001", "0.01", "0.1", "1"]);
        assert_eq!(ats(&a), [-3.0, -2.0, -1.0, 0.0]);
        assert_eq!(decade_label(-5), "10⁻⁵");
        assert_eq!(decade_label(4), "10⁴");
        assert_eq!(decade_label(3), "1,000");
    }

    #[test]
    fn log_counts_keep_zero_and_label_the_peak_when_there_is_room() {
        let a = Axis::log_counts(27);
        assert_eq!(labels(&a), ["0", "1", "10", "27"]);
        assert_eq!(ats(&a)[0], 0.0);
        assert_eq!(ats(&a)[3], 1.0);
        assert!((ats(&a)[2] - 11f64.ln() / 28f64.ln()).abs() < 1e-12);
        // 1,500 is too close to 1,000 to label both, and 1 too close to 0.
        assert_eq!(labels(&Axis::log_counts(1500)), ["0", "10", "100", "1,000"]);
        assert_eq!(labels(&Axis::log_counts(99)), ["0", "1", "10", "99"]);
        assert_eq!(labels(&Axis::log_counts(0)), ["0", "1"]);
    }

    #[test]
    fn an_axis_maps_onto_bins() {
        // Activations 0 to 0.5 over 10 bins: 0.1 is at the end of bin 2.
        let a = Axis::linear(0.0, 0.5, 5).onto(0.0, 10.0);
        assert_eq!((a.lo, a.hi), (0.0, 10.0));
        assert_eq!(ats(&a), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(labels(&a)[1], "0.1");
    }

    #[test]
    fn scales_map_the_domain_ends_to_the_range_ends() {
        let s = Linear::new((0.0, 10.0), (40.0, 540.0));
        assert_eq!((s.at(0.0), s.at(10.0), s.at(5.0)), (40.0, 540.0, 290.0));
        // y grows downwards: the domain's top is the range's start.
        let plot = Plot { width: 560.0, height: 240.0, left: 50.0, right: 12.0, top: 10.0, bottom: 30.0 };
        let y = Axis::from_zero(1.0, 5);
        assert_eq!((plot.y(&y).at(0.0), plot.y(&y).at(1.0)), (210.0, 10.0));
        assert_eq!(Linear::new((3.0, 3.0), (0.0, 100.0)).at(3.0), 50.0);
        assert_eq!(plot.view_box(), "0 0 560 240");
    }

    #[test]
    fn margins_fit_the_labels_and_titles() {
        let x = Axis::bands(vec!["a".into(); 4]);
        let y = Axis::from_zero(6.0, 6).titled("loss (nats)");
        let p = Plot::new((560.0, 240.0), &x, &y);
        // One-character y labels plus the rotated title; x labels but no x title.
        assert_eq!((p.left, p.bottom, p.right, p.top), (10.0 + 7.5 + 22.0, 26.0, 12.0, 10.0));
        let p = Plot::new((560.0, 240.0), &Axis::linear(0.0, 8000.0, 5).titled("step"), &Axis::percent(0.8, 1.0));
        assert_eq!((p.left, p.bottom, p.right), (10.0 + 7.5 * 4.0, 48.0, 7.5 * 5.0 / 2.0));
    }

    #[test]
    fn paths_and_coordinates_print_short() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(3.46), "3.5");
        assert_eq!(num(-0.04), "0");
        assert_eq!(line_path(&[(0.0, 10.0), (5.0, 2.54), (10.25, 0.0)]), "M0,10L5,2.5L10.3,0");
        assert_eq!(line_path(&[]), "");
    }

    #[test]
    fn colour_maps() {
        assert_eq!(diverging(0.0, 1.0), WHITE);
        assert_eq!(diverging(1.0, 1.0), POSITIVE);
        assert_eq!(diverging(-3.0, 1.0), NEGATIVE);
        assert_eq!(diverging(0.5, 0.0), WHITE);
        assert_eq!(sequential(0.0), LEAST);
        assert_eq!(sequential(1.0), MOST);
        assert_eq!(sequential(f32::NAN), LEAST);
        assert_eq!(sequential(0.5), Rgb(38, 130, 142), "the middle stop of viridis");
        assert_eq!(mix(Rgb(0, 0, 0), Rgb(255, 100, 10), 0.5), Rgb(128, 50, 5));
        assert_eq!(Rgb(37, 99, 235).to_string(), "#2563eb");
    }

    /// Lightness must carry the value: a map read in grey (or by a reader who cannot tell its hues apart) still
    /// orders its values. Sampled finely, viridis grows lighter all the way, and each side of the diverging map
    /// grows darker away from white.
    #[test]
    fn lightness_is_monotone_along_every_map() {
        let steps: Vec<f32> = (0..=100).map(|i| i as f32 / 100.0).collect();
        let seq: Vec<f32> = steps.iter().map(|&t| luminance(sequential(t))).collect();
        assert!(seq.windows(2).all(|w| w[1] >= w[0]), "viridis lightness: {seq:?}");
        let marks: Vec<f32> = steps.iter().map(|&t| luminance(highlight(t))).collect();
        assert!(marks.windows(2).all(|w| w[1] <= w[0]), "highlight lightness: {marks:?}");
        for sign in [1.0f32, -1.0] {
            let side: Vec<f32> = steps.iter().map(|&t| luminance(diverging(sign * t, 1.0))).collect();
            assert!(side.windows(2).all(|w| w[1] <= w[0]), "diverging side {sign}: {side:?}");
        }
        // The two diverging ends are about equally dark, so neither sign looks stronger.
        let (n, p) = (luminance(NEGATIVE), luminance(POSITIVE));
        assert!((n - p).abs() < 0.05, "ends' luminance {n} and {p}");
    }

    #[test]
    fn contrast_and_ink_follow_wcag() {
        assert!((contrast(BLACK, WHITE) - 21.0).abs() < 1e-3);
        assert!((contrast(WHITE, WHITE) - 1.0).abs() < 1e-6);
        // Text on any colour of either map reaches AA (4.5:1) with the ink chosen for it.
        for i in 0..=100 {
            let t = i as f32 / 100.0;
            for bg in [sequential(t), diverging(t, 1.0), diverging(-t, 1.0), highlight(t)] {
                assert!(contrast(bg, ink_on(bg)) >= 4.5, "{bg} with {}", ink_on(bg));
            }
        }
        assert_eq!(ink_on(LEAST), WHITE);
        assert_eq!(ink_on(MOST), BLACK);
    }
}
