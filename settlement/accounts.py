"""The address book: engine account id -> wallet address, and deterministic test wallets."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from eth_hash.backends.pysha3 import keccak256 as keccak
from eth_keys import keys
from eth_utils import to_checksum_address

_DEV_KEY_DOMAIN = b"venue settlement dev wallet"


class AddressBookError(KeyError):
    """An account without a wallet, or a malformed address book."""

    def __str__(self) -> str:
        return str(self.args[0])


class AddressBook:
    """Maps engine account ids to wallet addresses; one wallet belongs to one account."""

    def __init__(self, wallets: Mapping[int, str]) -> None:
        self._wallets = {int(account): to_checksum_address(address) for account, address in wallets.items()}
        seen: dict[str, int] = {}
        for account, address in self._wallets.items():
            if address in seen:
                raise AddressBookError(f"accounts {seen[address]} and {account} share wallet {address}")
            seen[address] = account
        self._accounts = seen

    @classmethod
    def load(cls, path: Path) -> AddressBook:
        """Read a JSON object {"account id": "0x address"}."""
        return cls({int(account): address for account, address in json.loads(Path(path).read_text()).items()})

    def save(self, path: Path) -> None:
        """Write the JSON form that `load` reads."""
        Path(path).write_text(json.dumps({str(a): w for a, w in sorted(self._wallets.items())}, indent=1) + "\n")

    def __len__(self) -> int:
        return len(self._wallets)

    def __contains__(self, account: int) -> bool:
        return int(account) in self._wallets

    def items(self) -> Iterable[tuple[int, str]]:
        """(account, wallet) pairs."""
        return self._wallets.items()

    def wallet(self, account: int) -> str:
        """The checksummed wallet of `account`."""
        try:
            return self._wallets[int(account)]
        except KeyError as err:
            raise AddressBookError(f"account {account} has no wallet in the address book") from err

    def account(self, wallet: str) -> int:
        """The account whose wallet is `wallet`."""
        try:
            return self._accounts[to_checksum_address(wallet)]
        except KeyError as err:
            raise AddressBookError(f"wallet {wallet} belongs to no account") from err

    def wallet_ints(self, accounts: np.ndarray) -> list[int]:
        """The wallets of `accounts` as 160-bit integers, in order."""
        as_int = {account: int(address, 16) for account, address in self._wallets.items()}
        try:
            return [as_int[account] for account in accounts.tolist()]
        except KeyError as err:
            raise AddressBookError(f"account {err.args[0]} has no wallet in the address book") from err


def dev_private_key(account: int) -> bytes:
    """A deterministic private key for `account` on test chains (never for real funds)."""
    return keccak(_DEV_KEY_DOMAIN + int(account).to_bytes(8, "big", signed=True))


def dev_wallet(account: int) -> str:
    """The address of dev_private_key(account)."""
    return keys.PrivateKey(dev_private_key(account)).public_key.to_checksum_address()


def dev_address_book(accounts: Iterable[int]) -> AddressBook:
    """An address book of deterministic test wallets for `accounts`."""
    return AddressBook({account: dev_wallet(account) for account in accounts})
