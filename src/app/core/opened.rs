//! The model a student opened in this tab (`#/open`), kept for the session with its tokenizer: a worker that
//! lives as long as the model (`core::worker::Tokenizing`), and every id's piece. Here in `core`, not in the
//! lab that opens it, so that every lab can read it (labs import only `core`, `lens` and `routes`).
use std::cell::RefCell;
use std::ops::Range;
use std::sync::{Arc, Weak};

use candle_core::Tensor;

use super::jobs::Job;
use super::own_text::model_input;
use super::worker::{Tokenizing, Worker};
use crate::lens::gpt2::tokenizer::{Encoded, TokReply, TokRequest};
use crate::lens::gpt2::Hook;
use crate::lens::methods::logit_lens::{LensCell, LensDecode, LensRun};
use crate::lens::{LensError, Transformer};

/// The guesses the logit lens keeps per cell.
pub const TOP_K: usize = 5;

pub struct OwnModel {
    pub name: String,
    pub model: Transformer,
    pub tokenizer: Worker<Tokenizing>,
    /// `pieces[id]`: each token as a student reads it.
    pub pieces: Arc<Vec<String>>,
}

thread_local! {
    static OPENED: RefCell<Option<Arc<OwnModel>>> = const { RefCell::new(None) };
}

/// A value kept for the tab with the opened model it belongs to (what `#/open` said of it, an SAE checked
/// against it): read back only while that model is the one open, so that a model opened later starts without
/// it. Held in a lab's `thread_local!`.
pub struct KeptWith<T>(RefCell<Option<(Weak<OwnModel>, T)>>);

impl<T: Clone> Default for KeptWith<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone> KeptWith<T> {
    pub const fn new() -> Self {
        KeptWith(RefCell::new(None))
    }

    /// Keeps `value` (or nothing) for `own`.
    pub fn set(&self, own: &Arc<OwnModel>, value: Option<T>) {
        *self.0.borrow_mut() = value.map(|v| (Arc::downgrade(own), v));
    }

    /// The value kept for `own`, if any.
    pub fn get(&self, own: &Arc<OwnModel>) -> Option<T> {
        let kept = self.0.borrow();
        let (model, value) = kept.as_ref()?;
        model.upgrade().is_some_and(|m| Arc::ptr_eq(&m, own)).then(|| value.clone())
    }

    /// Changes the value kept, if one is.
    pub fn update(&self, f: impl FnOnce(&mut T)) {
        if let Some((_, v)) = self.0.borrow_mut().as_mut() {
            f(v);
        }
    }
}

/// What `OwnModel::read_text` gives.
pub struct ReadText {
    pub input: OwnInput,
    /// The pass, whose cache holds every residual stream and what was asked for besides.
    pub run: LensRun,
    /// The logit lens's cells at each layer asked for.
    pub cells: Vec<Vec<LensCell>>,
}

impl ReadText {
    /// Every layer's attention patterns, `[layer][head][q][k]`, from a read that recorded `Hook::Pattern` of
    /// each of the `n_layer` layers.
    pub fn patterns(&self, n_layer: usize) -> Result<Vec<Vec<Vec<Vec<f32>>>>, String> {
        (0..n_layer)
            .map(|l| {
                let h = Hook::Pattern(l);
                let t = self.run.cache().get(h).ok_or_else(|| format!("{h} was not recorded"))?;
                t.get(0).and_then(|t| t.to_vec3::<f32>()).map_err(|e| e.to_string())
            })
            .collect()
    }
}

/// The model opened in this tab, if any.
pub fn opened() -> Option<Arc<OwnModel>> {
    OPENED.with(|o| o.borrow().clone())
}

/// Keeps `own` for the session; the model it replaces has its tokenizer worker ended.
pub fn keep(own: OwnModel) {
    if let Some(old) = OPENED.with(|o| o.borrow_mut().replace(Arc::new(own))) {
        old.tokenizer.disconnect();
    }
}

/// A text as an opened model reads it: its ids, the model's first token in front when its config names one,
/// and each token's piece.
pub struct OwnInput {
    pub ids: Vec<u32>,
    pub pieces: Vec<String>,
    /// Whether position 0 is the model's first token rather than the student's text.
    pub bos: bool,
}

/// `Some(Err)` from an engine error, for the jobs below.
fn failed<T>(e: impl ToString) -> Option<Result<T, String>> {
    Some(Err(e.to_string()))
}

impl OwnModel {
    /// The token the model reads first, in front of a text, when its config names one the tokenizer has (as
    /// TransformerLens prepends GPT-2's `<|endoftext|>`).
    pub fn bos(&self) -> Option<u32> {
        self.model.cfg.bos_token_id.filter(|&b| (b as usize) < self.pieces.len())
    }

