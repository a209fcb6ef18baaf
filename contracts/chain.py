"""A connection to an EVM, and the one way this package sends transactions.

``Chain()`` runs an in-process EVM (web3's ``EthereumTesterProvider`` on py-evm);
``Chain("http://host:port", private_key=..., signer=...)`` talks to any JSON-RPC node.  Either way:

* **The operator's account.**  ``chain.account`` (the configured key; on the embedded EVM its
  first funded test key) deploys contracts, so it is the time bank's first admin, and anchors
  evidence.  With a URL its key comes from ``private_key=`` or the environment variable
  ``TWIN_CHAIN_KEY``, never from a config file (configs are saved with runs).
* **Member keys.**  On the in-process EVM, member ids get keys derived from ``(key_seed, id)``
  with the seed printed below: deterministic, so a run and its audit agree on addresses, and
  *public* -- anyone can sign for such a member, which is harmless on a chain that lives and dies
  with one process.  On a chain given by URL derived keys are refused: member keys come from a
  ``signer`` the operator supplies (``signer(member_id)`` returns an account object with
  ``address`` and ``sign_transaction``), such as :class:`contracts.keys.KeystoreSigner`, which
  reads encrypted keystores.  Without one, a member who must sign raises
  :class:`MemberKeyMissing`.
* **Gas money.**  On the in-process EVM the operator tops member accounts up when they run low.
  On a URL it never does unless ``fund_members=True``: members pay their own gas, and a member
  without enough raises :class:`MemberUnfunded` before anything is sent.
* **Transactions** carry explicit gas, nonces counted here and fees read from the node now and
  then, because asking the node for each of these on every transaction halves throughput.
* **Refusals.**  A transaction that reverts is mined with status 0 on every node; its reason is
  recovered by replaying it as a call on the state before its block, and a custom error whose
  name is a :class:`~twin.services.reasons.Reason` is raised as that reason's exception (the
  same class the time-bank service raises).  Anything else raises :class:`TransactionReverted`.
"""
import ast
import json
import os
import re
from pathlib import Path

from eth_account import Account
from eth_utils import keccak
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.logs import DISCARD

from twin.services.reasons import Reason, raise_for

BUILD_DIR = Path(__file__).resolve().parent / "build"

#: Environment variable read for the private key when a URL is given without one.
PRIVATE_KEY_ENV = "TWIN_CHAIN_KEY"
#: Seed of the member keys on the in-process EVM; public, so a chain given by URL refuses it.
DEFAULT_KEY_SEED = b"community-twin member key v1"
#: Gas limit of a contract call; every operation of the contracts here uses well under half.
CALL_GAS = 300_000
#: Gas limit of a deployment (the time bank needs about 1.85 M).
DEPLOY_GAS = 3_000_000
#: Wei the paying account sends a member account whenever its gas money runs low.
FUND_WEI = 10**17
#: Transactions between two readings of the node's base fee.
FEE_REFRESH_EVERY = 64

_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_REASON_BY_SELECTOR = {keccak(text=f"{r.name}()")[:4]: r for r in Reason if r is not Reason.Accepted}
_ETH_TESTER_REVERT = re.compile(r"execution reverted: (b(['\"]).*\2)\Z", re.S)


class TransactionReverted(RuntimeError):
    """A transaction failed for a reason that is not a service refusal (out of gas, a panic ...)."""


class MemberKeyMissing(RuntimeError):
    """A member must sign, and the chain has no key for it (a URL without a signer for that id)."""


class MemberUnfunded(RuntimeError):
    """A member account cannot pay for its gas, and the operator is not asked to fund it."""


def load_artifact(name: str) -> dict:
    """The committed build artifact of contract ``name`` (see ``contracts/build.py``)."""
    path = BUILD_DIR / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no artifact {path}; run `python -m contracts.build`")
    return json.loads(path.read_text())


def reason_of_revert(data: bytes) -> Reason | None:
    """The :class:`Reason` whose custom error (no arguments) is ``data``, or None."""
    return _REASON_BY_SELECTOR.get(bytes(data[:4])) if len(data) == 4 else None


