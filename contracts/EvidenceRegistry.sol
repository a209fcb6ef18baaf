// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title Evidence registry: write-once anchors of hashes for votes and funds.
/// @notice An anchor says "account A published hash H as the evidence of kind K for subject R at
/// block time T". Subjects are numbered by the caller: a day for a ledger root, a topic for a vote
/// tally, a spend id for a maintenance-fund spend. A (kind, subject) slot is written once and never
/// overwritten, so a published day root or tally cannot be replaced later. Anyone may anchor;
/// verifiers check the anchoring account as well as the hash.
/// @dev Keyed by (kind, subject) rather than by hash alone because distinct subjects can share a
/// hash (two empty days have the same root). Custom errors carry names of
/// twin.services.reasons.Reason.
contract EvidenceRegistry {
    error AlreadyRegistered(); // this (kind, subject) already holds an anchor
    error UnknownRecord();     // no anchor for this (kind, subject) or index

    enum Kind { VoteTally, FundSpend, LedgerRoot }

    struct Anchor {
        bytes32 hash;
        address account;
        uint64 time;
        Kind kind;
        uint64 subject;
        uint64 blockNumber;
    }

    Anchor[] private anchors;
    /// @dev (kind, subject) key => index + 1 (0: empty).
    mapping(bytes32 => uint256) private slot;

    event Anchored(
        uint256 indexed index, Kind indexed kind, uint64 indexed subject, bytes32 hash, address account, uint64 time
    );

    /// @notice Anchor `hash` as the evidence of `kind` for `subject`; returns the anchor's index.
    function anchor(Kind kind, uint64 subject, bytes32 hash) external returns (uint256 index) {
        bytes32 key = _key(kind, subject);
        if (slot[key] != 0) revert AlreadyRegistered();
        index = anchors.length;
        anchors.push(Anchor({
            hash: hash, account: msg.sender, time: uint64(block.timestamp), kind: kind, subject: subject,
            blockNumber: uint64(block.number)
        }));
        slot[key] = index + 1;
        emit Anchored(index, kind, subject, hash, msg.sender, uint64(block.timestamp));
    }

    /// @notice The anchor of (kind, subject); reverts UnknownRecord when there is none.
    function lookup(Kind kind, uint64 subject) external view returns (Anchor memory) {
        uint256 i = slot[_key(kind, subject)];
        if (i == 0) revert UnknownRecord();
        return anchors[i - 1];
    }

    /// @notice Whether `hash` is what `account` anchored for (kind, subject).
    function verify(Kind kind, uint64 subject, bytes32 hash, address account) external view returns (bool) {
        uint256 i = slot[_key(kind, subject)];
        return i != 0 && anchors[i - 1].hash == hash && anchors[i - 1].account == account;
    }

    function count() external view returns (uint256) {
        return anchors.length;
    }

    /// @notice The anchor at `index` (anchoring order).
    function anchorAt(uint256 index) external view returns (Anchor memory) {
        if (index >= anchors.length) revert UnknownRecord();
        return anchors[index];
    }

    function _key(Kind kind, uint64 subject) private pure returns (bytes32) {
        return keccak256(abi.encode(kind, subject));
    }
}
