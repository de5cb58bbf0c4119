//! Opening a GPT-2-family folder a student brings (issue #14): which files of a picked folder are the model,
//! and its weights read a piece at a time, so a 500 MB `model.safetensors` is never in memory twice and no
//! single step takes long enough to freeze a page.
//!
//! The page reads the file's pieces (`Blob.slice`) and hands them to a `WeightsReader`; this module knows
//! nothing of the browser. The order of work is:
//!
//! 1. `plan_folder`: the file names (and sizes) of what was picked or dropped → which is the config, the
//!    weights and the tokenizer, or a refusal naming what is missing or too large.
//! 2. `header_len` on the file's first 8 bytes, then `WeightsIndex::parse` on its JSON header: every tensor's
//!    name, dtype, shape and byte range, checked by the `safetensors` crate and against the file's length.
//! 3. `WeightsReader::new(index, config)`: before a byte of weights is read, every tensor the config needs must
//!    be there with its shape and a dtype we decode (f32, f16, bf16).
//! 4. `next_read` → the page reads that byte range → `feed`, until `next_read` is `None`: each piece is decoded
//!    to f32 into the tensor's final buffer, checked for NaN and infinities as it goes.
//! 5. `finish` → the `Transformer`.
//!
//! Invariant: whatever the bytes, every step returns (no panic), and memory grows only by the tensors being
//! built (each reserved at the size its header states, which the file's length bounds) plus one piece.
use std::collections::HashMap;

use candle_core::{Device, Tensor};
use safetensors::tensor::Metadata;
use safetensors::Dtype;

use super::model::parameters;
use super::{Gpt2Config, Transformer};
use crate::lens::{LensError, Result};

/// The largest weights file the browser lab opens: GPT-2 small in f32 is 0.5 GB, and a page holding much more
/// than 1 GB of weights (plus the activations a lab records) is at the mercy of the browser's memory limits.
pub const MAX_WEIGHTS_BYTES: u64 = 1 << 30;
/// The largest safetensors header we read. GPT-2 small's is about 15 KB; the format allows 100 MB, but a
/// header that large can only be a broken or hostile file here.
pub const MAX_HEADER_BYTES: usize = 16 << 20;
/// How much of the weights one `next_read` asks for: about 1M f32 values, a few milliseconds to decode.
pub const READ_BYTES: usize = 4 << 20;

fn weights_err(m: impl Into<String>) -> LensError {
    LensError::Weights(m.into())
}

// ---------------------------------------------------------------------------------------------------------
// 1. The folder

/// The tokenizer a folder brings: Hugging Face's `tokenizer.json`, or GPT-2's original pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenizerFiles {
    Json(String),
    VocabMerges { vocab: String, merges: String },
}

/// Which picked file is which: each the path as picked (`gpt2/config.json`), so the page can find it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderPlan {
    pub config: String,
    pub weights: String,
    pub tokenizer: TokenizerFiles,
    /// Files that play no part (a README, `generation_config.json`, ...), said so that nothing is silently lost.
    pub unused: Vec<String>,
}

fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Sorts the picked files (`(path, size in bytes)`) into a model folder, or says in words a student can act
/// on what is missing, doubled or too large.
pub fn plan_folder(files: &[(String, u64)]) -> Result<FolderPlan> {
    let mut by_name: HashMap<&str, Vec<&str>> = HashMap::new();
    for (path, _) in files {
        by_name.entry(base_name(path)).or_default().push(path);
    }
    let one = |name: &str| -> Result<Option<String>> {
        match by_name.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([only]) => Ok(Some(only.to_string())),
            Some(many) => Err(LensError::Input(format!(
                "two files are named {name} ({} and {}): open one model folder at a time",
                many[0], many[1]
            ))),
        }
    };
    let config = one("config.json")?.ok_or_else(|| {
        LensError::Input(
            "no config.json: pick the model's whole folder, or its config.json with the other files".into(),
        )
    })?;
    let weights = match one("model.safetensors")? {
        Some(w) => w,
        None if files.iter().any(|(p, _)| base_name(p).ends_with(".safetensors.index.json")) => {
            return Err(LensError::Input(
                "the weights are split over several .safetensors files (a sharded checkpoint): the browser lab opens \
                 one model.safetensors; save the model again with a larger max_shard_size"
                    .into(),
            ))
        }
        None if one("pytorch_model.bin")?.is_some() => {
            return Err(LensError::Input(
                "the weights are in pytorch_model.bin, which only Python can read safely: save them as \
                 model.safetensors (transformers: model.save_pretrained(dir, safe_serialization=True))"
                    .into(),
            ))
        }
        None => {
            return Err(LensError::Input(
                "no model.safetensors: the folder must hold the weights in safetensors format".into(),
            ))
        }
    };
    let size = files.iter().find(|(p, _)| *p == weights).map_or(0, |f| f.1);
    if size > MAX_WEIGHTS_BYTES {
        return Err(LensError::Input(format!(
            "model.safetensors is {:.2} GB; the browser lab opens weights up to {:.2} GB (GPT-2 small in f32 is 0.5 GB)",
            size as f64 / 1e9,
            MAX_WEIGHTS_BYTES as f64 / 1e9
        )));
    }
    let tokenizer = match (one("tokenizer.json")?, one("vocab.json")?, one("merges.txt")?) {
        (Some(t), _, _) => TokenizerFiles::Json(t),
        (None, Some(vocab), Some(merges)) => TokenizerFiles::VocabMerges { vocab, merges },
        (None, Some(_), None) => {
            return Err(LensError::Input(
                "vocab.json without merges.txt: a GPT-2 tokenizer needs both (or a tokenizer.json)".into(),
            ))
        }
        (None, None, Some(_)) => {
            return Err(LensError::Input(
                "merges.txt without vocab.json: a GPT-2 tokenizer needs both (or a tokenizer.json)".into(),
            ))
        }
        (None, None, None) => {
            return Err(LensError::Input(
                "no tokenizer: the folder needs tokenizer.json, or GPT-2's vocab.json and merges.txt".into(),
            ))
        }
    };
    let used = |p: &str| {
        p == config
            || p == weights
            || match &tokenizer {
                TokenizerFiles::Json(t) => p == t,
                TokenizerFiles::VocabMerges { vocab, merges } => p == vocab || p == merges,
            }
    };
    let unused = files.iter().map(|(p, _)| p.clone()).filter(|p| !used(p)).collect();
    Ok(FolderPlan { config, weights, tokenizer, unused })
}

// ---------------------------------------------------------------------------------------------------------
// 2. The weights' index

/// The length of the JSON header from a safetensors file's first 8 bytes, checked against the file's length.
pub fn header_len(first8: &[u8], file_len: u64) -> Result<usize> {
    let bytes: [u8; 8] = first8
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| weights_err("the file is shorter than a safetensors header (8 bytes)"))?;
    let n = u64::from_le_bytes(bytes);
    if n == 0 || n > MAX_HEADER_BYTES as u64 {
        return Err(weights_err(format!(
            "its header claims {n} bytes, which no GPT-2 weights file has: the file is not safetensors or is damaged"
        )));
    }
    if 8 + n > file_len {
        return Err(weights_err(format!(
            "its header claims {n} bytes but the file has only {file_len}: the file was cut short"
        )));
    }
    Ok(n as usize)
}

/// A safetensors file's tensors without their data: what to read, and where.
#[derive(Debug)]
pub struct WeightsIndex {
    meta: Metadata,
    /// Where the data starts in the file (8 + the header's length).
    data_start: u64,
}

