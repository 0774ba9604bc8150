"""The sync's exec argv and the parsers of what the pod sends back."""

from __future__ import annotations

import json
import re

from paude.sync.state import Index, Kind, RemoteStat
from paude.sync.transport import (
    SERVER_SCRIPT,
    ExecTransport,
    build_kube_prefix,
    build_podman_prefix,
    build_watch_exclude,
    parse_scan,
    parse_watch_event,
)


def test_kube_prefix_execs_into_the_agent_container_with_stdin() -> None:
    prefix = build_kube_prefix("kubectl", pod="paude-x-0", namespace="ns", container="agent",
                               context="ctx")
    assert prefix == ("kubectl", "--context", "ctx", "--namespace", "ns", "exec", "-i",
                      "paude-x-0", "-c", "agent", "--")
    assert "--context" not in build_kube_prefix("oc", pod="p", namespace="n", container="c")


def test_scripts_are_constant_and_data_travels_as_arguments() -> None:
    t = ExecTransport(build_podman_prefix("box"), "/work space")
    argv = t.server_argv()
    assert argv[:4] == ["podman", "exec", "-i", "box"]
    assert argv[4:7] == ["sh", "-c", SERVER_SCRIPT]
    assert argv[7:9] == ["sh", "/work space"]
    assert "node_modules" in argv[9:] and ".git" not in argv[9:]
    assert t.watch_argv()[8:9] == ["/work space"]


def test_parse_scan_reads_nul_separated_rows() -> None:
    raw = (b"f\x00644\x003\x001700000000.5000000000\x00./a b\x00\x00"
           b"l\x00777\x0011\x001700000001.0000000000\x00./lnk\x00/etc/passwd\x00"
           b"d\x00755\x004096\x001700000002.0000000000\x00./d\x00\x00")
    rows = parse_scan(raw)
    assert rows == [("a b", "f", 0o644, 3, 1700000000.5, ""),
                    ("lnk", "l", 0o777, 11, 1700000001.0, "/etc/passwd"),
                    ("d", "d", 0o755, 4096, 1700000002.0, "")]


def test_parse_watch_event() -> None:
    assert parse_watch_event(b"CLOSE_WRITE,CLOSE /workspace/a b", "/workspace") == (
        "a b", False, False)
    assert parse_watch_event(b"CREATE,ISDIR /workspace/d", "/workspace") == ("d", True, True)
    assert parse_watch_event(b"MOVED_FROM,ISDIR /workspace/d", "/workspace") == (
        "d", True, False)
    assert parse_watch_event(b"DELETE /elsewhere/x", "/workspace") is None


def test_watch_exclude_regex() -> None:
    rx = re.compile(build_watch_exclude("/workspace"))
    assert rx.search("/workspace/a/node_modules/x")
    assert rx.search("/workspace/.paude/tmp/x")
    assert not rx.search("/workspace/.git/objects/ab")
    assert not rx.search("/workspace/src/node_modules_notes")


def test_index_round_trips_through_json() -> None:
    from paude.sync.state import Entry, Record

    index = Index({"a": Record(Entry(Kind.FILE, 0o644, "d1"), (1, 2, 3, 4), RemoteStat(2, 1.5)),
                   "d": Record(Entry(Kind.DIR, 0o755))}, volume="0a1b")
    again = Index.from_json(json.loads(index.to_text()))
    assert again.records == index.records and again.volume == "0a1b"
    # An index of before volume ids names no volume: it is not trusted as a base.
    old = {**json.loads(index.to_text()), "version": 1}
    del old["volume"]
    assert Index.from_json(old).records == {}
    assert Index.from_json({"version": 0, "records": {}}).records == {}
