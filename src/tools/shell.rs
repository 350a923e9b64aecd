//! Running shell commands for agents (`run_command`) and for hooks: `sh -c` in a fixed folder,
//! with no stdin, an environment stripped of secrets, output capped, and a timeout that kills
//! the command together with every process it started.
//!
//! Each command runs in its own process group so that a timeout, or the end of the command,
//! can kill the whole group: a `sleep` started by a shell script, or a server left in the
//! background, must not outlive the call that started it.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// How long processes that left the command's process group may keep its output pipes open
/// after the command has ended before the output is considered complete.
const STRAY_WRITER_GRACE: Duration = Duration::from_millis(500);

/// How a shell command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellOutcome {
    /// The exit code; `None` when the command was killed by a signal (including on timeout).
    pub exit_code: Option<i32>,
    /// The signal that ended the command, if one did.
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// stdout and stderr interleaved in arrival order, decoded lossily, with the middle cut when
    /// longer than the cap.
    pub output: String,
    /// Output bytes dropped by the cap.
    pub cut_bytes: u64,
    pub elapsed: Duration,
}

impl ShellOutcome {
    /// Exited by itself with code 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

/// Whether an environment variable looks like a credential that commands must not see:
/// `*_API_KEY` and any `*_KEY`, and names with a `TOKEN`, `SECRET`, `PASSWORD`, `PASSWD` or
/// `CREDENTIALS` word. Matching whole `_`-separated words keeps `TOKENIZERS_PARALLELISM`.
pub fn is_secret_env_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let mut words = upper.split('_').filter(|w| !w.is_empty()).peekable();
    let mut last = "";
    while let Some(word) = words.next() {
        if matches!(
            word,
            "TOKEN" | "SECRET" | "PASSWORD" | "PASSWD" | "CREDENTIAL" | "CREDENTIALS"
        ) {
            return true;
        }
        if words.peek().is_none() {
            last = word;
        }
    }
    last == "KEY"
}

/// Runs `sh -c command` in `cwd` with the parent's environment minus secrets, plus `extra_env`.
/// Fails only when the shell cannot be started; a failing or timed-out command is an `Ok`.
pub async fn run_shell(
    cwd: &Path,
    command: &str,
    extra_env: &[(&str, String)],
    timeout: Duration,
    output_cap: usize,
    sandbox: Option<&super::sandbox::Sandbox>,
) -> io::Result<ShellOutcome> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_none_or(crate::secrets::is_secret_var) {
            cmd.env_remove(&name);
        }
    }
    for (name, value) in extra_env {
        cmd.env(name, value);
    }
    if let Some(sandbox) = sandbox {
        sandbox.apply(&mut cmd);
    }

    let started = Instant::now();
    let mut child = cmd.spawn()?;
    // With process_group(0) the group id is the child's pid.
    let group = child.id().and_then(|pid| i32::try_from(pid).ok());
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();

    let finished = async {
        let status = tokio::time::timeout(timeout, child.wait()).await;
        // Killed before the leader is reaped on timeout, so the group id cannot have been
        // reused; after a normal exit this clears background processes the command left.
        kill_group(group);
        match status {
            Ok(status) => (status, false),
            Err(_) => (child.wait().await, true),
        }
    };
    tokio::pin!(finished);

    let mut output = HeadTail::new(output_cap);
    // On the heap: every future that may run a command (each agent's task, each hook) would
    // otherwise carry 16 KiB of buffers and copy them whenever it moves.
    let mut out_buf = vec![0u8; 8192];
    let mut err_buf = vec![0u8; 8192];
    let mut ended: Option<(io::Result<ExitStatus>, bool)> = None;
    let mut stray_deadline = tokio::time::Instant::now();
    loop {
        if stdout.is_none() && stderr.is_none() && ended.is_some() {
            break;
        }
        tokio::select! {
            read = read_some(&mut stdout, &mut out_buf) => {
                match read {
                    Some(n) => output.push(&out_buf[..n]),
                    None => stdout = None,
                }
            }
            read = read_some(&mut stderr, &mut err_buf) => {
                match read {
                    Some(n) => output.push(&err_buf[..n]),
                    None => stderr = None,
                }
            }
            result = &mut finished, if ended.is_none() => {
                ended = Some(result);
                stray_deadline = tokio::time::Instant::now() + STRAY_WRITER_GRACE;
            }
            // A process that moved to another session still holds the pipes; stop waiting for it.
            _ = tokio::time::sleep_until(stray_deadline), if ended.is_some() => break,
        }
    }
    let elapsed = started.elapsed();
    let Some((status, timed_out)) = ended else {
        return Err(io::Error::other("the command's end was not observed"));
    };
    let status = status?;
    let (output, cut_bytes) = output.finish();
    Ok(ShellOutcome {
        exit_code: status.code(),
        signal: std::os::unix::process::ExitStatusExt::signal(&status),
        timed_out,
        output,
        cut_bytes,
        elapsed,
    })
}

