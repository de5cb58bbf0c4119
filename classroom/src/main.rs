//! `classroom`: the whole built site in one native program, for a room with no internet.
//!
//! ```sh
//! bash .ci/classroom            # build the site, then this program, and start it (see README)
//! target/release/classroom --lan
//! ```
//!
//! The site (`dist/`, as `trunk build --release` leaves it) is embedded when this program is compiled, so the
//! binary can be copied alone to a teacher's laptop. It serves on this machine only (127.0.0.1) unless `--lan` is
//! given; then it prints the address on the local network and a QR code for students to scan.
//!
//! Rules: read-only (GET and HEAD only); only the embedded files, no directory listing; every file with its
//! MIME type (`.wasm` as `application/wasm`, which browsers require to compile it while it downloads); nothing
//! is logged about who asks for what, only a running count of requests.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;
use rust_embed::RustEmbed;
use tiny_http::{Header, Method, Response, Server};

/// The built site. `allow_missing`: the program still compiles before the site is built, and then says so.
#[derive(RustEmbed)]
#[folder = "../dist/"]
#[allow_missing = true]
struct Site;

#[derive(Parser, Debug)]
#[command(name = "classroom", about = "Serve the Glassbox playground to a classroom, with no internet.")]
struct Args {
    /// Serve on the local network (all interfaces), not only on this machine.
    #[arg(long)]
    lan: bool,
    /// The port to listen on (0: any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Worker threads answering requests.
    #[arg(long, default_value_t = 8)]
    threads: usize,
}

/// What a request path maps to: the embedded file's name, or nothing (404).
fn resolve(url: &str) -> Option<String> {
    // The query and fragment never name a file (sections are hash routes, `/#/9.2.1`).
    let path = url.split(['?', '#']).next().unwrap_or("");
    let path = path.strip_prefix('/')?;
    // Percent-decoding is not needed: every file of the build has a plain name. `..` and empty segments are
    // refused outright rather than normalised.
    if path.split('/').any(|seg| seg == ".." || seg == ".") || path.contains("//") || path.contains('\\') {
        return None;
    }
    let name = if path.is_empty() { "index.html".to_string() } else { path.to_string() };
    Site::get(&name).map(|_| name)
}

/// How long a browser may keep a file without asking again. Hashed names (`glassbox-<hash>.js`,
/// `chapter-<hash>.json`) never change content; everything else (index.html, sw.js, the models) is checked on each
/// use.
fn cache_control(name: &str) -> &'static str {
    let stem = name.rsplit('/').next().unwrap_or(name);
    let hashed = stem
        .split(['-', '.', '_'])
        .any(|part| (12..=16).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_hexdigit()));
    if hashed && !stem.starts_with("sw.") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("ASCII header")
}

fn main() {
    let args = Args::parse();
    if Site::get("index.html").is_none() {
        eprintln!(
            "classroom: this program was compiled before the site was built, so it holds no site.\n\
             Build the site first (trunk build --release), then compile this program again: bash .ci/classroom"
        );
        std::process::exit(2);
    }
    let ip = if args.lan { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::LOCALHOST) };
    let server = match Server::http(SocketAddr::new(ip, args.port)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("classroom: cannot listen on port {}: {e}. Try another one: --port 8081", args.port);
            std::process::exit(1);
        }
    };
    let port = server.server_addr().to_ip().map(|a| a.port()).unwrap_or(args.port);
    let files = Site::iter().count();
    println!("Glassbox classroom server: {files} files embedded.");
    println!("On this machine: http://127.0.0.1:{port}/");
    if args.lan {
        match local_ip_address::local_ip() {
            Ok(lan) => {
                let url = format!("http://{lan}:{port}/");
                println!("Students on the same network open: {url}");
                if let Ok(code) = QrCode::new(url.as_bytes()) {
                    // Drawn for a terminal with light text on a dark background, the usual default (as
                    // `qrencode -t UTF8` does): the code's dark modules are printed as blanks.
                    let art = code
                        .render::<Dense1x2>()
                        .dark_color(Dense1x2::Light)
                        .light_color(Dense1x2::Dark)
                        .quiet_zone(true)
                        .build();
                    println!("{art}");
                }
            }
            Err(e) => println!("(no local network address found: {e}; students need this machine's address)"),
        }
    }
    println!("Press Ctrl-C to stop.");

    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.threads.max(1) {
        let server = server.clone();
        let count = count.clone();
        workers.push(std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                // The only record kept: how many requests, now and then.
                if n.is_power_of_two() && n >= 64 {
                    println!("{n} requests served in {:.0?}", started.elapsed());
                }
                answer(request);
            }
        }));
    }
    for w in workers {
        let _ = w.join();
    }
}

