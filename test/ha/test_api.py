"""The client's parts that need no Home Assistant: event framing and patches, fingerprints."""

from __future__ import annotations

import pytest

from custom_components.zigbee2mqtt_ha.api import (
    ClusterStatus,
    Operation,
    SidecarEvent,
    _EventParser,
    normalize_fingerprint,
)

from .fake_sidecar import mixed_status, node, operation


def feed(parser: _EventParser, text: str) -> list[SidecarEvent]:
    """Feed lines as the HTTP body delivers them."""
    return [
        event
        for line in text.splitlines(keepends=True)
        if (event := parser.feed(line.encode())) is not None
    ]


def test_event_framing() -> None:
    """Comments are skipped, data lines join, the id carries over, CRLF is fine."""
    parser = _EventParser()
    events = feed(
        parser,
        "retry: 3000\n: connected, last event 0\n\n"
        'id: 7\r\nevent: node.changed\r\ndata: {"a":\r\ndata: 1}\r\n\r\n'
        ": keep-alive\n\n"
        'event: resync\ndata: {"seq":9}\n\n'
        "event: broken\ndata: not json\n\n",
    )
    assert [(e.type, e.id, dict(e.data)) for e in events] == [
        ("node.changed", "7", {"a": 1}),
        ("resync", "7", {"seq": 9}),
    ]


def test_patches_keep_roles_in_step_and_ask_for_refresh_when_unsure() -> None:
    """A new active node flips roles; resync and unknown types need a full refresh."""
    status = ClusterStatus.from_dict(mixed_status())
    changed = status.apply(
        SidecarEvent(
            type="state.changed",
            id="1",
            data={"state": {"active": "node2", "automation": {}, "fenced": {}}},
        )
    )
    assert changed is not None
    assert changed.nodes["node2"].role == "active"
    assert changed.nodes["node1"].role == "standby"
    assert status.apply(SidecarEvent(type="resync", id=None, data={})) is None
    assert status.apply(SidecarEvent(type="cluster.exploded", id=None, data={})) is None
    # A malformed event is not trusted either.
    assert status.apply(SidecarEvent(type="node.changed", id=None, data={})) is None
    # An unknown node appears when the sidecar reports it.
    added = status.apply(
        SidecarEvent(
            type="node.changed",
            id=None,
            data={"node": node("node4", "standby", "unknown")},
        )
    )
    assert added is not None
    assert set(added.nodes) == {"node1", "node2", "node3", "node4"}


def test_operation_nodes_from_result_then_params() -> None:
    """From/to come from what happened, else from what was asked."""
    done = Operation.from_dict(
        operation(
            "switchover",
            "succeeded",
            params={"target": "node2"},
            result={"from": "node1", "to": "node3"},
        )
    )
    assert (done.from_node, done.to_node) == ("node1", "node3")
    asked = Operation.from_dict(
        operation("failover", "failed", params={"target": "node2"})
    )
    assert (asked.from_node, asked.to_node) == (None, "node2")


@pytest.mark.parametrize(
    "given",
    [
        "SHA256:" + ":".join(["0A"] * 32),
        "sha256:" + ":".join(["0a"] * 32),
        "0a" * 32,
        " " + ":".join(["0A"] * 32) + " ",
    ],
)
def test_fingerprints_as_users_paste_them(given: str) -> None:
    """The sidecar's log's form, lower case, bare hex, with spaces: one normal form."""
    assert normalize_fingerprint(given) == "SHA256:" + ":".join(["0A"] * 32)


@pytest.mark.parametrize(
    "given", ["", "SHA256:0A:0B", "SHA256:" + "ZZ" * 32, "SHA1:" + "0A" * 20]
)
def test_not_a_fingerprint(given: str) -> None:
    """Anything that is not 32 bytes of hex is refused."""
    with pytest.raises(ValueError, match="not a SHA-256 fingerprint"):
        normalize_fingerprint(given)
