"""The portal's OpenID Connect provider (OAuth 2.0 RFC 6749, PKCE RFC 7636, revocation RFC 7009,
JWT access tokens RFC 9068, OpenID Connect Core and Discovery 1.0).

- `keys`: asymmetric signing keys in the portal's database, created on first start, rotated
  by `python -m VEZEPyUniQVerse.services.oidc.rotate`; also the verifier's key source.
- `clients`: the registered clients, seeded from `config/oauth_clients.json`.
- `tokens`: signing access, ID and service tokens; opaque refresh tokens.
- `grants`: the protocol: authorization requests, codes, the token grants, revocation,
  userinfo.
- `startup`: the lifespan hook that wires all of it onto `app.state`.
"""
