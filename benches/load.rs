//! Load benchmark: what the orchestrator itself costs next to the LLM's latency.
//!
//! The bench starts a mock OpenAI-compatible server with a fixed latency in this process, writes
//! a mesh swarm of N independent tasks (T turns each: `memory_store` calls, then a final answer),
//! runs the real `swarm` binary on it as a child process and measures, from the outside, the wall
//! time against the ideal `ceil(N/C) x T x latency`, the child's CPU time per LLM call and its peak
//! RSS (`wait4` rusage, so the mock's own CPU is not counted), with the journal on and off.
//!
//! After each journaled run, the floor: a bare HTTP client (`support::floor`) sends the very
//! bodies that run sent to the same mock, C at once, as a child process measured the same way;
//! the swarm's CPU per call and wall time are reported as ratios to it. It runs twice: on
//! reqwest (the floor the targets are stated against) and on hyper's pooled client directly
//! (the stack swarm's own LLM client uses without a proxy), the stricter of the two.
//!
//! ```text
//! cargo bench --bench load                      # standard workload + scaling table
//! cargo bench --bench load -- --quick           # a smaller run, a few seconds
//! cargo bench --bench load -- --tasks 500 --turns 3 --concurrency 50 --latency-ms 20 --journal on
//! cargo bench --bench load -- --serve /tmp/load # mock + workload only, to run swarm by hand
//! ```
//!
//! The binary is `$SWARM_BIN` or `--swarm-bin` if given, else the `swarm` that cargo builds
//! for this bench (target/release/swarm: the bench profile inherits release).

mod support;

use clap::{Parser, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;
use support::child::{run_measured, ChildUsage};
use support::mock::{Counts, MockLlm};
use support::workload::{self, Workload};

/// The `swarm` binary's allocator, so that the floor client's HTTP calls cost what swarm's own
/// do and the ratio measures the orchestration alone.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "load",
    about = "Orchestration overhead of `swarm run` against a mock LLM"
)]
struct Args {
    /// Tasks in the swarm (N)
    #[arg(long)]
    tasks: Option<u32>,
    /// LLM turns per task (T): T-1 tool calls, then a final answer
    #[arg(long)]
    turns: Option<u32>,
    /// Agents at once = roster count = max_agents = llm.max_concurrency (C)
    #[arg(long)]
    concurrency: Option<u32>,
    /// The mock's fixed latency per call
    #[arg(long)]
    latency_ms: Option<u64>,
    /// Journal on, off (`--no-journal`) or both
    #[arg(long, value_enum, default_value_t = Switch::Both)]
    journal: Switch,
    /// Streamed (SSE) responses, plain JSON, or both
    #[arg(long, value_enum)]
    stream: Option<Switch>,
    /// Runs of each configuration: wall time and peak RSS are the run's with the median wall
    /// time, CPU times (swarm's and the floors') the means of all runs
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// A small workload (200 tasks, C = 50, 50 ms), no scaling table
    #[arg(long)]
    quick: bool,
    /// Also print the scaling table after a custom workload (the default run always does)
    #[arg(long)]
    scaling: bool,
    /// The swarm binary to measure
    #[arg(long, env = "SWARM_BIN")]
    swarm_bin: Option<PathBuf>,
    /// Where run directories go (default: cargo's target tmp dir)
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the run directories (state dir, output) for inspection
    #[arg(long)]
    keep: bool,
    /// Only start the mock and write the workload into this directory, then serve until killed
    #[arg(long)]
    serve: Option<PathBuf>,
    /// The mock's port (0: any free port)
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Passed by `cargo bench`; ignored
    #[arg(long, hide = true)]
    bench: bool,
    /// Run as the floor client: send the bodies in this file (internal)
    #[arg(long, hide = true)]
    floor_client: Option<PathBuf>,
    /// The URL the floor client posts to (internal)
    #[arg(long, hide = true)]
    floor_url: Option<String>,
    /// The floor client's HTTP stack (internal)
    #[arg(long, hide = true, value_enum, default_value_t = support::floor::Transport::Reqwest)]
    floor_transport: support::floor::Transport,
    /// Benchmark name filters passed through by cargo; ignored
    #[arg(hide = true)]
    filters: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
    Both,
}

