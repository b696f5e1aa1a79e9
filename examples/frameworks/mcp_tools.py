"""MCP: a client using the tool, resource and prompt of an in-process MCP server, traced by
``init()``.

Needs ``mcp`` (1.x or 2.x; see docs/frameworks/mcp.md). Runs offline: the server lives in this
process and is reached over MCP's in-memory transport; the trace is printed as a tree to
stderr. With ``TFY_HOST`` and ``TFY_API_KEY`` set, the trace goes to TrueFoundry.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import truefoundry_tracing as tt
from truefoundry_tracing import workflow

MCP_MAJOR = int(importlib.metadata.version("mcp").split(".")[0])


def get_weather(city: str) -> str:
    """The current weather in a city."""
    return f"Sunny in {city}, 24 C."


def cities() -> str:
    """The cities with a forecast."""
    return "Paris, Lyon"


def forecast(city: str) -> str:
    """Ask for the forecast of a city."""
    return f"What is the forecast for {city}?"


def serve(server: Any) -> Any:
    """Offer ``get_weather``, the ``weather://cities`` resource and the ``forecast`` prompt."""
    server.tool()(get_weather)
    server.resource("weather://cities")(cities)
    server.prompt()(forecast)
    return server


@asynccontextmanager
async def connected() -> AsyncIterator[Any]:
    """A client session with an in-memory MCP server (see :func:`serve`)."""
    if MCP_MAJOR >= 2:
        from mcp.client.client import Client
        from mcp.server.mcpserver import MCPServer

        async with Client(serve(MCPServer("weather"))) as client:
            yield client
        return
    from mcp.server.fastmcp import FastMCP
    from mcp.shared.memory import create_connected_server_and_client_session

    fast = serve(FastMCP("weather"))
    async with create_connected_server_and_client_session(fast._mcp_server) as session:
        yield session


@workflow(name="weather_tools")
async def list_and_call(city: str) -> tuple[list[str], str]:
    """The traced app: list the server's tools, then call ``get_weather``."""
    async with connected() as client:
        tools = await client.list_tools()
        result = await client.call_tool("get_weather", {"city": city})
    return [t.name for t in tools.tools], result.content[0].text


@workflow(name="weather_context")
async def read_and_prompt(city: str) -> tuple[str, str]:
    """The traced app: read the ``weather://cities`` resource and get the ``forecast`` prompt."""
    async with connected() as client:
        resource = await client.read_resource("weather://cities")
        prompt = await client.get_prompt("forecast", {"city": city})
    return resource.contents[0].text, prompt.messages[0].content.text


def main() -> None:
    tt.init(app_name="mcp-example")
    print(asyncio.run(list_and_call("Paris"))[1])
    print(asyncio.run(read_and_prompt("Paris"))[1])
    tt.flush()


if __name__ == "__main__":
    main()
