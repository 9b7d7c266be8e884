"""OpenID Connect's code flow against a live `camgate serve --demo`, driven by an independent
client library used as documented: PyPI `authlib` (its requests OAuth2Session for the
authorization URL with PKCE and nonce, the token request with client_secret_post, the userinfo
request and a refresh), with each id_token validated exactly as authlib's own OpenID client
(`authlib.integrations.base_client.sync_openid.OpenIDMixin.parse_id_token`) does it: joserfc
`jwt.decode` against the JWKS, then `authlib.oidc.core.CodeIDToken(...).validate()` (iss, aud,
exp, iat, nonce, azp, at_hash). Run by scripts/interop, which installs the pinned library into a
venv and starts the server:

    python scripts/interop-authlib.py http://127.0.0.1:PORT

The user (who signs in and approves in a browser) is played with a plain requests.Session (its
cookie jar) in the same script: it is not the library under test. Each check prints `ok` or
`FAIL`; the last line is `interop-authlib: N passed, M failed`; the exit status is 0 only when
every check passed.
"""

import base64
import json
import os
import re
import sys
import traceback
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

# authlib refuses plain http unless told otherwise; the demo server is on loopback http.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.oidc.core import CodeIDToken, UserInfo  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.errors import BadSignatureError, InvalidClaimError, InvalidKeyIdError  # noqa: E402
from joserfc.jwk import KeySet  # noqa: E402
from joserfc.jws import JWSRegistry  # noqa: E402

if len(sys.argv) != 2:
    print("usage: python interop-authlib.py BASE-URL", file=sys.stderr)
    sys.exit(2)
BASE = sys.argv[1].rstrip("/")
EMAIL = "user@example.com"
PASSWORD = "secret"
CLIENT_ID = "camgate.oidc.demo"
CLIENT_SECRET = "oidc-demo-secret-0123456789"
OTHER_CLIENT_ID = "camgate.oidc.pairwise.demo"
REDIRECT_URI = "http://127.0.0.1:8976/callback"
SCOPE = "openid profile email"
# What authlib's parse_id_token allows for clock skew (its default leeway).
LEEWAY = 120

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


def check_on(title, fn):
    """A check the later ones do not depend on: a failure is counted and the run goes on."""
    try:
        check(title, fn)
    except Failed:
        pass


def expect(cond, message):
    if not cond:
        raise AssertionError(message)


def raises(exc_type, fn, *, claim=None):
    """fn() must raise exc_type (for a joserfc claim error: about `claim`)."""
    try:
        fn()
    except exc_type as e:
        if claim is not None:
            expect(getattr(e, "claim", None) == claim, f"{type(e).__name__} about {getattr(e, 'claim', None)!r}, not {claim!r}")
        return e
    raise AssertionError(f"no {exc_type.__name__} raised")


# ---- the user's browser: requests.Session with its cookie jar, no automatic redirects --------
class Browser(requests.Session):
    """camgate's cookies are `__Host-` (Secure); the test server speaks plain HTTP on loopback,
    where a browser still sends them (http://127.0.0.1 is a secure context) but requests does
    not. Clearing the flag in the jar before each request plays that browser."""

    def request(self, *args, **kwargs):
        for c in self.cookies:
            c.secure = False
        return super().request(*args, **kwargs)


browser = Browser()


def hidden(html, name):
    m = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', html)
    expect(m, f"no hidden input {name} in the page")
    return unescape(m.group(1))


def at_redirect_uri(url):
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}{u.path}" == REDIRECT_URI


def user_authorizes(url):
    """Follows the authorization URL as the user until the browser is sent back to the client,
    signing in and approving where asked. Returns the callback URL and the pages shown."""
    shown = []
    res = browser.get(url, allow_redirects=False)
    for _ in range(8):
        if res.status_code in (302, 303):
            loc = urljoin(res.url, res.headers["location"])
            if at_redirect_uri(loc):
                return loc, shown
            expect(urlsplit(loc).netloc == urlsplit(BASE).netloc, f"redirected away to {loc}")
            res = browser.get(loc, allow_redirects=False)
            continue
        expect(res.status_code == 200, f"status {res.status_code}: {res.text[:300]}")
        html = res.text
        if re.search(r'<form[^>]*action="/login"', html):
            shown.append("login")
            form = {"csrf_token": hidden(html, "csrf_token"), "email": EMAIL, "password": PASSWORD}
            if 'name="request_id"' in html:
                form["request_id"] = hidden(html, "request_id")
            res = browser.post(f"{BASE}/login", data=form, allow_redirects=False)
        elif re.search(r'<form[^>]*action="/consent"', html):
            shown.append("consent")
            form = {
                "request_id": hidden(html, "request_id"),
                "csrf_token": hidden(html, "csrf_token"),
                "decision": "approve",
            }
            res = browser.post(f"{BASE}/consent", data=form, allow_redirects=False)
        else:
            raise AssertionError(f"neither a sign-in nor an approval page: {html[:300]}")
    raise AssertionError("no way back to the client after 8 steps")


