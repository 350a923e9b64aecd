//! A session's history as the journal holds it: every event the runner wrote, with its seq, read
//! in order and, while a runner is live, followed as it appends more. `sessions log`, `watch` and
//! the HTML report read a session through this, from another process than the runner's.

use super::error::SessionError;
use super::event::{Envelope, Event};
use super::state::SessionState;
use super::store::StateDir;

/// Events read per query, so that a long journal is not held in one result set.
const BATCH: usize = 2048;

/// A cursor over a session's journal.
pub struct Tail<'a> {
    dir: &'a StateDir,
    session: String,
    after: u64,
    /// The last event read ended a run.
    ended: bool,
    /// Whether the first event read was the session's start: a journal compacted by an older
    /// version begins later.
    complete: Option<bool>,
}

impl<'a> Tail<'a> {
    /// A cursor before the first event of `session`.
    pub fn new(dir: &'a StateDir, session: &str) -> Self {
        Self {
            dir,
            session: session.to_string(),
            after: 0,
            ended: false,
            complete: None,
        }
    }

    /// Every event committed after the cursor, in order; moves the cursor past them.
    pub fn read(&mut self) -> Result<Vec<Envelope>, SessionError> {
        let mut out = Vec::new();
        loop {
            let batch = self.dir.events_after(&self.session, self.after, BATCH)?;
            let full = batch.len() == BATCH;
            if let Some(last) = batch.last() {
                self.after = last.seq;
            }
            out.extend(batch);
            if !full {
                break;
            }
        }
        if self.complete.is_none() {
            if let Some(first) = out.first() {
                self.complete = Some(matches!(*first.event, Event::SessionStarted { .. }));
            }
        }
        if let Some(last) = out.last() {
            self.ended = matches!(*last.event, Event::SessionEnded { .. });
        }
        Ok(out)
    }

    /// Whether the session has stopped: its last event ended a run, or no live process runs it.
    /// A caller following it reads once more after this says so, for what the runner committed
    /// last.
    pub fn is_over(&self) -> Result<bool, SessionError> {
        Ok(self.ended || self.dir.summary(&self.session)?.runner.is_none())
    }

    /// False when the journal does not begin with the session's start (events an older version
    /// compacted into a snapshot); `None` before anything was read.
    pub fn is_complete(&self) -> Option<bool> {
        self.complete
    }

    /// The seq of the last event read.
    pub fn position(&self) -> u64 {
        self.after
    }
}

/// The state of `session` and the history that led to it, read from the journal. When the
/// journal lacks its beginning (compacted by an older version) the state is the snapshot's.
pub fn read_all(
    dir: &StateDir,
    session: &str,
) -> Result<(SessionState, Vec<Envelope>), SessionError> {
    let mut tail = Tail::new(dir, session);
    let events = tail.read()?;
    let state = if tail.is_complete() == Some(true) {
        let mut state = SessionState::default();
        for envelope in &events {
            state.apply(&envelope.event);
        }
        state
    } else {
        dir.load(session)?.state
    };
    Ok((state, events))
}

/// The system prompt each task started under, as a reader of the journal sees it. A
/// `TaskStarted` carries its system prompt only when it differs from the one last journaled for
/// the task's role (journals written before that carry it on every task); this puts it back, so
/// readers show every task with the prompt it ran under.
#[derive(Debug, Default)]
pub struct SystemPrompts {
    role_of_task: std::collections::HashMap<String, String>,
    by_role: std::collections::HashMap<String, String>,
}

impl SystemPrompts {
    /// Takes note of `event` (read in journal order) and returns it with its system prompt filled
    /// in where the journal left it out.
    pub fn resolve<'e>(&mut self, event: &'e Event) -> std::borrow::Cow<'e, Event> {
        match event {
            Event::TaskCreated { task, .. } => {
                self.role_of_task.insert(task.id.clone(), task.role.clone());
            }
            Event::TaskStarted {
                task,
                system,
                prompt,
                ..
            } => {
                let role = self.role_of_task.get(task);
                match (system, role) {
                    (Some(system), Some(role)) if self.by_role.get(role) != Some(system) => {
                        self.by_role.insert(role.clone(), system.clone());
                    }
                    (None, Some(role)) if !prompt.is_empty() => {
                        if let Some(known) = self.by_role.get(role) {
                            let mut filled = event.clone();
                            if let Event::TaskStarted { system, .. } = &mut filled {
                                *system = Some(known.clone());
                            }
                            return std::borrow::Cow::Owned(filled);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        std::borrow::Cow::Borrowed(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(task: &str, system: Option<&str>) -> Event {
        Event::TaskStarted {
            task: task.into(),
            agent: "a".into(),
            prompt: "p".into(),
            system: system.map(str::to_string),
            at_ms: 2,
        }
    }

    fn system_of(event: &Event) -> Option<String> {
        match event {
            Event::TaskStarted { system, .. } => system.clone(),
            _ => None,
        }
    }

    #[test]
    fn a_task_started_without_its_system_prompt_gets_its_roles_last_one() {
        let mut prompts = SystemPrompts::default();
        for event in [
            Event::task_created("a", "r"),
            Event::task_created("b", "r"),
            Event::task_created("c", "q"),
        ] {
            prompts.resolve(&event);
        }
        assert_eq!(
            system_of(&prompts.resolve(&started("a", Some("one")))).as_deref(),
            Some("one")
        );
        assert_eq!(
            system_of(&prompts.resolve(&started("b", None))).as_deref(),
            Some("one")
        );
        // Another role has its own; a role's new prompt replaces its old one.
        assert_eq!(system_of(&prompts.resolve(&started("c", None))), None);
        prompts.resolve(&started("a", Some("two")));
        assert_eq!(
            system_of(&prompts.resolve(&started("b", None))).as_deref(),
            Some("two")
        );
    }
}
