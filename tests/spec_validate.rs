//! `swarm validate` on malformed definitions: each must fail with exit code 2 and a message naming
//! the file, line and column and saying what is wrong; hostile inputs must fail fast and cleanly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn validate_in(dir: &Path, files: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swarm"))
        .arg("validate")
        .args(files)
        .current_dir(dir)
        .output()
        .expect("the swarm binary runs")
}

/// Validates `tests/fixtures/invalid/<file>` and checks exit code, position and message words.
fn assert_invalid(file: &str, line: usize, column: usize, words: &[&str]) {
    let out = validate_in(&fixtures().join("invalid"), &[file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{file}: stderr:\n{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("ok:"),
        "{file} reported as ok"
    );
    let location = format!("{file}:{line}:{column}: error:");
    let block: String = stderr
        .split_inclusive('\n')
        .skip_while(|l| !l.starts_with(&location))
        .take(2)
        .collect();
    assert!(
        !block.is_empty(),
        "no error at {location}; stderr:\n{stderr}"
    );
    for word in words {
        assert!(
            block.contains(word),
            "{file}: `{word}` not in the error at {location}:\n{block}\nfull stderr:\n{stderr}"
        );
    }
    assert!(
        block.contains("\n  help: "),
        "{file}: the error has no help line:\n{block}"
    );
}

macro_rules! invalid {
    ($($test:ident: $file:literal at $line:literal : $col:literal => [$($word:literal),+ $(,)?];)+) => {
        $(
            #[test]
            fn $test() {
                assert_invalid($file, $line, $col, &[$($word),+]);
            }
        )+
    };
}

invalid! {
    unknown_top_level_key: "unknown_top_key.yaml" at 2:1 => ["unknown key `topolgy`", "did you mean `topology`?"];
    swarm_name_with_capitals_and_space: "bad_name.yaml" at 1:7 => ["`My Swarm`", "lowercase", "name: my-swarm"];
    unknown_topology: "unknown_topology.yaml" at 2:11 => ["unknown topology `star`", "mesh", "hierarchical"];
    max_agents_zero: "max_agents_zero.yaml" at 14:13 => ["`max_agents` is 0", "at least 1"];
    roster_count_zero: "count_zero.yaml" at 6:12 => ["`count` is 0", "at least 1"];
    hierarchical_without_coordinator: "hierarchical_no_coordinator.yaml" at 1:1 => ["hierarchical", "no `coordinator`", "coordinator: ROLE"];
    coordinator_that_cannot_plan: "coordinator_without_create_task.yaml" at 3:14 => ["`tester` cannot plan", "create_task"];
    mesh_without_tasks: "mesh_without_tasks.yaml" at 1:1 => ["mesh swarm needs tasks"];
    duplicate_task_id: "duplicate_task_id.yaml" at 14:9 => ["task id `api` is used twice"];
    malformed_task_id: "bad_task_id.yaml" at 7:9 => ["`Build API`", "lowercase"];
    unknown_dependency: "unknown_dependency.yaml" at 12:18 => ["depends on `apii`", "did you mean `api`?"];
    dependency_cycle: "cycle.yaml" at 7:9 => ["cycle", "a -> c -> b -> a"];
    task_depends_on_itself: "self_dependency.yaml" at 12:18 => ["`tests` depends on itself"];
    task_role_outside_roster: "task_role_not_in_roster.yaml" at 11:11 => ["`code-reviewer`", "not in `agents`"];
    unknown_role: "unknown_role.yaml" at 5:11 => ["unknown role `testr`", "did you mean `tester`?"];
    duration_without_unit: "bad_duration.yaml" at 15:13 => ["`checkpoint.interval`", "`30 seconds`", "30s"];
    warn_at_above_stop_at: "budget_thresholds.yaml" at 16:12 => ["warn_at", "must be below", "stop_at"];
    negative_token_budget: "budget_negative.yaml" at 15:11 => ["`budget.tokens` is -5", "at least 1"];
    stop_at_above_one: "stop_at_above_one.yaml" at 15:12 => ["`budget.stop_at` is 1.5", "at most 1"];
    zero_usd_budget: "budget_usd_zero.yaml" at 15:8 => ["`budget.usd` is 0"];
    misspelled_provider: "bad_provider.yaml" at 15:13 => ["unknown provider `opnai`", "did you mean `openai`?"];
    base_url_not_a_url: "bad_base_url.yaml" at 16:13 => ["`not a url` is not a URL", "http://localhost:11434/v1"];
    base_url_wrong_scheme: "base_url_scheme.yaml" at 15:13 => ["`ftp:`", "http or https"];
    unknown_hook_event: "unknown_hook.yaml" at 15:3 => ["unknown key `pre_task` in `hooks`", "did you mean `pre-task`?"];
    ttl_not_a_duration: "bad_ttl.yaml" at 15:8 => ["`memory.ttl`", "`forever`", "`none`"];
    misspelled_llm_key: "unknown_llm_key.yaml" at 15:3 => ["unknown key `max_token` in `llm`", "did you mean `max_tokens`?"];
    duplicate_key: "duplicate_key.yaml" at 14:1 => ["`name` appears twice"];
    role_twice_in_roster: "duplicate_roster.yaml" at 6:11 => ["`tester` is listed twice", "count:"];
    mesh_with_coordinator: "mesh_with_coordinator.yaml" at 14:14 => ["mesh swarm has no coordinator"];
    reserved_task_id: "reserved_task_id.yaml" at 7:9 => ["task id `plan` is reserved", "another id"];
    string_instead_of_boolean: "wrong_type.yaml" at 14:17 => ["`allow_commands` must be true or false", "a string"];
    misspelled_task_key: "unknown_task_key.yaml" at 12:5 => ["unknown key `depends` in a task", "did you mean `depends_on`?"];
    yaml_syntax_error: "syntax_error.yaml" at 2:9 => ["not valid YAML", "unclosed bracket"];
    tab_indentation: "tabs.yaml" at 4:1 => ["tab is used for indentation", "spaces"];
    empty_swarm_file: "empty.yaml" at 1:1 => ["the swarm file is empty", "swarm init"];
    missing_name: "missing_name.yaml" at 1:1 => ["no `name`", "name: my-swarm"];
    zero_hook_timeout: "hook_timeout_zero.yaml" at 16:12 => ["`hooks.timeout` is zero"];
    negative_price: "negative_price.yaml" at 15:29 => ["`llm.prices.input_per_mtok` is -1", "negative"];
    thinking_budget_too_big: "thinking_budget.yaml" at 16:30 => ["thinking budget is 4096 tokens", "below `llm.max_tokens` (2000)"];
    bad_max_tokens_field: "bad_max_tokens_field.yaml" at 15:21 => ["`llm.max_tokens_field` is `max_output_tokens`", "max_completion_tokens"];
    two_yaml_documents: "two_documents.yaml" at 14:1 => ["more than one YAML document", "`---`"];
    billion_laughs_in_file: "billion_laughs.yaml" at 5:11 => ["exceeds the limits", "alias"];
    role_unknown_tool: "role_unknown_tool.md" at 4:23 => ["unknown tool `memory_retreive`", "did you mean `memory_retrieve`?"];
    role_without_prompt: "role_empty_body.md" at 4:1 => ["no system prompt"];
    role_without_frontmatter: "role_no_frontmatter.md" at 1:1 => ["frontmatter", "`---`"];
    role_frontmatter_unclosed: "role_unclosed.md" at 1:1 => ["frontmatter is not closed"];
    role_max_turns_zero: "role_max_turns_zero.md" at 4:12 => ["`max_turns` is 0", "at least 1"];
    role_missing_description: "role_missing_description.md" at 2:1 => ["no `description`"];
    role_memory_key_misspelled: "role_bad_memory_key.md" at 5:3 => ["unknown key `reads` in `memory`", "did you mean `read`?"];
    role_frontmatter_syntax: "role_bad_yaml.md" at 3:14 => ["not valid YAML", "unclosed bracket"];
}

#[test]
fn every_error_of_a_file_is_reported_together() {
    let out = validate_in(&fixtures().join("invalid"), &["multiple_errors.yaml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    for location in [
        "multiple_errors.yaml:1:7: error:",
        "multiple_errors.yaml:3:13: error:",
        "multiple_errors.yaml:9:18: error:",
    ] {
        assert!(
            stderr.contains(location),
            "missing {location} in:\n{stderr}"
        );
    }
}

#[test]
fn one_invalid_file_fails_the_run_but_valid_ones_are_reported_ok() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let good = root.join("swarms/code-review.yaml");
    let bad = fixtures().join("invalid/cycle.yaml");
    let out = validate_in(dir.path(), &[good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok: ") && stdout.contains("code-review.yaml"),
        "{stdout}"
    );
    assert!(!stdout.contains("cycle.yaml"), "{stdout}");
}

#[test]
fn a_file_of_another_kind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "name: x\n").unwrap();
    let out = validate_in(dir.path(), &["notes.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".yaml or .yml"));
}

#[test]
fn a_missing_file_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let out = validate_in(dir.path(), &["nowhere.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere.yaml: error: cannot read"));
}

/// Writes `bytes` to a temp file, validates it, and checks it fails cleanly and fast: an unbounded
/// expansion would take minutes or exhaust memory; the bound leaves room for a loaded machine
/// starting a debug binary (about 0.1 s when idle).
fn assert_hostile_fails_fast(name: &str, bytes: &[u8], words: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), bytes).unwrap();
    let started = Instant::now();
    let out = validate_in(dir.path(), &[name]);
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 2, not a signal (stack overflow) or 101 (panic).
    assert_eq!(out.status.code(), Some(2), "{name}: stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    assert!(elapsed < Duration::from_secs(3), "{name} took {elapsed:?}");
    assert!(stderr.starts_with(&format!("{name}:")), "{name}: {stderr}");
    for word in words {
        assert!(stderr.contains(word), "{name}: `{word}` not in:\n{stderr}");
    }
}

#[test]
fn hostile_file_over_one_mebibyte() {
    let mut text = b"name: big\n# ".to_vec();
    text.resize(1024 * 1024 + 100, b'x');
    assert_hostile_fails_fast("big.yaml", &text, &["larger than 1048576 bytes"]);
}

#[test]
fn hostile_billion_laughs() {
    let mut text = String::from("a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
    let mut previous = 'a';
    for name in 'b'..='j' {
        let refs = vec![format!("*{previous}"); 10].join(",");
        text.push_str(&format!("{name}: &{name} [{refs}]\n"));
        previous = name;
    }
    assert_hostile_fails_fast(
        "lol.yaml",
        text.as_bytes(),
        &["exceeds the limits", "alias"],
    );
}

#[test]
fn hostile_deep_flow_nesting() {
    let text = format!("name: {}{}\n", "[".repeat(20_000), "]".repeat(20_000));
    assert_hostile_fails_fast("deep.yaml", text.as_bytes(), &["exceeds the limits"]);
}

#[test]
fn hostile_deep_block_nesting() {
    // Each level is one line indented one space more: a deep tree within the size limit.
    let text: String = (0..1400)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    assert!(text.len() < 1024 * 1024);
    assert_hostile_fails_fast(
        "deep-block.yaml",
        text.as_bytes(),
        &["exceeds the limits", "64 levels"],
    );
}

#[test]
fn hostile_binary_garbage() {
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    assert_hostile_fails_fast("garbage.yaml", &bytes, &["not valid UTF-8"]);
}

#[test]
fn hostile_invalid_utf8_in_a_role_file_points_at_the_byte() {
    let text = b"---\nname: r\ndescription: caf\xe9\n---\nbody\n";
    assert_hostile_fails_fast("r.md", text, &["r.md:3:17: error:", "not valid UTF-8"]);
}

#[test]
fn hostile_nul_bytes_in_utf8_text() {
    assert_hostile_fails_fast("nul.yaml", b"name: a\0b\n", &["NUL"]);
}

#[test]
fn hostile_empty_file() {
    assert_hostile_fails_fast("empty.yaml", b"", &["empty"]);
    assert_hostile_fails_fast("empty.md", b"", &["empty"]);
}

#[test]
fn hostile_tabs_for_indentation() {
    assert_hostile_fails_fast(
        "tabs.yaml",
        b"name: t\nagents:\n\t- role: tester\n",
        &["tabs.yaml:3:1: error:", "tab"],
    );
}
