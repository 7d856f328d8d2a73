"""Feeds of the venue: price sources and their rules (update, rules, median, replay,
chainlink, synthetic), the feed process (process, config, run_command), US market
sessions and their policies, stock-token multipliers, and option pricing (options,
everlasting). ``python -m feeds run / session / price``."""
