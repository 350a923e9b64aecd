//! The crash and resume suite of `session_resume.rs` against a PostgreSQL state store: SIGKILL
//! at several points of a multi-task run, then `swarm resume`: every task is done and no LLM
//! turn that had completed was requested again.

mod support;

use support::crash::kill_and_resume;
use support::swarm_fixture::SwarmFixture;

#[test]
fn sigkill_early_then_resume_finishes_without_repeating_completed_turns() {
    kill_and_resume(SwarmFixture::on_postgres, 3, 2);
}

#[test]
fn sigkill_midway_then_resume_finishes_without_repeating_completed_turns() {
    kill_and_resume(SwarmFixture::on_postgres, 8, 3);
}

#[test]
fn sigkill_late_then_resume_finishes_without_repeating_completed_turns() {
    kill_and_resume(SwarmFixture::on_postgres, 15, 2);
}
