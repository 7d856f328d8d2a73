"""Feeds of the venue: price sources (replay, Chainlink oracle, synthetic GBM), their
staleness and confidence rules, the median, the feed process, and option marks and margins
(options.py)."""
