"""System diagrams in one consistent style, built with Graphviz from a small spec.

Every chapter draws its design the same way: the **offline world** (logs, feature pipelines,
training, evaluation, batch jobs) and the **online world** (the request path, serving, logging)
as two visibly different clusters; data stores as cylinders; the request path in bold orange.

Example
-------
>>> spec = {
...     "offline": {"logs": "Event logs", "train": "Training", "registry": "Model registry"},
...     "online": {"request": "Request", "server": "Model server", "response": "Response"},
...     "stores": ["logs", "registry"],
...     "edges": [("logs", "train"), ("train", "registry"), ("registry", "server", "deploy")],
...     "request_path": ["request", "server", "response"],
... }
>>> graph = system_diagram(spec)   # a graphviz.Digraph; a notebook shows it as SVG
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import graphviz

__all__ = ["STYLE", "system_diagram"]

#: Colours from the Okabe-Ito palette (colour-blind safe), as in :mod:`mlsd.book.plotting`.
STYLE = {
    "font": "Helvetica",
    "offline_fill": "#EAF2FA",
    "offline_line": "#0072B2",
    "online_fill": "#FDF3E3",
    "online_line": "#E69F00",
    "request_path": "#D55E00",
    "edge": "#555555",
}

_KEYS = {"title", "offline", "online", "stores", "edges", "request_path"}
_NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WORLDS = {
    "offline": "Offline world: data, training, batch jobs",
    "online": "Online world: serving a request",
}


def _check_spec(spec) -> dict[str, str]:
    """Validate ``spec``; return ``{node id: world}``."""
    if not isinstance(spec, Mapping):
        raise TypeError(f"spec must be a mapping (dict), got {type(spec).__name__}")
    if not spec:
        raise ValueError("spec is empty: give at least one node under 'offline' or 'online'")
    unknown = set(spec) - _KEYS
    if unknown:
        raise ValueError(f"unknown spec keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    world_of: dict[str, str] = {}
    for world in _WORLDS:
        nodes = spec.get(world, {})
        if not isinstance(nodes, Mapping):
            raise TypeError(f"spec[{world!r}] must map node ids to labels, got {type(nodes).__name__}")
        for node, label in nodes.items():
            if not isinstance(node, str) or not _NODE_ID.match(node):
                raise ValueError(f"node id {node!r} in {world!r} must be an identifier such as 'feature_store'")
            if not isinstance(label, str) or not label.strip():
                raise ValueError(f"node {node!r} needs a non-empty label")
            if node in world_of:
                raise ValueError(f"node id {node!r} appears in both 'offline' and 'online'")
            world_of[node] = world
    if not world_of:
        raise ValueError("spec has no nodes: give at least one node under 'offline' or 'online'")

    def known(node, where):
        if node not in world_of:
            raise ValueError(f"{where} names unknown node {node!r}; known nodes: {sorted(world_of)}")

    for node in spec.get("stores", []):
        known(node, "'stores'")
    for edge in spec.get("edges", []):
        if isinstance(edge, str) or not isinstance(edge, Sequence) or len(edge) not in (2, 3):
            raise ValueError(f"each edge must be (source, target) or (source, target, label), got {edge!r}")
        known(edge[0], f"edge {tuple(edge)!r}")
        known(edge[1], f"edge {tuple(edge)!r}")
    path = spec.get("request_path", [])
    if isinstance(path, str) or not isinstance(path, Sequence):
        raise TypeError(f"'request_path' must be a list of node ids, got {type(path).__name__}")
    if len(path) == 1:
        raise ValueError("'request_path' needs at least two nodes (or none)")
    for node in path:
        known(node, "'request_path'")
    return world_of


def system_diagram(spec: Mapping) -> graphviz.Digraph:
    """Build the system diagram described by ``spec``.

    Parameters
    ----------
    spec : mapping
        ``offline`` and ``online``: ``{node id: label}`` for the two worlds (at least one node
        in all). ``stores``: node ids drawn as cylinders (databases, logs, indexes).
        ``edges``: ``(source, target)`` or ``(source, target, label)``. ``request_path``: the
        node ids a request visits, in order; its edges are drawn in bold orange (and added if
        not among ``edges``). ``title``: an optional caption under the diagram.

    Returns
    -------
    graphviz.Digraph
        Rendered as SVG in a notebook; ``.source`` gives the DOT text.

    Raises
    ------
    TypeError, ValueError
        On an empty spec, an unknown key, a duplicate or unknown node id, or a malformed edge.
    """
    world_of = _check_spec(spec)
    stores = set(spec.get("stores", []))
    path = list(spec.get("request_path", []))
    on_path = set(path)
    path_edges = set(zip(path, path[1:]))

    font = STYLE["font"]
    graph = graphviz.Digraph("system", format="svg")
    graph.attr(rankdir="TB", fontname=font, fontsize="14", nodesep="0.2", ranksep="0.3", newrank="true")
    graph.attr("node", fontname=font, fontsize="14", shape="box", style="rounded,filled",
               fillcolor="white", color="#333333", margin="0.1,0.05")
    graph.attr("edge", fontname=font, fontsize="13", color=STYLE["edge"], arrowsize="0.7")
    if spec.get("title"):
        graph.attr(label=str(spec["title"]), labelloc="b")

    for world, caption in _WORLDS.items():
        nodes = spec.get(world, {})
        if not nodes:
            continue
        with graph.subgraph(name=f"cluster_{world}") as cluster:
            cluster.attr(label=caption, labeljust="l", labelloc="t", style="rounded,filled",
                         fillcolor=STYLE[f"{world}_fill"], color=STYLE[f"{world}_line"], penwidth="1.5")
            for node, label in nodes.items():
                attrs = {"shape": "cylinder", "style": "filled"} if node in stores else {}
                if node in on_path:
                    attrs.update(color=STYLE["request_path"], penwidth="2")
                cluster.node(node, label, **attrs)

    drawn = set()
    for edge in spec.get("edges", []):
        source, target = edge[0], edge[1]
        attrs = {"label": str(edge[2])} if len(edge) == 3 else {}
        if (source, target) in path_edges:
            attrs.update(color=STYLE["request_path"], penwidth="2.5")
        if world_of[source] != world_of[target]:
            # crossing between worlds (a deploy, a log, a batch upload): dashed, and free of the
            # layout's rank order so that each world keeps its own left-to-right flow
            attrs.setdefault("style", "dashed")
            attrs["constraint"] = "false"
        graph.edge(source, target, **attrs)
        drawn.add((source, target))
    for source, target in zip(path, path[1:]):
        if (source, target) not in drawn:
            graph.edge(source, target, color=STYLE["request_path"], penwidth="2.5")
    return graph
