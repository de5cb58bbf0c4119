//! Hook points named exactly as TransformerLens names them, the activation cache keyed by them,
//! and interventions (replace / add / zero / scale) applied at them.
//!
//! Shapes follow TransformerLens and keep the batch dimension first:
//! residual-stream hooks are `[batch, pos, d_model]`, `attn.hook_q/k/v/z` are `[batch, pos, head, d_head]`,
//! `attn.hook_attn_scores` and `attn.hook_pattern` are `[batch, head, query_pos, key_pos]`.
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Tensor};

use crate::lens::{LensError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    /// `hook_embed`: token embeddings `[batch, pos, d_model]`.
    Embed,
    /// `hook_pos_embed`: position embeddings `[batch, pos, d_model]`.
    PosEmbed,
    /// `blocks.{l}.hook_resid_pre`: the residual stream entering block l `[batch, pos, d_model]`.
    ResidPre(usize),
    /// `blocks.{l}.ln1.hook_scale`: LayerNorm's divisor `[batch, pos, 1]`.
    Ln1Scale(usize),
    /// `blocks.{l}.ln1.hook_normalized`: LayerNorm output, weight and bias applied `[batch, pos, d_model]`.
    Ln1Normalized(usize),
    /// `blocks.{l}.attn.hook_q` `[batch, pos, head, d_head]`.
    Q(usize),
    /// `blocks.{l}.attn.hook_k` `[batch, pos, head, d_head]`.
    K(usize),
    /// `blocks.{l}.attn.hook_v` `[batch, pos, head, d_head]`.
    V(usize),
    /// `blocks.{l}.attn.hook_attn_scores`: scaled, masked scores before softmax `[batch, head, q, k]`.
    AttnScores(usize),
    /// `blocks.{l}.attn.hook_pattern`: attention probabilities `[batch, head, q, k]`.
    Pattern(usize),
    /// `blocks.{l}.attn.hook_z`: pattern-weighted values `[batch, pos, head, d_head]`.
    Z(usize),
    /// `blocks.{l}.hook_attn_out` `[batch, pos, d_model]`.
    AttnOut(usize),
    /// `blocks.{l}.hook_resid_mid` `[batch, pos, d_model]` (models with an MLP only).
    ResidMid(usize),
    /// `blocks.{l}.ln2.hook_scale` `[batch, pos, 1]`.
    Ln2Scale(usize),
    /// `blocks.{l}.ln2.hook_normalized` `[batch, pos, d_model]`.
    Ln2Normalized(usize),
    /// `blocks.{l}.mlp.hook_pre`: MLP pre-activations `[batch, pos, d_mlp]`.
    MlpPre(usize),
    /// `blocks.{l}.mlp.hook_post`: MLP activations `[batch, pos, d_mlp]`.
    MlpPost(usize),
    /// `blocks.{l}.hook_mlp_out` `[batch, pos, d_model]`.
    MlpOut(usize),
    /// `blocks.{l}.hook_resid_post` `[batch, pos, d_model]`.
    ResidPost(usize),
    /// `ln_final.hook_scale` `[batch, pos, 1]`.
    LnFinalScale,
    /// `ln_final.hook_normalized` `[batch, pos, d_model]`.
    LnFinalNormalized,
}

impl Hook {
    /// Every hook the model has, in forward order. Attention-only models have no MLP, LN2 or resid_mid hooks,
    /// as in TransformerLens.
    pub fn all(n_layer: usize, attn_only: bool) -> Vec<Hook> {
        use Hook::*;
        let mut v = vec![Embed, PosEmbed];
        for l in 0..n_layer {
            v.extend([
                ResidPre(l),
                Ln1Scale(l),
                Ln1Normalized(l),
                Q(l),
                K(l),
                V(l),
                AttnScores(l),
                Pattern(l),
                Z(l),
                AttnOut(l),
            ]);
            if !attn_only {
                v.extend([ResidMid(l), Ln2Scale(l), Ln2Normalized(l), MlpPre(l), MlpPost(l), MlpOut(l)]);
            }
            v.push(ResidPost(l));
        }
        v.extend([LnFinalScale, LnFinalNormalized]);
        v
    }

