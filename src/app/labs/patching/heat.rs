//! The heatmap's plain side: which value goes in which row and column, and the colour scale with its legend.
//! The component in `heatmap.rs` only draws what these give.
use crate::app::core::charts::{diverging, ink_on, sequential, Rgb};
use crate::lens::methods::patching::{unravel, Metric, PatchGrid};

/// One cell: its index along each axis of the target, and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatCell {
    pub cell: Vec<usize>,
    pub value: f32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HeatRow {
    pub label: String,
    pub cells: Vec<HeatCell>,
}

/// A grid laid out for the page: rows of cells under column labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Heat {
    /// What the columns are: "position" or "head".
    pub col_axis: &'static str,
    /// What the rows are: "layer", or "layer · head" for the per-position head grid.
    pub row_axis: &'static str,
    pub cols: Vec<String>,
    pub rows: Vec<HeatRow>,
}

/// Lays a grid out: `[layer, pos]` as layers × positions (the tokens on the x axis), `[layer, head]` as layers ×
/// heads, and `[layer, pos, head]` as one row per layer and head × positions.
pub fn layout(grid: &PatchGrid, tokens: &[String]) -> Heat {
    let axes = grid.axes();
    let token_cols = || tokens.to_vec();
    let mut rows: Vec<HeatRow> = Vec::new();
    let row_of = |cell: &[usize]| -> (usize, String, usize) {
        match axes {
            ["layer", "pos", "head"] => {
                let n_head = grid.dims[2];
                (cell[0] * n_head + cell[2], format!("L{} H{}", cell[0], cell[2]), cell[1])
            }
            _ => (cell[0], format!("L{}", cell[0]), cell[1]),
        }
    };
    for (flat, &value) in grid.values.iter().enumerate() {
        let cell = unravel(flat, &grid.dims);
        let (r, label, c) = row_of(&cell);
        while rows.len() <= r {
            rows.push(HeatRow { label: String::new(), cells: Vec::new() });
        }
        rows[r].label = label;
        let row = &mut rows[r].cells;
        while row.len() <= c {
            row.push(HeatCell { cell: vec![], value: 0.0 });
        }
        row[c] = HeatCell { cell, value };
    }
    let (col_axis, row_axis, cols) = match axes {
        ["layer", "pos", "head"] => ("position", "layer · head", token_cols()),
        ["layer", "pos"] => ("position", "layer", token_cols()),
        _ => ("head", "layer", (0..grid.dims[1]).map(|h| format!("H{h}")).collect()),
    };
    Heat { col_axis, row_axis, cols, rows }
}

/// How values map to colours: the app's two colour-blind-safe maps (`app::core::charts`), so a cell here reads
/// as a cell in every other lab.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// Centred at 0: white at 0, blue below, orange above, full colour at ±`max`.
    Diverging { max: f32 },
    /// A magnitude from 0 to `max` on viridis (dark violet to yellow).
    Sequential { max: f32 },
}

impl Scale {
    /// The scale for a metric's grid. The normalised logit difference is read against 0 (the corrupted run) and
    /// 1 (the clean run), so its range is at least ±1; a probability runs 0 to 1; the KL to its largest value.
    pub fn for_grid(metric: Metric, values: &[f32]) -> Scale {
        let max_abs = values.iter().filter(|v| v.is_finite()).fold(0.0f32, |m, v| m.max(v.abs()));
        match metric {
            Metric::LogitDiff => Scale::Diverging { max: max_abs.max(1.0) },
            Metric::AnswerProb => Scale::Sequential { max: 1.0 },
            Metric::Kl => Scale::Sequential { max: max_abs.max(1e-3) },
        }
    }

    fn colour(self, v: f32) -> Rgb {
        let v = if v.is_finite() { v } else { 0.0 };
        match self {
            Scale::Diverging { max } => diverging(v, max),
            Scale::Sequential { max } => sequential((v / max).clamp(0.0, 1.0)),
        }
    }

    /// The colour of `v`, as r, g, b.
    pub fn rgb(self, v: f32) -> [u8; 3] {
        let Rgb(r, g, b) = self.colour(v);
        [r, g, b]
    }

    pub fn css(self, v: f32) -> String {
        let [r, g, b] = self.rgb(v);
        format!("rgb({r}, {g}, {b})")
    }

    /// The ink for text on `v`'s colour (black or white, whichever reaches 4.5:1).
    pub fn ink(self, v: f32) -> String {
        ink_on(self.colour(v)).to_string()
    }

