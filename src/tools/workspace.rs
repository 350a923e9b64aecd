//! The workspace: the one folder the file tools may touch, and the confined file operations
//! they are built on.
//!
//! Every path an agent gives is relative to the workspace root and is checked before use:
//! absolute paths, `..`, NUL bytes and symbolic links that lead outside the root are refused.
//! Symlinks are checked component by component, so a link anywhere along the path counts, and
//! a path that does not exist yet is judged by its nearest existing ancestor. The check and the
//! use are not atomic: a process racing the agent inside the workspace could still swap a
//! folder for a link in between. Agents only act through these tools, so that race needs a
//! `run_command`, which a swarm has to allow explicitly. A regular file with more than one hard
//! link is not read or edited: a hard link planted in the workspace can name any file of the
//! same file system, and nothing in the path shows it. Writing replaces the link with a new
//! file, so it never changes the other file.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of a file `read_file` returns to the model; longer files are truncated with a note.
pub const READ_FILE_MAX_BYTES: u64 = 64 * 1024;

/// Entries `list_files` returns; beyond it the listing ends with a note.
pub const LIST_FILES_MAX_ENTRIES: usize = 1000;

/// Entries visited before a recursive listing gives up counting, so a huge tree cannot stall
/// an agent.
const LIST_FILES_MAX_VISITED: usize = 20 * LIST_FILES_MAX_ENTRIES;

/// Why a workspace operation was refused or failed. Messages name the path as the agent wrote
/// it and say what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("could not open the workspace folder {root}: {source}")]
    Open { root: PathBuf, source: io::Error },
    #[error("no path given: name a file relative to the workspace root, such as `notes/plan.md`")]
    EmptyPath,
    #[error("refused `{path}`: it is an absolute path; use a path relative to the workspace root, such as `src/main.rs`")]
    Absolute { path: String },
    #[error("refused `{path}`: `..` is not allowed; files can only be reached from the workspace root downwards")]
    ParentDir { path: String },
    #[error("refused the path: it contains a NUL byte")]
    NulByte,
    #[error("refused `{path}`: `{link}` is a symbolic link that leads outside the workspace")]
    SymlinkEscape { path: String, link: String },
    #[error("refused `{path}`: `{link}` is a symbolic link whose target does not exist")]
    DanglingSymlink { path: String, link: String },
    #[error("`{path}` does not exist; use list_files to see what is in the workspace")]
    NotFound { path: String },
    #[error("`{path}` is a folder, not a file; use list_files to see what is in it")]
    IsADirectory { path: String },
    #[error("`{path}` is a file, not a folder; use read_file to read it")]
    NotADirectory { path: String },
    #[error(
        "`{path}` is not a regular file (a pipe, socket or device); read_file only reads files"
    )]
    NotRegular { path: String },
    #[error("refused `{path}`: it has {links} hard links, so it may be a file outside the workspace; copy it instead of linking it")]
    HardLinked { path: String, links: u64 },
    #[error("`{path}` is not UTF-8 text (a binary file?); read_file only returns text")]
    NotUtf8 { path: String },
    #[error("could not {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: String,
        source: io::Error,
    },
}

impl WorkspaceError {
    fn io<'a>(action: &'static str, path: &'a str) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| match source.kind() {
            io::ErrorKind::NotFound => WorkspaceError::NotFound {
                path: path.to_string(),
            },
            _ => WorkspaceError::Io {
                action,
                path: path.to_string(),
                source,
            },
        }
    }
}

/// A regular file with more than one hard link may be a file from outside the workspace that a
/// link planted inside (a symlink check cannot see it): reading or editing it is refused.
pub fn refuse_hard_links(rel: &str, meta: &fs::Metadata) -> Result<(), WorkspaceError> {
    use std::os::unix::fs::MetadataExt;
    let links = meta.nlink();
    if meta.is_file() && links > 1 {
        return Err(WorkspaceError::HardLinked {
            path: rel.to_string(),
            links,
        });
    }
    Ok(())
}

