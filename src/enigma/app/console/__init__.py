"""The owner's web console: `enigma console` (docs/console.md).

A thin layer of server-rendered pages over what the CLI and the API already do; the
modules are the pages (datasets, analyses, results, network), the rules that keep it the
owner's alone (safety), background steps with progress (tasks), SVG charts (charts), the
app (server) and the command (command).
"""
