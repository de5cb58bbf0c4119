//! What the network made of the image under study (class probabilities and every conv layer's feature maps),
//! the rule that keeps the last good analysis on screen, and the focus map's hover: the cell under the pointer,
//! its value and its receptive field.
use crate::lens::cnn::{Cnn, VisionConfig, VisionHook};

/// The network's reading of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub image: Vec<f32>,
    pub probs: Vec<f32>,
    /// Per conv layer (`layers[l - 1]` for conv `l`).
    pub layers: Vec<LayerMaps>,
}

/// One conv layer's feature maps after ReLU.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerMaps {
    pub side: usize,
    /// `maps[channel]`, `side * side` values.
    pub maps: Vec<Vec<f32>>,
    /// The largest value in the layer, so all its channels share one colour scale.
    pub max: f32,
}

/// One forward pass with every activation recorded (a few milliseconds: the lab runs it on every drawing frame).
pub fn analyse(model: &Cnn, image: Vec<f32>) -> Result<Analysis, String> {
    let x = model.image(&image).map_err(|e| e.to_string())?;
    let (logits, cache) = model.run_with_cache(&x).map_err(|e| e.to_string())?;
    let probs: Vec<f32> =
        candle_nn::ops::softmax_last_dim(&logits).and_then(|p| p.get(0)?.to_vec1()).map_err(|e| e.to_string())?;
    let mut layers = Vec::new();
    for l in 1..=model.cfg.n_conv() {
        let maps: Vec<Vec<f32>> = (0..model.cfg.channels[l - 1])
            .map(|c| cache.channel(VisionHook::Conv(l), 0, c))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let max = maps.iter().flatten().fold(0.0f32, |m, &v| m.max(v));
        layers.push(LayerMaps { side: model.cfg.conv_side(l), maps, max });
    }
    Ok(Analysis { image, probs, layers })
}

impl Analysis {
    /// The predicted class.
    pub fn predicted(&self) -> usize {
        super::argmax(&self.probs)
    }

    /// One channel's map and its layer's colour scale.
    pub fn map(&self, (l, c): (usize, usize)) -> Option<(&[f32], usize, f32)> {
        let layer = self.layers.get(l.checked_sub(1)?)?;
        Some((layer.maps.get(c)?, layer.side, layer.max))
    }
}

/// What the lab shows of its analyses: the last one that worked, the latest error, and a count of the
/// analyses that worked (`rev`), which the saliency job and the tests use to tell a new image.
#[derive(Clone, Debug, PartialEq)]
pub struct Latest<T> {
    pub rev: u32,
    pub good: Option<T>,
    pub error: Option<String>,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Latest { rev: 0, good: None, error: None }
    }
}

impl<T: Clone> Latest<T> {
    /// After `prev`: no image clears the result; a success replaces it; a failure keeps it, with the message.
    pub fn next(prev: Option<&Self>, outcome: Option<Result<T, String>>) -> Self {
        let rev = prev.map_or(0, |p| p.rev);
        match outcome {
            None => Latest { rev, good: None, error: None },
            Some(Ok(t)) => Latest { rev: rev + 1, good: Some(t), error: None },
            Some(Err(e)) => Latest { rev, good: prev.and_then(|p| p.good.clone()), error: Some(e) },
        }
    }
}

/// The cell of a `side` x `side` map of conv `l` under the pointer, at fractions `(fx, fy)` of the map's box.
pub fn hover_cell(l: usize, side: usize, fx: f64, fy: f64) -> Option<(usize, usize, usize)> {
    let inside = (0.0..1.0).contains(&fx) && (0.0..1.0).contains(&fy);
    inside.then_some((l, (fy * side as f64) as usize, (fx * side as f64) as usize))
}

/// The hovered cell's value, if it is on the focused channel's map.
pub fn cell_text(a: &Analysis, focus: (usize, usize), (l, y, x): (usize, usize, usize)) -> Option<String> {
    let (fl, c) = focus;
    if fl != l {
        return None;
    }
    let (map, side, _) = a.map(focus)?;
    let v = map.get(y * side + x)?;
    Some(format!("conv{l} channel {c} at row {y}, column {x}: {v:.3}"))
}

