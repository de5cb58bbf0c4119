//! Indirect object identification (IOI; Wang et al. 2023): "when mary and john went to the store , john gave
//! a bottle to" → "mary". Two names are introduced; one of them (the subject, S) comes back and gives something;
//! the answer is the other one, the indirect object (IO), the only name that appears once.
//!
//! This module is the task: the word lists (names, places, objects, giving verbs, name-free leading clauses),
//! the templates, both name orders (ABBA: IO first, BABA: S first), the prompts with the positions of their
//! names, the split of templates and name pairs into training and held-out, the training stories (IOI
//! sentences mixed with other sentences), the evaluation (accuracy and mean logit difference IO − S at the last
//! position), the ABC corruption and head patching over many prompts. The `ioi` model trains on it
//! (`train -- ioi`).
//!
//! Traps (see the induction model's): if the IO always sat at one position, a model could learn "copy the
//! token at position k" and form no circuit. So templates differ in length and shape, a random number of
//! name-free clauses comes first, the two orders are equally likely, and IOI sentences are mixed with sentences
//! that have one name, two names and no repeat, or a repeated name and no indirect object. The one general rule
//! left is "the name that appears once".
use serde::{Deserialize, Serialize};

use crate::lens::gpt2::vocab::{Vocab, BOS};
use crate::lens::methods::patching::{activation_patching, Direction, Metric, PatchInput, Target};
use crate::lens::rng::Rng;
use crate::lens::{LensError, Result, Transformer};

/// The chapter's example as a student types it (capitals, the comma against "store"). `Vocab::encode` and
/// `tokenizer.json` both read it as template 0 in the BABA order (the subject, John, first), Mary the answer.
pub const CHAPTER_PROMPT: &str = "When John and Mary went to the store, John gave a bottle to";
/// The chapter's sentence with both names replaced (the ABC corruption): the same words and positions, and no
/// clue to who gets the bottle. The 9.4 lab opens on it; the benches and the fixtures use it too.
pub const CHAPTER_CORRUPTED: &str = "When Alice and Bob went to the store, Alice gave a bottle to";

/// `CHAPTER_PROMPT` against `CHAPTER_CORRUPTED` on `vocab`: "mary" is the answer and "john" the wrong one.
pub fn chapter_input(vocab: &Vocab) -> Result<PatchInput> {
    let ids = |text: &str| match vocab.encode(text) {
        crate::lens::gpt2::vocab::Tokenized::Ok(ids) => Ok(ids),
        crate::lens::gpt2::vocab::Tokenized::Unknown(w) => {
            Err(LensError::Input(format!("the vocabulary lacks {}", w.join(", "))))
        }
    };
    let word = |w: &str| vocab.id(w).ok_or_else(|| LensError::Input(format!("the vocabulary lacks {w}")));
    Ok(PatchInput::new(ids(CHAPTER_PROMPT)?, ids(CHAPTER_CORRUPTED)?, word("mary")?, word("john")?))
}

/// One-token first names. Each also appears in training; it is the *pairs* that are held out.
pub const NAMES: &[&str] = &[
    "mary", "john", "alice", "bob", "tom", "anna", "james", "sarah", "david", "emma", "paul", "kate", "mark", "lucy",
    "peter", "jane", "chris", "amy", "dan", "laura", "sam", "rachel", "mike", "julia", "steve", "nina", "alex",
    "grace", "ben", "emily", "jack", "claire", "luke", "diana", "ryan", "helen", "adam", "olivia", "eric", "sophie",
    "kevin", "linda", "victor", "rose", "oscar", "ella", "henry", "maria", "simon", "clara", "frank", "ivy", "george",
    "hannah", "leo", "zoe", "hugo", "iris", "noah", "ruth",
];

pub const PLACES: &[&str] = &[
    "store",
    "park",
    "school",
    "house",
    "garden",
    "office",
    "beach",
    "station",
    "market",
    "library",
    "cafe",
    "hospital",
    "kitchen",
    "museum",
    "restaurant",
    "river",
    "farm",
    "church",
    "bank",
    "gym",
    "theater",
    "airport",
    "zoo",
    "bakery",
];

pub const OBJECTS: &[&str] = &[
    "bottle", "book", "ball", "cake", "letter", "key", "drink", "bone", "apple", "ring", "pen", "phone", "basket",
    "flower", "hat", "box", "gift", "card", "cup", "map", "ticket", "kite", "bag", "coin", "lamp", "candle",
];

/// Giving verbs: (past tense, base form).
pub const VERBS: &[(&str, &str)] = &[
    ("gave", "give"),
    ("handed", "hand"),
    ("passed", "pass"),
    ("sent", "send"),
    ("showed", "show"),
    ("threw", "throw"),
    ("brought", "bring"),
    ("sold", "sell"),
    ("lent", "lend"),
    ("offered", "offer"),
];

/// People named by a noun, for sentences where something goes to someone without a name.
pub const PEOPLE: &[&str] =
    &["teacher", "doctor", "child", "neighbor", "driver", "waiter", "baker", "farmer", "nurse", "clerk"];

