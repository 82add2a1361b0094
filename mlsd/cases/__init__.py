"""Each case study's own plumbing: what its chapter uses but does not teach, one module per world
(chapters 12 and 13 have a package of four parts each: core, serving, monitoring and
exercises).

A chapter writes its lesson (the model or index it teaches) in the notebook; turning its tables
into arrays, its evaluation harness, its serving glue and its figures live here, tested in
``tests/test_case_<world>.py``. Code two chapters share goes to ``mlsd.evaluation``,
``mlsd.systems`` or ``mlsd.models`` instead.

- :mod:`~mlsd.cases.visual_search` -- Chapter 5: hand-made features, graded metrics, exact
  search and recall against it, the timing harness, duplicate groups, the replayed A/B test,
  index freshness and the drift monitor.
- :mod:`~mlsd.cases.street_view_blurring` -- Chapter 6: the image pyramid, cell maps and window
  scores, training windows, detections and their suppression, the matching-pursuit oracle,
  matched detections and operating points, blurring, the missed-blur reports and their
  scene bootstrap, the SQLite blur store and its re-blur job, the noise monitor and the
  monitoring figure.
- :mod:`~mlsd.cases.video_search` -- Chapter 7: bags of words as sparse matrices, per-query
  ranking metrics with the ideal over the whole corpus, candidate tables and rankings from
  scored pairs, the A/B analysis, appending uploads to the inverted index, the stage clock and
  the search app, the slang monitor's daily rates, bands and figure.
- :mod:`~mlsd.cases.harmful_content` -- Chapter 8: macro average precision and its weighted
  scorer for the bootstrap, the review queue's counts, the Bayes decision under a cost matrix
  and a review capacity, the scoring server and its SQLite review queue, the adversary monitor.
- :mod:`~mlsd.cases.video_recommendation` -- Chapter 9: the log as arrays at a cut-off, the
  ranker's feature rows and labels, the judge of lists, the feed server, the drift monitor,
  the retraining cadences and the feedback-loop simulation.
- :mod:`~mlsd.cases.event_recommendation` -- Chapter 10: the as-of join, AP@k and nDCG@k for
  every user at once, the nightly batch tables, the live registrations store, the k-d tree of
  open events and the feed app, the season's daily signals, alarms, weekly MAP and paired gain.
- :mod:`~mlsd.cases.ad_click_prediction` -- Chapter 11: the joined log and its hashed feature
  keys, the vocabulary and the serving model, the tree table and leaf features, the auction
  harness and its replayed A/B test, the feature-store batch job and request path, the click
  stream with delayed labels, the drift monitors and figures.
- :mod:`~mlsd.cases.similar_listings` -- Chapter 12: the booked listing's rank for every query
  at once, the oracle's and the clairvoyant's ranks, carousels and their replay against the
  sessions, the vector store, region indexes and the similar-listings app, the season's
  label-free signals, and the exercises' helpers.
- :mod:`~mlsd.cases.news_feed` -- Chapter 13: the log joined to its posts, point-in-time
  counters and the feature frame, nDCG@k with signed gains (per request and pooled), the feed
  stores and request path, the feed app, the clickbait wave's daily signals, and the
  exercises' helpers.
"""
