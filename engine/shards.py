"""Shard configuration (TOML): which instruments each shard's engine trades,
where its gateway binds and journals, the router's endpoints, and each account's
home shard.

A shards file names one venue config (assets, accounts, keys, operators, limits)
and splits that venue's instruments over shards. Each shard runs the ordinary
gateway with the venue config narrowed to its instruments (``shard_config``):
the same assets and accounts, its own journal (a directory, or a JetStream
stream with a leader and hot standbys, each gateway with its own endpoints); its genesis batch credits the
opening balances of the accounts whose home shard it is (deposits go there too,
docs/sharding.md). A shard's index is its position in the file; global ids are
the venue's: instrument ids are positions in the venue's instrument list, and an
order id the router shows a client is ``local id * MAX_SHARDS + shard index``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

import msgspec

from engine.config import Config, ConfigError, Endpoints, _resolve, _section, load_config

MAX_SHARDS = 16
"""Shards in one venue, at most (the core's transfer counters are sized by it)."""

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class RouterSection(msgspec.Struct, **_section()):
    """Where the router binds, and its key toward the shards: a certificate file
    with the secret key of an operator listed in the venue config."""

    orders: str = "tcp://127.0.0.1:7101"
    market_data: str = "tcp://127.0.0.1:7102"
    key_file: str
    shard_timeout_ms: int = 2_000


class ShardEntry(msgspec.Struct, **_section()):
    """One shard: its instruments (venue symbols), endpoints and journal.
    ``journal_kind`` names the journal implementation of this shard: ``file``
    (``journal`` is its directory) or ``jetstream`` (its own ``stream`` on
    ``servers``, default the venue's ``[journal] servers``). A JetStream shard
    may list several ``orders`` / ``market_data`` endpoints: one per gateway of
    the shard (its leader and hot standbys, ``serve --shard NAME --replica I``)."""

    name: str
    instruments: list[str]
    orders: str | list[str] = "tcp://127.0.0.1:*"
    market_data: str | list[str] = "tcp://127.0.0.1:*"
    journal: str = ""
    journal_kind: Literal["file", "jetstream"] = "file"
    stream: str = ""
    servers: list[str] = []


class ShardsFile(msgspec.Struct, **_section()):
    """The TOML document; ``home`` maps account ids (as strings, TOML keys) to
    shard names, overriding ``home_shard`` for those accounts."""

    venue: str
    router: RouterSection
    shards: list[ShardEntry]
    home_shard: str = ""
    home: dict[str, str] = {}


class Shard(msgspec.Struct, frozen=True, kw_only=True):
    """A resolved shard: index, name, its venue instrument ids (global), the
    endpoints of each of its gateways (``orders[i]`` and ``market_data[i]`` are
    replica i's) and its journal: a directory (``journal_path``, file) or a
    stream (``stream`` on ``servers``, jetstream)."""

    index: int
    name: str
    instruments: list[int]
    orders: list[str]
    market_data: list[str]
    journal_path: Path | None
    journal_kind: str
    stream: str = ""
    servers: list[str] = []


class Shards(msgspec.Struct, frozen=True, kw_only=True):
    """A loaded shards file: the venue config, the shards, the router section and
    the home shard index of every account."""

    path: Path
    venue: Config
    shards: list[Shard]
    router: RouterSection
    router_key_file: Path
    home: dict[int, int]

    def by_name(self, name: str) -> Shard:
        """The shard called ``name``; ConfigError if there is none."""
        for shard in self.shards:
            if shard.name == name:
                return shard
        raise ConfigError(f"{self.path}: no shard named {name!r} (shards: "
                          f"{', '.join(s.name for s in self.shards)})")

    def shard_of_instrument(self) -> dict[int, tuple[int, int]]:
        """Global instrument id -> (shard index, the shard engine's local id)."""
        return {iid: (shard.index, local) for shard in self.shards for local, iid in enumerate(shard.instruments)}


def load_shards(path: str | Path) -> Shards:
    """Read and validate a shards file and its venue config; ConfigError says why not."""
    path = Path(path).resolve()
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
        file = msgspec.convert(raw, ShardsFile)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as err:
        raise ConfigError(f"{path}: {err}") from err
    base = path.parent
    venue = load_config(base / file.venue)
    symbols = {inst.symbol: iid for iid, inst in enumerate(venue.venue.instruments)}
    if not file.shards:
        raise ConfigError(f"{path}: no [[shards]]")
    if len(file.shards) > MAX_SHARDS:
        raise ConfigError(f"{path}: {len(file.shards)} shards; at most {MAX_SHARDS}")
    owner: dict[str, str] = {}
    shards = []
    for index, entry in enumerate(file.shards):
        if not _NAME.match(entry.name):
            raise ConfigError(f"{path}: shard name {entry.name!r} may only use letters, digits, _ and -")
        if any(s.name == entry.name for s in shards):
            raise ConfigError(f"{path}: shard {entry.name} listed twice")
        if not entry.instruments:
            raise ConfigError(f"{path}: shard {entry.name} has no instruments")
        for symbol in entry.instruments:
            if symbol not in symbols:
                raise ConfigError(f"{path}: shard {entry.name}: instrument {symbol!r} is not in {venue.path.name}")
            if symbol in owner:
                raise ConfigError(f"{path}: instrument {symbol} is in shard {owner[symbol]} and in shard {entry.name}")
            owner[symbol] = entry.name
        shards.append(_resolve_shard(path, venue, index, entry, sorted(symbols[s] for s in entry.instruments),
                                     shards))
    unassigned = [s for s in symbols if s not in owner]
    if unassigned:
        raise ConfigError(f"{path}: instruments in no shard: {', '.join(unassigned)}")
    names = {s.name: s.index for s in shards}
    default_home = file.home_shard or shards[0].name
    if default_home not in names:
        raise ConfigError(f"{path}: home_shard {default_home!r} is not a shard")
    home = dict.fromkeys(venue.venue.accounts, names[default_home])
    for key, name in file.home.items():
        if not key.isdigit() or int(key) not in home:
            raise ConfigError(f"{path}: home: {key!r} is not an account id of {venue.path.name}")
        if name not in names:
            raise ConfigError(f"{path}: home: account {key}: {name!r} is not a shard")
        home[int(key)] = names[name]
    if file.router.shard_timeout_ms <= 0:
        raise ConfigError(f"{path}: router.shard_timeout_ms must be positive")
    return Shards(path=path, venue=venue, shards=shards, router=file.router,
                  router_key_file=base / file.router.key_file, home=home)


def _resolve_shard(path: Path, venue: Config, index: int, entry: ShardEntry, instruments: list[int],
                   before: list[Shard]) -> Shard:
    """One [[shards]] entry checked against the shards before it: endpoints one
    per replica, a journal no other shard uses."""
    orders = [entry.orders] if isinstance(entry.orders, str) else entry.orders
    market_data = [entry.market_data] if isinstance(entry.market_data, str) else entry.market_data
    if not orders or len(orders) != len(market_data):
        raise ConfigError(f"{path}: shard {entry.name}: {len(orders)} orders endpoints and {len(market_data)} "
                          f"market_data endpoints; give one of each per gateway of the shard")
    if entry.journal_kind == "file":
        if not entry.journal:
            raise ConfigError(f"{path}: shard {entry.name}: a file journal needs `journal` (its directory)")
        if len(orders) > 1:
            raise ConfigError(f"{path}: shard {entry.name}: several gateways need journal_kind = \"jetstream\" "
                              f"(a file journal has one writer and no standby)")
        journal = (path.parent / entry.journal).resolve()
        if any(s.journal_path == journal for s in before):
            raise ConfigError(f"{path}: shard {entry.name}: journal {journal} is another shard's")
        return Shard(index=index, name=entry.name, instruments=instruments, orders=orders, market_data=market_data,
                     journal_path=journal, journal_kind="file")
    servers = entry.servers or venue.journal.servers
    if not entry.stream or not servers:
        raise ConfigError(f"{path}: shard {entry.name}: a jetstream journal needs `stream` and `servers` "
                          f"(or the venue's [journal] servers)")
    if any(s.stream == entry.stream and set(s.servers) & set(servers) for s in before):
        raise ConfigError(f"{path}: shard {entry.name}: stream {entry.stream} is another shard's")
    return Shard(index=index, name=entry.name, instruments=instruments, orders=orders, market_data=market_data,
                 journal_path=None, journal_kind="jetstream", stream=entry.stream, servers=list(servers))


def shard_config(shards: Shards, name: str, replica: int = 0) -> Config:
    """The venue config narrowed to shard ``name``, as its gateway ``replica``
    runs it: its instruments (in venue order), that gateway's endpoints, the
    shard's journal, and opening credits only for the accounts whose home it is."""
    shard = shards.by_name(name)
    if not 0 <= replica < len(shard.orders):
        raise ConfigError(f"{shards.path}: shard {name} has {len(shard.orders)} gateway(s); no replica {replica}")
    file = shards.venue.file
    if shard.journal_kind == "file":
        journal = msgspec.structs.replace(file.journal, kind="file", path=str(shard.journal_path))
    else:
        journal = msgspec.structs.replace(file.journal, kind="jetstream", stream=shard.stream, servers=shard.servers)
    narrowed = msgspec.structs.replace(
        file,
        instruments=[file.instruments[iid] for iid in shard.instruments],
        accounts=[a if shards.home[a.id] == shard.index else msgspec.structs.replace(a, credit={})
                  for a in file.accounts],
        endpoints=Endpoints(orders=shard.orders[replica], market_data=shard.market_data[replica]),
        journal=journal,
    )
    return _resolve(shards.venue.path, narrowed)
