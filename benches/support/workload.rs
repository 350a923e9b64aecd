//! The generated workload: a mesh swarm of `tasks` independent tasks for one `worker` role,
//! `concurrency` agents at once, calling the mock server; written into a fresh directory that
//! also holds the run's state dir and workspace.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The shape of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    pub tasks: u32,
    pub turns: u32,
    pub concurrency: u32,
    pub latency: Duration,
    pub stream: bool,
}

impl Workload {
    pub fn llm_calls(&self) -> u64 {
        u64::from(self.tasks) * u64::from(self.turns)
    }

    /// The wall time of a runtime that costs nothing: every wave of `concurrency` tasks takes
    /// `turns` round trips of `latency`.
    pub fn ideal(&self) -> Duration {
        let waves = self.tasks.div_ceil(self.concurrency.max(1));
        self.latency * waves * self.turns
    }
}

/// The files of one run, inside `dir`.
pub struct Prepared {
    pub dir: PathBuf,
    pub swarm_file: PathBuf,
    pub state_dir: PathBuf,
}

/// Writes `swarm.yaml`, `agents/worker.md`, `workspace/` and `state/` into `dir` (created).
pub fn write(dir: &Path, workload: &Workload, base_url: &str) -> io::Result<Prepared> {
    std::fs::create_dir_all(dir.join("agents"))?;
    std::fs::create_dir_all(dir.join("workspace"))?;
    let state_dir = dir.join("state");
    std::fs::create_dir_all(&state_dir)?;
    let swarm_file = dir.join("swarm.yaml");
    std::fs::write(&swarm_file, swarm_yaml(workload, base_url))?;
    std::fs::write(dir.join("agents").join("worker.md"), role_md(workload))?;
    Ok(Prepared {
        dir: dir.to_path_buf(),
        swarm_file,
        state_dir,
    })
}

fn swarm_yaml(w: &Workload, base_url: &str) -> String {
    let mut y = String::with_capacity(64 * w.tasks as usize + 1024);
    // Writing to a String cannot fail.
    let _ = write!(
        y,
        "name: load-bench\n\
         description: {tasks} independent tasks, {turns} LLM turns each, {c} agents at once\n\
         topology: mesh\n\
         max_agents: {c}\n\
         agents:\n  - role: worker\n    count: {c}\n\
         memory:\n  namespace: load-bench\n  ttl: none\n\
         llm:\n  provider: openai\n  model: mock-model\n  base_url: {base_url}\n  \
         stream: {stream}\n  max_concurrency: {c}\n\
         workspace: ./workspace\n\
         tasks:\n",
        tasks = w.tasks,
        turns = w.turns,
        c = w.concurrency,
        stream = w.stream,
    );
    for i in 0..w.tasks {
        let _ = write!(
            y,
            "  - id: t{i:05}\n    role: worker\n    description: \"Store one note, then report (item {i}).\"\n"
        );
    }
    y
}

fn role_md(w: &Workload) -> String {
    format!(
        "---\n\
         name: worker\n\
         description: Stores a note in shared memory, then answers in one line\n\
         tools: [memory_store]\n\
         max_turns: {turns}\n\
         ---\n\
         You are a worker in a load test. Store one short note with memory_store, then reply with \
         a one-line summary; that reply completes your task.\n",
        turns = w.turns.max(1),
    )
}

/// Bytes under `dir` (the state dir's size tells what the journal wrote).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