    pub fn layer(&self) -> Option<usize> {
        use Hook::*;
        match *self {
            Embed | PosEmbed | LnFinalScale | LnFinalNormalized => None,
            ResidPre(l) | Ln1Scale(l) | Ln1Normalized(l) | Q(l) | K(l) | V(l) | AttnScores(l) | Pattern(l) | Z(l)
            | AttnOut(l) | ResidMid(l) | Ln2Scale(l) | Ln2Normalized(l) | MlpPre(l) | MlpPost(l) | MlpOut(l)
            | ResidPost(l) => Some(l),
        }
    }

    /// Which tensor dimension indexes heads, if any.
    pub fn head_dim(&self) -> Option<usize> {
        use Hook::*;
        match self {
            Q(_) | K(_) | V(_) | Z(_) => Some(2),
            AttnScores(_) | Pattern(_) => Some(1),
            _ => None,
        }
    }

    /// Which tensor dimension indexes (query) positions.
    pub fn pos_dim(&self) -> usize {
        use Hook::*;
        match self {
            AttnScores(_) | Pattern(_) => 2,
            _ => 1,
        }
    }
}

/// Where a hook point sits: once in the model, or in every block (named `blocks.{l}.` + the table's name).
#[derive(Clone, Copy)]
enum Site {
    Model(Hook),
    Block(fn(usize) -> Hook),
}

/// Every hook point with its TransformerLens name, in forward order: the one table `Display` and `FromStr` read.
const NAMES: [(Site, &str); 21] = {
    use Hook::*;
    use Site::{Block, Model};
    [
        (Model(Embed), "hook_embed"),
        (Model(PosEmbed), "hook_pos_embed"),
        (Block(ResidPre), "hook_resid_pre"),
        (Block(Ln1Scale), "ln1.hook_scale"),
        (Block(Ln1Normalized), "ln1.hook_normalized"),
        (Block(Q), "attn.hook_q"),
        (Block(K), "attn.hook_k"),
        (Block(V), "attn.hook_v"),
        (Block(AttnScores), "attn.hook_attn_scores"),
        (Block(Pattern), "attn.hook_pattern"),
        (Block(Z), "attn.hook_z"),
        (Block(AttnOut), "hook_attn_out"),
        (Block(ResidMid), "hook_resid_mid"),
        (Block(Ln2Scale), "ln2.hook_scale"),
        (Block(Ln2Normalized), "ln2.hook_normalized"),
        (Block(MlpPre), "mlp.hook_pre"),
        (Block(MlpPost), "mlp.hook_post"),
        (Block(MlpOut), "hook_mlp_out"),
        (Block(ResidPost), "hook_resid_post"),
        (Model(LnFinalScale), "ln_final.hook_scale"),
        (Model(LnFinalNormalized), "ln_final.hook_normalized"),
    ]
};

impl Hook {
    /// This hook's name in `NAMES` (after `blocks.{l}.` for the per-block ones): the row of the same variant.
    fn table_name(&self) -> &'static str {
        let variant = std::mem::discriminant(self);
        let row = NAMES.iter().find(|(site, _)| {
            let h = match *site {
                Site::Model(h) => h,
                Site::Block(at) => at(0),
            };
            std::mem::discriminant(&h) == variant
        });
        row.expect("every hook has a row in NAMES").1
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.layer() {
            Some(l) => write!(f, "blocks.{l}.{}", self.table_name()),
            None => f.write_str(self.table_name()),
        }
    }
}

impl FromStr for Hook {
    type Err = LensError;

