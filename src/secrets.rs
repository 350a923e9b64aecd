//! Secrets (API keys, tokens) kept out of reach of what agents run and out of everything stored
//! or printed.
//!
//! [`take_from_environment`] runs first in `main`: it takes every variable whose name looks like
//! a credential out of the process environment. Removing a variable in-process does not change
//! `/proc/<pid>/environ` (the initial environment block of the process), so when there is one,
//! the process re-executes itself (same pid, arguments, descriptors and signal state) without
//! them and receives them over an inherited pipe instead. It then makes itself non-dumpable, so
//! processes of the same user cannot read its `/proc/<pid>/environ` or memory, or attach to it.
//!
//! The values stay in one registry: [`var`] reads them (the library asks it, never the
//! environment, for anything that may be a secret), [`register`] adds values that configuration
//! expanded (an MCP server's `${VAR}`), and [`Secrets::redact`] blanks every known value out of
//! a text. Redaction matches whole values of at least [`MIN_REDACTED_LEN`] characters, so a short
//! value does not blank out unrelated words.

mod probe;

use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are kept out of the environment but not redacted from texts.
pub const MIN_REDACTED_LEN: usize = 8;

/// The variable that tells a re-executed process which descriptor holds its secrets.
pub const FD_VAR: &str = "SWARM_SECRETS_FD";

/// The first bytes of what the pipe carries, so that a stray descriptor is not taken for it.
const MAGIC: &[u8] = b"swarm-secrets-1\n";

/// The known secrets: values by variable name, and the values to redact.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    by_name: BTreeMap<String, String>,
    /// Longest first, so a value that contains another is replaced whole.
    values: Vec<String>,
}

static GLOBAL: RwLock<Secrets> = RwLock::new(Secrets {
    by_name: BTreeMap::new(),
    values: Vec::new(),
});

/// Whether any value is to be redacted: the fast path when none is.
static ANY: AtomicBool = AtomicBool::new(false);

