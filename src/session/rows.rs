//! What a state store keeps per session besides its events, in one place for every backend: the
//! summary columns a run of events changes, stored status names, and session ids.

use super::error::SessionError;
use super::event::{Event, SessionStatus};
use super::lease::Recorded;
use super::store::SessionSummary;

/// Where an event came from. External events (the memory CLI) are compacted only once a runner
/// has seen them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Runner,
    External,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Runner => "runner",
            Origin::External => "external",
        }
    }
}

/// What a run of events changes in the session's row: task tallies for `sessions list` (kept
/// there so listing does not replay every journal) and the status.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RowEffect {
    pub tasks_created: i64,
    pub tasks_done: i64,
    pub status: Option<SessionStatus>,
    /// Exact tallies `(total, done)` from a snapshot's state, which the deltas then add to.
    pub exact: Option<(i64, i64)>,
}

impl RowEffect {
    pub fn add(&mut self, event: &Event) {
        match event {
            Event::TaskCreated { .. } => self.tasks_created += 1,
            Event::TaskCompleted { .. } => self.tasks_done += 1,
            Event::SessionStarted { .. } | Event::SessionResumed { .. } => {
                self.status = Some(SessionStatus::Running)
            }
            Event::SessionEnded { status, .. } => self.status = Some(*status),
            _ => {}
        }
    }

    /// Replaces the tallies so far with exact ones `(total, done)` taken from a state.
    pub fn set_exact(&mut self, tallies: (i64, i64)) {
        self.exact = Some(tallies);
        self.tasks_created = 0;
        self.tasks_done = 0;
    }
}

/// A session's row as listings read it, whatever the backend.
pub struct SummaryRow {
    pub id: String,
    pub swarm: String,
    pub status: String,
    pub goal: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub tasks_done: i64,
    pub tasks_total: i64,
    pub lease: Recorded,
}

impl SummaryRow {
    /// The summary a listing shows: a session stored as running that no live runner holds is
    /// interrupted.
    pub fn into_summary(self, location: &str, now_ms: u64) -> Result<SessionSummary, SessionError> {
        let stored = parse_status(&self.status).ok_or_else(|| SessionError::Decode {
            location: location.to_string(),
            session: self.id.clone(),
            what: "status",
            message: format!("unknown status `{}`", self.status),
        })?;
        let runner = self.lease.live_owner(now_ms).cloned();
        let status = if stored == SessionStatus::Running && runner.is_none() {
            SessionStatus::Interrupted
        } else {
            stored
        };
        Ok(SessionSummary {
            id: self.id,
            swarm: self.swarm,
            status,
            goal: self.goal,
            created_ms: self.created_ms as u64,
            updated_ms: self.updated_ms as u64,
            tasks_done: self.tasks_done as u64,
            tasks_total: self.tasks_total as u64,
            runner_pid: runner.as_ref().map(|o| o.pid),
            runner,
        })
    }
}

pub fn parse_status(text: &str) -> Option<SessionStatus> {
    [
        SessionStatus::Running,
        SessionStatus::Completed,
        SessionStatus::Failed,
        SessionStatus::Interrupted,
        SessionStatus::BudgetStopped,
        SessionStatus::Queued,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
}

/// A sortable, readable session id: UTC time of creation and a random suffix, e.g.
/// `20261121-162530-ab12`.
pub fn new_session_id(now_ms: u64) -> String {
    let ((y, m, d), (h, min, sec)) = utc_parts(now_ms);
    let suffix: u16 = rand::random();
    format!("{y:04}{m:02}{d:02}-{h:02}{min:02}{sec:02}-{suffix:04x}")
}

/// `2026-11-21 16:25:30` (UTC) for milliseconds since the Unix epoch.
pub fn format_utc(ms: u64) -> String {
    let ((y, m, d), (h, min, sec)) = utc_parts(ms);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}:{sec:02}")
}

fn utc_parts(ms: u64) -> ((i64, u32, u32), (u64, u64, u64)) {
    let secs = ms / 1000;
    let rem = secs % 86_400;
    (
        civil_from_days((secs / 86_400) as i64),
        (rem / 3600, rem / 60 % 60, rem % 60),
    )
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_carry_the_utc_time() {
        // 2026-11-21 16:25:30 UTC
        let id = new_session_id(1_795_278_330_000);
        assert!(id.starts_with("20261121-162530-"), "{id}");
        assert_eq!(id.len(), "20261121-162530-ab12".len());
        assert_eq!(format_utc(1_795_278_330_000), "2026-11-21 16:25:30");
    }

    #[test]
    fn civil_dates_around_leap_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
    }
}