impl Switch {
    fn values(self) -> &'static [bool] {
        match self {
            Switch::On => &[true],
            Switch::Off => &[false],
            // Off first: the first run of a series also warms the page cache for the next.
            Switch::Both => &[false, true],
        }
    }
}

/// The standard workload: 500 tasks, 64 agents of one role.
const STANDARD: Workload = Workload {
    tasks: 500,
    turns: 2,
    concurrency: 64,
    latency: Duration::from_millis(100),
    stream: true,
};

const QUICK: Workload = Workload {
    tasks: 200,
    turns: 2,
    concurrency: 50,
    latency: Duration::from_millis(50),
    stream: true,
};

/// The scaling table, up to the plan's cap (`spec::plan::MAX_TASKS`).
const SCALING_TASKS: [u32; 2] = [1_000, 10_000];

/// Targets for the standard workload.
const TARGET_WALL_RATIO: f64 = 1.1;
const TARGET_CPU_PER_CALL_MS: f64 = 0.1;
const TARGET_RSS_MIB: f64 = 40.0;
const TARGET_JOURNAL_COST_PCT: f64 = 5.0;
const TARGET_CPU_OVER_FLOOR: f64 = 1.5;

/// One measured run.
#[derive(Debug, Clone)]
struct Measured {
    workload: Workload,
    journal: bool,
    usage: ChildUsage,
    mock: Counts,
    state_bytes: u64,
    /// The bare client sending the same bodies, after a journaled run: reqwest.
    floor: Option<ChildUsage>,
    /// The same on hyper's pooled client directly, the stack swarm's LLM client uses.
    floor_hyper: Option<ChildUsage>,
    /// Why the run does not count, if it does not.
    problem: Option<String>,
}

impl Measured {
    fn ratio(&self) -> f64 {
        self.usage.wall.as_secs_f64() / self.workload.ideal().as_secs_f64()
    }

    fn cpu_per_call_ms(&self) -> f64 {
        self.usage.cpu().as_secs_f64() * 1e3 / self.mock.requests.max(1) as f64
    }

    fn rss_mib(&self) -> f64 {
        self.usage.max_rss_kib as f64 / 1024.0
    }

    /// CPU per call of the swarm over that of the floor client.
    fn cpu_over_floor(&self) -> Option<f64> {
        let floor = self.floor?;
        Some(self.usage.cpu().as_secs_f64() / floor.cpu().as_secs_f64().max(1e-9))
    }

    /// CPU per call of the swarm over that of the floor client on hyper directly.
    fn cpu_over_hyper_floor(&self) -> Option<f64> {
        let floor = self.floor_hyper?;
        Some(self.usage.cpu().as_secs_f64() / floor.cpu().as_secs_f64().max(1e-9))
    }

