"""The wire protocol of failover: FindOrder asks whether an order with a client
order id was sequenced, so that a client that lost its gateway before the
acknowledgement came resends the order to the new leader only if it was not
(engine/client.py does this on reconnecting).

Request tag 45, reply tag 51. engine/schemas.py registers these in its unions.
"""

from __future__ import annotations

import msgspec

from engine.schema_types import I64, reply_config, request_config


class FindOrder(msgspec.Struct, **request_config(45)):
    """Was a NewOrder with this client order id of the account (-1: the key's
    own) sequenced? Answered with OrderFound."""

    request_id: I64
    client_order_id: I64
    account: I64 = -1


class OrderFound(msgspec.Struct, **reply_config(51)):
    """The answer to FindOrder: ``seq`` is the seq the order was sequenced at, 0
    if it was not among the orders the gateway remembers, which are every order
    sequenced from seq ``window_from_seq`` on (the gateway keeps the most recent
    ones: engine/gateway/recent_orders.py)."""

    request_id: int
    account: int
    client_order_id: int
    seq: int
    window_from_seq: int