impl WeightsIndex {
    /// The index from the JSON `header` (the `header_len` bytes after the first 8) of a file of `file_len`
    /// bytes. The `safetensors` crate checks that the tensors' byte ranges follow each other and fit their
    /// shapes; this checks that they end where the file does.
    pub fn parse(header: &[u8], file_len: u64) -> Result<Self> {
        let text = std::str::from_utf8(header)
            .map_err(|_| weights_err("its header is not text: the file is not safetensors"))?;
        let meta: Metadata = serde_json::from_str(text)
            .map_err(|e| weights_err(format!("its header does not describe tensors ({e}): the file is damaged")))?;
        let data_start = 8 + header.len() as u64;
        let expected = data_start + meta.data_len() as u64;
        if expected != file_len {
            return Err(weights_err(format!(
                "its header describes {expected} bytes but the file has {file_len}: the file was cut short or changed"
            )));
        }
        Ok(Self { meta, data_start })
    }

    /// The tensor names in file order.
    pub fn names(&self) -> Vec<String> {
        self.meta.offset_keys()
    }
}

// ---------------------------------------------------------------------------------------------------------
// 3.–5. Reading the weights

/// How a tensor's values are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stored {
    F32,
    F16,
    Bf16,
}

impl Stored {
    fn of(name: &str, dtype: Dtype) -> Result<Self> {
        match dtype {
            Dtype::F32 => Ok(Stored::F32),
            Dtype::F16 => Ok(Stored::F16),
            Dtype::BF16 => Ok(Stored::Bf16),
            other => Err(weights_err(format!(
                "tensor `{name}` is stored as {other:?}: only f32, f16 and bf16 weights can be opened"
            ))),
        }
    }

    fn size(self) -> usize {
        match self {
            Stored::F32 => 4,
            Stored::F16 | Stored::Bf16 => 2,
        }
    }
}

/// One tensor to read: its name as the engine knows it, where it is in the file, its shape and dtype.
#[derive(Debug)]
pub(crate) struct Wanted {
    name: String,
    shape: Vec<usize>,
    stored: Stored,
    /// Absolute byte range in the file.
    start: u64,
    end: u64,
}

impl WeightsIndex {
    /// Tensor `file_name` of the file, to be read as `name`, checked to have `shape` (which `implied_by`, the
    /// file the shape comes from, implies) and a dtype we decode.
    pub(crate) fn want(&self, file_name: &str, name: &str, shape: &[usize], implied_by: &str) -> Result<Wanted> {
        let infos = self.meta.tensors();
        let info = infos.get(file_name).ok_or_else(|| weights_err(format!("tensor `{file_name}` is missing")))?;
        if info.shape != shape {
            return Err(weights_err(format!(
                "tensor `{file_name}` has shape {:?} but {implied_by} implies {shape:?}: {implied_by} and the \
                 weights are from different models",
                info.shape
            )));
        }
        let (s, e) = info.data_offsets;
        Ok(Wanted {
            name: name.to_string(),
            shape: shape.to_vec(),
            stored: Stored::of(file_name, info.dtype)?,
            start: self.data_start + s as u64,
            end: self.data_start + e as u64,
        })
    }
}

/// Reads chosen tensors of a safetensors file front to back, a piece at a time: each piece is decoded to f32
/// into its tensor's final buffer (reserved at the size its header states, which the file's length bounds)
/// and checked for NaN and infinities as it goes. The model's reader and the SAE's share it.
pub(crate) struct TensorStream {
    wanted: Vec<Wanted>,
    /// The tensor being read (index into `wanted`) and how many of its bytes are in.
    at: usize,
    done_in_tensor: u64,
    values: Vec<f32>,
    total: u64,
    read: u64,
}

/// A tensor whose last bytes are in: its name, shape and values.
pub(crate) type Read = (String, Vec<usize>, Vec<f32>);

impl TensorStream {
    pub(crate) fn new(mut wanted: Vec<Wanted>) -> Self {
        // In file order, so the page reads the file front to back.
        wanted.sort_by_key(|w| w.start);
        let total = wanted.iter().map(|w| w.end - w.start).sum();
        Self { wanted, at: 0, done_in_tensor: 0, values: Vec::new(), total, read: 0 }
    }

