"""The order gateway: ZeroMQ in front of the single-writer engine
(``python -m engine serve --config venue.toml``, or ``python -m engine.gateway``).

One idea per module:

* ``server``: the loop: sockets, batching, running, journaling and snapshots;
* ``zap``: ZAP authentication, a client key to its principal;
* ``sessions``: client connections, their accounts and cancel-on-disconnect;
* ``reading``: a message's bytes to requests, refusing what is malformed;
* ``dispatch``: the request table: each request's authorisation rule and command;
* ``queries``: answers to queries (balances, orders, book, margin, status ...);
* ``batch``: what one drain of the socket collects, and rejects before sequencing;
* ``outbound``: replies and market data held until the journal commits their batch;
* ``marketdata``: what is published per instrument, and a subscriber's local book;
* ``wire_layouts``: the C fast path's tables, read from the wire protocol;
* ``standby``: a hot standby following the replicated journal until it leads;
* ``recent_orders``: the last orders by client order id, for FindOrder;
* ``throttle``: rate-limited warnings about bad input;
* ``process``: ``GatewayProcess``, a gateway child process for tests and benchmarks.
"""
