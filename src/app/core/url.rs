//! Lab state in the URL: each lab declares its state once (`UrlState`), and every control round-trips through
//! the query part of the hash (`#/9.2.2?text=...&layer=3`), so a copied link reopens the lab as it was.
//!
//! Rules, the same for every lab:
//! - a missing key means its default, and a value equal to the default is not written (links stay short);
//! - a value that cannot be used (not a number, out of range, not one of the choices, too long, empty) falls back
//!   to the default and is reported as one `UrlProblem` naming the key, which the lab frame shows;
//! - a key the lab does not know is reported too, never silently dropped.
//!
//! Encoding is `application/x-www-form-urlencoded` through the `form_urlencoded` crate (spaces as `+`, which reads
//! better in a shared link than `%20`). Plain Rust, tested natively.
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// A value in a link that the lab could not use, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlProblem {
    pub key: String,
    pub value: String,
    /// Why the value was not used, as a clause ("is not a whole number").
    pub why: String,
    /// What the lab uses instead, shown to the student (`None` for an ignored key).
    pub instead: Option<String>,
}

impl fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = shorten(&self.value, 40);
        match &self.instead {
            Some(d) => write!(f, "The link's “{}={value}” {}, so the lab uses {d}.", self.key, self.why),
            None => write!(f, "The link's “{}={value}” {}, so it was ignored.", self.key, self.why),
        }
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// Parses a query string (`a=1&b=x+y`) into pairs, in order.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// Encodes pairs as a query string (without the `?`).
pub fn encode_query(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

thread_local! {
    /// Keys of the shell's own (presenter mode: `present`, `step`) that ride along on every URL a lab writes.
    static SHELL_KEYS: std::cell::RefCell<Vec<(String, String)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Sets the shell's keys that `section_hash_with` appends to every lab URL (empty: none).
pub fn set_shell_keys(keys: Vec<(String, String)>) {
    SHELL_KEYS.with(|k| *k.borrow_mut() = keys);
}

/// The hash of section `slug` with lab state: `#/slug` or `#/slug?k=v&...`, plus the shell's keys, if any.
pub fn section_hash_with(slug: &str, pairs: &[(String, String)]) -> String {
    debug_assert!(crate::routes::SECTIONS.iter().any(|s| s.slug == slug), "no section `{slug}`");
    let mut pairs = pairs.to_vec();
    SHELL_KEYS.with(|k| pairs.extend(k.borrow().iter().cloned()));
    if pairs.is_empty() {
        format!("#/{slug}")
    } else {
        format!("#/{slug}?{}", encode_query(&pairs))
    }
}

/// A lab's whole state as it lives in the URL. `read` takes every key through the `Reader`, which applies the
/// rules above; `write` puts every field through the `Writer`. `read(write(s)) == s` for every valid state.
pub trait UrlState: Sized + Clone + PartialEq + Default {
    fn read(r: &mut Reader) -> Self;
    fn write(&self, w: &mut Writer);

    /// The state in a query, with the problems found (empty for a clean link).
    fn from_query(pairs: &[(String, String)]) -> (Self, Vec<UrlProblem>) {
        let mut r = Reader::new(pairs);
        let s = Self::read(&mut r);
        (s, r.finish())
    }

    /// The state as query pairs; default values are left out.
    fn to_query(&self) -> Vec<(String, String)> {
        let mut w = Writer::default();
        self.write(&mut w);
        w.pairs
    }
}

/// Reads typed values out of a query, recording what it could not use.
pub struct Reader<'a> {
    pairs: &'a [(String, String)],
    used: Vec<bool>,
    problems: Vec<UrlProblem>,
}

impl<'a> Reader<'a> {
    pub fn new(pairs: &'a [(String, String)]) -> Self {
        Self { pairs, used: vec![false; pairs.len()], problems: Vec::new() }
    }

    /// The raw value of `key` (the last one if repeated: the newest edit wins), marking it read.
    pub fn raw(&mut self, key: &str) -> Option<&'a str> {
        let mut found = None;
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if k == key {
                self.used[i] = true;
                found = Some(v.as_str());
            }
        }
        found
    }

    /// Records that `key=value` was not used, and what is used instead.
    pub fn problem(&mut self, key: &str, value: &str, why: impl Into<String>, instead: impl fmt::Display) {
        self.problems.push(UrlProblem {
            key: key.into(),
            value: value.into(),
            why: why.into(),
            instead: Some(instead.to_string()),
        });
    }

    /// Free text of at most `max_chars` characters. Empty text is a problem: a link never carries an empty field
    /// on purpose (the writer leaves defaults out).
    pub fn text(&mut self, key: &str, default: &str, max_chars: usize) -> String {
        match self.raw(key) {
            None => default.to_string(),
            Some("") => {
                self.problem(key, "", "is empty", describe_default(default));
                default.to_string()
            }
            Some(v) if v.chars().count() > max_chars => {
                let why =
                    format!("is {} characters long, more than the {max_chars} a link may carry", v.chars().count());
                self.problem(key, v, why, describe_default(default));
                default.to_string()
            }
            Some(v) => v.to_string(),
        }
    }

    /// Optional free text: absent means `None`; present but unusable is a problem and gives `None`.
    pub fn optional_text(&mut self, key: &str, max_chars: usize) -> Option<String> {
        let v = self.raw(key)?;
        if v.is_empty() {
            self.problem(key, v, "is empty", "its default");
            return None;
        }
        if v.chars().count() > max_chars {
            let why = format!("is {} characters long, more than the {max_chars} a link may carry", v.chars().count());
            self.problem(key, v, why, "its default");
            return None;
        }
        Some(v.to_string())
    }

    /// A number in `range` (whole or not, by `T`).
    pub fn number<T>(&mut self, key: &str, default: T, range: RangeInclusive<T>) -> T
    where
        T: FromStr + PartialOrd + Copy + fmt::Display + IsWhole,
    {
        self.optional_number(key, range).unwrap_or(default)
    }

    /// A number in `range`, or `None` when absent or unusable (a problem is recorded for the latter).
    pub fn optional_number<T>(&mut self, key: &str, range: RangeInclusive<T>) -> Option<T>
    where
        T: FromStr + PartialOrd + Copy + fmt::Display + IsWhole,
    {
        let v = self.raw(key)?;
        match v.trim().parse::<T>() {
            Ok(x) if range.contains(&x) => Some(x),
            Ok(_) => {
                let why = format!("is outside {} to {}", range.start(), range.end());
                self.problem(key, v, why, "its default");
                None
            }
            Err(_) => {
                let why = if T::WHOLE { "is not a whole number" } else { "is not a number" };
                self.problem(key, v, why, "its default");
                None
            }
        }
    }

    /// One of named options (`("moby", Which::Moby)`).
    pub fn choice<T: Copy + PartialEq>(&mut self, key: &str, default: T, options: &[(&str, T)]) -> T {
        let dflt = options.iter().find(|(_, t)| *t == default).map(|(n, _)| *n).unwrap_or("the default");
        self.one_of(key, options, format!("“{dflt}”")).unwrap_or(default)
    }

    /// One of named options, or `None` when absent or not one of them (a problem is recorded for the latter).
    pub fn optional_choice<T: Copy>(&mut self, key: &str, options: &[(&str, T)]) -> Option<T> {
        self.one_of(key, options, "its default".to_string())
    }

    /// The option named by `key`'s value; an unknown name is a problem, with `instead` said in its place.
    fn one_of<T: Copy>(&mut self, key: &str, options: &[(&str, T)], instead: String) -> Option<T> {
        let v = self.raw(key)?;
        let found = options.iter().find(|(name, _)| *name == v).map(|(_, t)| *t);
        if found.is_none() {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            self.problem(key, v, format!("is not one of {}", names.join(", ")), instead);
        }
        found
    }

    /// `1` or `0`.
    pub fn flag(&mut self, key: &str, default: bool) -> bool {
        self.choice(key, default, &[("1", true), ("0", false)])
    }

    /// The problems, including keys nobody read.
    pub fn finish(mut self) -> Vec<UrlProblem> {
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if !self.used[i] {
                self.problems.push(UrlProblem {
                    key: k.clone(),
                    value: v.clone(),
                    why: "is not a setting of this lab".into(),
                    instead: None,
                });
            }
        }
        self.problems
    }
}