/// A folder that file tools are confined to. The root is canonical, so every resolved path
/// can be compared with it by prefix.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// Opens the folder, creating it (and its parents) when missing.
    pub fn open(root: &Path) -> Result<Self, WorkspaceError> {
        let open_err = |source| WorkspaceError::Open {
            root: root.to_path_buf(),
            source,
        };
        fs::create_dir_all(root).map_err(open_err)?;
        let root = fs::canonicalize(root).map_err(open_err)?;
        Ok(Self { root })
    }

    /// The canonical root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The real path `rel` names inside the workspace, or why it is refused. `""` and `.` name
    /// the root. The path need not exist; its nearest existing ancestor must be inside.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, WorkspaceError> {
        if rel.contains('\0') {
            return Err(WorkspaceError::NulByte);
        }
        let path = Path::new(rel);
        let mut names = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(name) => names.push(name),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(WorkspaceError::ParentDir {
                        path: rel.to_string(),
                    })
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(WorkspaceError::Absolute {
                        path: rel.to_string(),
                    })
                }
            }
        }

        let mut resolved = self.root.clone();
        let mut walked = PathBuf::new();
        let mut names = names.into_iter();
        // Set once a component turns out to be a file, which cannot have anything below it.
        let mut file_so_far: Option<PathBuf> = None;
        for name in names.by_ref() {
            if let Some(file) = file_so_far {
                return Err(WorkspaceError::NotADirectory {
                    path: file.display().to_string(),
                });
            }
            walked.push(name);
            let candidate = resolved.join(name);
            let meta = match fs::symlink_metadata(&candidate) {
                Ok(meta) => meta,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    resolved = candidate;
                    break;
                }
                Err(err) => return Err(WorkspaceError::io("inspect", rel)(err)),
            };
            if !meta.file_type().is_symlink() {
                if !meta.is_dir() {
                    file_so_far = Some(walked.clone());
                }
                resolved = candidate;
                continue;
            }
            let link = walked.display().to_string();
            let target =
                fs::canonicalize(&candidate).map_err(|_| WorkspaceError::DanglingSymlink {
                    path: rel.to_string(),
                    link: link.clone(),
                })?;
            if !target.starts_with(&self.root) {
                return Err(WorkspaceError::SymlinkEscape {
                    path: rel.to_string(),
                    link,
                });
            }
            if !target.is_dir() {
                file_so_far = Some(walked.clone());
            }
            resolved = target;
        }
        // Everything after the first missing component is missing too, and holds only plain
        // names, so it cannot leave the root.
        resolved.extend(names);
        Ok(resolved)
    }

    /// The text of a file. A file longer than `max_bytes` is truncated (at a character
    /// boundary) and ends with a note saying how much was shown, so the model knows it did not
    /// see everything. Files that are not UTF-8 are refused.
    pub fn read_file(&self, rel: &str, max_bytes: u64) -> Result<String, WorkspaceError> {
        let path = self.existing(rel)?;
        let meta = fs::metadata(&path).map_err(WorkspaceError::io("read", rel))?;
        if meta.is_dir() {
            return Err(WorkspaceError::IsADirectory {
                path: rel.to_string(),
            });
        }
        // Opening a FIFO or a device could block the agent forever or never end.
        if !meta.is_file() {
            return Err(WorkspaceError::NotRegular {
                path: rel.to_string(),
            });
        }
        refuse_hard_links(rel, &meta)?;
        let file = fs::File::open(&path).map_err(WorkspaceError::io("open", rel))?;
        // Checked again on the opened file: a link made between the check and the open counts.
        let opened = file.metadata().map_err(WorkspaceError::io("read", rel))?;
        refuse_hard_links(rel, &opened)?;
        let mut bytes = Vec::new();
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(WorkspaceError::io("read", rel))?;
        let truncated = bytes.len() as u64 > max_bytes;
        if truncated {
            bytes.truncate(usize::try_from(max_bytes).unwrap_or(usize::MAX));
        }
        let text_len = match std::str::from_utf8(&bytes) {
            Ok(_) => bytes.len(),
            // A character cut by the cap is dropped; anything else is not text.
            Err(err) if truncated && err.error_len().is_none() => err.valid_up_to(),
            Err(_) => {
                return Err(WorkspaceError::NotUtf8 {
                    path: rel.to_string(),
                })
            }
        };
        bytes.truncate(text_len);
        let mut text = String::from_utf8(bytes).map_err(|_| WorkspaceError::NotUtf8 {
            path: rel.to_string(),
        })?;
        if truncated {
            let total = meta.len().max(max_bytes);
            text.push_str(&format!(
                "\n[truncated: showing the first {text_len} of {total} bytes of `{rel}`]"
            ));
        }
        Ok(text)
    }

    /// Writes `content` to a file, creating missing parent folders, and returns the bytes
    /// written. The content goes to a temporary file beside the target that is then renamed
    /// over it, so readers never see a half-written file.
    pub fn write_file(&self, rel: &str, content: &str) -> Result<u64, WorkspaceError> {
        let path = self.resolve(rel)?;
        if path == self.root {
            return Err(WorkspaceError::EmptyPath);
        }
        if path.is_dir() {
            return Err(WorkspaceError::IsADirectory {
                path: rel.to_string(),
            });
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(WorkspaceError::EmptyPath);
        };
        fs::create_dir_all(parent).map_err(WorkspaceError::io("create the folders of", rel))?;
        // The replacement is a new file: carry over the mode so a script stays executable.
        let keep_permissions = fs::metadata(&path).ok().map(|meta| meta.permissions());

        static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
        let temp = parent.join(format!(
            ".{}.tmp-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            file.write_all(content.as_bytes())?;
            if let Some(permissions) = keep_permissions {
                file.set_permissions(permissions)?;
            }
            file.sync_all()?;
            fs::rename(&temp, &path)
        })();
        if let Err(source) = written {
            let _ = fs::remove_file(&temp);
            return Err(WorkspaceError::io("write", rel)(source));
        }
        Ok(content.len() as u64)
    }

    /// Paths relative to the workspace root, sorted, folders ending in `/`. `None` lists the
    /// root. Symbolic links are never followed: links that lead outside are left out, links
    /// inside are listed but not descended into. Beyond [`LIST_FILES_MAX_ENTRIES`] the list
    /// ends with a note entry in square brackets.
    pub fn list_files(
        &self,
        rel: Option<&str>,
        recursive: bool,
    ) -> Result<Vec<String>, WorkspaceError> {
        let rel = rel.unwrap_or("");
        let dir = self.existing(rel)?;
        if !dir.is_dir() {
            return Err(WorkspaceError::NotADirectory {
                path: rel.to_string(),
            });
        }
        let mut entries = Vec::new();
        let mut pending = vec![dir];
        let mut gave_up = false;
        while let Some(dir) = pending.pop() {
            let listing = fs::read_dir(&dir).map_err(WorkspaceError::io("list", rel))?;
            for entry in listing {
                if entries.len() >= LIST_FILES_MAX_VISITED {
                    gave_up = true;
                    break;
                }
                let entry = entry.map_err(WorkspaceError::io("list", rel))?;
                let path = entry.path();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let is_dir = if kind.is_symlink() {
                    match fs::canonicalize(&path) {
                        Ok(target) if target.starts_with(&self.root) => target.is_dir(),
                        _ => continue,
                    }
                } else {
                    kind.is_dir()
                };
                let mut shown = self.relative(&path);
                if is_dir {
                    shown.push('/');
                    if recursive && !kind.is_symlink() {
                        pending.push(path);
                    }
                }
                entries.push(shown);
            }
            if gave_up {
                break;
            }
        }
        entries.sort();
        if entries.len() > LIST_FILES_MAX_ENTRIES || gave_up {
            let hidden = entries.len() - LIST_FILES_MAX_ENTRIES.min(entries.len());
            entries.truncate(LIST_FILES_MAX_ENTRIES);
            let more = if gave_up { "at least " } else { "" };
            entries.push(format!(
                "[{more}{hidden} more entries not shown; list a subfolder to see them]"
            ));
        }
        Ok(entries)
    }

    /// Like [`Workspace::resolve`], for paths that must exist.
    pub fn existing(&self, rel: &str) -> Result<PathBuf, WorkspaceError> {
        let path = self.resolve(rel)?;
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(path),
            Err(err) => Err(WorkspaceError::io("inspect", rel)(err)),
        }
    }

    /// `path` (inside the root) as the agent would write it.
    pub fn relative(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        rel.to_string_lossy().into_owned()
    }
}
