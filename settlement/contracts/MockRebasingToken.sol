// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

/// @title MockRebasingToken
/// @notice A rebasing stock token for local chains, modelled on xStocks (Backed's
/// `BackedAutoFeeTokenImplementation`): each holder has shares, `balanceOf` is shares times
/// `multiplier` (1e18 precision), and the issuer changes the multiplier to reinvest dividends
/// or apply a split. As in Backed, every conversion rounds down: `transfer(amount)` moves
/// `amount * 1e18 / multiplier` shares, and `transferSharesFrom` spends
/// `shares * multiplier / 1e18` of allowance. Anyone may mint and set the multiplier.
contract MockRebasingToken is IERC20Metadata, IERC20Errors {
    uint256 private constant ONE = 1e18;

    string public name;
    string public symbol;
    uint8 public immutable decimals;

    /// @notice Token units per share, 1e18 precision.
    uint256 public multiplier = ONE;

    uint256 private _totalShares;
    mapping(address account => uint256) private _shares;
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    /// @notice `value` shares moved from `from` to `to` (alongside the ERC-20 Transfer in token units).
    event TransferShares(address indexed from, address indexed to, uint256 value);
    /// @notice The multiplier is now `value`: every balance rebased.
    event MultiplierUpdated(uint256 value);

    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
    }

    /// @notice Rebase every balance: token units per share become `newMultiplier` (1e18 precision).
    function setMultiplier(uint256 newMultiplier) external {
        require(newMultiplier != 0, "multiplier must be positive");
        multiplier = newMultiplier;
        emit MultiplierUpdated(newMultiplier);
    }

    /// @notice Create `shares` shares for `to`.
    function mintShares(address to, uint256 shares) external {
        if (to == address(0)) revert ERC20InvalidReceiver(to);
        _totalShares += shares;
        _shares[to] += shares;
        emit TransferShares(address(0), to, shares);
        emit Transfer(address(0), to, getUnderlyingAmountByShares(shares));
    }

    function totalSupply() external view returns (uint256) {
        return getUnderlyingAmountByShares(_totalShares);
    }

    function balanceOf(address account) external view returns (uint256) {
        return getUnderlyingAmountByShares(_shares[account]);
    }

    /// @notice The shares `account` holds.
    function sharesOf(address account) external view returns (uint256) {
        return _shares[account];
    }

    /// @notice Shares worth `amount` token units now, rounded down.
    function getSharesByUnderlyingAmount(uint256 amount) public view returns (uint256) {
        return amount * ONE / multiplier;
    }

    /// @notice Token units `shares` shares are worth now, rounded down.
    function getUnderlyingAmountByShares(uint256 shares) public view returns (uint256) {
        return shares * multiplier / ONE;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, getSharesByUnderlyingAmount(amount), amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        _spend(from, amount);
        _move(from, to, getSharesByUnderlyingAmount(amount), amount);
        return true;
    }

    /// @notice Move `shares` shares from the caller to `to`.
    function transferShares(address to, uint256 shares) external returns (bool) {
        _move(msg.sender, to, shares, getUnderlyingAmountByShares(shares));
        return true;
    }

    /// @notice Move `shares` shares from `from` to `to`; spends their value in token units of allowance.
    function transferSharesFrom(address from, address to, uint256 shares) external returns (bool) {
        uint256 amount = getUnderlyingAmountByShares(shares);
        _spend(from, amount);
        _move(from, to, shares, amount);
        return true;
    }

    function _spend(address owner, uint256 amount) private {
        uint256 allowed = allowance[owner][msg.sender];
        if (allowed < amount) revert ERC20InsufficientAllowance(msg.sender, allowed, amount);
        if (allowed != type(uint256).max) allowance[owner][msg.sender] = allowed - amount;
    }

    function _move(address from, address to, uint256 shares, uint256 amount) private {
        if (to == address(0)) revert ERC20InvalidReceiver(to);
        uint256 held = _shares[from];
        if (held < shares) revert ERC20InsufficientBalance(from, getUnderlyingAmountByShares(held), amount);
        _shares[from] = held - shares;
        _shares[to] += shares;
        emit TransferShares(from, to, shares);
        emit Transfer(from, to, amount);
    }
}