/// The receptive field of a cell as `(y0, x0, y1, x1)` and as a CSS box in percent of the input.
pub fn receptive_box(cfg: &VisionConfig, (l, y, x): (usize, usize, usize)) -> ((usize, usize, usize, usize), String) {
    let (y0, x0, y1, x1) = cfg.receptive_field(l, y, x);
    let s = cfg.image_size as f64;
    let pct = |v: usize| 100.0 * v as f64 / s;
    let style = format!(
        "left: {:.3}%; top: {:.3}%; width: {:.3}%; height: {:.3}%",
        pct(x0),
        pct(y0),
        pct(x1 + 1 - x0),
        pct(y1 + 1 - y0)
    );
    ((y0, x0, y1, x1), style)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lens::rng::Rng;

    fn model() -> Cnn {
        Cnn::init(VisionConfig::mnist(), &mut Rng::new(2)).unwrap().0
    }

    #[test]
    fn an_analysis_has_every_layer_and_a_distribution() {
        let m = model();
        let image: Vec<f32> = (0..784).map(|i| (i % 7) as f32 / 7.0).collect();
        let a = analyse(&m, image.clone()).unwrap();
        assert_eq!(a.image, image);
        assert!((a.probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let shape: Vec<(usize, usize)> = a.layers.iter().map(|l| (l.maps.len(), l.side)).collect();
        assert_eq!(shape, [(8, 28), (16, 14), (32, 7)]);
        for l in &a.layers {
            assert_eq!(l.max, l.maps.iter().flatten().fold(0.0f32, |m, &v| m.max(v)));
        }
        assert_eq!(a.predicted(), crate::app::labs::vision::argmax(&m.predict(&image).unwrap()));
        assert_eq!(a.map((2, 3)).map(|(v, s, _)| (v.len(), s)), Some((196, 14)));
        assert_eq!(a.map((4, 0)), None);
        assert_eq!(a.map((0, 0)), None);
        assert!(analyse(&m, vec![0.0; 10]).unwrap_err().contains("784"));
    }

    #[test]
    fn the_last_good_result_stays_until_the_image_goes() {
        let first = Latest::next(None, Some(Ok("a")));
        assert_eq!(first, Latest { rev: 1, good: Some("a"), error: None });
        let failed = Latest::next(Some(&first), Some(Err("bad".into())));
        assert_eq!(failed, Latest { rev: 1, good: Some("a"), error: Some("bad".into()) });
        let second = Latest::next(Some(&failed), Some(Ok("b")));
        assert_eq!(second, Latest { rev: 2, good: Some("b"), error: None });
        let cleared = Latest::next(Some(&second), None);
        assert_eq!(cleared, Latest { rev: 2, good: None, error: None }, "the count goes on");
        assert_eq!(Latest::next(Some(&cleared), Some(Ok("c"))).rev, 3);
    }

    #[test]
    fn hover_names_the_cell_and_its_receptive_field() {
        let m = model();
        let a = analyse(&m, vec![0.5; 784]).unwrap();
        assert_eq!(hover_cell(2, 14, 0.5, 0.25), Some((2, 3, 7)));
        assert_eq!(hover_cell(2, 14, 1.0, 0.25), None);
        let cell = hover_cell(2, 14, 0.5, 0.5).unwrap();
        let text = cell_text(&a, (2, 3), cell).unwrap();
        assert!(text.starts_with("conv2 channel 3 at row 7, column 7: "), "{text}");
        assert_eq!(cell_text(&a, (1, 3), cell), None, "a cell of another layer's map");
        // conv2 cells see 8x8 input pixels (3x3 conv, pool, 3x3 conv).
        let ((y0, x0, y1, x1), style) = receptive_box(&m.cfg, cell);
        assert_eq!((y1 - y0 + 1, x1 - x0 + 1), (8, 8));
        assert!(style.contains(&format!("width: {:.3}%", 800.0 / 28.0)), "{style}");
    }
}
