//! Opening your own model (issue #14, first slice): a GPT-2-family folder picked or dropped in the page is
//! sorted, checked and read into the engine without leaving the browser, and one forward pass with every
//! activation recorded proves it runs. The plain part: the page's text, the tokenizer's size as its files
//! state it, and the summary shown once the model is in. The reading itself is `lens::gpt2::open`.
use serde_json::Value;

#[cfg(target_arch = "wasm32")]
pub mod view;

/// The text beside the lab, in our own words.
pub const PAGE_HTML: &str = r##"<h1>Open your own model</h1>
<p>Every lab in this playground runs a small model we trained and shipped with the page (the
<a href="#/attention">attention lab</a>'s induction model, for one). This page opens one you bring instead: any model in the layout of GPT-2 as the Hugging Face <code>transformers</code> library saves
it.</p>
<h2>What to pick</h2>
<ul>
<li><code>config.json</code>: the model's shape (layers, heads, width, vocabulary, context);</li>
<li><code>model.safetensors</code>: the weights, in f32, f16 or bf16, up to 1 GB (GPT-2 small in f32 is 0.5 GB);</li>
<li>the tokenizer: <code>tokenizer.json</code>, or GPT-2's own pair <code>vocab.json</code> and <code>merges.txt</code>.</li>
</ul>
<p>Pick the whole folder, or the files together, or drop them on the lab. Other files in the folder are listed
and left alone.</p>
<h2>What happens to the files</h2>
<p>Nothing is uploaded. The page reads the files in this tab, a few megabytes at a time, checks them and builds
the model in memory. Closing the tab forgets it. The page works the same with the network cut.</p>
<h2>What is checked</h2>
<p>Before any weight is read: that the config describes a GPT-2 model the engine can run, that the weights file
holds every tensor that config needs with the right shape, and that the tokenizer has no more tokens than the
model's vocabulary. While reading: that no weight is NaN or infinite. Each refusal names the file and says what
to do.</p>
<h2>Where a folder comes from</h2>
<p>In Python, <code>model.save_pretrained(folder, safe_serialization=True)</code> and
<code>tokenizer.save_pretrained(folder)</code> write one. Every model this playground ships is such a folder
too: <code>public/models/induction</code> opens here as it opens in <code>transformers</code>.</p>
<p>Next, the labs themselves will run on the model you open. For now this page loads it, reports what it holds
and times one forward pass.</p>"##;

/// How many tokens a tokenizer file defines: the highest id it gives, plus one. `tokenizer.json` keeps them in
/// `model.vocab` (a `{token: id}` map for BPE and word-level models, a list for Unigram) and `added_tokens`;
/// GPT-2's `vocab.json` is the map alone.
pub fn tokenizer_size(file: &str, text: &str) -> Result<usize, String> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| format!("{file} is not JSON ({e}): the file is damaged or not a tokenizer"))?;
    let ids_of_map = |m: &serde_json::Map<String, Value>| m.values().filter_map(Value::as_u64).max();
    let max = if file.ends_with("tokenizer.json") {
        let model =
            v.get("model").ok_or_else(|| format!("{file} has no `model`: it is not a Hugging Face tokenizer"))?;
        let vocab = match model.get("vocab") {
            Some(Value::Object(m)) => ids_of_map(m),
            Some(Value::Array(a)) => a.len().checked_sub(1).map(|n| n as u64),
            _ => return Err(format!("{file} has no vocabulary (`model.vocab`)")),
        };
        let added = (v.get("added_tokens").and_then(Value::as_array).into_iter().flatten())
            .filter_map(|t| t.get("id").and_then(Value::as_u64))
            .max();
        vocab.max(added)
    } else {
        match &v {
            Value::Object(m) => ids_of_map(m),
            _ => return Err(format!("{file} is not a {{token: id}} map")),
        }
    };
    let max = max.ok_or_else(|| format!("{file} defines no tokens"))?;
    usize::try_from(max + 1).map_err(|_| format!("{file} gives a token the id {max}, which no model has"))
}

/// A tokenizer with more tokens than the model has rows of embeddings would give ids the model cannot read.
/// Fewer is fine: models often round their vocabulary up (GPT-2's 50,257 tokens in 50,304 rows).
pub fn check_tokenizer(file: &str, tokens: usize, vocab_size: usize) -> Result<(), String> {
    if tokens > vocab_size {
        return Err(format!(
            "{file} has {tokens} tokens but config.json says the model has {vocab_size}: they belong to different models"
        ));
    }
    Ok(())
}

/// The name a picked folder goes by: its folder's name, else the config's `_name_or_path`, else "your model".
pub fn model_name(weights_path: &str, config: &Value) -> String {
    let folder = weights_path.rsplit_once(['/', '\\']).map(|(dir, _)| dir.rsplit(['/', '\\']).next().unwrap_or(dir));
    let from_config = config.get("_name_or_path").and_then(Value::as_str).filter(|s| !s.is_empty());
    folder.filter(|f| !f.is_empty()).or(from_config).unwrap_or("your model").to_string()
}

