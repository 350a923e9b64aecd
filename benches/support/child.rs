//! Runs a child process and measures it from the outside: wall time from spawn to exit, and the
//! kernel's own account of its CPU time and peak RSS (`wait4` rusage), which covers the child
//! alone and not the mock server running in the bench process.

use std::io;
use std::process::Command;
use std::time::{Duration, Instant};

/// What one child run cost.
#[derive(Debug, Clone, Copy)]
pub struct ChildUsage {
    pub wall: Duration,
    pub user: Duration,
    pub sys: Duration,
    /// Peak resident set size in KiB (Linux reports `ru_maxrss` in KiB).
    pub max_rss_kib: u64,
    /// The exit code, or `None` when a signal ended the child.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

impl ChildUsage {
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }
}

/// Spawns `command` and reaps it with `wait4`. Its stdio must not be piped (nobody would drain
/// the pipes): redirect it to files or null.
pub fn run_measured(command: &mut Command) -> io::Result<ChildUsage> {
    let start = Instant::now();
    let child = command.spawn()?;
    let pid = libc::pid_t::try_from(child.id())
        .map_err(|_| io::Error::other("the child's pid does not fit in pid_t"))?;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own unreaped child; `status` and `usage` are valid for writes.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let wall = start.elapsed();
    // Reaped above: dropping `child` only closes handles, it never waits again.
    drop(child);
    let exited = libc::WIFEXITED(status);
    let signaled = libc::WIFSIGNALED(status);
    Ok(ChildUsage {
        wall,
        user: timeval(usage.ru_utime),
        sys: timeval(usage.ru_stime),
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        exit_code: exited.then(|| libc::WEXITSTATUS(status)),
        signal: signaled.then(|| libc::WTERMSIG(status)),
    })
}

fn timeval(tv: libc::timeval) -> Duration {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u32::try_from(tv.tv_usec).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
}