/// Name-free clauses put before a sentence, 0 to `MAX_PREFIX` of them, so that the names sit at different
/// positions from prompt to prompt.
pub const PREFIXES: &[&str] = &[
    "it was a sunny day .",
    "it was a cold morning .",
    "the weather was warm .",
    "on monday ,",
    "on friday ,",
    "on a rainy afternoon ,",
    "last week ,",
    "early in the morning ,",
    "later that day ,",
    "the town was quiet .",
    "everyone was in a good mood .",
    "the sky was grey .",
    "it had rained all night .",
    "nothing much happened for a while .",
    "the streets were busy .",
    "a long week had just ended .",
    "in the spring ,",
    "one evening ,",
    "it was late .",
    "the sun was setting .",
    "the air smelled of bread .",
    "after a long day ,",
    "during the holidays ,",
    "it was almost noon .",
    "the wind was strong .",
    "a bird sang outside .",
    "the clock struck ten .",
    "summer had finally come .",
];

/// The most leading clauses a prompt gets.
pub const MAX_PREFIX: usize = 3;
/// The most clauses a training story gets between an IOI introduction and its ending.
pub const MAX_MIDDLE: usize = 2;

/// The introductions of IOI templates: `[A]` is the first name mentioned, `[B]` the second; `[PLACE]` and
/// `[OBJECT]` are filled from the lists. Their lengths and shapes differ (the names side by side or apart, early
/// or late), so the names do not sit at fixed positions. The split holds introductions out.
pub const INTROS: &[&str] = &[
    "when [A] and [B] went to the [PLACE] ,",
    "after [A] and [B] went to the [PLACE] ,",
    "then , [A] and [B] had a lot of fun at the [PLACE] .",
    "while [A] and [B] were working at the [PLACE] ,",
    "[A] and [B] went to the [PLACE] .",
    "[A] met [B] at the [PLACE] . later ,",
    "friends [A] and [B] found a [OBJECT] at the [PLACE] .",
    "[A] and [B] had a long argument . afterwards ,",
    "the [PLACE] was quiet when [A] and [B] arrived .",
    "[A] and [B] spent the day at the [PLACE] , and then",
    "once [A] and [B] got to the [PLACE] ,",
    "[A] was at the [PLACE] with [B] .",
    "at the [PLACE] , [A] talked with [B] for an hour . then",
    "[A] and [B] walked to the [PLACE] together . there ,",
    "since [A] and [B] were hungry at the [PLACE] ,",
    "[A] and [B] were cleaning the [PLACE] .",
    "[A] saw [B] near the [PLACE] , so",
    "[A] and [B] had fun at the [PLACE] . the next day ,",
    "on the way to the [PLACE] , [A] and [B] stopped .",
    "[A] invited [B] to the [PLACE] , where",
    "[A] and [B] both loved the [PLACE] .",
    "when [A] and [B] got home from the [PLACE] ,",
    "[A] and [B] were at the [PLACE] all day . in the evening ,",
    "after the [PLACE] closed , [A] and [B] sat down .",
    "[A] called [B] from the [PLACE] .",
    "[A] waited for [B] at the [PLACE] .",
    "it was [A] who met [B] at the [PLACE] .",
    "[A] , like [B] , worked at the [PLACE] .",
    "the [PLACE] was where [A] first met [B] . today ,",
    "[A] was happy to see [B] at the [PLACE] .",
    "[A] helped [B] at the [PLACE] all morning . then",
    "both [A] and [B] were late for the [PLACE] .",
    "[A] and [B] met at the [PLACE] .",
    "[A] went to the [PLACE] with [B] .",
    "[A] and [B] had lunch at the [PLACE] . after lunch ,",
    "yesterday , [A] and [B] went to the [PLACE] .",
    "[A] and [B] were talking at the [PLACE] . then",
    "[A] visited [B] at the [PLACE] .",
    "when [A] met [B] at the [PLACE] ,",
    "[A] and [B] went shopping at the [PLACE] .",
    "[A] and [B] were sitting in the [PLACE] . suddenly ,",
    "after [A] talked to [B] at the [PLACE] ,",
    "[A] and [B] stayed at the [PLACE] for a week .",
    "[A] drove [B] to the [PLACE] .",
    "as [A] and [B] left the [PLACE] ,",
    "[A] and [B] played at the [PLACE] all afternoon .",
    "[A] sat next to [B] at the [PLACE] .",
    "at the [PLACE] , [A] and [B] were very busy . so",
    "[A] found [B] at the [PLACE] .",
    "[A] and [B] were friends who loved the [PLACE] .",
    "in the [PLACE] , [A] asked [B] for help . then",
    "[A] and [B] cooked dinner at the [PLACE] .",
    "before [A] and [B] left the [PLACE] ,",
    "[A] ran into [B] at the [PLACE] .",
    "[A] and [B] opened the [PLACE] early .",
    "[A] followed [B] into the [PLACE] .",
    "when [A] and [B] were at the [PLACE] ,",
    "[A] and [B] went to the [PLACE] to buy a [OBJECT] .",
    "[A] and [B] cleaned the [PLACE] together . afterwards ,",
    "[A] was reading at the [PLACE] when [B] came in .",
    "[A] and [B] looked for a [OBJECT] at the [PLACE] .",
    "[A] and [B] got lost near the [PLACE] .",
    "the [PLACE] was busy , but [A] and [B] found a table .",
    "[A] and [B] were very happy at the [PLACE] . later ,",
];

/// The endings of IOI templates: `[S]` is the subject's second mention; `[OBJECT]`, `[GAVE]` (past) and `[GIVE]`
/// (base form) are filled from the lists. Each stops just before the answer.
pub const ACTIONS: &[&str] = &[
    "[S] [GAVE] a [OBJECT] to",
    "[S] [GAVE] the [OBJECT] to",
    "[S] wanted to [GIVE] a [OBJECT] to",
    "[S] decided to [GIVE] the [OBJECT] to",
    "[S] quickly [GAVE] a [OBJECT] to",
    "[S] found a [OBJECT] and [GAVE] it to",
    "[S] [GAVE] a [OBJECT] back to",
    "[S] had a [OBJECT] and [GAVE] it to",
];

