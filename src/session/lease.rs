//! Leases: a running session is held by one runner at a time. A lease names its owner (host, pid,
//! process start time), expires unless its owner renews it (the heartbeat), and carries a fencing
//! token that goes up with every new holder. Every journal commit checks the token, so a runner
//! that lost its lease (frozen, partitioned, presumed dead) can never write again, even if it
//! wakes up. A lease whose owner is a dead process on this host is taken over at once, without
//! waiting for it to expire.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long a lease lasts unless renewed, when the caller does not say.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// Who holds (or held) a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    pub pid: u32,
    /// The process's start time in clock ticks after boot (0 when unknown): a pid reused by a
    /// later process is not the owner.
    pub start: u64,
}

impl Owner {
    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id();
        Self {
            host: hostname(),
            pid,
            start: process_start(pid).unwrap_or(0),
        }
    }

    /// Whether this owner is known to be gone: a process on this host that no longer runs.
    /// An owner on another host is never known to be gone; its lease expires instead.
    pub fn is_gone(&self) -> bool {
        self.host == hostname() && !process_alive(self.pid, self.start)
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} on {}", self.pid, self.host)
    }
}

/// A lease as the store records it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub owner: Option<Owner>,
    /// Wall-clock expiry; `None` for leases written before leases expired (held until the
    /// owner is gone).
    pub expires_ms: Option<u64>,
}

impl Recorded {
    /// Whether a new runner may take the session now.
    pub fn is_free(&self, now_ms: u64) -> bool {
        match &self.owner {
            None => true,
            Some(owner) => owner.is_gone() || self.expires_ms.is_some_and(|at| at <= now_ms),
        }
    }

    /// Whether the recorded owner still holds the session (for listings).
    pub fn live_owner(&self, now_ms: u64) -> Option<&Owner> {
        if self.is_free(now_ms) {
            None
        } else {
            self.owner.as_ref()
        }
    }
}

/// Tells a run that its lease was lost, so it stops instead of working for nothing: its journal
/// refuses every write anyway.
#[derive(Debug, Default)]
pub struct LeaseLost {
    lost: AtomicBool,
    notify: Notify,
}

impl LeaseLost {
    pub(crate) fn set(&self) {
        self.lost.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// Resolves once the lease is lost.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_lost() {
                return;
            }
            notified.await;
        }
    }
}

/// How often a holder renews its lease: three times per lease, so one late renewal is harmless.
pub(crate) fn heartbeat_every(ttl: Duration) -> Duration {
    (ttl / 3).max(Duration::from_millis(50))
}

pub(crate) type LostFlag = Arc<LeaseLost>;

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether the process `pid` that started at `start` still runs: the pid exists, is not a
/// zombie, and started when recorded (otherwise the pid was reused).
pub(crate) fn process_alive(pid: u32, start: u64) -> bool {
    if pid == 0 {
        return false;
    }
    match process_start(pid) {
        Some(actual) => start == 0 || actual == start,
        None if cfg!(target_os = "linux") => false,
        None => signal_zero(pid),
    }
}

/// The start time of a live, non-zombie process, in clock ticks after boot (`/proc/<pid>/stat`
/// field 22). `None` when the process does not exist or is a zombie, or on systems without /proc.
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // Fields after the name start at field 3 (state); starttime is field 22.
    fields.nth(22 - 4)?.parse().ok()
}

fn signal_zero(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 sends nothing; it only checks that the pid exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Renews a lease: `Ok(false)` when the store says another runner holds it now.
pub(crate) type Renew = Box<dyn FnMut() -> Result<bool, super::SessionError> + Send>;

/// Gives a lease back.
pub(crate) type Release = Box<dyn FnOnce() + Send>;

/// A session held by this process: renewed by a heartbeat thread while held, given back on drop.
pub struct SessionLock {
    session: String,
    owner: Owner,
    token: i64,
    ttl: Duration,
    /// The journal position when the lease was taken: external events after it are returned by
    /// [`crate::session::Journal::poll_external`]; those before it are in what a load after
    /// taking the lease returns.
    pub(crate) external_from: u64,
    /// The journal position up to which the session holds no external event: `external_from`
    /// for a session created with this lease (nothing could be appended to it before), else 0.
    pub(crate) external_clean: u64,
    lost: LostFlag,
    heartbeat: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
    release: Option<Release>,
}

impl std::fmt::Debug for SessionLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLock")
            .field("session", &self.session)
            .field("owner", &self.owner)
            .field("token", &self.token)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl SessionLock {
    /// This lease was taken with the session itself: no external event can predate it.
    pub(crate) fn of_new_session(mut self) -> Self {
        self.external_clean = self.external_from;
        self
    }

    /// A lease just written to the store for this process, with token `token`; starts its
    /// heartbeat.
    pub(crate) fn held(
        session: &str,
        owner: Owner,
        token: i64,
        ttl: Duration,
        external_from: u64,
        mut renew: Renew,
        release: Release,
    ) -> Result<Self, super::SessionError> {
        let lost = LostFlag::default();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let flag = Arc::clone(&lost);
        let name = session.to_string();
        let every = heartbeat_every(ttl);
        let thread = std::thread::Builder::new()
            .name(format!("lease-{session}"))
            .spawn(move || loop {
                match stopped.recv_timeout(every) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    // Stopped, or the lease was dropped.
                    _ => return,
                }
                match renew() {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(
                            "session {name}: the lease was taken over by another runner"
                        );
                        flag.set();
                        return;
                    }
                    // A store that is away: keep trying; the fencing token keeps writes safe.
                    Err(e) => tracing::warn!("session {name}: could not renew the lease: {e}"),
                }
            })
            .map_err(|e| super::SessionError::io(format!("the lease heartbeat of {session}"), e))?;
        Ok(Self {
            session: session.to_string(),
            owner,
            token,
            ttl,
            external_from,
            external_clean: 0,
            lost,
            heartbeat: Some((stop, thread)),
            release: Some(release),
        })
    }

    pub fn session(&self) -> &str {
        &self.session
    }

    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// The fencing token every journal commit of this holder checks.
    pub fn token(&self) -> i64 {
        self.token
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Set once the heartbeat finds another runner holding the session.
    pub fn lost(&self) -> Arc<LeaseLost> {
        Arc::clone(&self.lost)
    }

    /// Lets the lease go without a word to the store, which has failed: the heartbeat is told
    /// to stop but not waited for (it may be retrying a store that is away), and nothing is
    /// released. The lease ends when it expires or when its owner is found dead, as after a
    /// crash.
    pub fn abandon(mut self) {
        if let Some((stop, thread)) = self.heartbeat.take() {
            drop(stop);
            drop(thread);
        }
        self.release = None;
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.heartbeat.take() {
            drop(stop);
            let _ = thread.join();
        }
        if !self.lost.is_lost() {
            if let Some(release) = self.release.take() {
                release();
            }
        }
    }
}
