"""web3 client for the settlement side: local signing, one nonce allocator, EIP-1559 fees,
receipts with confirmations, stuck-transaction replacement, revert decoding, reorg detection.

Every low-level failure leaves this module as a ChainError subclass raised ``from`` the
original exception.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode
from eth_account import Account
from eth_tester.exceptions import TransactionFailed
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import (
    ContractLogicError,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)

EMBEDDED = "embedded"
"""The chain URL that selects the in-process EVM (eth-tester with py-evm)."""

FEE_BUMP = 1.125
"""A replacement pays at least 12.5% more (the minimum most nodes accept)."""


class ChainError(Exception):
    """Base of the settlement chain client's errors."""


class RevertError(ChainError):
    """A call or transaction reverted; `reason` is the decoded error, e.g. 'UnexpectedBatchId(expected=2, given=3)'."""

    def __init__(self, reason: str, tx_hash: bytes | None = None) -> None:
        super().__init__(reason if tx_hash is None else f"{reason} (tx 0x{tx_hash.hex()})")
        self.reason = reason
        self.tx_hash = tx_hash


class ReceiptTimeout(ChainError):
    """No receipt (with enough confirmations) before the deadline."""


class ReorgError(ChainError):
    """A mined transaction's block is no longer canonical."""


class RpcError(ChainError):
    """The node refused a request or could not be reached."""


def connect(url: str | None = None, timeout: float = 30.0) -> Web3:
    """A Web3 for `url`: None or 'embedded' for the in-process EVM, else an HTTP JSON-RPC URL."""
    if url is None or url == EMBEDDED:
        return Web3(EthereumTesterProvider())
    if url.startswith(("http://", "https://")):
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
        try:
            w3.eth.chain_id
        except (OSError, Web3Exception) as err:
            raise RpcError(f"cannot reach {url}: {err}") from err
        return w3
    raise ChainError(f"unsupported chain URL {url!r}: use 'embedded' or http(s)://")


class RevertDecoder:
    """Turns revert data into readable text using the custom errors of some ABIs."""

    def __init__(self, abis: Iterable[Sequence[dict]] = ()) -> None:
        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {
            function_signature_to_4byte_selector("Error(string)"): ("Error", ["string"], ["reason"]),
            function_signature_to_4byte_selector("Panic(uint256)"): ("Panic", ["uint256"], ["code"]),
        }
        for abi in abis:
            for item in abi:
                if item["type"] == "error":
                    types = [_abi_type(i) for i in item["inputs"]]
                    selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
                    self._errors[selector] = (item["name"], types, [i["name"] for i in item["inputs"]])

    def decode(self, data: bytes) -> str:
        """'Name(arg=value, ...)' for known errors, else the raw data in hex."""
        if len(data) < 4 or data[:4] not in self._errors:
            return f"unknown revert data 0x{data.hex()}" if data else "reverted without data"
        name, types, names = self._errors[data[:4]]
        try:
            values = decode(types, data[4:])
        except Exception:  # noqa: BLE001 - malformed data still deserves a readable message
            return f"{name}(<undecodable 0x{data[4:].hex()}>)"
        if name == "Error":
            return str(values[0])
        shown = ", ".join(f"{n}={_show(v)}" for n, v in zip(names, values, strict=True))
        return f"{name}({shown})"

    def from_exception(self, err: Exception) -> str:
        """The decoded reason of a revert: web3's ContractLogicError (JSON-RPC nodes) or
        eth-tester's TransactionFailed, whose raw revert data sits in the exception chain."""
        if isinstance(err, ContractLogicError):
            data = err.data.get("data") if isinstance(err.data, dict) else err.data
            if isinstance(data, str) and data.startswith("0x"):
                return self.decode(bytes.fromhex(data[2:]))
            return str(err.message or err)
        cause: BaseException | None = err
        while cause is not None:
            if cause.args and isinstance(cause.args[0], bytes):
                return self.decode(cause.args[0])
            cause = cause.__cause__ or cause.__context__
        return str(err).removeprefix("execution reverted: ")


