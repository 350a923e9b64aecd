//! A small MCP server for the tests, written with rmcp: over stdio by default, or over
//! streamable HTTP with `--http` (it then prints `listening on <url>` on stdout).
//!
//! `--log FILE` appends one line per tool call (`<tool> <arguments>`) before the call does
//! anything, so a test can count how often a call reached the server.
//!
//! Tools: `echo` (read-only), `add` (structured content), `slow_write` (sleeps `ms`, not safe to
//! repeat), `exit` (the process exits in the middle of the call), `hang` (never answers),
//! `fail` (an `isError` result), `image` (image content).

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone)]
struct TestServer {
    log: Option<PathBuf>,
}

impl TestServer {
    fn log_call(&self, name: &str, args: &Value) {
        if let Some(path) = &self.log {
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(file, "{name} {args}");
                let _ = file.sync_all();
            }
        }
    }
}

fn tools() -> Value {
    let object = |props: Value| json!({"type": "object", "properties": props});
    json!({"tools": [
        {"name": "echo", "description": "Echo the text back", "inputSchema": object(json!({"text": {"type": "string"}})),
         "annotations": {"readOnlyHint": true}},
        {"name": "add", "description": "Add two numbers", "inputSchema": object(json!({"a": {"type": "number"}, "b": {"type": "number"}})),
         "annotations": {"idempotentHint": true}},
        {"name": "slow_write", "description": "Write something slowly", "inputSchema": object(json!({"ms": {"type": "integer"}}))},
        {"name": "exit", "description": "Exit the server process", "inputSchema": object(json!({}))},
        {"name": "hang", "description": "Never answer", "inputSchema": object(json!({}))},
        {"name": "fail", "description": "Fail", "inputSchema": object(json!({}))},
        {"name": "image", "description": "Return an image", "inputSchema": object(json!({}))},
    ]})
}

fn result(value: Value) -> Result<CallToolResponse, ErrorData> {
    serde_json::from_value::<CallToolResult>(value)
        .map(CallToolResponse::from)
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        serde_json::from_value(tools()).map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        self.log_call(&request.name, &args);
        match request.name.as_ref() {
            "echo" => {
                let text = args["text"].as_str().unwrap_or("");
                result(json!({"content": [{"type": "text", "text": format!("echo: {text}")}]}))
            }
            "add" => {
                let sum = args["a"].as_f64().unwrap_or(0.0) + args["b"].as_f64().unwrap_or(0.0);
                result(json!({"content": [], "structuredContent": {"sum": sum}}))
            }
            "slow_write" => {
                let ms = args["ms"].as_u64().unwrap_or(100);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                result(json!({"content": [{"type": "text", "text": "written"}]}))
            }
            "exit" => {
                eprintln!("test server: exiting as asked");
                std::process::exit(3)
            }
            "hang" => {
                std::future::pending::<()>().await;
                unreachable!()
            }
            "fail" => result(
                json!({"content": [{"type": "text", "text": "it failed on purpose"}], "isError": true}),
            ),
            "image" => result(
                json!({"content": [{"type": "image", "data": "aGVsbG8gd29ybGQh", "mimeType": "image/png"}]}),
            ),
            other => Err(ErrorData::invalid_params(format!("no tool {other}"), None)),
        }
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut log = None;
    let mut http = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--log" => log = args.next().map(PathBuf::from),
            "--http" => http = args.next(),
            other => {
                eprintln!("test server: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let server = TestServer { log };
    match http {
        None => {
            let running = match server.serve(rmcp::transport::stdio()).await {
                Ok(running) => running,
                Err(e) => {
                    eprintln!("test server: {e}");
                    std::process::exit(1);
                }
            };
            let _ = running.waiting().await;
        }
        Some(addr) => {
            use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
            use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
            let service: StreamableHttpService<TestServer, LocalSessionManager> =
                StreamableHttpService::new(
                    move || Ok(server.clone()),
                    Default::default(),
                    StreamableHttpServerConfig::default().with_sse_keep_alive(None),
                );
            let router = axum::Router::new().nest_service("/mcp", service);
            let listener = match tokio::net::TcpListener::bind(&addr).await {
                Ok(listener) => listener,
                Err(e) => {
                    eprintln!("test server: cannot listen on {addr}: {e}");
                    std::process::exit(1);
                }
            };
            let local = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            println!("listening on http://{local}/mcp");
            let _ = std::io::stdout().flush();
            let _ = axum::serve(listener, router).await;
        }
    }
}
