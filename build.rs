//! Embeds the repository's role files (agents/*.md) and predefined swarms (swarms/*.yaml) in the
//! binary, so `swarm` finds them from any folder. A generated list means a new file is embedded
//! without touching the code.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let mut code = String::new();
    for (dir, extensions, constant) in [
        ("agents", &["md"][..], "BUILTIN_ROLES"),
        ("swarms", &["yaml", "yml"][..], "BUILTIN_SWARMS"),
    ] {
        println!("cargo:rerun-if-changed={dir}");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.extension()
                            .and_then(|e| e.to_str())
                            .is_some_and(|e| extensions.contains(&e))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        writeln!(code, "pub(crate) static {constant}: &[(&str, &str)] = &[").ok();
        for path in files {
            println!("cargo:rerun-if-changed={}", path.display());
            let absolute = Path::new(env!("CARGO_MANIFEST_DIR")).join(&path);
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("file names in agents/ and swarms/ are UTF-8");
            writeln!(
                code,
                "    ({name:?}, include_str!({:?})),",
                absolute.display().to_string()
            )
            .ok();
        }
        writeln!(code, "];").ok();
    }
    std::fs::write(Path::new(&out_dir).join("builtin.rs"), code)
        .expect("OUT_DIR is writable during the build");
}
