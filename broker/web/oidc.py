"""OpenID Connect sign-in: authorization code with PKCE, state and nonce, ID tokens checked against the JWKS.

``start_sign_in`` makes the state, nonce and PKCE verifier (kept in the
server-side session) and the provider's authorization URL; ``finish_sign_in``
checks the state, swaps the code (with the verifier) for tokens at the token
endpoint, and verifies the ID token: its signature against the provider's
published keys (fetched again once when a key id is unknown: the provider
rotated), issuer, audience, expiry and nonce. Only then are its claims used.
The pure parts (PKCE, the URL, ``verify_id_token``) need no network.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp
import jwt

from broker.errors import SignInFailed

__all__ = ["ALGORITHMS", "OidcClient", "Provider", "SignIn", "authorization_url", "pkce_pair", "verify_id_token"]

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]  # never "none"
LEEWAY_S = 60
TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclasses.dataclass(frozen=True, slots=True)
class Provider:
    """The endpoints the provider's discovery document names."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None = None

    @classmethod
    def from_discovery(cls, doc: Mapping[str, Any], expected_issuer: str) -> Provider:
        """Raises SignInFailed when the document is not for ``expected_issuer`` or lacks an endpoint."""
        if doc.get("issuer") != expected_issuer:
            raise SignInFailed(f"the provider's discovery document names issuer {doc.get('issuer')!r}, not ours")
        try:
            return cls(
                str(doc["issuer"]),
                str(doc["authorization_endpoint"]),
                str(doc["token_endpoint"]),
                str(doc["jwks_uri"]),
                str(doc["end_session_endpoint"]) if doc.get("end_session_endpoint") else None,
            )
        except KeyError as exc:
            raise SignInFailed(f"the provider's discovery document has no {exc.args[0]}") from exc


@dataclasses.dataclass(frozen=True, slots=True)
class SignIn:
    """A sign-in under way: what the session keeps until the provider sends the person back."""

    state: str
    nonce: str
    verifier: str
    return_to: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(
    provider: Provider, *, client_id: str, redirect_uri: str, state: str, nonce: str, challenge: str, scope: str
) -> str:
    """Where to send the browser to sign in."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    sep = "&" if "?" in provider.authorization_endpoint else "?"
    return provider.authorization_endpoint + sep + urlencode(query)


def verify_id_token(
    token: str, jwks: Mapping[str, Any], *, issuer: str, client_id: str, nonce: str, now: float | None = None
) -> dict[str, Any]:
    """The ID token's claims, once its signature, issuer, audience, times and nonce check out.

    Raises:
        SignInFailed: anything does not check out (``evidence['unknown_kid']`` when the key id is not in the set).
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise SignInFailed("the provider sent an ID token that is not a JWT") from exc
    if header.get("alg") not in ALGORITHMS:
        raise SignInFailed(f"the ID token is signed with {header.get('alg')!r}, which Jigsaw does not accept")
    try:
        keys = jwt.PyJWKSet.from_dict(dict(jwks))
    except jwt.PyJWTError as exc:
        raise SignInFailed("the provider's key set cannot be read") from exc
    kid = header.get("kid")
    candidates = [k for k in keys.keys if kid is None or k.key_id == kid]
    if not candidates:
        raise SignInFailed(f"the ID token's key {kid!r} is not in the provider's key set", unknown_kid=kid)
    last: Exception | None = None
    for key in candidates:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[str(header["alg"])],
                audience=client_id,
                issuer=issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            last = exc
            continue
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise SignInFailed("the ID token's nonce is not the one this sign-in sent")
        iat = claims.get("iat")
        if isinstance(iat, int | float) and iat > (now or time.time()) + LEEWAY_S:
            raise SignInFailed("the ID token was issued in the future")
        return claims
    raise SignInFailed(f"the ID token did not verify: {last}") from last


class OidcClient:
    """Talks to one provider: discovery, keys and the token endpoint (over an aiohttp client session)."""

    def __init__(
        self, issuer: str, client_id: str, client_secret: str | None, redirect_uri: str, scope: str = "openid profile"
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.scope = scope
        self._provider: Provider | None = None
        self._jwks: Mapping[str, Any] | None = None
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._http

    async def _json(self, method: str, url: str, **kw: Any) -> Any:
        try:
            async with self._session().request(method, url, **kw) as response:
                if response.status != 200:
                    raise SignInFailed(f"the identity provider answered {response.status} at {url}", retriable=True)
                return await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SignInFailed(f"the identity provider could not be reached at {url}: {exc}") from exc

    async def provider(self) -> Provider:
        """The discovery document, read once."""
        if self._provider is None:
            doc = await self._json("GET", self.issuer + "/.well-known/openid-configuration")
            self._provider = Provider.from_discovery(doc, self.issuer)
        return self._provider

    async def start_sign_in(self, return_to: str) -> tuple[str, SignIn]:
        """The authorization URL and what the session must keep until the callback."""
        provider = await self.provider()
        verifier, challenge = pkce_pair()
        pending = SignIn(secrets.token_urlsafe(24), secrets.token_urlsafe(24), verifier, return_to)
        url = authorization_url(
            provider,
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            state=pending.state,
            nonce=pending.nonce,
            challenge=challenge,
            scope=self.scope,
        )
        return url, pending

    async def finish_sign_in(self, pending: SignIn, query: Mapping[str, str]) -> dict[str, Any]:
        """The verified ID-token claims for the provider's redirect back (``?code=...&state=...``).

        Token times are checked against the machine's real clock, never the service's (tests fix that one).
        """
        if "error" in query:
            raise SignInFailed(f"the identity provider refused the sign-in: {query.get('error')}")
        if not hmac.compare_digest(query.get("state", ""), pending.state):
            raise SignInFailed("the sign-in's state does not match: start again from the sign-in page")
        code = query.get("code")
        if not code:
            raise SignInFailed("the identity provider sent no authorization code")
        provider = await self.provider()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": pending.verifier,
            "client_id": self.client_id,
        }
        auth = aiohttp.BasicAuth(self.client_id, self.client_secret) if self.client_secret else None
        tokens = await self._json("POST", provider.token_endpoint, data=form, auth=auth)
        token = tokens.get("id_token") if isinstance(tokens, dict) else None
        if not isinstance(token, str):
            raise SignInFailed("the identity provider sent no ID token")
        jwks = self._jwks or await self._json("GET", provider.jwks_uri)
        try:
            claims = verify_id_token(
                token,
                jwks,
                issuer=provider.issuer,
                client_id=self.client_id,
                nonce=pending.nonce,
            )
        except SignInFailed as exc:
            if "unknown_kid" not in exc.evidence or self._jwks is None:
                raise
            jwks = await self._json("GET", provider.jwks_uri)  # the provider rotated its keys: read them again
            claims = verify_id_token(
                token,
                jwks,
                issuer=provider.issuer,
                client_id=self.client_id,
                nonce=pending.nonce,
            )
        self._jwks = jwks
        return claims

    async def end_session_url(self, post_logout: str) -> str | None:
        """The provider's sign-out page, if it has one."""
        provider = await self.provider()
        if provider.end_session_endpoint is None:
            return None
        query = urlencode({"client_id": self.client_id, "post_logout_redirect_uri": post_logout})
        return f"{provider.end_session_endpoint}?{query}"
