"""Member keys from encrypted keystores, for a time bank on a chain given by URL.

A keystore is the encrypted JSON file web3's eth-account writes (``Account.encrypt``; geth and
most wallets read and write the same format).  :class:`KeystoreSigner` keeps one file per
service member id, ``<directory>/<id>.json``, all under one password; addresses are read from
the files without the password, and a key is decrypted only when its member first signs.
Give it to :class:`contracts.chain.Chain` as ``signer=``.

``python -m contracts.keys new DIR ID [ID ...]`` creates fresh random keys for those ids
(the password from ``TWIN_KEYSTORE_PASSWORD``) and prints their addresses; existing files are
never overwritten.  The endowment's id needs a keystore too (its address is given to the
contract at deployment), though it never signs.
"""
import argparse
import json
import os
import sys
from pathlib import Path

from eth_account import Account
from web3 import Web3

from contracts.chain import MemberKeyMissing

#: Environment variable read for the keystores' password when none is passed.
PASSWORD_ENV = "TWIN_KEYSTORE_PASSWORD"


class _KeystoreAccount:
    """One member's account: the address now, the key when it first signs."""

    def __init__(self, path: Path, signer: "KeystoreSigner"):
        self.path, self._signer = path, signer
        self.keystore = json.loads(path.read_text())
        self.address = Web3.to_checksum_address(self.keystore["address"])
        self._account = None

    def sign_transaction(self, tx):
        if self._account is None:
            account = Account.from_key(Account.decrypt(self.keystore, self._signer.password()))
            if account.address != self.address:
                raise ValueError(f"{self.path} decrypts to {account.address}, not the address it names")
            self._account = account
        return self._account.sign_transaction(tx)


class KeystoreSigner:
    """``signer(member_id)`` for :class:`~contracts.chain.Chain`: keys in ``<directory>/<id>.json``.

    ``password`` (str or bytes) decrypts every file; None reads ``TWIN_KEYSTORE_PASSWORD`` when a
    key is first needed.
    """

    def __init__(self, directory, password: str | bytes | None = None):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise FileNotFoundError(f"no keystore folder {self.directory}")
        self._password = password

    def password(self) -> str | bytes:
        password = self._password if self._password is not None else os.environ.get(PASSWORD_ENV)
        if password is None:
            raise MemberKeyMissing(f"the keystores in {self.directory} need a password: pass password= "
                                   f"or set {PASSWORD_ENV}")
        return password

    def __call__(self, member_id: int) -> _KeystoreAccount:
        path = self.directory / f"{int(member_id)}.json"
        if not path.exists():
            raise MemberKeyMissing(f"no keystore for member {member_id} ({path})")
        return _KeystoreAccount(path, self)


def create_keystores(directory, member_ids, password: str | bytes, **encrypt_kwargs) -> dict[int, str]:
    """Fresh random keys for ``member_ids``, encrypted into ``<directory>/<id>.json``; returns their addresses.

    ``encrypt_kwargs`` go to ``Account.encrypt`` (``kdf``, ``iterations``); its defaults are
    the strong ones.  An existing file is never overwritten (FileExistsError).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    addresses = {}
    for member in map(int, member_ids):
        path = directory / f"{member}.json"
        if path.exists():
            raise FileExistsError(f"{path} exists; keys are never overwritten")
        account = Account.create()
        keystore = Account.encrypt(account.key, password, **encrypt_kwargs)
        with open(path, "x") as f:
            json.dump(keystore, f)
        path.chmod(0o600)
        addresses[member] = account.address
    return addresses


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.keys", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help=f"create keystores for member ids (password from {PASSWORD_ENV})")
    new.add_argument("directory")
    new.add_argument("ids", nargs="+", type=int)
    args = parser.parse_args(argv)
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        print(f"set {PASSWORD_ENV} to the keystores' password", file=sys.stderr)
        return 2
    for member, address in create_keystores(args.directory, args.ids, password).items():
        print(member, address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
