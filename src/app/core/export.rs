//! Share and export, the plain part: what a lab's numbers look like as a table, a CSV, a JSON document and a
//! file name, and the metadata every export carries (the site and its version, the section, the model, the
//! lab's settings, the link, the time). Tested natively; `export/` (wasm32) puts these on buttons: downloads,
//! the chart's SVG and PNG, the table shown instead of a chart, and the lab's Copy link.
//!
//! A CSV starts with the metadata as `# key: value` lines, then one header row, so
//! `pandas.read_csv(f, comment="#")` reads it into labelled columns.
use serde::Serialize;
use serde_json::{json, Value};

use super::charts::{Arrow, Axis, Bar, Heat};

mod pixels;
pub use pixels::*;

#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(target_arch = "wasm32")]
pub use browser::*;

/// The site's version as exports name it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit the site was built from (`build.rs`), so two exports of the same package version from different
/// builds can be told apart.
pub const COMMIT: &str = env!("GLASSBOX_COMMIT");

/// One value of a table: a number (written in full in CSV and JSON, rounded on screen) or text.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Datum {
    Num(f64),
    Text(String),
}

impl From<f64> for Datum {
    fn from(v: f64) -> Self {
        Datum::Num(v)
    }
}

impl From<f32> for Datum {
    fn from(v: f32) -> Self {
        // Through the shortest decimal of the f32, so 0.1f32 reads 0.1 and not 0.10000000149011612.
        Datum::Num(v.to_string().parse().unwrap_or(f64::NAN))
    }
}

impl From<usize> for Datum {
    fn from(v: usize) -> Self {
        Datum::Num(v as f64)
    }
}

impl From<String> for Datum {
    fn from(v: String) -> Self {
        Datum::Text(v)
    }
}

impl From<&str> for Datum {
    fn from(v: &str) -> Self {
        Datum::Text(v.to_string())
    }
}

impl Datum {
    /// As written in a CSV: a number in full (shortest form that reads back the same), "" for a missing one.
    pub fn csv(&self) -> String {
        match self {
            Datum::Num(v) if v.is_finite() => format!("{v}"),
            Datum::Num(_) => String::new(),
            Datum::Text(t) => t.clone(),
        }
    }

    /// As shown in a table on the page: at most four decimals, trailing zeros dropped ("0.8125", "12", "−0.5"),
    /// and a value too small for them in scientific notation ("2.0e−6").
    pub fn shown(&self) -> String {
        match self {
            // Too small for four decimals but not zero (a probability of 2e-6): in scientific notation.
            Datum::Num(v) if *v != 0.0 && v.abs() < 5e-5 => format!("{v:.1e}").replace('-', "−"),
            Datum::Num(v) if v.is_finite() => {
                let s = format!("{:.4}", v + 0.0);
                let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { &s };
                if s == "-0" {
                    "0".into()
                } else {
                    s.replace('-', "−")
                }
            }
            Datum::Num(_) => "–".into(),
            Datum::Text(t) => t.clone(),
        }
    }
}

/// A table with labelled columns: what a chart shows, as numbers. It is the chart's "Show as a table" view, its
/// CSV and its part of the lab's JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DataTable {
    pub caption: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Datum>>,
}

/// What every export says about where it came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Meta {
    /// The section (`9.2.3`, `attention`).
    pub section: String,
    /// The model folder(s) the lab ran ("moby"), "" where the lab has none (the toy models).
    pub model: String,
    /// The lab's settings: the query of its link (`layer=3&text=...`), "" for the defaults.
    pub settings: String,
    /// The whole link, which reopens the lab as it was.
    pub link: String,
    /// When the file was made (ISO 8601, UTC).
    pub exported: String,
}