    /// The next byte range of the file to read (`start..end`, at most `max_bytes` long and a whole number of
    /// values), or `None` when every tensor is in.
    pub(crate) fn next_read(&self, max_bytes: usize) -> Option<(u64, u64)> {
        let w = self.wanted.get(self.at)?;
        let size = w.stored.size() as u64;
        let span = ((max_bytes as u64 / size).max(1)) * size;
        let start = w.start + self.done_in_tensor;
        Some((start, (start + span).min(w.end)))
    }

    /// Takes the bytes of the range `next_read` gave and decodes them onto the tensor being read: the tensor,
    /// when these were its last bytes.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<Option<Read>> {
        let Some((start, end)) = self.next_read(READ_BYTES.max(bytes.len())) else {
            return Err(weights_err("more data than the weights hold"));
        };
        let w = &self.wanted[self.at];
        let size = w.stored.size();
        if bytes.is_empty() || bytes.len() as u64 > end - start || !bytes.len().is_multiple_of(size) {
            return Err(weights_err(format!(
                "a read of tensor `{}` returned {} bytes: the file changed or could not be read",
                w.name,
                bytes.len()
            )));
        }
        if self.done_in_tensor == 0 {
            self.values = Vec::with_capacity(((w.end - w.start) / size as u64) as usize);
        }
        let first = self.values.len();
        match w.stored {
            Stored::F32 => {
                self.values.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            }
            Stored::F16 => {
                self.values.extend(bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()))
            }
            Stored::Bf16 => {
                self.values.extend(bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()))
            }
        }
        // A broken file can hold NaN or infinities that would silently poison every view.
        if let Some(i) = self.values[first..].iter().position(|v| !v.is_finite()) {
            return Err(weights_err(format!(
                "tensor `{}` holds NaN or infinite values (the first at element {}): the weights are damaged",
                w.name,
                first + i
            )));
        }
        self.done_in_tensor += bytes.len() as u64;
        self.read += bytes.len() as u64;
        if w.start + self.done_in_tensor < w.end {
            return Ok(None);
        }
        let done = (w.name.clone(), w.shape.clone(), std::mem::take(&mut self.values));
        self.at += 1;
        self.done_in_tensor = 0;
        Ok(Some(done))
    }

    /// Bytes read so far and bytes to read in all.
    pub(crate) fn progress(&self) -> (u64, u64) {
        (self.read, self.total)
    }

    /// An error naming the tensor the reading stopped in, if it has not reached the end.
    pub(crate) fn check_done(&self) -> Result<()> {
        match self.wanted.get(self.at) {
            Some(w) => Err(weights_err(format!("the weights stopped at tensor `{}`", w.name))),
            None => Ok(()),
        }
    }
}

/// A `rows × cols` row-major matrix turned round a few rows at a time, so that no step is long: GPT-2 small's
/// unembedding is 154 MB, and even zeroing its transpose's buffer in one go was a 70 ms task.
pub(crate) struct Transposing {
    src: Vec<f32>,
    rows: usize,
    cols: usize,
    /// `cols × rows`, filled as `step` goes.
    dst: Vec<f32>,
    done_rows: usize,
}

impl Transposing {
    pub(crate) fn new(src: Vec<f32>, rows: usize, cols: usize) -> Self {
        debug_assert_eq!(src.len(), rows * cols);
        Self { src, rows, cols, dst: Vec::new(), done_rows: 0 }
    }

    /// Does about `max_values` more of the work; true when done.
    pub(crate) fn step(&mut self, max_values: usize) -> bool {
        let (v, d) = (self.rows, self.cols);
        if self.dst.len() < v * d {
            if self.dst.capacity() == 0 {
                self.dst.reserve_exact(v * d);
            }
            let grow = max_values.max(1).min(v * d - self.dst.len());
            self.dst.resize(self.dst.len() + grow, 0.0);
            return false;
        }
        let rows = (max_values / d.max(1)).max(1);
        let end = (self.done_rows + rows).min(v);
        for r in self.done_rows..end {
            for (c, &x) in self.src[r * d..(r + 1) * d].iter().enumerate() {
                self.dst[c * v + r] = x;
            }
        }
        self.done_rows = end;
        end == v
    }