/// The number of templates: every introduction with every ending.
pub const TEMPLATE_COUNT: usize = INTROS.len() * ACTIONS.len();

/// Template `t` (in `0..TEMPLATE_COUNT`): introduction `t / ACTIONS.len()` then ending `t % ACTIONS.len()`.
pub fn template(t: usize) -> String {
    format!("{} {}", INTROS[t / ACTIONS.len()], ACTIONS[t % ACTIONS.len()])
}

/// Other sentences mixed into training, so that names, "to" and the templates' words do not always mean IOI.
/// `[A]` and `[B]` are two different names; none of these has an indirect object to find.
pub const OTHER_SENTENCES: &[&str] = &[
    "[A] went to the [PLACE] and bought a [OBJECT] .",
    "[A] [GAVE] a [OBJECT] to the [PERSON] .",
    "[A] [GAVE] a [OBJECT] to [B] .",
    "the [PERSON] [GAVE] a [OBJECT] to [A] .",
    "[A] and [B] went to the [PLACE] .",
    "[A] and [B] went to the [PLACE] , and [A] bought a [OBJECT] .",
    "[A] and [B] went to the [PLACE] , and [B] bought a [OBJECT] .",
    "[A] was tired , so [A] stayed at the [PLACE] .",
    "[A] told [B] about the [OBJECT] .",
    "[A] went to the [PLACE] . [A] [GAVE] a [OBJECT] to the [PERSON] .",
    "[A] and the [PERSON] had fun at the [PLACE] .",
    "the [PERSON] found a [OBJECT] at the [PLACE] .",
];

/// Which name comes first in the template's introduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Order {
    /// The indirect object first: "A and B …, B gave … to A".
    Abba,
    /// The subject first: "B and A …, B gave … to A".
    Baba,
}

impl Order {
    pub const ALL: [Order; 2] = [Order::Abba, Order::Baba];

    pub fn name(self) -> &'static str {
        match self {
            Order::Abba => "ABBA",
            Order::Baba => "BABA",
        }
    }
}

/// Training or held-out: templates and name pairs are each split in two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Part {
    Train,
    HeldOut,
}

/// Every `HELD_OUT_INTRO_EVERY`th introduction (from the `HELD_OUT_INTRO_EVERY - 1`th) is held out, with every
/// ending: a held-out template starts in a way the model never saw.
pub const HELD_OUT_INTRO_EVERY: usize = 4;
/// About one unordered name pair in `HELD_OUT_PAIR_ONE_IN` is held out (a fixed hash of the pair).
pub const HELD_OUT_PAIR_ONE_IN: u64 = 5;

/// The part template `t` (see `template`) belongs to: its introduction's.
pub fn template_part(t: usize) -> Part {
    if (t / ACTIONS.len()) % HELD_OUT_INTRO_EVERY == HELD_OUT_INTRO_EVERY - 1 {
        Part::HeldOut
    } else {
        Part::Train
    }
}

/// The part the unordered pair of names `a`, `b` (indices into `NAMES`) belongs to. Fixed by a hash of the
/// pair, so it does not depend on any seed.
pub fn pair_part(a: usize, b: usize) -> Part {
    let (lo, hi) = (a.min(b) as u64, a.max(b) as u64);
    if Rng::new(0x10_1000 + lo * 1000 + hi).next_u64().is_multiple_of(HELD_OUT_PAIR_ONE_IN) {
        Part::HeldOut
    } else {
        Part::Train
    }
}

/// The templates of one part.
pub fn templates(part: Part) -> Vec<usize> {
    (0..TEMPLATE_COUNT).filter(|&t| template_part(t) == part).collect()
}

/// The unordered name pairs `(a, b)`, `a < b`, of one part.
pub fn name_pairs(part: Part) -> Vec<(usize, usize)> {
    let n = NAMES.len();
    (0..n).flat_map(|a| (a + 1..n).map(move |b| (a, b))).filter(|&(a, b)| pair_part(a, b) == part).collect()
}

/// The model's vocabulary: `<bos>` (id 0), then every word of the lists and templates in order of first
/// appearance. Lower case, punctuation as its own word, so `Vocab::encode` reads a prompt typed with spaces.
pub fn vocab() -> Vocab {
    let mut words: Vec<&str> = vec![BOS];
    let mut add = |w: &'static str| {
        let slot = w.starts_with('[') && w.ends_with(']');
        if !slot && !words.contains(&w) {
            words.push(w);
        }
    };
    NAMES.iter().for_each(|&w| add(w));
    PLACES.iter().for_each(|&w| add(w));
    OBJECTS.iter().for_each(|&w| add(w));
    VERBS.iter().for_each(|&(past, base)| {
        add(past);
        add(base);
    });
    PEOPLE.iter().for_each(|&w| add(w));
    for text in
        INTROS.iter().chain(ACTIONS).chain(THREE_INTROS).chain(THREE_ACTIONS).chain(OTHER_SENTENCES).chain(PREFIXES)
    {
        text.split_whitespace().for_each(&mut add);
    }
    let map: serde_json::Map<String, serde_json::Value> =
        words.iter().enumerate().map(|(i, w)| (w.to_string(), serde_json::Value::from(i))).collect();
    Vocab::from_json(&serde_json::Value::Object(map).to_string()).expect("the IOI word list is a valid vocabulary")
}

