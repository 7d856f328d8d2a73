"""OrderInfo: a resting order as the query API reports it."""

import msgspec


class OrderInfo(msgspec.Struct, frozen=True):
    """One resting order (queries only; never built on the matching path)."""

    order_id: int
    client_order_id: int
    account: int
    instrument: int
    side: int
    price: int
    leaves: int
    tif: int
    stp: int
