// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestToken
/// @notice ERC-20 with configurable decimals and an open mint, for local chains only
/// (the stand-ins for AAPLX, AMZNX, TSLA.M, NVDA.M, USDC, WBTC, WETH).
contract TestToken is ERC20 {
    uint8 private immutable _decimals;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20(name_, symbol_) {
        _decimals = decimals_;
    }

    /// @inheritdoc ERC20
    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    /// @notice Anyone may mint: this token exists only on test chains.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