/// What fills a template: indices into the word lists and the leading clauses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    /// The template (see `template`).
    pub template: usize,
    pub order: Order,
    /// Indices into `NAMES`.
    pub io: usize,
    pub s: usize,
    pub place: usize,
    pub object: usize,
    pub verb: usize,
    /// Indices into `PREFIXES`, in order: the leading clauses.
    pub prefix: Vec<usize>,
    /// Indices into `PREFIXES`: clauses between the introduction and the ending, which move the names away
    /// from the answer (none in the standard prompts).
    #[serde(default)]
    pub middle: Vec<usize>,
}

impl Fill {
    /// A random fill from one part: a template of `template_part`, a name pair of `pair_part`, either order,
    /// and `prefix` leading clauses (random between 0 and `MAX_PREFIX` when None).
    pub fn sample(rng: &mut Rng, template_part: Part, pair_part: Part, prefix: Option<usize>) -> Fill {
        let ts = templates(template_part);
        let template = ts[rng.range(0, ts.len() - 1)];
        let (io, s) = sample_pair(rng, pair_part);
        let order = if rng.uniform() < 0.5 { Order::Abba } else { Order::Baba };
        let n_prefix = prefix.unwrap_or_else(|| rng.range(0, MAX_PREFIX));
        Fill {
            template,
            order,
            io,
            s,
            place: rng.range(0, PLACES.len() - 1),
            object: rng.range(0, OBJECTS.len() - 1),
            verb: rng.range(0, VERBS.len() - 1),
            prefix: (0..n_prefix).map(|_| rng.range(0, PREFIXES.len() - 1)).collect(),
            middle: vec![],
        }
    }

    /// The same fill with `k` random clauses between the introduction and the ending.
    pub fn with_middle(mut self, rng: &mut Rng, k: usize) -> Fill {
        self.middle = (0..k).map(|_| rng.range(0, PREFIXES.len() - 1)).collect();
        self
    }

    /// The prompt's words, without `<bos>`, ending just before the answer.
    pub fn words(&self) -> Vec<&'static str> {
        let (first, second) = match self.order {
            Order::Abba => (self.io, self.s),
            Order::Baba => (self.s, self.io),
        };
        let mut out: Vec<&'static str> = self.prefix.iter().flat_map(|&p| PREFIXES[p].split_whitespace()).collect();
        let (intro, action) = (INTROS[self.template / ACTIONS.len()], ACTIONS[self.template % ACTIONS.len()]);
        let middle = self.middle.iter().flat_map(|&p| PREFIXES[p].split_whitespace());
        for w in intro.split_whitespace().chain(middle).chain(action.split_whitespace()) {
            out.push(match w {
                "[A]" => NAMES[first],
                "[B]" => NAMES[second],
                "[S]" => NAMES[self.s],
                "[PLACE]" => PLACES[self.place],
                "[OBJECT]" => OBJECTS[self.object],
                "[GAVE]" => VERBS[self.verb].0,
                "[GIVE]" => VERBS[self.verb].1,
                w => w,
            });
        }
        out
    }

    /// The tokenised prompt with its answer and the positions of its names.
    pub fn prompt(&self, vocab: &Vocab) -> IoiPrompt {
        let words = self.words();
        let id = |w: &str| vocab.id(w).unwrap_or_else(|| panic!("`{w}` is in the IOI vocabulary"));
        let mut tokens = vec![0u32];
        tokens.extend(words.iter().map(|w| id(w)));
        let (io, s) = (id(NAMES[self.io]), id(NAMES[self.s]));
        let at = |t: u32| (0..tokens.len()).filter(|&i| tokens[i] == t).collect::<Vec<_>>();
        let (io_at, s_at) = (at(io), at(s));
        IoiPrompt {
            text: words.join(" "),
            io,
            s,
            io_pos: io_at[0],
            s1_pos: s_at[0],
            s2_pos: s_at[1],
            prefix_tokens: self.prefix.iter().map(|&p| PREFIXES[p].split_whitespace().count()).sum(),
            fill: self.clone(),
            tokens,
        }
    }
}

/// A random unordered pair of different names from one part, in a random order: (io, s).
fn sample_pair(rng: &mut Rng, part: Part) -> (usize, usize) {
    loop {
        let a = rng.range(0, NAMES.len() - 1);
        let b = rng.range(0, NAMES.len() - 1);
        if a != b && pair_part(a, b) == part {
            return (a, b);
        }
    }
}

/// One IOI prompt, tokenised, ending just before the answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IoiPrompt {
    /// `<bos>` then the words.
    pub tokens: Vec<u32>,
    /// The words, space-separated (no `<bos>`).
    pub text: String,
    /// The indirect object's token (the answer) and the subject's.
    pub io: u32,
    pub s: u32,
    /// Positions in `tokens`: the IO's one mention, the subject's first and second mentions.
    pub io_pos: usize,
    pub s1_pos: usize,
    pub s2_pos: usize,
    /// The number of tokens of leading clauses (after `<bos>`).
    pub prefix_tokens: usize,
    pub fill: Fill,
}

impl IoiPrompt {
    /// The last position, where the answer is predicted.
    pub fn end(&self) -> usize {
        self.tokens.len() - 1
    }

