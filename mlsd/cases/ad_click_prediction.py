"""Chapter 11's plumbing: what the ad click chapter runs but does not teach by writing it.

The chapter teaches feature crosses and the hashing trick, the factorization machine, the
correction for negative downsampling and the comparison of ways to keep a model fresh. What
turns the world's tables into those lessons lives here, tested in
``tests/test_case_ad_click_prediction.py``:

- **features**: :func:`join_impressions` (one row per impression with every observed column),
  the 64-bit keys of single fields and crosses (:func:`key_parts`, :func:`feature_keys`),
  :class:`Vocabulary` (keys seen in training -> columns), :func:`hashed_design` (the hashing
  trick), :class:`CTRModel` (keys -> vocabulary -> logistic regression, frames in and
  probabilities out), the simple baselines' :func:`rate_baseline` and the chapter's metrics
  (:func:`ctr_scores`, :func:`unit_log_loss`);
- **trees**: :class:`TreeTable` (the dense table gradient boosting needs) and
  :class:`LeafFeatures` (each row's leaves in boosted trees, one-hot, beside a sparse design);
- **evaluation**: :func:`compare` (the offline table: metrics, lift shares, paired gaps);
- **calibration**: :func:`calibration_of` (ECE, log loss, predicted over observed),
  :func:`calibration_table`, :func:`recalibrate` (Platt and isotonic, fitted on one week,
  applied to the next) and :func:`recalibrated_scores`;
- **the auction**: :func:`build_auction` (requests, eligible candidates, bids, the hidden true
  probabilities) and :func:`replay_ab` (simulated traffic replaying the scored requests);
- **serving**: :func:`write_feature_store` (the batch job), :func:`score_request` (the request
  path) and :func:`serve_sample` (served against offline scores, timed per stage);
- **continual learning**: :class:`ClickStream` (the log as an hourly stream with delayed clicks,
  and the three ways of labelling an hour's batch), :func:`stream_learner` (predict an hour,
  then learn from it; :func:`incremental` sets up the SGD learner), :func:`daily_retrain` (the
  nightly job), :func:`excess_log_loss` (over the oracle, day by day) and
  :func:`missing_clicks`;
- **drift**: :func:`daily_monitors`; and the figures (``plot_*``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, special
from sklearn import config_context
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder
from threadpoolctl import threadpool_limits

from mlsd.datasets import ad_click_prediction as acp
from mlsd.evaluation import metrics
from mlsd.evaluation.drift import psi_categorical

__all__ = [
    "SINGLE", "PLAIN", "CATEGORIES", "AD_COLUMNS", "HOUR", "DAY",
    "join_impressions", "ad_table", "value_hashes", "mix", "key_parts", "join_parts",
    "feature_keys", "stack_keys", "Vocabulary", "hashed_design", "ctr_scores",
    "unit_log_loss", "rate_baseline", "CTRModel", "TreeTable", "LeafFeatures", "calibration_of",
    "calibration_table", "compare", "recalibrate", "recalibrated_scores", "incremental",
    "excess_log_loss",
    "Auction", "build_auction", "replay_ab", "write_feature_store", "score_request",
    "serve_sample", "latency_table", "ClickStream", "stream_learner", "daily_retrain",
    "missing_clicks", "daily_monitors", "plot_log_overview", "plot_monitors", "plot_reliability",
    "plot_policies", "plot_delays",
]

#: the single-valued fields a model may use (the interests are a list per user: see key_parts)
SINGLE = ["age_band", "country", "device", "placement", "hour", "day_of_week", "category",
          "format", "advertiser_id", "campaign_id", "creative_id"]
#: every field without crosses: the one-hot design
PLAIN = [*SINGLE, "interest"]
#: the low-cardinality fields trees take as categories
CATEGORIES = SINGLE[:-1]
#: the ads table of the feature store
AD_COLUMNS = ["creative_id", "campaign_id", "advertiser_id", "category", "format", "targeting",
              "advertiser_ctr_7d"]
HOUR, DAY = 3600, 86_400


# --------------------------------------------------------------------------- tables


def ad_table(observed) -> pd.DataFrame:
    """Every creative with its campaign's advertiser and targeting and the advertiser's category,
    indexed by ``creative_id`` (sorted)."""
    return (observed["creatives"]
            .merge(observed["campaigns"][["campaign_id", "advertiser_id", "targeting"]],
                   on="campaign_id")
            .merge(observed["advertisers"][["advertiser_id", "category"]], on="advertiser_id")
            .set_index("creative_id").sort_index())


def join_impressions(observed, impressions: pd.DataFrame) -> pd.DataFrame:
    """One row per impression with every observed column a model may use.

    ``observed`` is the world's observed tables (``world.observed``); ``impressions`` needs
    ``day``, ``second``, ``user_id`` and ``creative_id``. Adds the ad's columns, the user's, the
    local ``hour`` and the ``day_of_week``; the row order and index of ``impressions`` are kept.
    """
    ads = (observed["creatives"]
           .merge(observed["campaigns"][["campaign_id", "advertiser_id", "targeting"]],
                  on="campaign_id")
           .merge(observed["advertisers"][["advertiser_id", "category"]], on="advertiser_id"))
    frame = (impressions.merge(ads, on="creative_id", how="left")
             .merge(observed["users"], on="user_id", how="left"))
    frame["hour"] = frame["second"] // 3600
    frame["day_of_week"] = np.array(acp.DAYS_OF_WEEK)[frame["day"] % 7]
    return frame


# --------------------------------------------------------------------------- feature keys


def value_hashes(values) -> np.ndarray:
    """A stable 64-bit hash per value: equal values get equal hashes in any frame.

    Only the distinct values are hashed (as text), then spread back to the rows.
    """
    codes, uniques = pd.factorize(np.asarray(values))
    return pd.util.hash_array(np.asarray(uniques).astype(str))[codes]


def mix(*hashes) -> np.ndarray:
    """One 64-bit key (int64) from several arrays of hashes.

    The running key is hashed with each part in turn, so ``mix(field, a, b)`` is the key
    of the cross "field = (a, b)".
    """
    if not hashes:
        raise ValueError("mix needs at least one array of hashes")
    key = np.zeros(len(hashes[0]), dtype=np.uint64)
    for h in hashes:
        key = pd.util.hash_array(key ^ h)
    return key.view(np.int64)


def key_parts(frame: pd.DataFrame, crosses) -> dict:
    """``{field: (rows, keys)}``: one key per row for each single field, one per declared interest,
    and one per cross in ``crosses`` (pairs of field names; ``"interest"`` may be the first).

    A key hashes the field's name with the value (or the pair of values), so "country = br" and
    "age band = br" differ, and it is the same in every frame: training, validation, a stream, a
    served request. The interests of a user ("sports;travel") give one key each, and a cross with
    the interest one key per interest.
    """
    n = len(frame)
    interests = frame["interests"].str.split(";").explode().to_numpy()  # consecutive per row
    interest_rows = np.repeat(np.arange(n), frame["interests"].str.count(";").to_numpy() + 1)
    value = {col: value_hashes(frame[col]) for col in SINGLE}
    value["interest"] = value_hashes(interests)
    field = {name: value_hashes([name])[0] for name in [*PLAIN, *map(str, crosses)]}
    index = np.arange(n)  # shared by every single-valued field
    parts = {col: (index, mix(np.full(n, field[col]), value[col])) for col in SINGLE}
    parts["interest"] = (interest_rows,
                         mix(np.full(len(interests), field["interest"]), value["interest"]))
    for a, b in crosses:
        on = interest_rows if a == "interest" else index
        left = value[a] if a == "interest" else value[a][on]
        parts[(a, b)] = (on, mix(np.full(len(on), field[str((a, b))]), left, value[b][on]))
    return parts


def join_parts(parts: dict, fields=None) -> tuple[np.ndarray, np.ndarray]:
    """The (rows, keys) of the given fields of ``parts`` (default: all), concatenated."""
    chosen = [parts[f] for f in (parts if fields is None else fields)]
    return (np.concatenate([rows for rows, _ in chosen]),
            np.concatenate([keys for _, keys in chosen]))


def feature_keys(frame: pd.DataFrame, crosses) -> tuple[np.ndarray, np.ndarray]:
    """All (row, key) pairs of a frame, single fields, interests and ``crosses``."""
    return join_parts(key_parts(frame, crosses))


def stack_keys(first, second, first_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The (rows, keys) of two frames stacked one above the other (the second's rows shifted)."""
    return np.r_[first[0], second[0] + first_rows], np.r_[first[1], second[1]]


