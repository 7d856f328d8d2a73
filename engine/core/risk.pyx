"""Pre-trade risk and the money side of trading (docs/matching.md, "Risk").

An order reserves what it could spend before it reaches the book: a buy its
notional at its limit plus the largest fee, a sell its base quantity, an
option sell margin (margin.pyx). A fill moves the exact amounts and fees and
releases what it used. Deposits arrive in vault id order, each exactly once.
An account frozen by its wallet's on-chain exit request neither trades nor
withdraws again: what it holds is settled and paid out by the vault.

No receiving balance can overflow: credits keep each asset's supply (credits
minus debits) at most 2**62, balances are never negative and fills only move
value, so no single balance exceeds 2**62.
"""

from engine.core.instrument cimport fee, notional, reservation
from engine.core.ledger cimport Position
from engine.core.book cimport OrderWalk
from engine.core.types cimport (ACCOUNT_IS_FROZEN, BUY, CREDIT, DEBIT, TRANSFER_OUT, DEPOSIT_GAP, DUPLICATE_DEPOSIT,
                                FEE_ACCOUNT_NOT_FREEZABLE, INSUFFICIENT_MARGIN, MARGIN_NOT_SET, SELL,
                                UNKNOWN_ACCOUNT, UNKNOWN_ASSET)


