"""The live web view: a read-only page over the gateway's market data, the option
chains, the pools and the settlement job's batches, updated by server-sent events.

``python -m web`` runs it (web/__main__.py); web/browser.py loads it in headless
Chromium. It only queries: it never sends an order or an operator command.
"""
