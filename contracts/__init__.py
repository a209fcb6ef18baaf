"""The time bank and the evidence registry on an EVM, and their Python binding.

Solidity sources live beside this file (``TimeBank.sol``, ``EvidenceRegistry.sol``); their
compiled artifacts are committed under ``build/`` so nothing here needs a compiler at run time
(``python -m contracts.build`` rebuilds them from the npm ``solc`` pinned in ``package.json``).

* :mod:`contracts.chain` -- a connection to an EVM: the in-process py-evm by default, any
  JSON-RPC node by URL; accounts per member id, transactions with explicit gas, revert data
  decoded back to :class:`twin.services.reasons.Reason`.
* :mod:`contracts.timebank` -- ``TimeBankContract``, the contract behind the time-bank service's
  single-command API (same arguments, same refusals), and ``mirror_timebank`` to replay a
  service event log on chain.
* :mod:`contracts.evidence` -- ``merkle_root`` of a day's events, the registry binding, the
  ``Anchorer`` the engine uses at day end, and ``verify_run`` for a saved run.
"""
