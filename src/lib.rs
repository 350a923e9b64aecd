//! swarm-runtime: run teams of LLM agents that coordinate through shared memory and messages,
//! with every step journaled so an interrupted swarm resumes without repeating finished work.
//!
//! The crate is organised by purpose:
//! - [`spec`]: swarm and role definitions, parsed and validated into a [`spec::SwarmPlan`];
//! - [`llm`]: the providers (OpenAI-compatible, Anthropic, simulated) and the layers around them;
//! - [`memory`]: the namespaced in-process store the agents share;
//! - [`session`]: the event journal, snapshots, resume, budgets and reports;
//! - [`tools`]: the tool seam and the tools agents call (files, commands, memory, MCP servers);
//! - [`runtime`]: the scheduler, the agent step machine, topologies and the session tools;
//! - [`secrets`]: API keys kept out of the environment and redacted from everything written;
//! - [`mcp_server`]: `swarm mcp`, the runtime's sessions and memory as MCP tools.

// Outside tests nothing may panic on what a user, a file, the network or a checkpoint holds.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod clock;
pub mod llm;
pub mod mcp_server;
pub mod memory;
pub mod runtime;
pub mod secrets;
pub mod session;
pub mod spec;
pub mod tools;
