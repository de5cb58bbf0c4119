//! Heat grids (matrices such as WᵀW, the phase diagram) and arrows in a plane, as marks.
use super::{diverging, line_path, num, ArrowData, Mark, Path, CHAR_W};

/// One cell of a heat grid: its colour and its tooltip.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub fill: String,
    pub title: String,
}

/// A grid of coloured cells, row-major, with row and column labels (blank ones are left out), cells to outline,
/// and, for a diverging scale, the largest |value| for the colour key.
#[derive(Clone, Debug, PartialEq)]
pub struct Heat {
    pub rows: usize,
    pub cols: usize,
    pub cells: Vec<Cell>,
    pub row_labels: Vec<String>,
    pub col_labels: Vec<String>,
    pub outlined: Vec<(usize, usize)>,
    pub key: Option<f32>,
    /// The numbers behind the colours, row-major (empty for a grid whose cells are categories), and every row's
    /// and column's label, none left out: the grid's table and CSV (`export::heat_table`).
    pub values: Vec<f64>,
    pub names: (Vec<String>, Vec<String>),
}

/// Steps of the diverging colour key, from +max at the top through 0 to −max at the bottom.
const KEY_STEPS: usize = 9;

impl Heat {
    /// A matrix (`values` row-major, `rows x cols`) on one diverging scale centred on 0; labels thinned to every
    /// other one past 12.
    pub fn diverging(
        values: &[f32],
        (rows, cols): (usize, usize),
        row_label: &dyn Fn(usize) -> String,
        col_label: &dyn Fn(usize) -> String,
    ) -> Heat {
        let max_abs = values.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        let cells = (0..rows * cols)
            .map(|i| {
                let (r, c, v) = (i / cols, i % cols, values[i]);
                Cell {
                    fill: diverging(v, max_abs).to_string(),
                    title: format!("{} · {}: {v:.3}", row_label(r), col_label(c)),
                }
            })
            .collect();
        let thin = |n: usize, label: &dyn Fn(usize) -> String| -> Vec<String> {
            let every = if n > 12 { 2 } else { 1 };
            (0..n).map(|i| if i % every == 0 { label(i) } else { String::new() }).collect()
        };
        let (row_labels, col_labels) = (thin(rows, row_label), thin(cols, col_label));
        let names = ((0..rows).map(row_label).collect(), (0..cols).map(col_label).collect());
        // Through each f32's shortest decimal, so the table reads 0.1 and not 0.10000000149011612.
        let values = values.iter().map(|v| v.to_string().parse().unwrap_or(f64::NAN)).collect();
        Heat { rows, cols, cells, row_labels, col_labels, outlined: Vec::new(), key: Some(max_abs), values, names }
    }

    /// The side of a cell in pixels: large for a few cells, smaller as the grid grows.
    pub fn cell_size(&self) -> f64 {
        match self.rows.max(self.cols) {
            0..=6 => 36.0,
            7..=12 => 28.0,
            _ => 18.0,
        }
    }

