"""What the provider's endpoints answer (and what the OpenAPI document shows)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TokenRead(BaseModel):
    """A successful token response (RFC 6749 section 5.1, OpenID Connect Core 3.1.3.3)."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 token type, not a secret
    expires_in: int
    scope: str
    refresh_token: str | None = None
    id_token: str | None = None


class OAuthErrorRead(BaseModel):
    """An OAuth error (RFC 6749 section 5.2)."""

    error: str
    error_description: str


class UserInfoRead(BaseModel):
    """Claims about the person (OpenID Connect Core section 5.3.2); by scope."""

    model_config = ConfigDict(extra="allow")

    sub: str
    preferred_username: str | None = None
    name: str | None = None
    email: str | None = None
    email_verified: bool | None = None


class JWKSRead(BaseModel):
    """The JWK Set (RFC 7517 section 5): public signing keys, active and recently retired."""

    keys: list[dict[str, Any]] = Field(default_factory=list)


class ProviderMetadataRead(BaseModel):
    """OpenID Provider Metadata (OpenID Connect Discovery 1.0 section 3, RFC 8414)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    revocation_endpoint: str
    response_types_supported: list[str]
    response_modes_supported: list[str]
    grant_types_supported: list[str]
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    revocation_endpoint_auth_methods_supported: list[str]
    code_challenge_methods_supported: list[str]
    scopes_supported: list[str]
    claims_supported: list[str]
    prompt_values_supported: list[str]
    authorization_response_iss_parameter_supported: bool
