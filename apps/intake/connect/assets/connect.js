// The connect page. Plain script, no dependencies, no inline code (the CSP forbids it).
// The session token arrives in the URL fragment and lives only in this closure; the key lives
// only in the field until Connect is pressed, then only in the request. Nothing is logged,
// nothing is stored in the browser, and nothing is sent anywhere but this origin.
'use strict';
(function () {
  var POLL_MS = 2000;
  var WAIT_SECONDS = 5;
  var ACTIVE = ['active', 'degraded', 'reconnect_required'];

  var token = null;
  var session = null;
  var previous = null;
  var busy = false;

  function $(id) {
    return document.getElementById(id);
  }

  /** A person-facing problem the server rendered from its problem table into a <template>. */
  function problemText(code) {
    var template = $('problem-' + code);
    if (!template) return { message: 'Something went wrong.', action: 'Reload the page and try again.' };
    return {
      message: template.content.querySelector('.message').textContent,
      action: template.content.querySelector('.action').textContent,
    };
  }

  /** Moves the token from the fragment into memory and out of the address bar and this history entry. */
  function takeToken() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ''));
    var value = params.get('session');
    if (location.hash) history.replaceState(null, '', location.pathname);
    return value && /^[A-Za-z0-9_-]{20,200}$/.test(value) ? value : null;
  }

  function setStatus(text) {
    $('status').textContent = text;
  }

  function clearError() {
    $('error').replaceChildren();
  }

  function showError(problem) {
    var message = document.createElement('p');
    message.className = 'message';
    message.textContent = problem.message;
    var action = document.createElement('p');
    action.className = 'action';
    action.textContent = problem.action;
    $('error').replaceChildren(message, action);
  }

  /** The session cannot be used (missing, expired, used): say how to start again, offer no form. */
  function stop(problem) {
    $('connect-form').hidden = true;
    $('replacing').hidden = true;
    setStatus('');
    showError(problem);
  }

  function errorOf(response) {
    var body = response && response.data;
    if (body && body.error && body.error.message) return body.error;
    return problemText('internal_error');
  }

  function api(method, path, body, headers) {
    var init = {
      method: method,
      headers: Object.assign({ Authorization: 'Bearer ' + token, Accept: 'application/json' }, headers || {}),
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(
      function (res) {
        return res.json().then(
          function (data) {
            return { status: res.status, data: data };
          },
          function () {
            return { status: res.status, data: null };
          },
        );
      },
      function () {
        return { status: 0, data: null };
      },
    );
  }

  function tenantPath(suffix) {
    return '/v1/tenants/' + encodeURIComponent(session.tenantId) + '/pleo' + suffix;
  }

  function masked(last4) {
    return '••••' + last4;
  }

  function sessionEnded(response) {
    var code = response.data && response.data.error && response.data.error.code;
    return response.status === 401 || code === 'install_session_used';
  }

  function start() {
    token = takeToken();
    if (!token) return stop(problemText('install_session_missing'));
    setStatus('Opening your connection link…');
    api('GET', '/v1/install-sessions/current').then(function (res) {
      if (res.status !== 200) return stop(errorOf(res));
      session = res.data;
      return api('GET', tenantPath('/connection')).then(function (conn) {
        var c = conn.status === 200 ? conn.data : null;
        if (c && c.key && ACTIVE.indexOf(c.status) >= 0) {
          previous = { companyId: c.companyId, last4: c.key.last4 };
          $('replacing-company').textContent = c.companyId || '';
          $('replacing-key').textContent = masked(c.key.last4);
          $('replacing').hidden = false;
        }
        setStatus('');
        $('connect-form').hidden = false;
        $('api-key').focus();
      });
    });
  }

  /** Checks a person can fix before anything is sent: nothing, an auth scheme, inner spaces. */
  function localProblem(key) {
    if (key === '') return problemText('key_empty');
    if (/^(basic|bearer)\s/i.test(key)) return problemText('key_has_auth_scheme');
    if (/\s/.test(key)) return problemText('key_inner_whitespace');
    return null;
  }

  function setBusy(value) {
    busy = value;
    $('connect').disabled = value;
    $('api-key').readOnly = value;
  }

  function hideKey() {
    $('api-key').type = 'password';
    $('toggle-key').textContent = 'Show key';
    $('toggle-key').setAttribute('aria-pressed', 'false');
  }

  function onSubmit(event) {
    event.preventDefault();
    if (busy) return;
    var input = $('api-key');
    var key = input.value.trim();
    // The field is emptied at once: after this, the key is only in the request.
    input.value = '';
    hideKey();
    clearError();
    var local = localProblem(key);
    if (local) {
      showError(local);
      input.focus();
      return;
    }
    setBusy(true);
    setStatus('Checking the key with Pleo…');
    api('PUT', tenantPath('/key'), { apiKey: key }, { Prefer: 'wait=' + WAIT_SECONDS }).then(onSubmission);
  }

  function retry(problem) {
    setBusy(false);
    setStatus('');
    showError(problem);
    $('api-key').focus();
  }

  function onSubmission(res) {
    if (res.status === 200 || res.status === 202) {
      var s = res.data;
      if (s.status === 'accepted') return connected();
      if (s.status === 'rejected') return retry({ message: s.message, action: s.action });
      if (s.status === 'superseded') return retry(problemText('submission_superseded'));
      var pending = s.lastError || problemText('pleo_slow');
      setStatus(pending.message + ' ' + pending.action);
      return setTimeout(function () {
        poll(s.submissionId);
      }, POLL_MS);
    }
    if (sessionEnded(res)) return stop(errorOf(res));
    return retry(errorOf(res));
  }

  function poll(submissionId) {
    api('GET', tenantPath('/submissions/' + encodeURIComponent(submissionId))).then(function (res) {
      if (res.status === 0 || res.status >= 500) {
        setStatus(problemText('pleo_slow').message + ' ' + problemText('pleo_slow').action);
        return setTimeout(function () {
          poll(submissionId);
        }, POLL_MS);
      }
      onSubmission(res);
    });
  }

  function connected() {
    api('GET', tenantPath('/connection')).then(function (res) {
      if (res.status !== 200) return retry(errorOf(res));
      var c = res.data;
      $('connect-form').hidden = true;
      $('replacing').hidden = true;
      clearError();
      $('connected-company').textContent = c.companyId || '';
      $('connected-key').textContent = c.key ? masked(c.key.last4) : '';
      $('connected-scopes').textContent = (c.scopes || []).join(', ');
      if (previous && c.key && previous.last4 !== c.key.last4) {
        $('replaced-key').textContent = masked(previous.last4);
        $('replaced').hidden = false;
      }
      if (session.returnUrl) {
        $('continue').href = session.returnUrl;
        $('continue').hidden = false;
      }
      $('connected').hidden = false;
      $('status').classList.add('sr-only');
      setStatus('Connected.');
      setBusy(false);
      $('connected-title').focus();
    });
  }

  function onToggle() {
    var input = $('api-key');
    var show = input.type === 'password';
    input.type = show ? 'text' : 'password';
    $('toggle-key').textContent = show ? 'Hide key' : 'Show key';
    $('toggle-key').setAttribute('aria-pressed', String(show));
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('connect-form').addEventListener('submit', onSubmit);
    $('toggle-key').addEventListener('click', onToggle);
    start();
  });
})();
