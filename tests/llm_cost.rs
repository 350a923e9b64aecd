//! What a swarm costs: prompt caching on the Anthropic protocol, the USD the session computes
//! against the bill the mock keeps (it bills like the API, see `support::prompt_cache`), and a
//! USD budget that holds with many calls in flight.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::prompt_cache::{PromptCache, CACHE_LIFETIME};
use support::swarm_fixture::{stderr, stdout, SwarmFixture};
use support::{MockLlm, MockReply, Script};
use swarm_runtime::llm::Usage;

/// Sonnet-class prices, per million tokens.
const INPUT: f64 = 3.0;
const OUTPUT: f64 = 15.0;

/// A role prompt of the length real ones have (~1 700 tokens as the mock counts them).
fn role_prompt() -> String {
    let mut text = String::from("You are a senior backend engineer on a team of agents.\n\n");
    for i in 0..40 {
        text.push_str(&format!(
            "Rule {i}: keep changes small and reviewed; write the test that fails first, then the \
             code; record decisions in shared memory with the reason; never leave a task half done.\n"
        ));
    }
    text
}

/// Turn n (0-based) of a task: a `memory_store` call while n < turns - 1, then a final answer.
fn turns_script(turns: usize) -> Script {
    Script::from_fn(move |r| {
        let done = r.tool_results().count();
        if done + 1 < turns {
            MockReply::tool(
                "memory_store",
                json!({"key": format!("notes/step-{done}"), "value": format!("step {done} done")}),
            )
        } else {
            MockReply::text("all steps done")
        }
    })
}

fn swarm_yaml(mock: &MockLlm, agents: u32, tasks: u32, extra_llm: &str, extra: &str) -> String {
    let mut yaml = format!(
        "name: cost\ntopology: mesh\nmax_agents: {agents}\nagents:\n  - role: backend\n    count: {agents}\ntasks:\n"
    );
    for i in 0..tasks {
        yaml.push_str(&format!(
            "  - id: t{i}\n    role: backend\n    description: \"Part {i} of the service\"\n"
        ));
    }
    yaml.push_str(&format!(
        "llm:\n  provider: anthropic\n  model: claude-test\n  base_url: {}\n  stream: true\n  \
         prices: {{input_per_mtok: {INPUT}, output_per_mtok: {OUTPUT}}}\n{extra_llm}workspace: ./ws\n{extra}",
        mock.base_url_anthropic()
    ));
    yaml
}

fn role_file(fx: &SwarmFixture, max_turns: u32) {
    fx.write(
        "agents/backend.md",
        &format!(
            "---\nname: backend\ndescription: backend engineer\ntools: [memory_store]\nmax_turns: {max_turns}\n---\n{}",
            role_prompt()
        ),
    );
}

