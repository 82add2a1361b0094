"""Running a system.

- :mod:`~mlsd.systems.serving`  -- a validated prediction service, a background server, closed- and
  open-loop load generators.
- :mod:`~mlsd.systems.queueing` -- Erlang C (the mean wait, its tail, the p99 wait) and a
  discrete-event simulation of replicas behind a queue, with an autoscaler.
- :mod:`~mlsd.systems.rollout`  -- testing in production over real servers: a shadow deployment
  with mirrored traffic, a canary release that ramps and rolls back on a guardrail.
- :mod:`~mlsd.systems.caching`  -- a cache replayed over the requests a service sees: its hit rate.
- :mod:`~mlsd.systems.capacity` -- workers needed per request path at peak (Erlang C), as a table.
- :mod:`~mlsd.systems.reranking` -- the product's rules after the ranker: a cap per group, blocked
  items, a boost, demotion, lists cut to their first kept items.
- :mod:`~mlsd.systems.feature_store` -- a timed SQLite store: tables written whole by a batch
  job, read by key (a point lookup, a key-prefix scan, the rows of a list of keys) at request time;
  its base, the SQLite connection every store of the book opens, closes and uses in a ``with``.
"""