# ---- id_token validation as authlib's OpenIDMixin.parse_id_token -----------------------------
metadata = {}
jwks_cache = {}


def fetch_jwk_set(force=False):
    # As OpenIDMixin.fetch_jwk_set: fetched once, again on an unknown kid.
    if "jwks" not in jwks_cache or force:
        res = requests.get(metadata["jwks_uri"], timeout=10)
        res.raise_for_status()
        jwks_cache["jwks"] = res.json()
    return jwks_cache["jwks"]


def parse_id_token(id_token, nonce, access_token, client_id=CLIENT_ID, check_aud=True):
    """authlib's parse_id_token for a code-flow token response: signature (with the algs the
    metadata lists), then CodeIDToken with the issuer from the metadata. check_aud adds the
    audience option (parse_id_token itself passes only iss; it leaves a foreign aud to azp)."""
    registry = JWSRegistry(algorithms=metadata.get("id_token_signing_alg_values_supported"), strict_check_header=False)
    try:
        token = jwt.decode(id_token, key=KeySet.import_key_set(fetch_jwk_set()), registry=registry)
    except InvalidKeyIdError:
        token = jwt.decode(id_token, key=KeySet.import_key_set(fetch_jwk_set(force=True)), registry=registry)
    options = {"iss": {"essential": True, "values": [metadata["issuer"]]}}
    if check_aud:
        options["aud"] = {"essential": True, "value": client_id}
    params = {"nonce": nonce, "client_id": client_id, "access_token": access_token}
    claims = CodeIDToken(token.claims, token.header, options, params)
    claims.validate(leeway=LEEWAY)
    return claims


def forged(id_token):
    """The same id_token with one claim added: its signature no longer matches."""
    h, p, s = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    claims["email"] = "mallory@example.com"
    p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{h}.{p2}.{s}"