    /// The tokenizer's ids and pieces for `text` as it is, nothing added or checked (an answer token, say).
    /// `None` if the job was stopped.
    pub async fn tokenize(&self, text: String, job: &Job, phase: &'static str) -> Option<Result<Encoded, String>> {
        if !job.report(phase, 0.0) {
            return None;
        }
        match job.wait_for(self.tokenizer.ask(&TokRequest::Encode { text })).await? {
            Some(TokReply::Encoded(e)) => Some(Ok(e)),
            Some(TokReply::Error { message }) => Some(Err(message)),
            Some(TokReply::Loaded { .. }) => failed("the tokenizer worker answered out of turn"),
            None => failed("the tokenizer worker stopped: open the model again"),
        }
    }

    /// Encodes `text` in the tokenizer's worker and checks what the model can read (`own_text::model_input`).
    /// `None` if the job was stopped; `Some(Err)` holds the message for the student.
    pub async fn encode(&self, text: String, job: &Job, phase: &'static str) -> Option<Result<OwnInput, String>> {
        let enc = match self.tokenize(text, job, phase).await? {
            Ok(e) => e,
            Err(e) => return Some(Err(e)),
        };
        let cfg = &self.model.cfg;
        let bos = self.bos().map(|b| (b, self.pieces[b as usize].as_str()));
        Some(model_input(&enc, bos, cfg.n_positions, cfg.vocab_size).map(|(ids, pieces)| OwnInput {
            ids,
            pieces,
            bos: bos.is_some(),
        }))
    }

    /// A text read through: encoded by the tokenizer's worker and checked (`encode`), run half a block per
    /// slice recording `also` as well (`read`), and the logit lens decoded at `layers` (`decode`). Every lab
    /// that reads a student's text on the opened model starts here. `None` if the job was stopped.
    pub async fn read_text(
        &self,
        text: String,
        also: &[Hook],
        layers: Range<usize>,
        job: &Job,
    ) -> Option<Result<ReadText, String>> {
        match self.encode(text, job, "encoding the text").await? {
            Ok(input) => self.read_input(input, also, layers, job).await,
            Err(e) => Some(Err(e)),
        }
    }

    /// `read_text` from an input already encoded, for a lab that checks it first (the attention lab needs two
    /// tokens, and says so before the model runs).
    pub async fn read_input(
        &self,
        input: OwnInput,
        also: &[Hook],
        layers: Range<usize>,
        job: &Job,
    ) -> Option<Result<ReadText, String>> {
        let run = match self.read(&input.ids, also, job, "running the model").await? {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let resid = match run.finish_resid(&self.model) {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        let cells = match self.decode(&input.ids, &resid, layers, job, "decoding every layer").await? {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        Some(Ok(ReadText { input, run, cells }))
    }

    /// Runs the model over `ids` half a block per slice, recording every layer's residual stream and `also`.
    /// `None` if the job was stopped.
    pub async fn read(
        &self,
        ids: &[u32],
        also: &[Hook],
        job: &Job,
        phase: &'static str,
    ) -> Option<Result<LensRun, String>> {
        let model = &self.model;
        let mut run = match LensRun::recording(model, ids, TOP_K, also) {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        match job.sliced(phase, || run.step(model).map(|done| (!done).then(|| run.progress(model)))).await {
            Ok(true) => Some(Ok(run)),
            Ok(false) => None,
            Err(e) => failed(e),
        }
    }

    /// The logit lens at `layers` (0 = the embedding; `n_layer` = the model's own output) from the residual
    /// streams `resid` `[layer, pos, d_model]` of a `read`: each position's `TOP_K` guesses and the probability
    /// of the token that follows. Every layer's rows share one pass over the unembedding (`LensDecode`), a
    /// slice of the vocabulary per step, about 50M multiply-adds: all of GPT-2 small's at 32 positions is 16G,
    /// seconds in one go. `None` if the job was stopped.
    pub async fn decode(
        &self,
        ids: &[u32],
        resid: &Tensor,
        layers: Range<usize>,
        job: &Job,
        phase: &'static str,
    ) -> Option<Result<Vec<Vec<LensCell>>, String>> {
        let model = &self.model;
        let rows = layers.len() * ids.len();
        // A multiple of 8, the matmul kernel's tile width (the columns past the last full tile are slower). A
        // long text's 13 layers are thousands of rows: 8 columns of them is still a few milliseconds.
        let cols = (50_000_000 / (rows * model.cfg.d_model()).max(1)).clamp(8, 4096) / 8 * 8;
        let picked = resid.narrow(0, layers.start, layers.len()).map_err(LensError::from);
        let mut decode = match picked.and_then(|r| LensDecode::new(model, ids, &r, TOP_K)) {
            Ok(d) => d,
            Err(e) => return failed(e),
        };
        let decoded =
            job.sliced(phase, || decode.step(model, cols).map(|done| (!done).then(|| decode.progress(model)))).await;
        match decoded {
            Ok(true) => Some(decode.finish(model).map_err(|e| e.to_string())),
            Ok(false) => None,
            Err(e) => failed(e),
        }
    }
}
