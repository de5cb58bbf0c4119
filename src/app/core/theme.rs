//! The colour theme a student picks in the navigation: light, dark, or the system's (`prefers-color-scheme`).
//! Plain and tested natively; the shell applies it as `html[data-theme]` (read by `style/main.css`), following
//! the system's preference as it changes when the choice is System, and keeps the choice in local storage under
//! `KEY`.

/// Where the choice is kept across visits.
pub const KEY: &str = "glassbox.theme";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
    /// Follow the system's setting (the default: nothing is stored until a student picks).
    #[default]
    System,
}

impl Theme {
    pub const ALL: [Theme; 3] = [Theme::System, Theme::Light, Theme::Dark];

    /// The stored and `<option>` value.
    pub fn key(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
            Theme::System => "system",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Theme::Light => "Light",
            Theme::Dark => "Dark",
            Theme::System => "System",
        }
    }

    /// A stored value; anything unknown (an old or corrupt entry) is the system's theme.
    pub fn parse(s: &str) -> Theme {
        Theme::ALL.into_iter().find(|t| t.key() == s.trim()).unwrap_or_default()
    }

    /// The `data-theme` attribute on `<html>` (`style/main.css` reads it): the chosen theme, or for the system's
    /// the one the system prefers now (`system_dark`). The stylesheet holds the dark colours once, under this
    /// attribute; a media query could not share that block.
    pub fn attribute(self, system_dark: bool) -> &'static str {
        match self {
            Theme::System if system_dark => "dark",
            Theme::System => "light",
            t => t.key(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_theme_round_trips_and_unknown_values_follow_the_system() {
        for t in Theme::ALL {
            assert_eq!(Theme::parse(t.key()), t);
        }
        assert_eq!(Theme::parse(" dark\n"), Theme::Dark);
        assert_eq!(Theme::parse("sepia"), Theme::System);
        assert_eq!(Theme::parse(""), Theme::System);
    }

    #[test]
    fn the_system_theme_follows_the_system_and_a_chosen_one_does_not() {
        for dark in [false, true] {
            assert_eq!(Theme::Light.attribute(dark), "light");
            assert_eq!(Theme::Dark.attribute(dark), "dark");
        }
        assert_eq!(Theme::System.attribute(true), "dark");
        assert_eq!(Theme::System.attribute(false), "light");
    }
}