fn answer(request: tiny_http::Request) {
    let method = request.method().clone();
    if method != Method::Get && method != Method::Head {
        let r = Response::from_string("read-only: only GET and HEAD\n")
            .with_status_code(405)
            .with_header(header("Allow", "GET, HEAD"));
        let _ = request.respond(r);
        return;
    }
    let Some(name) = resolve(request.url()) else {
        let r = Response::from_string("not found\n")
            .with_status_code(404)
            .with_header(header("Content-Type", "text/plain; charset=utf-8"));
        let _ = request.respond(r);
        return;
    };
    let file = Site::get(&name).expect("resolve checked it");
    let mime = file.metadata.mimetype();
    let mime = if mime.starts_with("text/") || mime.ends_with("javascript") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    // (tiny_http sends the headers alone for HEAD.)
    let len = file.data.len();
    let body = file.data.into_owned();
    let r = Response::new(
        200.into(),
        vec![
            header("Content-Type", &mime),
            header("Cache-Control", cache_control(&name)),
            header("X-Content-Type-Options", "nosniff"),
        ],
        std::io::Cursor::new(body),
        Some(len),
        None,
    )
    // A Content-Length rather than chunks, however large: the browser then knows each model's size as it loads.
    .with_chunked_threshold(usize::MAX);
    let _ = request.respond(r);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_embedded_files_only() {
        // These hold whether or not the site was embedded: nothing outside it is ever reachable.
        assert_eq!(resolve("/../Cargo.toml"), None);
        assert_eq!(resolve("/models/../../Cargo.toml"), None);
        assert_eq!(resolve("//etc/passwd"), None);
        assert_eq!(resolve("/models/"), None, "no directory listing");
        assert_eq!(resolve("relative"), None);
        if Site::get("index.html").is_some() {
            assert_eq!(resolve("/").as_deref(), Some("index.html"));
            assert_eq!(resolve("/?x=1#/9.2.1").as_deref(), Some("index.html"));
            assert_eq!(resolve("/sw.js").as_deref(), Some("sw.js"));
        }
    }

    #[test]
    fn only_hashed_names_are_kept_for_long() {
        assert_eq!(cache_control("glassbox-93cc9d59f2627ff7_bg.wasm"), "public, max-age=31536000, immutable");
        // The relaxed-SIMD build, named by src/worker/post_build.mjs.
        assert_eq!(cache_control("glassbox_relaxed-0b527d516013930e.js"), "public, max-age=31536000, immutable");
        assert_eq!(cache_control("main-c0fe1cc3740a11e0.css"), "public, max-age=31536000, immutable");
        // The chapter's text, named by its bytes by Trunk's pre-build hook (chapter/).
        assert_eq!(cache_control("chapter-b9e587df0768aca3.json"), "public, max-age=31536000, immutable");
        assert_eq!(cache_control("index.html"), "no-cache");
        assert_eq!(cache_control("sw.js"), "no-cache");
        assert_eq!(cache_control("models/moby/model.safetensors"), "no-cache");
        assert_eq!(cache_control("toy_worker_bg.wasm"), "no-cache");
    }
}
