"""Chapter 5's plumbing (visual search): what the chapter uses but does not teach.

The chapter writes the contrastive encoder, spherical k-means, the inverted-file index and the
re-ranking rule itself; this module holds the rest, tested in
``tests/test_case_visual_search.py``:

- features and search: :func:`normalise`, :func:`search` (faiss's exact inner-product search),
  :func:`hand_features` (colour and edge-orientation histograms, the pre-deep-learning
  baseline), :func:`nearest_pixel_distance`, :func:`example_photos`, :func:`plot_photo_grid`;
- evaluation with the world's graded relevance: :func:`ndcg_at_10`, :func:`ranking_metrics`
  (each checked against :mod:`mlsd.evaluation.metrics`), :func:`category_fill`;
- the index against exact search: :class:`ExactNeighbours` (the exact top k in blocks, and an
  index's recall against it), :func:`pad_lists`, :func:`one_query_searchers` and
  :func:`time_per_query` (the timing harness), :func:`plot_recall_speed`;
- re-ranking inputs and checks: :func:`duplicate_groups`, :func:`list_shares`;
- online: :func:`expected_rate`, :func:`expected_rates`, :func:`simulate_click_test` (a
  replayed user-level A/B test);
- serving: :func:`memory_table`, :func:`scale_out`, and index freshness: :func:`stale_index`,
  :func:`ivf_state`, :func:`freshness_experiment`, :func:`faiss_list_sizes`;
- monitoring: :func:`daily_d`, :func:`embed_photos`, :func:`upload_streams`,
  :func:`plot_monitor`, :func:`by_week` (a per-day table folded to fit the page);
- the numbers and sentences each section's prose quotes, for
  :func:`mlsd.book.glue_numbers` (``*_numbers``, ``*_phrases``, :func:`training_verdict`).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from mlsd._checks import check_finite, check_int
from mlsd.book.plotting import OKABE_ITO, ROLE_COLORS
from mlsd.evaluation.drift import ks_test
from mlsd.evaluation.experiments import two_proportion_test
from mlsd.evaluation.ranking import ndcg_at_k, top_k

__all__ = [
    "ab_numbers", "ann_numbers", "by_week", "category_fill", "daily_d", "duplicate_groups",
    "embed_photos", "ExactNeighbours", "example_photos", "expected_rate", "expected_rates",
    "faiss_list_sizes", "freshness_experiment", "freshness_numbers", "freshness_phrases",
    "hand_features", "ivf_state", "list_shares", "memory_numbers", "memory_table",
    "monitor_numbers", "monitor_phrases", "ndcg_at_10", "nearest_pixel_distance",
    "normalise", "offline_numbers", "one_query_searchers", "pad_lists", "plot_monitor",
    "plot_photo_grid", "plot_recall_speed", "ranking_metrics", "recovery_numbers",
    "rerank_numbers", "scale_numbers", "scale_out", "search", "simulate_click_test",
    "speed_numbers", "stale_index", "time_per_query", "training_verdict", "upload_streams",
]

PHOTOS_PER_PRODUCT = 10   # the world's ten photos per product: the ideal top 10 is all grade 2


def _matrix(name: str, values, dtype=np.float32) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {arr.shape}")
    return arr

# ----------------------------------------------------------------------------- features and search


def normalise(vectors) -> np.ndarray:
    """Unit-length float32 rows: the inner product of two rows is then their cosine similarity.

    A zero row stays zero. Raises ``ValueError`` if ``vectors`` is not a non-empty 2-D array.
    """
    vectors = _matrix("vectors", vectors)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def search(query_vectors, catalogue_vectors, k: int = 10) -> np.ndarray:
    """Exact search (faiss ``IndexFlatIP``): each query's ``k`` catalogue rows of highest inner
    product, best first, as a (queries x k) array of row positions.

    Raises ``ValueError`` if the arrays are not 2-D with the same number of columns.
    """
    import faiss

    k = check_int("k", k, minimum=1)
    q, c = _matrix("query_vectors", query_vectors), _matrix("catalogue_vectors", catalogue_vectors)
    if q.shape[1] != c.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} dimensions, the catalogue {c.shape[1]}")
    index = faiss.IndexFlatIP(c.shape[1])
    index.add(np.ascontiguousarray(c))
    return index.search(np.ascontiguousarray(q), k)[1]


def hand_features(pixels, chunk: int = 5_000) -> np.ndarray:
    """Hand-made photo features: a 4 x 4 x 4 colour histogram and an 8-bin histogram of edge
    orientations weighted by edge strength (72 numbers per photo, square-rooted).

    Neither histogram says *where* a colour or an edge is, so both ignore position by
    construction. ``pixels`` is (photos, height, width, 3) in [0, 1]; computed ``chunk``
    photos at a time, since the intermediate arrays are several times the photos' size.

    Raises ``ValueError`` if ``pixels`` is not a (photos, height, width, 3) array.
    """
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise ValueError(f"pixels must be (photos, height, width, 3), got shape {pixels.shape}")
    if len(pixels) > chunk:
        parts = np.array_split(pixels, -(-len(pixels) // chunk))
        return np.vstack([hand_features(part, chunk) for part in parts])
    n = len(pixels)
    level = np.minimum((pixels * 4).astype(np.int64), 3)
    colour = (level[..., 0] * 16 + level[..., 1] * 4 + level[..., 2]).reshape(n, -1)
    colours = np.bincount((colour + 64 * np.arange(n)[:, None]).ravel(),
                          minlength=64 * n).reshape(n, 64)
    grey = pixels.mean(axis=-1)
    gx, gy = np.zeros_like(grey), np.zeros_like(grey)
    gx[:, :, 1:-1] = grey[:, :, 2:] - grey[:, :, :-2]
    gy[:, 1:-1, :] = grey[:, :-2, :] - grey[:, 2:, :]
    strength = np.hypot(gx, gy).reshape(n, -1)
    direction = np.minimum((np.arctan2(gy, gx) % np.pi / np.pi * 8).astype(np.int64), 7)
    edges = np.bincount((direction.reshape(n, -1) + 8 * np.arange(n)[:, None]).ravel(),
                        weights=strength.ravel(), minlength=8 * n).reshape(n, 8)
    edges /= edges.sum(axis=1, keepdims=True) + 1e-6
    return np.hstack([np.sqrt(colours / colour.shape[1]), np.sqrt(edges)]).astype(np.float32)


def nearest_pixel_distance(flat_queries, flat_catalogue) -> np.ndarray:
    """Each query photo's Euclidean distance to its nearest catalogue photo, on the pixels
    (faiss's exact ``IndexFlatL2``): a distance near 0 would be a copy."""
    import faiss

    q, c = _matrix("flat_queries", flat_queries), _matrix("flat_catalogue", flat_catalogue)
    index = faiss.IndexFlatL2(c.shape[1])
    index.add(np.ascontiguousarray(c))
    return np.sqrt(index.search(np.ascontiguousarray(q), 1)[0][:, 0])


def example_photos(world, catalogue_pixels, query_pixels) -> dict:
    """For each category: three catalogue photos of its first product, one of its second
    product and a query photo of the category (the hidden truth picks it), top to bottom."""
    from mlsd.datasets import visual_search as vs

    products, catalogue = world.observed["products"], world.observed["catalogue"]
    truth = world.hidden["query_truth"]
    category_of = products["category"].to_numpy()
    columns = {}
    for category in vs.CATEGORIES:
        first, second = products.loc[category_of == category, "product_id"].iloc[:2]
        photos = catalogue.loc[catalogue["product_id"] == first, "image_id"].iloc[:3].tolist()
        photos.append(catalogue.loc[catalogue["product_id"] == second, "image_id"].iloc[0])
        query = truth.loc[category_of[truth["product_id"]] == category, "query_id"].iloc[0]
        columns[category] = [catalogue_pixels[p] for p in photos] + [query_pixels[query]]
    return columns


def plot_photo_grid(axes, columns: dict, row_labels):
    """Photos in a grid: ``columns`` maps a column title to its photos, top to bottom."""
    for j, (title, photos) in enumerate(columns.items()):
        for i, image in enumerate(photos):
            axes[i, j].imshow(image)
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
        axes[0, j].set_title(title, fontsize=8)
    for i, label in enumerate(row_labels):
        axes[i, 0].set_ylabel(label, fontsize=8)
    return axes

# ------------------------------------------------------------ evaluation with the hidden relevance


def ndcg_at_10(world, query_ids, ranked) -> np.ndarray:
    """Each query's graded nDCG@10 (grades 2 same product, 1 same category, 0 otherwise).

    ``ranked`` is (queries, >= 10) catalogue image ids, best first; ``world`` the world or the
    tables of an extended one (``vs.new_style``). Every product has ten photos, so the ideal
    top 10 is ten photos of grade 2. The definition is
    :func:`mlsd.evaluation.ranking.ndcg_at_k`.
    """
    from mlsd.datasets import visual_search as vs

    ranked = np.asarray(ranked)
    if ranked.ndim != 2 or ranked.shape[1] < 10:
        raise ValueError(f"ranked must be (queries, >= 10) image ids, got shape {ranked.shape}")
    grades = vs.relevance(world, query_ids, ranked[:, :10])
    return ndcg_at_k(grades, np.full(PHOTOS_PER_PRODUCT, 2), 10)


def ranking_metrics(world, query_ids, ranked) -> dict:
    """Mean metrics over queries of the top 10 of ``ranked`` (as :func:`ndcg_at_10`).

    ``nDCG@10`` (graded); for the query's product: ``MRR@10`` (reciprocal rank of its first
    photo, 0 if none in the top 10), ``hit rate@10``, ``recall@10`` (share of its ten photos
    in the top 10); and ``precision@10 (same category)`` (share of the top 10 with grade >= 1).
    Each equals the mean of the one-list metric of :mod:`mlsd.evaluation.metrics` (tested).
    """
    from mlsd.datasets import visual_search as vs

    ndcg = ndcg_at_10(world, query_ids, ranked)
    grades = vs.relevance(world, query_ids, np.asarray(ranked)[:, :10])
    exact = grades == 2
    first_hit = np.where(exact.any(axis=1), exact.argmax(axis=1) + 1, np.inf)
    return {"nDCG@10": float(ndcg.mean()), "MRR@10": float((1 / first_hit).mean()),
            "hit rate@10": float(exact.any(axis=1).mean()),
            "recall@10": float(exact.sum(axis=1).mean() / PHOTOS_PER_PRODUCT),
            "precision@10 (same category)": float((grades >= 1).mean())}


def category_fill(world, query_ids, allowed, n: int) -> np.ndarray:
    """For each query, the first ``n`` photos (by image id) of its product's category among
    the ``allowed`` image ids: what tops up the oracle's list after its product's own photos.
    Reads the hidden truth."""
    from mlsd.datasets.world import all_tables

    n = check_int("n", n, minimum=1)
    products, catalogue = world.observed["products"], world.observed["catalogue"]
    category = pd.factorize(products["category"])[0]
    allowed = np.asarray(allowed)
    photo_category = category[catalogue["product_id"].to_numpy()][allowed]
    first = {c: allowed[photo_category == c][:n] for c in np.unique(category)}
    query_category = category[all_tables(world)["query_truth"]["product_id"].to_numpy()]
    return np.stack([first[c] for c in query_category[np.asarray(query_ids)]])

# ------------------------------------------------------------------ the index against exact search


class ExactNeighbours:
    """Every query's exact top ``k`` catalogue rows by inner product, and recall against it.

    Computed by brute force, one matrix product per ``block`` of queries (the block keeps the
    queries x catalogue score matrix small); ties go to the lower row (:func:`top_k`).
    Attributes ``ids`` and ``scores``: (queries x k), best first.
    """

    def __init__(self, queries, catalogue, k: int = 10, block: int = 100):
        self.queries, self.catalogue = _matrix("queries", queries), _matrix("catalogue", catalogue)
        self.k, block = check_int("k", k, minimum=1), check_int("block", block, minimum=1)
        ids, scores = [], []
        for start in range(0, len(self.queries), block):
            s = self.queries[start:start + block] @ self.catalogue.T
            best = top_k(s, self.k)
            ids.append(best)
            scores.append(np.take_along_axis(s, best, 1))
        self.ids, self.scores = np.concatenate(ids), np.concatenate(scores)

    def recall(self, found, rows=slice(None), tol: float = 1e-6) -> float:
        """Mean share of the exact top k that ``found`` (ids for the queries ``rows``) returns.

        A found row counts if it scores at least the exact k-th best, less ``tol`` (float32
        rounding): one tied with the k-th is as right as the one exact search kept. ``-1``
        (faiss's padding for a short list) never counts.
        """
        found = np.asarray(found)
        queries = self.queries[rows]
        if found.ndim != 2 or found.shape[0] != len(queries):
            raise ValueError(f"found must be (queries, k) ids for the {len(queries)} queries, "
                             f"got shape {found.shape}")
        scores = np.einsum("qd,qkd->qk", queries, self.catalogue[found])
        return float(((found >= 0) & (scores >= self.scores[rows, -1:] - tol)).mean())


def pad_lists(lists, k: int) -> np.ndarray:
    """Ranked lists of unequal lengths (at most ``k``) as one (lists x k) array, padded with
    -1 as faiss pads a list when the probed cells hold fewer than ``k`` vectors."""
    k = check_int("k", k, minimum=1)
    if any(len(ids) > k for ids in lists):
        raise ValueError(f"a list is longer than k = {k}")
    return np.array([np.pad(np.asarray(ids, dtype=np.int64), (0, k - len(ids)),
                            constant_values=-1) for ids in lists]).reshape(len(lists), k)


def one_query_searchers(catalogue, flat, numpy_ivf, ivf, hnsw, nprobes, ef_searches,
                        k: int = 10) -> dict:
    """Functions answering one query vector each, keyed (method, setting), for
    :func:`time_per_query`: exact search in numpy and faiss (``flat``), the numpy IVF index
    and faiss's (``ivf``) at each ``nprobe``, and faiss's HNSW at each ``efSearch``."""
    import faiss

    searchers = {("exact, numpy", None): lambda q: top_k(catalogue @ q, k),
                 ("exact, faiss", None): lambda q: flat.search(q[None], k)}
    for p in nprobes:
        params = faiss.SearchParametersIVF(nprobe=p)
        searchers["IVF, numpy", p] = lambda q, p=p: numpy_ivf.search(q, k, p)
        searchers["IVF, faiss", p] = lambda q, s=params: ivf.search(q[None], k, params=s)
    for ef in ef_searches:
        params = faiss.SearchParametersHNSW(efSearch=ef)
        searchers["HNSW, faiss", ef] = lambda q, s=params: hnsw.search(q[None], k, params=s)
    return searchers


def time_per_query(searchers: dict, queries, rounds: int = 3, n: int | None = None,
                   seed: int = 0) -> pd.Series:
    """Seconds per query of each searcher, one query at a time, on one thread.

    Each searcher (a function of one query vector) serves a stream of queries ``rounds``
    times after a warm-up call; the result is the median over the stream of the fastest round,
    as ``timeit`` keeps the fastest (a slower round measures the machine's other programs).
    The stream is ``queries``, or ``n`` of them drawn once with ``seed`` (in their order).
    """
    from threadpoolctl import threadpool_limits

    rounds = check_int("rounds", rounds, minimum=1)
    if n is not None:
        rng = np.random.default_rng(seed)
        queries = queries[np.sort(rng.choice(len(queries), n, replace=False))]
    medians = {key: [] for key in searchers}
    with threadpool_limits(limits=1):
        for _ in range(rounds):
            for key, fn in searchers.items():
                fn(queries[0])   # warm-up: the first call pays for allocations
                seconds = []
                for q in queries:
                    start = time.perf_counter()
                    fn(q)
                    seconds.append(time.perf_counter() - start)
                medians[key].append(np.median(seconds))
    return pd.Series({key: min(m) for key, m in medians.items()}, name="seconds per query")


def plot_recall_speed(ax, trade_off: pd.DataFrame, chosen, chosen_label: str,
                      recall_target: float, lines: dict | None = None,
                      points: dict | None = None):
    """Recall@10 against queries per second (log scale): a line per ANN method (``lines``:
    method -> colour), each point labelled with its knob; a square per exact search
    (``points``: method -> colour); the ``chosen`` (method, setting) circled. The default
    colours are the book's for the chapter's five methods.

    ``trade_off`` has a (method, setting) index and the columns ``recall@10`` and
    ``QPS (one core)``; an exact search's setting is ``None``.
    """
    lines = lines or {"IVF, numpy": OKABE_ITO["purple"], "IVF, faiss": ROLE_COLORS["model"],
                      "HNSW, faiss": OKABE_ITO["green"]}
    points = points or {"exact, numpy": ROLE_COLORS["baseline"],
                        "exact, faiss": OKABE_ITO["black"]}
    qps, recall = trade_off["QPS (one core)"], trade_off["recall@10"]
    # each method's knob labels on their own side of its line, so neighbours do not collide
    sides = [((5, -12), "left"), ((-7, -14), "right"), ((0, 7), "center")]
    for (method, color), (offset, align) in zip(lines.items(), sides):
        ax.plot(qps[method], recall[method], marker="o", color=color, label=method)
        for setting in qps[method].index:
            ax.annotate(str(setting), (qps[(method, setting)], recall[(method, setting)]),
                        textcoords="offset points", xytext=offset, ha=align, fontsize=8,
                        color=color)
    for method, color in points.items():
        ax.scatter(qps[(method, None)], 1.0, marker="s", s=60, color=color, label=method,
                   zorder=3)
    ax.scatter(qps[chosen], recall[chosen], s=250, facecolors="none",
               edgecolors=ROLE_COLORS["alert"], linewidths=2, label=chosen_label, zorder=4)
    ax.axhline(recall_target, color="#555555", linestyle="--", linewidth=1)
    ax.margins(y=0.08)   # room for the labels above the top points and below the lowest
    ax.set(xscale="log", xlabel="queries per second, one core (log scale)", ylabel="recall@10",
           title="Recall against speed")
    ax.minorticks_off()
    low, high = ax.get_xlim()
    ticks = [t for t in (1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5) if low <= t <= high]
    ax.set_xticks(ticks, [f"{t:,.0f}" for t in ticks])
    ax.legend(fontsize=8, loc="lower left")
    return ax

# -------------------------------------------------------------------------------------- re-ranking


def duplicate_groups(flat_pixels, by_listing, threshold: float) -> np.ndarray:
    """The duplicate group of every photo: photos of one listing whose root-mean-square pixel
    difference is below ``threshold`` share a group (a re-upload differs by sensor noise only).

    ``flat_pixels`` is (photos, values); ``by_listing`` (listings, photos per listing) the
    photo ids of each listing. A photo joins the group of the first earlier photo of its
    listing it duplicates; the group id is that photo's id (its own id when it is first).
    """
    threshold = check_finite("threshold", threshold)
    flat_pixels, by_listing = np.asarray(flat_pixels), np.asarray(by_listing)
    if by_listing.ndim != 2:
        raise ValueError(f"by_listing must be (listings, photos), got shape {by_listing.shape}")
    photos = flat_pixels[by_listing]                       # (listings, photos, values)
    squared = (photos**2).sum(axis=-1)
    cross = np.einsum("lid,ljd->lij", photos, photos)
    mean_square = (squared[:, :, None] + squared[:, None, :] - 2 * cross) / photos.shape[-1]
    difference = np.sqrt(np.maximum(mean_square, 0))      # (listings, photos, photos)
    group = np.arange(len(flat_pixels))
    for later in range(1, by_listing.shape[1]):
        earlier = difference[:, later, :later] < threshold
        has = earlier.any(axis=1)
        group[by_listing[has, later]] = group[by_listing[has, earlier[has].argmax(axis=1)]]
    return group


def list_shares(ranked, group, blocked, k: int = 10) -> dict:
    """Shares of result lists (top ``k`` of each row) that show two photos of one duplicate
    ``group``, and that show a ``blocked`` photo (both indexed by image id)."""
    top = np.asarray(ranked)[:, :check_int("k", k, minimum=1)]
    groups = np.sort(np.asarray(group)[top], axis=1)
    return {"lists with a repeated photo": float((np.diff(groups, axis=1) == 0).any(axis=1).mean()),
            "lists with a blocked product": float(np.asarray(blocked)[top].any(axis=1).mean())}

# ------------------------------------------------------------------------------------------ online


def expected_rate(p, on=True) -> float:
    """Mean over rows of P(at least one click), from independent click probabilities ``p``
    (rows x positions), counting only the positions where ``on``."""
    p = np.asarray(p, dtype=float)
    return float((1 - np.prod(1 - np.where(on, p, 0), axis=1)).mean())


def expected_rates(click_p: dict, grades: dict) -> pd.DataFrame:
    """Each arm's expected search CTR and exact-product click rate (:func:`expected_rate`),
    from its click probabilities and true grades per (search, position); one row per arm."""
    return pd.DataFrame({arm: {
        "expected search CTR": expected_rate(p),
        "expected exact-product click rate": expected_rate(p, np.asarray(grades[arm]) == 2)}
        for arm, p in click_p.items()}).T


def simulate_click_test(click_p: tuple, exact: tuple, n_per_arm: int, rng) -> dict:
    """A simulated user-level A/B test of two ranking arms, replaying logged searches.

    ``click_p`` = (control, treatment) click probabilities per (search, position), ``exact`` =
    (control, treatment) booleans marking results of the query's own product, for the same
    searches. Half of ``2 * n_per_arm`` users go to each arm at random; each makes one search,
    a logged one drawn at random, and clicks each result independently. Returns a
    :func:`~mlsd.evaluation.experiments.two_proportion_test` result for ``"search CTR"`` (at
    least one click) and ``"exact-product click rate"`` (a click on the product).
    """
    n_per_arm = check_int("n_per_arm", n_per_arm, minimum=1)
    (p_c, p_t), (e_c, e_t) = (np.asarray(a) for a in click_p), (np.asarray(a) for a in exact)
    if not p_c.shape == p_t.shape == e_c.shape == e_t.shape:
        raise ValueError("click_p and exact must be four arrays of one (searches, positions) shape")
    in_treatment = rng.permutation(2 * n_per_arm) < n_per_arm
    replayed = rng.integers(0, len(p_c), 2 * n_per_arm)
    p = np.where(in_treatment[:, None], p_t[replayed], p_c[replayed])
    clicks = rng.random(p.shape) < p
    on_product = np.where(in_treatment[:, None], e_t[replayed], e_c[replayed])
    outcomes = {"search CTR": clicks.any(axis=1),
                "exact-product click rate": (clicks & on_product).any(axis=1)}
    return {name: two_proportion_test(int(y[~in_treatment].sum()), int((~in_treatment).sum()),
                                      int(y[in_treatment].sum()), int(in_treatment.sum()))
            for name, y in outcomes.items()}

# ------------------------------------------------------------------- serving: memory and freshness


def memory_table(indexes: dict, n_images: int, settings: list, recalls: list) -> pd.DataFrame:
    """Each faiss index's serialized size, in bytes and per image, with its setting and
    recall@10 (one entry of ``settings`` and ``recalls`` per index, in order)."""
    import faiss

    table = pd.DataFrame({"bytes": {name: int(faiss.serialize_index(index).nbytes)
                                    for name, index in indexes.items()}})
    table["bytes per image"] = table["bytes"] / n_images
    table["setting"], table["recall@10"] = settings, recalls
    return table


def scale_out(n_images: dict, bytes_per_image: dict, usable_gb: float) -> pd.DataFrame:
    """Index size (GB) and machines needed per index type, for each catalogue size.

    ``n_images`` maps a label to a number of images, ``bytes_per_image`` an index type to its
    bytes per image; a machine holds ``usable_gb`` of index.
    """
    usable_gb = check_finite("usable_gb", usable_gb)
    if usable_gb <= 0:
        raise ValueError(f"usable_gb must be > 0, got {usable_gb}")
    table = pd.DataFrame({"images": pd.Series(n_images)})
    for name, size in bytes_per_image.items():
        table[f"{name} (GB)"] = table["images"] * size / 1e9
    for name in bytes_per_image:
        table[f"machines, {name}"] = np.ceil(table[f"{name} (GB)"] / usable_gb).astype(int)
    return table


def faiss_list_sizes(ivf) -> np.ndarray:
    """The length of each inverted list of a faiss IVF index."""
    return np.array([ivf.invlists.list_size(cell) for cell in range(ivf.nlist)])


def stale_index(vectors, old_images, new_images, nlist: int, *, seed: int, niter: int):
    """A faiss IVF-Flat index trained on the ``old_images`` rows of ``vectors`` only, to which
    the ``new_images`` are then added without retraining (the centroids do not move)."""
    import faiss

    vectors = _matrix("vectors", vectors)
    dim = vectors.shape[1]
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed, index.cp.niter = seed, niter
    index.train(vectors[old_images])                        # yesterday's catalogue
    index.add_with_ids(vectors[old_images], np.asarray(old_images, dtype=np.int64))
    index.add_with_ids(vectors[new_images], np.asarray(new_images, dtype=np.int64))
    return index


def ivf_state(ivf, exact: ExactNeighbours, new_images, params) -> dict:
    """An IVF index's health: largest list over the mean list, and the vectors scanned per
    query and recall@k (search ``params``), over all queries and over the queries whose exact
    nearest image is one of ``new_images``."""
    import faiss

    sizes = faiss_list_sizes(ivf)
    row = {"largest list / mean": sizes.max() / sizes.mean()}
    for who, rows in (("all", np.arange(len(exact.queries))),
                      ("new products", np.flatnonzero(np.isin(exact.ids[:, 0], new_images)))):
        if len(rows) == 0:
            raise ValueError("no query has a new image as its nearest: nothing to measure")
        faiss.cvar.indexIVF_stats.reset()
        _, found = ivf.search(exact.queries[rows], exact.k, params=params)
        row[f"scanned per query ({who})"] = faiss.cvar.indexIVF_stats.ndis / len(rows)
        row[f"recall@{exact.k} ({who})"] = exact.recall(found, rows)
    return row


def freshness_experiment(vectors, product_ids, categories, exact: ExactNeighbours,
                         retrained, params, *, share: float, nlist: int, seed: int,
                         niter: int) -> tuple:
    """Yesterday's index, today's arrivals: two scenarios of new products, added to an index
    whose centroids were trained without them (:func:`stale_index`).

    ``product_ids``: each catalogue image's product; ``categories``: each product's category
    (indexed by product id). The arrivals are a random ``share`` of the products, or every
    product of one category drawn at random (about as many). Returns the :func:`ivf_state`
    table of both stale indexes and of ``retrained`` (the index trained on everything), and
    the new category's stale index, old images and new images.
    """
    rng = np.random.default_rng(seed)
    catalogue_products, product_of_image = np.unique(product_ids, return_inverse=True)
    product_category = np.asarray(categories)[catalogue_products]
    new_category = product_category[rng.integers(len(catalogue_products))]
    n_new = round(share * len(catalogue_products))
    arrivals = {"random products": rng.choice(len(catalogue_products), n_new, replace=False),
                "a new category": np.flatnonzero(product_category == new_category)}
    table = {}
    for scenario, new_products in arrivals.items():
        is_new = np.isin(product_of_image, new_products)
        old_images, new_images = np.flatnonzero(~is_new), np.flatnonzero(is_new)
        index = stale_index(vectors, old_images, new_images, nlist, seed=seed, niter=niter)
        table[f"{scenario}, stale"] = ivf_state(index, exact, new_images, params)
    table["a new category, retrained"] = ivf_state(retrained, exact, new_images, params)
    return pd.DataFrame(table).T, index, old_images, new_images

# -------------------------------------------------------------------------------------- monitoring


def daily_d(reference, values, days, window: int) -> pd.DataFrame:
    """For each day: the KS statistic D (column ``KS D``) of the ``values`` of the ``window``
    days ending on it against ``reference`` (the first ``window - 1`` days are skipped)."""
    window = check_int("window", window, minimum=1)
    values, days = np.asarray(values), np.asarray(days)
    d = {day: ks_test(reference, values[(days > day - window) & (days <= day)])[0]
         for day in np.unique(days)[window - 1:]}
    return pd.DataFrame({"KS D": pd.Series(d, dtype=float)})


def by_week(daily: pd.DataFrame, first_day: int, days: int = 7) -> pd.DataFrame:
    """A per-day table (one row per day) folded into weeks so that it fits the page: one row per
    week and column of ``daily`` (index: the week's days, ``"99-105"``, and the column's name),
    one column per day of the week, 1 to ``days``, counted from ``first_day``. A day that
    ``daily`` lacks, or that lies past its last day, is left blank; values keep their type."""
    days = check_int("days", days, minimum=1)
    first_day = check_int("first_day", first_day)
    if len(daily) == 0 or daily.index.min() < first_day:
        raise ValueError(f"daily must have rows, none before first_day={first_day}")
    last = int(daily.index.max())
    full = daily.astype(object).reindex(range(first_day, last + 1))
    rows = {}
    for start in range(first_day, last + 1, days):
        week = full.loc[start:start + days - 1]
        label = f"{start}-{min(start + days - 1, last)}"
        for column in daily.columns:
            values = [v if pd.notna(v) else "" for v in week[column]]
            rows[label, column] = values + [""] * (days - len(values))
    table = pd.DataFrame.from_dict(rows, orient="index", columns=range(1, days + 1))
    table.index = pd.MultiIndex.from_tuples(table.index, names=["days", None])
    return table


def embed_photos(tables, image_ids, encode, chunks: int = 5) -> np.ndarray:
    """``encode(pixels)`` of the catalogue photos ``image_ids`` of ``tables``, rendered and
    encoded in ``chunks`` parts so that the pixels of all of them are never in memory at once."""
    from mlsd.datasets import visual_search as vs

    parts = np.array_split(np.asarray(image_ids), check_int("chunks", chunks, minimum=1))
    return np.vstack([encode(vs.pixels(tables, "catalogue", part)) for part in parts])


def upload_streams(world, extended, encode, *, first_day: int, live_start: int,
                   n_days: int, n_products: int) -> tuple:
    """The monitor's streams: ordinary new listings (``vs.new_listings``) from ``first_day``
    for ``n_days``, embedded by ``encode(pixels)``, split into drift-free days (before
    ``live_start``, for the threshold) and live days, to which ``extended``'s new-style photos
    (the catalogue rows after the world's) are added.

    Returns ``uploads`` (live photos: ``day``, ``sticker``), their vectors, and the days and
    vectors of the drift-free stream.
    """
    from mlsd.datasets import visual_search as vs

    n_catalogue = len(world.observed["catalogue"])
    others = vs.new_listings(world, n_products, first_day, n_days=n_days)
    ordinary = others["catalogue"].iloc[n_catalogue:]
    vectors = embed_photos(others, ordinary["image_id"], encode)
    live = ordinary["day"].to_numpy() >= live_start
    stickers = extended["catalogue"].iloc[n_catalogue:]
    sticker_vectors = embed_photos(extended, stickers["image_id"], encode, chunks=1)
    uploads = pd.DataFrame({"day": np.r_[ordinary["day"].to_numpy()[live], stickers["day"]],
                            "sticker": np.r_[np.zeros(live.sum(), bool),
                                             np.ones(len(stickers), bool)]})
    return (uploads, np.vstack([vectors[live], sticker_vectors]),
            ordinary["day"].to_numpy()[~live], vectors[~live])


def plot_monitor(axes, monitor: pd.DataFrame, threshold: float, alarm_day: int,
                 wave: tuple, days: range, recovery: pd.DataFrame, colors: dict | None = None):
    """Left: the daily KS D with the threshold, the new style's days shaded and the first
    alarm circled, ticks at ``days``. Right: nDCG@10 per model (rows of ``recovery``) and
    query set (columns).

    ``colors``: ``model``, ``alert``, ``wave`` and ``bars`` (one colour per model; by
    default the baseline's grey, orange and the model's blue).
    """
    colors = colors or {"model": ROLE_COLORS["model"], "alert": ROLE_COLORS["alert"],
                        "wave": OKABE_ITO["orange"], "bars": (ROLE_COLORS["baseline"],
                                                              OKABE_ITO["orange"],
                                                              ROLE_COLORS["model"])}
    left, right = axes
    left.axvspan(wave[0] - 0.5, wave[1] + 0.5, color=colors["wave"], alpha=0.15, linewidth=0,
                 label="sticker uploads")
    left.plot(monitor.index, monitor["KS D"], color=colors["model"], marker=".",
              label="daily KS D")
    left.axhline(threshold, color=colors["alert"], linestyle="--", linewidth=1.2,
                 label="threshold")
    left.plot([alarm_day], [monitor.loc[alarm_day, "KS D"]], "o", color=colors["alert"],
              markersize=10, fillstyle="none", label=f"first alarm (day {alarm_day})")
    left.set(xlabel="day", ylabel="KS D of typicality\nvs launch catalogue",
             title="Label-free monitor")
    left.set_xticks(days)
    left.legend(loc="upper right", fontsize=8)
    x = np.arange(len(recovery.columns))
    for j, (name, color) in enumerate(zip(recovery.index, colors["bars"])):
        right.bar(x + (j - 1) * 0.27, recovery.loc[name], width=0.27, color=color, label=name)
    right.set_xticks(x, recovery.columns)
    right.set(ylabel="nDCG@10", ylim=(0, 1), title="Harm and recovery")
    right.legend(loc="upper right", fontsize=8)
    return axes

# ------------------------- the numbers and sentences the prose quotes (for mlsd.book.glue_numbers)


LEARNED, ORACLE = "learned (contrastive)", "oracle (true relevance)"

_SHORT = {"raw": "raw pixels", "pca": "PCA (64)", "hand": "hand-made features", "learned": LEARNED}


def training_verdict(curve: dict, best_epoch):
    """The sentence on the validation curve: still rising at its last epoch, or peaked."""
    from IPython.display import Markdown

    last = max(curve)
    return Markdown(
        f"is still rising slowly at the last epoch, {last}: more epochs would help a little, "
        "at a cost in run time" if best_epoch == last else
        f"peaks at epoch {best_epoch} and then falls: the network starts to fit the "
        "catalogue's own photos")


def offline_numbers(offline: pd.DataFrame, baseline: str, on_validation: dict) -> dict:
    """The offline evaluation's numbers: nDCG@10 (unseen and seen products) and hit rate of
    each embedding, the learned one's lift share over ``baseline``, and the seen-unseen gap."""
    from IPython.display import Markdown

    from mlsd.evaluation.headline import lift_share

    ndcg = offline["nDCG@10"]
    columns = {"ndcg": "nDCG@10", "ndcg_seen": "nDCG@10, seen products", "hit": "hit rate@10"}
    out = {f"{key}_{short}": float(offline.loc[name, column])
           for short, column in columns.items() for key, name in _SHORT.items()}
    gap = out["learned_ndcg_seen"] - out["learned_ndcg"]
    return {**out, "learned_ndcg_share": lift_share(ndcg[baseline], ndcg[LEARNED], ndcg[ORACLE]),
            "baseline_name": baseline, "baseline_valid": float(on_validation[baseline]),
            "seen_gap_phrase": Markdown(
                f"{gap:.3f} more, the share of its score that is memory of its training "
                "products." if gap > 0.01 else
                "no more: it learned a similarity, not the products.")}


def ann_numbers(recall: pd.Series, nprobe: int, target: float, scanned_share: float) -> dict:
    """The recall sweep's numbers; ``recall`` is indexed by (index, setting)."""
    from IPython.display import Markdown

    faiss_recall, hnsw = recall.xs("IVF, faiss"), recall.xs("HNSW, faiss")
    return {
        "ann_recall_target": target, "ann_nprobe": nprobe,
        "ann_ivf_max_gap": float((recall.xs("IVF, numpy") - faiss_recall).abs().max()),
        "ann_nprobe1_phrase": Markdown(
            "a good share of each query's neighbours sits just across a border"
            if faiss_recall[1] < 0.9 else "most neighbours share the query's cell, but not all"),
        "ann_recall_chosen": float(faiss_recall[nprobe]),
        "ann_recall_numpy_chosen": float(recall[("IVF, numpy", nprobe)]),
        "ann_recall_nprobe1": float(faiss_recall[1]), "ann_scanned_share": float(scanned_share),
        "ann_hnsw_recall_min": float(hnsw.min()), "ann_hnsw_recall_max": float(hnsw.max())}


def speed_numbers(qps: pd.Series, nprobe: int) -> dict:
    """Queries per second of the exact searches and of both IVF indexes at ``nprobe``."""
    chosen, numpy_ivf = qps[("IVF, faiss", nprobe)], qps[("IVF, numpy", nprobe)]
    exact_numpy, exact_faiss = qps[("exact, numpy", None)], qps[("exact, faiss", None)]
    return {"ann_qps_exact_numpy": float(exact_numpy), "ann_qps_exact_faiss": float(exact_faiss),
            "ann_qps_chosen": float(chosen), "ann_us_chosen": float(1e6 / chosen),
            "ann_speedup_vs_flat": float(chosen / exact_faiss),
            "ann_speedup_numpy": float(numpy_ivf / exact_numpy),
            "ann_faiss_over_numpy": float(chosen / numpy_ivf)}


def rerank_numbers(reranking: pd.DataFrame) -> dict:
    """Repeated photos, blocked products and nDCG@10 before and after the re-ranker."""
    rows = {"before": "nearest neighbours", "after": "- both (the re-ranker)"}
    columns = {"repeated": "lists with a repeated photo",
               "blocked": "lists with a blocked product", "ndcg": "nDCG@10"}
    return {f"rerank_{key}_{when}": float(reranking.loc[row, column])
            for when, row in rows.items() for key, column in columns.items()}


def ab_numbers(ab_results: pd.DataFrame, expected: pd.DataFrame) -> dict:
    """The A/B test's numbers; ``expected`` has the rows control, treatment, oracle (in order)
    and ``ab_results`` is :func:`mlsd.evaluation.experiments.ab_table`'s table."""
    from IPython.display import Markdown

    from mlsd.evaluation.experiments import p_value_text

    ctr = ab_results.loc["search CTR"]
    rates = {f"ab_expected{kind}_{key}": float(expected.iloc[i][column])
             for i, key in enumerate(("control", "treatment", "oracle"))
             for kind, column in (("", "expected search CTR"),
                                  ("_exact", "expected exact-product click rate"))}
    return {**rates, "ab_ctr_control": float(ctr["control"]),
            "ab_ctr_treatment": float(ctr["treatment"]),
            "ab_ctr_lift": float(ctr["relative lift"]), "ab_ctr_ci_low": float(ctr["95% CI low"]),
            "ab_ctr_ci_high": float(ctr["95% CI high"]),
            "ab_ctr_p": Markdown(p_value_text(ctr["p-value"])),
            "ab_exact_lift": float(ab_results.loc["exact-product click rate", "relative lift"]),
            "ab_oracle_gap": rates["ab_expected_oracle"] - rates["ab_expected_treatment"]}


def memory_numbers(table: pd.DataFrame, pq_index, id_bytes: int) -> dict:
    """The memory section's numbers: the product quantizer's shape (``pq_index``, a faiss
    ``IndexIVFPQ``), bytes per image by formula (vector or code, plus an id of ``id_bytes``)
    and measured (``table``: :func:`memory_table`), and how many times smaller IVF-PQ is."""
    pq = pq_index.pq
    out = {"scale_pq_m": int(pq.M), "scale_pq_centroids": 2 ** int(pq.nbits),
           "scale_pq_subdim": int(pq.dsub), "scale_id_bytes": id_bytes,
           "scale_flat_bpv": int(pq_index.d) * 4,
           "scale_pq_bpv": int(pq.M) * int(pq.nbits) // 8 + id_bytes}
    out |= {"scale_measured_bpv_" + name.lower().replace("-", "_"): float(value)
           for name, value in table["bytes per image"].items()}
    out["scale_compression"] = float(table.loc["flat", "bytes"] / table.loc["IVF-PQ", "bytes"])
    return out


def scale_numbers(table: pd.DataFrame, ram_gb: float, usable_gb: float, big_dim: int,
                  big_gb: float) -> dict:
    """Index sizes and machines at 100 million and a billion images (``scale_out``'s table)."""
    from IPython.display import Markdown

    machines = int(table.loc["100M", "machines, IVF-Flat"])
    columns = {"flat_gb": "IVF-Flat (GB)", "pq_gb": "IVF-PQ (GB)",
               "machines_flat": "machines, IVF-Flat"}
    out = {f"scale_{key}_{label.lower()}": table.loc[label, column].item()
           for label in ("100M", "1B") for key, column in columns.items()}
    return {**out, "scale_ram_gb": ram_gb, "scale_usable_gb": float(usable_gb),
            "scale_big_dim": big_dim, "scale_flat_gb_100m_big": float(big_gb),
            "scale_fit_phrase": Markdown(f"which still fits in one machine's {usable_gb:.0f} GB"
                                         if machines == 1 else f"or {machines} machines")}


def freshness_numbers(freshness: pd.DataFrame, n_new_images: int, region_queries: int,
                      lists_for_half: int, top_share: float) -> dict:
    """The freshness experiment's numbers and sentences (:func:`freshness_phrases`)."""
    rows = {"random": "random products, stale", "region": "a new category, stale",
            "retrained": "a new category, retrained"}
    columns = {"imbalance": "largest list / mean", "scanned": "scanned per query (all)",
               "recall": "recall@10 (all)", "scanned_new": "scanned per query (new products)",
               "recall_new": "recall@10 (new products)"}
    out = {f"scale_{name}_{key}": float(freshness.loc[row, column])
           for key, row in rows.items() for name, column in columns.items()}
    phrases = freshness_phrases(out["scale_scanned_region"] / out["scale_scanned_retrained"],
                                out["scale_recall_new_retrained"] - out["scale_recall_new_region"],
                                top_share)
    return {**out, **phrases, "scale_new_images": int(n_new_images),
            "scale_region_queries": int(region_queries), "scale_lists_for_half": lists_for_half}


def freshness_phrases(scan_growth: float, recall_cost: float, top_share: float) -> dict:
    """The freshness section's sentences that depend on its numbers (Markdown, for glue).

    ``scan_growth``: vectors scanned per query with stale centroids over retrained ones;
    ``recall_cost``: recall@10 of the new products' queries, retrained minus stale;
    ``top_share``: share of the new images that went to the one list receiving most.
    """
    from IPython.display import Markdown

    if recall_cost > 0.01:
        recall = ("stale centroids cost recall as well: the new products' neighbours are spread "
                  "over lists drawn for other products, and a query for them does not probe "
                  "them all.")
    elif recall_cost < -0.01:
        recall = ("the stale index even finds more of their neighbours, because a few long "
                  "lists hold the new products together and a query for them scans those lists "
                  "whole: recall bought with time.")
    else:
        recall = ("stale centroids cost time here, not recall: a query for a new product "
                  "probes the crowded lists first and finds its neighbours there.")
    return {
        "scale_average_phrase": Markdown("The average query hardly notices" if scan_growth < 1.1
                                         else "Even the average query scans more"),
        "scale_recall_phrase": Markdown(recall),
        "scale_new_in_top_list": Markdown("all of them" if top_share == 1
                                          else f"{top_share:.0%} of them"),
        "scale_pile_phrase": Markdown(
            "pile into the lists nearest to them" if top_share > 0.25 else
            "do not pile up: they spread over the lists that border their region"),
    }


def monitor_numbers(monitor: pd.DataFrame, uploads: pd.DataFrame, null_days,
                    threshold: float, train_d: pd.DataFrame, alarm_delay, alarm_day: int,
                    per_photo_auc: float, window: int, n_stickers: int) -> dict:
    """The monitoring section's numbers: the stream's days and the new style's wave (read
    from ``uploads``: ``day``, ``sticker`` per photo), its ``n_stickers`` products, the
    threshold, the largest daily D of the encoder's own training photos (``train_d``:
    :func:`daily_d`), the alarm, and the sentences of :func:`monitor_phrases`."""
    wave_days = uploads.loc[uploads["sticker"], "day"]
    drift_day, drift_last = int(wave_days.min()), int(wave_days.max())
    first, last = int(uploads["day"].min()), int(uploads["day"].max())
    n_null_days = len(np.unique(null_days))
    wave = uploads["day"].between(drift_day, drift_last)
    return {"mon_live_days": last - first + 1, "mon_null_days": n_null_days,
            "mon_null_days_plus_one": n_null_days + 1,
            "mon_n_stickers": int(n_stickers), "mon_drift_day": drift_day,
            "mon_drift_last": drift_last, "mon_first_day": first, "mon_last_day": last,
            "mon_sticker_share": float(uploads.loc[wave, "sticker"].mean()),
            "mon_threshold": float(threshold), "mon_window": window,
            "mon_train_days_max": float(train_d["KS D"].max()), "mon_alarm_day": int(alarm_day),
            "mon_alarm_d": float(monitor.loc[alarm_day, "KS D"]),
            "mon_per_photo_auc": float(per_photo_auc),
            **monitor_phrases(monitor, drift_day, drift_last - drift_day + 1, window,
                              alarm_delay)}


def monitor_phrases(monitor: pd.DataFrame, drift_day: int, wave_days: int, window: int,
                    delay) -> dict:
    """The monitoring section's sentences and counts (for glue): the days before the wave
    (``mon_quiet_phrase``), the alarms during it (``mon_alarm_days``), the windows after it
    with no wave day in them (``mon_after_wave``) and the alarm's delay (``mon_alarm_delay``).

    ``monitor`` has a day index and the columns ``KS D`` and ``alarm``.
    """
    from IPython.display import Markdown

    quiet = monitor.loc[:drift_day - 1]
    false_days = ", ".join(map(str, quiet.index[quiet["alarm"]]))
    after = monitor.loc[drift_day + wave_days - 1 + window:]
    late = after.index[after["alarm"]].tolist()
    plural = "s" if len(late) > 1 else ""
    return {
        "mon_quiet_phrase": Markdown(
            f"stay below the threshold (at most {quiet['KS D'].max():.3f})" if not false_days
            else f"cross it on {quiet['alarm'].sum()} of {len(quiet)} days (day {false_days}): "
            "a false alarm"),
        "mon_alarm_days": int(monitor.loc[drift_day:drift_day + wave_days - 1, "alarm"].sum()),
        "mon_after_wave": Markdown(
            "once the wave is over, the statistic falls back below the threshold" if not late
            else "once the wave is over, the statistic falls back, though it crosses the "
            f"threshold on {len(late)} of the {len(after)} ordinary days after it "
            f"(day{plural} {', '.join(map(str, late))})"),
        "mon_alarm_delay": Markdown(
            "on the first day of the new style" if delay == 0 else
            f"{delay} day{'s' if delay > 1 else ''} after the new style arrived"),
    }


def recovery_numbers(recovery: pd.DataFrame, gain_ci: dict, retrained: str, control: str,
                     epochs: int, catalogue_size: int) -> dict:
    """nDCG@10 of the retrained model and of the control on both query sets, the 95 %
    interval of the stickers' gain (``gain_ci``: query set -> (low, high)), the retraining's
    ``epochs`` and the number of photos re-embedded (``catalogue_size``)."""
    from IPython.display import Markdown

    sets = {"new": "new-style queries", "old": "old queries (test)"}
    out = {"mon_retrain_epochs": epochs, "mon_catalogue_size": int(catalogue_size)}
    out |= {f"mon_{key}_{short}": float(recovery.loc[name, column])
           for key, name in (("retrained", retrained), ("control", control))
           for short, column in sets.items()}
    for short, column in sets.items():
        out[f"mon_gain_{short}_low"], out[f"mon_gain_{short}_high"] = map(float, gain_ci[column])
    low, high = gain_ci[sets["old"]]
    out["mon_old_phrase"] = Markdown("no detectable difference" if low < 0 < high
                                     else "a detectable difference")
    return out
