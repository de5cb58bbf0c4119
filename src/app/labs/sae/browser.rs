//! The feature browser's rules, plain and tested natively: the list's order, moving through it, the latent a
//! link or the number box names, and the words and shades the card shows.
use super::Order;
use crate::app::core::charts::{highlight, ink_on};
use crate::app::core::format::fmt_int;
use crate::lens::methods::sae::{LatentCard, LossTally};

/// Characters of held-out text the live measurement covers (about 60 windows): a few seconds in the browser.
pub const LIVE_CHARS: usize = 4_000;

/// The latents in the list's order, dead ones dropped when `hide_dead`.
pub fn ordered(cards: &[LatentCard], order: Order, hide_dead: bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..cards.len()).filter(|&j| !hide_dead || cards[j].count > 0).collect();
    match order {
        Order::Index => {}
        Order::Density => idx.sort_by(|&a, &b| cards[b].density.total_cmp(&cards[a].density).then(a.cmp(&b))),
        Order::Peak => idx.sort_by(|&a, &b| cards[b].max.total_cmp(&cards[a].max).then(a.cmp(&b))),
    }
    idx
}

/// The latent the browser opens on: the link's if the dictionary has it, else the one that fires most often,
/// with the message that says so.
pub fn starting_latent(asked: Option<usize>, cards: &[LatentCard]) -> (usize, Option<String>) {
    let first = ordered(cards, Order::Density, false).first().copied().unwrap_or(0);
    match asked {
        None => (first, None),
        Some(j) if j < cards.len() => (j, None),
        Some(j) => (first, Some(format!("The link's “latent={j}” is not in this dictionary of latents 0 to {}, so the lab shows latent {first}, the one that fires most often.", cards.len().saturating_sub(1)))),
    }
}

/// The latent `delta` places from `current` in `list`, wrapping at both ends (a latent not in the list, e.g.
/// a dead one just hidden, counts as sitting before the first).
pub fn step_in_list(list: &[usize], current: usize, delta: isize) -> Option<usize> {
    if list.is_empty() {
        return None;
    }
    let at = list.iter().position(|&j| j == current).map(|p| p as isize).unwrap_or(-1);
    Some(list[(at + delta).rem_euclid(list.len() as isize) as usize])
}

/// A latent typed into the number box, or the message for one that is not in the dictionary.
pub fn parse_latent(typed: &str, d_sae: usize) -> Result<usize, String> {
    match typed.trim().parse::<usize>() {
        Ok(j) if j < d_sae => Ok(j),
        _ => Err(format!("“{typed}” is not a latent: pick a whole number from 0 to {}.", d_sae.saturating_sub(1))),
    }
}

/// How a character is shown inside a context: visible stand-ins for the invisible ones.
pub fn show_char(c: char) -> String {
    match c {
        '\n' => "↵".into(),
        ' ' => "\u{a0}".into(),
        c => c.to_string(),
    }
}

/// A character as a label on its own (in the promoted and suppressed lists).
pub fn char_label(c: char) -> String {
    match c {
        '\n' => "↵ newline".into(),
        ' ' => "␣ space".into(),
        c => c.to_string(),
    }
}

/// The few characters around a latent's strongest peak, for the list.
pub fn snippet(chars: &[char], card: &LatentCard) -> String {
    let Some(c) = card.contexts.first() else { return "never fires".into() };
    let from = c.pos.saturating_sub(8);
    let before: String = chars[from..c.pos].iter().map(|&c| if c == '\n' { '↵' } else { c }).collect();
    let peak = chars.get(c.pos).map(|&c| show_char(c)).unwrap_or_default();
    format!("{before}[{peak}]")
}

