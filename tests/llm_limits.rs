//! The per-minute limits of one client: requests per minute and tokens per minute (estimated
//! before the call as characters / 4 plus `max_tokens`).

mod support;

use std::time::{Duration, Instant};
use support::*;
use swarm_runtime::llm::{ChatRequest, LlmClient, Message, ProviderConfig};
use swarm_runtime::spec::ProviderKind;

fn request(max_tokens: u32) -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        system: String::new(),
        messages: vec![Message::User {
            content: "hi".into(),
        }],
        tools: Vec::new().into(),
        max_tokens,
        cache_key: None,
    }
}

#[tokio::test]
async fn tokens_per_minute_hold_back_a_request_until_its_tokens_are_back() {
    let mock = MockLlm::start(Script::text("ok")).await;
    let mut config = mock.config(ProviderKind::Openai);
    // 1000 tokens a second, at most a minute's worth at once.
    config.tokens_per_minute = Some(60_000);
    let client = LlmClient::new(config).expect("client");

    let started = Instant::now();
    client.complete(&request(60_000)).await.expect("first call");
    let first = started.elapsed();
    assert!(
        first < Duration::from_millis(250),
        "the first call had a full budget: {first:?}"
    );

    // The budget is spent; 300 more tokens come back after about 300 ms.
    let started = Instant::now();
    client.complete(&request(300)).await.expect("second call");
    let second = started.elapsed();
    assert!(
        second >= Duration::from_millis(250),
        "waited only {second:?}"
    );
    assert!(second < Duration::from_secs(3), "{second:?}");
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn requests_per_minute_are_shared_by_every_clone() {
    let mut config = ProviderConfig::new(ProviderKind::Simulated, "simulated", "");
    // A burst of 120, then one every 500 ms.
    config.requests_per_minute = Some(120);
    let client = swarm_runtime::runtime::simulated::client(config);
    // The budget belongs to the client, not to a handle: the calls alternate between clones.
    let handles = [client.clone(), client.clone()];
    let started = Instant::now();
    for i in 0..120 {
        handles[i % 2]
            .complete(&request(10))
            .await
            .expect("within the burst");
    }
    let burst = started.elapsed();
    assert!(
        burst < Duration::from_millis(400),
        "the burst was not held back: {burst:?}"
    );
    let started = Instant::now();
    client
        .clone()
        .complete(&request(10))
        .await
        .expect("after the burst");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "waited only {waited:?}"
    );
}