def _abi_type(item: dict) -> str:
    if item["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + item["type"][5:]
    return item["type"]


def _show(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


class NonceAllocator:
    """Hands out consecutive nonces for one sender; seeded from the node's `pending` count."""

    def __init__(self, w3: Web3, address: str) -> None:
        self._w3 = w3
        self._address = address
        self._lock = threading.Lock()
        self._next: int | None = None

    def take(self) -> int:
        """The next unused nonce."""
        with self._lock:
            if self._next is None:
                self._next = self._w3.eth.get_transaction_count(self._address, "pending")
            nonce = self._next
            self._next += 1
            return nonce

    def resync(self) -> None:
        """Forget the local count: the next `take` asks the node again (after a failed send)."""
        with self._lock:
            self._next = None


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction: its fields (for replacement), raw bytes and hash."""

    fields: dict
    raw: bytes
    tx_hash: bytes

    @property
    def nonce(self) -> int:
        """The transaction's nonce."""
        return self.fields["nonce"]


class ChainClient:
    """Sends transactions for one locally held key and waits for them safely.

    A stuck transaction is replaced at most `max_replacements` times per wait (each wait
    starts from the newest version, so a restarted job goes on bumping where it stopped)
    and never above `max_fee_per_gas` wei, the fee cap (None: no cap). `clock` times the waits
    (seconds; tests pass one that counts polls, to bump a set number of times whatever the load)."""

    def __init__(self, w3: Web3, private_key: bytes, *, confirmations: int = 1, receipt_timeout: float = 120.0,
                 stuck_after: float = 30.0, max_replacements: int = 3, max_fee_per_gas: int | None = None,
                 poll_interval: float = 0.05, decoder: RevertDecoder | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if confirmations < 1:
            raise ValueError("confirmations counts the including block: at least 1")
        if max_fee_per_gas is not None and max_fee_per_gas < 1:
            raise ValueError("the fee cap max_fee_per_gas must be a positive number of wei")
        self.w3 = w3
        self._account = Account.from_key(private_key)
        self.address = self._account.address
        self.nonces = NonceAllocator(w3, self.address)
        self.confirmations = confirmations
        self.receipt_timeout = receipt_timeout
        self.stuck_after = stuck_after
        self.max_replacements = max_replacements
        self.max_fee_per_gas = max_fee_per_gas
        self.poll_interval = poll_interval
        self.decoder = decoder or RevertDecoder()
        self.clock = clock

    # -- building and sending --

    def prepare(self, call: Any, value: int = 0, *, gas_multiple: int = 1) -> SignedTx:
        """Estimate gas for a contract call (or constructor), then take a nonce and sign it; the gas
        limit is ``gas_multiple`` times the estimate plus a fifth and 10,000, for a call that may cost
        more in the block it lands in than in the one it was estimated at.

        A call that would revert raises RevertError here, before any nonce is used.
        """
        try:
            tx = call.build_transaction({"from": self.address, "value": value, "gas": 0, "nonce": 0})
        except (Web3Exception, ValueError) as err:
            raise ChainError(f"cannot build transaction: {err}") from err
        request = {"from": self.address, "value": value, "data": tx["data"]}
        if tx.get("to"):
            request["to"] = tx["to"]
        gas = self._estimate(request) * gas_multiple
        priority, max_fee = self._fees()
        max_fee = self._capped(max_fee)
        fields = {
            "type": 2,
            "chainId": self.w3.eth.chain_id,
            "data": tx["data"],
            "value": value,
            "gas": gas + gas // 5 + 10_000,
            "maxPriorityFeePerGas": min(priority, max_fee),
            "maxFeePerGas": max_fee,
            "nonce": self.nonces.take(),
        }
        if tx.get("to"):
            fields["to"] = tx["to"]
        return self.sign(fields)

    def sign(self, fields: dict) -> SignedTx:
        """Sign transaction `fields` with the client's key."""
        signed = self._account.sign_transaction(fields)
        return SignedTx(dict(fields), bytes(signed.raw_transaction), bytes(signed.hash))

    def broadcast(self, tx: SignedTx) -> None:
        """Send a signed transaction; sending one the node already has is not an error."""
        try:
            self.w3.eth.send_raw_transaction(tx.raw)
        except Web3RPCError as err:
            text = str(err).lower()
            if "already known" in text or "already imported" in text or "known transaction" in text:
                return
            if "nonce too low" in text and self.find_receipt(tx.tx_hash) is not None:
                return
            self.nonces.resync()
            raise RpcError(f"node refused transaction 0x{tx.tx_hash.hex()}: {err}") from err
        except (OSError, Web3Exception, ValueError) as err:
            self.nonces.resync()
            raise RpcError(f"cannot send transaction 0x{tx.tx_hash.hex()}: {err}") from err

    def replacement(self, tx: SignedTx) -> SignedTx | None:
        """The same transaction (same nonce) paying at least 12.5% more, and no less than the
        fees the chain asks now, up to the fee cap; None when the cap leaves no room for it."""
        priority, max_fee = self._fees()
        bumped_priority = math.ceil(tx.fields["maxPriorityFeePerGas"] * FEE_BUMP)
        bumped_max = math.ceil(tx.fields["maxFeePerGas"] * FEE_BUMP)
        fields = dict(tx.fields)
        fields["maxFeePerGas"] = self._capped(max(bumped_max, max_fee, bumped_priority))
        fields["maxPriorityFeePerGas"] = min(max(bumped_priority, priority), fields["maxFeePerGas"])
        if fields["maxFeePerGas"] < bumped_max or fields["maxPriorityFeePerGas"] < bumped_priority:
            return None  # nodes refuse a replacement that pays less than 12.5% more on both fees
        return self.sign(fields)

    def _capped(self, fee: int) -> int:
        return fee if self.max_fee_per_gas is None else min(fee, self.max_fee_per_gas)

    def transact(self, call: Any, value: int = 0) -> dict:
        """Prepare, send and wait for a call: replaced when stuck, confirmed, status checked."""
        tx = self.prepare(call, value)
        self.broadcast(tx)
        return self.wait([tx], replace_stuck=True)

    # -- waiting --

    def wait(self, sent: list[SignedTx], replace_stuck: bool = False, on_replace=None) -> dict:
        """wait_mined then confirm: the confirmed, successful receipt of one of `sent`."""
        receipt, tx = self.wait_mined(sent, replace_stuck, on_replace)
        return self.confirm(receipt, tx)

    def wait_mined(self, sent: list[SignedTx], replace_stuck: bool = False,
                   on_replace=None) -> tuple[dict, SignedTx]:
        """Wait until one of `sent` (versions of one nonce) is mined; return (receipt, that tx).

        When `replace_stuck`, the newest version still pending after `stuck_after` seconds is
        replaced with higher fees (at most `max_replacements` times in this wait, and not above
        the fee cap); `on_replace(new)` runs before the new version is broadcast. Raise
        ReceiptTimeout after `receipt_timeout`.
        """
        sent = list(sent)
        start = last_sent = self.clock()
        replaced, capped = 0, False
        while True:
            for tx in sent:
                receipt = self.find_receipt(tx.tx_hash)
                if receipt is not None:
                    return receipt, tx
            now = self.clock()
            if now - start > self.receipt_timeout:
                at_cap = f", fees at the cap of {self.max_fee_per_gas} wei" if capped else ""
                raise ReceiptTimeout(f"nonce {sent[-1].nonce}: no receipt after {self.receipt_timeout:.0f} s "
                                     f"(tx 0x{sent[-1].tx_hash.hex()}, {replaced} replacement(s){at_cap})")
            if (replace_stuck and not capped and now - last_sent > self.stuck_after
                    and replaced < self.max_replacements):
                newer = self.replacement(sent[-1])
                if newer is None:
                    capped = True
                    continue
                if on_replace is not None:
                    on_replace(newer)
                try:
                    self.broadcast(newer)
                except RpcError:
                    # An older version may have been mined just now ("nonce too low").
                    if not any(self.find_receipt(tx.tx_hash) for tx in sent):
                        raise
                    continue
                sent.append(newer)
                replaced += 1
                last_sent = now
            time.sleep(self.poll_interval)

    def confirm(self, receipt: dict, tx: SignedTx) -> dict:
        """Wait for `confirmations` blocks on `receipt`, check it is still canonical, and raise
        RevertError (reason replayed with eth_call) if the transaction failed."""
        start = self.clock()
        target = receipt["blockNumber"] + self.confirmations - 1
        while self._block_number() < target:
            if self.clock() - start > self.receipt_timeout:
                raise ReceiptTimeout(f"tx 0x{tx.tx_hash.hex()}: fewer than {self.confirmations} confirmations "
                                     f"after {self.receipt_timeout:.0f} s")
            time.sleep(self.poll_interval)
        self.check_canonical(receipt)
        if receipt["status"] != 1:
            raise RevertError(self.revert_reason(tx.fields, receipt["blockNumber"]), tx.tx_hash)
        return receipt

    def find_receipt(self, tx_hash: bytes) -> dict | None:
        """The receipt of `tx_hash`, or None while it is not mined."""
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None
        except (OSError, Web3Exception) as err:
            raise RpcError(f"cannot read receipt 0x{tx_hash.hex()}: {err}") from err

    def is_known(self, tx_hash: bytes) -> bool:
        """Whether the node knows `tx_hash` (pending or mined)."""
        try:
            self.w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return False
        except (OSError, Web3Exception) as err:
            raise RpcError(f"cannot read transaction 0x{tx_hash.hex()}: {err}") from err
        return True

    def check_canonical(self, receipt: dict) -> None:
        """Raise ReorgError unless `receipt`'s transaction is still in the canonical block it names."""
        tx_hash = bytes(receipt["transactionHash"])
        current = self.find_receipt(tx_hash)
        try:
            block = self.w3.eth.get_block(receipt["blockNumber"])
        except (OSError, Web3Exception) as err:
            raise ReorgError(f"block {receipt['blockNumber']} of tx 0x{tx_hash.hex()} is gone") from err
        if current is None or bytes(block["hash"]) != bytes(receipt["blockHash"]) or (
                bytes(current["blockHash"]) != bytes(receipt["blockHash"])):
            raise ReorgError(f"tx 0x{tx_hash.hex()} left block {receipt['blockNumber']} "
                             f"(0x{bytes(receipt['blockHash']).hex()}): reorg")

    # -- reverts --

    def call_reason(self, request: dict, block: int | str = "latest") -> str | None:
        """The decoded revert reason of `request` run with eth_call, or None if it succeeds."""
        try:
            self.w3.eth.call(request, block)
        except (ContractLogicError, TransactionFailed) as err:
            return self.decoder.from_exception(err)
        except (OSError, Web3Exception) as err:
            raise RpcError(f"eth_call failed: {err}") from err
        return None

    def revert_reason(self, fields: dict, block_number: int) -> str:
        """Why a mined transaction failed: replayed with eth_call on the state before its block."""
        request = {"from": self.address, "data": fields["data"], "value": fields.get("value", 0),
                   "gas": fields["gas"]}
        if fields.get("to"):
            request["to"] = fields["to"]
        reason = self.call_reason(request, max(block_number - 1, 0))
        return reason or f"failed without a revert reason (out of gas at {fields['gas']}?)"

    # -- internals --

    def _estimate(self, request: dict) -> int:
        try:
            return self.w3.eth.estimate_gas(request)
        except (ContractLogicError, TransactionFailed) as err:
            raise RevertError(self.decoder.from_exception(err)) from err
        except (OSError, Web3Exception) as err:
            raise RpcError(f"gas estimate failed: {err}") from err

    def _block_number(self) -> int:
        try:
            return self.w3.eth.block_number
        except (OSError, Web3Exception) as err:
            raise RpcError(f"cannot read the block number: {err}") from err

    def _fees(self) -> tuple[int, int]:
        try:
            base = self.w3.eth.get_block("latest").get("baseFeePerGas", 0)
            priority = self.w3.eth.max_priority_fee
        except (OSError, Web3Exception) as err:
            raise RpcError(f"cannot read fees: {err}") from err
        return priority, 2 * base + priority


def fund_dev_account(w3: Web3, address: str, wei: int) -> None:
    """Give `address` `wei` of ether on a dev chain: anvil_setBalance on anvil, else a transfer
    from the node's first unlocked account (eth-tester)."""
    address = to_checksum_address(address)
    try:
        w3.provider.make_request("anvil_setBalance", [address, hex(wei)])["result"]
        return
    except (KeyError, Web3Exception, NotImplementedError, ValueError):
        pass
    try:
        tx = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": address, "value": wei})
        w3.eth.wait_for_transaction_receipt(tx)
    except (OSError, Web3Exception) as err:
        raise ChainError(f"cannot fund {address}: {err}") from err