    fn from_str(s: &str) -> Result<Hook> {
        let unknown = || LensError::UnknownHook(s.to_string());
        let Some(rest) = s.strip_prefix("blocks.") else {
            let model_hook = |(site, name): &(Site, &str)| match site {
                Site::Model(h) if *name == s => Some(*h),
                _ => None,
            };
            return NAMES.iter().find_map(model_hook).ok_or_else(unknown);
        };
        let (layer, name) = rest.split_once('.').ok_or_else(unknown)?;
        // Reject "01", "+1" and the like so that parse(print(h)) is the only spelling.
        if layer.is_empty() || !layer.bytes().all(|b| b.is_ascii_digit()) || (layer.len() > 1 && layer.starts_with('0'))
        {
            return Err(unknown());
        }
        let l: usize = layer.parse().map_err(|_| unknown())?;
        let block_hook = |(site, n): &(Site, &str)| match site {
            Site::Block(at) if *n == name => Some(at(l)),
            _ => None,
        };
        NAMES.iter().find_map(block_hook).ok_or_else(unknown)
    }
}

/// Hooks serialise as their TransformerLens string (`"blocks.0.hook_resid_post"`), so JSON stays readable and
/// matches what TransformerLens users type.
impl serde::Serialize for Hook {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Hook {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Hook, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Every hooked activation of one forward pass.
#[derive(Clone, Debug, Default)]
pub struct ActivationCache {
    map: HashMap<Hook, Tensor>,
}

impl ActivationCache {
    pub fn get(&self, hook: Hook) -> Option<&Tensor> {
        self.map.get(&hook)
    }
    /// Looks an activation up by its TransformerLens name.
    pub fn get_by_name(&self, name: &str) -> Result<&Tensor> {
        let hook: Hook = name.parse()?;
        self.get(hook).ok_or_else(|| LensError::UnknownHook(name.to_string()))
    }
    pub fn insert(&mut self, hook: Hook, t: Tensor) {
        self.map.insert(hook, t);
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn hooks(&self) -> Vec<Hook> {
        let mut v: Vec<Hook> = self.map.keys().copied().collect();
        v.sort();
        v
    }
    /// The attention pattern of one layer, one head and one batch item as a row-major `[q][k]` matrix.
    pub fn pattern(&self, layer: usize, head: usize, batch: usize) -> Result<Vec<Vec<f32>>> {
        let t =
            self.get(Hook::Pattern(layer)).ok_or_else(|| LensError::UnknownHook(Hook::Pattern(layer).to_string()))?;
        Ok(t.get(batch)?.get(head)?.to_dtype(DType::F32)?.to_vec2()?)
    }
}

/// What an intervention does to the activation at its hook.
#[derive(Clone, Debug)]
pub enum Op {
    /// Replace with this tensor (broadcast to the activation's shape), e.g. from another run's cache (patching).
    Replace(Tensor),
    /// Add this tensor (broadcast), e.g. a steering vector of shape `[d_model]`.
    Add(Tensor),
    /// Set to zero (zero-ablation).
    Zero,
    /// Multiply by a constant.
    Scale(f64),
}

/// An intervention at one hook, optionally restricted to one head and/or one (query) position.
#[derive(Clone, Debug)]
pub struct Intervention {
    pub hook: Hook,
    pub op: Op,
    pub head: Option<usize>,
    pub pos: Option<usize>,
}

impl Intervention {
    pub fn new(hook: Hook, op: Op) -> Self {
        Intervention { hook, op, head: None, pos: None }
    }
    pub fn head(mut self, head: usize) -> Self {
        self.head = Some(head);
        self
    }
    pub fn pos(mut self, pos: usize) -> Self {
        self.pos = Some(pos);
        self
    }

    /// Applies the intervention to `x`, leaving entries outside the selected head/position untouched.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let changed = match &self.op {
            Op::Replace(r) => r.to_dtype(x.dtype())?.broadcast_as(x.shape())?.contiguous()?,
            Op::Add(a) => x.broadcast_add(&a.to_dtype(x.dtype())?)?,
            Op::Zero => x.zeros_like()?,
            Op::Scale(s) => x.affine(*s, 0.0)?,
        };
        if self.head.is_none() && self.pos.is_none() {
            return Ok(changed);
        }
        let mask = self.selection_mask(x)?;
        Ok(mask.where_cond(&changed, x)?)
    }