    /// The same prompt with both names replaced by two other names (the ABC corruption: "when C and D …, D gave
    /// … to"): the same words and positions, but no clue to the clean answer. The new names are drawn with `rng`.
    pub fn abc_corrupted(&self, vocab: &Vocab, rng: &mut Rng) -> IoiPrompt {
        let (io, s) = loop {
            let c = rng.range(0, NAMES.len() - 1);
            let d = rng.range(0, NAMES.len() - 1);
            let old = [self.fill.io, self.fill.s];
            if c != d && !old.contains(&c) && !old.contains(&d) {
                break (c, d);
            }
        };
        Fill { io, s, ..self.fill.clone() }.prompt(vocab)
    }

    /// Clean = this prompt, corrupted = its ABC corruption; the answer is the IO, the wrong token the subject.
    pub fn abc_patch_input(&self, vocab: &Vocab, rng: &mut Rng) -> PatchInput {
        PatchInput::new(self.tokens.clone(), self.abc_corrupted(vocab, rng).tokens, self.io, self.s)
    }
}

/// `n` prompts from one part of templates and name pairs, from a fixed `seed`, with random leading clauses.
pub fn prompts(vocab: &Vocab, templates: Part, pairs: Part, n: usize, seed: u64) -> Vec<IoiPrompt> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| Fill::sample(&mut rng, templates, pairs, None).prompt(vocab)).collect()
}

/// The same as `prompts` with exactly `prefix` leading clauses each (random when None) and `middle` clauses
/// between the introduction and the ending.
pub fn prompts_with(
    vocab: &Vocab,
    templates: Part,
    pairs: Part,
    n: usize,
    seed: u64,
    prefix: Option<usize>,
    middle: usize,
) -> Vec<IoiPrompt> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| Fill::sample(&mut rng, templates, pairs, prefix).with_middle(&mut rng, middle).prompt(vocab))
        .collect()
}

/// A training story: name-free leading clauses, then an IOI sentence with its answer or another sentence,
/// ending with ".".
#[derive(Clone, Debug, PartialEq)]
pub struct Story {
    pub tokens: Vec<u32>,
    /// The answer's position in `tokens`, for an IOI sentence (None for the others).
    pub answer: Option<usize>,
    /// The other names of an IOI sentence (the repeated ones), each once.
    pub distractors: Vec<u32>,
}

/// The mix of training stories.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mix {
    /// The share of IOI sentences; the others are `OTHER_SENTENCES`.
    pub p_ioi: f32,
    /// Among IOI sentences, the share with three names (`THREE_INTROS`): two of them come back, the answer is
    /// the third. There the most recent name is not the only repeated one, so "avoid the last name" fails and
    /// only "the name that appears once" works.
    pub p_three: f32,
    /// The share of IOI sentences with 1 to `MAX_MIDDLE` name-free clauses between the introduction and the
    /// ending, so that the distance from the names to the answer varies within a template too.
    pub p_middle: f32,
}

/// Introductions of three-name IOI sentences (training only): `[A]`, `[B]`, `[C]` in a random order.
pub const THREE_INTROS: &[&str] = &[
    "[A] , [B] and [C] went to the [PLACE] .",
    "when [A] , [B] and [C] got to the [PLACE] ,",
    "[A] met [B] and [C] at the [PLACE] .",
    "at the [PLACE] , [A] , [B] and [C] had fun .",
    "[A] , [B] and [C] were working at the [PLACE] . later ,",
    "after [A] , [B] and [C] left the [PLACE] ,",
];

/// Endings of three-name IOI sentences: `[S]` and `[T]` are the two names that come back.
pub const THREE_ACTIONS: &[&str] = &[
    "[S] and [T] [GAVE] a [OBJECT] to",
    "[S] and [T] decided to [GIVE] the [OBJECT] to",
    "then [S] and [T] [GAVE] a [OBJECT] to",
];

/// Random words for the list slots of `text`, and `names` for its name slots, as tokens appended to `tokens`.
fn fill_text(vocab: &Vocab, rng: &mut Rng, text: &str, names: &[(&str, usize)], tokens: &mut Vec<u32>) {
    let id = |w: &str| vocab.id(w).unwrap_or_else(|| panic!("`{w}` is in the IOI vocabulary"));
    let (place, object) = (rng.range(0, PLACES.len() - 1), rng.range(0, OBJECTS.len() - 1));
    let (verb, person) = (rng.range(0, VERBS.len() - 1), rng.range(0, PEOPLE.len() - 1));
    for w in text.split_whitespace() {
        let word = match w {
            "[PLACE]" => PLACES[place],
            "[OBJECT]" => OBJECTS[object],
            "[GAVE]" => VERBS[verb].0,
            "[GIVE]" => VERBS[verb].1,
            "[PERSON]" => PEOPLE[person],
            w => names.iter().find(|(slot, _)| *slot == w).map(|&(_, n)| NAMES[n]).unwrap_or(w),
        };
        tokens.push(id(word));
    }
}

/// `<bos>` and 0 to `MAX_PREFIX` random leading clauses.
fn random_prefix(vocab: &Vocab, rng: &mut Rng) -> Vec<u32> {
    let mut tokens = vec![0u32];
    for _ in 0..rng.range(0, MAX_PREFIX) {
        let clause = PREFIXES[rng.range(0, PREFIXES.len() - 1)];
        fill_text(vocab, rng, clause, &[], &mut tokens);
    }
    tokens
}

