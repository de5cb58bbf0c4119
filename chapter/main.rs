//! `glassbox-chapter [OUT_DIR] [CONTENT_DIR]`: compiles the chapter (`content/*.md`) and writes its text, the
//! sections' and the references page's HTML, as `OUT_DIR/chapter-{hash}.json` (`src/content/driver.rs`), the
//! file the app fetches at start (`content::CHAPTER_FILE`, which build.rs derives from the same bytes).
//!
//! Trunk runs it before each build (Trunk.toml's `pre_build` hook) from the project's root; `OUT_DIR` defaults to
//! Trunk's staging folder (`$TRUNK_STAGING_DIR`) and `CONTENT_DIR` to `content`.
use std::path::PathBuf;
use std::process::ExitCode;

// The program writes the text only: the exercises and the references' entries, which the compiler also
// returns, are build.rs's (the app compiles them in), as are the list of files read and the warnings, which
// build.rs prints during the same site build.
#[allow(dead_code)]
#[path = "../src/content/compile.rs"]
mod compile;

#[allow(dead_code)]
#[path = "../src/routes.rs"]
mod routes;

#[allow(dead_code)]
#[path = "../src/content/driver.rs"]
mod driver;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(out_dir) =
        args.next().map(PathBuf::from).or_else(|| std::env::var_os("TRUNK_STAGING_DIR").map(PathBuf::from))
    else {
        eprintln!("usage: glassbox-chapter OUT_DIR [CONTENT_DIR] (OUT_DIR defaults to $TRUNK_STAGING_DIR)");
        return ExitCode::from(2);
    };
    let content_dir = args.next().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("content"));
    let built = match driver::build(&content_dir) {
        Ok(built) => built,
        Err(errors) => {
            eprintln!("The chapter text in {} has {} error(s):", content_dir.display(), errors.len());
            for e in &errors {
                eprintln!("  error: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    let json = driver::chapter_json(&built.chapter);
    let file = out_dir.join(driver::file_name(&json));
    if let Err(e) = std::fs::create_dir_all(&out_dir).and_then(|()| std::fs::write(&file, &json)) {
        eprintln!("glassbox-chapter: cannot write {}: {e}", file.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