# ---- the relying party: authlib --------------------------------------------------------------
def main():
    def discovery():
        res = requests.get(f"{BASE}/.well-known/openid-configuration", timeout=10)
        expect(res.status_code == 200, f"status {res.status_code}")
        md = res.json()
        expect(md.get("issuer") == BASE, f"issuer {md.get('issuer')!r} is not {BASE!r}")
        for k in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
            expect(md.get(k), f"no {k}")
        expect("RS256" in md.get("id_token_signing_alg_values_supported", []), "RS256 not listed")
        metadata.update(md)

    check("discovery: /.well-known/openid-configuration (issuer, endpoints, RS256)", discovery)

    oauth = OAuth2Session(
        CLIENT_ID,
        CLIENT_SECRET,
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
    )
    code_verifier = generate_token(48)
    nonce = generate_token(20)

    def authorization():
        url, state = oauth.create_authorization_url(
            metadata["authorization_endpoint"], nonce=nonce, code_verifier=code_verifier
        )
        q = parse_qs(urlsplit(url).query)
        expect(q.get("code_challenge_method") == ["S256"], f"no S256 challenge in {url}")
        expect(q.get("nonce") == [nonce], f"no nonce in {url}")
        callback, shown = user_authorizes(url)
        cq = parse_qs(urlsplit(callback).query)
        expect("code" in cq, f"no code in {callback}")
        expect(cq.get("state") == [state], "state not returned")
        expect(cq.get("iss") == [metadata["issuer"]], f"iss {cq.get('iss')} (RFC 9207)")
        print(f"      pages shown: {', '.join(shown) or 'none'}")
        return callback, state

    callback, state = check(
        "create_authorization_url (PKCE S256, nonce); the user signs in and approves", authorization
    )

    def token_request():
        t = oauth.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback,
            code_verifier=code_verifier,
            state=state,
        )
        expect(t.get("token_type", "").lower() == "bearer", f"token_type {t.get('token_type')!r}")
        for k in ("access_token", "id_token", "refresh_token"):
            expect(t.get(k), f"no {k}")
        return t

    token = check("fetch_token (authorization_response, code_verifier, client_secret_post)", token_request)
    id_token = token["id_token"]
    access_token = token["access_token"]

    def validate():
        c = parse_id_token(id_token, nonce, access_token)
        # CodeIDToken checks at_hash only when the claim is there: it must be.
        expect("at_hash" in c, "no at_hash: CodeIDToken would not have checked the access token")
        expect(c.header.get("alg") == "RS256", f"alg {c.header.get('alg')}")
        expect(c.get("azp") == CLIENT_ID, f"azp {c.get('azp')!r}")
        expect(isinstance(c.get("auth_time"), int), f"auth_time {c.get('auth_time')!r}")
        expect(c.get("amr") == ["pwd"], f"amr {c.get('amr')!r}")
        expect(c.get("nonce") == nonce, "nonce")
        return c

    claims = check("the id_token as authlib's parse_id_token: signature, CodeIDToken (nonce, azp, at_hash)", validate)

    check_on(
        "CodeIDToken with a wrong nonce raises InvalidClaimError(nonce)",
        lambda: raises(InvalidClaimError, lambda: parse_id_token(id_token, generate_token(20), access_token), claim="nonce"),
    )
    check_on(
        "as parse_id_token for another client_id (iss option only): InvalidClaimError(azp)",
        lambda: raises(
            InvalidClaimError,
            lambda: parse_id_token(id_token, nonce, access_token, client_id=OTHER_CLIENT_ID, check_aud=False),
            claim="azp",
        ),
    )
    check_on(
        "with the aud option for another client_id: InvalidClaimError(aud)",
        lambda: raises(
            InvalidClaimError, lambda: parse_id_token(id_token, nonce, access_token, client_id=OTHER_CLIENT_ID), claim="aud"
        ),
    )
    check_on(
        "CodeIDToken with another access token raises InvalidClaimError(at_hash)",
        lambda: raises(InvalidClaimError, lambda: parse_id_token(id_token, nonce, generate_token(30)), claim="at_hash"),
    )
    check_on(
        "an id_token with an altered claim fails joserfc's signature check",
        lambda: raises(BadSignatureError, lambda: parse_id_token(forged(id_token), nonce, access_token)),
    )

    def userinfo():
        res = oauth.get(metadata["userinfo_endpoint"])
        expect(res.status_code == 200, f"status {res.status_code}: {res.text[:300]}")
        info = UserInfo(res.json())
        expect(info.get("sub") == claims["sub"], f"sub {info.get('sub')!r} is not the id_token's")
        expect(info.get("email") == EMAIL, f"email {info.get('email')!r}")
        expect(info.get("email_verified") is True, f"email_verified {info.get('email_verified')!r}")
        expect(info.get("name") == "Keyshawn Jacobs", f"name {info.get('name')!r}")
        expect(info.get("given_name") == "Keyshawn", f"given_name {info.get('given_name')!r}")
        expect(info.get("family_name") == "Jacobs", f"family_name {info.get('family_name')!r}")
        expect("phone_number" not in info, "phone_number without the phone scope")

    check_on("userinfo through the session (Bearer): sub, profile and email claims", userinfo)

    def refresh():
        t = oauth.refresh_token(metadata["token_endpoint"])
        expect(t.get("access_token") and t["access_token"] != access_token, "no new access token")
        expect(t.get("id_token") and t["id_token"] != id_token, "no new id_token")
        c = parse_id_token(t["id_token"], None, t["access_token"])
        expect("at_hash" in c, "no at_hash")
        expect(c["sub"] == claims["sub"], "sub changed")
        expect(c.get("auth_time") == claims.get("auth_time"), "auth_time changed")
        expect("nonce" not in c, f"a nonce in a refreshed id_token: {c.get('nonce')!r}")

    check_on("refresh_token: a new id_token, same sub and auth_time, no nonce", refresh)


try:
    main()
except Failed:
    pass  # reported by check()
print(f"interop-authlib: {passed} passed, {failed} failed")
sys.exit(0 if failed == 0 and passed > 0 else 1)
