//! Several events in one row of `events` (schema version 5). A row's `seq` is the seq of its last
//! event and `n` how many it holds, so its events have the seqs `seq - n + 1 ..= seq`; `body` is
//! their JSON encodings joined by newlines (the journal's JSON never holds a raw newline: control
//! characters in strings are escaped). SQLite's cost is mostly per row (a b-tree insert into the
//! table and one into the session index, the record's setup), so a run of events committed
//! together costs about what one event did. Rows from before version 5 hold one event each.

use crate::session::encode::encode_event;
use crate::session::rows::Origin;
use crate::session::Event;
use rusqlite::{Connection, OptionalExtension};

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
    /// ever handed out (AUTOINCREMENT's `sqlite_sequence` keeps it, deleted rows included), and
    /// returns the last seq (`None` when there are no events). The caller holds a write
    /// transaction, so the seqs are consecutive.
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

/// The highest seq handed out so far, in any session.
fn highest_seq(tx: &Connection) -> rusqlite::Result<u64> {
    let recorded: Option<i64> = tx
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'events'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(recorded.unwrap_or(0).max(0) as u64)
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