    /// The grid at `cell` pixels a side, and its size. Without an x title the column labels head the columns, as
    /// in a matrix; with one they sit under the grid, above the title, as on a plot's axis. A diverging key
    /// stands on the right.
    pub fn marks(self, cell: f64, x_title: &str, y_title: &str) -> ((f64, f64), Vec<Mark>) {
        let widest = |ls: &[String]| ls.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
        let below = !x_title.is_empty();
        let has_cols = self.col_labels.iter().any(|l| !l.is_empty());
        let left = 8.0 + CHAR_W * widest(&self.row_labels) + if y_title.is_empty() { 0.0 } else { 22.0 };
        let top = if has_cols && !below { 22.0 } else { 8.0 };
        let (grid_w, grid_h) = (cell * self.cols as f64, cell * self.rows as f64);
        // The key is at least 90 px tall, so its three labels never touch.
        let key_h = if self.key.is_some() { grid_h.max(90.0) } else { 0.0 };
        let key_w = if self.key.is_some() { 30.0 + CHAR_W * 5.0 } else { 0.0 };
        let size = (left + grid_w + 6.0 + key_w, top + grid_h.max(key_h) + if below { 46.0 } else { 6.0 });

        let cols = self.cols.max(1);
        let at = |r: usize, c: usize| (left + cell * c as f64, top + cell * r as f64);
        let mut marks: Vec<Mark> = (self.cells.into_iter().enumerate())
            .map(|(i, c)| {
                let (x, y) = at(i / cols, i % cols);
                Mark::Rect { class: "cell".into(), rect: (x, y, cell, cell), fill: Some(c.fill), title: Some(c.title) }
            })
            .collect();
        marks.extend(self.outlined.iter().map(|&(r, c)| {
            let (x, y) = at(r, c);
            Mark::Rect {
                class: "outline".into(),
                rect: (x + 1.0, y + 1.0, cell - 2.0, cell - 2.0),
                fill: None,
                title: None,
            }
        }));
        marks.extend(
            (self.row_labels.into_iter().enumerate())
                .filter(|(_, l)| !l.is_empty())
                .map(|(r, l)| Mark::text("tick", (left - 5.0, top + cell * (r as f64 + 0.5)), "end", "0.35em", l)),
        );
        let col_y = if below { top + grid_h + 18.0 } else { top - 7.0 };
        marks.extend(
            (self.col_labels.into_iter().enumerate())
                .filter(|(_, l)| !l.is_empty())
                .map(|(c, l)| Mark::text("tick", (left + cell * (c as f64 + 0.5), col_y), "middle", "0", l)),
        );
        if below {
            marks.push(Mark::text("axis-title", (left + grid_w / 2.0, size.1 - 7.0), "middle", "0", x_title.into()));
        }
        if !y_title.is_empty() {
            marks.push(Mark::y_title((16.0, top + grid_h / 2.0), y_title.into()));
        }
        if let Some(m) = self.key {
            let (kx, step) = (left + grid_w + 16.0, key_h / KEY_STEPS as f64);
            for j in 0..KEY_STEPS {
                let t = 1.0 - 2.0 * j as f32 / (KEY_STEPS - 1) as f32;
                // The key is the scale itself, so it cannot drift from the cells' colours.
                let fill = diverging(t, 1.0).to_string();
                let rect = (kx, top + step * j as f64, 12.0, step);
                marks.push(Mark::Rect { class: "key".into(), rect, fill: Some(fill), title: None });
            }
            let tx = kx + 18.0;
            marks.push(Mark::text("tick", (tx, top + step / 2.0), "start", "0.35em", format!("+{m:.2}")));
            marks.push(Mark::text("tick", (tx, top + key_h / 2.0), "start", "0.35em", "0".into()));
            marks.push(Mark::text("tick", (tx, top + key_h - step / 2.0), "start", "0.35em", format!("−{m:.2}")));
        }
        (size, marks)
    }
}

/// An arrow from the origin to (x, y) in data units, its colour, whether it is drawn bold, its label (beyond
/// the tip, "" for none) and its tooltip.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrow {
    pub x: f64,
    pub y: f64,
    pub colour: String,
    pub bold: bool,
    pub label: String,
    pub title: String,
}

impl Arrow {
    pub fn length(&self) -> f64 {
        self.x.hypot(self.y)
    }

    /// Counter-clockwise from the positive x axis, in degrees in [0, 360).
    pub fn angle(&self) -> f64 {
        (self.y.atan2(self.x).to_degrees() + 360.0) % 360.0
    }

    pub fn stroke_width(&self) -> f64 {
        if self.bold {
            3.0
        } else {
            1.5
        }
    }

    /// Drawn from `c` (the origin, in pixels, y down) at `scale` pixels a unit: the shaft's end, the head as a
    /// path (3.5 stroke widths + 4 px long, never longer than the arrow), and where the label goes (15 px past the
    /// tip). The shaft stops inside the head, so its square end never pokes out of the point.
    pub fn geometry(&self, c: (f64, f64), scale: f64) -> ((f64, f64), String, (f64, f64)) {
        let (dx, dy) = (self.x * scale, -self.y * scale);
        let len = dx.hypot(dy).max(1e-9);
        let u = (dx / len, dy / len);
        let tip = (c.0 + dx, c.1 + dy);
        let head = (3.5 * self.stroke_width() + 4.0).min(len);
        let half = 0.45 * head;
        let neck = (tip.0 - u.0 * head, tip.1 - u.1 * head);
        let (l, r) = ((neck.0 - u.1 * half, neck.1 + u.0 * half), (neck.0 + u.1 * half, neck.1 - u.0 * half));
        let d = format!("M{},{}L{},{}L{},{}Z", num(tip.0), num(tip.1), num(l.0), num(l.1), num(r.0), num(r.1));
        let shaft = (tip.0 - u.0 * head * 0.6, tip.1 - u.1 * head * 0.6);
        (shaft, d, (tip.0 + 15.0 * u.0, tip.1 + 15.0 * u.1))
    }
}

/// A circle as a path: two half-circle arcs.
pub fn circle_path((cx, cy): (f64, f64), r: f64) -> String {
    let (a, b, r) = (num(cx - r), num(cx + r), num(r));
    let cy = num(cy);
    format!("M{a},{cy}A{r},{r} 0 1 0 {b},{cy}A{r},{r} 0 1 0 {a},{cy}")
}

