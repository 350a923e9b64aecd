//! The coding tools over the workspace: `edit_file` (replace an exact string), `search_files`
//! (a regex over the files, honouring `.gitignore`, as ripgrep does) and `glob_files` (paths by
//! glob). Paths are confined like the other file tools: symbolic links are not followed, and a
//! file with more than one hard link is neither edited nor searched.

use super::workspace::{refuse_hard_links, Workspace, WorkspaceError};
use globset::GlobBuilder;
use grep_regex::RegexMatcherBuilder;
use grep_searcher::sinks::UTF8;
use grep_searcher::{BinaryDetection, SearcherBuilder};
use ignore::overrides::OverrideBuilder;
use ignore::WalkBuilder;
use std::fs;
use std::io::Read;
use std::path::Path;

/// Largest file `edit_file` edits.
pub const EDIT_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Matching lines one `search_files` call returns.
pub const SEARCH_MAX_MATCHES: usize = 200;
/// Characters of a matching line shown; the rest is cut.
pub const SEARCH_LINE_CHARS: usize = 300;
/// Paths one `glob_files` call returns.
pub const GLOB_MAX_PATHS: usize = 1000;
/// Files visited before a search or glob stops, so a huge tree cannot stall an agent.
const MAX_VISITED: usize = 50_000;