/// What the page says about an opened model.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub name: String,
    pub n_layer: usize,
    pub n_head: usize,
    pub d_model: usize,
    pub d_mlp: usize,
    pub vocab_size: usize,
    pub n_positions: usize,
    pub params: u64,
    pub file_bytes: u64,
    pub tokenizer: String,
    pub unused: Vec<String>,
    pub load_ms: f64,
    /// Tokens of the check run, its time, and how many activations it recorded.
    pub check: (usize, f64, usize),
}

/// A count as people read it: 124.4M, 7.1k, 512.
pub fn short_count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.2}B", n as f64 / 1e9),
    }
}

/// A duration as people read it: 640 ms, 4.2 s.
pub fn duration(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1e3)
    }
}

impl Summary {
    /// The summary as (label, value) rows of a table.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let (tokens, ms, acts) = self.check;
        let mut rows = vec![
            ("Parameters", short_count(self.params)),
            ("Layers × heads", format!("{} × {}", self.n_layer, self.n_head)),
            ("d_model / d_mlp", format!("{} / {}", self.d_model, self.d_mlp)),
            ("Vocabulary", format!("{} tokens", self.vocab_size)),
            ("Context", format!("{} positions", self.n_positions)),
            ("Weights file", format!("{:.1} MB, read in {}", self.file_bytes as f64 / 1e6, duration(self.load_ms))),
            ("Tokenizer", self.tokenizer.clone()),
            ("Check run", format!("{tokens} tokens, {acts} activations recorded, {ms:.0} ms")),
        ];
        if !self.unused.is_empty() {
            rows.push(("Not used", self.unused.join(", ")));
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokenizer_counts_its_highest_id_added_tokens_included() {
        let bpe = r#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}}, "added_tokens": [{"id": 5, "content": "<eos>"}]}"#;
        assert_eq!(tokenizer_size("x/tokenizer.json", bpe), Ok(6));
        let unigram = r#"{"model": {"type": "Unigram", "vocab": [["a", -1.0], ["b", -2.0]]}}"#;
        assert_eq!(tokenizer_size("tokenizer.json", unigram), Ok(2));
        assert_eq!(tokenizer_size("vocab.json", r#"{"!": 0, "\"": 1, "zz": 50256}"#), Ok(50257));
        // The shipped folders agree with their configs.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/public/models/");
        for m in ["induction", "ioi", "moby", "glassbox"] {
            let text = std::fs::read_to_string(format!("{dir}{m}/tokenizer.json")).unwrap();
            let cfg: Value =
                serde_json::from_str(&std::fs::read_to_string(format!("{dir}{m}/config.json")).unwrap()).unwrap();
            let n = tokenizer_size("tokenizer.json", &text).unwrap();
            assert_eq!(n as u64, cfg["vocab_size"].as_u64().unwrap(), "{m}");
        }
    }

    #[test]
    fn a_broken_or_oversized_tokenizer_is_refused_with_the_file_named() {
        assert!(tokenizer_size("tokenizer.json", "{").unwrap_err().starts_with("tokenizer.json is not JSON"));
        assert!(tokenizer_size("tokenizer.json", "{}").unwrap_err().contains("no `model`"));
        assert!(tokenizer_size("tokenizer.json", r#"{"model": {}}"#).unwrap_err().contains("no vocabulary"));
        assert!(tokenizer_size("vocab.json", "[1, 2]").unwrap_err().contains("not a {token: id} map"));
        assert!(tokenizer_size("vocab.json", "{}").unwrap_err().contains("defines no tokens"));
        assert_eq!(check_tokenizer("vocab.json", 50257, 50304), Ok(()));
        assert!(check_tokenizer("vocab.json", 50257, 1000).unwrap_err().contains("different models"));
    }

    #[test]
    fn a_model_is_named_after_its_folder() {
        let none = Value::Null;
        assert_eq!(model_name("gpt2-small/model.safetensors", &none), "gpt2-small");
        assert_eq!(model_name("a/b/model.safetensors", &none), "b");
        let cfg: Value = serde_json::json!({"_name_or_path": "openai-community/gpt2"});
        assert_eq!(model_name("model.safetensors", &cfg), "openai-community/gpt2");
        assert_eq!(model_name("model.safetensors", &none), "your model");
    }

    #[test]
    fn the_summary_reads_as_a_person_would_say_it() {
        assert_eq!(short_count(512), "512");
        assert_eq!(short_count(124_439_808), "124.4M");
        assert_eq!(short_count(71_000), "71.0k");
        assert_eq!((duration(640.2), duration(4200.0)), ("640 ms".to_string(), "4.2 s".to_string()));
        let s = Summary {
            name: "gpt2".into(),
            n_layer: 12,
            n_head: 12,
            d_model: 768,
            d_mlp: 3072,
            vocab_size: 50257,
            n_positions: 1024,
            params: 124_439_808,
            file_bytes: 497_759_232,
            tokenizer: "vocab.json + merges.txt (50257 tokens)".into(),
            unused: vec![],
            load_ms: 4200.0,
            check: (32, 812.0, 170),
        };
        let rows = s.rows();
        assert_eq!(rows[0], ("Parameters", "124.4M".to_string()));
        assert_eq!(rows[5].1, "497.8 MB, read in 4.2 s");
        assert_eq!(rows.len(), 8);
    }
}
