// Starts the tokenizer worker (src/bin/tokenizer_worker.rs). Trunk builds the worker with
// wasm-bindgen's no-modules target, which defines the global `wasm_bindgen`; its Rust `main` then listens
// for messages and posts {"type":"Ready"}. (Trunk's own loader shim passes the wasm path the deprecated
// way, which Chromium reports as a console warning, so this file replaces it.)
importScripts('./tokenizer_worker.js');
wasm_bindgen({ module_or_path: './tokenizer_worker_bg.wasm' });
