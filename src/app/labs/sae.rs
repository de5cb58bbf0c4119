//! The sparse-autoencoder lab (9.2.5): two tabs, the toy SAE (known features, trained in the worker) and the
//! feature browser of the SAE shipped with the Moby-Dick model. Its URL state: the tab, and the browser's
//! latent, order and whether dead latents are hidden.
use crate::app::core::url::{Reader, UrlState, Writer};

pub mod browser;
#[cfg(target_arch = "wasm32")]
mod toy;
#[cfg(target_arch = "wasm32")]
mod view;
#[cfg(target_arch = "wasm32")]
pub use view::SaeLabs;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Toy,
    Features,
}

/// How the feature browser lists latents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Density,
    Index,
    Peak,
}

impl Order {
    pub fn key(self) -> &'static str {
        ORDERS.iter().find(|(_, o)| *o == self).map(|(k, _)| *k).unwrap_or("density")
    }
}

pub const ORDERS: &[(&str, Order)] = &[("density", Order::Density), ("index", Order::Index), ("peak", Order::Peak)];
const TABS: &[(&str, Tab)] = &[("toy", Tab::Toy), ("features", Tab::Features)];

/// The largest latent number a link may name before the dictionary is known; the view checks the real size.
const MAX_LATENT: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq)]
pub struct SaeState {
    pub tab: Tab,
    /// The chosen latent; `None` picks the one that fires most often.
    pub latent: Option<usize>,
    pub order: Order,
    pub hide_dead: bool,
}

impl Default for SaeState {
    fn default() -> Self {
        SaeState { tab: Tab::Toy, latent: None, order: Order::Density, hide_dead: false }
    }
}

impl UrlState for SaeState {
    fn read(r: &mut Reader) -> Self {
        let tab = r.choice("tab", Tab::Toy, TABS);
        let order_named = r.raw("order").is_some();
        let latent_named = r.raw("latent").is_some();
        let latent = r.optional_number("latent", 0..=MAX_LATENT);
        let order = r.choice("order", Order::Density, ORDERS);
        let hide_dead = r.flag("alive", false);
        // A link that names a latent or an order means the browser, as links made before the tab key did.
        let browser = latent_named || order_named || hide_dead;
        SaeState { tab: if browser { Tab::Features } else { tab }, latent, order, hide_dead }
    }

    fn write(&self, w: &mut Writer) {
        let browser_keys = self.latent.is_some() || self.order != Order::Density || self.hide_dead;
        if !browser_keys {
            w.choice("tab", self.tab, Tab::Toy, TABS);
        }
        w.optional_number("latent", self.latent);
        w.choice("order", self.order, Order::Density, ORDERS);
        w.flag("alive", self.hide_dead, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::core::url::parse_query;

    #[test]
    fn state_round_trips() {
        for s in [
            SaeState::default(),
            SaeState { tab: Tab::Features, ..SaeState::default() },
            SaeState { tab: Tab::Features, latent: Some(17), order: Order::Peak, hide_dead: true },
        ] {
            assert_eq!(SaeState::from_query(&s.to_query()), (s, vec![]));
        }
    }

    #[test]
    fn a_latent_opens_the_browser_and_a_bad_one_is_named() {
        let (s, p) = SaeState::from_query(&parse_query("latent=5"));
        assert_eq!((s.tab, s.latent, p.len()), (Tab::Features, Some(5), 0));
        let (s, p) = SaeState::from_query(&parse_query("latent=abc&tab=features"));
        assert_eq!((s.tab, s.latent, p[0].key.as_str()), (Tab::Features, None, "latent"));
    }
}
