"""Venue configuration (TOML): assets, instruments, accounts and their keys,
operators, fees, bands, endpoints, journal, sessions.

Two parts with different lifetimes:

* the **venue definition** (``VenueSpec``: engine limits, assets, instruments with
  their fees and bands, account ids) is engine state. It is written into the
  journal when the journal is created (its *genesis*) and a restart refuses a
  config whose definition differs, because replaying the journal must rebuild the
  same engine (engine/venue.py builds the engine from it);
* everything else (endpoints, keys, journal policy, session timeouts, limits) is
  runtime and may change between restarts.

Relative paths are relative to the config file.
See configs/venue.toml for a commented example.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

import msgspec
import zmq.auth
from zmq.utils import z85

from engine.assets import AssetSpec
from engine.instruments import InstrumentSpec
from engine.pools_config import MainPoolTerms, PoolsSection, PoolsSpec, main_pool_terms, pools_spec

_SYMBOL = re.compile(r"^[A-Za-z0-9._/-]+$")


class ConfigError(ValueError):
    """The configuration file is invalid; the message says where and why."""


def _section(**kw):
    return {"kw_only": True, "forbid_unknown_fields": True, "frozen": True, **kw}


class VenueSection(msgspec.Struct, **_section()):
    """Engine limits and the fee account."""

    name: str = "venue"
    max_accounts: int = 1 << 16
    max_orders: int = 1 << 22
    fee_account: int = 0
    risk: bool = True


class Endpoints(msgspec.Struct, **_section()):
    """Where the gateway binds (``tcp://127.0.0.1:*`` picks a free port)."""

    orders: str = "tcp://127.0.0.1:7001"
    market_data: str = "tcp://127.0.0.1:7002"


class ServerSection(msgspec.Struct, **_section()):
    """The gateway's CURVE key pair (a zmq certificate file with the secret key)."""

    secret_key_file: str


class JournalSection(msgspec.Struct, **_section()):
    """Where and how commands are journaled: ``kind = "file"`` (a local directory,
    the default) or ``"jetstream"`` (a NATS JetStream stream replicated over
    ``servers``, with a leader lease; see engine/journal_jetstream.py)."""

    kind: Literal["file", "jetstream"] = "file"
    path: str = "var/journal"
    fsync: Literal["batch", "interval", "none"] = "batch"
    fsync_interval_ms: int = 5
    segment_bytes: int = 64 << 20
    snapshot_every: int = 100_000
    snapshot_min_interval_s: float = 10.0
    snapshots_kept: int = 2
    servers: list[str] = []
    stream: str = "venue"
    replicas: int = 3
    ack_timeout_ms: int = 2000
    publish_attempts: int = 10
    lease_ms: int = 3000


class SessionSection(msgspec.Struct, **_section()):
    """Heartbeats: clients send one every ``heartbeat_ms``; a cancel-on-disconnect
    session silent for ``timeout_ms`` has its account's orders cancelled."""

    heartbeat_ms: int = 1_000
    timeout_ms: int = 3_000
    idle_expiry_s: int = 3_600


class GatewaySection(msgspec.Struct, **_section()):
    """Bounds of the batching loop and of inbound messages. A batch ends when the
    socket is drained or either batch bound is reached (a message is never split;
    queries count toward ``max_batch_commands`` as commands do).

    Fairness between clients (operator keys are exempt from the rates; an
    account's ``rates`` table overrides them for its sessions): the
    sessions of one principal together may send ``max_messages_per_s`` messages and ``max_requests_per_s``
    requests a second, and have ``max_query_items_per_s`` items (book levels,
    orders, balances ...) answered a second, each with a burst of one second's
    worth; a book query asks for at most ``max_book_levels`` levels and a page of
    open orders for at most ``max_page_orders`` orders; no reply
    message is larger than ``max_reply_bytes`` (a batch's replies are split
    into several messages, a single answer larger than that is refused); a
    session whose unsent replies exceed ``reply_hwm`` messages in ZeroMQ plus
    ``max_session_buffer_bytes`` held by the gateway is cut off as a slow reader."""

    max_batch_messages: int = 1_024
    max_batch_commands: int = 2_048
    max_message_bytes: int = 64 << 10
    max_requests_per_message: int = 1_024
    send_hwm: int = 100_000
    max_messages_per_s: int = 10_000
    max_requests_per_s: int = 100_000
    max_query_items_per_s: int = 100_000
    max_book_levels: int = 100
    max_page_orders: int = 10_000
    max_reply_bytes: int = 1 << 20
    reply_hwm: int = 16
    max_session_buffer_bytes: int = 16 << 20


class MarketDataSection(msgspec.Struct, **_section()):
    """Depth (levels per side) of the published L2 book and of snapshots."""

    depth: int = 10


class AssetEntry(AssetSpec, forbid_unknown_fields=True):
    """One asset (AssetSpec fields); ``usd_price`` (decimal USD per token) is set
    by the genesis batch."""

    usd_price: str | None = None


class InstrumentEntry(InstrumentSpec, forbid_unknown_fields=True):
    """One instrument (InstrumentSpec fields); ``reference_price`` (decimal, quote
    per base; an option's mark per contract) is set by the genesis batch, and
    for an option series ``initial_margin`` / ``maintenance_margin`` (decimal
    USD per short contract, until the option-mark feed updates them)."""

    reference_price: str | None = None
    initial_margin: str | None = None
    maintenance_margin: str | None = None


RATE_NAMES = ("max_messages_per_s", "max_requests_per_s", "max_query_items_per_s")
"""The [gateway] rates an account may override."""


class RateOverrides(msgspec.Struct, **_section()):
    """An account's own rates (``[accounts.rates]``, e.g. a market maker's): each
    given one replaces the [gateway] default of the same name for the sessions of
    that account's keys; the others stay the defaults."""

    max_messages_per_s: int | None = None
    max_requests_per_s: int | None = None
    max_query_items_per_s: int | None = None

    def over(self, defaults: GatewaySection) -> dict[str, int]:
        """The rates that apply: these overrides over ``defaults``."""
        return {name: getattr(defaults, name) if getattr(self, name) is None else getattr(self, name)
                for name in RATE_NAMES}


class AccountEntry(msgspec.Struct, **_section()):
    """A trading account and the client keys bound to it; ``credit`` maps asset
    symbols to decimal token amounts credited by the genesis batch; ``rates``
    overrides [gateway] rates for this account's sessions."""

    id: int
    name: str = ""
    key_files: list[str] = []
    public_keys: list[str] = []
    credit: dict[str, str] = {}
    rates: RateOverrides = RateOverrides()


class OperatorEntry(msgspec.Struct, **_section()):
    """An operator key; ``account`` optionally lets it trade for that account too."""

    name: str
    key_files: list[str] = []
    public_keys: list[str] = []
    account: int | None = None


class ConfigFile(msgspec.Struct, **_section()):
    """The TOML document."""

    server: ServerSection
    venue: VenueSection = VenueSection()
    endpoints: Endpoints = Endpoints()
    journal: JournalSection = JournalSection()
    session: SessionSection = SessionSection()
    gateway: GatewaySection = GatewaySection()
    market_data: MarketDataSection = MarketDataSection()
    assets: list[AssetEntry] = []
    instruments: list[InstrumentEntry] = []
    accounts: list[AccountEntry] = []
    operators: list[OperatorEntry] = []
    pools: PoolsSection = PoolsSection()


class VenueSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What the engine is built from; stored as the journal's genesis."""

    version: int = 1
    max_accounts: int
    max_orders: int
    fee_account: int
    risk: bool
    assets: list[AssetSpec]
    instruments: list[InstrumentSpec]
    accounts: list[int]
    main_pool: MainPoolTerms | None = None   # [pools.main] (engine/pools_config.py); None: no main pool
    pools: PoolsSpec | None = None     # the insurance and main pools (engine/pools_config.py)


_VENUE_ENCODER = msgspec.msgpack.Encoder()
_VENUE_DECODER = msgspec.msgpack.Decoder(VenueSpec)

_POOL_FIELDS = ("main_pool", "pools")
"""VenueSpec fields left out of the genesis bytes while None."""


def encode_venue(spec: VenueSpec) -> bytes:
    """The journal genesis bytes of a venue definition. Without pools and without an
    option series naming its expiry time they are the bytes of a definition written
    before either existed, so those journals still open."""
    fields = {f: getattr(spec, f) for f in spec.__struct_fields__
              if f not in _POOL_FIELDS or getattr(spec, f) is not None}
    if not any(i.option is not None and i.option.expiry_time for i in spec.instruments):
        fields["instruments"] = [_without_expiry_time(i) for i in spec.instruments]
    return _VENUE_ENCODER.encode(fields)


def _without_expiry_time(spec: InstrumentSpec) -> dict:
    """An instrument's fields as the genesis held them before ``expiry_time`` existed."""
    fields = msgspec.to_builtins(spec)
    if spec.option is not None:
        del fields["option"]["expiry_time"]
    return fields


def decode_venue(data: bytes) -> VenueSpec:
    """A venue definition from journal genesis bytes."""
    return _VENUE_DECODER.decode(data)


class Principal(msgspec.Struct, frozen=True):
    """Who a client key is: its trading account (or None), whether it is an
    operator, and its account's rate overrides (operators are not rate limited)."""

    name: str
    account: int | None
    operator: bool
    rates: RateOverrides = RateOverrides()

    @property
    def user_id(self) -> str:
        """The ZAP User-Id the gateway sees on this principal's messages."""
        return f"{'op' if self.operator else 'acct'}:{self.name}"


class Config(msgspec.Struct, frozen=True, kw_only=True):
    """A loaded configuration: the file's sections with paths resolved, the
    venue definition, and the key -> principal map."""

    path: Path
    file: ConfigFile
    venue: VenueSpec
    principals: dict[bytes, Principal]
    journal_path: Path
    server_key_file: Path

    @property
    def endpoints(self) -> Endpoints:
        """Where the gateway binds."""
        return self.file.endpoints

    @property
    def session(self) -> SessionSection:
        """Heartbeat and session timeouts."""
        return self.file.session

    @property
    def gateway(self) -> GatewaySection:
        """Batching and message limits."""
        return self.file.gateway

    @property
    def journal(self) -> JournalSection:
        """Journal location and fsync policy."""
        return self.file.journal

    @property
    def market_data(self) -> MarketDataSection:
        """Published depth."""
        return self.file.market_data

    def server_keys(self) -> tuple[bytes, bytes]:
        """(public, secret) CURVE keys of the gateway."""
        public, secret = zmq.auth.load_certificate(self.server_key_file)
        if secret is None:
            raise ConfigError(f"{self.server_key_file}: no secret key in this certificate file")
        return public, secret


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config; raise ConfigError with the reason."""
    path = Path(path).resolve()
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: {err}") from err
    try:
        file = msgspec.convert(raw, ConfigFile)
    except msgspec.ValidationError as err:
        raise ConfigError(f"{path}: {err}") from err
    return _resolve(path, file)


def _resolve(path: Path, file: ConfigFile) -> Config:
    base = path.parent
    try:
        assets = [AssetSpec(**{f: getattr(a, f) for f in AssetSpec.__struct_fields__}) for a in file.assets]
        instruments = [InstrumentSpec(**{f: getattr(i, f) for f in InstrumentSpec.__struct_fields__})
                       for i in file.instruments]
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from err
    _check_unique(path, "asset", [a.symbol for a in assets])
    _check_unique(path, "instrument", [i.symbol for i in instruments])
    _check_unique(path, "account", [a.id for a in file.accounts])
    asset_symbols = {a.symbol for a in assets}
    for inst in file.instruments:
        if not _SYMBOL.match(inst.symbol):
            raise ConfigError(f"{path}: instrument symbol {inst.symbol!r} may only use letters, digits and ._/-")
        if file.venue.risk and not {inst.base, inst.quote} <= asset_symbols:
            raise ConfigError(f"{path}: instrument {inst.symbol}: base and quote must be listed assets")
        if (inst.initial_margin is None) != (inst.maintenance_margin is None):
            raise ConfigError(f"{path}: instrument {inst.symbol}: give both initial_margin and maintenance_margin")
        if inst.initial_margin is not None and (inst.option is None or not file.venue.risk):
            raise ConfigError(f"{path}: instrument {inst.symbol}: margins are for option series of a risk venue")
    venue = file.venue
    accounts = sorted(a.id for a in file.accounts)
    for acct in accounts + [venue.fee_account]:
        if not 0 <= acct < venue.max_accounts:
            raise ConfigError(f"{path}: account {acct} outside [0, max_accounts={venue.max_accounts})")
    if venue.fee_account in accounts:
        raise ConfigError(f"{path}: account {venue.fee_account} is the fee account; give traders other ids")
    try:
        main_pool = main_pool_terms(file.pools, assets)
        pools = pools_spec(path, file.pools, accounts, venue.risk)
    except ValueError as err:
        raise ConfigError(str(err) if str(err).startswith(str(path)) else f"{path}: {err}") from err
    if main_pool is not None and not (venue.risk and 0 <= main_pool.account < venue.max_accounts
                                      and main_pool.account != venue.fee_account):
        raise ConfigError(f"{path}: [pools] main_account needs a risk venue and an id in [0, max_accounts) "
                          "other than the fee account")
    spec = VenueSpec(max_accounts=venue.max_accounts, max_orders=venue.max_orders,
                     fee_account=venue.fee_account, risk=venue.risk, assets=assets,
                     instruments=instruments, accounts=accounts, main_pool=main_pool, pools=pools)
    principals: dict[bytes, Principal] = {}
    for acct in file.accounts:
        who = Principal(acct.name or str(acct.id), acct.id, False, acct.rates)
        for key in _keys(base, path, acct.key_files, acct.public_keys, f"account {acct.id}"):
            _bind(path, principals, key, who)
    for op in file.operators:
        if op.account is not None and op.account not in accounts:
            raise ConfigError(f"{path}: operator {op.name}: account {op.account} is not a listed account")
        who = Principal(op.name, op.account, True)
        for key in _keys(base, path, op.key_files, op.public_keys, f"operator {op.name}"):
            _bind(path, principals, key, who)
    _check_positive(path, file)
    return Config(path=path, file=file, venue=spec, principals=principals,
                  journal_path=base / file.journal.path, server_key_file=base / file.server.secret_key_file)


def _check_unique(path: Path, what: str, names: list) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"{path}: {what} {name} listed twice")
        seen.add(name)


def _check_positive(path: Path, file: ConfigFile) -> None:
    for section, names in ((file.session, ("heartbeat_ms", "timeout_ms", "idle_expiry_s")),
                           (file.gateway, ("max_batch_messages", "max_batch_commands", "max_message_bytes",
                                           "max_requests_per_message", "send_hwm", "max_messages_per_s",
                                           "max_requests_per_s", "max_query_items_per_s", "max_book_levels",
                                           "max_page_orders", "max_reply_bytes", "reply_hwm",
                                           "max_session_buffer_bytes")),
                           (file.market_data, ("depth",)),
                           (file.journal, ("fsync_interval_ms", "segment_bytes", "snapshots_kept", "replicas",
                                           "ack_timeout_ms", "publish_attempts", "lease_ms"))):
        for name in names:
            if getattr(section, name) <= 0:
                raise ConfigError(f"{path}: {name} must be positive")
    for acct in file.accounts:
        for name in RATE_NAMES:
            value = getattr(acct.rates, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{path}: account {acct.id} ({acct.name or 'no name'}): rates.{name} must be "
                                  f"positive, not {value}")
    if file.journal.kind == "jetstream" and not file.journal.servers:
        raise ConfigError(f"{path}: journal.kind = \"jetstream\" needs journal.servers (nats://host:port, ...)")
    if file.journal.snapshot_every < 0:
        raise ConfigError(f"{path}: snapshot_every must be >= 0 (0 = only at shutdown)")
    if not file.journal.snapshot_min_interval_s >= 0:
        raise ConfigError(f"{path}: snapshot_min_interval_s must be >= 0")


def _keys(base: Path, path: Path, files: list[str], literals: list[str], who: str) -> list[bytes]:
    keys = []
    for name in files:
        try:
            public, _secret = zmq.auth.load_certificate(base / name)
        except (OSError, ValueError) as err:
            raise ConfigError(f"{path}: {who}: cannot read key file {name}: {err} "
                              f"(python -m engine keys init --config {path})") from err
        keys.append(public)
    for text in literals:
        if len(text) != 40:
            raise ConfigError(f"{path}: {who}: public key {text!r} is not 40 Z85 characters")
        try:
            z85.decode(text)
        except (ValueError, KeyError) as err:
            raise ConfigError(f"{path}: {who}: public key {text!r} is not valid Z85") from err
        keys.append(text.encode())
    return keys


def _bind(path: Path, principals: dict[bytes, Principal], key: bytes, who: Principal) -> None:
    if key in principals:
        raise ConfigError(f"{path}: key {key.decode()} is bound twice "
                          f"({principals[key].user_id} and {who.user_id})")
    principals[key] = who


def to_toml(doc: dict) -> str:
    """Render a config document (tables of str/int/bool/float, lists and inline
    tables of those, arrays of tables) as TOML. For generated configs (tests,
    benchmarks); tomllib reads TOML but the standard library cannot write it."""
    lines: list[str] = []
    plain = {k: v for k, v in doc.items() if not isinstance(v, dict | list) or _is_value_list(v)}
    for key, value in plain.items():
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in doc.items():
        if key in plain:
            continue
        if isinstance(value, dict):
            lines.append(f"\n[{_toml_key(key)}]")
            lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        else:
            for table in value:
                lines.append(f"\n[[{_toml_key(key)}]]")
                lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def _is_value_list(value) -> bool:
    return isinstance(value, list) and not any(isinstance(v, dict) for v in value)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
