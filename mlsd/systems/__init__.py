"""Running a system.

- :mod:`~mlsd.systems.serving`  -- a validated prediction service, a background server, a load generator.
- :mod:`~mlsd.systems.queueing` -- Erlang C and a discrete-event simulation of replicas behind a queue.
"""