/// A random training story from training templates and training name pairs (every pair of names in it is a
/// training pair): an IOI sentence with probability `mix.p_ioi` (with three names with probability
/// `mix.p_three`), else one of `OTHER_SENTENCES`.
pub fn training_story(vocab: &Vocab, rng: &mut Rng, mix: Mix) -> Story {
    let dot = vocab.id(".").expect("`.` is in the IOI vocabulary");
    if rng.uniform() < mix.p_ioi && rng.uniform() >= mix.p_three {
        let mut fill = Fill::sample(rng, Part::Train, Part::Train, None);
        if rng.uniform() < mix.p_middle {
            let k = rng.range(1, MAX_MIDDLE);
            fill = fill.with_middle(rng, k);
        }
        let p = fill.prompt(vocab);
        let mut tokens = p.tokens;
        tokens.extend([p.io, dot]);
        return Story { answer: Some(tokens.len() - 2), tokens, distractors: vec![p.s] };
    }
    let mut tokens = random_prefix(vocab, rng);
    if rng.uniform() < mix.p_ioi {
        // Three names, pairwise from training pairs; the intro names them in a random order.
        let (a, b) = sample_pair(rng, Part::Train);
        let c = loop {
            let c = rng.range(0, NAMES.len() - 1);
            if c != a && c != b && pair_part(a, c) == Part::Train && pair_part(b, c) == Part::Train {
                break c;
            }
        };
        let mut order = [a, b, c];
        for i in (1..3).rev() {
            order.swap(i, rng.range(0, i));
        }
        let answer = order[rng.range(0, 2)];
        let mut back: Vec<usize> = order.iter().copied().filter(|&n| n != answer).collect();
        if rng.uniform() < 0.5 {
            back.reverse();
        }
        let names = [("[A]", order[0]), ("[B]", order[1]), ("[C]", order[2]), ("[S]", back[0]), ("[T]", back[1])];
        let (intro, action) =
            (THREE_INTROS[rng.range(0, THREE_INTROS.len() - 1)], THREE_ACTIONS[rng.range(0, THREE_ACTIONS.len() - 1)]);
        fill_text(vocab, rng, intro, &names, &mut tokens);
        if rng.uniform() < mix.p_middle {
            for _ in 0..rng.range(1, MAX_MIDDLE) {
                let clause = PREFIXES[rng.range(0, PREFIXES.len() - 1)];
                fill_text(vocab, rng, clause, &[], &mut tokens);
            }
        }
        fill_text(vocab, rng, action, &names, &mut tokens);
        let id = |n: usize| vocab.id(NAMES[n]).expect("names are in the IOI vocabulary");
        tokens.extend([id(answer), dot]);
        return Story { answer: Some(tokens.len() - 2), tokens, distractors: back.into_iter().map(id).collect() };
    }
    let (a, b) = sample_pair(rng, Part::Train);
    let text = OTHER_SENTENCES[rng.range(0, OTHER_SENTENCES.len() - 1)];
    fill_text(vocab, rng, text, &[("[A]", a), ("[B]", b)], &mut tokens);
    Story { tokens, answer: None, distractors: vec![] }
}

/// What the evaluation measures at the last position of each prompt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IoiMetrics {
    pub prompts: usize,
    /// The share of prompts where logit(IO) > logit(S).
    pub accuracy: f32,
    /// Mean of logit(IO) − logit(S).
    pub logit_diff: f32,
    /// The share of prompts where the IO is the top prediction of the whole vocabulary.
    pub top1: f32,
    /// Mean probability of the IO.
    pub io_prob: f32,
}

/// Runs each prompt and compares the IO's logit with the subject's at the last position.
pub fn evaluate(model: &Transformer, prompts: &[IoiPrompt]) -> Result<IoiMetrics> {
    if prompts.is_empty() {
        return Err(LensError::Input("no IOI prompts to evaluate".into()));
    }
    let mut m = IoiMetrics { prompts: prompts.len(), ..Default::default() };
    for p in prompts {
        let logits = model.logits(&p.tokens)?; // [1, pos, vocab]
        let last: Vec<f32> = logits.get(0)?.get(p.end())?.to_vec1()?;
        let diff = last[p.io as usize] - last[p.s as usize];
        let max = last.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let z: f32 = last.iter().map(|&v| (v - max).exp()).sum();
        m.accuracy += (diff > 0.0) as u8 as f32;
        m.logit_diff += diff;
        m.top1 += (last[p.io as usize] >= max) as u8 as f32;
        m.io_prob += (last[p.io as usize] - max).exp() / z;
    }
    let n = prompts.len() as f32;
    m.accuracy /= n;
    m.logit_diff /= n;
    m.top1 /= n;
    m.io_prob /= n;
    Ok(m)
}

/// `evaluate` on IOI stories (see `training_story`), cut just before their answer: the answer's logit against
/// the largest of its distractors'. Stories without an answer are skipped.
pub fn evaluate_stories(model: &Transformer, stories: &[Story]) -> Result<IoiMetrics> {
    let mut m = IoiMetrics::default();
    for s in stories {
        let Some(a) = s.answer else { continue };
        let logits = model.logits(&s.tokens[..a])?; // [1, pos, vocab]
        let last: Vec<f32> = logits.get(0)?.get(a - 1)?.to_vec1()?;
        let answer = last[s.tokens[a] as usize];
        let wrong = s.distractors.iter().map(|&d| last[d as usize]).fold(f32::NEG_INFINITY, f32::max);
        let max = last.iter().fold(f32::NEG_INFINITY, |x, &y| x.max(y));
        let z: f32 = last.iter().map(|&v| (v - max).exp()).sum();
        m.prompts += 1;
        m.accuracy += (answer > wrong) as u8 as f32;
        m.logit_diff += answer - wrong;
        m.top1 += (answer >= max) as u8 as f32;
        m.io_prob += (answer - max).exp() / z;
    }
    if m.prompts == 0 {
        return Err(LensError::Input("no IOI stories to evaluate".into()));
    }
    let n = m.prompts as f32;
    m.accuracy /= n;
    m.logit_diff /= n;
    m.top1 /= n;
    m.io_prob /= n;
    Ok(m)
}

