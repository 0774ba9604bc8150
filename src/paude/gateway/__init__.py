"""The model gateway: the agent's only way to the model API, holding its credentials.

It runs beside the proxy, never in the agent's container or pod. The agent
talks plain HTTP to it on the session's internal network; it checks where a
request comes from and where it goes (:mod:`paude.gateway.policy`), adds the
credential (:mod:`paude.gateway.tokens` mints Vertex access tokens) and
forwards to its one fixed upstream over TLS (:mod:`paude.gateway.app`).

Only :mod:`paude.gateway.policy` is imported by the host side of paude; the
other modules run in the gateway image and need aiohttp and google-auth.
"""
