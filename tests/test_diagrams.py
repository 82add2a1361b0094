import graphviz
import pytest

from mlsd.book.diagrams import STYLE, system_diagram

SPEC = {
    "title": "A design",
    "offline": {"logs": "Event logs", "train": "Training", "registry": "Model registry"},
    "online": {"request": "Request", "server": "Model server", "response": "Response"},
    "stores": ["logs", "registry"],
    "edges": [("logs", "train"), ("train", "registry"), ("registry", "server", "deploy"), ("request", "server")],
    "request_path": ["request", "server", "response"],
}


def test_builds_two_clusters_with_stores_and_a_highlighted_path():
    graph = system_diagram(SPEC)
    assert isinstance(graph, graphviz.Digraph)
    dot = graph.source
    assert "subgraph cluster_offline" in dot and "subgraph cluster_online" in dot
    assert STYLE["offline_fill"] in dot and STYLE["online_fill"] in dot
    assert 'logs [label="Event logs" shape=cylinder' in dot
    assert 'train [label=Training]' in dot  # not a store: the default box
    # both request-path edges are highlighted, the missing one added
    assert f'request -> server [color="{STYLE["request_path"]}"' in dot
    assert f'server -> response [color="{STYLE["request_path"]}"' in dot
    # an edge that crosses from the offline to the online world is dashed and keeps its label
    assert "registry -> server [label=deploy constraint=false style=dashed]" in dot


def test_renders_to_svg():
    svg = system_diagram(SPEC).pipe(format="svg", encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "Offline world" in svg and "Online world" in svg


def test_rendering_is_deterministic():
    assert system_diagram(SPEC).pipe(format="svg") == system_diagram(SPEC).pipe(format="svg")


def test_one_world_alone_is_enough():
    dot = system_diagram({"online": {"a": "A", "b": "B"}, "request_path": ["a", "b"]}).source
    assert "cluster_online" in dot and "cluster_offline" not in dot


@pytest.mark.parametrize(
    "spec, error, message",
    [
        ({}, ValueError, "spec is empty"),
        ([("a", "b")], TypeError, "spec must be a mapping"),
        ({"offline": {}, "online": {}}, ValueError, "spec has no nodes"),
        ({"offline": {"a": "A"}, "colour": "red"}, ValueError, "unknown spec keys \\['colour'\\]"),
        ({"offline": {"a": "A"}, "online": {"a": "A again"}}, ValueError, "node id 'a' appears in both"),
        ({"offline": {"a b": "A"}}, ValueError, "must be an identifier"),
        ({"offline": {"a": ""}}, ValueError, "needs a non-empty label"),
        ({"offline": ["a", "b"]}, TypeError, "must map node ids to labels"),
        ({"offline": {"a": "A"}, "edges": [("a", "z")]}, ValueError, "unknown node 'z'"),
        ({"offline": {"a": "A"}, "edges": [("a",)]}, ValueError, "each edge must be"),
        ({"offline": {"a": "A"}, "edges": ["ab"]}, ValueError, "each edge must be"),
        ({"offline": {"a": "A"}, "stores": ["db"]}, ValueError, "'stores' names unknown node 'db'"),
        ({"offline": {"a": "A"}, "request_path": ["a"]}, ValueError, "at least two nodes"),
        ({"offline": {"a": "A"}, "request_path": "a"}, TypeError, "must be a list of node ids"),
    ],
)
def test_bad_specs_are_rejected_with_the_reason(spec, error, message):
    with pytest.raises(error, match=message):
        system_diagram(spec)