    fn wall_over_floor(&self) -> Option<f64> {
        let floor = self.floor?;
        Some(self.usage.wall.as_secs_f64() / floor.wall.as_secs_f64().max(1e-9))
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(bodies) = &args.floor_client {
        let url = args.floor_url.as_deref().unwrap_or_default();
        let concurrency = args.concurrency.unwrap_or(1) as usize;
        return match support::floor::run(bodies, url, concurrency, args.floor_transport) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("floor client: {err}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("load bench: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Returns whether every run did what it should (targets missed are reported, not failures).
fn run(args: &Args) -> Result<bool, String> {
    let custom = args.tasks.is_some()
        || args.turns.is_some()
        || args.concurrency.is_some()
        || args.latency_ms.is_some();
    let base = if args.quick { QUICK } else { STANDARD };
    let stream = args.stream.unwrap_or(Switch::On);
    let workload = Workload {
        tasks: args.tasks.unwrap_or(base.tasks),
        turns: args.turns.unwrap_or(base.turns),
        concurrency: args.concurrency.unwrap_or(base.concurrency),
        latency: args
            .latency_ms
            .map(Duration::from_millis)
            .unwrap_or(base.latency),
        stream: stream != Switch::Off,
    };
    if workload.tasks == 0 || workload.turns == 0 || workload.concurrency == 0 {
        return Err("--tasks, --turns and --concurrency must be at least 1".into());
    }
    if let Some(dir) = &args.serve {
        return serve(dir, &workload, args.port);
    }

    let bin = swarm_binary(args)?;
    let work_dir = args.work_dir.clone().unwrap_or_else(|| {
        option_env!("CARGO_TARGET_TMPDIR")
            .map_or_else(std::env::temp_dir, PathBuf::from)
            .join("load")
    });
    std::fs::create_dir_all(&work_dir)
        .map_err(|e| format!("cannot create {}: {e}", work_dir.display()))?;
    let mut bench = Bench {
        bin,
        work_dir,
        keep: args.keep,
        port: args.port,
        mocks: Vec::new(),
        all_ok: true,
    };
    print_header(&bench.bin);

    // An unreported run first: page cache, dynamic loader, the state dir's first SQLite file.
    let warm_up = Workload {
        tasks: 20,
        turns: workload.turns,
        concurrency: 10,
        latency: Duration::from_millis(10),
        stream: workload.stream,
    };
    bench.measure(&warm_up, true, args.repeat.min(1))?;

    let streams: Vec<bool> = stream.values().to_vec();
    let mut rows = Vec::new();
    for &s in &streams {
        for &journal in args.journal.values() {
            let w = Workload {
                stream: s,
                ..workload
            };
            rows.push(bench.measure(&w, journal, args.repeat)?);
        }
    }
    // The default run also measures plain JSON answers once, with the journal on.
    if !custom && !args.quick && args.stream.is_none() {
        let w = Workload {
            stream: false,
            ..workload
        };
        rows.push(bench.measure(&w, true, args.repeat)?);
    }
    println!(
        "\n### Workload: N = {}, T = {}, C = {}, latency {} ms (ideal {:.2} s)\n",
        workload.tasks,
        workload.turns,
        workload.concurrency,
        workload.latency.as_millis(),
        workload.ideal().as_secs_f64()
    );
    print_table(&rows);
    print_durability(&rows);
    if !custom && !args.quick {
        print_targets(&rows);
    }

    if (!custom && !args.quick) || args.scaling {
        let mut scaling = Vec::new();
        for tasks in SCALING_TASKS {
            let w = Workload { tasks, ..STANDARD };
            match rows
                .iter()
                .find(|r| r.workload == w && r.journal && r.problem.is_none())
            {
                Some(done) => scaling.push(done.clone()),
                None => scaling.push(bench.measure(&w, true, args.repeat)?),
            }
        }
        println!(
            "\n### Scaling: C = {}, T = {}, latency {} ms, journal on, streamed\n",
            STANDARD.concurrency,
            STANDARD.turns,
            STANDARD.latency.as_millis()
        );
        print_table(&scaling);
        let per_call: Vec<f64> = scaling.iter().map(Measured::cpu_per_call_ms).collect();
        if let (Some(lo), Some(hi)) = (
            per_call.iter().cloned().reduce(f64::min),
            per_call.iter().cloned().reduce(f64::max),
        ) {
            println!(
                "\nCPU per call from {lo:.4} to {hi:.4} ms (max/min {:.2}x)",
                hi / lo.max(1e-9)
            );
        }
        // CPU = fixed + marginal x calls: the smallest and largest runs give both, so start-up
        // cost is not mistaken for cost per call.
        if let (Some(small), Some(large)) = (scaling.first(), scaling.last()) {
            let calls = large.mock.requests.saturating_sub(small.mock.requests);
            if calls > 0 {
                let cpu = large.usage.cpu().as_secs_f64() - small.usage.cpu().as_secs_f64();
                let marginal_ms = cpu * 1e3 / calls as f64;
                let fixed_ms = small.usage.cpu().as_secs_f64() * 1e3
                    - marginal_ms * small.mock.requests as f64;
                println!(
                    "marginal CPU per call {marginal_ms:.4} ms; fixed cost (start-up, shutdown) {fixed_ms:.1} ms"
                );
            }
        }
    }
    Ok(bench.all_ok)
}

struct Bench {
    bin: PathBuf,
    work_dir: PathBuf,
    keep: bool,
    port: u16,
    /// One mock per (latency, turns): started on first use, alive until the process exits.
    mocks: Vec<((Duration, u32), MockLlm)>,
    all_ok: bool,
}

impl Bench {
    fn mock(&mut self, latency: Duration, turns: u32) -> Result<&MockLlm, String> {
        let key = (latency, turns);
        let index = match self.mocks.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                // A fixed port can serve one mock only; later ones take any free port.
                let port = if self.mocks.is_empty() { self.port } else { 0 };
                let mock = MockLlm::start(latency, turns, port)
                    .map_err(|e| format!("the mock LLM server did not start: {e}"))?;
                self.mocks.push((key, mock));
                self.mocks.len() - 1
            }
        };
        Ok(&self.mocks[index].1)
    }

    /// Runs `workload` `repeat` times and returns the run with the median wall time, its CPU
    /// times (and its floors') replaced by the means of all runs: on a shared machine one run's
    /// CPU moves by a tenth and more, and the run picked by its wall time is no steadier.
    fn measure(
        &mut self,
        workload: &Workload,
        journal: bool,
        repeat: usize,
    ) -> Result<Measured, String> {
        let mut runs = Vec::new();
        for _ in 0..repeat.max(1) {
            runs.push(self.measure_once(workload, journal)?);
        }
        runs.sort_by_key(|m| m.usage.wall);
        let swarm = mean_cpu(runs.iter().map(|m| Some(&m.usage)));
        let floor = mean_cpu(runs.iter().map(|m| m.floor.as_ref()));
        let floor_hyper = mean_cpu(runs.iter().map(|m| m.floor_hyper.as_ref()));
        let mut chosen = runs.swap_remove(runs.len() / 2);
        if let Some((user, sys)) = swarm {
            (chosen.usage.user, chosen.usage.sys) = (user, sys);
        }
        for (usage, mean) in [
            (&mut chosen.floor, floor),
            (&mut chosen.floor_hyper, floor_hyper),
        ] {
            if let (Some(usage), Some((user, sys))) = (usage.as_mut(), mean) {
                (usage.user, usage.sys) = (user, sys);
            }
        }
        if chosen.problem.is_some() {
            self.all_ok = false;
        }
        Ok(chosen)
    }

    fn measure_once(&mut self, workload: &Workload, journal: bool) -> Result<Measured, String> {
        let (base_url, counters, capture) = {
            let mock = self.mock(workload.latency, workload.turns)?;
            (
                mock.base_url(),
                std::sync::Arc::clone(&mock.counters),
                std::sync::Arc::clone(&mock.capture),
            )
        };
        let tmp = tempfile::Builder::new()
            .prefix(&format!(
                "n{}-t{}-c{}-j{}-s{}-",
                workload.tasks,
                workload.turns,
                workload.concurrency,
                u8::from(journal),
                u8::from(workload.stream)
            ))
            .tempdir_in(&self.work_dir)
            .map_err(|e| format!("cannot create a run directory: {e}"))?;
        let files = workload::write(tmp.path(), workload, &base_url)
            .map_err(|e| format!("cannot write the workload: {e}"))?;
        let stdout = std::fs::File::create(files.dir.join("stdout.txt"))
            .map_err(|e| format!("cannot create stdout.txt: {e}"))?;
        let stderr = std::fs::File::create(files.dir.join("stderr.txt"))
            .map_err(|e| format!("cannot create stderr.txt: {e}"))?;

        let mut command = Command::new(&self.bin);
        command
            .arg("run")
            .arg(&files.swarm_file)
            .arg("--state-dir")
            .arg(&files.state_dir)
            .current_dir(&files.dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        if !journal {
            command.arg("--no-journal");
        }
        // The child must reach the mock and nothing else, and log as a user's run would.
        for var in [
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "SWARM_STATE_DIR",
            "RUST_LOG",
        ] {
            command.env_remove(var);
        }

        counters.reset_peak();
        if journal {
            capture.start();
        }
        let before = counters.snapshot();
        let usage = run_measured(&mut command)
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        let mock = counters.snapshot().since(&before);
        let state_bytes = workload::dir_bytes(&files.state_dir);

        let mut problem = check(workload, &usage, &mock);
        let (floor, floor_hyper) = if journal && problem.is_none() {
            let bodies = capture.take();
            let path = files.dir.join("bodies.bin");
            support::floor::write_bodies(&path, &bodies)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            let url = format!("{base_url}/chat/completions");
            let mut floors = [None, None];
            for (slot, transport) in floors.iter_mut().zip(["reqwest", "hyper"]) {
                let usage = run_floor(&path, &url, workload.concurrency, transport)?;
                if usage.exit_code != Some(0) {
                    problem = Some(format!("the floor client ({transport}) failed"));
                }
                *slot = Some(usage);
            }
            let [floor, floor_hyper] = floors;
            (floor, floor_hyper)
        } else {
            (None, None)
        };
        if let Some(problem) = &problem {
            eprintln!(
                "run N={} T={} C={} journal={} stream={}: {problem}",
                workload.tasks, workload.turns, workload.concurrency, journal, workload.stream
            );
            let tail = std::fs::read_to_string(files.dir.join("stderr.txt")).unwrap_or_default();
            let lines: Vec<&str> = tail.lines().collect();
            for line in &lines[lines.len().saturating_sub(15)..] {
                eprintln!("  | {line}");
            }
        }
        if self.keep || problem.is_some() {
            let kept = tmp.keep();
            eprintln!("run directory kept: {}", kept.display());
        }
        Ok(Measured {
            workload: *workload,
            journal,
            usage,
            mock,
            state_bytes,
            floor,
            floor_hyper,
            problem,
        })
    }
}

/// Runs the floor client (the bench binary as a child) on `bodies` with `transport`.
fn run_floor(
    bodies: &Path,
    url: &str,
    concurrency: u32,
    transport: &str,
) -> Result<ChildUsage, String> {
    let exe = std::env::current_exe().map_err(|e| format!("no bench binary: {e}"))?;
    let mut floor = Command::new(exe);
    floor
        .arg("--floor-client")
        .arg(bodies)
        .arg("--floor-url")
        .arg(url)
        .arg("--concurrency")
        .arg(concurrency.to_string())
        .arg("--floor-transport")
        .arg(transport)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    run_measured(&mut floor).map_err(|e| format!("cannot run the floor client: {e}"))
}

/// Whether the run did the work: clean exit, exactly N x T calls, N final answers.
fn check(workload: &Workload, usage: &ChildUsage, mock: &Counts) -> Option<String> {
    if let Some(signal) = usage.signal {
        return Some(format!("swarm was killed by signal {signal}"));
    }
    match usage.exit_code {
        Some(0) => {}
        Some(code) => return Some(format!("swarm exited with code {code}")),
        None => return Some("swarm ended without an exit code".to_string()),
    }
    if mock.bad_requests > 0 {
        return Some(format!("{} malformed requests", mock.bad_requests));
    }
    if mock.requests != workload.llm_calls() {
        return Some(format!(
            "{} LLM calls reached the mock, expected N x T = {}",
            mock.requests,
            workload.llm_calls()
        ));
    }
    if mock.final_answers != u64::from(workload.tasks) {
        return Some(format!(
            "{} final answers, expected one per task ({})",
            mock.final_answers, workload.tasks
        ));
    }
    let streamed_expected = if workload.stream { mock.requests } else { 0 };
    if mock.streamed != streamed_expected {
        return Some(format!(
            "{} streamed answers, expected {streamed_expected}",
            mock.streamed
        ));
    }
    None
}

fn swarm_binary(args: &Args) -> Result<PathBuf, String> {
    let bin = match &args.swarm_bin {
        Some(path) => path.clone(),
        // Cargo builds the package's binaries before its benches, with the bench profile.
        None => PathBuf::from(
            option_env!("CARGO_BIN_EXE_swarm")
                .ok_or("no swarm binary was built with this bench: set SWARM_BIN")?,
        ),
    };
    if !bin.is_file() {
        return Err(format!(
            "no swarm binary at {} (build it with `cargo build --release --bin swarm` or set SWARM_BIN)",
            bin.display()
        ));
    }
    Ok(bin)
}

fn serve(dir: &Path, workload: &Workload, port: u16) -> Result<bool, String> {
    let mock = MockLlm::start(workload.latency, workload.turns, port)
        .map_err(|e| format!("the mock LLM server did not start: {e}"))?;
    let files = workload::write(dir, workload, &mock.base_url())
        .map_err(|e| format!("cannot write the workload: {e}"))?;
    println!(
        "mock LLM: {} ({} ms, {} turns per task)",
        mock.base_url(),
        workload.latency.as_millis(),
        workload.turns
    );
    println!("workload: {}", files.swarm_file.display());
    println!(
        "run:      cd {} && swarm run swarm.yaml --state-dir {} [--no-journal]",
        files.dir.display(),
        files.state_dir.display()
    );
    println!("expected LLM calls per run: {}", workload.llm_calls());
    let mut last = Counts::default();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = mock.counters.snapshot();
        if now != last {
            let window = now.since(&last);
            println!(
                "requests {} (+{}), final answers {}, peak in flight {}",
                now.requests, window.requests, now.final_answers, now.peak_in_flight
            );
            last = now;
        }
    }
}

fn print_header(bin: &Path) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let command: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    println!("## load bench");
    println!("binary: {}", bin.display());
    println!("cores: {cores}");
    println!(
        "arguments: {}",
        if command.is_empty() {
            "(default)".to_string()
        } else {
            command.join(" ")
        }
    );
}

fn print_table(rows: &[Measured]) {
    println!(
        "| N | T | C | latency | stream | journal | wall s | ideal s | wall/ideal | LLM calls | CPU s (user+sys) | CPU/call ms | floor CPU/call ms | CPU / floor | wall / floor | hyper floor CPU/call ms | CPU / hyper floor | peak RSS MiB | peak in flight | request KiB (mean) | state dir KiB | ok |"
    );
    println!(
        "|---:|---:|---:|---:|:---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|"
    );
    for r in rows {
        let w = &r.workload;
        println!(
            "| {} | {} | {} | {} ms | {} | {} | {:.3} | {:.2} | {:.3} | {} | {:.3} ({:.3}+{:.3}) | {:.4} | {} | {} | {} | {} | {} | {:.1} | {} | {:.1} | {} | {} |",
            w.tasks,
            w.turns,
            w.concurrency,
            w.latency.as_millis(),
            if w.stream { "sse" } else { "json" },
            if r.journal { "on" } else { "off" },
            r.usage.wall.as_secs_f64(),
            w.ideal().as_secs_f64(),
            r.ratio(),
            r.mock.requests,
            r.usage.cpu().as_secs_f64(),
            r.usage.user.as_secs_f64(),
            r.usage.sys.as_secs_f64(),
            r.cpu_per_call_ms(),
            r.floor.map_or("-".to_string(), |f| format!(
                "{:.4}",
                f.cpu().as_secs_f64() * 1e3 / r.mock.requests.max(1) as f64
            )),
            r.cpu_over_floor()
                .map_or("-".to_string(), |x| format!("{x:.2}")),
            r.wall_over_floor()
                .map_or("-".to_string(), |x| format!("{x:.2}")),
            r.floor_hyper.map_or("-".to_string(), |f| format!(
                "{:.4}",
                f.cpu().as_secs_f64() * 1e3 / r.mock.requests.max(1) as f64
            )),
            r.cpu_over_hyper_floor()
                .map_or("-".to_string(), |x| format!("{x:.2}")),
            r.rss_mib(),
            r.mock.peak_in_flight,
            r.mock.request_bytes as f64 / 1024.0 / r.mock.requests.max(1) as f64,
            r.state_bytes / 1024,
            r.problem.as_deref().unwrap_or("yes"),
        );
    }
}

fn pct(on: f64, off: f64) -> f64 {
    (on - off) / off.max(1e-9) * 100.0
}

/// Journal on against off, for each workload measured both ways.
fn print_durability(rows: &[Measured]) {
    for on in rows.iter().filter(|r| r.journal) {
        let Some(off) = rows
            .iter()
            .find(|r| !r.journal && r.workload == on.workload)
        else {
            continue;
        };
        println!(
            "\ndurability cost ({}): wall {:+.1} %, CPU {:+.1} %, CPU/call {:.4} -> {:.4} ms, peak RSS {:.1} -> {:.1} MiB",
            if on.workload.stream { "sse" } else { "json" },
            pct(on.usage.wall.as_secs_f64(), off.usage.wall.as_secs_f64()),
            pct(on.usage.cpu().as_secs_f64(), off.usage.cpu().as_secs_f64()),
            off.cpu_per_call_ms(),
            on.cpu_per_call_ms(),
            off.rss_mib(),
            on.rss_mib(),
        );
    }
}

fn print_targets(rows: &[Measured]) {
    let Some(on) = rows.iter().find(|r| r.journal && r.workload == STANDARD) else {
        return;
    };
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!("\ntargets (standard workload, journal on):");
    println!(
        "  wall <= {TARGET_WALL_RATIO} x ideal: {:.3} x  {}",
        on.ratio(),
        verdict(on.ratio() <= TARGET_WALL_RATIO)
    );
    println!(
        "  CPU <= {TARGET_CPU_PER_CALL_MS} ms per LLM call: {:.4} ms  {}",
        on.cpu_per_call_ms(),
        verdict(on.cpu_per_call_ms() <= TARGET_CPU_PER_CALL_MS)
    );
    if let Some(ratio) = on.cpu_over_floor() {
        println!(
            "  CPU per call <= {TARGET_CPU_OVER_FLOOR} x the bare client's: {ratio:.2} x  {}",
            verdict(ratio <= TARGET_CPU_OVER_FLOOR)
        );
    }
    if let Some(ratio) = on.cpu_over_hyper_floor() {
        println!("  CPU per call over the bare client on hyper directly: {ratio:.2} x");
    }
    println!(
        "  peak RSS <= {TARGET_RSS_MIB} MiB: {:.1} MiB  {}",
        on.rss_mib(),
        verdict(on.rss_mib() <= TARGET_RSS_MIB)
    );
    if let Some(off) = rows.iter().find(|r| !r.journal && r.workload == STANDARD) {
        let cost = pct(on.usage.wall.as_secs_f64(), off.usage.wall.as_secs_f64());
        println!(
            "  journal on vs off within {TARGET_JOURNAL_COST_PCT} % (wall): {cost:+.1} %  {}",
            verdict(cost.abs() <= TARGET_JOURNAL_COST_PCT)
        );
    }
}

/// The mean user and system time of the runs that have a usage.
fn mean_cpu<'a>(
    usages: impl Iterator<Item = Option<&'a ChildUsage>>,
) -> Option<(Duration, Duration)> {
    let (mut user, mut sys, mut n) = (Duration::ZERO, Duration::ZERO, 0u32);
    for usage in usages.flatten() {
        user += usage.user;
        sys += usage.sys;
        n += 1;
    }
    (n > 0).then(|| (user / n, sys / n))
}