class Vocabulary:
    """Keys seen in training -> columns (sorted keys); an unseen key gets no column."""

    def __init__(self, keys):
        self.keys = np.unique(keys)

    def design(self, rows, keys, n_rows: int) -> sparse.csr_matrix:
        """The 0/1 design matrix (``n_rows`` x vocabulary size) of (row, key) pairs."""
        col = np.searchsorted(self.keys, keys).clip(max=len(self.keys) - 1)
        known = self.keys[col] == keys
        return sparse.csr_matrix((np.ones(known.sum()), (rows[known], col[known])),
                                 shape=(n_rows, len(self.keys)))


def hashed_design(rows, keys, n_rows: int, bits: int) -> sparse.csr_matrix:
    """The hashing trick: column = hash(key) mod 2^bits, no vocabulary.

    The key is hashed once more so that buckets do not follow the keys' order; two keys
    in one column share its weight (a collision).
    """
    col = (pd.util.hash_array(keys) % (1 << bits)).astype(np.int64)
    return sparse.csr_matrix((np.ones(len(col)), (rows, col)),
                             shape=(n_rows, 1 << bits))


# --------------------------------------------------------------------------- metrics, baselines


def ctr_scores(y_true, p) -> dict:
    """The chapter's metrics: log loss, NCE, ROC-AUC, PR-AUC and the ECE on 20 equal-mass bins."""
    return {"log loss": metrics.log_loss(y_true, p),
            "NCE": metrics.normalized_cross_entropy(y_true, p),
            "ROC-AUC": metrics.roc_auc(y_true, p), "PR-AUC": metrics.average_precision(y_true, p),
            "ECE": metrics.expected_calibration_error(y_true, p, n_bins=20, strategy="quantile")}


def unit_log_loss(y_true, p) -> np.ndarray:
    """Each impression's log loss (their mean is the log loss): for paired comparisons."""
    y_true, p = np.asarray(y_true), np.asarray(p, dtype=float)
    if y_true.shape != p.shape:
        raise ValueError(f"y_true and p have different shapes: {y_true.shape} and {p.shape}")
    return -np.where(y_true == 1, np.log(p), np.log1p(-p))


def rate_baseline(fit: pd.DataFrame, scored: pd.DataFrame, column: str, m: float) -> np.ndarray:
    """The click rate of each value of ``column`` in ``fit``, shrunk towards the overall rate
    by ``m`` pseudo-impressions, for the rows of ``scored`` (the overall rate for a value ``fit``
    never saw)."""
    if m < 0:
        raise ValueError(f"m must be >= 0, got {m}")
    counts = fit.groupby(column)["clicked"].agg(["sum", "count"])
    rate = (counts["sum"] + m * fit["clicked"].mean()) / (counts["count"] + m)
    return scored[column].map(rate).fillna(fit["clicked"].mean()).to_numpy()


