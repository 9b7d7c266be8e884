// Passkeys (WebAuthn) for the sign-in page, the second-factor page and the account page.
// Progressive enhancement: the buttons stay hidden where the browser has no WebAuthn. Each
// button names its two endpoints (data-begin, data-finish); the page's form supplies the CSRF
// token and the request context. The server answers begin with {ceremony, options} and finish
// with {redirect} (or {error}).
'use strict';
(function () {
  function fromB64u(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toB64u(buf) {
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64u(pk.challenge);
    pk.user.id = fromB64u(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
    return { publicKey: pk };
  }
  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64u(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
    return { publicKey: pk };
  }
  function credentialJson(c) {
    var r = c.response;
    var response = { clientDataJSON: toB64u(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64u(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    } else {
      response.authenticatorData = toB64u(r.authenticatorData);
      response.signature = toB64u(r.signature);
      response.userHandle = r.userHandle ? toB64u(r.userHandle) : null;
    }
    return JSON.stringify({
      id: c.id,
      rawId: toB64u(c.rawId),
      type: c.type,
      response: response,
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
    });
  }
  function formFields(button) {
    var form = button.closest('[data-passkey-form]') || document;
    var data = new URLSearchParams();
    form.querySelectorAll('input[type=hidden]').forEach(function (i) {
      if (i.name) data.append(i.name, i.value);
    });
    var name = document.getElementById('passkey-name');
    if (name) data.append('name', name.value);
    return data;
  }
  function post(url, data) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: data,
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error(j.error || j.detail || 'The passkey could not be used.');
        return j;
      });
    });
  }
  function say(text) {
    var el = document.getElementById('passkey-error');
    if (el) {
      el.textContent = text;
      el.hidden = false;
    }
  }
  function run(button) {
    var create = button.dataset.mode === 'create';
    button.disabled = true;
    post(button.dataset.begin, formFields(button))
      .then(function (start) {
        var get = create
          ? navigator.credentials.create(creationOptions(start.options))
          : navigator.credentials.get(requestOptions(start.options));
        return get.then(function (cred) {
          var data = formFields(button);
          data.append('ceremony', start.ceremony);
          data.append('credential', credentialJson(cred));
          return post(button.dataset.finish, data);
        });
      })
      .then(function (done) { window.location.assign(done.redirect); })
      .catch(function (e) {
        button.disabled = false;
        say(e && e.message ? e.message : 'The passkey could not be used.');
      });
  }
  document.addEventListener('DOMContentLoaded', function () {
    if (!window.PublicKeyCredential) return;
    document.querySelectorAll('button[data-passkey]').forEach(function (b) {
      b.hidden = false;
      b.addEventListener('click', function (ev) {
        ev.preventDefault();
        run(b);
      });
    });
  });
})();