/// Head patching (`Target::HeadOut`, denoising, the normalised logit difference) averaged over prompts, each
/// against its ABC corruption: `[layer][head]`, 1 = the head alone restores the clean logit difference.
/// Prompts whose corruption leaves the logit difference unchanged are skipped.
pub fn mean_head_patching(
    model: &Transformer,
    vocab: &Vocab,
    prompts: &[IoiPrompt],
    seed: u64,
) -> Result<Vec<Vec<f32>>> {
    let mut rng = Rng::new(seed);
    let (l, h) = (model.cfg.n_layer, model.cfg.n_head);
    let mut sum = vec![vec![0.0f32; h]; l];
    let mut n = 0;
    for p in prompts {
        let input = p.abc_patch_input(vocab, &mut rng);
        let result = activation_patching(model, &input, Target::HeadOut, Direction::Denoising)?;
        let Ok(grid) = result.grid(Metric::LogitDiff) else { continue };
        for (row, vals) in sum.iter_mut().zip(grid.rows()) {
            row.iter_mut().zip(vals).for_each(|(s, v)| *s += v);
        }
        n += 1;
    }
    if n == 0 {
        return Err(LensError::Input("no prompt's corruption changed the logit difference".into()));
    }
    Ok(sum.into_iter().map(|row| row.into_iter().map(|s| s / n as f32).collect()).collect())
}