fn describe_default(default: &str) -> String {
    if default.is_empty() {
        "its default".into()
    } else {
        format!("“{}”", shorten(default, 30))
    }
}

/// Whether a number type is whole, for the message "is not a whole number".
pub trait IsWhole {
    const WHOLE: bool;
}
impl IsWhole for usize {
    const WHOLE: bool = true;
}
impl IsWhole for u64 {
    const WHOLE: bool = true;
}
impl IsWhole for u32 {
    const WHOLE: bool = true;
}
impl IsWhole for f32 {
    const WHOLE: bool = false;
}
impl IsWhole for f64 {
    const WHOLE: bool = false;
}

/// Writes typed values, leaving out those equal to their default.
#[derive(Default)]
pub struct Writer {
    pairs: Vec<(String, String)>,
}

impl Writer {
    pub fn text(&mut self, key: &str, value: &str, default: &str) {
        if value != default {
            self.pairs.push((key.into(), value.into()));
        }
    }

    pub fn optional_text(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.pairs.push((key.into(), v.into()));
        }
    }

    /// Numbers print in their shortest exact form (`0.3`, not `0.30000001`), so they read back equal.
    pub fn number<T: PartialEq + fmt::Display>(&mut self, key: &str, value: T, default: T) {
        if value != default {
            self.pairs.push((key.into(), value.to_string()));
        }
    }

    pub fn optional_number<T: fmt::Display>(&mut self, key: &str, value: Option<T>) {
        if let Some(v) = value {
            self.pairs.push((key.into(), v.to_string()));
        }
    }

    pub fn choice<T: Copy + PartialEq>(&mut self, key: &str, value: T, default: T, options: &[(&str, T)]) {
        if value != default {
            if let Some((name, _)) = options.iter().find(|(_, t)| *t == value) {
                self.pairs.push((key.into(), (*name).into()));
            }
        }
    }

    pub fn flag(&mut self, key: &str, value: bool, default: bool) {
        self.choice(key, value, default, &[("1", true), ("0", false)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_keys_ride_along_on_every_lab_url() {
        let pairs = vec![("s".to_string(), "0.7".to_string())];
        assert_eq!(section_hash_with("9.2.4", &pairs), "#/9.2.4?s=0.7");
        set_shell_keys(vec![("present".into(), "1".into()), ("step".into(), "2".into())]);
        assert_eq!(section_hash_with("9.2.4", &pairs), "#/9.2.4?s=0.7&present=1&step=2");
        assert_eq!(section_hash_with("9.2.4", &[]), "#/9.2.4?present=1&step=2");
        set_shell_keys(Vec::new());
        assert_eq!(section_hash_with("9.2.4", &[]), "#/9.2.4");
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Pick {
        A,
        B,
    }

    #[derive(Clone, Debug, PartialEq)]
    struct Demo {
        text: String,
        layer: usize,
        coef: f32,
        pick: Pick,
        on: bool,
        seed: Option<u64>,
    }

    impl Default for Demo {
        fn default() -> Self {
            Demo { text: "hello".into(), layer: 1, coef: 0.3, pick: Pick::A, on: false, seed: None }
        }
    }

    const PICKS: &[(&str, Pick)] = &[("a", Pick::A), ("b", Pick::B)];

    impl UrlState for Demo {
        fn read(r: &mut Reader) -> Self {
            let d = Demo::default();
            Demo {
                text: r.text("text", &d.text, 20),
                layer: r.number("layer", d.layer, 0..=4),
                coef: r.number("coef", d.coef, -2.0..=2.0),
                pick: r.choice("pick", d.pick, PICKS),
                on: r.flag("on", d.on),
                seed: r.optional_number("seed", 0..=u64::MAX),
            }
        }
        fn write(&self, w: &mut Writer) {
            let d = Demo::default();
            w.text("text", &self.text, &d.text);
            w.number("layer", self.layer, d.layer);
            w.number("coef", self.coef, d.coef);
            w.choice("pick", self.pick, d.pick, PICKS);
            w.flag("on", self.on, d.on);
            w.optional_number("seed", self.seed);
        }
    }

    fn pairs(q: &str) -> Vec<(String, String)> {
        parse_query(q)
    }

    #[test]
    fn defaults_write_nothing_and_read_back() {
        assert!(Demo::default().to_query().is_empty());
        assert_eq!(Demo::from_query(&[]), (Demo::default(), vec![]));
    }

    #[test]
    fn every_field_round_trips_through_the_hash() {
        let s = Demo { text: "a & b=c%d é+".into(), layer: 4, coef: -0.7, pick: Pick::B, on: true, seed: Some(42) };
        let hash = section_hash_with("9.2.2", &s.to_query());
        assert_eq!(hash, "#/9.2.2?text=a+%26+b%3Dc%25d+%C3%A9%2B&layer=4&coef=-0.7&pick=b&on=1&seed=42");
        let query = hash.split_once('?').unwrap().1;
        assert_eq!(Demo::from_query(&pairs(query)), (s, vec![]));
    }

    #[test]
    fn bad_values_fall_back_to_the_default_and_are_named() {
        let (s, problems) = Demo::from_query(&pairs("layer=abc&coef=9&pick=zzz&on=yes&text=&seed=-1&extra=1"));
        assert_eq!(s, Demo::default());
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["text", "layer", "coef", "pick", "on", "seed", "extra"]);
        assert_eq!(problems[1].why, "is not a whole number");
        assert_eq!(problems[2].why, "is outside -2 to 2");
        assert_eq!(problems[3].to_string(), "The link's “pick=zzz” is not one of a, b, so the lab uses “a”.");
        assert_eq!(problems[6].to_string(), "The link's “extra=1” is not a setting of this lab, so it was ignored.");
        assert_eq!(problems[0].to_string(), "The link's “text=” is empty, so the lab uses “hello”.");
    }

    #[test]
    fn an_optional_choice_is_absent_named_or_reported() {
        let options = [("a", 1), ("b", 2)];
        let read = |q: &str| {
            let pairs = pairs(q);
            let mut r = Reader::new(&pairs);
            let v = r.optional_choice("k", &options);
            (v, r.finish().iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        assert_eq!(read(""), (None, vec![]));
        assert_eq!(read("k=b"), (Some(2), vec![]));
        assert_eq!(
            read("k=c"),
            (None, vec!["The link's “k=c” is not one of a, b, so the lab uses its default.".into()])
        );
    }

    #[test]
    fn over_long_text_is_refused_and_shortened_in_the_message() {
        let long = "x".repeat(100);
        let (s, problems) = Demo::from_query(&pairs(&format!("text={long}")));
        assert_eq!(s.text, "hello");
        let msg = problems[0].to_string();
        assert!(msg.contains("is 100 characters long, more than the 20"), "{msg}");
        assert!(msg.contains(&format!("{}…", "x".repeat(40))), "{msg}");
    }

    #[test]
    fn tampered_escapes_do_not_panic() {
        for q in ["%", "text=%4", "text=%zz", "text=%FF", "=&&=x", "layer=%31"] {
            let (s, _) = Demo::from_query(&pairs(q));
            if q == "layer=%31" {
                assert_eq!(s.layer, 1);
            }
        }
        assert_eq!(pairs("text=%FF")[0].1, "\u{FFFD}");
    }

    #[test]
    fn the_newest_repeated_key_wins() {
        let (s, problems) = Demo::from_query(&pairs("layer=2&layer=3"));
        assert_eq!((s.layer, problems.len()), (3, 0));
    }
}