    /// A u8 mask of x's shape: 1 where the selected head and position are.
    fn selection_mask(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let mut axes: Vec<(usize, usize)> = Vec::new();
        if let Some(h) = self.head {
            let d =
                self.hook.head_dim().ok_or_else(|| LensError::Input(format!("{} has no head dimension", self.hook)))?;
            axes.push((d, h));
        }
        if let Some(p) = self.pos {
            axes.push((self.hook.pos_dim(), p));
        }
        for &(d, i) in &axes {
            if i >= dims[d] {
                return Err(LensError::Input(format!(
                    "index {i} is out of range for dimension {d} of {} (size {})",
                    self.hook, dims[d]
                )));
            }
        }
        let n: usize = dims.iter().product();
        let mut strides = vec![1usize; dims.len()];
        for d in (0..dims.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * dims[d + 1];
        }
        let data: Vec<u8> =
            (0..n).map(|flat| axes.iter().all(|&(d, i)| (flat / strides[d]) % dims[d] == i) as u8).collect();
        Ok(Tensor::from_vec(data, dims, x.device())?)
    }
}

/// What a forward pass records and changes: the run-time side of the hooks.
#[derive(Debug, Default)]
pub struct HookSet {
    pub interventions: Vec<Intervention>,
    /// None: cache nothing. Some(None): cache every hook. Some(Some(list)): only these.
    cache_filter: Option<Option<Vec<Hook>>>,
    pub cache: ActivationCache,
}

impl HookSet {
    /// Records nothing, changes nothing: the fastest forward.
    pub fn none() -> Self {
        HookSet::default()
    }
    /// Records every hooked activation.
    pub fn cache_all() -> Self {
        HookSet { cache_filter: Some(None), ..Default::default() }
    }
    pub fn cache_only(hooks: Vec<Hook>) -> Self {
        HookSet { cache_filter: Some(Some(hooks)), ..Default::default() }
    }
    /// Applies these interventions, records nothing.
    pub fn intervening(interventions: Vec<Intervention>) -> Self {
        HookSet { interventions, ..Default::default() }
    }
    pub fn with(mut self, iv: Intervention) -> Self {
        self.interventions.push(iv);
        self
    }

    /// Called by the model at every hook point: applies this hook's interventions in order, then caches.
    pub fn run(&mut self, hook: Hook, mut x: Tensor) -> Result<Tensor> {
        for iv in self.interventions.iter().filter(|iv| iv.hook == hook) {
            x = iv.apply(&x)?;
        }
        if self.keeps(hook) {
            self.cache.insert(hook, x.clone());
        }
        Ok(x)
    }

    /// Whether `run(hook, x)` would return `x` untouched and record nothing: then the model may fuse the work on
    /// either side of the hook point and never make `x` (the attention's scores, on a plain forward).
    pub fn passes(&self, hook: Hook) -> bool {
        !self.keeps(hook) && self.leaves(hook)
    }

    /// Whether `run(hook, x)` returns `x` as it is (it may record it): no intervention at `hook`.
    pub fn leaves(&self, hook: Hook) -> bool {
        !self.interventions.iter().any(|iv| iv.hook == hook)
    }

    fn keeps(&self, hook: Hook) -> bool {
        match &self.cache_filter {
            None => false,
            Some(None) => true,
            Some(Some(list)) => list.contains(&hook),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn every_hook_prints_and_parses_as_transformer_lens_does() {
        let hooks = Hook::all(3, false);
        assert_eq!(hooks.len(), 2 + 3 * 17 + 2);
        for h in hooks {
            let s = h.to_string();
            assert_eq!(s.parse::<Hook>().unwrap(), h, "{s}");
        }
        assert_eq!(Hook::Pattern(1).to_string(), "blocks.1.attn.hook_pattern");
        assert_eq!(Hook::MlpPost(0).to_string(), "blocks.0.mlp.hook_post");
        assert_eq!(Hook::ResidPost(11).to_string(), "blocks.11.hook_resid_post");
        assert_eq!("ln_final.hook_normalized".parse::<Hook>().unwrap(), Hook::LnFinalNormalized);
    }

    #[test]
    fn the_name_table_has_one_row_per_variant() {
        // Hook::all lists every variant (layer 0 and 1 for the per-block ones); each must own exactly one row.
        let hooks = Hook::all(1, false);
        assert_eq!(hooks.len(), NAMES.len());
        for h in &hooks {
            let rows = NAMES
                .iter()
                .filter(|(site, _)| match *site {
                    Site::Model(m) => m == *h,
                    Site::Block(at) => h.layer() == Some(0) && at(0) == *h,
                })
                .count();
            assert_eq!(rows, 1, "{h:?}");
        }
        // Names are unique within each kind of site, so parsing is unambiguous.
        let mut names: Vec<(bool, &str)> = NAMES.iter().map(|(site, n)| (matches!(site, Site::Block(_)), *n)).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), NAMES.len());
    }

