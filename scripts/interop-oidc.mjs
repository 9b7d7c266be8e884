// OpenID Connect (Core 1.0, Discovery 1.0, RP-Initiated Logout 1.0) against a live
// `camgate serve --demo`, driven by an independent client library used as documented: npm
// `openid-client` 6 (discovery from /.well-known/openid-configuration, the code flow with PKCE,
// nonce and state, id_token validation with signatures checked against the JWKS
// (enableNonRepudiationChecks), fetchUserInfo, refreshTokenGrant, clientCredentialsGrant,
// buildEndSessionUrl). Run by scripts/interop, which installs the pinned library and starts
// the server:
//
//     node scripts/interop-oidc.mjs http://127.0.0.1:PORT
//
// The library plays the relying party, with the demo's two OIDC clients: camgate.oidc.demo
// (RS256, public subject, client_secret_post) and camgate.oidc.pairwise.demo (ES256, pairwise
// subject, client_secret_basic). The user (who signs in and approves in a browser) is played
// with plain fetch and a cookie jar in the same script: it is not the library under test. Each
// check prints `ok` or `FAIL`; a part that needs what a failed check should have produced
// prints `skip`; the last line is `interop-oidc: N passed, M failed`; the exit status is 0 only
// when every check passed and none was skipped.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as client from 'openid-client';

const BASE = (process.argv[2] || '').replace(/\/+$/, '');
if (!BASE) {
  console.error('usage: node interop-oidc.mjs BASE-URL');
  process.exit(2);
}
const EMAIL = 'user@example.com';
const PASSWORD = 'secret';
const USER = {
  name: 'Keyshawn Jacobs',
  given_name: 'Keyshawn',
  family_name: 'Jacobs',
  email: EMAIL,
  email_verified: true,
  phone_number: '+1608494652',
};
const REDIRECT_URI = 'http://127.0.0.1:8976/callback';
const POST_LOGOUT_URI = 'http://127.0.0.1:8976/logged-out';
const SCOPE = 'openid profile email phone';
// RS256, subject type public.
const PUBLIC_ID = 'camgate.oidc.demo';
const PUBLIC_SECRET = 'oidc-demo-secret-0123456789';
// ES256, subject type pairwise.
const PAIRWISE_ID = 'camgate.oidc.pairwise.demo';
const PAIRWISE_SECRET = 'oidc-pairwise-secret-0123456789';

let passed = 0;
let failed = 0;
let skipped = 0;
async function check(title, fn) {
  try {
    const r = await fn();
    passed++;
    console.log(`ok    ${title}`);
    return r;
  } catch (e) {
    failed++;
    console.log(`FAIL  ${title}\n      ${e && e.stack ? e.stack.split('\n').slice(0, 4).join('\n      ') : e}`);
    if (e && e.cause) console.log(`      cause: ${describe(e.cause)}`);
    throw e;
  }
}
// The library's errors nest: ClientError <- OperationProcessingError <- { claim, expected, … }.
function describe(cause, depth = 0) {
  if (cause instanceof Error) {
    const inner = cause.cause !== undefined && depth < 3 ? ` <- ${describe(cause.cause, depth + 1)}` : '';
    return `${cause.name}${cause.code ? ` ${cause.code}` : ''}: ${cause.message}${inner}`;
  }
  if (cause instanceof Response) return `HTTP ${cause.status} from ${cause.url}`;
  try {
    const s = JSON.stringify(cause, (k, v) => {
      if (v instanceof URLSearchParams) return v.toString();
      if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return `[${v.byteLength} bytes]`;
      return v;
    });
    return s.length > 800 ? `${s.slice(0, 800)}…` : s;
  } catch {
    return String(cause);
  }
}

// What the parts below hand each other. A part runs only when what it needs is there: after a
// failed check the dependent parts say `skip` instead of failing on undefined.
const got = {};
async function part(title, needs, fn) {
  const missing = needs.filter((k) => got[k] === undefined);
  if (missing.length) {
    skipped++;
    console.log(`skip  ${title} (needs ${missing.join(', ')})`);
    return;
  }
  try {
    await fn();
  } catch {
    // reported by check()
  }
}