/// (layer, head, value) of every head, the largest value first.
pub fn ranked_heads(grid: &[Vec<f32>]) -> Vec<(usize, usize, f32)> {
    let mut all: Vec<(usize, usize, f32)> =
        grid.iter().enumerate().flat_map(|(l, row)| row.iter().enumerate().map(move |(h, &v)| (l, h, v))).collect();
    all.sort_by(|a, b| b.2.total_cmp(&a.2));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(template: usize, order: Order, prefix: Vec<usize>) -> Fill {
        // io = mary (0), s = john (1), store, bottle, gave.
        Fill { template, order, io: 0, s: 1, place: 0, object: 0, verb: 0, prefix, middle: vec![] }
    }

    #[test]
    fn abba_and_baba_put_the_names_where_expected() {
        let v = vocab();
        let abba = fill(0, Order::Abba, vec![]).prompt(&v);
        assert_eq!(abba.text, "when mary and john went to the store , john gave a bottle to");
        assert_eq!((abba.io_pos, abba.s1_pos, abba.s2_pos), (2, 4, 10));
        assert_eq!(v.word(abba.io), "mary");
        assert_eq!(v.word(abba.s), "john");
        assert_eq!(v.word(abba.tokens[abba.end()]), "to");
        assert_eq!(abba.tokens[0], 0);
        let baba = fill(0, Order::Baba, vec![]).prompt(&v);
        assert_eq!(baba.text, "when john and mary went to the store , john gave a bottle to");
        assert_eq!((baba.io_pos, baba.s1_pos, baba.s2_pos), (4, 2, 10));
        // A leading clause shifts every position by its length.
        let shifted = fill(0, Order::Abba, vec![3]).prompt(&v); // "on monday ,"
        assert_eq!(shifted.prefix_tokens, 3);
        assert_eq!((shifted.io_pos, shifted.s1_pos, shifted.s2_pos), (5, 7, 13));
        assert!(shifted.text.starts_with("on monday , when mary"));
        // Middle clauses move the subject's second mention and the end, not the introduction.
        let mut middle = fill(0, Order::Abba, vec![3]);
        middle.middle = vec![0]; // "it was a sunny day ."
        let middle = middle.prompt(&v);
        assert_eq!((middle.io_pos, middle.s1_pos, middle.s2_pos), (5, 7, 19));
        assert!(middle.text.contains("store , it was a sunny day . john gave"));
        // The base form of the verb.
        assert_eq!(
            fill(2 * ACTIONS.len() + 2, Order::Baba, vec![]).prompt(&v).text,
            "then , john and mary had a lot of fun at the store . john wanted to give a bottle to"
        );
    }

    #[test]
    fn every_template_gives_one_io_and_two_subject_mentions() {
        let v = vocab();
        let mut rng = Rng::new(5);
        for t in 0..TEMPLATE_COUNT {
            for order in Order::ALL {
                let mut f = Fill::sample(&mut rng, Part::Train, Part::Train, None);
                f.template = t;
                f.order = order;
                let p = f.prompt(&v);
                assert_eq!(p.tokens.iter().filter(|&&x| x == p.io).count(), 1, "{}", p.text);
                assert_eq!(p.tokens.iter().filter(|&&x| x == p.s).count(), 2, "{}", p.text);
                assert_eq!(p.tokens[p.io_pos], p.io);
                assert_eq!((p.tokens[p.s1_pos], p.tokens[p.s2_pos]), (p.s, p.s));
                assert!(p.s1_pos < p.s2_pos && p.io_pos < p.s2_pos);
                assert_eq!(p.io_pos < p.s1_pos, order == Order::Abba, "{}", p.text);
                assert_eq!(v.word(*p.tokens.last().unwrap()), "to");
                assert!(p.tokens.len() + 2 <= 64, "{} tokens", p.tokens.len());
                let long = f.clone().with_middle(&mut rng, MAX_MIDDLE).prompt(&v);
                assert!(long.tokens.len() + 2 <= 64, "{} tokens", long.tokens.len());
                // Vocab::encode reads the text back to the same tokens.
                assert_eq!(v.encode(&p.text), crate::lens::gpt2::vocab::Tokenized::Ok(p.tokens.clone()));
            }
        }
    }

    #[test]
    fn the_split_is_disjoint_and_covers_everything() {
        let (train_t, held_t) = (templates(Part::Train), templates(Part::HeldOut));
        assert_eq!(train_t.len() + held_t.len(), TEMPLATE_COUNT);
        assert!(held_t.len() >= 5 && train_t.iter().all(|t| !held_t.contains(t)));
        let (train_p, held_p) = (name_pairs(Part::Train), name_pairs(Part::HeldOut));
        let n = NAMES.len();
        assert_eq!(train_p.len() + held_p.len(), n * (n - 1) / 2);
        assert!(held_p.len() > n * (n - 1) / 2 / 8, "{} held-out pairs", held_p.len());
        assert!(train_p.iter().all(|p| !held_p.contains(p)));
        // The pair's part does not depend on the order of its names.
        assert!((0..n).all(|a| (0..n).all(|b| pair_part(a, b) == pair_part(b, a))));
        // Every name is in some training pair, so it has been seen in training.
        assert!((0..n).all(|a| train_p.iter().any(|&(x, y)| x == a || y == a)));
        // Sampled prompts come from their part.
        let v = vocab();
        for p in prompts(&v, Part::HeldOut, Part::HeldOut, 200, 1) {
            assert_eq!(template_part(p.fill.template), Part::HeldOut);
            assert_eq!(pair_part(p.fill.io, p.fill.s), Part::HeldOut);
        }
        let mut rng = Rng::new(2);
        for _ in 0..500 {
            let s = training_story(&v, &mut rng, Mix { p_ioi: 0.6, p_three: 0.3, p_middle: 0.5 });
            let mut distinct: Vec<usize> =
                s.tokens.iter().filter_map(|&t| NAMES.iter().position(|&n| n == v.word(t))).collect();
            distinct.sort();
            distinct.dedup();
            assert!(distinct.len() <= 3);
            for (i, &a) in distinct.iter().enumerate() {
                assert!(distinct[i + 1..].iter().all(|&b| pair_part(a, b) == Part::Train));
            }
            if let Some(a) = s.answer {
                // The answer is the one name that appears once before it; the distractors appear twice.
                let count = |t: u32| s.tokens[..a].iter().filter(|&&x| x == t).count();
                assert_eq!(count(s.tokens[a]), 1);
                assert!(!s.distractors.is_empty() && s.distractors.iter().all(|&d| count(d) == 2));
                assert_eq!(distinct.len(), s.distractors.len() + 1);
                assert_eq!(v.word(s.tokens[a - 1]), "to");
                assert_eq!(v.word(s.tokens[a + 1]), ".");
                assert_eq!(a + 2, s.tokens.len());
            }
        }
    }

    #[test]
    fn abc_corruption_changes_only_the_names() {
        let v = vocab();
        let p = fill(4, Order::Baba, vec![1, 2]).prompt(&v);
        let c = p.abc_corrupted(&v, &mut Rng::new(3));
        assert_eq!(c.tokens.len(), p.tokens.len());
        let changed: Vec<usize> = (0..p.tokens.len()).filter(|&i| p.tokens[i] != c.tokens[i]).collect();
        let mut names = vec![p.s1_pos, p.io_pos, p.s2_pos];
        names.sort();
        assert_eq!(changed, names);
        assert!(!c.tokens.contains(&p.io) && !c.tokens.contains(&p.s));
        let input = p.abc_patch_input(&v, &mut Rng::new(3));
        assert_eq!((input.answer, input.wrong), (p.io, p.s));
    }

    #[test]
    fn the_chapter_prompt_reads_as_template_0() {
        let v = vocab();
        let p = fill(0, Order::Baba, vec![]).prompt(&v);
        assert_eq!(v.encode(CHAPTER_PROMPT), crate::lens::gpt2::vocab::Tokenized::Ok(p.tokens.clone()));
        assert_eq!((v.word(p.io), v.word(p.s)), ("mary", "john"));
        // Every word of the vocabulary is one piece for the pre-tokenizer, so it can be typed.
        for i in 1..v.len() as u32 {
            assert_eq!(crate::lens::gpt2::vocab::split_words(v.word(i)), [v.word(i)]);
        }
    }

    #[test]
    fn vocabulary_and_tokenizer_agree() {
        let v = vocab();
        assert!(v.len() > 200 && v.len() < 400, "{}", v.len());
        assert_eq!(v.word(0), BOS);
        let t = crate::lens::gpt2::hf::word_tokenizer_json(&v);
        let ids = t["model"]["vocab"].as_object().unwrap();
        assert_eq!(ids.len(), v.len());
        for (w, id) in ids {
            assert_eq!(v.id(w), Some(id.as_u64().unwrap() as u32));
        }
        assert_eq!(t["model"]["type"], "WordLevel");
        assert_eq!(t["normalizer"]["type"], "Lowercase");
        assert_eq!(t["pre_tokenizer"]["type"], "Whitespace");
    }
}