    /// The matrix as given and its transpose, finishing the work if it is not done.
    pub(crate) fn finish(mut self) -> (Vec<f32>, Vec<f32>) {
        while !self.step(usize::MAX) {}
        (self.src, self.dst)
    }
}

/// A reader that takes a safetensors file a piece at a time, whatever it builds (a model, an SAE): one loop
/// drives any of them, `read_all` here and the page's over `Blob.slice`.
pub trait PieceReader {
    type Out;
    /// The next byte range of the file to read (`start..end`, at most `max_bytes` long and a whole number of
    /// values), or `None` when every tensor is in.
    fn next_read(&self, max_bytes: usize) -> Option<(u64, u64)>;
    /// Takes the bytes of the range `next_read` gave.
    fn feed(&mut self, bytes: &[u8]) -> Result<()>;
    /// Bytes read so far and bytes to read in all.
    fn progress(&self) -> (u64, u64);
    /// Once every tensor is in: about `max_values` more of the work left (a transpose); true when done.
    fn prepare(&mut self, max_values: usize) -> bool;
    /// What was read (what `prepare` left undone is done here).
    fn finish(self) -> Result<Self::Out>;
}

/// The index of a whole safetensors file held in memory.
pub fn index_of(file: &[u8]) -> Result<WeightsIndex> {
    let n = header_len(file, file.len() as u64)?;
    WeightsIndex::parse(&file[8..8 + n], file.len() as u64)
}

/// Drives `reader` over a whole file held in memory, `max_bytes` at a time: what the page does piece by piece,
/// in one call (tests, the native tools).
pub fn read_all<R: PieceReader>(file: &[u8], mut reader: R, max_bytes: usize) -> Result<R::Out> {
    while let Some((s, e)) = reader.next_read(max_bytes) {
        reader.feed(&file[s as usize..e as usize])?;
    }
    while !reader.prepare(max_bytes / 4) {}
    reader.finish()
}

/// Reads a GPT-2 model's weights a piece at a time (see the module's order of work).
pub struct WeightsReader {
    cfg: Gpt2Config,
    stream: TensorStream,
    tensors: HashMap<String, Tensor>,
    /// The unembedding (`lm_head.weight`, or `wte.weight` when tied) `[vocab, d_model]`, turned round by
    /// `prepare` into `[d_model, vocab]`: the logits' matrix product wants it that way round.
    unembed: Option<Transposing>,
    /// Tensors in the file the model does not use (GPT-2's saved attention masks, a tied `lm_head`).
    pub unused: Vec<String>,
}

impl WeightsReader {
    /// Checks that the file holds every tensor `cfg` needs, each with its shape and a dtype we decode, before
    /// anything is read. Names may carry GPT-2's `transformer.` prefix or not, as `transformers` saves either.
    pub fn new(index: WeightsIndex, cfg: Gpt2Config) -> Result<Self> {
        cfg.validate()?;
        let infos = index.meta.tensors();
        let mut wanted = Vec::new();
        let mut taken = Vec::new();
        for p in parameters(&cfg).into_iter().filter(|p| !p.stored_only) {
            let short = p.name.strip_prefix("transformer.");
            let file_name = [Some(p.name.as_str()), short].into_iter().flatten().find(|n| infos.contains_key(*n));
            let file_name = file_name.ok_or_else(|| {
                weights_err(format!(
                    "tensor `{}` is missing, which a GPT-2 model with {} layers needs: is config.json from the same model?",
                    short.unwrap_or(&p.name),
                    cfg.n_layer
                ))
            })?;
            wanted.push(index.want(file_name, &p.name, &p.shape, "config.json")?);
            taken.push(file_name.to_string());
        }
        let mut unused: Vec<String> = index.names().into_iter().filter(|n| !taken.contains(n)).collect();
        unused.sort();
        Ok(Self { cfg, stream: TensorStream::new(wanted), tensors: HashMap::new(), unembed: None, unused })
    }

