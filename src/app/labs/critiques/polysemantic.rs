//! The 9.5 card on a polysemantic channel of the MNIST CNN: a channel whose feature visualization (the shipped
//! atlas, `featvis.bin`) is clean, beside its top dataset examples (`samples.bin`), which span classes. Plain
//! data from plain functions, tested natively in `tests/critiques_poly.rs`.
use crate::lens::cnn::model::Cnn;
use crate::lens::methods::atlas::FeatureAtlas;
use crate::lens::methods::units::ClassMix;
use crate::lens::{LensError, Result};

/// The layer the card reads: conv3, the last, whose channels feed the classifier directly (the closest to
/// whole digits, so a channel mixing digits there is the most telling).
pub const LAYER: usize = 3;

/// Top examples per channel for the class mix: the vision lab's 20.
pub const TOP: usize = 20;

/// A visualization "reads as one digit" when the CNN itself gives it one class with at least this probability.
pub const READ_PROB: f32 = 0.9;

/// A visualization is "smooth" when its total variation per pixel is among the lowest quarter of its layer's.
pub const SMOOTH_SHARE: f32 = 0.25;

/// Total variation per pixel: the summed brightness change between horizontal and vertical neighbours, over the
/// number of pixels. High for noise and busy textures, low for a few smooth strokes.
pub fn total_variation(pixels: &[f32], side: usize) -> f32 {
    let mut tv = 0.0;
    for y in 0..side {
        for x in 0..side {
            let v = pixels[y * side + x];
            if x + 1 < side {
                tv += (v - pixels[y * side + x + 1]).abs();
            }
            if y + 1 < side {
                tv += (v - pixels[(y + 1) * side + x]).abs();
            }
        }
    }
    tv / (side * side).max(1) as f32
}

/// One channel of the layer: how its feature visualization looks (smoothness, what the CNN reads it as) and
/// the classes of its top dataset examples.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelReading {
    pub channel: usize,
    pub tv: f32,
    /// The class the CNN gives the visualization, and its probability.
    pub read_as: usize,
    pub prob: f32,
    /// Smooth (lowest quarter of the layer's total variation) and read as one digit (`READ_PROB`).
    pub clean: bool,
    pub mix: ClassMix,
}

/// One channel of `LAYER` read: its visualization from `atlas` (what the CNN reads it as, its total variation)
/// and its class mix (`polysemanticity` over the layer's channel means, `TOP` examples). `clean` is left false:
/// it depends on the whole layer (`mark_clean`).
pub fn read_channel(model: &Cnn, atlas: &FeatureAtlas, mix: &ClassMix) -> Result<ChannelReading> {
    let e = atlas
        .get(LAYER, mix.channel)
        .ok_or_else(|| LensError::Data(format!("featvis.bin has no picture of conv{LAYER} channel {}", mix.channel)))?;
    let p = model.predict(&e.pixels)?;
    let (read_as, prob) = p.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
    let tv = total_variation(&e.pixels, atlas.side);
    Ok(ChannelReading { channel: mix.channel, tv, read_as, prob, clean: false, mix: mix.clone() })
}

/// Marks the clean channels of a layer: total variation at most the k-th smallest (k = a quarter of the
/// channels, `SMOOTH_SHARE`) and read as one digit (`READ_PROB`).
pub fn mark_clean(readings: &mut [ChannelReading]) {
    let mut tvs: Vec<f32> = readings.iter().map(|r| r.tv).collect();
    if tvs.is_empty() {
        return;
    }
    tvs.sort_by(f32::total_cmp);
    let k = ((tvs.len() as f32 * SMOOTH_SHARE).round() as usize).clamp(1, tvs.len());
    let cut = tvs[k - 1];
    for r in readings {
        r.clean = r.tv <= cut && r.prob >= READ_PROB;
    }
}

/// Every channel of the layer read and marked.
pub fn channel_readings(model: &Cnn, atlas: &FeatureAtlas, mixes: &[ClassMix]) -> Result<Vec<ChannelReading>> {
    let mut out = mixes.iter().map(|m| read_channel(model, atlas, m)).collect::<Result<Vec<_>>>()?;
    mark_clean(&mut out);
    Ok(out)
}

/// The card's channel: among the clean ones, the most class-mixed: the lowest share of its top class among its
/// top examples; ties: more classes present, then the lower channel. `None` when no channel is clean.
pub fn pick(readings: &[ChannelReading]) -> Option<&ChannelReading> {
    readings.iter().filter(|r| r.clean).min_by(|a, b| {
        a.mix
            .top_share
            .total_cmp(&b.mix.top_share)
            .then(b.mix.classes_present.cmp(&a.mix.classes_present))
            .then(a.channel.cmp(&b.channel))
    })
}

/// What the card shows: the channel's reading, its visualization, and its top examples as (sample, mean
/// activation, true class), best first.
#[derive(Clone, Debug, PartialEq)]
pub struct PolyFinding {
    pub reading: ChannelReading,
    pub pixels: Vec<f32>,
    pub side: usize,
    pub top: Vec<(usize, f32, u8)>,
    /// Clean channels of the layer, and its channels.
    pub clean: usize,
    pub channels: usize,
}

impl PolyFinding {
    /// Top examples of the class the visualization reads as.
    pub fn of_read_class(&self) -> usize {
        self.reading.mix.counts.get(self.reading.read_as).copied().unwrap_or(0)
    }

    /// The classes among the top examples, most frequent first (ties: the lower class), as (class, count).
    pub fn classes(&self) -> Vec<(usize, usize)> {
        let mut c: Vec<(usize, usize)> =
            self.reading.mix.counts.iter().enumerate().filter(|(_, &n)| n > 0).map(|(k, &n)| (k, n)).collect();
        c.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        c
    }
}