class CTRModel:
    """Feature keys -> vocabulary design -> logistic regression: joined impressions in, P(click)
    out. The object the calibration, serving and continual-learning sections use."""

    def __init__(self, C: float, crosses):
        self.C, self.crosses = C, tuple(crosses)

    def fit(self, frame: pd.DataFrame, keys=None):
        """``keys``: the frame's ``feature_keys`` if they are already computed."""
        rows, keys = feature_keys(frame, self.crosses) if keys is None else keys
        self.vocabulary = Vocabulary(keys)
        X = self.vocabulary.design(rows, keys, len(frame))
        self.model = LogisticRegression(C=self.C, max_iter=500).fit(X, frame["clicked"].to_numpy())
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        rows, keys = feature_keys(frame, self.crosses)
        return self.model.predict_proba(self.vocabulary.design(rows, keys, len(frame)))[:, 1]


# --------------------------------------------------------------------------- trees


def _interest_columns(frame: pd.DataFrame) -> pd.DataFrame:
    combos, uniques = pd.factorize(frame["interests"])  # few distinct combinations
    table = np.array([[i in combo.split(";") for i in acp.INTERESTS] for combo in uniques],
                     dtype=float)
    return pd.DataFrame(table[combos], columns=[f"likes {i}" for i in acp.INTERESTS],
                        index=frame.index)


class TreeTable:
    """Joined frame -> dense table for trees: ordinal categories, one 0/1 column per interest,
    and the creative's click rate, target-encoded with 5-fold cross-fitting on the training
    frame (so that a row's own click never enters its encoding)."""

    def __init__(self, frame: pd.DataFrame, seed: int):
        self.ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
        self.ordinal.fit(frame[CATEGORIES].astype(str))
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        self.target = TargetEncoder(target_type="binary", cv=folds)
        creative = frame[["creative_id"]].astype(str)
        self.train_creative = self.target.fit_transform(creative, frame["clicked"])[:, 0]

    def table(self, frame: pd.DataFrame, fitting: bool = False) -> pd.DataFrame:
        """The table of ``frame``; ``fitting=True`` for the training frame (cross-fitted rates)."""
        out = pd.DataFrame(self.ordinal.transform(frame[CATEGORIES].astype(str)),
                           columns=CATEGORIES, index=frame.index)
        out["creative click rate"] = (
            self.train_creative if fitting
            else self.target.transform(frame[["creative_id"]].astype(str))[:, 0])
        return pd.concat([out, _interest_columns(frame)], axis=1)


class LeafFeatures:
    """Boosted trees as a feature transform (He et al. 2014): each row -> the leaf each tree
    sends it to, one-hot, stacked beside a sparse design.

    The trees (``n_estimators`` of depth ``max_depth``) are fitted on ``sample`` rows of
    ``table`` (missing values as -1); the one-hot encoder on the leaves of every row.
    """

    def __init__(self, table: pd.DataFrame, y, sample, seed: int, n_estimators=40, max_depth=3,
                 learning_rate=0.2):
        self.trees = GradientBoostingClassifier(n_estimators=n_estimators, max_depth=max_depth,
                                                learning_rate=learning_rate, random_state=seed)
        self.trees.fit(table.fillna(-1).to_numpy()[sample], np.asarray(y)[sample])
        self.encoder = OneHotEncoder(handle_unknown="ignore").fit(self.leaves(table))

    def leaves(self, table: pd.DataFrame) -> np.ndarray:
        """The leaf each tree sends each row to: one categorical column per tree."""
        return self.trees.apply(table.fillna(-1).to_numpy())[:, :, 0]

    def with_design(self, table: pd.DataFrame, design) -> sparse.csr_matrix:
        """The one-hot leaves of ``table``'s rows, then the columns of ``design``."""
        return sparse.hstack([self.encoder.transform(self.leaves(table)), design]).tocsr()


# --------------------------------------------------------------------------- calibration


def calibration_of(y_true, p) -> dict:
    """ECE (20 equal-mass bins), log loss, and the mean prediction over the observed rate."""
    y_true, p = np.asarray(y_true), np.asarray(p)
    return {"ECE": metrics.expected_calibration_error(y_true, p, n_bins=20, strategy="quantile"),
            "log loss": metrics.log_loss(y_true, p),
            "mean predicted / observed": p.mean() / y_true.mean()}


def recalibrated_scores(p_valid, y_valid, p_test, y_test) -> dict:
    """ECE (20 equal-mass bins) and log loss on the test labels of :func:`recalibrate`'s three
    versions of ``p_test``: ``{"ECE, as trained": ..., "log loss, isotonic": ...}``."""
    repaired = recalibrate(p_valid, y_valid, p_test)
    return {**{f"ECE, {how}": metrics.expected_calibration_error(y_test, q, n_bins=20,
                                                                  strategy="quantile")
               for how, q in repaired.items()},
            **{f"log loss, {how}": metrics.log_loss(y_test, q) for how, q in repaired.items()}}


def calibration_table(labels: dict, predictions: dict) -> pd.DataFrame:
    """:func:`calibration_of` for each place and variant: ``labels[place]`` are the labels,
    ``predictions[place][variant]`` the predictions. One row per variant, columns
    (place, metric)."""
    variants = list(next(iter(predictions.values())))
    return pd.DataFrame({name: {
        (place, metric): value for place, by_name in predictions.items()
        for metric, value in calibration_of(labels[place], by_name[name]).items()}
        for name in variants}).T


