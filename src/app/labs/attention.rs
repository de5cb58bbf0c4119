//! The attention lab (primer before 9.2.2): attention patterns and induction heads on the 2-layer
//! attention-only model. Its URL state: the typed sequence and the selected head.
use crate::app::core::url::{Reader, UrlState, Writer};

#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::AttentionLab;

/// The longest sequence a link carries, in characters (the model reads at most 63 words anyway).
pub const MAX_URL_SEQ: usize = 2000;

/// Largest layer or head number a link may name before the model is known; the view checks the real bounds.
const MAX_INDEX: usize = 63;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttentionState {
    /// The sequence; `None` opens on a random repeat.
    pub seq: Option<String>,
    /// The selected head; `None` selects the strongest induction head.
    pub head: Option<(usize, usize)>,
}

impl UrlState for AttentionState {
    fn read(r: &mut Reader) -> Self {
        let seq = r.optional_text("seq", MAX_URL_SEQ);
        let layer = r.optional_number("layer", 0..=MAX_INDEX);
        let head = r.optional_number("head", 0..=MAX_INDEX);
        AttentionState { seq, head: layer.zip(head) }
    }

    fn write(&self, w: &mut Writer) {
        w.optional_text("seq", self.seq.as_deref());
        w.optional_number("layer", self.head.map(|h| h.0));
        w.optional_number("head", self.head.map(|h| h.1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::core::url::parse_query;

    #[test]
    fn state_round_trips() {
        let s = AttentionState { seq: Some("the cat & the hat".into()), head: Some((1, 3)) };
        assert_eq!(AttentionState::from_query(&s.to_query()), (s, vec![]));
        assert_eq!(AttentionState::default().to_query(), vec![]);
    }

    #[test]
    fn a_bad_head_is_named_and_dropped() {
        let (s, p) = AttentionState::from_query(&parse_query("seq=a+b&layer=x&head=2"));
        assert_eq!((s.seq.as_deref(), s.head), (Some("a b"), None));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key, "layer");
    }
}