/// A share as a percentage with as many digits as a small one needs.
pub fn fmt_pct(x: f32) -> String {
    let p = 100.0 * x;
    if p == 0.0 {
        "0%".into()
    } else if p < 0.1 {
        format!("{p:.3}%")
    } else if p < 10.0 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

pub fn fmt_act(a: f32) -> String {
    if a >= 10.0 {
        format!("{a:.0}")
    } else {
        format!("{a:.1}")
    }
}

/// The card's first line: how often the latent fires, or that it never does.
pub fn density_text(card: &LatentCard, positions: usize) -> String {
    if card.count == 0 {
        return format!("Dead: this latent never fires on the {} held-out characters.", fmt_int(positions));
    }
    let one_in = (1.0 / card.density).round() as usize;
    format!(
        "Fires on {} characters of {} ({}, about 1 in {}); strongest activation {}.",
        fmt_int(card.count),
        fmt_int(positions),
        fmt_pct(card.density),
        fmt_int(one_in.max(1)),
        fmt_act(card.max)
    )
}

/// A context character's shading and hover text for `a`, its activation as a share of the latent's maximum.
pub fn shade(a: f32) -> (String, String) {
    if a > 0.0 {
        // The app's highlighter for text (one hue, lightness carries the value), with ink that reads on it.
        let bg = highlight(0.12 + 0.88 * a.min(1.0));
        (format!("background: {bg}; color: {}", ink_on(bg)), format!("about {:.0}% of the latent's maximum", 100.0 * a))
    } else {
        (String::new(), "inactive (or below 3% of the maximum)".to_string())
    }
}

/// The live measurement's state.
#[derive(Clone, Debug, PartialEq)]
pub enum Live {
    Idle,
    Running { done: usize, total: usize },
    Done(LossTally),
    Cancelled,
    Failed(String),
}

/// What a finished measurement says after its two numbers.
pub fn live_summary(t: &LossTally) -> String {
    format!(
        " on the first {} held-out characters, +{:.1}%. These passages happen to be easier than the book's average, so both numbers sit below the shipped ones; compare the gap, not the level. ",
        fmt_int(t.count),
        100.0 * (t.spliced_loss() / t.clean_loss() - 1.0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lens::methods::sae::TopContext;

    fn card(count: usize, density: f32, max: f32) -> LatentCard {
        LatentCard { count, density, max, hist: vec![], contexts: vec![] }
    }

    fn cards() -> Vec<LatentCard> {
        vec![card(10, 0.01, 2.0), card(0, 0.0, 0.0), card(50, 0.05, 1.0), card(10, 0.01, 3.0)]
    }

    #[test]
    fn the_list_orders_and_hides() {
        let c = cards();
        assert_eq!(ordered(&c, Order::Density, false), [2, 0, 3, 1], "ties by number");
        assert_eq!(ordered(&c, Order::Peak, false), [3, 0, 2, 1]);
        assert_eq!(ordered(&c, Order::Index, true), [0, 2, 3]);
    }

    #[test]
    fn the_browser_opens_on_the_links_latent_or_the_densest() {
        let c = cards();
        assert_eq!(starting_latent(Some(3), &c), (3, None));
        assert_eq!(starting_latent(None, &c), (2, None));
        let (j, m) = starting_latent(Some(9), &c);
        assert_eq!(j, 2);
        assert!(m.unwrap().contains("“latent=9” is not in this dictionary of latents 0 to 3"));
    }

    #[test]
    fn stepping_wraps_around_the_list() {
        let l = [2, 0, 3];
        assert_eq!(step_in_list(&l, 0, 1), Some(3));
        assert_eq!(step_in_list(&l, 3, 1), Some(2), "wraps at the end");
        assert_eq!(step_in_list(&l, 2, -1), Some(3), "wraps at the start");
        assert_eq!(step_in_list(&l, 1, 1), Some(2), "a latent not in the list sits before the first");
        assert_eq!(step_in_list(&[], 1, 1), None);
    }

    #[test]
    fn typed_latents_are_checked() {
        assert_eq!(parse_latent(" 7 ", 8), Ok(7));
        assert_eq!(parse_latent("8", 8).unwrap_err(), "“8” is not a latent: pick a whole number from 0 to 7.");
        assert!(parse_latent("-1", 8).is_err() && parse_latent("x", 8).is_err());
    }

    #[test]
    fn words_and_shades() {
        assert_eq!(
            (fmt_pct(0.0), fmt_pct(0.0004), fmt_pct(0.05), fmt_pct(0.5)),
            ("0%".into(), "0.040%".into(), "5.00%".into(), "50.0%".into())
        );
        assert_eq!((fmt_act(12.34), fmt_act(1.234)), ("12".into(), "1.2".into()));
        assert_eq!(
            density_text(&card(0, 0.0, 0.0), 1234),
            "Dead: this latent never fires on the 1,234 held-out characters."
        );
        assert_eq!(
            density_text(&card(50, 0.05, 1.0), 1000),
            "Fires on 50 characters of 1,000 (5.00%, about 1 in 20); strongest activation 1.0."
        );
        assert_eq!(shade(0.5).0, format!("background: {}; color: #000000", highlight(0.56)));
        assert_eq!(shade(1.0).0, "background: #e07014; color: #000000");
        assert!(shade(0.0).0.is_empty());
        assert_eq!([show_char('\n'), char_label(' ')], ["↵", "␣ space"]);
    }

    #[test]
    fn the_snippet_ends_at_the_peak() {
        let chars: Vec<char> = "Call me\nIshmael.".chars().collect();
        let mut c = card(1, 0.1, 1.0);
        assert_eq!(snippet(&chars, &c), "never fires");
        c.contexts.push(TopContext { pos: 9, start: 0, peak: 1.0, acts: String::new() });
        assert_eq!(snippet(&chars, &c), "all me↵I[s]", "eight characters before the peak");
    }
}
