// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IShareToken} from "./IShareToken.sol";

/// @title SettlementVault
/// @notice Holds the venue's deposits and applies the netted result of off-chain matching,
/// one batch at a time.
///
/// Amounts inside the vault are in ledger units, exactly as the engine keeps them:
/// token amount = ledger amount * scale, scale = 10 ** (token decimals - ledger decimals).
/// A rebasing token (xStocks, stETH: balance = shares * a multiplier the issuer changes) is listed
/// as `AssetKind.Shares` and counted in its shares instead: share amount = ledger amount * scale,
/// deposits credit the shares received, claims and escapes pay shares (`IShareToken`), so a
/// rebase changes what a share is worth but never what the vault owes or holds.
///
/// A batch carries two arrays of packed words, one word per entry:
///
///     bits 255..240  zero
///     bits 239..80   wallet (address)
///     bits  79..64   asset id (uint16)
///     bits  63..0    amount: int64 delta (deltas) or uint64 amount (withdrawals)
///
/// `deltas` are the netted fills: strictly increasing in (wallet, asset), so every
/// (wallet, asset) appears once, each wallet's entries are contiguous (its state and balance
/// slots are read and written once per batch) and each asset's deltas must sum to zero.
/// `withdrawals` move an amount from a wallet's settled balance to its claimable balance; the
/// wallet pulls it with `claim` once it is final (below), so one bad token or address never
/// blocks a batch.
///
/// Balances are packed: one slot holds the settled balances of three assets of a wallet
/// (asset id / 3 is the slot, asset id % 3 the 64-bit lane) and, in its top 64 bits, the
/// epoch of the slot's last change (times two, plus one if the epoch before it saw no change).
/// Time is cut into epochs of `challengeWindow` seconds; a batch settled in epoch e is final
/// from the start of epoch e + 2 (so its challenge window lasts between one and two
/// `challengeWindow`s): the watchtowers' time to recompute it from the fills its settle call
/// published and have the guardian pause. Before the first change of a slot in epoch e, its
/// balances (those at the end of epoch e - 1) are copied to checkpoint e % 2, so the two
/// checkpoints keep the balances at the end of the two epochs before the last change's
/// (one write a slot an epoch), and the state at the end of any epoch not yet final stays
/// known. A guardian pause fixes the last unchallenged state: the end of the epoch two before
/// the pause's. From then on claims pay only final withdrawals and escapes pay every wallet
/// its balance at that one moment, so the vault never pays more than it holds and a
/// challenged batch pays no one.
///
/// Batches chain: batchHash = keccak256(abi.encode(prevBatchHash, batchId, fillsRoot,
/// keccak256(abi.encodePacked(deltas)), keccak256(abi.encodePacked(withdrawals)),
/// keccak256(abi.encodePacked(served)))).
///
/// Forced exit (as StarkEx forced withdrawals and dYdX v3): a wallet calls `requestExit`; the
/// operator must serve it within `exitWindow` by naming the wallet in `served` of a batch that
/// settles everything the wallet traded (off chain its account is frozen first, so nothing of it
/// is left to settle). A served wallet withdraws its whole balance with `escape` once the
/// batches that changed it are final; no batch may touch it again. If a request is not served
/// in time, anyone may `freezeVault`: no batch ever settles again and every wallet leaves with
/// its last settled balance. No wallet can escape
/// while the operator is live and settling, so none can race a pending batch.
///
/// Fills are committed by `fillsRoot`, the root of an OpenZeppelin StandardMerkleTree over
/// the leaf type (uint64,address,address,uint16,uint16,uint64,uint64,int64,int64).
contract SettlementVault is AccessControl, Pausable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    /// @dev The engine keeps balances as int64 ledger units; the vault never holds more.
    uint256 private constant MAX_LEDGER_BALANCE = uint256(uint64(type(int64).max));
    uint256 private constant LANES = 3; // assets per balance slot
    uint256 private constant LANE_MASK = type(uint64).max;
    uint256 private constant BALANCES_MASK = (uint256(1) << 192) - 1;
    /// @dev A slot's top 64 bits: epoch of its last change * 2 + (1 if the epoch before saw none).
    uint256 private constant TAG_SHIFT = 192;
    /// @dev Transient slots of the per-asset sums of a batch's deltas: SUMS + assetId holds
    /// SUM_ZERO + sum once the asset was seen (0 means not seen yet), SEEN + k the k-th asset seen.
    uint256 private constant SUMS = uint256(keccak256("SettlementVault.deltaSums"));
    uint256 private constant SEEN = uint256(keccak256("SettlementVault.assetsSeen"));
    uint256 private constant SUM_ZERO = uint256(1) << 200;

    /// @notice How the vault counts a token: in token units (Plain) or in shares (Shares, rebasing tokens).
    enum AssetKind {
        Plain,
        Shares
    }

    struct Asset {
        IERC20 token;
        uint64 scale;
        AssetKind kind;
    }

    /// @dev Withdrawn but not yet claimed; `recent` and `previous` are the amounts withdrawn in
    /// epochs `recentEpoch` and `recentEpoch - 1` (the only ones that can still be challenged).
    struct Claimable {
        uint64 amount;
        uint64 recent;
        uint64 previous;
        uint64 recentEpoch;
    }

    struct WalletState {
        uint64 exitRequestedAt;
        bool exited;
    }

    /// @notice A batch's place in the chain, its fills commitment and the wallets whose exit
    /// requests it serves.
    struct BatchHeader {
        uint64 batchId;
        bytes32 prevBatchHash;
        bytes32 fillsRoot;
        address[] served;
    }

    /// @notice One fill as committed in a batch's Merkle tree (amounts in ledger units).
    struct Fill {
        uint64 fillId;
        address buyer;
        address seller;
        uint16 baseAsset;
        uint16 quoteAsset;
        uint64 baseAmount;
        uint64 quoteAmount;
        int64 buyerFee;
        int64 sellerFee;
    }

    /// @notice Seconds the operator has to serve an exit request before the vault may be frozen.
    uint256 public immutable exitWindow;
    /// @notice Seconds a batch's withdrawals wait before they can be claimed: the watchtowers'
    /// time to recompute the batch from its published fills and have the guardian pause.
    uint256 public immutable challengeWindow;

    /// @notice Set by `freezeVault` once an exit request went unserved: settlement has stopped for
    /// good and every wallet may escape with its last settled balance.
    bool public frozen;

    uint64 public lastBatchId;
    uint64 public lastSettledAt;
    uint64 public depositCount;
    bytes32 public lastBatchHash;

    mapping(uint64 batchId => bytes32) public fillsRootOf;

    mapping(uint16 assetId => Asset) private _assets;
    mapping(address token => bool) private _tokenListed;
    /// @notice Set when the guardian paused; while paused, the state at the end of epoch
    /// pausedAt / challengeWindow - 2 is the last unchallenged state.
    uint64 public pausedAt;
    /// @notice Set once an escape paid a wallet its last unchallenged state instead of its
    /// current balance: the batches after that state are void for good, so the vault stays
    /// paused and every wallet leaves by exit.
    bool public recovering;

    mapping(address wallet => mapping(uint256 slot => uint256)) private _balances;
    /// @dev [e % 2]: the slot's balances at the end of epoch e - 1, written before its first
    /// change in epoch e (only read while they are not final).
    mapping(address wallet => mapping(uint256 slot => uint256[2])) private _checkpoints;
    mapping(address wallet => mapping(uint16 assetId => Claimable)) private _claimable;
    mapping(address wallet => WalletState) private _wallets;

    /// @dev Amounts in events are token units, or shares for an asset of kind Shares.
    event AssetListed(uint16 indexed assetId, address indexed token, uint64 scale, AssetKind kind);
    event Deposit(address indexed wallet, address indexed token, uint256 amount, uint64 depositId);
    event BatchSettled(
        uint64 indexed batchId,
        bytes32 batchHash,
        bytes32 fillsRoot,
        bytes32 deltasHash,
        bytes32 withdrawalsHash,
        uint256 publishedBytes
    );
    event WithdrawalQueued(address indexed wallet, uint16 indexed assetId, uint256 ledgerAmount);
    event Claimed(address indexed wallet, address indexed token, uint256 amount);
    event ExitRequested(address indexed wallet, uint256 requestedAt);
    event ExitServed(address indexed wallet, uint64 indexed batchId);
    event VaultFrozen(address indexed unservedWallet, uint256 frozenAt);
    event Escaped(address indexed wallet, address indexed token, uint256 amount);

    error UnexpectedBatchId(uint64 expected, uint64 given);
    error WrongPrevBatchHash(bytes32 expected, bytes32 given);
    error UnsortedDeltas(uint256 index);
    error MalformedEntry(uint256 index);
    error NonZeroSum(uint16 assetId, int256 sum);
    error NegativeBalance(address wallet, uint16 assetId);
    error BalanceTooLarge(address wallet, uint16 assetId);
    error WalletExited(address wallet);
    error UnknownAsset(uint16 assetId);
    error AssetAlreadyListed(uint16 assetId, address token);
    error BadLedgerDecimals(uint8 decimals, uint8 ledgerDecimals);
    error InvalidAmount(uint256 amount);
    error FeeOnTransferToken(address token);
    error RebasingTokenAsPlain(address token);
    error NotAShareToken(address token);
    error SharesNotMoved(address token, uint256 expected, uint256 moved);
    error NothingToClaim(address wallet, uint16 assetId);
    error EscapeNotOpen(address wallet);
    error ExitPending(address wallet);
    error ExitNotPending(address wallet);
    error ExitWindowOpen(address wallet, uint256 deadline);
    error VaultIsFrozen();
    error ClaimNotYet(address wallet, uint16 assetId, uint256 claimableAt);
    error EscapeNotYet(address wallet, uint16 assetId, uint256 finalAt);
    error VaultRecovering();

    constructor(address admin, address operator, address guardian, uint256 exitWindow_, uint256 challengeWindow_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
        _grantRole(GUARDIAN_ROLE, guardian);
        exitWindow = exitWindow_;
        challengeWindow = challengeWindow_;
        lastSettledAt = uint64(block.timestamp);
    }

    // -- admin --

    /// @notice Allow-list `token` under the engine's asset id, with the engine's ledger decimals, counted
    /// in token units (Plain) or in shares (Shares: a rebasing token). A token that answers `sharesOf`
    /// rebases and cannot be listed Plain; a token that does not cannot be listed Shares.
    function listAsset(uint16 assetId, address token, uint8 ledgerDecimals, AssetKind kind)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (address(_assets[assetId].token) != address(0) || _tokenListed[token]) {
            revert AssetAlreadyListed(assetId, token);
        }
        uint8 decimals = IERC20Metadata(token).decimals();
        if (ledgerDecimals > decimals || decimals - ledgerDecimals > 19) {
            revert BadLedgerDecimals(decimals, ledgerDecimals);
        }
        _checkKind(token, kind);
        uint64 scale = uint64(10 ** uint256(decimals - ledgerDecimals));
        _assets[assetId] = Asset(IERC20(token), scale, kind);
        _tokenListed[token] = true;
        emit AssetListed(assetId, token, scale, kind);
    }

    /// @notice Stop deposits, batches and claims, and fix the last unchallenged state (escapes
    /// stay open: they are the users' way out, at that state).
    function pause() external onlyRole(GUARDIAN_ROLE) {
        pausedAt = uint64(block.timestamp);
        _pause();
    }

    /// @notice Resume after `pause`: the guardian's word that the batches it challenged are good.
    /// Refused once an escape has paid the last unchallenged state (`recovering`).
    function unpause() external onlyRole(GUARDIAN_ROLE) {
        if (recovering) revert VaultRecovering();
        _unpause();
    }

    // -- users --

    /// @notice Deposit `amount` token units, or shares for a Shares asset (a multiple of the asset's
    /// scale), to the caller's settled balance. The engine credits the account from the Deposit event.
    function deposit(uint16 assetId, uint256 amount) external nonReentrant whenNotPaused returns (uint64 depositId) {
        Asset memory asset = _listed(assetId);
        if (amount == 0 || amount % asset.scale != 0) revert InvalidAmount(amount);
        if (frozen) revert VaultIsFrozen();
        WalletState memory state = _wallets[msg.sender];
        if (state.exited) revert WalletExited(msg.sender);
        // After its exit request the account is frozen off chain: a deposit would never be credited.
        if (state.exitRequestedAt != 0) revert ExitPending(msg.sender);
        _credit(msg.sender, assetId, amount / asset.scale);
        depositId = ++depositCount;
        _pullIn(asset, msg.sender, amount);
        emit Deposit(msg.sender, address(asset.token), amount, depositId);
    }

    /// @notice Transfer the caller's final claimable balance of `assetId` (withdrawals settled in
    /// batches that are final; the rest stays claimable later).
    function claim(uint16 assetId) external nonReentrant whenNotPaused returns (uint256 amount) {
        Asset memory asset = _listed(assetId);
        Claimable storage claimable = _claimable[msg.sender][assetId];
        if (claimable.amount == 0) revert NothingToClaim(msg.sender, assetId);
        uint256 ledgerAmount = claimable.amount - _challengeable(claimable, _cutoffEpoch());
        if (ledgerAmount == 0) {
            revert ClaimNotYet(msg.sender, assetId, (uint256(claimable.recentEpoch) + 2) * challengeWindow);
        }
        claimable.amount -= uint64(ledgerAmount);
        amount = _payOut(asset, msg.sender, ledgerAmount);
        emit Claimed(msg.sender, address(asset.token), amount);
    }

    /// @notice Ask the operator to settle everything the caller traded and let it withdraw its
    /// whole balance (`escape`). The operator must serve the request in a batch within
    /// `exitWindow`, else anyone may `freezeVault`. Open while paused: it is the users' way out.
    function requestExit() external {
        WalletState storage state = _wallets[msg.sender];
        if (frozen) revert VaultIsFrozen();
        if (state.exited) revert WalletExited(msg.sender);
        if (state.exitRequestedAt != 0) revert ExitPending(msg.sender);
        state.exitRequestedAt = uint64(block.timestamp);
        emit ExitRequested(msg.sender, block.timestamp);
    }

    /// @notice Stop settlement for good because `wallet`'s exit request was not served within
    /// `exitWindow`; every wallet may then escape with its last settled balance. Anyone may call.
    function freezeVault(address wallet) external {
        if (frozen) revert VaultIsFrozen();
        WalletState memory state = _wallets[wallet];
        if (state.exitRequestedAt == 0 || state.exited) revert ExitNotPending(wallet);
        uint256 deadline = uint256(state.exitRequestedAt) + exitWindow;
        if (block.timestamp < deadline) revert ExitWindowOpen(wallet, deadline);
        frozen = true;
        emit VaultFrozen(wallet, block.timestamp);
    }

    /// @notice Whether `wallet` may escape now: its exit was served, or the vault is frozen.
    function escapeOpen(address wallet) public view returns (bool) {
        return frozen || _wallets[wallet].exited;
    }

    /// @notice Withdraw the caller's whole settled (and claimable) balance of each asset directly,
    /// once its exit was served or the vault frozen, and once the batches that last changed it
    /// are final (`EscapeNotYet`). While paused it works at once and pays the last unchallenged
    /// state: the balances at the end of the epoch two before the pause's.
    function escape(uint16[] calldata assetIds) external nonReentrant {
        if (!escapeOpen(msg.sender)) revert EscapeNotOpen(msg.sender);
        _wallets[msg.sender].exited = true;
        for (uint256 i; i < assetIds.length; ++i) {
            Asset memory asset = _listed(assetIds[i]);
            uint256 ledgerAmount = _takeAll(msg.sender, assetIds[i]);
            uint256 amount = ledgerAmount == 0 ? 0 : _payOut(asset, msg.sender, ledgerAmount);
            emit Escaped(msg.sender, address(asset.token), amount);
        }
    }

    // -- operator --

    /// @notice Apply one batch: netted fill deltas and withdrawals (encoding in the contract doc),
    /// then mark the exit requests of `served` served (each wallet's last fills are in this batch
    /// or an earlier one). `fills` publishes the batch's fills for watchtowers (settlement/batch.py
    /// `publish_fills`: the fee wallet, then 84 bytes a fill); the vault only carries them.
    function settle(
        BatchHeader calldata header,
        uint256[] calldata deltas,
        uint256[] calldata withdrawals,
        bytes calldata fills
    ) external onlyRole(OPERATOR_ROLE) whenNotPaused returns (bytes32) {
        _checkNext(header.batchId, header.prevBatchHash);
        uint256 epoch = _epochOf(block.timestamp);
        bytes32 deltasHash = _applyDeltas(deltas, epoch);
        bytes32 withdrawalsHash = _applyWithdrawals(withdrawals, epoch);
        bytes32 servedHash = _serveExits(header.served, header.batchId);
        return _chain(header.batchId, header.fillsRoot, deltasHash, withdrawalsHash, servedHash, fills.length);
    }

    // -- views --

    /// @notice Settled and claimable balance of `wallet` in `assetId`, in ledger units.
    function balanceOf(address wallet, uint16 assetId) external view returns (uint256 settled, uint256 claimable) {
        settled = _lane(_balances[wallet][assetId / LANES], assetId);
        claimable = _claimable[wallet][assetId].amount;
    }

    /// @notice What `escape` would pay `wallet` in `assetId` now (ledger units) and the time from
    /// which that is final (0 if it is; while paused, the last unchallenged state is paid at once).
    function escapeBalanceOf(address wallet, uint16 assetId) external view returns (uint256 amount, uint256 finalAt) {
        return _escapeBalance(wallet, assetId);
    }

    /// @notice Token, scale and kind of a listed asset (zero address if not listed).
    function assetInfo(uint16 assetId) external view returns (address token, uint64 scale, AssetKind kind) {
        Asset memory asset = _assets[assetId];
        return (address(asset.token), asset.scale, asset.kind);
    }

    /// @notice Exit request time (0 if none) and whether `wallet`'s exit was served (or it escaped).
    function walletState(address wallet) external view returns (uint64 exitRequestedAt, bool exited) {
        WalletState memory state = _wallets[wallet];
        return (state.exitRequestedAt, state.exited);
    }

    /// @notice Whether `fill` is in batch `batchId`, by its StandardMerkleTree proof.
    function verifyFill(uint64 batchId, bytes32[] calldata proof, Fill calldata fill) external view returns (bool) {
        bytes32 root = fillsRootOf[batchId];
        if (root == bytes32(0)) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(fill))));
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    // -- internal --

    function _listed(uint16 assetId) private view returns (Asset memory asset) {
        asset = _assets[assetId];
        if (address(asset.token) == address(0)) revert UnknownAsset(assetId);
    }

    /// @dev A token that answers `sharesOf` has a share interface (xStocks / Backed, stETH), so its
    /// balances rebase: counted in token units, a negative rebase would leave the vault short and a
    /// positive one would strand tokens. Listing checks the kind against it.
    function _checkKind(address token, AssetKind kind) private view {
        (bool ok, bytes memory data) = token.staticcall(abi.encodeCall(IShareToken.sharesOf, (address(this))));
        bool answersShares = ok && data.length == 32;
        if (kind == AssetKind.Plain && answersShares) revert RebasingTokenAsPlain(token);
        if (kind == AssetKind.Shares && !answersShares) revert NotAShareToken(token);
    }

    /// @dev What the vault holds of `asset`, in its unit (token units, or shares).
    function _held(Asset memory asset) private view returns (uint256) {
        if (asset.kind == AssetKind.Shares) return IShareToken(address(asset.token)).sharesOf(address(this));
        return asset.token.balanceOf(address(this));
    }

    /// @dev Take exactly `amount` (token units, or shares) from `from`: the vault credits only what it
    /// received, so a token that delivers less (a fee on transfer) is refused.
    function _pullIn(Asset memory asset, address from, uint256 amount) private {
        uint256 before = _held(asset);
        if (asset.kind == AssetKind.Shares) {
            IShareToken(address(asset.token)).transferSharesFrom(from, address(this), amount);
            uint256 received = _held(asset) - before;
            if (received != amount) revert SharesNotMoved(address(asset.token), amount, received);
        } else {
            asset.token.safeTransferFrom(from, address(this), amount);
            if (_held(asset) - before != amount) revert FeeOnTransferToken(address(asset.token));
        }
    }

    /// @dev Pay `ledgerAmount` to `to`: ledgerAmount * scale token units, or shares for a Shares asset
    /// (moved by share, so every wallet receives exactly the shares it is owed at any multiplier, and
    /// the vault's shares always cover the balances). Returns the amount paid in the asset's unit.
    function _payOut(Asset memory asset, address to, uint256 ledgerAmount) private returns (uint256 amount) {
        amount = ledgerAmount * asset.scale;
        if (asset.kind == AssetKind.Shares) {
            uint256 before = _held(asset);
            IShareToken(address(asset.token)).transferShares(to, amount);
            // The share transfers return no checked value: what left the vault is the proof.
            uint256 moved = before - _held(asset);
            if (moved != amount) revert SharesNotMoved(address(asset.token), amount, moved);
        } else {
            asset.token.safeTransfer(to, amount);
        }
    }

    /// @dev Apply the deltas, wallet by wallet and slot by slot (each slot read and written once);
    /// returns keccak256(abi.encodePacked(deltas)).
    function _applyDeltas(uint256[] calldata deltas, uint256 epoch) private returns (bytes32) {
        uint256 assetCount;
        uint256 previousKey;
        uint256 walletKey;
        uint256 slotIndex = type(uint256).max;
        uint256 slot;
        // The hot loop of settlement: no step can overflow (keys < 2**176, lanes < 2**64, sums of
        // int64 deltas far inside int256), so it runs unchecked.
        unchecked {
            for (uint256 i; i < deltas.length; ++i) {
                uint256 word = deltas[i];
                uint256 key = word >> 64;
                if (key >> 176 != 0) revert MalformedEntry(i);
                if (key <= previousKey && i != 0) revert UnsortedDeltas(i);
                previousKey = key;
                uint256 assetId = key & 0xffff;
                if (key >> 16 != walletKey || assetId / LANES != slotIndex) {
                    if (slotIndex != type(uint256).max) _balances[address(uint160(walletKey))][slotIndex] = slot;
                    if (key >> 16 != walletKey) {
                        walletKey = key >> 16;
                        _checkActive(address(uint160(walletKey)));
                    }
                    slotIndex = assetId / LANES;
                    slot = _openSlot(address(uint160(walletKey)), slotIndex, epoch);
                }
                int256 amount = int64(uint64(word));
                uint256 sum = _tload(SUMS + assetId);
                if (sum == 0) {
                    _listed(uint16(assetId));
                    _tstore(SEEN + assetCount++, assetId);
                    sum = SUM_ZERO;
                }
                _tstore(SUMS + assetId, uint256(int256(sum) + amount));
                uint256 shift = 64 * (assetId % LANES);
                uint256 settled = (slot >> shift) & LANE_MASK;
                if (amount >= 0) {
                    settled += uint256(amount);
                    if (settled > MAX_LEDGER_BALANCE) {
                        revert BalanceTooLarge(address(uint160(walletKey)), uint16(assetId));
                    }
                } else {
                    if (settled < uint256(-amount)) revert NegativeBalance(address(uint160(walletKey)), uint16(assetId));
                    settled -= uint256(-amount);
                }
                slot = (slot & ~(LANE_MASK << shift)) | (settled << shift);
            }
        }
        if (slotIndex != type(uint256).max) _balances[address(uint160(walletKey))][slotIndex] = slot;
        for (uint256 i; i < assetCount; ++i) {
            _checkSumIsZero(uint16(_tload(SEEN + i)));
        }
        return keccak256(abi.encodePacked(deltas));
    }

    /// @dev Revert unless the batch's deltas of `assetId` sum to zero; clear its transient sum.
    function _checkSumIsZero(uint16 assetId) private {
        uint256 sum = _tload(SUMS + assetId);
        _tstore(SUMS + assetId, 0);
        if (sum != SUM_ZERO) revert NonZeroSum(assetId, int256(sum) - int256(SUM_ZERO));
    }

    /// @dev Returns keccak256(abi.encodePacked(withdrawals)).
    function _applyWithdrawals(uint256[] calldata withdrawals, uint256 epoch) private returns (bytes32) {
        for (uint256 i; i < withdrawals.length; ++i) {
            uint256 word = withdrawals[i];
            if (word >> 240 != 0) revert MalformedEntry(i);
            address wallet = address(uint160(word >> 80));
            uint16 assetId = uint16(word >> 64);
            uint64 amount = uint64(word);
            if (amount == 0) revert InvalidAmount(0);
            _listed(assetId);
            _checkActive(wallet);
            uint256 slot = _openSlot(wallet, assetId / LANES, epoch);
            uint256 settled = _lane(slot, assetId);
            if (settled < amount) revert NegativeBalance(wallet, assetId);
            _balances[wallet][assetId / LANES] = _withLane(slot, assetId, settled - amount);
            _queueClaim(_claimable[wallet][assetId], amount, epoch);
            emit WithdrawalQueued(wallet, assetId, amount);
        }
        return keccak256(abi.encodePacked(withdrawals));
    }

    /// @dev Add a withdrawal of epoch `epoch` to a claimable balance, keeping the amounts of the
    /// two newest epochs apart.
    function _queueClaim(Claimable storage claimable, uint64 amount, uint256 epoch) private {
        Claimable memory c = claimable;
        if (c.recentEpoch != epoch) {
            c.previous = c.recentEpoch + 1 == epoch ? c.recent : 0;
            c.recent = 0;
            c.recentEpoch = uint64(epoch);
        }
        c.recent += amount;
        c.amount += amount;
        claimable.amount = c.amount;
        claimable.recent = c.recent;
        claimable.previous = c.previous;
        claimable.recentEpoch = c.recentEpoch;
    }

    /// @dev A wallet's balance slot, ready for a change in epoch `epoch`: on the slot's first
    /// change in a new epoch its balances (the end of the epoch before) go to checkpoint
    /// epoch % 2, and its tag is set.
    function _openSlot(address wallet, uint256 slotIndex, uint256 epoch) private returns (uint256 slot) {
        slot = _balances[wallet][slotIndex];
        uint256 last = slot >> (TAG_SHIFT + 1);
        if (challengeWindow == 0 || last == epoch) return slot;
        uint256 balances = slot & BALANCES_MASK;
        _checkpoints[wallet][slotIndex][epoch % 2] = balances;
        uint256 gap = last + 1 == epoch ? 0 : 1;
        return balances | (((epoch << 1) | gap) << TAG_SHIFT);
    }

    /// @dev Credit a deposit to the settled balance; the tokens are in the vault whatever the
    /// batches around it turn out to be, so the checkpoints an escape may still pay get it too.
    function _credit(address wallet, uint16 assetId, uint256 ledgerAmount) private {
        uint256 slotIndex = assetId / LANES;
        uint256 slot = _balances[wallet][slotIndex];
        uint256 settled = _lane(slot, assetId) + ledgerAmount;
        if (settled > MAX_LEDGER_BALANCE) revert BalanceTooLarge(wallet, assetId);
        _balances[wallet][slotIndex] = _withLane(slot, assetId, settled);
        uint256 last = slot >> (TAG_SHIFT + 1);
        uint256 now_ = _epochOf(block.timestamp);
        if (challengeWindow == 0 || last + 2 <= now_) return;
        uint256[2] storage checkpoints = _checkpoints[wallet][slotIndex];
        _creditCheckpoint(checkpoints, last % 2, wallet, assetId, ledgerAmount);
        if (last == now_ && (slot >> TAG_SHIFT) & 1 == 0) {
            _creditCheckpoint(checkpoints, (last + 1) % 2, wallet, assetId, ledgerAmount);
        }
    }

    function _creditCheckpoint(uint256[2] storage checkpoints, uint256 k, address wallet, uint16 assetId,
                               uint256 ledgerAmount) private {
        uint256 checkpoint = checkpoints[k];
        uint256 credited = _lane(checkpoint, assetId) + ledgerAmount;
        if (credited > MAX_LEDGER_BALANCE) revert BalanceTooLarge(wallet, assetId);
        checkpoints[k] = _withLane(checkpoint, assetId, credited);
    }

    /// @dev What an escape pays `wallet` in `assetId` (settled + claimable, ledger units) and
    /// when that becomes final (0: it is). Not paused: the current balance, final once the
    /// slot's last change is. Paused: the balance at the end of epoch E - 2 (E the pause's
    /// epoch): the current one if the slot did not change since, else a checkpoint.
    function _escapeBalance(address wallet, uint16 assetId) private view returns (uint256 amount, uint256 finalAt) {
        uint256 slot = _balances[wallet][assetId / LANES];
        Claimable memory claimable = _claimable[wallet][assetId];
        amount = _lane(slot, assetId) + claimable.amount;
        if (challengeWindow == 0) return (amount, 0);
        uint256 last = slot >> (TAG_SHIFT + 1);
        uint256 cutoff = _cutoffEpoch();
        if (last + 2 <= cutoff) return (amount, 0);
        if (!paused()) return (amount, (last + 2) * challengeWindow);
        // The end of epoch cutoff - 2: checkpoint last % 2 holds the end of last - 1, and so the
        // end of last - 2 too if nothing changed in last - 1; else checkpoint (last - 1) % 2 does.
        uint256 k = last == cutoff && (slot >> TAG_SHIFT) & 1 == 0 ? (last + 1) % 2 : last % 2;
        amount = _lane(_checkpoints[wallet][assetId / LANES][k], assetId) + claimable.amount
            - _challengeable(claimable, cutoff);
    }

    /// @dev Zero `wallet`'s balances of `assetId` (settled, checkpoints, claimable) and return
    /// what its escape pays (see _escapeBalance).
    function _takeAll(address wallet, uint16 assetId) private returns (uint256 amount) {
        uint256 finalAt;
        (amount, finalAt) = _escapeBalance(wallet, assetId);
        if (finalAt != 0) revert EscapeNotYet(wallet, assetId, finalAt);
        uint256 slotIndex = assetId / LANES;
        uint256 slot = _balances[wallet][slotIndex];
        if (challengeWindow != 0 && (slot >> (TAG_SHIFT + 1)) + 2 > _cutoffEpoch()) {
            // Paid from a checkpoint: the batches after it are void for good.
            recovering = true;
            uint256[2] storage checkpoints = _checkpoints[wallet][slotIndex];
            checkpoints[0] = _withLane(checkpoints[0], assetId, 0);
            checkpoints[1] = _withLane(checkpoints[1], assetId, 0);
        }
        _balances[wallet][slotIndex] = _withLane(slot, assetId, 0);
        delete _claimable[wallet][assetId];
    }

    /// @dev The part of a claimable balance withdrawn in epochs that are not final at `cutoff`
    /// (epochs cutoff - 1 and cutoff).
    function _challengeable(Claimable memory claimable, uint256 cutoff) private view returns (uint256 pending) {
        if (challengeWindow == 0) return 0;
        if (claimable.recentEpoch + 1 >= cutoff) pending = claimable.recent;
        if (claimable.recentEpoch == cutoff) pending += claimable.previous;
    }

    /// @dev The epoch whose end minus two epochs is the last unchallenged state: the pause's
    /// while paused, else now's.
    function _cutoffEpoch() private view returns (uint256) {
        return _epochOf(paused() ? pausedAt : block.timestamp);
    }

    function _epochOf(uint256 time) private view returns (uint256) {
        return challengeWindow == 0 ? 0 : time / challengeWindow;
    }

    function _tload(uint256 key) private view returns (uint256 value) {
        assembly ("memory-safe") {
            value := tload(key)
        }
    }

    function _tstore(uint256 key, uint256 value) private {
        assembly ("memory-safe") {
            tstore(key, value)
        }
    }

    function _lane(uint256 slot, uint16 assetId) private pure returns (uint256) {
        return (slot >> (64 * (assetId % LANES))) & LANE_MASK;
    }

    function _withLane(uint256 slot, uint16 assetId, uint256 value) private pure returns (uint256) {
        uint256 shift = 64 * (assetId % LANES);
        return (slot & ~(LANE_MASK << shift)) | (value << shift);
    }

    /// @dev Chain the batch: batchHash over the previous hash and the batch's commitments.
    function _chain(
        uint64 batchId,
        bytes32 fillsRoot,
        bytes32 deltasHash,
        bytes32 withdrawalsHash,
        bytes32 servedHash,
        uint256 publishedBytes
    ) private returns (bytes32 batchHash) {
        batchHash = keccak256(abi.encode(lastBatchHash, batchId, fillsRoot, deltasHash, withdrawalsHash, servedHash));
        lastBatchId = batchId;
        lastSettledAt = uint64(block.timestamp);
        lastBatchHash = batchHash;
        fillsRootOf[batchId] = fillsRoot;
        emit BatchSettled(batchId, batchHash, fillsRoot, deltasHash, withdrawalsHash, publishedBytes);
    }

    function _checkNext(uint64 batchId, bytes32 prevBatchHash) private view {
        if (frozen) revert VaultIsFrozen();
        if (batchId != lastBatchId + 1) revert UnexpectedBatchId(lastBatchId + 1, batchId);
        if (prevBatchHash != lastBatchHash) revert WrongPrevBatchHash(lastBatchHash, prevBatchHash);
    }

    /// @dev Mark the exit requests of `served` served; returns keccak256(abi.encodePacked(served)).
    function _serveExits(address[] calldata served, uint64 batchId) private returns (bytes32) {
        for (uint256 i; i < served.length; ++i) {
            WalletState storage state = _wallets[served[i]];
            if (state.exitRequestedAt == 0 || state.exited) revert ExitNotPending(served[i]);
            state.exited = true;
            emit ExitServed(served[i], batchId);
        }
        return keccak256(abi.encodePacked(served));
    }

    function _checkActive(address wallet) private view {
        if (_wallets[wallet].exited) revert WalletExited(wallet);
    }
}
