"""Models and training loops that more than one chapter uses.

- :mod:`~mlsd.models.notification_model` -- the model of Chapters 1, 3 and 4 (features and pipelines).
- :mod:`~mlsd.models.training`           -- a training loop's bookkeeping: the Adam update,
  minibatches, early stopping on validation (Chapters 5 and 11).
- :mod:`~mlsd.models.compression`        -- a served model made smaller and faster: distillation,
  a pipeline compiled to plain weights, float16, its size in bytes (Chapter 3).
"""