    /// The legend's ends and middle: (value, its label).
    pub fn ticks(self) -> [(f32, String); 3] {
        match self {
            Scale::Diverging { max } => [(-max, format!("{:.2}", -max)), (0.0, "0".into()), (max, format!("{max:.2}"))],
            Scale::Sequential { max, .. } => {
                [(0.0, "0".into()), (max / 2.0, format!("{:.2}", max / 2.0)), (max, format!("{max:.2}"))]
            }
        }
    }

    /// A CSS gradient from the lowest value to the highest, for the legend's bar.
    pub fn gradient(self) -> String {
        let [lo, mid, hi] = self.ticks();
        format!("linear-gradient(to right, {}, {}, {})", self.css(lo.0), self.css(mid.0), self.css(hi.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lens::methods::patching::Target;

    fn toks(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("t{i}")).collect()
    }

    #[test]
    fn layer_by_position_and_layer_by_head() {
        let g = PatchGrid {
            target: Target::AttnOut,
            metric: Metric::LogitDiff,
            dims: vec![2, 3],
            values: (0..6).map(|v| v as f32).collect(),
        };
        let h = layout(&g, &toks(3));
        assert_eq!((h.col_axis, h.row_axis, h.cols.clone()), ("position", "layer", toks(3)));
        assert_eq!(h.rows.len(), 2);
        assert_eq!(h.rows[1].label, "L1");
        assert_eq!(h.rows[1].cells[2], HeatCell { cell: vec![1, 2], value: 5.0 });
        let g = PatchGrid { target: Target::HeadOut, dims: vec![3, 4], values: vec![0.0; 12], ..g };
        let h = layout(&g, &toks(9));
        assert_eq!((h.col_axis, h.cols.len(), h.cols[3].as_str(), h.rows.len()), ("head", 4, "H3", 3));
    }

    #[test]
    fn per_position_heads_get_a_row_each() {
        // [layer 2, pos 3, head 2]: value = flat index.
        let g = PatchGrid {
            target: Target::HeadOutByPos,
            metric: Metric::Kl,
            dims: vec![2, 3, 2],
            values: (0..12).map(|v| v as f32).collect(),
        };
        let h = layout(&g, &toks(3));
        assert_eq!(h.rows.len(), 4);
        assert_eq!(h.rows.iter().map(|r| r.label.as_str()).collect::<Vec<_>>(), ["L0 H0", "L0 H1", "L1 H0", "L1 H1"]);
        // Row L1 H1, position 2: cell [1, 2, 1] = 1*6 + 2*2 + 1 = 11.
        assert_eq!(h.rows[3].cells[2], HeatCell { cell: vec![1, 2, 1], value: 11.0 });
        assert!(h.rows.iter().all(|r| r.cells.len() == 3));
    }

    #[test]
    fn the_diverging_scale_is_centred_at_zero() {
        let s = Scale::for_grid(Metric::LogitDiff, &[0.2, -0.5, 0.9]);
        assert_eq!(s, Scale::Diverging { max: 1.0 });
        assert_eq!(s.rgb(0.0), [255, 255, 255]);
        assert_eq!(s.rgb(1.0), [179, 88, 6]);
        assert_eq!(s.rgb(-1.0), [33, 102, 172]);
        assert_eq!(s.rgb(-3.0), s.rgb(-1.0));
        assert_eq!(s.rgb(f32::NAN), [255, 255, 255]);
        assert_eq!(s.rgb(0.5), diverging(0.5, 1.0).into_array());
        assert_eq!((s.ink(1.0).as_str(), s.ink(0.1).as_str()), ("#ffffff", "#000000"));
        assert_eq!(Scale::for_grid(Metric::LogitDiff, &[2.5, -0.1]), Scale::Diverging { max: 2.5 });
        assert_eq!(s.ticks().map(|t| t.1), ["-1.00".to_string(), "0".into(), "1.00".into()]);
        assert!(s.gradient().starts_with("linear-gradient(to right, rgb(33, 102, 172), rgb(255, 255, 255)"));
    }

    #[test]
    fn probabilities_and_kl_run_along_viridis() {
        let p = Scale::for_grid(Metric::AnswerProb, &[0.1]);
        assert_eq!((p.rgb(0.0), p.rgb(1.0), p.rgb(-0.2)), ([68, 1, 84], [253, 231, 37], [68, 1, 84]));
        let k = Scale::for_grid(Metric::Kl, &[0.5, 2.0]);
        assert_eq!(k, Scale::Sequential { max: 2.0 });
        assert_eq!(k.rgb(2.0), [253, 231, 37]);
        assert_eq!(k.rgb(1.0), sequential(0.5).into_array());
        assert_eq!(k.ticks()[1].0, 1.0);
        assert_eq!(Scale::for_grid(Metric::Kl, &[0.0]), Scale::Sequential { max: 1e-3 });
    }
}