    /// The engine's name of the unembedding matrix.
    fn unembedding(&self) -> &'static str {
        if self.cfg.tie_word_embeddings {
            "transformer.wte.weight"
        } else {
            "lm_head.weight"
        }
    }
}

impl PieceReader for WeightsReader {
    type Out = Transformer;

    fn next_read(&self, max_bytes: usize) -> Option<(u64, u64)> {
        self.stream.next_read(max_bytes)
    }

    /// Decodes the bytes to f32 onto the tensor being read, and finishes the tensor when its last bytes are in.
    fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        let Some((name, shape, values)) = self.stream.feed(bytes)? else { return Ok(()) };
        if name == self.unembedding() {
            // Kept as read until `prepare` has transposed it; it becomes a tensor in `finish`.
            self.unembed = Some(Transposing::new(values, self.cfg.vocab_size, self.cfg.d_model()));
        } else {
            let t = Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)?;
            self.tensors.insert(name, t);
        }
        Ok(())
    }

    fn progress(&self) -> (u64, u64) {
        self.stream.progress()
    }

    /// Transposes the next rows of the unembedding (at once for a reader still reading).
    fn prepare(&mut self, max_values: usize) -> bool {
        self.unembed.as_mut().is_none_or(|u| u.step(max_values))
    }

    /// The model.
    fn finish(mut self) -> Result<Transformer> {
        self.stream.check_done()?;
        let unembed = self.unembed.take().ok_or_else(|| weights_err("the unembedding was not read"))?;
        let (u, u_t) = unembed.finish();
        let (v, d) = (self.cfg.vocab_size, self.cfg.d_model());
        let name = self.unembedding();
        self.tensors.insert(name.to_string(), Tensor::from_vec(u, (v, d), &Device::Cpu)?);
        let lm_head_t = Tensor::from_vec(u_t, (d, v), &Device::Cpu)?;
        Transformer::from_checked_tensors(self.cfg, self.tensors, lm_head_t)
    }
}

