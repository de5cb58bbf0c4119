//! The model a student opened in this tab (`#/open`), kept for the session with its tokenizer: a worker that
//! lives as long as the model (`core::worker::Tokenizing`), and every id's piece. Here in `core`, not in the
//! lab that opens it, so that every lab can read it (labs import only `core`, `lens` and `routes`).
use std::cell::RefCell;
use std::sync::Arc;

use super::worker::{Tokenizing, Worker};
use crate::lens::Transformer;

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
