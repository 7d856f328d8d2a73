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
///     bits 255..240  asset id (uint16)
///     bits 239..80   wallet (address)
///     bits  79..64   zero
///     bits  63..0    amount: int64 delta (deltas) or uint64 amount (withdrawals)
///
/// `deltas` are the netted fills: strictly increasing in (asset, wallet), so every
/// (wallet, asset) appears once and each asset's run must sum to zero. `withdrawals` move
/// an amount from a wallet's settled balance to its claimable balance; the wallet pulls it
/// with `claim` once `challengeWindow` has passed (the watchtowers' time to recompute the batch
/// from the fills its settle call published and have the guardian pause), so one bad token or
/// address never blocks a batch.
///
/// Batches chain: batchHash = keccak256(abi.encode(prevBatchHash, batchId, fillsRoot,
/// keccak256(abi.encodePacked(deltas)), keccak256(abi.encodePacked(withdrawals)),
/// keccak256(abi.encodePacked(served)))).
///
/// Forced exit (as StarkEx forced withdrawals and dYdX v3): a wallet calls `requestExit`; the
/// operator must serve it within `exitWindow` by naming the wallet in `served` of a batch that
/// settles everything the wallet traded (off chain its account is frozen first, so nothing of it
/// is left to settle). A served wallet withdraws its whole balance with `escape`; no batch may
/// touch it again. If a request is not served in time, anyone may `freezeVault`: no batch ever
/// settles again and every wallet leaves with its last settled balance. No wallet can escape
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

    struct Balance {
        uint128 settled;
        uint64 claimable;
        uint64 claimableAt; // the challenge window of the last withdrawal ends here
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
    mapping(address wallet => mapping(uint16 assetId => Balance)) private _balances;
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

    /// @notice Stop deposits, batches and claims (escapes stay open: they are the users' way out).
    function pause() external onlyRole(GUARDIAN_ROLE) {
        _pause();
    }

    /// @notice Resume after `pause`.
    function unpause() external onlyRole(GUARDIAN_ROLE) {
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
        Balance storage balance = _balances[msg.sender][assetId];
        uint256 settled = balance.settled + amount / asset.scale;
        if (settled > MAX_LEDGER_BALANCE) revert BalanceTooLarge(msg.sender, assetId);
        balance.settled = uint128(settled);
        depositId = ++depositCount;
        _pullIn(asset, msg.sender, amount);
        emit Deposit(msg.sender, address(asset.token), amount, depositId);
    }

    /// @notice Transfer the caller's claimable balance of `assetId` (withdrawals settled in batches),
    /// once the challenge window of its last withdrawal has passed.
    function claim(uint16 assetId) external nonReentrant whenNotPaused returns (uint256 amount) {
        Asset memory asset = _listed(assetId);
        Balance storage balance = _balances[msg.sender][assetId];
        uint256 ledgerAmount = balance.claimable;
        if (ledgerAmount == 0) revert NothingToClaim(msg.sender, assetId);
        if (block.timestamp < balance.claimableAt) revert ClaimNotYet(msg.sender, assetId, balance.claimableAt);
        balance.claimable = 0;
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
    /// once its exit was served or the vault frozen. Works while paused.
    function escape(uint16[] calldata assetIds) external nonReentrant {
        if (!escapeOpen(msg.sender)) revert EscapeNotOpen(msg.sender);
        _wallets[msg.sender].exited = true;
        for (uint256 i; i < assetIds.length; ++i) {
            Asset memory asset = _listed(assetIds[i]);
            Balance storage balance = _balances[msg.sender][assetIds[i]];
            uint256 ledgerAmount = uint256(balance.settled) + balance.claimable;
            balance.settled = 0;
            balance.claimable = 0;
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
        bytes32 deltasHash = _applyDeltas(deltas);
        bytes32 withdrawalsHash = _applyWithdrawals(withdrawals);
        bytes32 servedHash = _serveExits(header.served, header.batchId);
        return _chain(header.batchId, header.fillsRoot, deltasHash, withdrawalsHash, servedHash, fills.length);
    }

    // -- views --

    /// @notice Settled and claimable balance of `wallet` in `assetId`, in ledger units.
    function balanceOf(address wallet, uint16 assetId) external view returns (uint256 settled, uint256 claimable) {
        Balance memory balance = _balances[wallet][assetId];
        return (balance.settled, balance.claimable);
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

    /// @dev Returns keccak256(abi.encodePacked(deltas)).
    function _applyDeltas(uint256[] calldata deltas) private returns (bytes32) {
        uint256 previousKey;
        uint256 currentAsset = type(uint256).max;
        int256 sum;
        for (uint256 i; i < deltas.length; ++i) {
            uint256 word = deltas[i];
            uint256 key = word >> 64;
            if (uint16(key) != 0) revert MalformedEntry(i);
            if (i != 0 && key <= previousKey) revert UnsortedDeltas(i);
            previousKey = key;
            uint16 assetId = uint16(word >> 240);
            if (assetId != currentAsset) {
                if (sum != 0) revert NonZeroSum(uint16(currentAsset), sum);
                _listed(assetId);
                currentAsset = assetId;
            }
            address wallet = address(uint160(word >> 80));
            int64 amount = int64(uint64(word));
            sum += amount;
            _checkActive(wallet);
            Balance storage balance = _balances[wallet][assetId];
            if (amount >= 0) {
                uint256 settled = balance.settled + uint256(uint64(amount));
                if (settled > MAX_LEDGER_BALANCE) revert BalanceTooLarge(wallet, assetId);
                balance.settled = uint128(settled);
            } else {
                uint256 debit = uint256(-int256(amount));
                if (balance.settled < debit) revert NegativeBalance(wallet, assetId);
                balance.settled -= uint128(debit);
            }
        }
        if (sum != 0) revert NonZeroSum(uint16(currentAsset), sum);
        return keccak256(abi.encodePacked(deltas));
    }

    /// @dev Returns keccak256(abi.encodePacked(withdrawals)).
    function _applyWithdrawals(uint256[] calldata withdrawals) private returns (bytes32) {
        for (uint256 i; i < withdrawals.length; ++i) {
            uint256 word = withdrawals[i];
            if (uint16(word >> 64) != 0) revert MalformedEntry(i);
            uint16 assetId = uint16(word >> 240);
            address wallet = address(uint160(word >> 80));
            uint64 amount = uint64(word);
            if (amount == 0) revert InvalidAmount(0);
            _listed(assetId);
            _checkActive(wallet);
            Balance storage balance = _balances[wallet][assetId];
            if (balance.settled < amount) revert NegativeBalance(wallet, assetId);
            balance.settled -= amount;
            balance.claimable += amount;
            balance.claimableAt = uint64(block.timestamp + challengeWindow);
            emit WithdrawalQueued(wallet, assetId, amount);
        }
        return keccak256(abi.encodePacked(withdrawals));
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
