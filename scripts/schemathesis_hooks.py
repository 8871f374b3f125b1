"""schemathesis hooks for scripts/schemathesis: what a server error is here.

schemathesis' own not_a_server_error counts every GraphQL error with a
`path` as a resolver failure, but this API answers a missing record in a
mutation (NOT_FOUND), a collision (CONFLICT) and a rule the schema cannot
express (BAD_USER_INPUT) with coded errors by contract. A server error is
what no request may ever get: an HTTP status of 500 or more, a body that is
not a GraphQL JSON object, an error without a code, or the codes of a
failure of the service itself (INTERNAL, UNAVAILABLE: its dependencies are
up during the run).
"""
import json

import schemathesis

CLIENT_CODES = {"BAD_USER_INPUT", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT", "RATE_LIMITED"}


@schemathesis.check
def no_server_error(ctx, response, case):
    """Fails on a 5xx, a body that is not a GraphQL object, or an error without a client's code."""
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}: {response.text[:500]}")
    try:
        payload = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"not JSON ({exc}): {response.text[:500]}") from None
    if not isinstance(payload, dict):
        raise AssertionError(f"not a JSON object: {response.text[:500]}")
    for error in payload.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code not in CLIENT_CODES:
            raise AssertionError(f"an error coded {code!r}: {json.dumps(error, ensure_ascii=False)[:500]}")
