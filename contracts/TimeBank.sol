// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title The community time bank (时间银行) on chain.
/// @notice The rules of twin/services/timebank.py, check for check: a provider records minutes of
/// service given to a receiver; the record stays pending until the receiver confirms it, and
/// confirming moves the minutes from the receiver to the provider. Staff confirm in the receiver's
/// place only when the deployment allows it (`staffConfirm`) and only as a second staff member:
/// the record was made by another staff member and the confirmer is no party to it. Balances are
/// signed and every change is a transfer between two accounts, so the sum over all accounts (the
/// endowment included) is always zero. Only the admin draws on the endowment (`endow`), and at most
/// `endowmentBudget` minutes in all: nothing is minted any other way.
/// @dev Each operation checks in the order fixed by the service's module docstring, so both refuse
/// with the same reason (the service's first checks, NotAnInteger and InvalidId, are the Python
/// binding's: the chain sees int64 values and addresses). Custom errors carry the names of
/// twin.services.reasons.Reason; integers that come from the service (role, household, minutes,
/// floor, kind) are int64 like its columns; minutes are called `amount` because `minutes` is a
/// Solidity keyword.
contract TimeBank {
    /// @notice Bounds that keep every balance far inside int64, as in the service.
    int64 public constant MAX_MINUTES = 1_000_000_000;
    int64 public constant MIN_FLOOR = -1_000_000_000_000;

    // --- refusals: names of twin.services.reasons.Reason -------------------------------------
    error InvalidAmount();
    error SameAccount();
    error InsufficientBalance();
    error UnknownMember();
    error AlreadyRegistered();
    error SelfService();
    error UnknownRecord();
    error NotPending();
    error NotDisputed();
    error Unauthorized();
    error PolicyForbids();
    error InvalidRole();
    error UnknownKind();
    error EndowmentExhausted();
    error ConfirmationRequired();

    // --- roles and records, numbered as twin.services.timebank.Role / RecordStatus ------------
    int64 public constant ROLE_NONE = -1;
    int64 public constant ROLE_MEMBER = 0;
    int64 public constant ROLE_COORDINATOR = 1;
    int64 public constant ROLE_ENDOWMENT = 2;
    int64 public constant ROLE_ADMIN = 3;
    int64 public constant ROLE_RETIRED = 4;   // a former admin: registered, takes part in nothing
    /// @notice Service kinds are twin.services.timebank.ServiceKind: 0..KIND_MAX.
    int64 public constant KIND_MAX = 5;

    enum Status { Pending, Confirmed, Cancelled, Disputed }

    struct Account {
        bool registered;   // storage reads zero for strangers, and role 0 is a plain member
        int8 role;
        int64 floor;       // the endowment's is minus its budget
        int64 household;   // -1: none
        int256 balance;
    }

    struct Record {
        address provider;
        int64 amount;
        Status status;
        bool receiverDisputed;   // the receiver raised its dispute (which submits it to mediation)
        address receiver;
        address recorder;        // address(0) when the provider recorded it (no third slot written)
    }

    /// @notice The admin; `rotateAdmin` hands the role on.
    address public admin;
    address public immutable endowment;
    /// @notice Floor given to a newly registered plain member (the policy's member_floor, <= 0).
    int64 public immutable memberFloor;
    /// @notice Whether members may give minutes to their own household.
    bool public immutable allowFamilyTransfer;
    /// @notice Minutes the endowment may issue in all (the policy's endowment_budget).
    int64 public immutable endowmentBudget;
    /// @notice Whether a second staff member may confirm in the receiver's place (the policy's staff_confirm).
    bool public immutable staffConfirm;

    mapping(address => Account) private accounts;
    address[] private memberList;
    Record[] private records;

    // --- events: one per accepted operation (named like twin.services.events.EventKind), plus
    // Transferred for every balance change so the books can be audited from events alone ----
    event MemberRegistered(address indexed by, address indexed member, int64 role, int64 household, int64 floor);
    event ServiceRecorded(
        uint256 indexed id, address indexed by, address indexed provider, address receiver,
        int64 amount, int64 kind, uint256 ref
    );
    event ServiceConfirmed(uint256 indexed id, address indexed by, int64 amount);
    event ServiceCancelled(uint256 indexed id, address indexed by);
    event ServiceDisputed(uint256 indexed id, address indexed by);
    event DisputeResolved(uint256 indexed id, address indexed by, bool upheld);
    event MemberFloorSet(address indexed by, address indexed member, int64 floor);
    event Endowed(address indexed by, address indexed member, int64 amount);
    event FamilyTransferred(address indexed by, address indexed to, int64 amount);
    event RoleRevoked(address indexed by, address indexed member, int64 role);
    event AdminRotated(address indexed by, address indexed newAdmin);
    event Transferred(address indexed from, address indexed to, int64 amount);

    /// @param endowment_ the endowment account (no floor; only the admin draws on it)
    /// @param memberFloor_ floor of newly registered plain members, <= 0
    /// @param allowFamilyTransfer_ whether family transfers are allowed
    /// @param endowmentBudget_ minutes the endowment may issue in all, 0..-MIN_FLOOR
    /// @param staffConfirm_ whether a second staff member may confirm in the receiver's place
    constructor(
        address endowment_, int64 memberFloor_, bool allowFamilyTransfer_, int64 endowmentBudget_, bool staffConfirm_
    ) {
        if (endowment_ == msg.sender || endowment_ == address(0)) revert SameAccount();
        if (memberFloor_ > 0 || memberFloor_ < MIN_FLOOR) revert InvalidAmount();
        if (endowmentBudget_ < 0 || endowmentBudget_ > -MIN_FLOOR) revert InvalidAmount();
        admin = msg.sender;
        endowment = endowment_;
        memberFloor = memberFloor_;
        allowFamilyTransfer = allowFamilyTransfer_;
        endowmentBudget = endowmentBudget_;
        staffConfirm = staffConfirm_;
        _enrol(msg.sender, msg.sender, int8(ROLE_ADMIN), -1, 0);
        _enrol(msg.sender, endowment_, int8(ROLE_ENDOWMENT), -1, -endowmentBudget_);
    }

    // ------------------------------------------------------------------ operations

    /// @notice Register `member` as a plain member or a coordinator. The admin registers both;
    /// a coordinator registers plain members.
    function register(address member, int64 role, int64 household) external {
        if (role < ROLE_NONE || role > ROLE_RETIRED) revert UnknownKind();
        if (role != ROLE_MEMBER && role != ROLE_COORDINATOR) revert InvalidRole();
        int64 byRole = roleOf(msg.sender);
        if (!(byRole == ROLE_ADMIN || (byRole == ROLE_COORDINATOR && role == ROLE_MEMBER))) revert Unauthorized();
        if (accounts[member].registered) revert AlreadyRegistered();
        _enrol(msg.sender, member, int8(role), household, role == ROLE_MEMBER ? memberFloor : int64(0));
    }

    /// @notice Record `amount` minutes of service (`kind`) given by `provider` to `receiver`; pending until
    /// confirmed. `ref` links the record to an off-chain id. Returns the new record's id.
    function record(address provider, address receiver, int64 amount, int64 kind, uint256 ref)
        external
        returns (uint256 id)
    {
        if (kind < 0 || kind > KIND_MAX) revert UnknownKind();
        if (!_isParty(provider) || !_isParty(receiver)) revert UnknownMember();
        if (msg.sender != provider && !_isStaff(msg.sender)) revert Unauthorized();
        if (provider == receiver) revert SelfService();
        if (amount <= 0 || amount > MAX_MINUTES) revert InvalidAmount();
        id = records.length;
        records.push(Record({
            provider: provider, amount: amount, status: Status.Pending, receiverDisputed: false, receiver: receiver,
            recorder: msg.sender == provider ? address(0) : msg.sender
        }));
        emit ServiceRecorded(id, msg.sender, provider, receiver, amount, kind, ref);
    }

    /// @notice The receiver confirms (or, where allowed, a second staff member): the minutes move
    /// from the receiver to the provider, within the receiver's floor.
    function confirm(uint256 id) external {
        Record storage r = _pending(id);
        if (msg.sender != r.receiver) {
            if (!_isStaff(msg.sender)) revert Unauthorized();
            if (!_secondStaff(r, msg.sender)) revert ConfirmationRequired();
        }
        _transfer(r.receiver, r.provider, r.amount);
        r.status = Status.Confirmed;
        emit ServiceConfirmed(id, msg.sender, r.amount);
    }

    /// @notice Either party, a coordinator or the admin withdraws a pending record.
    function cancel(uint256 id) external {
        Record storage r = _pending(id);
        if (!_isPartyOf(r, msg.sender) && !_isStaff(msg.sender)) revert Unauthorized();
        r.status = Status.Cancelled;
        emit ServiceCancelled(id, msg.sender);
    }

    /// @notice Either party contests a pending record; a coordinator or the admin resolves it.
    function dispute(uint256 id) external {
        Record storage r = _pending(id);
        if (!_isPartyOf(r, msg.sender)) revert Unauthorized();
        r.status = Status.Disputed;
        r.receiverDisputed = msg.sender == r.receiver;
        emit ServiceDisputed(id, msg.sender);
    }

    /// @notice A coordinator or the admin, neither a party nor the recorder, settles a dispute:
    /// upheld, the minutes move as on confirmation (a dispute the receiver did not raise needs a
    /// second staff member, as a confirmation does); rejected, the record is cancelled.
    function resolve(uint256 id, bool uphold) external {
        if (id >= records.length) revert UnknownRecord();
        Record storage r = records[id];
        if (r.status != Status.Disputed) revert NotDisputed();
        if (!_isStaff(msg.sender) || _isPartyOf(r, msg.sender) || msg.sender == _recorderOf(r)) revert Unauthorized();
        if (uphold && !r.receiverDisputed && !_secondStaff(r, msg.sender)) revert ConfirmationRequired();
        if (uphold) {
            _transfer(r.receiver, r.provider, r.amount);
            r.status = Status.Confirmed;
        } else {
            r.status = Status.Cancelled;
        }
        emit DisputeResolved(id, msg.sender, uphold);
    }

    /// @notice The admin sets a member's or coordinator's overdraft floor (<= 0).
    function setFloor(address member, int64 floor) external {
        if (msg.sender != admin) revert Unauthorized();
        if (!_isParty(member)) revert UnknownMember();
        if (floor > 0 || floor < MIN_FLOOR) revert InvalidAmount();
        accounts[member].floor = floor;
        emit MemberFloorSet(msg.sender, member, floor);
    }

    /// @notice The admin moves `amount` minutes from the endowment to a member or coordinator: the one way
    /// new minutes enter circulation, balanced by the endowment going negative, by at most its budget.
    function endow(address member, int64 amount) external {
        if (msg.sender != admin) revert Unauthorized();
        if (!_isParty(member)) revert UnknownMember();
        if (amount <= 0 || amount > MAX_MINUTES) revert InvalidAmount();
        Account storage e = accounts[endowment];
        if (e.balance - amount < e.floor) revert EndowmentExhausted();
        _transfer(endowment, member, amount);
        emit Endowed(msg.sender, member, amount);
    }

    /// @notice A member gives minutes to someone of their own household, when the policy allows.
    function familyTransfer(address to, int64 amount) external {
        int64 household = householdOf(msg.sender);
        if (!allowFamilyTransfer || household < 0 || household != householdOf(to) || msg.sender == to) {
            revert PolicyForbids();
        }
        if (amount <= 0 || amount > MAX_MINUTES) revert InvalidAmount();
        _transfer(msg.sender, to, amount);
        emit FamilyTransferred(msg.sender, to, amount);
    }

    /// @notice The admin takes the coordinator role from `member`, who stays a plain member
    /// (balance and floor kept).
    function revoke(address member) external {
        if (msg.sender != admin) revert Unauthorized();
        if (!_isParty(member)) revert UnknownMember();
        if (roleOf(member) != ROLE_COORDINATOR) revert InvalidRole();
        accounts[member].role = int8(ROLE_MEMBER);
        emit RoleRevoked(msg.sender, member, ROLE_MEMBER);
    }

    /// @notice The admin hands its role to `newAdmin`, an address never registered; the old admin
    /// is retired (registered, takes part in nothing, cannot be registered again).
    function rotateAdmin(address newAdmin) external {
        if (msg.sender != admin) revert Unauthorized();
        if (accounts[newAdmin].registered) revert AlreadyRegistered();
        accounts[msg.sender].role = int8(ROLE_RETIRED);
        admin = newAdmin;
        _enrol(msg.sender, newAdmin, int8(ROLE_ADMIN), -1, 0);
        emit AdminRotated(msg.sender, newAdmin);
    }

    // ------------------------------------------------------------------ queries

    /// @notice A registered account's balance (minutes, signed).
    function balanceOf(address member) external view returns (int256) {
        if (!accounts[member].registered) revert UnknownMember();
        return accounts[member].balance;
    }

    /// @notice Balances of many accounts in one call; strangers read 0.
    function balancesOf(address[] calldata members) external view returns (int256[] memory out) {
        out = new int256[](members.length);
        for (uint256 i = 0; i < members.length; i++) out[i] = accounts[members[i]].balance;
    }

    /// @notice Role as numbered by twin.services.timebank.Role (-1: not registered).
    function roleOf(address member) public view returns (int64) {
        Account storage a = accounts[member];
        return a.registered ? int64(a.role) : ROLE_NONE;
    }

    /// @notice Household of a registered account (-1: none or not registered).
    function householdOf(address member) public view returns (int64) {
        Account storage a = accounts[member];
        return a.registered ? a.household : int64(-1);
    }

    /// @notice Overdraft floor of a registered account; the endowment's is minus its budget.
    function floorOf(address member) external view returns (int256) {
        Account storage a = accounts[member];
        if (!a.registered) revert UnknownMember();
        return int256(a.floor);
    }

    function recordCount() external view returns (uint256) {
        return records.length;
    }

    function recordOf(uint256 id)
        external
        view
        returns (address provider, address receiver, int64 amount, Status status, address recorder)
    {
        if (id >= records.length) revert UnknownRecord();
        Record storage r = records[id];
        return (r.provider, r.receiver, r.amount, r.status, _recorderOf(r));
    }

    /// @notice Every registered account (admin and endowment first), for audits such as
    /// "the balances sum to zero".
    function memberCount() external view returns (uint256) {
        return memberList.length;
    }

    /// @notice Up to `count` registered accounts from position `start`, in registration order.
    function memberPage(uint256 start, uint256 count) external view returns (address[] memory page) {
        uint256 end = start + count > memberList.length ? memberList.length : start + count;
        page = new address[](end > start ? end - start : 0);
        for (uint256 i = 0; i < page.length; i++) page[i] = memberList[start + i];
    }

    // ------------------------------------------------------------------ internals

    function _enrol(address by, address member, int8 role, int64 household, int64 floor) private {
        accounts[member] = Account({registered: true, role: role, floor: floor, household: household, balance: 0});
        memberList.push(member);
        emit MemberRegistered(by, member, role, household, floor);
    }

    /// @dev The ledger's transfer check (twin/services/ledger.py): the source may not end below
    /// its floor. Checked arithmetic: an overflow reverts, it never wraps.
    function _transfer(address from, address to, int64 amount) private {
        if (from == to) revert SameAccount();
        Account storage src = accounts[from];
        if (src.balance - amount < src.floor) revert InsufficientBalance();
        src.balance -= amount;
        accounts[to].balance += amount;
        emit Transferred(from, to, amount);
    }

    function _pending(uint256 id) private view returns (Record storage r) {
        if (id >= records.length) revert UnknownRecord();
        r = records[id];
        if (r.status != Status.Pending) revert NotPending();
    }

    /// @dev Members and coordinators take part in exchanges; the admin and endowment do not.
    function _isParty(address who) private view returns (bool) {
        int64 role = roleOf(who);
        return role == ROLE_MEMBER || role == ROLE_COORDINATOR;
    }

    function _isStaff(address who) private view returns (bool) {
        int64 role = roleOf(who);
        return role == ROLE_COORDINATOR || role == ROLE_ADMIN;
    }

    function _isPartyOf(Record storage r, address who) private view returns (bool) {
        return who == r.provider || who == r.receiver;
    }

    function _recorderOf(Record storage r) private view returns (address) {
        return r.recorder == address(0) ? r.provider : r.recorder;
    }

    /// @dev Whether staff member `by` may pay `r` in its receiver's place: the deployment allows it,
    /// another staff member (still staff) recorded it, and `by` is no party to it.
    function _secondStaff(Record storage r, address by) private view returns (bool) {
        address recorder = _recorderOf(r);
        return staffConfirm && _isStaff(by) && _isStaff(recorder) && by != recorder && !_isPartyOf(r, by);
    }
}