def revert_data(exc: Exception) -> bytes | None:
    """The raw revert data carried by an exception from ``eth_call``, if any."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    # web3's eth-tester provider keeps the revert data only as a bytes literal in the message
    found = _ETH_TESTER_REVERT.search(str(exc))
    return ast.literal_eval(found.group(1)) if found else None


def member_key(member_id: int, key_seed: bytes = DEFAULT_KEY_SEED) -> bytes:
    """The private key of service member ``member_id`` (any int64, negative ids included)."""
    key = keccak(key_seed + int(member_id).to_bytes(8, "big", signed=True))
    while not 0 < int.from_bytes(key, "big") < _SECP256K1_ORDER:  # astronomically rare
        key = keccak(key)
    return key


class Chain:
    """An EVM to deploy to and transact with.

    Parameters
    ----------
    url : str, optional
        A JSON-RPC node (``http://...``).  None: a fresh in-process EVM.
    private_key : str or bytes, optional
        The operator's account, which deploys and anchors.  Required with a URL (or set
        ``TWIN_CHAIN_KEY``) unless ``read_only``; the embedded EVM uses its first funded test key.
    signer : callable, optional
        ``signer(member_id)`` -> an account (``address``, ``sign_transaction``) for each member
        id: how member keys are found on a URL (see :class:`contracts.keys.KeystoreSigner`).
    key_seed : bytes, optional
        Seed of derived member keys (see :func:`member_key`); in-process EVM only.  Default
        there: :data:`DEFAULT_KEY_SEED` unless a ``signer`` is given.
    fund_members : bool, optional
        Whether the operator's account tops up member accounts' gas money.  Default: True on
        the in-process EVM, False on a URL.
    read_only : bool
        A connection that only reads (calls views): no key needed, no transaction possible.
    """

    def __init__(self, url: str | None = None, private_key=None, *, signer=None, key_seed: bytes | None = None,
                 fund_members: bool | None = None, read_only: bool = False):
        self.url = url
        if url is not None and key_seed is not None:
            public = " (the built-in seed is public: anyone could sign as any member)" \
                if key_seed == DEFAULT_KEY_SEED else ""
            raise ValueError(f"derived member keys are for the in-process EVM only{public}; on {url} give "
                             "signer= (member keys from encrypted keystores: contracts.keys.KeystoreSigner)")
        self.key_seed = key_seed if key_seed is not None or url is not None or signer is not None \
            else DEFAULT_KEY_SEED
        self.signer = signer
        self.fund_members = (url is None) if fund_members is None else bool(fund_members)
        if url is None:
            # py-evm loads only when the embedded EVM is used
            from eth_tester.backends.pyevm.main import get_default_account_keys

            self.w3 = Web3(EthereumTesterProvider())
            private_key = private_key or get_default_account_keys()[0].to_bytes()
        else:
            self.w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 60}))
            private_key = private_key or os.environ.get(PRIVATE_KEY_ENV)
            if not private_key and not read_only:
                raise ValueError(f"a chain URL needs the private key of a funded account: pass private_key= "
                                 f"or set {PRIVATE_KEY_ENV}")
        self.read_only = read_only
        self.account = None if read_only else Account.from_key(private_key)
        self.chain_id = self.w3.eth.chain_id
        self.transactions = 0
        self._nonce: dict[str, int] = {}
        self._wei: dict[str, int] = {}  # gas money per member account, as far as we know
        self._members: dict[int, object] = {}
        if not read_only:
            self._refresh_fees()

    def __repr__(self):
        who = "read-only" if self.account is None else f"account={self.account.address}"
        return f"Chain({self.url or 'embedded py-evm'}, chain_id={self.chain_id}, {who})"

    # ------------------------------------------------------------- accounts
    def member(self, member_id: int):
        """The account (key) of service member ``member_id``: from the signer, or derived (in-process EVM)."""
        member_id = int(member_id)
        if member_id not in self._members:
            if self.signer is not None:
                account = self.signer(member_id)
            elif self.key_seed is not None:
                account = Account.from_key(member_key(member_id, self.key_seed))
            else:
                raise MemberKeyMissing(f"no key for member {member_id} on {self!r}: give the chain a signer "
                                       "(contracts.keys.KeystoreSigner reads encrypted keystores)")
            self._members[member_id] = account
        return self._members[member_id]

    def fund(self, address: str, wei: int = FUND_WEI):
        """Send ``wei`` from the operator's account to ``address`` (what ``fund_members`` does by itself)."""
        receipt = self._sign_and_send(self.account, {"to": Web3.to_checksum_address(address), "value": int(wei),
                                                     "gas": 21_000})
        if receipt["status"] != 1:
            raise TransactionReverted(f"could not fund {address} from {self.account.address}")
        if address in self._wei:
            self._wei[address] += int(wei)
        return receipt

    # ------------------------------------------------------------ contracts
    def deploy(self, name: str, *args):
        """Deploy contract ``name`` from ``chain.account``; return the web3 contract."""
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = self.send(self.account, None, factory.constructor(*args).data_in_transaction, DEPLOY_GAS,
                            f"deploy {name}")
        return self.attach(name, receipt["contractAddress"])

    def attach(self, name: str, address: str):
        """Contract ``name`` already deployed at ``address``."""
        address = Web3.to_checksum_address(address)
        if self.w3.eth.get_code(address) in (b"", None):
            raise ValueError(f"no contract at {address} on {self!r}")
        return self.w3.eth.contract(address=address, abi=load_artifact(name)["abi"])

    def transact(self, sender, contract, function: str, args, what: str, gas: int = CALL_GAS):
        """Call ``function(*args)`` of ``contract`` in a transaction from ``sender``; return the receipt.

        A refusal raises the :class:`Reason`'s exception with ``what`` in its message.
        """
        return self.send(sender, contract.address, contract.encode_abi(function, args), gas, what)

    def call(self, contract, function: str, args=(), what: str = ""):
        """Call a view; a refusal raises the :class:`Reason`'s exception."""
        try:
            return getattr(contract.functions, function)(*args).call()
        except Exception as exc:
            reason = _refusal_in(exc)
            if reason is None:
                raise
        raise_for(reason, what or function)  # outside the handler: the refusal is the whole story

    @staticmethod
    def events(contract, event: str, receipt) -> list:
        """Decoded ``event`` logs of ``contract`` in ``receipt`` (their ``args``)."""
        return [log["args"] for log in getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD)
                if log["address"] == contract.address]

    # ---------------------------------------------------------- transactions
    def send(self, sender, to, data, gas: int, what: str):
        """Sign and send one transaction, wait for its receipt, decode a revert."""
        if self.account is None:
            raise RuntimeError(f"{what}: {self!r} only reads")
        if sender.address != self.account.address:
            self._ensure_gas_money(sender.address, gas)
        tx = {"data": data, "gas": gas, "value": 0} | ({"to": to} if to else {})
        receipt = self._sign_and_send(sender, tx)
        if sender.address != self.account.address:
            self._wei[sender.address] -= receipt["gasUsed"] * receipt["effectiveGasPrice"]
        if receipt["status"] != 1:
            self._explain_revert(sender.address, tx, receipt, what)
        return receipt

    def _sign_and_send(self, sender, tx: dict):
        if self._sent_since_fees >= FEE_REFRESH_EVERY:
            self._refresh_fees()
        address = sender.address
        if address not in self._nonce:
            self._nonce[address] = self.w3.eth.get_transaction_count(address, "pending")
        tx = {**tx, **self._fees, "nonce": self._nonce[address], "chainId": self.chain_id}
        try:
            tx_hash = self.w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
        except Exception:
            del self._nonce[address]  # the node may or may not have taken the nonce: ask it next time
            raise
        self._nonce[address] += 1
        self.transactions += 1
        self._sent_since_fees += 1
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.05)

    def _refresh_fees(self) -> None:
        block = self.w3.eth.get_block("latest")
        base = block.get("baseFeePerGas")
        if base is None:  # a node before EIP-1559
            self._fees = {"gasPrice": self.w3.eth.gas_price}
        else:
            tip = self.w3.eth.max_priority_fee
            # twice the base fee: room for it to rise until the next reading
            self._fees = {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}
        self._sent_since_fees = 0

    def _ensure_gas_money(self, address: str, gas: int) -> None:
        """Make sure ``address`` can afford ``gas`` at the fee cap: top it up, or refuse to send."""
        if address not in self._wei:
            self._wei[address] = self.w3.eth.get_balance(address)
        need = gas * self._fees.get("maxFeePerGas", self._fees.get("gasPrice"))
        if self._wei[address] >= need:
            return
        if self.fund_members:
            self.fund(address)   # counts the wei in
            return
        self._wei[address] = self.w3.eth.get_balance(address)   # someone may have funded it since
        if self._wei[address] < need:
            raise MemberUnfunded(f"{address} holds {self._wei[address]} wei, less than the {need} wei its "
                                 f"transaction may cost; fund it (the operator does not, unless fund_members=True)")

    def _explain_revert(self, sender: str, tx: dict, receipt, what: str):
        """Replay a failed transaction as a call on the state before its block and raise its reason."""
        try:
            self.w3.eth.call({**tx, "from": sender}, receipt["blockNumber"] - 1)
            detail = "the replay succeeded: another transaction in its block changed the state first"
        except Exception as exc:
            reason = _refusal_in(exc)
            detail = str(exc)
        else:
            reason = None
        if reason is not None:
            raise_for(reason, what)
        raise TransactionReverted(f"{what}: transaction {receipt['transactionHash'].to_0x_hex()} failed "
                                  f"(gas used {receipt['gasUsed']} of {tx['gas']}): {detail}")


def _refusal_in(exc: Exception) -> Reason | None:
    """The service refusal an ``eth_call`` exception carries, if it carries one."""
    data = revert_data(exc)
    return reason_of_revert(data) if data is not None else None