cdef class Risk:
    """Reservations, fees, fill settlement and deposits over a Ledger."""

    def __cinit__(self, Ledger ledger, Margin margin, SeriesLife life, int64_t fee_account):
        self.ledger = ledger
        self.margin = margin
        self.life = life
        self.fee_account = fee_account
        self.frozen = set()
        self.transfers = Transfers()

    # -- commands --

    cdef uint8_t reserve(self, const Instrument* inst, int64_t account, uint8_t side,
                         price_t old_price, qty_t old_leaves, price_t price, qty_t qty) noexcept:
        """Move an order's reservation from (old_price, old_leaves) to (price,
        qty): a new order has old_leaves 0, an amend its resting values. A
        reject code, changing nothing, if the account cannot cover it."""
        cdef Ledger ledger = self.ledger
        cdef Position* p
        cdef int32_t asset
        cdef int64_t grow
        cdef qty_t delta = qty - old_leaves
        cdef uint8_t why
        cdef bint perpetual
        if inst.series >= 0 and side == SELL:
            # An option sell reserves margin: what it could add to a short.
            if not self.margin.has_rates(inst.series):
                return MARGIN_NOT_SET
            p = ledger.position(account, inst.series)
            p.ask_open += delta
            if delta > 0:
                self.life.cover(account, inst.series)
            else:
                self.life.trim(account, inst.series)
            # Open sells within a long can only reduce it: no margin needed.
            if delta > 0 and not self.liquidating and p.ask_open > p.pos and not self.margin.ok(account):
                p.ask_open -= delta
                self.life.trim(account, inst.series)
                return INSUFFICIENT_MARGIN
            ledger.has_options[account] = 1
            return 0
        # A perpetual buy may add to a long that pays funding: margined too.
        perpetual = inst.series >= 0 and self.margin.two_sided[inst.series]
        if perpetual and not self.margin.has_rates(inst.series):
            return MARGIN_NOT_SET
        asset = inst.quote_asset if side == BUY else inst.base_asset
        grow = reservation(inst, side, price, qty) - reservation(inst, side, old_price, old_leaves)
        if grow > 0:
            why = ledger.reserve(account, asset, grow)
            if why:
                return why
        else:
            ledger.release(account, asset, -grow)
        p = ledger.position(account, inst.series) if inst.series >= 0 else NULL
        if p != NULL:
            p.bid_open += delta
        # A reservation takes free balance out of collateral: an account with
        # option exposure must still cover its initial margin, unless the order
        # can only reduce a short (with its other open buys in the series, at
        # most the short).
        if (grow > 0 and (ledger.has_options[account] or perpetual) and not self.liquidating
                and not (p != NULL and p.bid_open <= -p.pos)
                and not self.margin.ok(account)):
            ledger.release(account, asset, grow)
            if p != NULL:
                p.bid_open -= delta
            return INSUFFICIENT_MARGIN
        if perpetual:
            ledger.has_options[account] = 1
        return 0

    cdef void release(self, const Instrument* inst, const Order* o) noexcept:
        """Release what an order's remainder holds (it is cancelled or killed)."""
        if inst.series >= 0:
            if o.side == SELL:
                self.ledger.position(o.account, inst.series).ask_open -= o.leaves
                self.life.trim(o.account, inst.series)
                return
            self.ledger.position(o.account, inst.series).bid_open -= o.leaves
        self.ledger.release(o.account, inst.quote_asset if o.side == BUY else inst.base_asset,
                            reservation(inst, o.side, o.price, o.leaves))

    cdef void settle_fill(self, const Instrument* inst, const Order* taker, const Order* maker,
                          price_t p, qty_t q, EventRec* e) noexcept:
        """Move the exact amounts of one fill and write its fees into ``e``;
        called before leaves are reduced (taker.leaves is already reduced by q,
        maker.leaves not yet)."""
        cdef Ledger ledger = self.ledger
        cdef int64_t n = notional(inst, p, q)
        cdef int64_t base = q * inst.base_per_qty
        cdef int64_t taker_fee = fee(n, inst.taker_bps)
        cdef int64_t maker_fee = fee(n, inst.maker_bps)
        cdef int64_t buyer_fee, seller_fee, drop
        cdef const Order* buyer
        cdef const Order* seller
        cdef qty_t buyer_leaves_before
        cdef Position* held
        # (Separate assignments: a tuple assignment of C values goes through
        # Python objects.)
        if taker.side == BUY:
            buyer = taker
            seller = maker
            buyer_fee = taker_fee
            seller_fee = maker_fee
            buyer_leaves_before = taker.leaves + q
        else:
            buyer = maker
            seller = taker
            buyer_fee = maker_fee
            seller_fee = taker_fee
            buyer_leaves_before = maker.leaves
        drop = (reservation(inst, BUY, buyer.price, buyer_leaves_before)
                - reservation(inst, BUY, buyer.price, buyer_leaves_before - q))
        ledger.move(buyer.account, inst.quote_asset, -(n + buyer_fee), -drop)
        ledger.move(buyer.account, inst.base_asset, base, 0)
        ledger.move(seller.account, inst.base_asset, -base, -base)
        ledger.move(seller.account, inst.quote_asset, n - seller_fee, 0)
        ledger.move(self.fee_account, inst.quote_asset, taker_fee + maker_fee, 0)
        if self.fee_income != NULL:
            self.fee_income[inst.quote_asset] += taker_fee + maker_fee
        e.fee = taker_fee
        e.maker_fee = maker_fee
        if inst.series >= 0:
            held = ledger.position(buyer.account, inst.series)
            held.pos += q
            held.bid_open -= q
            self.life.moved(inst.series, held.pos - q, held.pos)
            held = ledger.position(seller.account, inst.series)
            held.pos -= q
            held.ask_open -= q
            self.life.moved(inst.series, held.pos + q, held.pos)
            ledger.has_options[buyer.account] = 1
            self.life.trim(buyer.account, inst.series)   # a buy-back shrinks the covered exposure

    cdef uint8_t credit_debit(self, const CommandRec* c) noexcept:
        """A CREDIT (a deposit; a non-zero order_id is its vault deposit id) or a
        DEBIT (a withdrawal from the free balance) of c.qty; a reject code, changing
        nothing, if refused."""
        cdef uint8_t why
        if not self.ledger.known(c.account):
            return UNKNOWN_ACCOUNT
        if c.asset < 0 or c.asset >= self.ledger.n_assets:
            return UNKNOWN_ASSET
        if c.kind == CREDIT:
            if c.order_id != 0:
                why = self._check_deposit_id(c.order_id)
                if why:
                    return why
            why = self.ledger.credit(c.account, c.asset, c.qty)
            if why:
                return why
            if c.order_id != 0:
                self.last_deposit_id = c.order_id
            return 0
        return self._withdraw(c.account, c.asset, c.qty)

    cdef uint8_t transfer(self, const CommandRec* c) noexcept:
        """A TRANSFER_OUT (taken from the free balance, as a withdrawal) or a
        TRANSFER_IN (credited) of c.qty, the transfer id in c.order_id: each id
        once, in order per pair of shards (transfers.pyx); a reject code,
        changing nothing, if refused."""
        cdef bint out = c.kind == TRANSFER_OUT
        cdef uint8_t why
        if not self.ledger.known(c.account):
            return UNKNOWN_ACCOUNT
        if c.asset < 0 or c.asset >= self.ledger.n_assets:
            return UNKNOWN_ASSET
        why = self.transfers.check(out, c.order_id)
        if why:
            return why
        why = self._withdraw(c.account, c.asset, c.qty) if out else self.ledger.credit(c.account, c.asset, c.qty)
        if why:
            return why
        self.transfers.record(out, c.order_id, c.account, c.asset, c.qty)
        return 0

    cdef uint8_t _withdraw(self, int64_t account, int32_t asset, int64_t qty) noexcept:
        # From the free balance, never leaving an options account short of margin.
        cdef uint8_t why
        if self.n_frozen and self.is_frozen(account):
            return ACCOUNT_IS_FROZEN
        why = self.ledger.debit(account, asset, qty)
        if why:
            return why
        if self.ledger.has_options[account] and not self.margin.ok(account):
            self.ledger.credit(account, asset, qty)   # undo: the withdrawal would leave margin short
            return INSUFFICIENT_MARGIN
        return 0

    cdef uint8_t skip_deposit(self, int64_t deposit_id) noexcept:
        """Consume a vault deposit id without crediting; a reject code if out of order."""
        cdef uint8_t why = self._check_deposit_id(deposit_id)
        if not why:
            self.last_deposit_id = deposit_id
        return why

    cdef uint8_t _check_deposit_id(self, int64_t deposit_id) noexcept:
        # Deposits from the vault arrive in id order, each exactly once.
        if deposit_id <= self.last_deposit_id:
            return DUPLICATE_DEPOSIT
        if deposit_id != self.last_deposit_id + 1:
            return DEPOSIT_GAP
        return 0

    cdef uint8_t freeze(self, int64_t account) except 255:
        """Freeze an account for good (its wallet's exit request); a reject code,
        changing nothing, if it is unknown, already frozen or the fee account.
        The caller cancels its orders."""
        if not self.ledger.known(account):
            return UNKNOWN_ACCOUNT
        if account == self.fee_account:
            return FEE_ACCOUNT_NOT_FREEZABLE
        if self.is_frozen(account):
            return ACCOUNT_IS_FROZEN
        self.frozen.add(account)
        self.n_frozen += 1
        return 0

    cdef bint is_frozen(self, int64_t account) except -1:
        """Whether the account is frozen (callers test n_frozen first)."""
        return account in self.frozen

    # -- state --

    cdef list write_frozen(self):
        """The frozen accounts, sorted (snapshot and state hash)."""
        return sorted(self.frozen)

    cdef int read_frozen(self, list accounts) except -1:
        """Restore the frozen accounts of a snapshot; ValueError on an unknown
        or repeated account."""
        for account in accounts:
            if not self.ledger.known(account) or account in self.frozen:
                raise ValueError(f"snapshot frozen account {account} is not valid for this engine")
            self.frozen.add(account)
        self.n_frozen = len(self.frozen)
        return 0

    cdef int check_reservations(self, Books books, const Instrument* insts, int32_t n_inst, dict need) except -1:
        """Assert every account's reserved amounts and open option orders equal
        what its resting orders and covered calls hold, plus ``need``
        ((account, asset) -> amount) reserved for other reasons."""
        cdef Ledger ledger = self.ledger
        cdef int32_t i, slot, s
        cdef uint8_t side
        cdef OrderWalk w
        cdef const Instrument* inst
        cdef Order* o
        cdef int64_t acct
        held = {}
        for i in range(n_inst):
            inst = &insts[i]
            for side in (BUY, SELL):
                asset = inst.quote_asset if side == BUY else inst.base_asset
                w = books.walk(i, side)
                slot = books.next_resting(&w)
                while slot != -1:
                    o = &books.orders[slot]
                    if inst.series >= 0:
                        key = (o.account, inst.series, side)
                        held[key] = held.get(key, 0) + o.leaves
                    if inst.series < 0 or side == BUY:
                        key = (o.account, asset)
                        need[key] = need.get(key, 0) + reservation(inst, o.side, o.price, o.leaves)
                    slot = books.next_resting(&w)
        self.life.locked(need)
        self.life.check_open_interest()
        for acct, s, _side in list(held):
            assert ledger.known(acct), f"account {acct} has open option orders but is not open"
        for acct in range(ledger.acct_cap):
            for s in range(ledger.n_series):
                for side, have in ((SELL, ledger.position(acct, s).ask_open),
                                   (BUY, ledger.position(acct, s).bid_open)):
                    assert have == held.get((acct, s, side), 0), (
                        f"account {acct} series {s}: open {'sells' if side == SELL else 'buys'} counted {have}, "
                        f"open orders hold {held.get((acct, s, side), 0)}")
        for acct in range(ledger.acct_cap):
            for asset in range(ledger.n_assets):
                have = ledger.at(acct, asset).reserved
                assert have == need.get((acct, asset), 0), (
                    f"account {acct} asset {asset}: reserved {have}, open orders need "
                    f"{need.get((acct, asset), 0)}")
        return 0
