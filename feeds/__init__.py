"""Feeds of the venue: price sources and their rules (update, rules, median, replay,
chainlink, synthetic, market_status), the feed process (process, config,
run_command, feed_state) and its liquidator, US market sessions and their
policies, stock-token multipliers, and option pricing (options, everlasting).
``python -m feeds run / session / price``."""
