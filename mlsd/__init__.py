"""mlsd: the shared, tested machinery of the executable ML System Design book.

What a chapter *teaches* by writing it (its model, its index, its trick) stays in the chapter.
Everything else lives here, with docstrings, argument checks and unit tests, in six groups:

- :mod:`mlsd.evaluation` -- measuring a system: offline metrics, ranked lists and ranking
  metrics over score matrices, A/B tests and bootstraps, drift statistics, the headline.
- :mod:`mlsd.systems`    -- running a system: the prediction service and load generator, the
  queue simulation, capacity at peak, the timed feature store, re-ranking rules.
- :mod:`mlsd.models`     -- models and training loops more than one chapter uses.
- :mod:`mlsd.cases`      -- each case study's own plumbing (what its chapter uses but does
  not teach), one module per world.
- :mod:`mlsd.datasets`   -- the synthetic worlds: generate, write, checksum and load ``data/``.
- :mod:`mlsd.book`       -- the book's own machinery: seeding, plot style, diagrams, glue,
  exercises.

and :mod:`mlsd.numeric`, the one numeric configuration every chapter runs under.
"""

__version__ = "0.1.0"
