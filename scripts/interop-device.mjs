// The OAuth 2.0 Device Authorization Grant (RFC 8628) against a live `camgate serve --demo`,
// driven by an independent client library used as documented: npm `openid-client` 6
// (discovery from the RFC 8414 metadata, initiateDeviceAuthorization,
// pollDeviceAuthorizationGrant, refreshTokenGrant). Run by scripts/interop, which installs the
// pinned library and starts the server:
//
//     node scripts/interop-device.mjs http://127.0.0.1:PORT
//
// The library plays the device. The user (who signs in and approves the code in a browser) is
// played with plain fetch in the same script: it is not the library under test. Each check
// prints `ok` or `FAIL`; the last line is `interop-device: N passed, M failed`; the exit status
// is 0 only when every check passed.
import assert from 'node:assert/strict';
import * as client from 'openid-client';

const BASE = process.argv[2];
if (!BASE) {
  console.error('usage: node interop-device.mjs BASE-URL');
  process.exit(2);
}
const CLIENT_ID = 'camgate.device.demo';
const EMAIL = 'user@example.com';
const PASSWORD = 'secret';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

// The device's token requests as the server answered them (see customFetch below).
const polls = [];
const pollWaiters = [];
const nextPoll = () => new Promise((resolve) => pollWaiters.push(resolve));

let passed = 0;
let failed = 0;
async function check(title, fn) {
  try {
    const r = await fn();
    passed++;
    console.log(`ok    ${title}`);
    return r;
  } catch (e) {
    failed++;
    console.log(`FAIL  ${title}\n      ${e && e.stack ? e.stack.split('\n').slice(0, 4).join('\n      ') : e}`);
    if (e && e.cause) console.log(`      cause: ${JSON.stringify(e.cause)}`);
    throw e;
  }
}

// ---- the user's browser: fetch with a hand-kept cookie jar --------------------------------
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
function hidden(html, name) {
  const re = new RegExp(`<input[^>]*name="${name}"[^>]*value="([^"]*)"`);
  const m = html.match(re);
  assert.ok(m, `no hidden input ${name} in the page`);
  return m[1].replace(/&amp;/g, '&').replace(/&#x2F;/g, '/').replace(/&#x3D;/g, '=');
}

// The user: opens verification_uri_complete, signs in, enters (confirms) and approves the code.
async function userApproves(da) {
  const next = await check('GET verification_uri_complete redirects to /login?next=…', async () => {
    const res = await browse(da.verification_uri_complete);
    assert.equal(res.status, 303);
    const loc = new URL(res.headers.get('location'), BASE);
    assert.equal(loc.pathname, '/login');
    const next = loc.searchParams.get('next');
    assert.ok(next && next.startsWith('/device?user_code='), `next=${next}`);
    return { login: loc, next };
  });
  const loginCsrf = await check('GET /login sets __Host-camgate_login and a csrf_token', async () => {
    const res = await browse(next.login.pathname + next.login.search);
    assert.equal(res.status, 200);
    assert.ok(jar.has('__Host-camgate_login'), 'no __Host-camgate_login cookie');
    return hidden(await res.text(), 'csrf_token');
  });
  await check('POST /login signs in (session cookie, back to next)', async () => {
    const res = await browse('/login', {
      method: 'POST',
      body: { csrf_token: loginCsrf, email: EMAIL, password: PASSWORD, next: next.next },
    });
    assert.equal(res.status, 303, `status ${res.status}: ${(await res.text()).slice(0, 300)}`);
    assert.ok(jar.has('__Host-camgate_session'), 'no __Host-camgate_session cookie');
    assert.equal(res.headers.get('location'), next.next);
  });
  const csrf = await check('GET /device?user_code=… shows the code form', async () => {
    const res = await browse(next.next);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.equal(hidden(html, 'user_code'), da.user_code);
    return hidden(html, 'csrf_token');
  });
  const csrf2 = await check('POST /device with the code: the confirmation page', async () => {
    const res = await browse('/device', {
      method: 'POST',
      body: { user_code: da.user_code, csrf_token: csrf },
    });
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /name="decision"[^>]*value="approve"|value="approve"[^>]*name="decision"/);
    return hidden(html, 'csrf_token');
  });
  await check('POST /device decision=approve: the device is connected', async () => {
    const res = await browse('/device', {
      method: 'POST',
      body: { user_code: da.user_code, csrf_token: csrf2, decision: 'approve' },
    });
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /Device connected/);
    assert.match(html, /is connected\. You can return to your device\./);
  });
}

