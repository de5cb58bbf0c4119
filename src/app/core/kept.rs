//! An opened model kept in this browser for the next visit, only when the student asks for it (`#/open`'s
//! "Keep it in this browser"). Its files go into a Cache Storage cache of their own, the manifest last, so a
//! save cut short leaves no manifest and reads as nothing kept. Nothing leaves the computer: the cache belongs to
//! this site in this browser, and "Forget it" deletes it.
//!
//! Cache Storage rather than localStorage (5 MB) or IndexedDB: a response is built from a picked `File` and
//! read back as a `Blob` that the page slices as it slices a picked file, so the browser writes and reads the
//! 500 MB itself, on disk, and the weights are never in the page's memory twice. The manifest and what the lab
//! says of it are plain Rust, tested natively; the rest needs the browser.
use serde_json::{json, Value};

use super::offline::megabytes;

/// The cache's name. Not the service worker's prefix (`glassbox-v`): its clean-up of old builds' caches must
/// leave this one alone.
pub const CACHE: &str = "glassbox-kept-model";

/// Where the manifest sits in the cache (a relative URL: the cache resolves it against the page).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
const MANIFEST: &str = "kept-model/manifest.json";

/// What was kept: the model's name, its files (name and size in bytes) and when. Read and written through
/// `serde_json::Value`, which the page already carries, rather than a derived (de)serializer of its own.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub files: Vec<(String, u64)>,
    /// Milliseconds since 1970, as `Date.now()` gives them.
    pub kept_at: f64,
}

impl Manifest {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, n)| n).sum()
    }

    /// A manifest from the cache, or `None` when it is missing, broken or names no file: a broken one is
    /// treated as nothing kept (the student can keep the model again), never as an error on every visit.
    pub fn parse(json: &str) -> Option<Manifest> {
        let v: Value = serde_json::from_str(json).ok()?;
        let file = |f: &Value| Some((f.get(0)?.as_str()?.to_string(), f.get(1)?.as_u64()?));
        let files: Option<Vec<(String, u64)>> = v.get("files")?.as_array()?.iter().map(file).collect();
        let m = Manifest {
            name: v.get("name")?.as_str()?.to_string(),
            files: files?,
            kept_at: v.get("kept_at")?.as_f64()?,
        };
        (!m.files.is_empty() && !m.name.is_empty()).then_some(m)
    }

    /// The manifest as `parse` reads it.
    pub fn to_json(&self) -> String {
        json!({ "name": self.name, "files": self.files, "kept_at": self.kept_at }).to_string()
    }
}

/// The file a path names: its last part.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A file's place in the cache. Only its name counts: a folder pick's path ("gpt2/config.json") is kept as
/// the file it names, encoded as a query value is (`form_urlencoded`, as links are).
pub fn url_of(file: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(file_name(file).as_bytes()).collect();
    format!("kept-model/files/{encoded}")
}

/// Why a model cannot be kept when the browser grants `free` more bytes to this site and the files need
/// `needed` (`None` when they fit, with a tenth to spare for the browser's own bookkeeping).
pub fn no_room(needed: u64, free: Option<u64>) -> Option<String> {
    let free = free?;
    (needed + needed / 10 > free).then(|| {
        format!(
            "This browser lets this site keep {} more, and the model's files are {}: free some space, or open the \
             files again on your next visit.",
            megabytes(free),
            megabytes(needed)
        )
    })
}

#[cfg(target_arch = "wasm32")]
pub use browser::{forget, keep, kept, kept_files};

#[cfg(target_arch = "wasm32")]
mod browser {
    use js_sys::{Array, Reflect};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{Blob, Cache, File, FilePropertyBag, Response};

    use super::{file_name, no_room, url_of, Manifest, CACHE, MANIFEST};

    const UNAVAILABLE: &str = "This browser does not let the page keep files here (it needs the page served over https or from this computer).";

    async fn cache() -> Result<Cache, String> {
        let storage = web_sys::window().and_then(|w| w.caches().ok()).ok_or(UNAVAILABLE)?;
        let cache = JsFuture::from(storage.open(CACHE)).await.map_err(|_| UNAVAILABLE.to_string())?;
        Ok(cache.unchecked_into())
    }

    /// The bytes this site may still use in this browser, when the browser says.
    async fn free_bytes() -> Option<u64> {
        let storage = web_sys::window()?.navigator().storage();
        let estimate = JsFuture::from(storage.estimate().ok()?).await.ok()?;
        let get = |k: &str| Reflect::get(&estimate, &k.into()).ok().and_then(|v| v.as_f64());
        Some((get("quota")? - get("usage").unwrap_or(0.0)).max(0.0) as u64)
    }

