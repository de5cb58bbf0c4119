//! A feature-visualization atlas: one precomputed visualization for every channel of every conv layer.
//!
//! The circuits view shows a channel's kernels *next to* what each source channel responds to. Running
//! gradient ascent for 56 channels in the browser would take tens of seconds, so the training command
//! computes the atlas once, from fixed seeds with the lab's default regularisers, and ships it as
//! `featvis.bin`. The lab still runs live feature visualization for the channel the student picks.
//!
//! Format (little-endian): magic `GBFA`, version u32 = 1, side u32, steps u32, n_layers u32, then for each
//! layer its channel count u32; then for each layer and channel: the reached activation (f32) and
//! `side * side` pixels as u8 (0 = black, 255 = white).
use super::attribution::Target;
use super::featvis::{FeatureVis, FeatureVisSettings};
use crate::lens::cnn::model::{Cnn, VisionHook};
use crate::lens::{LensError, Result};

const MAGIC: &[u8; 4] = b"GBFA";
const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq)]
pub struct AtlasEntry {
    /// The channel's mean activation on `pixels`.
    pub activation: f32,
    /// `side * side` values in [0, 1].
    pub pixels: Vec<f32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FeatureAtlas {
    pub side: usize,
    pub steps: usize,
    /// `layers[l - 1][channel]`: conv layers are numbered from 1, as everywhere in the vision engine.
    pub layers: Vec<Vec<AtlasEntry>>,
}

impl FeatureAtlas {
    /// Runs feature visualization with the default regularisers for `steps` steps on every channel of
    /// every conv layer. The seed of channel `c` in layer `l` is `100 * l + c`, so the atlas is reproducible.
    /// `progress(done, total)` is called after each channel.
    pub fn compute(model: &Cnn, steps: usize, mut progress: impl FnMut(usize, usize)) -> Result<Self> {
        let total: usize = model.cfg.channels.iter().sum();
        let mut done = 0;
        let mut layers = Vec::new();
        for (i, &n) in model.cfg.channels.iter().enumerate() {
            let l = i + 1;
            let mut entries = Vec::with_capacity(n);
            for c in 0..n {
                let settings = FeatureVisSettings { seed: (100 * l + c) as u64, ..FeatureVisSettings::default() };
                let mut fv =
                    FeatureVis::new(model, Target::Channel { hook: VisionHook::Conv(l), channel: c }, settings)?;
                let activation = fv.run(steps)?;
                entries.push(AtlasEntry { activation, pixels: fv.image() });
                done += 1;
                progress(done, total);
            }
            layers.push(entries);
        }
        Ok(FeatureAtlas { side: model.cfg.image_size, steps, layers })
    }

    /// The entry for conv layer `layer` (from 1) and `channel`.
    pub fn get(&self, layer: usize, channel: usize) -> Option<&AtlasEntry> {
        self.layers.get(layer.checked_sub(1)?)?.get(channel)
    }

    /// Does the atlas cover exactly this model's conv layers?
    pub fn matches(&self, model: &Cnn) -> bool {
        self.side == model.cfg.image_size && self.layers.iter().map(Vec::len).eq(model.cfg.channels.iter().copied())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for v in [VERSION, self.side as u32, self.steps as u32, self.layers.len() as u32] {
            out.extend(v.to_le_bytes());
        }
        for layer in &self.layers {
            out.extend((layer.len() as u32).to_le_bytes());
        }
        for e in self.layers.iter().flatten() {
            out.extend(e.activation.to_le_bytes());
            // Round to the nearest of 256 grey levels: the thumbnails are drawn at a few pixels per value.
            out.extend(e.pixels.iter().map(|&p| (p.clamp(0.0, 1.0) * 255.0).round() as u8));
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |m: String| LensError::Data(format!("feature atlas: {m}"));
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8]> {
            let s = bytes.get(at..at + n).ok_or_else(|| bad(format!("truncated at byte {at} of {}", bytes.len())))?;
            at += n;
            Ok(s)
        };
        if take(4)? != MAGIC {
            return Err(bad("not a feature atlas (wrong magic bytes)".into()));
        }
        let mut u32_at = || -> Result<usize> { Ok(u32::from_le_bytes(take(4)?.try_into().unwrap()) as usize) };
        let version = u32_at()?;
        if version != VERSION as usize {
            return Err(bad(format!("version {version} is not supported (expected {VERSION})")));
        }
        let (side, steps, n_layers) = (u32_at()?, u32_at()?, u32_at()?);
        if side == 0 || side > 256 || n_layers == 0 || n_layers > 16 {
            return Err(bad(format!("implausible sizes: side {side}, {n_layers} layers")));
        }
        let counts: Vec<usize> = (0..n_layers).map(|_| u32_at()).collect::<Result<_>>()?;
        if counts.iter().any(|&c| c == 0 || c > 4096) {
            return Err(bad(format!("implausible channel counts {counts:?}")));
        }
        let mut layers = Vec::with_capacity(n_layers);
        for &n in &counts {
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let activation = f32::from_le_bytes(take(4)?.try_into().unwrap());
                let pixels = take(side * side)?.iter().map(|&b| b as f32 / 255.0).collect();
                entries.push(AtlasEntry { activation, pixels });
            }
            layers.push(entries);
        }
        if at != bytes.len() {
            return Err(bad(format!("{} unexpected bytes after the last image", bytes.len() - at)));
        }
        Ok(FeatureAtlas { side, steps, layers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> FeatureAtlas {
        let e = |a: f32, p: f32| AtlasEntry { activation: a, pixels: vec![p; 4] };
        FeatureAtlas { side: 2, steps: 7, layers: vec![vec![e(1.5, 0.0), e(-2.0, 1.0)], vec![e(0.25, 0.5)]] }
    }

    #[test]
    fn round_trip_quantises_pixels_to_grey_levels() {
        let a = tiny();
        let b = FeatureAtlas::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!((b.side, b.steps, b.layers.len()), (2, 7, 2));
        assert_eq!(b.get(1, 1).unwrap().activation, -2.0);
        assert_eq!(b.get(1, 1).unwrap().pixels, vec![1.0; 4]);
        // 0.5 * 255 = 127.5 rounds to 128.
        assert_eq!(b.get(2, 0).unwrap().pixels[0], 128.0 / 255.0);
        assert!(b.get(0, 0).is_none() && b.get(3, 0).is_none() && b.get(2, 1).is_none());
    }

    #[test]
    fn broken_files_are_refused_with_a_reason() {
        let bytes = tiny().to_bytes();
        let msg = |b: &[u8]| FeatureAtlas::from_bytes(b).unwrap_err().to_string();
        assert!(msg(&bytes[..bytes.len() - 1]).contains("truncated"));
        assert!(msg(b"PNG!").contains("magic"));
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(msg(&extra).contains("unexpected bytes"));
        let mut wrong_version = bytes;
        wrong_version[4] = 9;
        assert!(msg(&wrong_version).contains("version"));
    }
}