/// Replaces `old` with `new` in the file at `rel`: exactly one occurrence, or every one with
/// `replace_all`. Returns how many were replaced. The file is rewritten like `write_file`
/// (temporary file renamed over it, mode kept).
pub fn edit_file(
    ws: &Workspace,
    rel: &str,
    old: &str,
    new: &str,
    replace_all: bool,
) -> Result<usize, String> {
    if old.is_empty() {
        return Err("`old_string` is empty; give the exact text to replace (use write_file to create a file)".into());
    }
    if old == new {
        return Err("`old_string` and `new_string` are the same; nothing would change".into());
    }
    let path = ws.existing(rel).map_err(|e| e.to_string())?;
    let meta = fs::metadata(&path).map_err(|e| e.to_string())?;
    if meta.is_dir() {
        return Err(WorkspaceError::IsADirectory { path: rel.into() }.to_string());
    }
    if !meta.is_file() {
        return Err(WorkspaceError::NotRegular { path: rel.into() }.to_string());
    }
    refuse_hard_links(rel, &meta).map_err(|e| e.to_string())?;
    if meta.len() > EDIT_MAX_BYTES {
        return Err(format!(
            "`{rel}` has {} bytes; edit_file edits files up to {EDIT_MAX_BYTES} bytes",
            meta.len()
        ));
    }
    let mut bytes = Vec::new();
    fs::File::open(&path)
        .and_then(|f| f.take(EDIT_MAX_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| format!("could not read `{rel}`: {e}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| WorkspaceError::NotUtf8 { path: rel.into() }.to_string())?;
    let starts: Vec<usize> = text.match_indices(old).map(|(i, _)| i).collect();
    match starts.len() {
        0 => {
            return Err(format!(
                "`old_string` was not found in `{rel}`; read the file again and copy the text exactly, including whitespace and indentation"
            ))
        }
        1 => {}
        n if !replace_all => {
            let lines: Vec<String> = starts
                .iter()
                .take(10)
                .map(|&i| (text[..i].matches('\n').count() + 1).to_string())
                .collect();
            return Err(format!(
                "`old_string` occurs {n} times in `{rel}` (lines {}); include more of the surrounding text to make it unique, or set `replace_all: true`",
                lines.join(", ")
            ));
        }
        _ => {}
    }
    let updated = if replace_all {
        text.replace(old, new)
    } else {
        text.replacen(old, new, 1)
    };
    ws.write_file(rel, &updated).map_err(|e| e.to_string())?;
    Ok(starts.len())
}

/// Where a search or glob starts: the root, or a folder or file given relative to it.
fn start(ws: &Workspace, rel: Option<&str>) -> Result<std::path::PathBuf, String> {
    ws.existing(rel.unwrap_or("")).map_err(|e| e.to_string())
}

/// A walk over `from` that honours `.gitignore` (also outside a git repository), `.ignore`
/// and hidden files as ripgrep does, never follows symbolic links, and keeps only paths that
/// match `glob` (relative to the workspace root) when one is given.
fn walker(ws: &Workspace, from: &Path, glob: Option<&str>) -> Result<ignore::Walk, String> {
    let mut builder = WalkBuilder::new(from);
    builder.require_git(false).follow_links(false);
    if let Some(glob) = glob {
        let mut overrides = OverrideBuilder::new(ws.root());
        overrides
            .add(glob)
            .map_err(|e| format!("`glob` is not a valid glob: {e}"))?;
        builder.overrides(
            overrides
                .build()
                .map_err(|e| format!("`glob` is not a valid glob: {e}"))?,
        );
    }
    Ok(builder.build())
}

/// Lines matching `pattern` (a Rust regex) as `path:line:text`, sorted by path, capped at
/// [`SEARCH_MAX_MATCHES`] with a note saying how many more there were.
pub fn search_files(
    ws: &Workspace,
    pattern: &str,
    rel: Option<&str>,
    glob: Option<&str>,
    case_insensitive: bool,
) -> Result<String, String> {
    let matcher = RegexMatcherBuilder::new()
        .case_insensitive(case_insensitive)
        .build(pattern)
        .map_err(|e| format!("`pattern` is not a valid regex: {e}"))?;
    let from = start(ws, rel)?;
    let mut searcher = SearcherBuilder::new()
        .binary_detection(BinaryDetection::quit(0))
        .line_number(true)
        .build();
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    let mut hard_linked = 0usize;
    let mut gave_up = false;
    for entry in walker(ws, &from, glob)? {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if refuse_hard_links("", &meta).is_err() {
            hard_linked += 1;
            continue;
        }
        if files.len() >= MAX_VISITED {
            gave_up = true;
            break;
        }
        files.push(entry.into_path());
    }
    files.sort();
    let mut lines = Vec::new();
    let mut more = 0usize;
    for file in &files {
        let shown = ws.relative(file);
        // A file that is not UTF-8 past its first lines ends its own search, not the call's.
        let _ = searcher.search_path(
            &matcher,
            file,
            UTF8(|line_number, line| {
                if lines.len() < SEARCH_MAX_MATCHES {
                    let line = line.trim_end_matches(['\n', '\r']);
                    let cut: String = line.chars().take(SEARCH_LINE_CHARS).collect();
                    let ellipsis = if cut.len() < line.len() { "…" } else { "" };
                    lines.push(format!("{shown}:{line_number}:{cut}{ellipsis}"));
                } else {
                    more += 1;
                }
                Ok(true)
            }),
        );
    }
    let mut text = if lines.is_empty() {
        format!("no matches for `{pattern}`")
    } else {
        lines.join("\n")
    };
    if more > 0 {
        text.push_str(&format!(
            "\n[{more} more matching lines not shown; narrow the pattern, the path or the glob]"
        ));
    }
    if gave_up {
        text.push_str(&format!(
            "\n[stopped after {MAX_VISITED} files; search a subfolder]"
        ));
    }
    if hard_linked > 0 {
        text.push_str(&format!(
            "\n[{hard_linked} files with more than one hard link were not searched]"
        ));
    }
    Ok(text)
}

/// Paths (relative to the root, sorted) of the files matching `pattern`, where `*` stays
/// within a folder and `**` crosses folders; `.gitignore`d files are left out.
pub fn glob_files(ws: &Workspace, pattern: &str, rel: Option<&str>) -> Result<String, String> {
    let glob = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("`pattern` is not a valid glob: {e}"))?
        .compile_matcher();
    let from = start(ws, rel)?;
    let mut paths = Vec::new();
    let mut visited = 0usize;
    for entry in walker(ws, &from, None)? {
        let Ok(entry) = entry else { continue };
        visited += 1;
        if visited > MAX_VISITED {
            break;
        }
        if entry.depth() == 0 || entry.file_type().is_some_and(|t| t.is_dir()) {
            continue;
        }
        let shown = ws.relative(entry.path());
        if glob.is_match(&shown) {
            paths.push(shown);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Ok(format!("no files match `{pattern}`"));
    }
    let total = paths.len();
    paths.truncate(GLOB_MAX_PATHS);
    let mut text = paths.join("\n");
    if total > GLOB_MAX_PATHS {
        text.push_str(&format!(
            "\n[{} more paths not shown; narrow the pattern]",
            total - GLOB_MAX_PATHS
        ));
    }
    if visited > MAX_VISITED {
        text.push_str(&format!(
            "\n[stopped after {MAX_VISITED} entries; glob a subfolder]"
        ));
    }
    Ok(text)
}
