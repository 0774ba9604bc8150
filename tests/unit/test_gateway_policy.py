"""The gateway's rules (paude.gateway.policy), the host's choice of credential
(paude.auth) and what of ~/.claude reaches the agent (paude.claude_home)."""

from __future__ import annotations

import json

import pytest

from paude.auth import build_agent_model_env, find_model_auth
from paude.claude_home import render_claude_json_seed
from paude.errors import ConfigError
from paude.gateway.policy import (
    AuthMode,
    GatewayConfig,
    build_response_headers,
    build_upstream_headers,
    is_client_allowed,
    parse_config,
    route,
)

VERTEX = GatewayConfig(AuthMode.VERTEX, ("10.89.0.0/24",), adc={"type": "authorized_user"},
                       project="my-proj")
API = GatewayConfig(AuthMode.API_KEY, ("10.89.0.0/24",), secret="sk-canary")
PREDICT = "/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/claude-x@1"


def test_only_the_session_network_may_call_and_never_its_bridge() -> None:
    assert is_client_allowed("10.89.0.130", ["10.89.0.0/24"])
    assert not is_client_allowed("10.89.0.1", ["10.89.0.0/24"])  # host / routed traffic
    assert not is_client_allowed("10.90.0.5", ["10.89.0.0/24"])
    assert not is_client_allowed(None, ["10.89.0.0/24"])
    assert not is_client_allowed("not-an-ip", ["10.89.0.0/24"])


@pytest.mark.parametrize(("path", "url"), [
    (f"{PREDICT}:streamRawPredict", f"https://us-east5-aiplatform.googleapis.com{PREDICT}"
                                    ":streamRawPredict"),
    (PREDICT.replace("us-east5", "global") + ":rawPredict",
     "https://aiplatform.googleapis.com" + PREDICT.replace("us-east5", "global") + ":rawPredict"),
])
def test_vertex_model_calls_go_to_the_regions_endpoint(path: str, url: str) -> None:
    assert route(VERTEX, "POST", path) == url


@pytest.mark.parametrize("path", [
    PREDICT.replace("my-proj", "other-proj") + ":rawPredict",  # another project
    PREDICT + ":predict",  # not an Anthropic raw call
    PREDICT.replace("anthropic", "google") + ":rawPredict",
    PREDICT.replace("us-east5", "evil.com#") + ":rawPredict",  # host injection
    "/storage/v1/b/bucket/o",
    "/v1/messages",
])
def test_vertex_token_is_used_for_nothing_else(path: str) -> None:
    assert route(VERTEX, "POST", path) is None


def test_anthropic_only_messages_with_post() -> None:
    assert route(API, "POST", "/v1/messages", "beta=true") == \
        "https://api.anthropic.com/v1/messages?beta=true"
    assert route(API, "POST", "/v1/messages/count_tokens") is not None
    assert route(API, "GET", "/v1/messages") is None
    assert route(API, "POST", "/v1/files") is None
    assert route(API, "POST", "/api/oauth/claude_cli/create_api_key") is None


def test_headers_forwarded_and_the_agents_auth_replaced() -> None:
    incoming = [("Authorization", "Bearer paude-gateway"), ("x-api-key", "agent-made-up"),
                ("anthropic-beta", "a-1"), ("anthropic-version", "2023-06-01"),
                ("Cookie", "c"), ("Host", "paude-gateway:8080"), ("content-type", "x")]
    api = build_upstream_headers(incoming, AuthMode.API_KEY, "sk-canary")
    assert api == {"x-api-key": "sk-canary", "anthropic-beta": "a-1",
                   "anthropic-version": "2023-06-01", "content-type": "x"}
    oauth = build_upstream_headers(incoming, AuthMode.OAUTH, "tok")
    assert oauth["authorization"] == "Bearer tok" and "x-api-key" not in oauth
    assert oauth["anthropic-beta"] == "a-1,oauth-2025-04-20"
    vertex = build_upstream_headers(incoming, AuthMode.VERTEX, "ya29.x")
    assert vertex["authorization"] == "Bearer ya29.x"
    assert build_response_headers([("Content-Length", "3"), ("content-type", "text/event-stream"),
                                   ("Transfer-Encoding", "chunked")]) == \
        [("content-type", "text/event-stream")]


def test_config_round_trips_and_refuses_what_it_cannot_use() -> None:
    assert parse_config(VERTEX.to_json()) == VERTEX
    with pytest.raises(ValueError, match="needs its secret"):
        parse_config(json.dumps({"mode": "api-key", "clients": []}))
    with pytest.raises(ValueError, match="must be https"):
        parse_config(json.dumps({"mode": "oauth", "secret": "t",
                                 "anthropic_upstream": "http://x"}))


def test_host_credential_choice_and_agent_env() -> None:
    adc = '{"type": "authorized_user", "refresh_token": "canary"}'
    env = {"CLAUDE_CODE_USE_VERTEX": "1", "ANTHROPIC_VERTEX_PROJECT_ID": "p",
           "CLOUD_ML_REGION": "us-east5", "ANTHROPIC_API_KEY": "k"}
    auth = find_model_auth(env, adc, "/h/adc.json")
    assert auth is not None and auth.mode is AuthMode.VERTEX and auth.project == "p"
    assert "canary" not in repr(auth)
    agent = build_agent_model_env(auth, env)
    assert agent["ANTHROPIC_VERTEX_BASE_URL"] == "http://paude-gateway:8080/v1"
    assert agent["CLAUDE_CODE_SKIP_VERTEX_AUTH"] == "1"
    assert "canary" not in json.dumps(agent) and "k" not in agent.values()
    key = find_model_auth({"ANTHROPIC_API_KEY": "sk"}, None, "-")
    assert key is not None and key.mode is AuthMode.API_KEY
    assert build_agent_model_env(key, {})["ANTHROPIC_AUTH_TOKEN"] == "paude-gateway"
    oauth = find_model_auth({"CLAUDE_CODE_OAUTH_TOKEN": "t"}, None, "-")
    assert oauth is not None and oauth.mode is AuthMode.OAUTH
    assert find_model_auth({}, adc, "-") is None
    with pytest.raises(ConfigError, match="no credentials at /h/adc.json"):
        find_model_auth({"CLAUDE_CODE_USE_VERTEX": "1"}, None, "/h/adc.json")
    with pytest.raises(ConfigError, match="not an https URL"):
        find_model_auth({"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": "http://x"}, None, "-")


def test_claude_json_seed_keeps_preferences_only() -> None:
    host = json.dumps({"hasCompletedOnboarding": True, "theme": "dark", "primaryApiKey": "sk",
                       "oauthAccount": {"emailAddress": "a@b"}, "projects": {"/x": {}}})
    assert json.loads(render_claude_json_seed(host)) == {"hasCompletedOnboarding": True,
                                                         "theme": "dark"}
    assert json.loads(render_claude_json_seed(None)) == {}
    assert json.loads(render_claude_json_seed("[1]")) == {}


def test_an_upstream_on_another_port_keeps_it_to_the_gateways_call() -> None:
    # ANTHROPIC_BASE_URL on port 8443 passes the CLI's check (test_cli_bad_values) and the
    # gateway calls exactly that host and port: no proxy port rule stands between them.
    auth = find_model_auth({"ANTHROPIC_API_KEY": "sk",
                            "ANTHROPIC_BASE_URL": "https://gw.example.com:8443/"}, None, "-")
    assert auth is not None
    config = parse_config(auth.gateway_config(("10.89.0.0/24",)).to_json())
    assert route(config, "POST", "/v1/messages") == "https://gw.example.com:8443/v1/messages"