/// Arrows on a square of `size` pixels, the longest reaching `extent` data units from the centre, over the unit
/// circle (dashed) and the axes. Each shaft carries `item` as its test id and its index, length and angle as
/// data attributes; heads and labels come last, on top.
pub fn arrows(arrows: Vec<Arrow>, size: f64, extent: f64, item: &'static str) -> Vec<Mark> {
    let c = size / 2.0;
    let scale = arrow_scale(size, extent);
    let mut marks = vec![
        Mark::path("unit", circle_path((c, c), scale)),
        Mark::line("grid", (10.0, c), (size - 10.0, c)),
        Mark::line("grid", (c, 10.0), (c, size - 10.0)),
    ];
    let mut heads = Vec::new();
    let mut labels = Vec::new();
    for (index, a) in arrows.into_iter().enumerate() {
        let (end, head, label_at) = a.geometry((c, c), scale);
        let data =
            ArrowData { testid: item, index, norm: format!("{:.4}", a.length()), angle: format!("{:.2}", a.angle()) };
        marks.push(Mark::Path(Path {
            class: if a.bold { "shaft bold" } else { "shaft" }.into(),
            d: line_path(&[(c, c), end]),
            fill: None,
            stroke: Some(a.colour.clone()),
            title: Some(a.title),
            data: Some(data),
        }));
        heads.push(Mark::Path(Path { class: "head".into(), d: head, fill: Some(a.colour), ..Path::default() }));
        if !a.label.is_empty() {
            labels.push(Mark::text("arrow-label", label_at, "middle", "0.35em", a.label));
        }
    }
    marks.extend(heads);
    marks.extend(labels);
    marks
}