fn metrics(fx: &SwarmFixture) -> Value {
    let out = fx.run(&["sessions", "show", "latest", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let show: Value = serde_json::from_slice(&out.stdout).expect("sessions show --json");
    show["metrics"].clone()
}

/// Input billed in input-price units: writes at 1.25x, reads at 0.1x.
fn billed_input(bill: &Usage) -> f64 {
    bill.input_tokens as f64
        + 1.25 * bill.cache_write_tokens as f64
        + 0.1 * bill.cache_read_tokens as f64
}

fn bill_usd(bill: &Usage) -> f64 {
    (billed_input(bill) * INPUT + bill.output_tokens as f64 * OUTPUT) / 1e6
}

/// Runs 4 agents x 6 turns; returns the mock's bill and the session's metrics.
fn four_by_six(prompt_cache: bool) -> (Usage, Value) {
    let mock = MockLlm::spawn(turns_script(6));
    mock.bill_like_the_api();
    let fx = SwarmFixture::new();
    role_file(&fx, 8);
    let llm = format!("  prompt_cache: {prompt_cache}\n");
    fx.swarm(&swarm_yaml(&mock, 4, 4, &llm, ""));
    let out = fx.run(&["run", "swarm.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(mock.successful_requests(), 24);
    (mock.bill(), metrics(&fx))
}

#[test]
fn prompt_caching_cuts_the_billed_input_and_the_session_usd_matches_the_bill() {
    let (cached, with) = four_by_six(true);
    let (uncached, without) = four_by_six(false);
    assert_eq!(uncached.cache_read_tokens + uncached.cache_write_tokens, 0);
    assert_eq!(
        cached.prompt_tokens(),
        uncached.prompt_tokens(),
        "the same prompts either way"
    );
    let ratio = billed_input(&cached) / billed_input(&uncached);
    assert!(
        ratio <= 0.35,
        "billed input with caching / without = {ratio:.3}"
    );

    for (bill, m) in [(&cached, &with), (&uncached, &without)] {
        let usd = m["usd"].as_f64().expect("usd");
        let expected = bill_usd(bill);
        assert!(
            (usd - expected).abs() <= expected * 0.01,
            "session ${usd} vs bill ${expected}"
        );
        assert_eq!(m["tokens_in"].as_u64(), Some(bill.prompt_tokens()));
        assert_eq!(
            m["cache_read_tokens"].as_u64(),
            Some(bill.cache_read_tokens)
        );
        assert_eq!(
            m["cache_write_tokens"].as_u64(),
            Some(bill.cache_write_tokens)
        );
    }
    let saved = with["usd_saved"].as_f64().expect("usd_saved");
    let difference = without["usd"].as_f64().unwrap_or(0.0) - with["usd"].as_f64().unwrap_or(0.0);
    assert!(saved > 0.0, "{with}");
    assert!(
        (saved - difference).abs() <= difference * 0.01,
        "the saving (${saved}) is what the uncached run cost more (${difference})"
    );
    assert_eq!(without["usd_saved"].as_f64(), Some(0.0));
}

#[test]
fn a_usd_budget_is_never_overshot_with_many_calls_in_flight() {
    let mock = MockLlm::spawn(turns_script(4));
    mock.bill_like_the_api();
    mock.set_latency(Duration::from_millis(100));
    let fx = SwarmFixture::new();
    role_file(&fx, 8);
    // 40 tasks x 4 calls would cost ~4x the limit; 12 agents call at once, each call's worst
    // case is about a tenth of the limit.
    let limit = 0.12;
    fx.swarm(&swarm_yaml(
        &mock,
        12,
        40,
        "  max_tokens: 256\n",
        &format!("budget:\n  usd: {limit}\n  warn_at: 0.5\n  stop_at: 0.99\n"),
    ));
    let out = fx.run(&["run", "swarm.yaml"]);
    let m = metrics(&fx);
    let usd = m["usd"].as_f64().expect("usd");
    let billed = bill_usd(&mock.bill());
    assert!(
        usd <= limit,
        "spent ${usd} of a ${limit} budget\n{}",
        stdout(&out)
    );
    assert!(billed <= limit, "billed ${billed} of a ${limit} budget");
    assert!(
        usd >= limit * 0.5,
        "the budget was used, not refused early: ${usd}"
    );
    eprintln!(
        "spent ${usd:.4}, billed ${billed:.4} of ${limit}; {} calls, peak {} in flight",
        mock.successful_requests(),
        mock.peak_in_flight()
    );
    assert!(mock.peak_in_flight() > 4, "calls ran in parallel");
    assert!(
        stdout(&out).contains("budget") || stderr(&out).contains("budget"),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_ne!(out.status.code(), Some(0), "the run stopped on its budget");
}

/// The cache rules themselves, on request bodies.
fn text(t: &str, mark: bool) -> Value {
    let mut block = json!({"type": "text", "text": t});
    if mark {
        block["cache_control"] = json!({"type": "ephemeral"});
    }
    block
}

fn body(system: &str, messages: &[(&str, Vec<Value>)]) -> Value {
    json!({
        "model": "m",
        "max_tokens": 10,
        "system": [text(system, true)],
        "messages": messages.iter().map(|(role, content)| json!({"role": role, "content": content})).collect::<Vec<_>>(),
    })
}

#[test]
fn the_mock_cache_follows_the_documented_rules() {
    let long = "x".repeat(4 * 2000); // 2000 tokens
    let short = "y".repeat(4 * 500);
    let now = Instant::now();
    let mut cache = PromptCache::default();

    // Below 1024 tokens nothing is written.
    let u = cache.input_usage(
        true,
        &body(&short, &[("user", vec![text("hi", true)])]),
        now,
    );
    assert_eq!((u.cache_write_tokens, u.cache_read_tokens), (0, 0));

    // A long prefix is written at the breakpoint, then read by the next request.
    let first = body(&long, &[("user", vec![text("hi", true)])]);
    let u = cache.input_usage(true, &first, now);
    assert_eq!(
        (u.input_tokens, u.cache_write_tokens, u.cache_read_tokens),
        (0, 2001, 0)
    );
    let u = cache.input_usage(true, &first, now + Duration::from_secs(10));
    assert_eq!(
        (u.input_tokens, u.cache_write_tokens, u.cache_read_tokens),
        (0, 0, 2001)
    );

    // A later turn with its breakpoint within 20 blocks of the cached one reads it and writes the rest.
    let mut blocks: Vec<Value> = vec![text("hi", false)];
    blocks.extend((0..19).map(|i| text(&format!("more {i:02}"), false)));
    blocks.push(text("newest", true));
    let later = body(&long, &[("user", blocks.clone())]);
    let u = cache.input_usage(true, &later, now + Duration::from_secs(20));
    assert_eq!(u.cache_read_tokens, 2001);
    assert_eq!(u.cache_write_tokens, 19 * 2 + 2);
    assert_eq!(u.input_tokens, 0);

    // More than 20 blocks after the last cached prefix: only the system breakpoint is read.
    let mut far: Vec<Value> = vec![text("hi", false)];
    far.extend((0..30).map(|i| text(&format!("other {i:02}"), false)));
    far.push(text("end", true));
    let u = cache.input_usage(
        true,
        &body(&long, &[("user", far)]),
        now + Duration::from_secs(30),
    );
    assert_eq!(
        u.cache_read_tokens, 2000,
        "read at the system prompt's breakpoint"
    );

    // Input after the last breakpoint is billed as input, not cached.
    let mut tail = blocks;
    tail.push(text("unmarked tail", false));
    let u = cache.input_usage(
        true,
        &body(&long, &[("user", tail)]),
        now + Duration::from_secs(40),
    );
    assert_eq!(u.input_tokens, 4);

    // Five minutes after its last use an entry is gone.
    let u = cache.input_usage(true, &first, now + Duration::from_secs(40) + CACHE_LIFETIME);
    assert_eq!((u.cache_write_tokens, u.cache_read_tokens), (2001, 0));

    // At most four breakpoints.
    let five: Vec<Value> = (0..4).map(|i| text(&format!("m{i}"), true)).collect();
    assert!(PromptCache::check_anthropic(&body(&long, &[("user", five)])).is_err());
}

#[test]
fn openai_reports_cached_prefixes_in_128_token_steps() {
    let long = "x".repeat(4 * 1300);
    let now = Instant::now();
    let mut cache = PromptCache::default();
    let request = |extra: &str| {
        json!({"model": "m", "messages": [
            {"role": "system", "content": long},
            {"role": "user", "content": format!("task {extra}")},
        ]})
    };
    let u = cache.input_usage(false, &request("a"), now);
    assert_eq!(u.cache_read_tokens, 0);
    let u = cache.input_usage(false, &request("b"), now);
    assert_eq!(
        u.cache_read_tokens,
        1024 + 2 * 128,
        "1300 tokens cached, counted down to a step"
    );
    assert_eq!(u.prompt_tokens(), 1300 + 2);
}
