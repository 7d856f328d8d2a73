// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title MockAggregator
/// @notice A Chainlink AggregatorV3Interface stand-in for local chains only: the owner
/// writes rounds (answer, startedAt, updatedAt), readers see them exactly as they read a
/// Chainlink feed (`latestRoundData`, `getRoundData`, `decimals`). The feed process's
/// oracle source is tested against it on the embedded EVM and on anvil.
contract MockAggregator {
    struct Round {
        int256 answer;
        uint256 startedAt;
        uint256 updatedAt;
        uint80 answeredInRound;
    }

    error NotOwner();
    error NoSuchRound(uint80 roundId);

    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    address public immutable owner;
    uint8 public immutable decimals;
    string public description;
    uint256 public constant version = 4;
    uint80 public latestRound;
    mapping(uint80 => Round) private _rounds;

    constructor(uint8 decimals_, string memory description_) {
        owner = msg.sender;
        decimals = decimals_;
        description = description_;
    }

    /// @notice Start the next round with `answer`, as if reported at `updatedAt`
    /// (`answeredInRound` below the new round id mimics a round carried over).
    function pushRound(int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) external {
        if (msg.sender != owner) revert NotOwner();
        latestRound += 1;
        _rounds[latestRound] = Round(answer, startedAt, updatedAt, answeredInRound);
        emit AnswerUpdated(answer, latestRound, updatedAt);
    }

    function getRoundData(uint80 roundId)
        public
        view
        returns (uint80, int256, uint256, uint256, uint80)
    {
        Round memory round = _rounds[roundId];
        if (round.updatedAt == 0) revert NoSuchRound(roundId);
        return (roundId, round.answer, round.startedAt, round.updatedAt, round.answeredInRound);
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        return getRoundData(latestRound);
    }
}
