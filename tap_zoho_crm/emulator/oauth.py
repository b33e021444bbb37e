"""The accounts server's refresh-token grant and the CRM side's token check.

Zoho's token endpoint reports every problem with HTTP 200 and `{"error": code}`. A client
id is known only in the emulator's own data centre, so a client configured for another
emulator gets `invalid_client`, as a wrong-DC client does at Zoho. Access tokens live
`token_seconds` on the emulator clock.
"""

from __future__ import annotations

import logging
import secrets

from ._http import Request, Response
from .errors import auth_missing, invalid_token
from .state import State

log = logging.getLogger(__name__)


def token_grant(state: State, request: Request) -> Response:
    """`POST /oauth/v2/token`: parameters from the query string or a form body."""
    params = dict(request.query)
    if request.body:
        params.update(Request.parse_query(request.body.decode("utf-8", "replace")))
    config = state.config
    if params.get("client_id") != config.client_id:
        return Response.json({"error": "invalid_client"})
    if params.get("client_secret") != config.client_secret:
        return Response.json({"error": "invalid_client"})
    if params.get("grant_type") != "refresh_token":
        return Response.json({"error": "invalid_code"})
    if params.get("refresh_token") != config.refresh_token:
        return Response.json({"error": "invalid_code"})
    token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
    with state.lock:
        state.tokens[token] = state.now() + config.token_seconds
    log.debug("issued an access token valid for %d s", config.token_seconds)
    return Response.json({"access_token": token, "api_domain": state.base_url,
                          "token_type": "Bearer", "expires_in": config.token_seconds})


def check_token(state: State, request: Request) -> None:
    """Raise Zoho's 401 unless the request carries a live `Zoho-oauthtoken`."""
    header = request.header("Authorization") or ""
    scheme, _, token = header.strip().partition(" ")
    if scheme != "Zoho-oauthtoken" or not token.strip():
        raise auth_missing()
    with state.lock:
        expiry = state.tokens.get(token.strip())
        if expiry is None or expiry <= state.now():
            raise invalid_token()


def expire_tokens(state: State) -> None:
    """Make every issued access token invalid (the `invalid_token` fault)."""
    with state.lock:
        state.tokens.clear()