impl Meta {
    /// The metadata as (key, value) pairs in a fixed order, the site and its version first.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let default = |s: &str, d: &str| if s.is_empty() { d.to_string() } else { s.to_string() };
        vec![
            ("source", format!("Glassbox {VERSION} (build {COMMIT})")),
            ("section", self.section.clone()),
            ("model", default(&self.model, "none")),
            ("settings", default(&self.settings, "defaults")),
            ("link", self.link.clone()),
            ("exported", self.exported.clone()),
        ]
    }

    /// One line for a caption under an exported chart.
    pub fn caption(&self) -> String {
        let p = self.pairs();
        let get = |k: &str| p.iter().find(|(key, _)| *key == k).map(|(_, v)| v.clone()).unwrap_or_default();
        format!(
            "{} · section {} · model {} · settings {} · {}",
            get("source"),
            get("section"),
            get("model"),
            shorten(&get("settings"), 80),
            get("exported")
        )
    }

    /// The metadata as a JSON object, with `what` the export is (the chart's or table's caption).
    pub fn json(&self, what: &str) -> Value {
        let mut m = serde_json::Map::new();
        for (k, v) in self.pairs() {
            m.insert(k.into(), Value::String(v));
        }
        m.insert("version".into(), Value::String(VERSION.into()));
        if !what.is_empty() {
            m.insert("what".into(), Value::String(what.into()));
        }
        Value::Object(m)
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// The table as CSV: the metadata as `# key: value` lines (a line break in a value becomes a space, so every
/// comment stays one line), then the header and the rows, quoted by the `csv` crate where needed.
pub fn to_csv(meta: &Meta, table: &DataTable) -> String {
    let mut out = String::new();
    let mut comment = |k: &str, v: &str| {
        let v: String = v.chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
        out.push_str(&format!("# {k}: {v}\n"));
    };
    for (k, v) in meta.pairs() {
        comment(k, &v);
    }
    if !table.caption.is_empty() {
        comment("table", &table.caption);
    }
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    // Writing to a Vec cannot fail, and every row is cut or padded to the header, so the writer's checks hold.
    let width = table.columns.len();
    let _ = w.write_record(&table.columns);
    for row in &table.rows {
        let mut cells: Vec<String> = row.iter().take(width).map(Datum::csv).collect();
        cells.resize(width, String::new());
        let _ = w.write_record(&cells);
    }
    let bytes = w.into_inner().unwrap_or_default();
    out.push_str(&String::from_utf8_lossy(&bytes));
    out
}

/// The lab's numbers as one JSON document: `meta` beside the tables (`charts`: each chart's data; `tables`: the
/// tables on the page) and, where the lab gives them, its own figures under `lab`.
pub fn lab_json(meta: &Meta, charts: &[DataTable], tables: &[DataTable], lab: Option<Value>) -> String {
    let mut doc = json!({ "meta": meta.json(""), "charts": charts, "tables": tables });
    if let Some(lab) = lab {
        doc["lab"] = lab;
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// A file name: `glassbox-{section}-{what}.{ext}`, `what` in lower case with anything but letters and digits
/// as single dashes, cut to 60 characters.
pub fn file_name(section: &str, what: &str, ext: &str) -> String {
    let slug = |s: &str| {
        let mut out = String::new();
        for c in s.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() || (c == '.' && !out.is_empty() && !out.ends_with('.')) {
                out.push(c);
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        let out: String = out.trim_end_matches(['-', '.']).chars().take(60).collect();
        out.trim_end_matches(['-', '.']).to_string()
    };
    let parts: Vec<String> = ["glassbox", section, what].iter().map(|p| slug(p)).filter(|p| !p.is_empty()).collect();
    format!("{}.{ext}", parts.join("-"))
}

/// A text cell read off the page as a datum: a number where it reads as one (typographic minus, thousands
/// separators and a trailing % allowed, a percentage as its share), else the text.
pub fn datum_from_text(text: &str) -> Datum {
    let t = text.trim();
    let plain: String = t.replace('−', "-").replace(',', "");
    let (plain, scale) = match plain.strip_suffix('%') {
        Some(p) => (p.trim().to_string(), 0.01),
        None => (plain, 1.0),
    };
    match plain.parse::<f64>() {
        Ok(v) if v.is_finite() && !plain.is_empty() => Datum::Num(v * scale),
        _ => Datum::Text(t.to_string()),
    }
}

/// Bars in groups as a table: a row per group (its x label, or its number where the axis has none) and a column
/// per bar in a group, named by `series` or else the y axis' title.
pub fn bars_table(caption: &str, x: &Axis, y: &Axis, groups: &[Vec<Bar>], series: &[&str]) -> DataTable {
    let width = groups.iter().map(Vec::len).max().unwrap_or(0);
    let y_name = if y.title.is_empty() { "value".to_string() } else { y.title.clone() };
    let mut columns = vec![if x.title.is_empty() { "group".to_string() } else { x.title.clone() }];
    columns.extend((0..width).map(|k| match series.get(k) {
        Some(s) => s.to_string(),
        None if width == 1 => y_name.clone(),
        None => format!("{y_name} ({})", k + 1),
    }));
    let label = |i: usize| {
        let at = i as f64 + 0.5;
        x.ticks.iter().find(|t| (t.at - at).abs() < 1e-9).map(|t| t.label.clone())
    };
    let rows = (groups.iter().enumerate())
        .map(|(i, g)| {
            let mut row = vec![label(i).map(Datum::Text).unwrap_or(Datum::Num((i + 1) as f64))];
            row.extend(g.iter().map(|b| Datum::Num(b.value)));
            row
        })
        .collect();
    DataTable { caption: caption.into(), columns, rows }
}

/// Lines as a table: one line is its (x, y) points; several are a long table with the series' number first.
pub fn lines_table(caption: &str, x: &Axis, y: &Axis, lines: &[(Vec<(f64, f64)>, &str)]) -> DataTable {
    let name = |a: &Axis, d: &str| if a.title.is_empty() { d.to_string() } else { a.title.clone() };
    let (xn, yn) = (name(x, "x"), name(y, "y"));
    let several = lines.len() > 1;
    let mut columns = if several { vec!["series".to_string()] } else { vec![] };
    columns.extend([xn, yn]);
    let rows = (lines.iter().enumerate())
        .flat_map(|(k, (pts, _))| {
            pts.iter().map(move |&(a, b)| {
                let mut row = if several { vec![Datum::Num((k + 1) as f64)] } else { vec![] };
                row.extend([Datum::Num(a), Datum::Num(b)]);
                row
            })
        })
        .collect();
    DataTable { caption: caption.into(), columns, rows }
}

/// Arrows as a table: each one's label (or number), its end point, length and angle.
pub fn arrows_table(caption: &str, arrows: &[Arrow]) -> DataTable {
    let columns = ["arrow", "x", "y", "length", "angle (degrees)"].map(String::from).to_vec();
    let rows = (arrows.iter().enumerate())
        .map(|(i, a)| {
            let name = if a.label.is_empty() { Datum::Num((i + 1) as f64) } else { Datum::Text(a.label.clone()) };
            vec![name, Datum::Num(a.x), Datum::Num(a.y), Datum::Num(a.length()), Datum::Num(a.angle())]
        })
        .collect();
    DataTable { caption: caption.into(), columns, rows }
}

/// A matrix (`values` row-major) as a table: the corner names the rows, then a column per matrix column.
pub fn matrix_table(
    caption: &str,
    corner: &str,
    values: &[Datum],
    (rows, cols): (usize, usize),
    row_label: &dyn Fn(usize) -> String,
    col_label: &dyn Fn(usize) -> String,
) -> DataTable {
    let mut columns = vec![corner.to_string()];
    columns.extend((0..cols).map(col_label));
    let rows = (0..rows)
        .map(|r| {
            let mut row = vec![Datum::Text(row_label(r))];
            row.extend((0..cols).map(|c| values.get(r * cols + c).cloned().unwrap_or(Datum::Num(f64::NAN))));
            row
        })
        .collect();
    DataTable { caption: caption.into(), columns, rows }
}

/// A heat grid as a matrix table: its numbers, or for a grid of categories each cell's tooltip, with every row's
/// and column's label (a blank one numbered). `corner` names the rows.
pub fn heat_table(caption: &str, corner: &str, heat: &Heat) -> DataTable {
    let values: Vec<Datum> = if heat.values.is_empty() {
        heat.cells.iter().map(|c| Datum::Text(c.title.clone())).collect()
    } else {
        heat.values.iter().map(|&v| Datum::Num(v)).collect()
    };
    let name = |full: &[String], thin: &[String], i: usize| {
        full.get(i).or(thin.get(i)).filter(|l| !l.is_empty()).cloned().unwrap_or_else(|| (i + 1).to_string())
    };
    let (rows, cols) = (&heat.names.0, &heat.names.1);
    let corner = if corner.is_empty() { "row" } else { corner };
    matrix_table(caption, corner, &values, (heat.rows, heat.cols), &|r| name(rows, &heat.row_labels, r), &|c| {
        name(cols, &heat.col_labels, c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            section: "9.2.3".into(),
            model: "moby".into(),
            settings: "layer=3&text=a+b".into(),
            link: "http://x/#/9.2.3?layer=3&text=a+b".into(),
            exported: "2026-12-02T17:00:00.000Z".into(),
        }
    }

    /// Reads a CSV back the way `pandas.read_csv(f, comment="#")` does: comment lines skipped, then records.
    fn read_back(text: &str) -> Vec<Vec<String>> {
        let body: String = text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
        let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(body.as_bytes());
        r.records().map(|rec| rec.unwrap().iter().map(String::from).collect()).collect()
    }

    #[test]
    fn csv_has_the_metadata_then_one_labelled_header_and_the_numbers_in_full() {
        let t = DataTable {
            caption: "accuracy\nper layer".into(),
            columns: vec!["layer".into(), "probe, test".into()],
            rows: vec![vec![Datum::Text("L0".into()), Datum::Num(0.8125)], vec!["L1 \"x\"".into(), 1.0f64.into()]],
        };
        let text = to_csv(&meta(), &t);
        let comments: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
        assert_eq!(comments[0], format!("# source: Glassbox {VERSION} (build {COMMIT})"));
        assert!(comments.contains(&"# model: moby"));
        assert!(comments.contains(&"# settings: layer=3&text=a+b"));
        // The caption's line break does not start a data line.
        assert!(comments.contains(&"# table: accuracy per layer"));
        let rows = read_back(&text);
        assert_eq!(rows[0], ["layer", "probe, test"]);
        assert_eq!(rows[1], ["L0", "0.8125"]);
        assert_eq!(rows[2], ["L1 \"x\"", "1"]);
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn short_rows_are_padded_and_missing_numbers_are_empty() {
        let t = DataTable {
            caption: String::new(),
            columns: vec!["a".into(), "b".into()],
            rows: vec![vec![f64::NAN.into()]],
        };
        assert_eq!(read_back(&to_csv(&Meta::default(), &t))[1], ["", ""]);
        assert!(to_csv(&Meta::default(), &t).contains("# model: none\n# settings: defaults\n"));
    }

    #[test]
    fn numbers_on_screen_are_rounded_and_f32_keeps_its_short_form() {
        assert_eq!(Datum::Num(0.812345).shown(), "0.8123");
        assert_eq!(Datum::Num(12.0).shown(), "12");
        assert_eq!(Datum::Num(-0.5).shown(), "−0.5");
        assert_eq!(Datum::Num(-0.00001).shown(), "−1.0e−5");
        assert_eq!(Datum::Num(0.00006).shown(), "0.0001");
        assert_eq!(Datum::Num(-0.0).shown(), "0");
        assert_eq!(Datum::from(0.1f32), Datum::Num(0.1));
        assert_eq!(Datum::from(0.1f32).csv(), "0.1");
    }

    #[test]
    fn json_puts_meta_beside_the_numbers() {
        let t = DataTable { caption: "c".into(), columns: vec!["x".into()], rows: vec![vec![Datum::Num(2.5)]] };
        let v: Value = serde_json::from_str(&lab_json(&meta(), &[t], &[], Some(json!({ "k": 1 })))).unwrap();
        assert_eq!(v["meta"]["model"], "moby");
        assert_eq!(v["meta"]["version"], VERSION);
        assert_eq!(v["charts"][0]["columns"][0], "x");
        assert_eq!(v["charts"][0]["rows"][0][0], 2.5);
        assert_eq!(v["lab"]["k"], 1);
        assert_eq!(v["tables"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn file_names_are_lower_case_with_single_dashes() {
        assert_eq!(
            file_name("9.2.3", "Held-out accuracy, by layer!", "csv"),
            "glassbox-9.2.3-held-out-accuracy-by-layer.csv"
        );
        assert_eq!(file_name("attention", "WᵀW", "svg"), "glassbox-attention-w-w.svg");
        assert_eq!(file_name("9.4", "", "json"), "glassbox-9.4.json");
    }

    #[test]
    fn text_on_the_page_reads_back_as_numbers_where_it_is_one() {
        assert_eq!(datum_from_text(" −1,234.5 "), Datum::Num(-1234.5));
        assert_eq!(datum_from_text("71%"), Datum::Num(0.71));
        assert_eq!(datum_from_text("L3"), Datum::Text("L3".into()));
        assert_eq!(datum_from_text(""), Datum::Text(String::new()));
    }

    #[test]
    fn bars_become_a_row_per_group_and_a_column_per_series() {
        let x = Axis::bands(vec!["L0".into(), String::new()]).titled("layer");
        let y = Axis::linear(0.0, 1.0, 5).titled("accuracy");
        let bar = |v| Bar { value: v, class: "blue", title: String::new() };
        let t = bars_table("acc", &x, &y, &[vec![bar(0.5), bar(0.25)], vec![bar(0.75)]], &["probe"]);
        assert_eq!(t.columns, ["layer", "probe", "accuracy (2)"]);
        assert_eq!(t.rows[0], [Datum::Text("L0".into()), Datum::Num(0.5), Datum::Num(0.25)]);
        // The second band has no label on the axis: its number stands in.
        assert_eq!(t.rows[1], [Datum::Num(2.0), Datum::Num(0.75)]);
    }

    #[test]
    fn lines_arrows_and_matrices_as_tables() {
        let (x, y) = (Axis::linear(0.0, 1.0, 5).titled("step"), Axis::linear(0.0, 1.0, 5));
        let one = lines_table("loss", &x, &y, &[(vec![(0.0, 1.0), (1.0, 0.5)], "blue")]);
        assert_eq!(one.columns, ["step", "y"]);
        assert_eq!(one.rows[1], [Datum::Num(1.0), Datum::Num(0.5)]);
        let two = lines_table("loss", &x, &y, &[(vec![(0.0, 1.0)], "blue"), (vec![(2.0, 3.0)], "orange")]);
        assert_eq!(two.columns, ["series", "step", "y"]);
        assert_eq!(two.rows[1], [Datum::Num(2.0), Datum::Num(2.0), Datum::Num(3.0)]);

        let a = Arrow { x: 0.0, y: 2.0, colour: String::new(), bold: false, label: "f1".into(), title: String::new() };
        let t = arrows_table("W", &[a]);
        assert_eq!(
            t.rows[0],
            [Datum::Text("f1".into()), Datum::Num(0.0), Datum::Num(2.0), Datum::Num(2.0), Datum::Num(90.0)]
        );

        let m = matrix_table(
            "m",
            "row",
            &[1.0f64.into(), 2.0f64.into(), 3.0f64.into()],
            (1, 3),
            &|r| format!("r{r}"),
            &|c| format!("c{c}"),
        );
        assert_eq!(m.columns, ["row", "c0", "c1", "c2"]);
        assert_eq!(m.rows, [vec![Datum::Text("r0".into()), Datum::Num(1.0), Datum::Num(2.0), Datum::Num(3.0)]]);
    }

    #[test]
    fn a_heat_grid_keeps_every_label_and_its_numbers() {
        // 13 rows: the grid shows every other label, the table all of them.
        let h = Heat::diverging(&[0.25; 13], (13, 1), &|r| format!("f{r}"), &|_| "b".into());
        assert_eq!(h.row_labels[1], "");
        let t = heat_table("b", "feature", &h);
        assert_eq!(t.columns, ["feature", "b"]);
        assert_eq!(t.rows[1], [Datum::Text("f1".into()), Datum::Num(0.25)]);
        assert_eq!(t.rows.len(), 13);
    }
}