/// Pixels per data unit on a square of `size` whose longest arrow is `extent` long, leaving 30 px for labels.
pub fn arrow_scale(size: f64, extent: f64) -> f64 {
    (size / 2.0 - 30.0) / extent.max(1e-6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::core::charts::{NEGATIVE, POSITIVE};

    fn fills(marks: &[Mark], class: &str) -> Vec<String> {
        marks
            .iter()
            .filter_map(|m| match m {
                Mark::Rect { class: c, fill, .. } if c == class => Some(fill.clone().unwrap_or_default()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn diverging_heat_is_white_at_zero_and_full_at_the_largest_value() {
        let h = Heat::diverging(&[1.0, -2.0, 0.0, 0.5], (2, 2), &|r| format!("r{r}"), &|c| format!("c{c}"));
        assert_eq!(h.key, Some(2.0));
        let fills: Vec<&str> = h.cells.iter().map(|c| c.fill.as_str()).collect();
        assert_eq!(fills[1], NEGATIVE.to_string());
        assert_eq!(fills[2], "#ffffff");
        assert_eq!(fills[0], diverging(0.5, 1.0).to_string());
        assert_eq!(h.cells[1].title, "r0 · c1: -2.000");
        assert_eq!(h.row_labels, ["r0", "r1"]);
        // Past 12 rows every other label is left out.
        let h = Heat::diverging(&[0.0; 13], (13, 1), &|r| r.to_string(), &|_| "b".into());
        assert_eq!(h.row_labels.iter().filter(|l| !l.is_empty()).count(), 7);
        assert_eq!(h.col_labels, ["b"]);
        assert_eq!(h.cell_size(), 18.0);
    }

    #[test]
    fn a_heat_grid_places_its_cells_labels_and_key() {
        let mut h =
            Heat::diverging(&[1.0, -1.0, 0.0, 0.5, 0.25, -0.5], (2, 3), &|r| format!("L{r}"), &|c| format!("f{c}"));
        h.outlined = vec![(1, 2)];
        let ((w, h_px), marks) = h.marks(30.0, "", "");
        // Labels two characters wide on the left (8 + 15), column labels above (22).
        let cells: Vec<(f64, f64, f64, f64)> = marks
            .iter()
            .filter_map(|m| match m {
                Mark::Rect { class, rect, .. } if class == "cell" => Some(*rect),
                _ => None,
            })
            .collect();
        assert_eq!(cells.len(), 6);
        assert_eq!(cells[0], (23.0, 22.0, 30.0, 30.0));
        assert_eq!(cells[5], (83.0, 52.0, 30.0, 30.0));
        assert!(marks.contains(&Mark::Rect {
            class: "outline".into(),
            rect: (84.0, 53.0, 28.0, 28.0),
            fill: None,
            title: None
        }));
        assert!(marks.contains(&Mark::text("tick", (18.0, 37.0), "end", "0.35em", "L0".into())));
        assert!(marks.contains(&Mark::text("tick", (38.0, 15.0), "middle", "0", "f0".into())));
        // The key: nine steps from the positive end through white to the negative end, 90 px tall at least.
        let key = fills(&marks, "key");
        assert_eq!((key.len(), key[0].as_str(), key[4].as_str()), (9, POSITIVE.to_string().as_str(), "#ffffff"));
        assert_eq!(key[8], NEGATIVE.to_string());
        assert_eq!((w, h_px), (23.0 + 90.0 + 6.0 + 30.0 + 37.5, 22.0 + 90.0 + 6.0));
    }

    #[test]
    fn a_titled_x_axis_puts_the_column_labels_below() {
        let h = Heat {
            rows: 1,
            cols: 2,
            cells: vec![Cell { fill: "#000000".into(), title: String::new() }; 2],
            row_labels: vec!["1.0".into()],
            col_labels: vec!["a".into(), String::new()],
            outlined: vec![],
            key: None,
            values: vec![],
            names: (vec![], vec![]),
        };
        let ((w, h_px), marks) = h.marks(20.0, "importance", "density");
        // 8 + three characters + the turned title = 52.5 on the left; the grid starts 8 from the top.
        assert_eq!((w, h_px), (52.5 + 40.0 + 6.0, 8.0 + 20.0 + 46.0));
        assert!(marks.contains(&Mark::text("tick", (62.5, 46.0), "middle", "0", "a".into())));
        assert!(marks.contains(&Mark::text("axis-title", (72.5, 67.0), "middle", "0", "importance".into())));
        assert_eq!(marks.iter().filter(|m| matches!(m, Mark::Text { turn: true, .. })).count(), 1);
    }

    #[test]
    fn arrows_know_their_length_angle_and_head() {
        let a = |x: f64, y: f64| Arrow {
            x,
            y,
            colour: "#123456".into(),
            bold: true,
            label: "1".into(),
            title: String::new(),
        };
        assert_eq!(a(3.0, 4.0).length(), 5.0);
        assert_eq!(a(1.0, 0.0).angle(), 0.0);
        assert_eq!(a(0.0, 1.0).angle(), 90.0);
        assert_eq!(a(-1.0, 0.0).angle(), 180.0);
        assert_eq!(a(0.0, -1.0).angle(), 270.0);
        // Pointing right from (100, 100) at 50 px a unit: a head 14.5 long, 6.5 each side of the shaft.
        let (shaft, head, label) = a(1.0, 0.0).geometry((100.0, 100.0), 50.0);
        assert_eq!(head, "M150,100L135.5,106.5L135.5,93.5Z");
        assert_eq!(shaft, (150.0 - 14.5 * 0.6, 100.0));
        assert_eq!(label, (165.0, 100.0));
        // Up the page is y down in pixels.
        let (_, head, label) = a(0.0, 1.0).geometry((100.0, 100.0), 50.0);
        assert!(head.starts_with("M100,50L"), "{head}");
        assert_eq!(label, (100.0, 35.0));
    }

    #[test]
    fn the_arrows_chart_draws_shafts_heads_labels_and_the_unit_circle() {
        assert_eq!(circle_path((50.0, 50.0), 20.0), "M30,50A20,20 0 1 0 70,50A20,20 0 1 0 30,50");
        let a =
            Arrow { x: 1.0, y: 0.0, colour: "#123456".into(), bold: false, label: String::new(), title: "f".into() };
        let up = Arrow { x: 0.0, y: -0.5, label: "2".into(), bold: true, ..a.clone() };
        let marks = arrows(vec![a, up], 340.0, 1.0, "feature-arrow");
        assert_eq!(arrow_scale(340.0, 1.0), 140.0);
        assert_eq!(marks[0], Mark::path("unit", circle_path((170.0, 170.0), 140.0)));
        // Behind: the circle and two axes; then two shafts, two heads and the one label.
        assert_eq!(marks.len(), 3 + 2 + 2 + 1);
        let Mark::Path(shaft) = &marks[4] else { panic!("{:?}", marks[4]) };
        assert_eq!(shaft.class, "shaft bold");
        assert_eq!(shaft.stroke.as_deref(), Some("#123456"));
        let data = shaft.data.as_ref().unwrap();
        assert_eq!(
            (data.testid, data.index, data.norm.as_str(), data.angle.as_str()),
            ("feature-arrow", 1, "0.5000", "270.00")
        );
        assert!(shaft.d.starts_with("M170,170L170,"), "{}", shaft.d);
        assert!(matches!(&marks[5], Mark::Path(p) if p.class == "head" && p.fill.as_deref() == Some("#123456")));
        assert!(matches!(&marks[7], Mark::Text { text, .. } if text == "2"));
    }
}