async function me(accessToken) {
  const res = await fetch(new URL('/v1/me/', BASE), {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  assert.equal(res.status, 200, `GET /v1/me/: ${res.status}`);
  return res.json();
}

// ---- the device: openid-client ------------------------------------------------------------
async function main() {
  const config = await check('discovery (RFC 8414 metadata, algorithm oauth2)', async () => {
    const config = await client.discovery(new URL(BASE), CLIENT_ID, undefined, client.None(), {
      algorithm: 'oauth2',
      execute: [client.allowInsecureRequests],
    });
    const md = config.serverMetadata();
    assert.ok(md.device_authorization_endpoint, 'no device_authorization_endpoint');
    // Observes (changes nothing) the device's token requests, through the library's documented
    // customFetch hook, so the run can show the pending answers before the approval.
    config[client.customFetch] = async (url, options) => {
      const res = await fetch(url, options);
      const body = options.body instanceof URLSearchParams ? options.body : null;
      if (body && body.get('grant_type') === DEVICE_GRANT) {
        const answer = res.ok ? 'tokens' : (await res.clone().json()).error;
        polls.push({ status: res.status, answer });
        console.log(`      device poll: ${res.status} ${answer}`);
        for (const w of pollWaiters.splice(0)) w();
      }
      return res;
    };
    return config;
  });

  const da = await check('initiateDeviceAuthorization scope=read', async () => {
    const da = await client.initiateDeviceAuthorization(config, { scope: 'read' });
    assert.ok(da.device_code && da.user_code && da.verification_uri && da.verification_uri_complete);
    console.log(`      user_code ${da.user_code}, interval ${da.interval}s, expires_in ${da.expires_in}s`);
    return da;
  });

  // The device polls from now on; the user approves meanwhile.
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 60_000);
  const started = Date.now();
  const polling = client.pollDeviceAuthorizationGrant(config, da, undefined, { signal: abort.signal });
  polling.catch(() => {}); // awaited below; keeps an early rejection from going unhandled
  try {
    // The user is slower than the device: one poll is answered authorization_pending first.
    await check('the first poll is answered authorization_pending (RFC 8628 §3.5)', async () => {
      await Promise.race([nextPoll(), polling]);
      assert.equal(polls.length, 1, 'the polling ended before any pending answer');
      assert.equal(polls[0].status, 400);
      assert.equal(polls[0].answer, 'authorization_pending');
    });
    await userApproves(da);
  } catch (e) {
    abort.abort();
    throw e;
  }

  const tokens = await check('pollDeviceAuthorizationGrant resolves with tokens', async () => {
    const t = await polling;
    clearTimeout(timer);
    assert.equal(t.token_type.toLowerCase(), 'bearer');
    assert.ok(t.access_token, 'no access_token');
    assert.ok(t.refresh_token, 'no refresh_token');
    console.log(`      after ${((Date.now() - started) / 1000).toFixed(1)}s, scope ${t.scope}, expires_in ${t.expires_in}`);
    assert.equal(polls.at(-1).answer, 'tokens');
    assert.ok(polls.slice(0, -1).every((p) => p.answer === 'authorization_pending'), JSON.stringify(polls));
    return t;
  });

  await check('GET /v1/me/ with the access token: the approving user', async () => {
    const body = await me(tokens.access_token);
    assert.equal(body.email, EMAIL);
  });

  await check('refreshTokenGrant: a new access token that works', async () => {
    const t = await client.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(t.access_token, 'no access_token');
    assert.notEqual(t.access_token, tokens.access_token);
    const body = await me(t.access_token);
    assert.equal(body.email, EMAIL);
  });

  await check('pollDeviceAuthorizationGrant with a made-up device_code: invalid_grant', async () => {
    const fake = { ...da, device_code: 'cgd_madeUpDeviceCodeThatWasNeverIssued0', interval: 1 };
    await assert.rejects(client.pollDeviceAuthorizationGrant(config, fake), (e) => {
      assert.ok(e instanceof client.ResponseBodyError, `not a ResponseBodyError: ${e}`);
      assert.equal(e.error, 'invalid_grant');
      assert.equal(e.status, 400);
      return true;
    });
  });
}

try {
  await main();
} catch {
  // reported by check()
}
console.log(`interop-device: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