def compare(y_true, predictions: dict, baseline: str, oracle: str, reference: str):
    """The offline table: :func:`ctr_scores` of every system, the share of the achievable lift
    (baseline -> oracle) each captures in log loss (``LL share``) and in ROC-AUC (``AUC
    share``), and its log loss minus the ``reference``'s, impression by impression (``Δ vs
    final``, the paired mean, and ``± 95%``, its 95% half-width). The column names are short so
    that the table fits the book's text column. Returns the table and each system's
    per-impression log losses."""
    from mlsd.evaluation.headline import lift_share

    losses = {name: unit_log_loss(y_true, p) for name, p in predictions.items()}
    table = pd.DataFrame({name: ctr_scores(y_true, p) for name, p in predictions.items()}).T
    for metric, column in (("log loss", "LL share"), ("ROC-AUC", "AUC share")):
        low, high = table.loc[baseline, metric], table.loc[oracle, metric]
        table[column] = [lift_share(low, v, high) for v in table[metric]]
    gap = {name: loss - losses[reference] for name, loss in losses.items()}  # paired
    table["Δ vs final"] = [d.mean() for d in gap.values()]
    table["± 95%"] = [1.96 * d.std(ddof=1) / np.sqrt(d.size) for d in gap.values()]
    return table, losses


def recalibrate(p_valid, y_valid, p_test) -> dict:
    """``{"as trained", "Platt", "isotonic"}`` -> probabilities for ``p_test``, both repairs
    fitted on (``p_valid``, ``y_valid``): Platt scaling is a logistic regression on the log-odds,
    isotonic regression a monotone step function (clipped to [1e-6, 1 - 1e-6])."""
    def log_odds(p):
        return (np.log(p) - np.log1p(-p)).reshape(-1, 1)

    platt = LogisticRegression().fit(log_odds(p_valid), y_valid)
    isotonic = IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 - 1e-6)
    isotonic.fit(p_valid, y_valid)
    return {"as trained": p_test, "Platt": platt.predict_proba(log_odds(p_test))[:, 1],
            "isotonic": isotonic.predict(p_test)}


# --------------------------------------------------------------------------- the auction


@dataclass
class Auction:
    """Scored requests with their candidates: matrices are (requests x candidates)."""

    requests: pd.DataFrame     #: day, second, user_id, device, placement
    candidates: np.ndarray     #: creative ids
    rows: pd.DataFrame         #: one joined row per (request, candidate), request-major
    bids: np.ndarray           #: the advertiser's bid per click ($)
    true_p: np.ndarray         #: hidden: the true click probabilities (for simulated clicks)

    def winners(self, p) -> np.ndarray:
        """Each request's winner (a column index): the highest bid x P(click)."""
        return np.argmax(self.bids * np.asarray(p).reshape(self.bids.shape), axis=1)

    def at(self, matrix, winner) -> np.ndarray:
        """Each request's value of ``matrix`` (requests x candidates) at its winner."""
        return np.asarray(matrix).reshape(self.bids.shape)[np.arange(len(winner)), winner]

    def calibration(self, predicted: dict, winner: dict) -> pd.DataFrame:
        """Predicted over expected (true) clicks, for each arm's predictions: over all the
        candidates, and over the ads that win its auctions (the winner's curse)."""
        return pd.DataFrame({arm: {
            "all candidates": p.sum() / self.true_p.sum(),
            "winners": self.at(p, winner[arm]).sum() / self.at(self.true_p, winner[arm]).sum(),
        } for arm, p in predicted.items()}).T

    def expected(self, winner: dict, shares=None) -> pd.DataFrame:
        """Each auction's expected outcome under the true probabilities, no clicks drawn.

        ``winner`` maps an arm's name to its winners; one row per arm with the ``expected CTR``
        and the ``expected revenue per 1,000 requests ($)`` of the winners, and for each
        ``name -> bool matrix`` of ``shares`` the share of the winners it marks.
        """
        revenue = 1000 * self.bids * self.true_p
        return pd.DataFrame({arm: {
            "expected CTR": self.at(self.true_p, w).mean(),
            "expected revenue per 1,000 requests ($)": self.at(revenue, w).mean(),
            **{name: self.at(marked, w).mean() for name, marked in (shares or {}).items()},
        } for arm, w in winner.items()}).T


def build_auction(world, test: pd.DataFrame, n_requests: int, n_candidates: int,
                  rng: np.random.Generator) -> Auction:
    """Requests sampled from the test week, each with ``n_candidates`` eligible creatives.

    A request is a sampled impression's day, second, user, device and placement. Its candidates
    are drawn uniformly among the creatives shown that day that it may see (an interest-targeted
    campaign only for users with a matching interest, as the world's ad server does). Each
    advertiser bids a fixed amount per click, log-normal around $1. The true probabilities
    (hidden from every model) draw the clicks. ``rng`` is advanced.
    """
    observed = world.observed
    picked = np.sort(rng.choice(len(test), n_requests, replace=False))
    requests = test.iloc[picked][["day", "second", "user_id", "device", "placement"]]
    requests = requests.reset_index(drop=True)
    ads = ad_table(observed)
    interests = (observed["users"].set_index("user_id")["interests"].str.get_dummies(sep=";")
                 .reindex(columns=acp.INTERESTS, fill_value=0))
    matches = np.array([[c in acp.MATCHES[i] for c in acp.CATEGORIES] for i in acp.INTERESTS])
    targetable = pd.DataFrame(interests.to_numpy() @ matches > 0, index=interests.index,
                              columns=acp.CATEGORIES)
    candidates = np.empty((n_requests, n_candidates), dtype=np.int64)
    for day, at in requests.groupby("day").indices.items():
        running = np.unique(test.loc[test["day"] == day, "creative_id"])  # served that day
        day_ads = ads.loc[running]
        eligible = ((day_ads["targeting"] == "broad").to_numpy()[None, :]
                    | targetable.loc[requests["user_id"].iloc[at], day_ads["category"]].to_numpy())
        draw = np.where(eligible, rng.random(eligible.shape), np.inf)  # uniform among eligible
        if not np.isfinite(np.sort(draw, axis=1)[:, n_candidates - 1]).all():
            raise ValueError(f"a request of day {day} has fewer than {n_candidates} eligible ads")
        candidates[at] = running[np.argsort(draw, axis=1)[:, :n_candidates]]
    rows = requests.loc[requests.index.repeat(n_candidates)].reset_index(drop=True)
    rows["creative_id"] = candidates.ravel()
    rows = join_impressions(observed, rows)
    advertisers = observed["advertisers"]["advertiser_id"]
    bid = pd.Series(rng.lognormal(0.0, 0.5, len(advertisers)), index=advertisers)
    shape = (n_requests, n_candidates)
    return Auction(requests, candidates, rows, rows["advertiser_id"].map(bid).to_numpy().reshape(shape),
                   acp.true_probability(world, rows).reshape(shape))