impl Secrets {
    /// Adds a variable's value; values long enough are redacted from then on.
    pub fn insert(&mut self, name: Option<&str>, value: &str) {
        if let Some(name) = name {
            self.by_name.insert(name.to_string(), value.to_string());
        }
        if value.chars().count() >= MIN_REDACTED_LEN && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_string());
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// `text` with every known value replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), REDACTED));
            }
        }
        out
    }

    fn contains_any(&self, text: &str) -> bool {
        self.values.iter().any(|v| text.contains(v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// A secret's value by variable name: from the registry if start-up took it out of the
/// environment, else from the environment (a process that did not go through
/// [`take_from_environment`], such as a test).
pub fn var(name: &str) -> Option<String> {
    if let Some(value) = GLOBAL.read().by_name.get(name) {
        return Some(value.clone());
    }
    std::env::var(name).ok()
}

/// Whether a child process must not get `name` from the environment: a credential-like name,
/// or one whose value configuration uses as a secret.
pub fn is_secret_var(name: &str) -> bool {
    crate::tools::shell::is_secret_env_name(name) || GLOBAL.read().by_name.contains_key(name)
}

/// Adds a value that configuration expanded (e.g. an MCP header's `${TOKEN}`), with the name of
/// the variable it came from, so it is redacted like the keys.
pub fn register(name: &str, value: &str) {
    let mut global = GLOBAL.write();
    global.insert(Some(name), value);
    ANY.store(!global.is_empty(), Ordering::Release);
}

/// `text` with every known secret value replaced by [`REDACTED`].
pub fn redact(text: &str) -> Cow<'_, str> {
    if !ANY.load(Ordering::Acquire) {
        return Cow::Borrowed(text);
    }
    match GLOBAL.read().redact(text) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// Redacts `text` in place.
pub fn redact_in_place(text: &mut String) {
    if let Cow::Owned(clean) = redact(text) {
        *text = clean;
    }
}

/// Every string in a JSON value, redacted in place.
pub fn redact_json(value: &mut serde_json::Value) {
    if !ANY.load(Ordering::Acquire) {
        return;
    }
    match value {
        serde_json::Value::String(s) => redact_in_place(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_json),
        _ => {}
    }
}

/// `value` with every string in it redacted, through its serde form; unchanged (and not
/// rebuilt) when it holds no secret. For events, whose fields change often.
pub fn redact_serde<T: Serialize + DeserializeOwned>(value: T) -> T {
    if !ANY.load(Ordering::Acquire) {
        return value;
    }
    let found = {
        let registry = GLOBAL.read();
        probe::any_str(&value, &|text| registry.contains_any(text))
    };
    if !found {
        return value;
    }
    let Ok(mut tree) = serde_json::to_value(&value) else {
        return value;
    };
    redact_json(&mut tree);
    serde_json::from_value(tree).unwrap_or(value)
}

/// A writer that redacts what passes through it line by line, for logs on stderr.
#[derive(Debug, Default, Clone, Copy)]
pub struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingStderr;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Takes every credential-like variable out of the environment into the registry, re-executing
/// the process when needed so that `/proc/<pid>/environ` no longer holds them, and makes the
/// process non-dumpable. Call it first in `main`, before any thread starts: it changes the
/// environment and may replace the process image.
pub fn take_from_environment() {
    let inherited = take_inherited();
    let found: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            let value = value.into_string().ok()?;
            crate::tools::shell::is_secret_env_name(&name).then_some((name, value))
        })
        .collect();
    #[cfg(target_os = "linux")]
    if found.iter().any(|(_, value)| !value.is_empty()) {
        // Returns only when the process could not be replaced; the in-process removal below
        // is the fallback.
        process::reexec_without(&found, inherited.as_deref());
    }
    let mut global = GLOBAL.write();
    for (name, value) in inherited.into_iter().flatten().chain(found) {
        // SAFETY (edition 2021: a safe call): no other thread runs yet.
        std::env::remove_var(&name);
        global.insert(Some(&name), &value);
    }
    ANY.store(!global.is_empty(), Ordering::Release);
    drop(global);
    #[cfg(target_os = "linux")]
    process::make_undumpable();
}

/// The secrets a previous image of this process handed over, if it did.
fn take_inherited() -> Option<Vec<(String, String)>> {
    let fd = std::env::var(FD_VAR).ok()?;
    std::env::remove_var(FD_VAR);
    #[cfg(target_os = "linux")]
    {
        let bytes = process::read_pipe(fd.parse().ok()?)?;
        decode(&bytes)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        None
    }
}

fn encode(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

fn decode(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let body = bytes.strip_prefix(MAGIC)?;
    let mut fields = body.split(|b| *b == 0);
    let mut pairs = Vec::new();
    while let Some(name) = fields.next() {
        if name.is_empty() {
            break;
        }
        let value = fields.next()?;
        pairs.push((
            String::from_utf8(name.to_vec()).ok()?,
            String::from_utf8(value.to_vec()).ok()?,
        ));
    }
    Some(pairs)
}

#[cfg(target_os = "linux")]
mod process {
    //! The Linux side: the pipe, the re-exec and `PR_SET_DUMPABLE`.

    use super::FD_VAR;
    use std::ffi::{CString, OsString};
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStringExt;

    /// Replaces the process image with a fresh one of the same executable, arguments and
    /// environment minus `found`, which it gets over a pipe. Returns only on failure.
    pub(super) fn reexec_without(
        found: &[(String, String)],
        inherited: Option<&[(String, String)]>,
    ) {
        let mut pairs: Vec<(String, String)> = inherited.unwrap_or_default().to_vec();
        pairs.extend(found.iter().cloned());
        let payload = super::encode(&pairs);
        let Some(argv) = cstrings(std::env::args_os()) else {
            return;
        };
        let mut fds = [0i32; 2];
        // SAFETY: plain syscalls on integers and on buffers that outlive them.
        unsafe {
            if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                return;
            }
            let [read_end, write_end] = fds;
            let close_both = || {
                libc::close(read_end);
                libc::close(write_end);
            };
            // The whole payload must fit in the pipe: nobody reads it until after the exec.
            let capacity = libc::fcntl(write_end, libc::F_GETPIPE_SZ);
            if capacity < 0 || (capacity as usize) < payload.len() {
                let wanted = i32::try_from(payload.len()).unwrap_or(i32::MAX);
                if libc::fcntl(write_end, libc::F_SETPIPE_SZ, wanted) < 0 {
                    close_both();
                    return;
                }
            }
            let mut written = 0;
            while written < payload.len() {
                let n = libc::write(
                    write_end,
                    payload[written..].as_ptr().cast(),
                    payload.len() - written,
                );
                if n <= 0 {
                    close_both();
                    return;
                }
                written += n as usize;
            }
            libc::close(write_end);
            // The read end survives the exec.
            if libc::fcntl(read_end, libc::F_SETFD, 0) != 0 {
                libc::close(read_end);
                return;
            }
            let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
            let env = std::env::vars_os()
                .filter(|(name, _)| {
                    name.to_str()
                        .is_none_or(|n| n != FD_VAR && !names.contains(&n))
                })
                .map(|(name, value)| {
                    let mut entry = name;
                    entry.push("=");
                    entry.push(value);
                    entry
                })
                .chain(std::iter::once(OsString::from(format!(
                    "{FD_VAR}={read_end}"
                ))));
            let Some(envp) = cstrings(env) else {
                libc::close(read_end);
                return;
            };
            let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
            argv_ptrs.push(std::ptr::null());
            let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
            envp_ptrs.push(std::ptr::null());
            // The executable's own path keeps the process name (`/proc/<pid>/comm`); the magic
            // link works even when the file was replaced since it started.
            let own = std::env::current_exe()
                .ok()
                .and_then(|path| CString::new(path.into_os_string().into_vec()).ok());
            for path in own.iter().map(|p| p.as_c_str()).chain([c"/proc/self/exe"]) {
                libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr());
            }
            // Still here: the exec failed.
            libc::close(read_end);
        }
    }

    fn cstrings(items: impl Iterator<Item = OsString>) -> Option<Vec<CString>> {
        items.map(|s| CString::new(s.into_vec()).ok()).collect()
    }

    /// Reads the secrets pipe to its end and closes it. Anything but a pipe is left alone.
    pub(super) fn read_pipe(fd: i32) -> Option<Vec<u8>> {
        if fd < 3 {
            return None;
        }
        // SAFETY: fstat fills a plain struct; the descriptor is owned (and closed) below only
        // when it is a pipe, which only the previous image of this process hands over.
        unsafe {
            let mut stat: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut stat) != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFIFO {
                return None;
            }
            let mut file = std::fs::File::from_raw_fd(fd);
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).ok()?;
            Some(bytes)
        }
    }

    /// Processes of the same user can no longer read `/proc/<pid>/environ`, `mem`, or attach.
    pub(super) fn make_undumpable() {
        // SAFETY: prctl with integer arguments.
        unsafe {
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_long_values_are_redacted_short_ones_are_not() {
        let mut secrets = Secrets::default();
        secrets.insert(Some("OPENAI_API_KEY"), "sk-test-1234567890");
        secrets.insert(Some("SHORT_TOKEN"), "abc");
        let text = "key sk-test-1234567890 and abc and sk-test-12";
        assert_eq!(
            secrets.redact(text),
            "key [redacted] and abc and sk-test-12"
        );
        assert!(matches!(secrets.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_value_containing_another_is_replaced_whole() {
        let mut secrets = Secrets::default();
        secrets.insert(None, "token-abcdefgh");
        secrets.insert(None, "token-abcdefgh-and-more");
        assert_eq!(
            secrets.redact("x token-abcdefgh-and-more y"),
            "x [redacted] y"
        );
    }

    #[test]
    fn the_pipe_format_round_trips() {
        let pairs = vec![
            ("OPENAI_API_KEY".to_string(), "sk-1".to_string()),
            ("EMPTY_TOKEN".to_string(), String::new()),
        ];
        assert_eq!(decode(&encode(&pairs)), Some(pairs));
        assert_eq!(decode(b"something else"), None);
    }
}
