//! Several events in one row of `events` (schema version 5). A row's `seq` is the seq of its last
//! event and `n` how many it holds, so its events have the seqs `seq - n + 1 ..= seq`; `body` is
//! their JSON encodings joined by newlines (the journal's JSON never holds a raw newline: control
//! characters in strings are escaped). SQLite's cost is mostly per row (a b-tree insert into the
//! table and one into the session index, the record's setup), so a run of events committed
//! together costs about what one event did. Rows from before version 5 hold one event each.

use crate::session::encode::encode_event;
use crate::session::rows::Origin;
use crate::session::Event;
use rusqlite::Connection;

/// Most events in one row, so that reading from a seq inside a long run decodes little that it
/// then skips.
pub(crate) const ROW_EVENTS: usize = 256;

/// The events of a run, encoded one after the other, each followed by a newline.
#[derive(Debug, Default)]
pub(crate) struct EventRows {
    buf: Vec<u8>,
    /// Where each event's encoding ends (its newline follows).
    ends: Vec<usize>,
}

impl EventRows {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
            ends: Vec::new(),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn push(&mut self, event: &Event) -> Result<(), serde_json::Error> {
        encode_event(&mut self.buf, event)?;
        self.ends.push(self.buf.len());
        self.buf.push(b'\n');
        Ok(())
    }

    /// Inserts the events as rows of at most [`ROW_EVENTS`], with the seqs after the highest one
    /// ever handed out (deleted rows included, see [`highest_seq`]), and returns the last seq
    /// (`None` when there are no events). The caller holds a write transaction, so the seqs are
    /// consecutive.
    pub(crate) fn insert(
        &self,
        tx: &Connection,
        session: &str,
        origin: Origin,
    ) -> rusqlite::Result<Option<u64>> {
        if self.ends.is_empty() {
            return Ok(None);
        }
        let mut seq = highest_seq(tx)?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (seq, session, origin, body, n) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut start = 0;
        for ends in self.ends.chunks(ROW_EVENTS) {
            let end = ends[ends.len() - 1];
            seq += ends.len() as u64;
            insert.execute(rusqlite::params![
                seq as i64,
                session,
                origin.as_str(),
                &self.buf[start..end],
                ends.len() as i64,
            ])?;
            start = end + 1;
        }
        Ok(Some(seq))
    }
}

/// The highest seq handed out so far, in any session: the last row's, or a deleted row's that
/// `seq_high` keeps (schema version 6, `db.rs`). Upgraded files whose `events` table still has
/// AUTOINCREMENT start `seq_high` from its `sqlite_sequence`, which SQLite keeps on writing.
fn highest_seq(tx: &Connection) -> rusqlite::Result<u64> {
    let recorded: i64 = tx
        .prepare_cached(
            "SELECT MAX(COALESCE((SELECT MAX(seq) FROM events), 0),
                        COALESCE((SELECT seq FROM seq_high WHERE id = 0), 0))",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(recorded.max(0) as u64)
}

/// Splits a row into its events with their seqs, oldest first. A row whose count of events does
/// not match `n`, or whose seqs would start below 1, is refused with what is wrong with it.
pub(crate) fn split(seq: i64, n: i64, body: &[u8]) -> Result<RowEvents<'_>, String> {
    let separators = body.iter().filter(|&&b| b == b'\n').count() as i64;
    if n < 1 || separators + 1 != n {
        return Err(format!(
            "the row of seq {seq} says it holds {n} events but its body holds {}",
            separators + 1
        ));
    }
    if seq < n {
        return Err(format!("the row of seq {seq} cannot hold {n} events"));
    }
    Ok(RowEvents {
        next_seq: (seq - n + 1) as u64,
        rest: Some(body),
    })
}

/// A row's body as bytes: a BLOB, or TEXT as some older rows hold it.
pub(crate) fn body_bytes(value: rusqlite::types::ValueRef<'_>) -> &[u8] {
    value
        .as_blob_or_null()
        .ok()
        .flatten()
        .or_else(|| value.as_str().ok().map(str::as_bytes))
        .unwrap_or_default()
}

/// The events of one row, see [`split`].
#[derive(Debug)]
pub(crate) struct RowEvents<'a> {
    next_seq: u64,
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for RowEvents<'a> {
    type Item = (u64, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest?;
        let (event, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        self.rest = tail;
        let seq = self.next_seq;
        self.next_seq += 1;
        Some((seq, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_splits_into_its_events_with_consecutive_seqs() {
        let events: Vec<_> = split(12, 3, b"{\"a\":1}\n{\"b\":\"x\\ny\"}\n{}")
            .unwrap()
            .collect();
        assert_eq!(
            events,
            vec![
                (10, &b"{\"a\":1}"[..]),
                (11, &b"{\"b\":\"x\\ny\"}"[..]),
                (12, &b"{}"[..])
            ]
        );
        let single: Vec<_> = split(7, 1, b"{}").unwrap().collect();
        assert_eq!(single, vec![(7, &b"{}"[..])]);
    }

    fn rows(n: usize) -> EventRows {
        let mut rows = EventRows::default();
        for at_ms in 0..n as u64 {
            rows.push(&Event::Checkpoint { at_ms }).unwrap();
        }
        rows
    }

    /// A snapshot deletes external rows and a session can be deleted: a seq handed out is never
    /// handed out again, whichever rows are gone, and no commit writes `sqlite_sequence`.
    #[test]
    fn seqs_are_not_handed_out_again_after_the_highest_rows_are_deleted() {
        use super::super::db::{self, Access};
        let tmp = tempfile::tempdir().unwrap();
        let path = db::db_path(tmp.path());
        db::create(&path).unwrap();
        let conn = db::connect(&path, Access::ReadWrite).unwrap();
        for id in ["a", "b", "c", "d"] {
            conn.execute(
                "INSERT INTO sessions (id, swarm, status, created_ms, updated_ms, plan, source_hash)
                 VALUES (?1, 's', 'running', 0, 0, '', '')",
                [id],
            )
            .unwrap();
        }
        let insert = |n, session, origin| rows(n).insert(&conn, session, origin).unwrap();
        assert_eq!(insert(3, "a", Origin::Runner), Some(3));
        assert_eq!(insert(2, "b", Origin::External), Some(5));
        conn.execute("DELETE FROM events WHERE session = 'b'", [])
            .unwrap();
        assert_eq!(insert(1, "a", Origin::Runner), Some(6));
        conn.execute("DELETE FROM events", []).unwrap();
        conn.execute("DELETE FROM sessions WHERE id = 'b'", [])
            .unwrap();
        assert_eq!(insert(2, "c", Origin::Runner), Some(8));
        // Deleting rows below the top leaves the mark where it is.
        assert_eq!(insert(1, "d", Origin::Runner), Some(9));
        conn.execute("DELETE FROM events WHERE seq = 8", [])
            .unwrap();
        assert_eq!(insert(1, "d", Origin::Runner), Some(10));
        let autoincrement: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!autoincrement);
    }

    #[test]
    fn a_row_whose_count_does_not_match_is_refused() {
        let err = split(12, 2, b"{}\n{}\n{}").unwrap_err();
        assert!(
            err.contains("says it holds 2 events but its body holds 3"),
            "{err}"
        );
        assert!(split(12, 0, b"").is_err());
        assert!(split(1, 2, b"{}\n{}").is_err());
    }
}