/// Reads once from a pipe; `None` at end of stream or on a read error. Pends forever once the
/// pipe is gone, so a closed stream drops out of `select!`.
async fn read_some<R: tokio::io::AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> Option<usize> {
    match pipe {
        Some(reader) => match reader.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

fn kill_group(group: Option<i32>) {
    if let Some(pgid) = group.filter(|&pgid| pgid > 0) {
        // SAFETY: killpg only sends a signal; it touches no memory of this process. ESRCH (the
        // group is already gone) is the expected result after a clean exit and is ignored.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}

/// Keeps the first and last bytes of a stream within a cap: the start shows what the command
/// did, the end shows how it finished (the error at the bottom of a build log).
pub(crate) struct HeadTail {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    total: u64,
}

impl HeadTail {
    pub(crate) fn new(cap: usize) -> Self {
        let head_cap = cap / 2;
        Self {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_cap,
            tail_cap: cap - head_cap,
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.head_cap - self.head.len();
        let into_head = room.min(bytes.len());
        self.head.extend_from_slice(&bytes[..into_head]);
        bytes = &bytes[into_head..];
        if bytes.len() > self.tail_cap {
            bytes = &bytes[bytes.len() - self.tail_cap..];
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// The kept text with a note where bytes were cut, and how many were cut.
    pub(crate) fn finish(self) -> (String, u64) {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let cut = self.total - kept;
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if cut > 0 {
            text.push_str(&format!(
                "\n[... {cut} bytes of output cut here; {} of {} bytes shown ...]\n",
                kept, self.total
            ));
        }
        let (front, back) = self.tail.as_slices();
        let tail: Vec<u8> = [front, back].concat();
        text.push_str(&String::from_utf8_lossy(&tail));
        (text, cut)
    }
}

/// `1.5s`, `30s`, `250ms`: short enough for a message to the model.
pub(crate) fn format_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised_by_whole_words() {
        for name in [
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "my_api_key",
            "SESSION_SECRET",
        ] {
            assert!(is_secret_env_name(name), "{name} should be secret");
        }
        for name in [
            "PATH",
            "HOME",
            "TOKENIZERS_PARALLELISM",
            "SWARM_TASK_ID",
            "KEYBOARD",
        ] {
            assert!(!is_secret_env_name(name), "{name} should be kept");
        }
    }

    #[test]
    fn head_tail_keeps_everything_within_the_cap() {
        let mut buf = HeadTail::new(10);
        buf.push(b"abc");
        buf.push(b"defghij");
        assert_eq!(buf.finish(), ("abcdefghij".to_string(), 0));
    }

    #[test]
    fn head_tail_cuts_the_middle_and_says_how_much() {
        let mut buf = HeadTail::new(6);
        for chunk in [&b"012"[..], b"3456", b"789", b"XYZ"] {
            buf.push(chunk);
        }
        let (text, cut) = buf.finish();
        assert_eq!(cut, 13 - 6);
        assert!(
            text.starts_with("012\n[... 7 bytes of output cut here"),
            "{text}"
        );
        assert!(text.ends_with("...]\nXYZ"), "{text}");
    }

    #[test]
    fn head_tail_with_a_zero_cap_keeps_only_the_count() {
        let mut buf = HeadTail::new(0);
        buf.push(b"hello");
        let (text, cut) = buf.finish();
        assert_eq!(cut, 5);
        assert!(text.contains("5 bytes of output cut"), "{text}");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }
}
