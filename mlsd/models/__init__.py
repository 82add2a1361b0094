"""Models and training loops that more than one chapter uses.

- :mod:`~mlsd.models.notification_model` -- the model of Chapters 1, 3 and 4 (features and pipelines).
"""
