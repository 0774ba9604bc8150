"""Credentials the gateway adds upstream; Vertex access tokens minted with google-auth.

Runs in the gateway image only (google-auth and requests are installed there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from paude.gateway.policy import VERTEX_SCOPE, AuthMode, GatewayConfig


class CredentialError(Exception):
    """The upstream credential cannot be had (e.g. the ADC's refresh was refused)."""


class CredentialSource(Protocol):
    """Something that yields the current upstream credential."""

    async def current(self) -> str:
        """Return the credential to send now."""
        ...


class StaticCredential:
    """An API key or a long-lived OAuth token: sent as it is."""

    def __init__(self, value: str) -> None:
        self._value = value

    async def current(self) -> str:
        """Return the key or token."""
        return self._value


class VertexTokens:
    """Access tokens from the user's ADC, refreshed before they expire.

    google-auth's ``Credentials.valid`` turns false a few minutes before the
    token's expiry (its refresh threshold), so a token is never sent that
    expires in flight. One refresh at a time: concurrent requests wait on it.
    """

    def __init__(self, adc: Mapping[str, Any]) -> None:
        import google.auth

        self._credentials, _ = google.auth.load_credentials_from_dict(  # type: ignore[no-untyped-call]
            dict(adc), scopes=[VERTEX_SCOPE])
        self._lock = asyncio.Lock()

    async def current(self) -> str:
        """Return a valid access token, refreshing it first when needed."""
        async with self._lock:
            if not self._credentials.valid:
                await asyncio.to_thread(self._refresh)
            return str(self._credentials.token)

    def _refresh(self) -> None:
        from google.auth.exceptions import GoogleAuthError
        from google.auth.transport.requests import Request

        try:
            self._credentials.refresh(Request())
        except GoogleAuthError as err:
            raise CredentialError(f"refreshing the Google credentials failed: {err}") from err


def build_credential_source(config: GatewayConfig) -> CredentialSource:
    """Return the credential source for ``config``'s mode."""
    if config.mode is AuthMode.VERTEX:
        return VertexTokens(config.adc)
    return StaticCredential(config.secret)