def replay_ab(auction: Auction, winner: dict, n_traffic: int, rng: np.random.Generator):
    """Simulated traffic for an A/B test of two auctions (``winner["control"]``,
    ``winner["treatment"]``: each request's winning column).

    Each of ``n_traffic`` simulated requests replays a scored request drawn at random, is assigned
    to an arm (half each, at random), shows its arm's winner and is clicked with that ad's true
    probability; a click earns the winner's bid. Returns ``(clicked, revenue, in_treatment)``,
    one value per simulated request. ``rng`` is advanced.
    """
    true_p = {arm: auction.at(auction.true_p, w) for arm, w in winner.items()}
    bid = {arm: auction.at(auction.bids, w) for arm, w in winner.items()}
    replayed = rng.integers(0, len(auction.requests), n_traffic)
    in_treatment = rng.permutation(n_traffic) < n_traffic // 2
    p_shown = np.where(in_treatment, true_p["treatment"][replayed], true_p["control"][replayed])
    clicked = rng.random(n_traffic) < p_shown
    revenue = np.where(in_treatment, bid["treatment"][replayed], bid["control"][replayed]) * clicked
    return clicked, revenue, in_treatment


# --------------------------------------------------------------------------- serving


def write_feature_store(store, observed, known_clicks: pd.DataFrame) -> pd.DataFrame:
    """The batch job: the ``users`` table, and the ``ads`` table with each advertiser's click
    rate over ``known_clicks`` (a log with ``clicked_by_then``: the clicks arrived by the job's
    run; NULL for an advertiser with no impression there). Returns the ads frame written."""
    store.write("users", observed["users"][["user_id", "age_band", "country", "interests"]],
                key=["user_id"])
    ctr_7d = known_clicks.groupby("advertiser_id")["clicked_by_then"].mean()
    ads = ad_table(observed).reset_index()[AD_COLUMNS[:-1]]
    ads["advertiser_ctr_7d"] = ads["advertiser_id"].map(ctr_7d)
    store.write("ads", ads, key=["creative_id"])
    return ads


def score_request(store, model, user_id, context: dict, candidate_ids):
    """P(click) of each candidate ad for one request, and each stage's milliseconds.

    Two reads from the store (the user's row, the candidates' rows by primary key, in
    the request's order), the joined (user, ad, context) frame the offline code builds
    with :func:`join_impressions`, and ``model.predict_proba``. ``context`` holds the
    request's ``day``, ``second`` (local time), ``device`` and ``placement``. An unknown
    user or creative raises ``ValueError``.
    """
    clock = [time.perf_counter()]
    ids = [int(c) for c in candidate_ids]
    (user,) = store.lookup_in("users", ["age_band", "country", "interests"], "user_id",
                              [int(user_id)])
    ads = store.lookup_in("ads", AD_COLUMNS[1:], "creative_id", ids)
    clock.append(time.perf_counter())
    frame = pd.DataFrame(ads, columns=AD_COLUMNS[1:]).assign(creative_id=ids)
    frame = frame.assign(day=context["day"], second=context["second"],
                         user_id=int(user_id), device=context["device"],
                         placement=context["placement"],
                         age_band=user[0], country=user[1], interests=user[2],
                         hour=context["second"] // 3600,
                         day_of_week=acp.DAYS_OF_WEEK[context["day"] % 7])
    clock.append(time.perf_counter())
    p = model.predict_proba(frame)
    clock.append(time.perf_counter())
    stages = ("lookup", "features", "model")
    return p, {stage: 1000 * (b - a) for stage, a, b in zip(stages, clock, clock[1:])}


def serve_sample(store, model, test: pd.DataFrame, rng: np.random.Generator,
                 batches=(1, 10, 100), per_batch: int = 25):
    """Serve sampled test impressions as requests of 1, 10 or 100 candidates (interleaved).

    Each request holds the impression's own creative first and other creatives shown that day;
    one thread, as one worker's. Returns ``(sample, served, stage_ms)``: the positions in
    ``test``, the served P(click) of each impression's own creative, and per batch size the
    list of each request's stage timings. ``rng`` is advanced.
    """
    sample = rng.choice(len(test), per_batch * len(batches), replace=False)
    shown_on = {day: np.unique(frame["creative_id"]) for day, frame in test.groupby("day")}
    served, stage_ms = [], {size: [] for size in batches}
    with threadpool_limits(limits=1):
        for i, row in enumerate(test.iloc[sample].itertuples()):
            size = batches[i % len(batches)]  # interleaved: every size sees the same machine
            others = np.setdiff1d(shown_on[row.day], [row.creative_id])
            others = rng.choice(others, size - 1, replace=False)
            context = {"day": row.day, "second": row.second, "device": row.device,
                       "placement": row.placement}
            p, ms = score_request(store, model, row.user_id, context, [row.creative_id, *others])
            served.append(p[0])
            stage_ms[size].append(ms)
    return sample, np.array(served), stage_ms