    async fn put(cache: &Cache, url: &str, body: &Blob) -> Result<(), String> {
        let response = Response::new_with_opt_blob(Some(body)).map_err(|_| "the file could not be read".to_string())?;
        JsFuture::from(cache.put_with_str(url, &response)).await.map(|_| ()).map_err(|e| {
            let why = Reflect::get(&e, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default();
            if why == "QuotaExceededError" {
                "the browser has no room left for it".to_string()
            } else {
                format!("the browser refused to store it ({})", why.to_lowercase())
            }
        })
    }

    /// Keeps `files` (name and file) as the model `name`, replacing whatever was kept before.
    pub async fn keep(name: &str, files: &[(String, File)]) -> Result<Manifest, String> {
        let needed: u64 = files.iter().map(|(_, f)| f.size() as u64).sum();
        // What was kept before no longer counts against the room this needs.
        forget().await?;
        if let Some(e) = no_room(needed, free_bytes().await) {
            return Err(e);
        }
        let cache = cache().await?;
        for (path, file) in files {
            if let Err(e) = put(&cache, &url_of(path), file).await {
                forget().await.ok();
                return Err(format!("{path} could not be kept: {e}."));
            }
        }
        let manifest = Manifest {
            name: name.to_string(),
            files: files.iter().map(|(p, f)| (p.clone(), f.size() as u64)).collect(),
            kept_at: js_sys::Date::now(),
        };
        let json = manifest.to_json();
        let blob = Blob::new_with_str_sequence(&Array::of1(&JsValue::from_str(&json)))
            .map_err(|_| "the manifest could not be written".to_string())?;
        put(&cache, MANIFEST, &blob).await.map_err(|e| format!("The model could not be kept: {e}."))?;
        Ok(manifest)
    }

    /// What is kept in this browser, if anything.
    pub async fn kept() -> Option<Manifest> {
        // Opening a cache makes it: look first, so that a visit that keeps nothing leaves nothing behind.
        let storage = web_sys::window()?.caches().ok()?;
        if !JsFuture::from(storage.has(CACHE)).await.ok()?.as_bool()? {
            return None;
        }
        let cache = cache().await.ok()?;
        let found = JsFuture::from(cache.match_with_str(MANIFEST)).await.ok()?;
        let response: Response = found.dyn_into().ok()?;
        let text = JsFuture::from(response.text().ok()?).await.ok()?.as_string()?;
        Manifest::parse(&text)
    }

    /// The kept files, as files the "open" page reads as it reads picked ones.
    pub async fn kept_files(m: &Manifest) -> Result<Vec<File>, String> {
        let cache = cache().await?;
        let mut out = Vec::with_capacity(m.files.len());
        for (path, size) in &m.files {
            let gone = || {
                format!("{path} is no longer in this browser's storage: open the files again, then keep them again.")
            };
            let found = JsFuture::from(cache.match_with_str(&url_of(path))).await.map_err(|_| gone())?;
            let response: Response = found.dyn_into().map_err(|_| gone())?;
            let blob: Blob =
                JsFuture::from(response.blob().map_err(|_| gone())?).await.map_err(|_| gone())?.unchecked_into();
            if blob.size() as u64 != *size {
                return Err(format!(
                    "{path} in this browser's storage is {} bytes, not {size}: forget it and keep the model again.",
                    blob.size()
                ));
            }
            let options = FilePropertyBag::new();
            let file = File::new_with_blob_sequence_and_options(&Array::of1(&blob), file_name(path), &options)
                .map_err(|_| gone())?;
            out.push(file);
        }
        Ok(out)
    }

    /// Deletes whatever is kept.
    pub async fn forget() -> Result<(), String> {
        let storage = web_sys::window().and_then(|w| w.caches().ok()).ok_or(UNAVAILABLE)?;
        JsFuture::from(storage.delete(CACHE)).await.map(|_| ()).map_err(|_| UNAVAILABLE.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_round_trips_and_a_broken_one_is_nothing_kept() {
        let m = Manifest {
            name: "gpt2".into(),
            files: vec![("gpt2/config.json".into(), 700), ("model.safetensors".into(), 497_759_232)],
            kept_at: 1.7e12,
        };
        assert_eq!(Manifest::parse(&m.to_json()), Some(m.clone()));
        assert_eq!(m.bytes(), 497_759_932);
        for broken in
            ["", "{", "null", r#"{"name":"x","files":[],"kept_at":0}"#, r#"{"name":"","files":[["a",1]],"kept_at":0}"#]
        {
            assert_eq!(Manifest::parse(broken), None, "{broken}");
        }
    }

    #[test]
    fn a_file_is_kept_under_its_name() {
        assert_eq!(url_of("gpt2/config.json"), "kept-model/files/config.json");
        assert_eq!(url_of("model.safetensors"), "kept-model/files/model.safetensors");
        assert_eq!(url_of("my model/tokenizer (1).json"), "kept-model/files/tokenizer+%281%29.json");
    }

    #[test]
    fn room_is_checked_with_a_tenth_to_spare() {
        assert_eq!(no_room(500_000_000, None), None, "the browser did not say: try");
        assert_eq!(no_room(500_000_000, Some(600_000_000)), None);
        let m = no_room(500_000_000, Some(540_000_000)).unwrap();
        assert!(m.contains("keep 540.0 MB more") && m.contains("are 500.0 MB"), "{m}");
    }
}
