//! Cost benchmark: what prompt caching saves on a swarm, and whether the USD the session
//! computes is what the provider would bill.
//!
//! The workload: 4 agents x 6 turns (5 `memory_store` calls, then the answer) on one role with
//! a realistic prompt (~1 700 tokens), run by the real `swarm` binary against the test mock,
//! which bills like the API (`tests/support/prompt_cache.rs`: breakpoints, 1024-token minimum,
//! 20-block lookback, 5-minute lifetime; OpenAI's automatic prefix caching). Each protocol runs
//! with `llm.prompt_cache` on and off; the bill is computed from the mock's usage at the
//! provider's prices, independently of the session's own arithmetic.
//!
//! ```text
//! cargo bench --bench cost
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{json, Value};
use support::swarm_fixture::{stderr, SwarmFixture};
use support::{MockLlm, MockReply, Script};
use swarm_runtime::llm::Usage;

const AGENTS: u32 = 4;
const TURNS: usize = 6;

/// (name, base URL of, input, output, cache write, cache read) per million tokens.
struct Protocol {
    name: &'static str,
    provider: &'static str,
    input: f64,
    output: f64,
    write: f64,
    read: f64,
}

const ANTHROPIC: Protocol = Protocol {
    name: "anthropic",
    provider: "anthropic",
    input: 3.0,
    output: 15.0,
    write: 3.75,
    read: 0.30,
};

const OPENAI: Protocol = Protocol {
    name: "openai",
    provider: "openai",
    input: 2.5,
    output: 10.0,
    write: 2.5,
    read: 1.25,
};

fn role_prompt() -> String {
    let mut text = String::from(
        "You are a senior backend engineer on a team of agents building a web service.\n\n",
    );
    for i in 0..40 {
        text.push_str(&format!(
            "Rule {i}: keep changes small and reviewed; write the test that fails first, then the \
             code; record decisions in shared memory with the reason; never leave a task half done.\n"
        ));
    }
    text
}

fn script() -> Script {
    Script::from_fn(|r| {
        let done = r.tool_results().count();
        if done + 1 < TURNS {
            MockReply::tool(
                "memory_store",
                json!({"key": format!("notes/step-{done}"), "value": format!("step {done} done")}),
            )
        } else {
            MockReply::text("all steps done")
        }
    })
}

struct Run {
    bill: Usage,
    bill_usd: f64,
    session_usd: f64,
    session_saved: f64,
    requests: usize,
}

fn run(p: &Protocol, prompt_cache: bool) -> Result<Run, String> {
    let mock = MockLlm::spawn(script());
    mock.bill_like_the_api();
    let base_url = if p.provider == "anthropic" {
        mock.base_url_anthropic()
    } else {
        mock.base_url_openai()
    };
    let fx = SwarmFixture::new();
    fx.write(
        "agents/backend.md",
        &format!(
            "---\nname: backend\ndescription: backend engineer\ntools: [memory_store]\nmax_turns: 8\n---\n{}",
            role_prompt()
        ),
    );
    let mut yaml = format!(
        "name: cost\ntopology: mesh\nmax_agents: {AGENTS}\nagents:\n  - role: backend\n    count: {AGENTS}\ntasks:\n"
    );
    for i in 0..AGENTS {
        yaml.push_str(&format!(
            "  - id: part-{i}\n    role: backend\n    description: \"Part {i} of the service\"\n"
        ));
    }
    yaml.push_str(&format!(
        "llm:\n  provider: {}\n  model: bench-model\n  base_url: {base_url}\n  stream: true\n  \
         prompt_cache: {prompt_cache}\n  prices: {{input_per_mtok: {}, output_per_mtok: {}}}\nworkspace: ./ws\n",
        p.provider, p.input, p.output
    ));
    fx.swarm(&yaml);
    let out = fx.run(&["run", "swarm.yaml"]);
    if out.status.code() != Some(0) {
        return Err(format!("swarm run failed: {}", stderr(&out)));
    }
    let show = fx.run(&["sessions", "show", "latest", "--json"]);
    let show: Value = serde_json::from_slice(&show.stdout).map_err(|e| e.to_string())?;
    let bill = mock.bill();
    let bill_usd = (bill.input_tokens as f64 * p.input
        + bill.cache_write_tokens as f64 * p.write
        + bill.cache_read_tokens as f64 * p.read
        + bill.output_tokens as f64 * p.output)
        / 1e6;
    Ok(Run {
        bill,
        bill_usd,
        session_usd: show["metrics"]["usd"].as_f64().unwrap_or(f64::NAN),
        session_saved: show["metrics"]["usd_saved"].as_f64().unwrap_or(f64::NAN),
        requests: mock.successful_requests(),
    })
}

/// Input billed in input-price units.
fn billed_input(p: &Protocol, u: &Usage) -> f64 {
    u.input_tokens as f64
        + u.cache_write_tokens as f64 * p.write / p.input
        + u.cache_read_tokens as f64 * p.read / p.input
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!(
        "## cost bench: {AGENTS} agents x {TURNS} turns, one role, ~1 700-token role prompt\n"
    );
    println!("| protocol | prompt cache | calls | prompt tokens | uncached input | cache writes | cache reads | output | billed input (input-price tokens) | bill USD | session USD | session / bill | saved USD (session) |");
    println!("|---|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut failed = false;
    for p in [&ANTHROPIC, &OPENAI] {
        let mut billed = Vec::new();
        for cache in [true, false] {
            match run(p, cache) {
                Ok(r) => {
                    let b = billed_input(p, &r.bill);
                    billed.push(b);
                    println!(
                        "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.6} | {:.6} | {:.4} | {:.6} |",
                        p.name,
                        if cache { "on" } else { "off" },
                        r.requests,
                        r.bill.prompt_tokens(),
                        r.bill.input_tokens,
                        r.bill.cache_write_tokens,
                        r.bill.cache_read_tokens,
                        r.bill.output_tokens,
                        b,
                        r.bill_usd,
                        r.session_usd,
                        r.session_usd / r.bill_usd,
                        r.session_saved,
                    );
                }
                Err(e) => {
                    eprintln!("{} cache={cache}: {e}", p.name);
                    failed = true;
                }
            }
        }
        if let [on, off] = billed[..] {
            println!(
                "|   {} billed input, cache on / off: **{:.3}** |||||||||||||",
                p.name,
                on / off
            );
        }
    }
    if failed {
        std::process::exit(1);
    }
}