/// Reads a whole weights file held in memory through a `WeightsReader`, `max_bytes` at a time: what the page
/// does piece by piece, in one call (tests, the native tools).
pub fn read_weights(file: &[u8], cfg: Gpt2Config, max_bytes: usize) -> Result<Transformer> {
    read_all(file, WeightsReader::new(index_of(file)?, cfg)?, max_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn cfg() -> Gpt2Config {
        Gpt2Config::new(11, 8, 16, 2, 2, false)
    }

    /// The model's tensors as a safetensors file in `dtype`, names with or without `transformer.`, plus any
    /// `extra` tensors (GPT-2's saved masks).
    fn file(model: &Transformer, dtype: Dtype, prefix: bool, extra: &[(&str, Vec<usize>)]) -> Vec<u8> {
        let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (name, t) in model.to_tensors().unwrap() {
            let name = if prefix { name } else { name.trim_start_matches("transformer.").to_string() };
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            let bytes: Vec<u8> = match dtype {
                Dtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                Dtype::F16 => v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect(),
                Dtype::BF16 => v.iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect(),
                _ => unreachable!(),
            };
            named.push((name, t.dims().to_vec(), bytes));
        }
        for (name, shape) in extra {
            let n: usize = shape.iter().product();
            named.push((name.to_string(), shape.clone(), vec![0u8; n * dtype.bitsize() / 8]));
        }
        let views: Vec<(String, TensorView)> =
            named.iter().map(|(n, s, b)| (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap())).collect();
        safetensors::serialize(views, None).unwrap()
    }

    fn logits(m: &Transformer) -> Vec<f32> {
        m.logits(&[1, 2, 3, 4, 5]).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn f32_f16_and_bf16_files_read_piece_by_piece_give_the_model_candle_reads_whole() {
        for tied in [false, true] {
            let cfg = Gpt2Config { tie_word_embeddings: tied, ..cfg() };
            let model = Transformer::random(cfg.clone(), 3).unwrap();
            read_back(&model, &cfg);
        }
    }

    fn read_back(model: &Transformer, cfg: &Gpt2Config) {
        for dtype in [Dtype::F32, Dtype::F16, Dtype::BF16] {
            for prefix in [true, false] {
                let bytes = file(model, dtype, prefix, &[("h.0.attn.bias", vec![1, 1, 8, 8])]);
                // Pieces of 6 bytes: a value split across pieces would show as wrong numbers.
                let read = read_weights(&bytes, cfg.clone(), 6).unwrap();
                let whole = Transformer::from_bytes(&cfg.to_json(), &bytes).unwrap();
                assert_eq!(logits(&read), logits(&whole), "{dtype:?}, prefix {prefix}");
                if dtype == Dtype::F32 {
                    assert_eq!(logits(&read), logits(model));
                }
            }
        }
    }

    #[test]
    fn progress_counts_only_the_tensors_used_and_unused_ones_are_named() {
        let model = Transformer::random(cfg(), 3).unwrap();
        let bytes = file(&model, Dtype::F32, false, &[("h.0.attn.bias", vec![1, 1, 8, 8])]);
        let n = header_len(&bytes, bytes.len() as u64).unwrap();
        let index = WeightsIndex::parse(&bytes[8..8 + n], bytes.len() as u64).unwrap();
        let mut r = WeightsReader::new(index, cfg()).unwrap();
        assert_eq!(r.unused, vec!["h.0.attn.bias".to_string()]);
        let (_, total) = r.progress();
        let params: usize =
            parameters(&cfg()).iter().filter(|p| !p.stored_only).map(|p| p.shape.iter().product::<usize>()).sum();
        assert_eq!(total, 4 * params as u64);
        let mut pieces = 0;
        while let Some((s, e)) = r.next_read(READ_BYTES) {
            assert!(e - s <= READ_BYTES as u64);
            r.feed(&bytes[s as usize..e as usize]).unwrap();
            pieces += 1;
        }
        assert_eq!(r.progress(), (total, total));
        assert_eq!(pieces, parameters(&cfg()).iter().filter(|p| !p.stored_only).count());
        assert!(r.next_read(READ_BYTES).is_none());
        r.finish().unwrap();
    }

    fn refusal(bytes: &[u8], cfg: Gpt2Config) -> String {
        match read_weights(bytes, cfg, 64) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_broken_file_is_refused_with_the_reason() {
        let model = Transformer::random(cfg(), 3).unwrap();
        let good = file(&model, Dtype::F32, true, &[]);
        // Cut short, in the header and in the data.
        assert!(refusal(&good[..5], cfg()).contains("shorter than a safetensors header"));
        assert!(refusal(&good[..20], cfg()).contains("cut short"));
        assert!(refusal(&good[..good.len() - 4], cfg()).contains("cut short"));
        // A header length that is absurd, and a header that is not JSON.
        let mut huge = good.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(refusal(&huge, cfg()).contains("not safetensors"));
        let mut garbled = good.clone();
        garbled[9] = b'!';
        assert!(refusal(&garbled, cfg()).contains("does not describe tensors"));
        // The config of another model: a missing layer, a different width.
        let deeper = Gpt2Config { n_layer: 3, ..cfg() };
        assert!(refusal(&good, deeper).contains("tensor `h.2.ln_1.weight` is missing"));
        let wider = Gpt2Config { n_embd: 32, ..cfg() };
        assert!(refusal(&good, wider).contains("different models"));
        // A dtype we do not decode.
        let views =
            vec![("wte.weight".to_string(), TensorView::new(Dtype::I64, vec![11, 16], &[0u8; 11 * 16 * 8]).unwrap())];
        let ints = safetensors::serialize(views, None).unwrap();
        assert!(refusal(&ints, cfg()).contains("stored as I64"));
        // A NaN, named with its tensor and element.
        let model_bytes = file(&model, Dtype::F32, true, &[]);
        let n = header_len(&model_bytes, model_bytes.len() as u64).unwrap();
        let mut poisoned = model_bytes.clone();
        let at = 8 + n + 4 * 5; // the sixth value of the first tensor in the file
        poisoned[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        let msg = refusal(&poisoned, cfg());
        assert!(msg.contains("NaN or infinite values (the first at element 5)"), "{msg}");
    }

    #[test]
    fn a_wrong_piece_is_refused_not_trusted() {
        let model = Transformer::random(cfg(), 3).unwrap();
        let bytes = file(&model, Dtype::F16, true, &[]);
        let n = header_len(&bytes, bytes.len() as u64).unwrap();
        let index = WeightsIndex::parse(&bytes[8..8 + n], bytes.len() as u64).unwrap();
        let mut r = WeightsReader::new(index, cfg()).unwrap();
        let (s, e) = r.next_read(8).unwrap();
        assert_eq!(e - s, 8);
        assert!(r.feed(&bytes[s as usize..s as usize + 3]).is_err(), "half a value");
        assert!(r.feed(&[]).is_err(), "nothing");
        r.feed(&bytes[s as usize..e as usize]).unwrap();
        assert!(r.finish().unwrap_err().to_string().contains("stopped at tensor"));
    }

    fn picked(names: &[&str]) -> Vec<(String, u64)> {
        names.iter().map(|n| (n.to_string(), 100)).collect()
    }

    #[test]
    fn a_folder_is_sorted_into_config_weights_and_tokenizer() {
        let p = plan_folder(&picked(&[
            "gpt2/config.json",
            "gpt2/model.safetensors",
            "gpt2/tokenizer.json",
            "gpt2/README.md",
        ]))
        .unwrap();
        assert_eq!(p.config, "gpt2/config.json");
        assert_eq!(p.weights, "gpt2/model.safetensors");
        assert_eq!(p.tokenizer, TokenizerFiles::Json("gpt2/tokenizer.json".into()));
        assert_eq!(p.unused, vec!["gpt2/README.md".to_string()]);
        // GPT-2's own pair, when there is no tokenizer.json.
        let p = plan_folder(&picked(&["config.json", "model.safetensors", "vocab.json", "merges.txt"])).unwrap();
        assert_eq!(
            p.tokenizer,
            TokenizerFiles::VocabMerges { vocab: "vocab.json".into(), merges: "merges.txt".into() }
        );
    }

    #[test]
    fn a_folder_that_cannot_be_opened_says_what_to_do() {
        let why = |names: &[&str]| plan_folder(&picked(names)).unwrap_err().to_string();
        assert!(why(&["model.safetensors", "tokenizer.json"]).contains("no config.json"));
        assert!(why(&["config.json", "pytorch_model.bin", "tokenizer.json"]).contains("save them as"));
        assert!(why(&["config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors"])
            .contains("sharded"));
        assert!(why(&["config.json", "model.safetensors"]).contains("no tokenizer"));
        assert!(why(&["config.json", "model.safetensors", "vocab.json"]).contains("without merges.txt"));
        assert!(why(&["config.json", "model.safetensors", "merges.txt"]).contains("without vocab.json"));
        assert!(why(&["a/config.json", "b/config.json", "a/model.safetensors", "a/tokenizer.json"])
            .contains("two files are named config.json"));
        let big = vec![
            ("config.json".to_string(), 500),
            ("model.safetensors".to_string(), MAX_WEIGHTS_BYTES + 1),
            ("tokenizer.json".to_string(), 500),
        ];
        assert!(plan_folder(&big).unwrap_err().to_string().contains("up to 1.07 GB"));
    }
}
