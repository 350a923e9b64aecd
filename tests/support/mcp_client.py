"""Drives `swarm mcp` over stdio with the official Python MCP SDK: swarm_init, task_orchestrate,
swarm_status until the session ends, memory_usage store and retrieve. Prints `ok <swarmId>`.

Usage: python3 mcp_client.py SWARM_BINARY STATE_DIR
"""
import asyncio
import json
import sys
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def data(result):
    if getattr(result, "is_error", None) or getattr(result, "isError", None):
        raise SystemExit("tool error: " + result.content[0].text)
    return json.loads(result.content[0].text)


async def main(binary, state_dir):
    params = StdioServerParameters(
        command=binary, args=["mcp", "--state-dir", state_dir, "--provider", "simulated"]
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            names = {t.name for t in (await session.list_tools()).tools}
            assert "swarm_init" in names and "memory_usage" in names, names
            init = data(await session.call_tool("swarm_init", {"swarm": "development", "topology": "hierarchical"}))
            swarm_id = init["swarmId"]
            data(await session.call_tool("task_orchestrate", {"swarmId": swarm_id, "task": "a health endpoint from python"}))
            deadline = time.monotonic() + 60
            while True:
                status = data(await session.call_tool("swarm_status", {"swarmId": swarm_id}))
                if status["status"] not in ("queued", "running"):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("the session did not end in time: " + json.dumps(status))
                await asyncio.sleep(0.05)
            assert status["status"] == "completed", status
            data(await session.call_tool("memory_usage", {
                "action": "store", "key": "session/development/state", "namespace": "session-management",
                "value": {"done": True}, "ttl": 3600}))
            got = data(await session.call_tool("memory_usage", {
                "action": "retrieve", "key": "session/development/state", "namespace": "session-management"}))
            assert got["value"] == {"done": True}, got
            print("ok", swarm_id)


asyncio.run(main(sys.argv[1], sys.argv[2]))
