//! Number and text formatting shared by the labs (plain Rust, tested natively).

/// A whole number with thousands separators ("12,345"), as the labs print counts.
pub fn fmt_int(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// An engine message as a sentence: its first letter in capitals.
pub fn sentence(e: &str) -> String {
    let mut c = e.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A stored share in percent (`"42.0"`), if it is a finite number within `range`.
pub fn parse_share(s: &str, range: (f64, f64)) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|w| w.is_finite() && (range.0..=range.1).contains(w))
}

/// A share as a whole percentage ("71%"); a share that rounds to zero is "0%", never "-0%".
pub fn pct(share: f32) -> String {
    let v = (100.0 * share).round();
    if v == 0.0 {
        "0%".into()
    } else {
        format!("{v:.0}%")
    }
}

/// Escapes text for HTML built as a string (the panic overlay).
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!([pct(0.714), pct(-0.001), pct(1.0), pct(-0.2)], ["71%", "0%", "100%", "-20%"]);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(fmt_int(0), "0");
        assert_eq!(fmt_int(999), "999");
        assert_eq!(fmt_int(1000), "1,000");
        assert_eq!(fmt_int(1234567), "1,234,567");
    }

    #[test]
    fn sentences_start_with_a_capital() {
        assert_eq!(sentence("the regex is empty"), "The regex is empty");
        assert_eq!(sentence(""), "");
        assert_eq!(sentence("école"), "École");
    }

    #[test]
    fn corrupt_shares_are_ignored() {
        assert_eq!(parse_share("42.5", (20.0, 75.0)), Some(42.5));
        for bad in ["NaN", "inf", "", "abc", "19.9", "80"] {
            assert_eq!(parse_share(bad, (20.0, 75.0)), None, "{bad}");
        }
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(html_escape(r#"<a href="x">&</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
    }
}
