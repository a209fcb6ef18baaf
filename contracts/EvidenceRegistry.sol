// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title Evidence registry: write-once anchors of hashes for votes and funds.
/// @notice An anchor says "account A published hash H as the evidence of kind K for subject R at
/// block time T". Subjects are numbered by the caller: a day for a ledger root, a topic for a vote
/// tally, a spend id for a maintenance-fund spend. Slots are keyed by writer: each account has its
/// own (kind, subject) slots, each written once and never overwritten, so a published day root or
/// tally cannot be replaced later, and no one can take an account's slot before it writes it.
/// Anyone may anchor; verifiers name the account they trust and read that account's anchors.
/// @dev Keyed by (account, kind, subject) rather than by hash alone because distinct subjects can
/// share a hash (two empty days have the same root). Custom errors carry names of
/// twin.services.reasons.Reason.
contract EvidenceRegistry {
    error AlreadyRegistered(); // this account already anchored this (kind, subject)
    error UnknownRecord();     // no anchor for this (account, kind, subject) or index

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
    /// @dev (account, kind, subject) key => index + 1 (0: empty).
    mapping(bytes32 => uint256) private slot;
    /// @dev Indices of each account's anchors, in anchoring order.
    mapping(address => uint256[]) private byAccount;

    event Anchored(
        uint256 indexed index, address indexed account, Kind indexed kind, uint64 subject, bytes32 hash, uint64 time
    );

    /// @notice Anchor `hash` as the sender's evidence of `kind` for `subject`; returns the anchor's index.
    function anchor(Kind kind, uint64 subject, bytes32 hash) external returns (uint256 index) {
        bytes32 key = _key(msg.sender, kind, subject);
        if (slot[key] != 0) revert AlreadyRegistered();
        index = anchors.length;
        anchors.push(Anchor({
            hash: hash, account: msg.sender, time: uint64(block.timestamp), kind: kind, subject: subject,
            blockNumber: uint64(block.number)
        }));
        slot[key] = index + 1;
        byAccount[msg.sender].push(index);
        emit Anchored(index, msg.sender, kind, subject, hash, uint64(block.timestamp));
    }

    /// @notice `account`'s anchor of (kind, subject); reverts UnknownRecord when there is none.
    function lookup(address account, Kind kind, uint64 subject) external view returns (Anchor memory) {
        uint256 i = slot[_key(account, kind, subject)];
        if (i == 0) revert UnknownRecord();
        return anchors[i - 1];
    }

    /// @notice Whether `hash` is what `account` anchored for (kind, subject).
    function verify(Kind kind, uint64 subject, bytes32 hash, address account) external view returns (bool) {
        uint256 i = slot[_key(account, kind, subject)];
        return i != 0 && anchors[i - 1].hash == hash;
    }

    /// @notice Anchors of every account.
    function count() external view returns (uint256) {
        return anchors.length;
    }

    /// @notice The anchor at `index` (anchoring order, every account).
    function anchorAt(uint256 index) external view returns (Anchor memory) {
        if (index >= anchors.length) revert UnknownRecord();
        return anchors[index];
    }

    /// @notice How many anchors `account` wrote.
    function countBy(address account) external view returns (uint256) {
        return byAccount[account].length;
    }

    /// @notice Up to `n` of `account`'s anchors from its `start`-th, in anchoring order.
    function anchorsBy(address account, uint256 start, uint256 n) external view returns (Anchor[] memory page) {
        uint256[] storage mine = byAccount[account];
        uint256 end = start + n > mine.length ? mine.length : start + n;
        page = new Anchor[](end > start ? end - start : 0);
        for (uint256 i = 0; i < page.length; i++) page[i] = anchors[mine[start + i]];
    }

    function _key(address account, Kind kind, uint64 subject) private pure returns (bytes32) {
        return keccak256(abi.encode(account, kind, subject));
    }
}
