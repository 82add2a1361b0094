"""mlsd: the shared, tested machinery of the executable ML System Design book.

What a chapter *teaches* (its features, its model, its trick) stays in the chapter.
What several chapters share lives here, with docstrings, argument checks and unit tests:

- :mod:`mlsd.numeric`   -- the one numeric configuration every chapter runs under (SIMD kernels).
- :mod:`mlsd.metrics`   -- every offline metric the book uses, each defined in its docstring.
- :mod:`mlsd.ranking`   -- ranked lists cut from scores, ties broken the same way on every CPU.
- :mod:`mlsd.seeding`   -- one seed per notebook, independent named random streams.
- :mod:`mlsd.datasets`  -- the synthetic worlds: generate, write, checksum and load ``data/``.
- :mod:`mlsd.diagrams`  -- system diagrams (offline vs online world) from a small spec.
- :mod:`mlsd.plotting`  -- the book's one matplotlib style, set by an explicit call.
- :mod:`mlsd.headline`  -- the headline metric a chapter glues for ``make bench``.
- :mod:`mlsd.serving`   -- a validated prediction service, a background server, a load generator.
- :mod:`mlsd.queueing`  -- Erlang C and a discrete-event simulation of replicas behind a queue.
- :mod:`mlsd.drift`     -- population stability index, the KS test, scoring drift alarms.
- :mod:`mlsd.experiments` -- A/B test sizing and analysis, A/A and peeking simulations.
- :mod:`mlsd.notification_model` -- the model of Chapters 1, 3 and 4 (features and pipelines).
- :mod:`mlsd.book`      -- helpers for the notebooks themselves (showing shared source code).
"""

__version__ = "0.1.0"
