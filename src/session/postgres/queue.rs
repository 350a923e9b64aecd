//! The run queue: `swarm submit` stores a session in status `queued`; workers take queued
//! sessions, and running sessions whose lease is free (expired, or held by a dead process of
//! their host), with `FOR UPDATE SKIP LOCKED` so that two workers never take the same one.

use super::store::{recorded, PgStore, LEASE_COLUMNS};
use crate::session::error::SessionError;
use crate::session::lease::SessionLock;

/// The stored status of a queued run (not a [`crate::session::SessionStatus`]: no event ends
/// or starts in it).
pub(crate) const QUEUED: &str = "queued";

/// What a worker found to do.
pub struct Claimed {
    pub session: String,
    pub lease: SessionLock,
    /// True for a queued run (never started), false for a run taken over from another runner.
    pub fresh: bool,
}

/// How many sessions a claim looks at per round.
const CANDIDATES: i64 = 16;

impl PgStore {
    /// Takes the oldest queued run, or a running session whose lease is free, for this process.
    pub fn claim(&self) -> Result<Option<Claimed>, SessionError> {
        let host = crate::session::lease::Owner::current().host;
        let mut offset = 0i64;
        loop {
            let host = host.clone();
            let now = crate::clock::now_ms();
            // Leases held elsewhere and not yet expired are left out by the query, so runs that
            // other workers hold never crowd the queued ones out of a page; a lease of this host
            // may belong to a process that is gone, which only this process can tell.
            let candidates = self.run("looking for runs", move |client, _| {
                let host = host.clone();
                async move {
                    let rows = client
                        .query(
                            &format!(
                                "SELECT id, status, {LEASE_COLUMNS} FROM sessions
                                 WHERE status IN ('queued', 'running')
                                   AND (lock_pid IS NULL OR lock_expires_ms <= $3
                                        OR lock_host = $4)
                                 ORDER BY created_ms, created_order LIMIT $1 OFFSET $2"
                            ),
                            &[&CANDIDATES, &offset, &(now as i64), &host],
                        )
                        .await?;
                    Ok(rows
                        .iter()
                        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1), recorded(r, 2)))
                        .collect::<Vec<_>>())
                }
            })?;
            let page = candidates.len() as i64;
            for (id, status, lease) in candidates {
                if !lease.is_free(now) {
                    continue;
                }
                let fresh = status == QUEUED;
                match self.try_take(&id, Some(if fresh { QUEUED } else { "running" })) {
                    Ok(Some(lease)) => {
                        if fresh {
                            self.set_status(&id, crate::session::SessionStatus::Running)?;
                        }
                        return Ok(Some(Claimed {
                            session: id,
                            lease,
                            fresh,
                        }));
                    }
                    // Another worker got there first.
                    Ok(None) | Err(SessionError::Locked { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            if page < CANDIDATES {
                return Ok(None);
            }
            offset += page;
        }
    }

    /// Puts a run that a stopping worker interrupted (its lease already released) back in the
    /// queue, so that the next worker resumes it from its journal; whether it was put back (not
    /// if something else, say `swarm resume`, took it meanwhile).
    pub fn requeue(&self, id: &str) -> Result<bool, SessionError> {
        let wanted = id.to_string();
        let changed = self.run("putting a run back in the queue", move |client, _| {
            let wanted = wanted.clone();
            async move {
                Ok(client
                    .execute(
                        "UPDATE sessions SET status = $2, updated_ms = $3
                         WHERE id = $1 AND status = 'interrupted'",
                        &[&wanted, &QUEUED, &(crate::clock::now_ms() as i64)],
                    )
                    .await?)
            }
        })?;
        Ok(changed == 1)
    }

    /// Whether any run is queued, or running anywhere (leased or waiting to be taken over).
    pub fn has_work(&self) -> Result<bool, SessionError> {
        self.run("looking for runs", |client, _| async move {
            let row = client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM sessions WHERE status IN ('queued', 'running'))",
                    &[],
                )
                .await?;
            Ok(row.get::<_, bool>(0))
        })
    }
}
