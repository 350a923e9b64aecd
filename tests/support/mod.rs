//! Support shared by the integration tests: the mock LLM server.
// Each test crate uses a different part of the support code.
#![allow(dead_code)]

pub mod crash;
pub mod mock_llm;
pub mod prompt_cache;

#[allow(unused_imports)]
pub use mock_llm::*;
pub mod postgres;
pub mod swarm_fixture;
