"""Request dependencies: the app's state, and who is calling (bearer API keys from settings, each optionally
limited to named collections). Keys are read from the app's Settings at request time, never at import."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ragqa.api.errors import Forbidden, Unauthorized
from ragqa.api.state import AppState


def get_state(request: Request) -> AppState:
    return request.app.state.ragqa


State = Annotated[AppState, Depends(get_state)]

_bearer = HTTPBearer(auto_error=False, description="An API key from RAGQA_SERVER__API_KEYS (none needed when no "
                                                   "key is configured).")


@dataclass(frozen=True)
class Principal:
    key_id: str | None  # a short hash of the key, for logs; never the key itself
    collections: frozenset[str] | None  # None: every collection

    def allows(self, collection: str | None) -> bool:
        return self.collections is None or (collection is not None and collection in self.collections)

    def require(self, collection: str) -> str:
        if not self.allows(collection):
            raise Forbidden(f"this API key may not use collection '{collection}'",
                            hint="Ask for a key that lists it in RAGQA_SERVER__API_KEYS.")
        return collection


def get_principal(state: State,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    keys = state.settings.server.api_keys
    if not keys:
        return Principal(None, None)
    if credentials is None:
        raise Unauthorized("missing API key: send the header 'Authorization: Bearer KEY'")
    given = credentials.credentials.encode()
    match = None
    for key, collections in keys.items():
        if hmac.compare_digest(key.encode(), given):  # every key compared: timing says nothing
            match = (key, collections)
    if match is None:
        raise Unauthorized("invalid API key")
    key, collections = match
    allowed = None if not collections or "*" in collections else frozenset(collections)
    return Principal(hashlib.sha256(key.encode()).hexdigest()[:8], allowed)


Caller = Annotated[Principal, Depends(get_principal)]
