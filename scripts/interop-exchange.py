"""OAuth 2.0 Token Exchange (RFC 8693) against a live `camgate serve --demo`, driven by PyPI
`authlib` used as documented: an OAuth2Session of the demo's dealer portal client (HTTP Basic
client authentication) fetches the dealer's token with the password grant, then fetches a
token for the dealer's customer with `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`
(the impersonation form: `subject_token` is the dealer's access token, `requested_subject` the
customer's id). The customer's token reads `/v1/me/` as the customer; RFC 7662 introspection
names the dealer in `act`; asking for an account that is not the dealer's customer makes authlib
raise `invalid_target`. Run by scripts/interop:

    python scripts/interop-exchange.py http://127.0.0.1:PORT

Each check prints `ok` or `FAIL`; the last line is `interop-exchange: N passed, M failed`; the
exit status is 0 only when every check passed.
"""

import os
import sys
import traceback

# authlib refuses plain http unless told otherwise; the demo server is on loopback http.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

import requests  # noqa: E402
from authlib.integrations.base_client.errors import OAuthError  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402

if len(sys.argv) != 2:
    print("usage: python interop-exchange.py BASE-URL", file=sys.stderr)
    sys.exit(2)
BASE = sys.argv[1].rstrip("/")
CLIENT_ID = "camgate.dealer.demo"
CLIENT_SECRET = "dealer-demo-secret-0123456789"
DEALER = "dealer@example.com"
CUSTOMER = "customer@example.com"
PASSWORD = "secret"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"

passed = 0
failed = 0


class Failed(Exception):
    """A check failed (already reported)."""


def check(title, fn):
    global passed, failed
    try:
        r = fn()
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        failed += 1
        print(f"FAIL  {title}")
        lines = traceback.format_exception(type(e), e, e.__traceback__)
        for line in "".join(lines).rstrip().splitlines()[-6:]:
            print(f"      {line}")
        raise Failed(title) from e
    passed += 1
    print(f"ok    {title}")
    return r


def expect(cond, message):
    if not cond:
        raise AssertionError(message)


def main():
    metadata = requests.get(f"{BASE}/.well-known/oauth-authorization-server", timeout=10).json()
    token_url = metadata["token_endpoint"]

    def advertised():
        expect(TOKEN_EXCHANGE in metadata["grant_types_supported"], "token exchange not advertised")

    check("RFC 8414 metadata lists the token-exchange grant", advertised)

    oauth = OAuth2Session(CLIENT_ID, CLIENT_SECRET, token_endpoint_auth_method="client_secret_basic")

    def dealer_token():
        t = oauth.fetch_token(token_url, grant_type="password", username=DEALER, password=PASSWORD)
        expect(t.get("token_type") == "Bearer", f"token_type {t.get('token_type')!r}")
        return t["access_token"]

    dealer = check("authlib: the dealer's token (password grant, client_secret_basic)", dealer_token)

    def customer_id():
        r = requests.get(f"{BASE}/v1/dealer/customers/", headers={"Authorization": f"Bearer {dealer}"}, timeout=10)
        expect(r.status_code == 200, f"{r.status_code} {r.text}")
        ids = [c["id"] for c in r.json() if c["email"] == CUSTOMER]
        expect(len(ids) == 1, f"customer not listed: {r.text}")
        return ids[0]

    cid = check("the dealer lists its customers", customer_id)

    def exchange():
        t = oauth.fetch_token(
            token_url,
            grant_type=TOKEN_EXCHANGE,
            subject_token=dealer,
            subject_token_type=ACCESS_TOKEN_TYPE,
            requested_subject=str(cid),
        )
        expect(t.get("issued_token_type") == ACCESS_TOKEN_TYPE, f"issued_token_type {t.get('issued_token_type')!r}")
        expect(t.get("token_type") == "Bearer", f"token_type {t.get('token_type')!r}")
        expect("refresh_token" not in t, "a refresh token for an exchanged token")
        expect(0 < int(t["expires_in"]) <= 600, f"expires_in {t.get('expires_in')!r}")
        return t["access_token"]

    acting = check("authlib: token exchange for the customer (RFC 8693 §2.1)", exchange)

    def acts_as_customer():
        r = requests.get(f"{BASE}/v1/me/", headers={"Authorization": f"Bearer {acting}"}, timeout=10)
        expect(r.status_code == 200, f"{r.status_code} {r.text}")
        expect(r.json()["email"] == CUSTOMER, f"/v1/me/ is {r.json()['email']!r}")

    check("the exchanged token reads /v1/me/ as the customer", acts_as_customer)

    def introspected():
        r = requests.post(
            metadata["introspection_endpoint"],
            data={"token": acting},
            auth=(CLIENT_ID, CLIENT_SECRET),
            timeout=10,
        )
        body = r.json()
        expect(body.get("active") is True, f"not active: {body}")
        expect(body.get("sub") == str(cid), f"sub {body.get('sub')!r}")
        act = body.get("act") or {}
        expect(act.get("sub") and act["sub"] != str(cid), f"act {body.get('act')!r}")

    check("RFC 7662 introspection: sub is the customer, act names the dealer", introspected)

    def not_a_customer():
        try:
            oauth.fetch_token(
                token_url,
                grant_type=TOKEN_EXCHANGE,
                subject_token=dealer,
                subject_token_type=ACCESS_TOKEN_TYPE,
                requested_subject="1",
            )
        except OAuthError as e:
            expect(e.error == "invalid_target", f"error {e.error!r}")
            return
        raise AssertionError("a token for an account that is not the dealer's customer")

    check("authlib raises invalid_target for a non-customer", not_a_customer)

    def no_subject():
        try:
            oauth.fetch_token(token_url, grant_type=TOKEN_EXCHANGE, subject_token=dealer, subject_token_type=ACCESS_TOKEN_TYPE)
        except OAuthError as e:
            expect(e.error == "invalid_request", f"error {e.error!r}")
            return
        raise AssertionError("a token without requested_subject")

    check("authlib raises invalid_request without requested_subject", no_subject)


try:
    main()
except Failed:
    pass  # reported by check()
print(f"interop-exchange: {passed} passed, {failed} failed")
sys.exit(0 if failed == 0 and passed > 0 else 1)