def latency_table(stage_ms: dict) -> tuple[pd.DataFrame, dict]:
    """Median and 95th-percentile ms per stage and in total, per batch size; and each batch
    size's per-request totals (a Series)."""
    latency, totals = {}, {}
    for size, runs in stage_ms.items():
        frame = pd.DataFrame(runs)
        frame["total"] = totals[size] = frame.sum(axis=1)
        latency[f"{size} candidates"] = (frame.quantile([0.5, 0.95]).T
                                         .set_axis(["p50 ms", "p95 ms"], axis=1))
    return pd.concat(latency, axis=1), totals


# --------------------------------------------------------------------------- continual learning


class ClickStream:
    """The log as a stream: a design matrix ``X`` in time order, its labels, and when each click
    arrives, cut into hours (hour 0 starts day 0 at 00:00).

    ``click_delay_seconds`` is NaN for an impression never clicked. The three ways of labelling
    an hour's batch for an hourly learner return ``(X rows, labels)``:

    - :meth:`eventual` -- the hour's impressions with their eventual labels (an idealisation);
    - :meth:`naive` -- the hour's impressions with the clicks arrived by the hour's end;
    - :meth:`wait_one_hour` -- the previous hour's impressions with the clicks arrived by now;
    - :meth:`fake_negatives` -- the hour's impressions as negatives, and a positive copy of every
      impression whose click arrived during the hour (Ktena et al. 2019): the learner then
      estimates q = p / (1 + p), and p = q / (1 - q) is served.
    """

    def __init__(self, X, y, day, second, click_delay_seconds):
        self.X, self.y = X, np.asarray(y)
        self.shown_at = np.asarray(day) * DAY + np.asarray(second)
        self.click_at = self.shown_at + np.nan_to_num(
            np.asarray(click_delay_seconds, dtype=float), nan=np.inf)
        if np.any(np.diff(self.shown_at) < 0):
            raise ValueError("the log must be sorted by time")
        self.n_days = int(np.asarray(day).max()) + 1
        self.hour_start = np.searchsorted(self.shown_at, np.arange(24 * self.n_days + 1) * HOUR)
        self.by_arrival = np.argsort(self.click_at, kind="stable")  # rows, in click order
        self.arrivals = self.click_at[self.by_arrival]

    def hours(self, first: int, end: int) -> slice:
        """The rows shown in hours [first, end) (hours before 0 are empty)."""
        return slice(self.hour_start[max(first, 0)], self.hour_start[end])

    def days(self, first: int, end: int) -> slice:
        """The rows shown on days [first, end)."""
        return self.hours(24 * first, 24 * end)

    def eventual(self, hour: int):
        rows = self.hours(hour, hour + 1)
        return self.X[rows], self.y[rows]

    def naive(self, hour: int):
        rows = self.hours(hour, hour + 1)
        return self.X[rows], (self.click_at[rows] <= (hour + 1) * HOUR).astype(int)

    def wait_one_hour(self, hour: int):
        rows = self.hours(hour - 1, hour)
        return self.X[rows], (self.click_at[rows] <= (hour + 1) * HOUR).astype(int)

    def fake_negatives(self, hour: int):
        rows = np.arange(self.hour_start[hour], self.hour_start[hour + 1])
        lo, hi = np.searchsorted(self.arrivals, [hour * HOUR, (hour + 1) * HOUR])
        arrived = self.by_arrival[lo:hi]
        labels = np.r_[np.zeros(len(rows), int), np.ones(len(arrived), int)]
        return self.X[np.concatenate([rows, arrived])], labels

    def missing_share(self, rows, t) -> float:
        """Share of the eventual clicks of ``rows`` not arrived by time ``t`` (one time, or one
        per row), in seconds since day 0."""
        return float(1 - (self.click_at[rows] <= t).sum() / self.y[rows].sum())


def stream_learner(stream: ClickStream, model, batch, start: int, end: int):
    """From 00:00 on day ``start`` to day ``end``, each hour: predict that hour's impressions with
    ``model`` (a fitted linear ``SGDClassifier``), then one ``partial_fit`` pass over
    ``batch(hour)``. Progressive validation: every prediction is made before its row is learnt
    from. Returns the predictions and the model (updated in place)."""
    out = []
    # one thread, and no re-validation of the inputs at each of these many small calls
    with threadpool_limits(limits=1), config_context(assume_finite=True,
                                                     skip_parameter_validation=True):
        for hour in range(24 * start, 24 * end):
            now = stream.X[stream.hours(hour, hour + 1)]
            out.append(special.expit(now @ model.coef_[0] + model.intercept_[0]))
            model.partial_fit(*batch(hour), classes=[0, 1])
    return np.concatenate(out), model


def incremental(stream: ClickStream, start_from, alpha: float, seed: int, eta0: float, batch,
                start: int, end: int, model=None):
    """The hourly learner: :func:`stream_learner` with a logistic ``SGDClassifier`` (constant
    learning rate ``eta0``, L2 penalty ``alpha`` per row) that starts from the weights of
    ``start_from`` (a fitted linear model), or goes on with ``model``."""
    from sklearn.linear_model import SGDClassifier

    if model is None:
        model = SGDClassifier(loss="log_loss", alpha=alpha, learning_rate="constant",
                              eta0=eta0, random_state=seed)
        model.coef_ = start_from.coef_.copy()
        model.intercept_ = start_from.intercept_.copy()
    return stream_learner(stream, model, batch, start, end)


