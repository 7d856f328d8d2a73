// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IShareToken
/// @notice The share interface of rebasing tokens (xStocks / Backed `BackedAutoFeeTokenImplementation`,
/// Lido stETH): balances are shares times a multiplier the issuer changes (dividends reinvested,
/// splits, fees), and shares move without rounding through `transferShares` / `transferSharesFrom`.
/// The transfers declare no return value: Backed returns a bool and stETH the token amount, and a
/// caller that ignores the return data works with both (the vault checks `sharesOf` instead).
interface IShareToken {
    /// @notice The shares `account` holds (its balance before the multiplier).
    function sharesOf(address account) external view returns (uint256);

    /// @notice Move `shares` shares from the caller to `to`.
    function transferShares(address to, uint256 shares) external;

    /// @notice Move `shares` shares from `from` to `to`, spending the caller's allowance (in token units).
    function transferSharesFrom(address from, address to, uint256 shares) external;
}
