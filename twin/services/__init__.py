"""The community's services: ONE implementation of each rule, used by the twin and live.

Each service module (``ledger``, ``points``, ``timebank``, ``repair``,
``voting``) is batch-first; ``community.Services`` bundles them on one event
log and ``community.open_services`` opens them on a SQLite store.
"""