def excess_log_loss(oracle_daily: pd.Series, y_true, day, p) -> pd.Series:
    """Each day's log loss of ``p`` minus the oracle's (``oracle_daily``, indexed by day).

    ``p`` may cover a prefix of the rows of ``y_true`` and ``day`` (a learner stopped early).
    """
    daily = metrics.daily_log_loss(np.asarray(y_true)[: len(p)], p, np.asarray(day)[: len(p)])
    return daily - oracle_daily.loc[daily.index]


def daily_retrain(stream: ClickStream, C: float, window: int, days):
    """Every night before each of ``days``, a logistic regression fitted on the last ``window``
    days, warm-started from yesterday's weights; it predicts the next day.

    Returns ``(predictions, base, log, seconds)``: the predictions for the days in order, the
    window's click rate for the same rows (the base-rate policy), one row per night with the
    ``rows`` read and the solver's ``iterations``, and the seconds the nights took (one thread).
    """
    model = LogisticRegression(C=C, max_iter=500, warm_start=True)
    predictions, base, log = [], [], []
    with threadpool_limits(limits=1):  # small fits: one thread avoids its overhead
        clock = time.perf_counter()
        for day in days:
            rows = stream.days(day - window, day)
            model.fit(stream.X[rows], stream.y[rows])  # the nightly job
            today = stream.days(day, day + 1)
            predictions.append(model.predict_proba(stream.X[today])[:, 1])
            base.append(np.full(stream.y[today].size, stream.y[rows].mean()))
            log.append({"rows": rows.stop - rows.start, "iterations": int(model.n_iter_[0])})
        seconds = time.perf_counter() - clock
    return (np.concatenate(predictions), np.concatenate(base),
            pd.DataFrame(log, index=np.asarray(days)), seconds)


