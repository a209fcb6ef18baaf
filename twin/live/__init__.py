"""The community's production server: the services over HTTP, on one durable store.

``twin serve`` runs :func:`twin.live.app.create_app`: a FastAPI application
whose routes are derived from the services' object layer (one router per
service, :mod:`twin.live.operations`), whose refusals are RFC 9457 problem
documents named after their :class:`~twin.services.reasons.Reason`
(:mod:`twin.live.problems`), and whose writes go through one group-commit
writer (:mod:`twin.live.committer`): what arrives within a short window is
applied in arrival order and committed in one transaction before any of it
is answered.
"""