    #[test]
    fn near_misses_do_not_parse() {
        for s in [
            "",
            "blocks",
            "blocks.x.hook_resid_pre",
            "blocks.01.hook_resid_pre",
            "blocks.1.hook_resid",
            "blocks.-1.attn.hook_q",
            "hook_embed ",
            "blocks.1.attn.hook_pattern.x",
            "blocks.0.hook_embed",
            "hook_resid_pre",
            "blocks.1.ln_final.hook_scale",
        ] {
            assert!(s.parse::<Hook>().is_err(), "{s:?} parsed");
        }
    }

    #[test]
    fn attn_only_models_have_no_mlp_hooks() {
        let hooks = Hook::all(2, true);
        assert!(!hooks.iter().any(|h| matches!(h, Hook::MlpPost(_) | Hook::ResidMid(_) | Hook::Ln2Normalized(_))));
        assert_eq!(hooks.len(), 2 + 2 * 11 + 2);
    }

    #[test]
    fn interventions_touch_only_the_selected_head_and_position() -> Result<()> {
        // [batch 1, pos 3, head 2, d_head 2], values 0..12
        let x = Tensor::arange(0f32, 12., &Device::Cpu)?.reshape((1, 3, 2, 2))?;
        let z = Intervention::new(Hook::Z(0), Op::Zero).head(1).apply(&x)?;
        assert_eq!(z.flatten_all()?.to_vec1::<f32>()?, vec![0., 1., 0., 0., 4., 5., 0., 0., 8., 9., 0., 0.]);
        let s = Intervention::new(Hook::Z(0), Op::Scale(10.0)).head(0).pos(2).apply(&x)?;
        assert_eq!(s.flatten_all()?.to_vec1::<f32>()?, vec![0., 1., 2., 3., 4., 5., 6., 7., 80., 90., 10., 11.]);
        let steer = Tensor::new(&[100f32, 200.], &Device::Cpu)?;
        let a = Intervention::new(Hook::Z(0), Op::Add(steer)).pos(0).apply(&x)?;
        assert_eq!(a.flatten_all()?.to_vec1::<f32>()?, vec![100., 201., 102., 203., 4., 5., 6., 7., 8., 9., 10., 11.]);
        let r = Intervention::new(Hook::Z(0), Op::Replace(x.affine(-1.0, 0.0)?)).head(0).pos(1).apply(&x)?;
        assert_eq!(r.flatten_all()?.to_vec1::<f32>()?, vec![0., 1., 2., 3., -4., -5., 6., 7., 8., 9., 10., 11.]);
        // A pattern's position axis is the query axis (dim 2), its head axis dim 1.
        let p = Tensor::ones((1, 2, 2, 2), DType::F32, &Device::Cpu)?;
        let pz = Intervention::new(Hook::Pattern(0), Op::Zero).head(1).pos(0).apply(&p)?;
        assert_eq!(pz.flatten_all()?.to_vec1::<f32>()?, vec![1., 1., 1., 1., 0., 0., 1., 1.]);
        Ok(())
    }

    #[test]
    fn bad_selections_are_errors_not_panics() {
        let x = Tensor::zeros((1, 3, 4), DType::F32, &Device::Cpu).unwrap();
        assert!(Intervention::new(Hook::ResidPre(0), Op::Zero).head(0).apply(&x).is_err());
        assert!(Intervention::new(Hook::ResidPre(0), Op::Zero).pos(3).apply(&x).is_err());
    }
}