// ---- the user's browser: fetch with a hand-kept cookie jar --------------------------------
function newBrowser() {
  const jar = new Map();
  function keepCookies(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/max-age=0\b/i.test(line) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  }
  async function browse(path, init = {}) {
    const headers = new Headers(init.headers || {});
    if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    let body = init.body;
    if (body && !(body instanceof URLSearchParams)) body = new URLSearchParams(body);
    const res = await fetch(new URL(path, BASE), { ...init, headers, body, redirect: 'manual' });
    keepCookies(res);
    return res;
  }
  return { jar, browse };
}
function hidden(html, name) {
  const re = new RegExp(`<input[^>]*name="${name}"[^>]*value="([^"]*)"`);
  const m = html.match(re);
  assert.ok(m, `no hidden input ${name} in the page`);
  return m[1]
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#([0-9]+);/g, (_, d) => String.fromCodePoint(parseInt(d, 10)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}
const isRedirect = (res) => res.status === 302 || res.status === 303;
const location = (res) => new URL(res.headers.get('location'), BASE);
const atRedirectUri = (url) => `${url.origin}${url.pathname}` === REDIRECT_URI;

// The signed-in (or signing-in) user follows an authorization URL until the browser is sent
// back to the client, signing in and approving where asked. Returns the callback URL and the
// pages shown on the way ('login', 'consent').
async function userAuthorizes(b, url) {
  const shown = [];
  let res = await b.browse(url);
  for (let step = 0; step < 8; step++) {
    if (isRedirect(res)) {
      const loc = location(res);
      if (atRedirectUri(loc)) return { callback: loc, shown };
      assert.equal(loc.origin, new URL(BASE).origin, `redirected away to ${loc}`);
      res = await b.browse(loc.pathname + loc.search);
      continue;
    }
    const html = await res.text();
    assert.equal(res.status, 200, `status ${res.status}: ${html.slice(0, 300)}`);
    if (/<form[^>]*action="\/login"/.test(html)) {
      shown.push('login');
      const body = { csrf_token: hidden(html, 'csrf_token'), email: EMAIL, password: PASSWORD };
      if (/name="request_id"/.test(html)) body.request_id = hidden(html, 'request_id');
      res = await b.browse('/login', { method: 'POST', body });
    } else if (/<form[^>]*action="\/consent"/.test(html)) {
      shown.push('consent');
      res = await b.browse('/consent', {
        method: 'POST',
        body: {
          request_id: hidden(html, 'request_id'),
          csrf_token: hidden(html, 'csrf_token'),
          decision: 'approve',
        },
      });
    } else {
      assert.fail(`neither a sign-in nor an approval page: ${html.slice(0, 300)}`);
    }
  }
  assert.fail('no way back to the client after 8 steps');
}

// ---- JOSE helpers for what the library does not expose ------------------------------------
const jwtPart = (jwt, i) => JSON.parse(Buffer.from(jwt.split('.')[i], 'base64url').toString());
const jwtHeader = (jwt) => jwtPart(jwt, 0);
// OIDC Core §3.1.3.6: base64url of the left half of the SHA-256 of the ASCII access token
// (RS256 and ES256 both hash with SHA-256).
const atHash = (accessToken) =>
  createHash('sha256').update(accessToken, 'ascii').digest().subarray(0, 16).toString('base64url');
// The same id_token with one claim added: the signature no longer matches.
function withForgedClaim(idToken) {
  const [h, , s] = idToken.split('.');
  const claims = { ...jwtPart(idToken, 1), email: 'mallory@example.com' };
  return `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
}

// A token-endpoint rewriter installed through the library's documented customFetch hook: while
// `state.rewrite` is set, an id_token in a token response is replaced by rewrite(id_token).
// Everything else passes through unchanged.
function rewritingFetch(state) {
  return async (url, options) => {
    const res = await fetch(url, options);
    if (!state.rewrite || new URL(url).pathname !== new URL(state.tokenEndpoint).pathname) return res;
    const body = await res.clone().json().catch(() => null);
    if (!res.ok || !body || typeof body.id_token !== 'string') return res;
    body.id_token = state.rewrite(body.id_token);
    return new Response(JSON.stringify(body), {
      status: res.status,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    });
  };
}

async function discover(clientId, metadata, auth) {
  const config = await client.discovery(new URL(BASE), clientId, metadata, auth, {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
  });
  const state = { tokenEndpoint: config.serverMetadata().token_endpoint, rewrite: null };
  config[client.customFetch] = rewritingFetch(state);
  return { config, state };
}

// One authorization request built by the library: its URL, and what authorizationCodeGrant
// needs to check the answer.
async function authorize(config, extra = {}) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const code_challenge = await client.calculatePKCECodeChallenge(pkceCodeVerifier);
  const nonce = client.randomNonce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    code_challenge,
    code_challenge_method: 'S256',
    nonce,
    state,
    ...extra,
  });
  return { url, pkceCodeVerifier, nonce, state };
}

// ---- the relying party: openid-client -----------------------------------------------------
const user = newBrowser();

async function publicClient() {
  const { config, state: fetchState } = await check(
    'discovery (/.well-known/openid-configuration, algorithm oidc): issuer, endpoints, algs',
    async () => {
      const d = await discover(PUBLIC_ID, PUBLIC_SECRET, client.ClientSecretPost(PUBLIC_SECRET));
      const md = d.config.serverMetadata();
      assert.equal(md.issuer, BASE, 'issuer must be the base URL exactly');
      for (const k of ['authorization_endpoint', 'token_endpoint', 'jwks_uri']) {
        assert.ok(md[k], `no ${k}`);
      }
      assert.equal(md.userinfo_endpoint, `${BASE}/oauth/userinfo`);
      assert.equal(md.end_session_endpoint, `${BASE}/oauth/logout`);
      assert.ok(md.id_token_signing_alg_values_supported?.includes('RS256'), 'RS256 not listed');
      assert.ok(md.id_token_signing_alg_values_supported.includes('ES256'), 'ES256 not listed');
      assert.ok(md.response_types_supported?.includes('code'), 'response type code not listed');
      assert.ok(md.subject_types_supported?.includes('public'), 'subject type public not listed');
      assert.ok(md.subject_types_supported.includes('pairwise'), 'subject type pairwise not listed');
      assert.ok(md.scopes_supported?.includes('openid'), 'scope openid not listed');
      // Discovery 1.0 §3: the default is true, which camgate does not support.
      assert.equal(md.request_uri_parameter_supported, false);
      return d;
    },
  );
  got.config = config;

  // The first authorization: each page on the way is a check of its own.
  const req = await authorize(config);
  const login = await check('GET authorize (no session) redirects to /login?request_id=…', async () => {
    const res = await user.browse(req.url);
    assert.equal(res.status, 303);
    const loc = location(res);
    assert.equal(loc.pathname, '/login');
    const requestId = loc.searchParams.get('request_id');
    assert.ok(requestId, `no request_id in ${loc}`);
    return { path: loc.pathname + loc.search, requestId };
  });
  const loginCsrf = await check('GET /login sets __Host-camgate_login and a csrf_token', async () => {
    const res = await user.browse(login.path);
    assert.equal(res.status, 200);
    assert.ok(user.jar.has('__Host-camgate_login'), 'no __Host-camgate_login cookie');
    const html = await res.text();
    assert.equal(hidden(html, 'request_id'), login.requestId);
    return hidden(html, 'csrf_token');
  });
  const consentPath = await check('POST /login signs in (session cookie, on to /consent?request_id=…)', async () => {
    const res = await user.browse('/login', {
      method: 'POST',
      body: { csrf_token: loginCsrf, email: EMAIL, password: PASSWORD, request_id: login.requestId },
    });
    assert.equal(res.status, 303, `status ${res.status}: ${(await res.text()).slice(0, 300)}`);
    assert.ok(user.jar.has('__Host-camgate_session'), 'no __Host-camgate_session cookie');
    const loc = location(res);
    assert.equal(loc.pathname, '/consent');
    assert.equal(loc.searchParams.get('request_id'), login.requestId);
    return loc.pathname + loc.search;
  });
  const consent = await check('GET /consent shows the approval page', async () => {
    const res = await user.browse(consentPath);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /name="decision"[^>]*value="approve"|value="approve"[^>]*name="decision"/);
    return { requestId: hidden(html, 'request_id'), csrf: hidden(html, 'csrf_token') };
  });
  const callback = await check('POST /consent approve: back to redirect_uri with code, state, iss', async () => {
    const res = await user.browse('/consent', {
      method: 'POST',
      body: { request_id: consent.requestId, csrf_token: consent.csrf, decision: 'approve' },
    });
    assert.equal(res.status, 303, `status ${res.status}: ${(await res.text()).slice(0, 300)}`);
    const loc = location(res);
    assert.ok(atRedirectUri(loc), `not the redirect URI: ${loc}`);
    assert.ok(loc.searchParams.get('code'), 'no code');
    assert.equal(loc.searchParams.get('state'), req.state);
    assert.equal(loc.searchParams.get('iss'), BASE);
    return loc;
  });

  const tokens = await check('authorizationCodeGrant (PKCE, nonce, state; id_token signature checked)', async () => {
    const t = await client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: req.pkceCodeVerifier,
      expectedNonce: req.nonce,
      expectedState: req.state,
    });
    assert.equal(t.token_type, 'bearer'); // the library lower-cases it; camgate sends Bearer
    assert.ok(t.access_token, 'no access_token');
    assert.ok(t.refresh_token, 'no refresh_token');
    assert.ok(t.id_token, 'no id_token');
    console.log(`      scope ${t.scope}, expires_in ${t.expires_in}`);
    return t;
  });
  const claims = await check('the id_token: header and claims (iss, sub, aud, azp, nonce, auth_time, amr, at_hash)', async () => {
    const h = jwtHeader(tokens.id_token);
    assert.equal(h.alg, 'RS256');
    assert.ok(h.kid, 'no kid');
    assert.equal(h.typ, 'JWT');
    const c = tokens.claims();
    assert.equal(c.iss, BASE);
    assert.equal(typeof c.sub, 'string');
    assert.ok(c.sub.length > 0 && c.sub.length <= 255, `sub length ${c.sub.length}`);
    assert.ok(c.aud === PUBLIC_ID || (Array.isArray(c.aud) && c.aud.length === 1 && c.aud[0] === PUBLIC_ID), `aud ${c.aud}`);
    assert.equal(c.azp, PUBLIC_ID);
    assert.equal(c.nonce, req.nonce);
    assert.deepEqual(c.amr, ['pwd']);
    const now = Math.floor(Date.now() / 1000);
    assert.equal(typeof c.auth_time, 'number');
    assert.ok(c.auth_time <= c.iat + 5 && c.auth_time > now - 300, `auth_time ${c.auth_time}, iat ${c.iat}`);
    assert.ok(c.exp > c.iat, `exp ${c.exp} <= iat ${c.iat}`);
    assert.equal(c.at_hash, atHash(tokens.access_token));
    return c;
  });
  got.tokens = tokens;
  got.claims = claims;

  await check('fetchUserInfo: sub as in the id_token, the demo user by scope', async () => {
    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(info.sub, claims.sub);
    for (const [k, v] of Object.entries(USER)) assert.equal(info[k], v, `userinfo ${k}`);
  }).catch(() => {});

  await check('refreshTokenGrant: a new id_token, same sub and auth_time, no nonce', async () => {
    const t = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(t.access_token && t.access_token !== tokens.access_token, 'no new access token');
    assert.ok(t.id_token && t.id_token !== tokens.id_token, 'no new id_token');
    const c = t.claims();
    assert.equal(c.iss, BASE);
    assert.equal(c.sub, claims.sub);
    assert.equal(c.auth_time, claims.auth_time);
    assert.equal(c.azp, PUBLIC_ID);
    assert.deepEqual(c.amr, ['pwd']);
    assert.equal(c.nonce, undefined);
    assert.ok(c.iat >= claims.iat);
    assert.equal(c.at_hash, atHash(t.access_token));
    const info = await client.fetchUserInfo(config, t.access_token, claims.sub);
    assert.equal(info.email, EMAIL);
  }).catch(() => {});

  await check('clientCredentialsGrant scope=read: an access token, no id_token', async () => {
    const t = await client.clientCredentialsGrant(config, { scope: 'read' });
    assert.equal(t.token_type, 'bearer');
    assert.ok(t.access_token, 'no access_token');
    assert.equal(t.id_token, undefined);
  }).catch(() => {});

  await check('clientCredentialsGrant scope=openid: invalid_scope (no user, no id_token)', async () => {
    await assert.rejects(client.clientCredentialsGrant(config, { scope: 'openid' }), (e) => {
      assert.ok(e instanceof client.ResponseBodyError, `not a ResponseBodyError: ${e}`);
      assert.equal(e.error, 'invalid_scope');
      return true;
    });
  }).catch(() => {});

  await check('a second authorization with the session skips the pages; wrong expectedNonce is rejected', async () => {
    const r = await authorize(config);
    const { callback: cb, shown } = await userAuthorizes(user, r.url);
    assert.deepEqual(shown, [], 'the user was shown pages again');
    await assert.rejects(
      client.authorizationCodeGrant(config, cb, {
        pkceCodeVerifier: r.pkceCodeVerifier,
        expectedNonce: client.randomNonce(),
        expectedState: r.state,
      }),
      (e) => {
        assert.ok(e instanceof client.ClientError, `not a ClientError: ${e}`);
        assert.equal(e.code, 'OAUTH_JWT_CLAIM_COMPARISON_FAILED');
        assert.equal(e.cause?.cause?.claim, 'nonce');
        return true;
      },
    );
  }).catch(() => {});

  await check('an id_token whose claims were altered in transit fails the signature check', async () => {
    const r = await authorize(config);
    const { callback: cb } = await userAuthorizes(user, r.url);
    fetchState.rewrite = withForgedClaim;
    try {
      await assert.rejects(
        client.authorizationCodeGrant(config, cb, {
          pkceCodeVerifier: r.pkceCodeVerifier,
          expectedNonce: r.nonce,
          expectedState: r.state,
        }),
        (e) => {
          assert.ok(e instanceof client.ClientError, `not a ClientError: ${e}`);
          assert.match(String(e.cause?.message), /signature verification failed/);
          return true;
        },
      );
    } finally {
      fetchState.rewrite = null;
    }
  }).catch(() => {});
}

async function pairwiseClient() {
  const { config, state: fetchState } = await check('discovery for the ES256 pairwise client (client_secret_basic)', async () =>
    discover(
      PAIRWISE_ID,
      { client_secret: PAIRWISE_SECRET, id_token_signed_response_alg: 'ES256' },
      client.ClientSecretBasic(PAIRWISE_SECRET),
    ),
  );

  const pair = await check('pairwise client: the approval page once, then authorizationCodeGrant', async () => {
    const r = await authorize(config);
    const { callback: cb, shown } = await userAuthorizes(user, r.url);
    assert.deepEqual(shown, ['consent'], 'a new client needs the approval page (and only it)');
    assert.equal(cb.searchParams.get('iss'), BASE);
    return client.authorizationCodeGrant(config, cb, {
      pkceCodeVerifier: r.pkceCodeVerifier,
      expectedNonce: r.nonce,
      expectedState: r.state,
    });
  });

  const pairClaims = await check('pairwise id_token: ES256, aud/azp, a sub other than the public one', async () => {
    const h = jwtHeader(pair.id_token);
    assert.equal(h.alg, 'ES256');
    assert.ok(h.kid, 'no kid');
    const c = pair.claims();
    assert.equal(c.iss, BASE);
    assert.ok(c.aud === PAIRWISE_ID || (Array.isArray(c.aud) && c.aud.includes(PAIRWISE_ID)), `aud ${c.aud}`);
    assert.equal(c.azp, PAIRWISE_ID);
    assert.equal(typeof c.sub, 'string');
    assert.notEqual(c.sub, got.claims.sub, 'the pairwise sub equals the public sub');
    assert.deepEqual(c.amr, ['pwd']);
    assert.equal(c.at_hash, atHash(pair.access_token));
    return c;
  });

  await check('pairwise fetchUserInfo: sub equals its id_token sub', async () => {
    const info = await client.fetchUserInfo(config, pair.access_token, pairClaims.sub);
    assert.equal(info.sub, pairClaims.sub);
    assert.equal(info.email, EMAIL);
  }).catch(() => {});

  // The public client's id_token in the pairwise client's token response. A client pinned to
  // ES256 stops at the alg; one that accepts every advertised alg must stop at the audience.
  await check("the ES256-pinned pairwise client rejects the public client's RS256 id_token (alg)", async () => {
    const r = await authorize(config);
    const { callback: cb } = await userAuthorizes(user, r.url);
    fetchState.rewrite = () => got.tokens.id_token;
    try {
      await assert.rejects(
        client.authorizationCodeGrant(config, cb, {
          pkceCodeVerifier: r.pkceCodeVerifier,
          expectedNonce: r.nonce,
          expectedState: r.state,
        }),
        (e) => {
          assert.ok(e instanceof client.ClientError, `not a ClientError: ${e}`);
          assert.equal(e.code, 'OAUTH_INVALID_RESPONSE');
          assert.match(String(e.cause?.message), /"alg"/);
          return true;
        },
      );
    } finally {
      fetchState.rewrite = null;
    }
  }).catch(() => {});

  await check("the pairwise client rejects the public client's id_token swapped into its token response (aud)", async () => {
    // Not pinned to an alg: RS256 is advertised, so only the audience can give the swap away.
    const swap = await discover(PAIRWISE_ID, PAIRWISE_SECRET, client.ClientSecretBasic(PAIRWISE_SECRET));
    const r = await authorize(swap.config);
    const { callback: cb } = await userAuthorizes(user, r.url);
    swap.state.rewrite = () => got.tokens.id_token;
    await assert.rejects(
      client.authorizationCodeGrant(swap.config, cb, {
        pkceCodeVerifier: r.pkceCodeVerifier,
        expectedNonce: r.nonce,
        expectedState: r.state,
      }),
      (e) => {
        assert.ok(e instanceof client.ClientError, `not a ClientError: ${e}`);
        assert.equal(e.code, 'OAUTH_JWT_CLAIM_COMPARISON_FAILED');
        assert.equal(e.cause?.cause?.claim, 'aud');
        return true;
      },
    );
  }).catch(() => {});
}

// prompt=none for a browser without a session: the error comes back on the redirect, and the
// library turns it into an AuthorizationResponseError.
async function promptNone(b) {
  const r = await authorize(got.config, { prompt: 'none' });
  const res = await b.browse(r.url);
  assert.ok(isRedirect(res), `status ${res.status}`);
  const loc = location(res);
  assert.ok(atRedirectUri(loc), `not the redirect URI: ${loc}`);
  await assert.rejects(
    client.authorizationCodeGrant(got.config, loc, {
      pkceCodeVerifier: r.pkceCodeVerifier,
      expectedNonce: r.nonce,
      expectedState: r.state,
    }),
    (e) => {
      assert.ok(e instanceof client.AuthorizationResponseError, `not an AuthorizationResponseError: ${e}`);
      assert.equal(e.error, 'login_required');
      return true;
    },
  );
}

async function logout() {
  const config = got.config;
  await check('prompt=none without a session (empty cookie jar): AuthorizationResponseError login_required', () =>
    promptNone(newBrowser()),
  ).catch(() => {});

  await check('end session with an unregistered post_logout_redirect_uri: 400 page, no Location', async () => {
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: got.tokens.id_token,
      post_logout_redirect_uri: 'http://127.0.0.1:8976/elsewhere',
      state: client.randomState(),
    });
    const res = await newBrowser().browse(url);
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('location'), null);
    assert.match(res.headers.get('content-type') || '', /^text\/html/);
  }).catch(() => {});

  await check('buildEndSessionUrl walked by the user: 303 to post_logout_redirect_uri with state', async () => {
    const state = client.randomState();
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: got.tokens.id_token,
      post_logout_redirect_uri: POST_LOGOUT_URI,
      state,
    });
    assert.equal(url.searchParams.get('client_id'), PUBLIC_ID);
    const res = await user.browse(url);
    assert.equal(res.status, 303, `status ${res.status}: ${(await res.text()).slice(0, 300)}`);
    const loc = location(res);
    assert.equal(`${loc.origin}${loc.pathname}`, POST_LOGOUT_URI);
    assert.equal(loc.searchParams.get('state'), state);
  });

  await check("after the logout the user's session is gone: prompt=none answers login_required", () =>
    promptNone(user),
  );
}

await part('the public client (RS256)', [], publicClient);
await part('the pairwise client (ES256)', ['config', 'claims', 'tokens'], pairwiseClient);
await part('prompt=none and logout', ['config', 'tokens'], logout);

if (skipped) console.log(`interop-oidc: ${skipped} part(s) skipped after a failure`);
console.log(`interop-oidc: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && skipped === 0 && passed > 0 ? 0 : 1);
