"""Agent tools: an MCP server (stdio) over a Purple Flea server, through the SDK.

``purpleflea mcp`` starts it (:mod:`purpleflea.commands.mcp`); :func:`~.server.build_server`
assembles the tools, one module per group: :mod:`.liquidations`, :mod:`.cascades`,
:mod:`.heatmaps`, :mod:`.markets`. What they share (argument types, the answer shape, error
mapping) is in :mod:`.answers`.
"""