def missing_clicks(stream: ClickStream, rows: slice, window: int, days) -> pd.Series:
    """Share of the eventual clicks not yet arrived when a trainer reads its data: an hour's
    impressions at the hour's end and an hour later, a day's at the day's end (for ``rows``),
    and a ``window``-day window at its end (for each of ``days`` late enough)."""
    shown, share = stream.shown_at[rows], stream.missing_share
    hour_end = (shown // HOUR + 1) * HOUR  # the end of each impression's hour
    days = np.asarray(days)
    windows = [share(stream.days(d - window, d), d * DAY) for d in days[days >= window]]
    return pd.Series({
        "an hour's impressions, at the hour's end": share(rows, hour_end),
        "an hour's impressions, one hour later": share(rows, hour_end + HOUR),
        "a day's impressions, at the day's end": share(rows, (shown // DAY + 1) * DAY),
        f"a {window}-day window, at its end": np.mean(windows),
    }, name="share of the eventual clicks not yet arrived")


# --------------------------------------------------------------------------- drift


def daily_monitors(log: pd.DataFrame, stream: ClickStream, reference: slice, days,
                   predicted, predicted_day) -> pd.DataFrame:
    """Four monitors per day against a reference window (``reference``, rows of ``log``):
    the PSI of the advertiser mix and of the category mix, the share of impressions whose
    creative the reference never showed, and predicted over observed clicks (``predicted``:
    one prediction per row whose day is ``predicted_day``)."""
    seen = np.isin(log["creative_id"].to_numpy(), log["creative_id"].to_numpy()[reference])

    def psi(column):
        values = log[column].to_numpy()
        return [psi_categorical(values[reference].tolist(),
                                values[stream.days(d, d + 1)].tolist()) for d in days]

    predicted, predicted_day = np.asarray(predicted), np.asarray(predicted_day)
    return pd.DataFrame({
        "advertiser-mix PSI": psi("advertiser_id"), "category-mix PSI": psi("category"),
        "creatives unseen in week 1": [1 - seen[stream.days(d, d + 1)].mean() for d in days],
        "predicted / observed clicks": [predicted[predicted_day == d].sum()
                                        / stream.y[stream.days(d, d + 1)].sum() for d in days],
    }, index=pd.Index(days, name="day"))


# --------------------------------------------------------------------------- figures


def plot_log_overview(log: pd.DataFrame):
    """Three panels: CTR by placement, CTR by hour per device, and the advertiser mix by week
    (the 8 largest advertisers and the others) with the weekly CTR. Returns the figure."""
    import matplotlib.pyplot as plt

    from mlsd.book.plotting import OKABE_ITO, ROLE_COLORS

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(11.5, 3.3))
    by_placement = log.groupby("placement")["clicked"].mean().reindex(acp.PLACEMENTS)
    left.bar(by_placement.index, by_placement.to_numpy(), color=ROLE_COLORS["model"])
    left.set(ylabel="click-through rate", title="Placement")
    for device, color in zip(acp.DEVICES, (OKABE_ITO["blue"], OKABE_ITO["orange"],
                                           OKABE_ITO["green"])):
        by_hour = log[log["device"] == device].groupby("hour")["clicked"].mean()
        middle.plot(by_hour.index, by_hour.to_numpy(), color=color, label=device)
    middle.set(xlabel="hour", title="Hour × device")
    middle.legend(fontsize=8)
    week = log["day"] // 7
    shares = pd.crosstab(week, log["advertiser_id"], normalize="index")
    top = shares.sum().nlargest(8).index
    others = shares.drop(columns=top).sum(axis=1).rename("others")
    shares = pd.concat([shares[top], others], axis=1)
    bottom, palette = np.zeros(len(shares)), list(OKABE_ITO.values())
    for i, col in enumerate(shares.columns):
        color = "#dddddd" if col == "others" else palette[i % len(palette)]
        right.bar(shares.index + 1, shares[col], bottom=bottom, color=color)
        bottom += shares[col].to_numpy()
    right.set(xlabel="week", ylabel="share of impressions", title="Advertiser mix by week",
              xticks=[1, 2, 3, 4])
    twin = right.twinx()
    twin.plot(shares.index + 1, log.groupby(week)["clicked"].mean().to_numpy(), color="black",
              marker="o")
    twin.set(ylabel="CTR")
    return fig


def plot_monitors(monitors: pd.DataFrame, xticks):
    """The monitors of :func:`daily_monitors` in three panels (PSI with the usual 0.1 and 0.25
    lines, unseen creatives, calibration with its 7-day mean). Returns the figure."""
    import matplotlib.pyplot as plt

    from mlsd.book.plotting import OKABE_ITO, ROLE_COLORS

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(11.5, 3.3))
    style = {"marker": "o", "markersize": 3}
    left.plot(monitors.index, monitors["advertiser-mix PSI"], color=ROLE_COLORS["model"],
              label="advertisers", **style)
    left.plot(monitors.index, monitors["category-mix PSI"], color=OKABE_ITO["orange"],
              label="categories", **style)
    for level in (0.1, 0.25):
        left.axhline(level, color=ROLE_COLORS["alert"], linestyle=":")
    left.legend(fontsize=9)
    for ax in (left, middle, right):
        ax.set_xticks(xticks)
    left.set(yscale="log", xlabel="day", ylabel="PSI against week 1", title="Mix of ads")
    middle.plot(monitors.index, monitors["creatives unseen in week 1"],
                color=ROLE_COLORS["model"], **style)
    middle.set(xlabel="day", ylabel="share of impressions", ylim=(0, 1),
               title="Creatives unseen in week 1")
    ratio = monitors["predicted / observed clicks"]
    right.plot(ratio.index, ratio, color=ROLE_COLORS["model"], label="daily", **style)
    right.plot(ratio.index, ratio.rolling(7, min_periods=1).mean(),
               color=ROLE_COLORS["baseline"], label="7-day mean")
    right.axhline(1, color=ROLE_COLORS["oracle"], linestyle="--", linewidth=1)
    right.legend(fontsize=9)
    right.set(xlabel="day", ylabel="predicted / observed", title="Calibration (frozen model)")
    return fig


def plot_reliability(y_true, predictions: dict, colors, title: str):
    """Reliability curves on log axes: observed rate against mean prediction in 20 equal-mass
    bins, each with its binomial 95% band, one curve per ``predictions`` entry. Returns the
    figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    for (name, p), color in zip(predictions.items(), colors):
        mean_p, observed, count = metrics.calibration_curve(y_true, p, n_bins=20,
                                                            strategy="quantile")
        noise = 1.96 * np.sqrt(observed * (1 - observed) / count)  # binomial 95% band
        ax.errorbar(mean_p, observed, yerr=noise, marker="o", markersize=3, color=color,
                    label=name)
    ax.plot([0.003, 0.3], [0.003, 0.3], color="#888888", linestyle="--", linewidth=1)
    ax.set(xscale="log", yscale="log", xlabel="mean predicted P(click)",
           ylabel="observed click rate",
           title=f"{title}: 20 equal-mass bins of {count[0]:,} impressions")
    ax.legend(fontsize=8)
    return fig


def plot_policies(excess: pd.DataFrame, calibration: pd.DataFrame, colors: dict, shaded,
                  xticks):
    """Excess log loss (left) and mean predicted over true CTR (right) per day, one line per
    policy in ``colors``; the days ``shaded`` = (first, last) on a grey band. Returns the
    figure."""
    import matplotlib.pyplot as plt

    from mlsd.book.plotting import ROLE_COLORS

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax in (left, right):
        ax.axvspan(shaded[0] - 0.5, shaded[1] + 0.5, color="#eeeeee")
        ax.set_xticks(xticks)
    for name, color in colors.items():
        left.plot(excess.index, excess[name], color=color, marker="o", markersize=3, label=name)
        right.plot(calibration.index, calibration[name], color=color, marker="o", markersize=3)
    right.axhline(1, color=ROLE_COLORS["oracle"], linestyle="--", linewidth=1)
    left.set(xlabel="day", ylabel="log loss − oracle's", title="Excess log loss, day by day")
    right.set(xlabel="day", ylabel="mean predicted / true CTR", title="Calibration in the large")
    left.legend(fontsize=9)
    return fig


def plot_delays(delays, ratios: dict, colors: dict, xticks):
    """Left: the share of clicks arrived by the delay since their impression (log axis, 1 s to
    3 days, marks at 1 h and 1 day). Right: each of ``ratios`` (a daily Series) with a line at
    1. Returns the figure."""
    import matplotlib.pyplot as plt

    from mlsd.book.plotting import ROLE_COLORS

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    grid = np.logspace(0, np.log10(3 * DAY), 200)
    arrived = np.searchsorted(np.sort(delays), grid, side="right") / len(delays)
    left.plot(grid, arrived, color=ROLE_COLORS["model"])
    for mark, label in ((HOUR, "1 h"), (DAY, "1 day")):
        left.axvline(mark, color=ROLE_COLORS["baseline"], linestyle=":")
        left.text(mark * 1.15, 0.05, label)
    left.set(xscale="log", xlabel="seconds since the impression",
             ylabel="share of clicks arrived", title="Click delay")
    for name, ratio in ratios.items():
        right.plot(ratio.index, ratio, color=colors[name], marker="o", markersize=3, label=name)
    right.axhline(1, color=ROLE_COLORS["oracle"], linestyle="--", linewidth=1)
    right.set(xlabel="day", ylabel="mean prediction / ideal's", title="Bias of the hourly learner",
              xticks=xticks)
    right.legend(fontsize=9, loc="center left", bbox_to_anchor=(1, 0.5))
    return fig

