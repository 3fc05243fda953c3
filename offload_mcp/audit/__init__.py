"""Claude Code transcripts -> real usage and cost, the offload projection, budget windows.

One module per job: `reader` streams lines into entries, `dedupe` keeps one entry per API
request, `pricing` prices it from `prices.toml`, `report` aggregates, `blocks` finds the 5-hour
and weekly windows, `share` estimates what was offloadable, `projection` prices an offload.
Nothing here is imported when the server starts.
"""
