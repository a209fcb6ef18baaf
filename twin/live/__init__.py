"""The community's production server: the services over HTTP, on one durable store.

``twin serve`` runs :func:`twin.live.app.create_app`: a FastAPI application
whose routes are derived from the services' object layer (one router per
service, :mod:`twin.live.operations`), whose refusals are RFC 9457 problem
documents named after their :class:`~twin.services.reasons.Reason`
(:mod:`twin.live.problems`), and whose writes go through one group-commit
writer (:mod:`twin.live.committer`): what arrives within a short window is
applied in arrival order and committed in one transaction before any of it
is answered.

Speed without a second copy of any rule: :mod:`twin.live.fastpath` answers a
well-formed operation with the routes' own request models and hands anything
else to FastAPI; ``twin serve --fronts N`` puts N front processes
(:mod:`twin.live.front`) before the one writer (:mod:`twin.live.writer`), which
send it operations as compact frames (:mod:`twin.live.wire`) and relay the rest
(:mod:`twin.live.proxy`). Pages (:mod:`twin.live.pages`), Open311
(:mod:`twin.live.open311`), the source text's ``/api/repairs``
(:mod:`twin.live.legacy`), accounts (:mod:`twin.live.accounts`) and the MQTT
event feed (:mod:`twin.live.publisher`) sit on the same writer.
"""
