"""Claude Code transcripts -> real usage and cost, the offload projection, budget windows.

One module per job: `scan` reads files fast (bytes, chunks, processes) with `fields` decoding
only what is needed, `reader` turns a line into an entry, `dedupe` keeps one entry per API
request, `pricing` prices it from `prices.toml`, `report` aggregates, `blocks` finds the 5-hour
and weekly windows, `window` keeps them current for `status` and routing, `share` estimates
what was offloadable, `projection` prices an offload. Nothing here is imported when the server
starts.
"""
