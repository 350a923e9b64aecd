//! The runtime never records a false "done": through the real binary against the mock, a
//! refusal fails the task with the model's words, a cut-off answer is continued and joined, and
//! one still cut off after the continuations fails naming `max_tokens`.

mod support;

use serde_json::json;
use support::swarm_fixture::{stderr, stdout, SwarmFixture};
use support::{Fault, MockLlm, Script};

fn swarm(fx: &SwarmFixture, mock: &MockLlm, stream: bool) {
    fx.role("worker", &["memory_store"]);
    fx.swarm(&format!(
        "name: truth\ntopology: mesh\nagents:\n  - role: worker\ntasks:\n  - id: answer\n    role: worker\n    description: Answer {{goal}}\nllm:\n  provider: openai\n  model: m\n  base_url: {}\n  stream: {stream}\n  max_retries: 0\nworkspace: ./ws\n",
        mock.base_url_openai()
    ));
}

fn body(stream: bool, content: serde_json::Value, reason: &str) -> String {
    if stream {
        let delta = match content.get("refusal") {
            Some(r) => json!({"refusal": r}),
            None => json!({"content": content["content"]}),
        };
        format!(
            "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
            json!({"choices": [{"index": 0, "delta": delta, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}],
                   "usage": {"prompt_tokens": 5, "completion_tokens": 3}})
        )
    } else {
        json!({"choices": [{"index": 0, "message": content, "finish_reason": reason}],
               "usage": {"prompt_tokens": 5, "completion_tokens": 3}})
        .to_string()
    }
}

fn task_line(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("answer "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_refusal_fails_the_task_with_the_models_words() {
    for stream in [false, true] {
        let mock = MockLlm::spawn(Script::text("never reached"));
        mock.push_fault(Fault::Raw(body(
            stream,
            json!({"role": "assistant", "content": null, "refusal": "I won't do that."}),
            "stop",
        )));
        let fx = SwarmFixture::new();
        swarm(&fx, &mock, stream);
        let out = fx.run(&["run", "swarm.yaml", "--goal", "x"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let line = task_line(&stdout(&out));
        assert!(line.contains("failed"), "{line}");
        assert!(
            line.contains("the model refused: I won't do that."),
            "{line}"
        );
    }
}

#[test]
fn a_cut_off_answer_is_continued_and_joined() {
    for stream in [false, true] {
        let mock = MockLlm::spawn(Script::text("never reached"));
        mock.push_faults([
            Fault::Raw(body(
                stream,
                json!({"role": "assistant", "content": "The answer is fo"}),
                "length",
            )),
            Fault::Raw(body(
                stream,
                json!({"role": "assistant", "content": "rty-two."}),
                "stop",
            )),
        ]);
        let fx = SwarmFixture::new();
        swarm(&fx, &mock, stream);
        let out = fx.run(&["run", "swarm.yaml", "--goal", "x"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        let second = mock.request_json(1);
        let last = &second["messages"].as_array().unwrap().last().unwrap()["content"];
        assert!(last.as_str().unwrap_or("").contains("cut off"), "{second}");
        let show = fx.run(&[
            "memory",
            "get",
            "truth/answer/result",
            "--session",
            "latest",
        ]);
        let shown = stdout(&show);
        assert!(shown.contains("The answer is forty-two."), "{shown}");
    }
}

#[test]
fn an_answer_still_cut_off_after_the_continuations_fails_naming_max_tokens() {
    let mock = MockLlm::spawn(Script::text("never reached"));
    mock.push_faults((0..4).map(|_| {
        Fault::Raw(body(
            false,
            json!({"role": "assistant", "content": "more and more"}),
            "length",
        ))
    }));
    let fx = SwarmFixture::new();
    swarm(&fx, &mock, false);
    let out = fx.run(&["run", "swarm.yaml", "--goal", "x"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = task_line(&stdout(&out));
    assert!(line.contains("max_tokens"), "{line}");
    assert_eq!(mock.request_count(), 4);
}
