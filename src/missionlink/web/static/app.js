/* MissionLink web pages: the browser session, JSON API calls, forms, countdowns.
 *
 * The access token lives in memory (and this tab's sessionStorage); the refresh token only
 * in the HttpOnly cookie the server sets on /api/v1/auth. Refreshes run under one Web Lock
 * shared by every tab, and the new access token is shared on a BroadcastChannel, so two
 * tabs never present the same spent refresh token (which would revoke the session).
 * No build step: plain ES2020, served from /static.
 */
(() => {
  'use strict';

  const API = '/api/v1';
  const REFRESH_LOCK = 'missionlink-refresh';
  const TOKEN_KEY = 'missionlink-access'; // sessionStorage: {token, exp}
  const ME_KEY = 'missionlink-me'; // sessionStorage: the caller's profile
  const SESSION_HINT = 'missionlink-session'; // localStorage: a refresh cookie should exist
  const LANG_KEY = 'missionlink-lang'; // localStorage: the language toggle
  const EARLY_MS = 60 * 1000; // refresh this long before the access token expires

  const LANG = document.documentElement.lang === 'en' ? 'en' : 'ko';
  const T = JSON.parse(document.getElementById('ml-i18n').textContent);
  const PAGE = document.body.dataset.page;

  /* Every code in docs/errors.md, plus what a browser can meet before reaching the API. */
  const ERRORS = {
    'invalid-input': ['입력값이 올바르지 않습니다', 'Some input is not valid'],
    'bad-request': ['요청을 읽을 수 없습니다', 'The request could not be read'],
    'payload-too-large': ['요청 본문이 너무 큽니다', 'The request is too large'],
    'not-authenticated': ['로그인이 필요합니다', 'Please log in'],
    forbidden: ['권한이 없습니다', 'You are not allowed to do this'],
    'not-found': ['찾을 수 없습니다', 'Not found'],
    'method-not-allowed': ['허용되지 않은 요청 방식입니다', 'This request method is not allowed'],
    conflict: ['요청이 현재 상태와 충돌합니다', 'This conflicts with the current state'],
    'insufficient-funds': ['잔액이 부족합니다', 'Not enough balance'],
    'wallet-in-debt': ['차지백으로 생긴 미수금이 있어 후원과 베팅을 할 수 없습니다', 'A chargeback left your wallet in debt: pledges and bets wait until it is repaid'],
    'invalid-state': ['미션 상태상 할 수 없습니다', 'The mission’s status does not allow this'],
    'deadline-passed': ['기한이 지났습니다', 'The deadline has passed'],
    'proposal-blocked': ['지금은 미션을 제안할 수 없습니다', 'You cannot propose a mission right now'],
    'email-taken': ['이미 가입된 이메일입니다', 'This email is already registered'],
    'payment-mismatch': ['결제 금액이 충전 요청과 다릅니다', 'The payment does not match the top-up'],
    'daily-topup-limit': ['오늘의 충전 한도를 넘습니다', 'This goes past today’s top-up limit'],
    'topup-not-refundable': ['이 충전은 지금 환불할 수 없습니다', 'This top-up cannot be refunded now'],
    'refund-window-closed': ['환불 가능 기간이 지났습니다', 'The refund window has closed'],
    'refund-exceeds-refundable': ['환불 가능한 금액을 넘습니다', 'This is more than can be refunded'],
    'payment-provider-unavailable': ['결제사가 응답하지 않습니다. 잠시 후 다시 시도하세요', 'The payment provider is not answering; try again shortly'],
    'not-withdrawable': ['출금 가능 금액을 넘습니다', 'This is more than you can withdraw now'],
    'payout-account-missing': ['출금 계좌를 먼저 등록하세요', 'Register a payout account first'],
    'payout-account-cooling-down': ['출금 계좌를 등록하거나 바꾼 직후에는 출금할 수 없습니다', 'Withdrawals wait a while after the payout account is registered or changed'],
    'withdrawal-state': ['출금 상태상 할 수 없습니다', 'The withdrawal’s state does not allow this'],
    'payouts-unavailable': ['지금은 출금을 이용할 수 없습니다', 'Payouts are not available right now'],
    'idempotency-in-progress': ['같은 요청을 처리하는 중입니다', 'The same request is still being processed'],
    'idempotency-key-reused': ['멱등성 키가 다른 요청에 사용되었습니다', 'The idempotency key was used for a different request'],
    'rate-limited': ['요청이 너무 많습니다', 'Too many requests'],
    'request-timeout': ['요청 수신 시간이 초과되었습니다', 'The request took too long to arrive'],
    'streams-full': ['실시간 연결이 너무 많습니다. 잠시 후 다시 시도하세요', 'Live updates are full; try again shortly'],
    'unsupported-media-type': ['지원하지 않는 형식입니다', 'Unsupported media type'],
    'bad-credentials': ['이메일 또는 비밀번호가 올바르지 않습니다', 'Wrong email or password'],
    network: ['서버에 연결할 수 없습니다', 'Cannot reach the server'],
    'internal-error': ['서버 오류가 발생했습니다', 'The server had a problem'],
    'service-unavailable': ['서비스를 잠시 사용할 수 없습니다. 잠시 후 다시 시도하세요', 'The service is briefly unavailable; try again shortly'],
    'server-error': ['서버 오류가 발생했습니다', 'The server had a problem'],
    error: ['요청을 처리하지 못했습니다', 'The request failed'],
  };
  const STATUS_CODES = { 400: 'bad-request', 401: 'not-authenticated', 403: 'forbidden',
    404: 'not-found', 405: 'method-not-allowed', 408: 'request-timeout', 409: 'conflict',
    413: 'payload-too-large', 422: 'invalid-input', 429: 'rate-limited' };
  const EXPLAINED = new Set(['invalid-input', 'conflict']); // the detail says which field or why

  /* ---------- small helpers ---------- */

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const num = (n) => Number(n).toLocaleString(LANG === 'en' ? 'en-US' : 'ko-KR');
  const money = (n) => num(n) + T.won;
  function t(key, vars = {}) {
    let text = T[key] ?? key;
    for (const [name, value] of Object.entries(vars)) {
      text = text.split(`{${name}}`).join(typeof value === 'number' ? num(value) : String(value));
    }
    return text;
  }
  function duration(seconds) {
    if (seconds < 60) return t('seconds', { n: seconds });
    if (seconds < 3600) return t('minutes', { n: Math.ceil(seconds / 60) });
    return t('hours', { n: Math.ceil(seconds / 3600) });
  }
  const store = {
    get(area, key) { try { return area.getItem(key); } catch { return null; } },
    set(area, key, value) { try { area.setItem(key, value); } catch { /* storage disabled */ } },
    drop(area, key) { try { area.removeItem(key); } catch { /* storage disabled */ } },
    json(area, key) { try { return JSON.parse(this.get(area, key)); } catch { return null; } },
  };
  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  class ApiError extends Error {
    constructor({ status = 0, code = 'error', detail = '', retryAfter = null, fields = [],
      debt = null }) {
      super(code);
      Object.assign(this, { status, code, detail, retryAfter, fields, debt });
    }
  }

  function errorText(err) {
    const pair = ERRORS[err.code] || ERRORS[err.status >= 500 ? 'server-error' : 'error'];
    let text = pair[LANG === 'en' ? 1 : 0] + '.';
    if (err.retryAfter) text += ' ' + t('retry_after', { time: duration(err.retryAfter) });
    return text;
  }

  async function problemOf(response) {
    let body = {};
    try { body = await response.json(); } catch { /* not problem+json (a proxy page) */ }
    const code = typeof body.type === 'string' ? body.type.split('/').pop()
      : STATUS_CODES[response.status] || (response.status >= 500 ? 'server-error' : 'error');
    const header = Number(response.headers.get('Retry-After'));
    const fields = Array.isArray(body.errors)
      ? body.errors.filter((e) => e && typeof e.code === 'string') : [];
    return new ApiError({ status: response.status, code, detail: body.detail || '',
      retryAfter: body.retry_after ?? (header > 0 ? header : null), fields,
      debt: Number.isSafeInteger(body.debt) ? body.debt : null });
  }

  /* ---------- language ---------- */

  function rememberLang(lang) {
    store.set(localStorage, LANG_KEY, lang);
    const secure = location.protocol === 'https:' ? '; Secure' : '';
    document.cookie = `ml_lang=${lang}; Path=/; Max-Age=31536000; SameSite=Lax${secure}`;
  }

  /** True when the page is being reloaded in the language the toggle remembered. */
  function syncLanguage() {
    const url = new URL(location.href);
    const asked = url.searchParams.get('lang');
    if (asked === 'ko' || asked === 'en') { rememberLang(asked); return false; }
    const saved = store.get(localStorage, LANG_KEY);
    if ((saved === 'ko' || saved === 'en') && saved !== LANG) {
      rememberLang(saved);
      url.searchParams.set('lang', saved);
      location.replace(url);
      return true;
    }
    return false;
  }

  /* ---------- session ---------- */

  const channel = 'BroadcastChannel' in window ? new BroadcastChannel('missionlink-auth') : null;
  let access = null; // {token, exp (ms on this machine's clock), id, role}
  let me = null; // {id, role, display_name, ...}
  let refreshing = null;

  function claims(token) {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
  }

  function setAccess(token, exp, share = true) {
    const c = claims(token);
    access = { token, exp, id: Number(c.sub), role: c.role };
    store.set(sessionStorage, TOKEN_KEY, JSON.stringify({ token, exp }));
    store.set(localStorage, SESSION_HINT, '1');
    if (share && channel) channel.postMessage({ type: 'token', token, exp });
  }

  function dropAccess(share = true) {
    access = null;
    me = null;
    store.drop(sessionStorage, TOKEN_KEY);
    store.drop(sessionStorage, ME_KEY);
    store.drop(localStorage, SESSION_HINT);
    if (share && channel) channel.postMessage({ type: 'logout' });
  }

  const fresh = (a) => a && a.exp - Date.now() > EARLY_MS;

  let cookieWork = 0; // cookie writes this tab has started or is waiting to start

  /* Every write of the refresh cookie (login, refresh, logout) runs under this lock. */
  function withCookieLock(work) {
    cookieWork += 1;
    const run = navigator.locks ? navigator.locks.request(REFRESH_LOCK, work) : work();
    return run.finally(() => { cookieWork -= 1; });
  }

  /** A new access token for one that is missing, expiring or was refused (``stale``). */
  function refreshAccess(stale) {
    refreshing ??= withCookieLock(async () => {
      // Another tab may have refreshed while this one waited for the lock; its token came
      // over the BroadcastChannel, and spending the cookie again would be wasted.
      if (access && access.token !== stale && fresh(access)) return access.token;
      const r = await fetch(`${API}/auth/refresh?cookie=1`, {
        method: 'POST', credentials: 'same-origin', headers: { Accept: 'application/json' },
      });
      if (!r.ok) {
        const err = await problemOf(r);
        if (r.status === 401 || r.status === 422) dropAccess(); // the session is over
        throw err;
      }
      const pair = await r.json(); // pair.refresh_token is ignored: the cookie holds it
      setAccess(pair.access_token, Date.now() + pair.expires_in * 1000);
      return pair.access_token;
    }).finally(() => { refreshing = null; });
    return refreshing;
  }

  async function getToken() {
    if (fresh(access)) return access.token;
    if (!access && !store.get(localStorage, SESSION_HINT)) return null;
    try {
      return await refreshAccess(access ? access.token : null);
    } catch {
      return access && access.exp > Date.now() ? access.token : null;
    }
  }

  channel?.addEventListener('message', ({ data }) => {
    if (data?.type === 'token') {
      const before = access ? access.id : null;
      setAccess(data.token, data.exp, false);
      // Another account logged in elsewhere: show it, but never by abandoning a refresh of
      // this tab's own (a request aborted after the server rotated the token would leave
      // the spent one in the cookie, and the next refresh would revoke the session).
      if (before !== access.id && document.body.dataset.ready && cookieWork === 0) {
        location.reload();
      }
    } else if (data?.type === 'logout') {
      dropAccess(false);
      decorate(document);
    }
  });

  async function login(email, password) {
    await withCookieLock(async () => {
      const r = await fetch(`${API}/auth/login?cookie=1`, {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ email, password }),
      }).catch(() => { throw new ApiError({ code: 'network' }); });
      if (!r.ok) {
        const err = await problemOf(r);
        if (err.code === 'not-authenticated') err.code = 'bad-credentials';
        throw err;
      }
      const pair = await r.json();
      setAccess(pair.access_token, Date.now() + pair.expires_in * 1000);
    });
    store.drop(sessionStorage, ME_KEY);
    await loadMe();
  }

  async function logout() {
    const token = await getToken();
    await withCookieLock(async () => {
      if (!token) return;
      await fetch(`${API}/auth/logout`, {
        method: 'POST', credentials: 'same-origin', headers: { Authorization: `Bearer ${token}` },
      }).catch(() => {});
    });
    dropAccess();
    location.assign('/');
  }

  async function loadMe() {
    if (!access) { me = null; return; }
    const cached = store.json(sessionStorage, ME_KEY);
    if (cached && cached.id === access.id) { me = cached; return; }
    try {
      me = await api('GET', '/me', { auth: 'required' });
      store.set(sessionStorage, ME_KEY, JSON.stringify(me));
    } catch {
      me = access ? { id: access.id, role: access.role, display_name: '' } : null;
    }
  }

  /* ---------- the JSON API ---------- */

  /**
   * Call the API. ``auth``: 'required' | 'optional' | undefined. ``key``: the
   * Idempotency-Key of this submission. A 401 refreshes the token once and retries with
   * the same key, so a retried effect still happens at most once.
   */
  async function apiResponse(method, path, { body, auth, key } = {}) {
    let token = auth ? await getToken() : null;
    if (auth === 'required' && !token) throw new ApiError({ status: 401, code: 'not-authenticated' });
    const send = (bearer) => {
      const headers = { Accept: 'application/json' };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      if (bearer) headers.Authorization = `Bearer ${bearer}`;
      if (key) headers['Idempotency-Key'] = key;
      return fetch(API + path, {
        method, headers, credentials: 'same-origin',
        body: body === undefined ? undefined : JSON.stringify(body),
      }).catch(() => { throw new ApiError({ code: 'network' }); });
    };
    let r = await send(token);
    if (r.status === 401 && token) {
      token = await refreshAccess(token).catch(() => null);
      if (token) r = await send(token);
    }
    if (!r.ok) throw await problemOf(r);
    return r;
  }

  async function api(method, path, options) {
    const r = await apiResponse(method, path, options);
    return r.status === 204 ? null : r.json();
  }

  /* ---------- page plumbing ---------- */

  const GATED = '[data-auth],[data-users],[data-roles],[data-except],[data-except-roles]';
  const words = (value) => (value || '').split(/\s+/).filter(Boolean);

  function allowed(el) {
    const d = el.dataset;
    if (d.auth === 'in' && !me) return false;
    if (d.auth === 'out' && me) return false;
    if ((d.users !== undefined || d.roles !== undefined)
        && !(me && (words(d.users).includes(String(me.id)) || words(d.roles).includes(me.role)))) {
      return false;
    }
    if (me && words(d.except).includes(String(me.id))) return false;
    if (me && words(d.exceptRoles).includes(me.role)) return false;
    return true;
  }

  const serverOffset = (() => {
    const at = Date.parse(document.body.dataset.serverTime);
    return Number.isNaN(at) ? 0 : at - Date.now();
  })();
  const dateFormat = new Intl.DateTimeFormat(LANG === 'en' ? 'en-GB' : 'ko-KR',
    { dateStyle: 'medium', timeStyle: 'short' });
  const pad = (n) => String(n).padStart(2, '0');

  function tick() {
    const now = Date.now() + serverOffset;
    for (const el of $$('.countdown[data-ends]')) {
      const left = Math.max(0, Math.floor((Date.parse(el.dataset.ends) - now) / 1000));
      const days = Math.floor(left / 86400);
      const clock = `${pad(Math.floor((left % 86400) / 3600))}:${pad(Math.floor((left % 3600) / 60))}:${pad(left % 60)}`;
      el.textContent = left === 0 ? t('countdown_over')
        : (days ? t('days_short', { n: days }) + ' ' : '') + clock;
      el.classList.toggle('over', left === 0);
      el.classList.toggle('soon', left > 0 && left < 300);
    }
    // Buttons and forms that close at a moment (accept by, pledges close, result by) go
    // away then, disabled too, so nobody clicks one the server would refuse.
    for (const el of $$('[data-until]')) {
      if (now < Date.parse(el.dataset.until)) continue;
      el.classList.add('time-over');
      for (const control of $$('button, input, select, textarea', el)) control.disabled = true;
    }
    for (const el of $$('[data-after]')) {
      el.classList.toggle('time-come', now >= Date.parse(el.dataset.after));
    }
  }

  /** Apply who-sees-what, local times and countdowns to freshly rendered HTML. */
  function decorate(root) {
    for (const el of $$(GATED, root)) el.hidden = !allowed(el);
    linkBack(root);
    for (const el of $$('time[data-local]', root)) {
      const at = new Date(el.dateTime);
      if (!Number.isNaN(at.getTime())) el.textContent = dateFormat.format(at);
    }
    const name = $('#me-name');
    if (name) name.textContent = me ? t('greeting', { name: me.display_name || `#${me.id}` }) : '';
    tick();
  }

  /** Re-render parts of this page from the server (which escapes everything). */
  async function reloadSections(ids, url = location.href) {
    const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'text/html' } });
    if (!r.ok) return;
    const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
    for (const id of ids) {
      const fresher = doc.getElementById(id);
      const old = document.getElementById(id);
      if (!fresher || !old) continue;
      // A section the reader opened (details with an id) stays open.
      for (const d of $$('details[id][open]', old)) {
        const again = fresher.querySelector(`details#${CSS.escape(d.id)}`);
        if (again) again.open = true;
      }
      old.replaceWith(document.adoptNode(fresher));
    }
    decorate(document);
  }

  let toastTimer = null;
  function toast(message, link) {
    const box = $('#toast');
    box.replaceChildren(document.createTextNode(message));
    if (link) {
      const a = document.createElement('a');
      a.href = link.href;
      a.textContent = link.text;
      box.append(' ', a);
    }
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  function hideToast() {
    clearTimeout(toastTimer);
    $('#toast').hidden = true;
  }

  function showError(scope, err) {
    hideToast(); // a success from before must not stand beside this error
    const box = scope && ($(':scope > .form-error', scope) || $('.form-error', scope));
    let text = errorText(err);
    // Each invalid field gets its message next to it; what has no field here goes above.
    const rest = err.fields.length && scope ? showFieldErrors(scope, err.fields) : null;
    if (rest) text += ' ' + [t('fix_fields'), ...rest].filter(Boolean).join(' ');
    if (!box) { toast(text); return; }
    box.replaceChildren(document.createTextNode(text));
    box.hidden = false;
    if (err.code === 'insufficient-funds') explainFunds(box, scope);
    if (err.code === 'wallet-in-debt') explainDebt(box, err);
    if (rest) return; // the fields say it in the page's language: no English detail
    if (err.detail && EXPLAINED.has(err.code)) {
      const small = document.createElement('small');
      small.textContent = err.detail;
      box.append(document.createElement('br'), small);
    }
    box.hidden = false;
  }

  function clearError(scope) {
    for (const box of $$('.form-error', scope)) box.hidden = true;
    clearFieldErrors(scope);
  }

  /* ---------- field messages and the checks before sending ----------
   * The API names every invalid field with a code and params (docs/errors.md#field-codes);
   * each message goes next to its field in the page's language, with aria-invalid and
   * aria-describedby. Forms run the same rules first, reading the bounds the server
   * rendered into the inputs (min, max, minlength, maxlength), so no number is written
   * here twice. An input whose API name differs carries it in data-field. */

  const WHOLE = /^\d+$/;
  const rawNumber = (input) => String(input.value).replace(/[,\s]/g, '');

  function fieldInput(form, field) {
    if (!field) return null;
    const named = $$('[data-field]', form).find((el) => el.dataset.field === field);
    const el = named || (form.elements ? form.elements[field] : null);
    return el instanceof RadioNodeList ? el[0] : el || null;
  }

  /** A number param as the field shows it: money, a duration, or a plain number. */
  function paramText(input, value) {
    if (typeof value !== 'number') return String(value);
    if (input && input.dataset.money !== undefined) return money(value);
    // The API counts these in seconds (so does the check below).
    if (input && (input.dataset.secondsOf !== undefined
        || input.dataset.apiSeconds !== undefined)) return duration(value);
    return num(value);
  }

  function fieldMessage(input, e) {
    const key = `field_${e.code}`;
    const vars = {};
    for (const [name, value] of Object.entries(e.params || {})) {
      if (!Array.isArray(value)) vars[name] = paramText(input, value);
    }
    return t(key in T ? key : 'field_invalid', vars);
  }

  function clearFieldErrors(scope) {
    for (const note of $$('.field-error', scope)) note.remove();
    for (const input of $$('[aria-invalid="true"]', scope)) unmark(input);
  }

  function unmark(input) {
    input.removeAttribute('aria-invalid');
    const ids = words(input.getAttribute('aria-describedby'))
      .filter((id) => !id.startsWith('field-error-'));
    if (ids.length) input.setAttribute('aria-describedby', ids.join(' '));
    else input.removeAttribute('aria-describedby');
    const note = document.getElementById(`field-error-${input.dataset.errorId}`);
    if (note) note.remove();
  }

  let fieldErrorSeq = 0;

  /** Mark each field; returns the messages of fields this form has no input for. */
  function showFieldErrors(form, fields) {
    const rest = [];
    let first = null;
    for (const e of fields) {
      const input = fieldInput(form, e.field);
      const place = input && input.type !== 'hidden'
        ? (input.type === 'radio' ? input.closest('fieldset') : input.closest('label')) : null;
      const text = fieldMessage(input, e);
      if (!place || input.getAttribute('aria-invalid') === 'true') {
        if (!place) rest.push(text);
        continue;
      }
      fieldErrorSeq += 1;
      input.dataset.errorId = String(fieldErrorSeq);
      const note = document.createElement('small');
      note.className = 'field-error';
      note.id = `field-error-${fieldErrorSeq}`;
      note.textContent = text;
      place.append(note);
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby',
        [...words(input.getAttribute('aria-describedby')), note.id].join(' '));
      first ||= input;
    }
    if (first) first.focus();
    return rest;
  }

  /** What the API would refuse in this form, by the same rules; [] when all is well. */
  function checkFields(form) {
    const found = [];
    for (const input of $$('input, textarea', form)) {
      if (input.disabled || ['hidden', 'radio', 'checkbox', 'search'].includes(input.type)
          || input.readOnly) continue;
      const field = input.dataset.field || input.name;
      const value = input.value;
      const add = (code, params = {}) => found.push({ field, code, params });
      if (input.type === 'number') {
        const raw = rawNumber(input);
        if (input.validity.badInput || (raw !== '' && !WHOLE.test(raw))) { add('not-integer'); continue; }
        if (raw === '') { if (input.required) add('required'); continue; }
        let n = Number(raw);
        let low = input.min === '' ? null : Number(input.min);
        let high = input.max === '' ? null : Number(input.max);
        const unit = input.dataset.secondsOf && form.elements[input.dataset.secondsOf];
        if (unit) { // a count of minutes/hours/days: the API's bounds are in seconds
          n *= Number(unit.value);
          low = Number(input.dataset.minSeconds);
          high = Number(input.dataset.maxSeconds);
        } else if (input.dataset.apiSeconds !== undefined) { // minutes here, seconds there
          n *= 60; low = low === null ? null : low * 60; high = high === null ? null : high * 60;
        }
        if (!Number.isSafeInteger(n)) add('not-integer');
        else if ((low !== null && n < low) || (high !== null && n > high)) {
          if (low !== null && high !== null) add('out-of-range', { min: low, max: high });
          else if (low !== null) add('too-small', { min: low });
          else add('too-large', { max: high });
        }
        continue;
      }
      const chars = [...value].length;
      if (value === '') { if (input.required) add('required'); continue; }
      if (input.required && input.type !== 'password' && value.trim() === '') { add('blank'); continue; }
      if (input.type === 'email' && !/^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$/.test(value.trim())) {
        add('invalid-email'); continue;
      }
      if (input.minLength > 0 && chars < input.minLength) add('too-short', { min: input.minLength });
      else if (input.maxLength > 0 && chars > input.maxLength) add('too-long', { max: input.maxLength });
    }
    return found;
  }

  /** Refuse the form before sending when a field breaks a rule the API would refuse. */
  function precheck(form) {
    const found = checkFields(form);
    if (found.length) throw new ApiError({ status: 422, code: 'invalid-input', fields: found });
  }

  document.addEventListener('input', (event) => {
    const input = event.target;
    if (input.getAttribute && input.getAttribute('aria-invalid') === 'true') unmark(input);
  });

  /** Under "not enough balance": what the wallet holds and, for cash, a top-up link that
   * comes back here. */
  async function explainFunds(box, scope) {
    try {
      const w = await api('GET', '/wallet', { auth: 'required' });
      const points = scope && scope.dataset && scope.dataset.form === 'bet';
      const line = document.createElement('small');
      line.className = 'funds';
      line.textContent = points ? t('points_now', { points: num(w.points_balance) + T.currency_PTS })
        : t('balance_now', { amount: money(w.cash_balance) });
      if (!points) {
        const a = document.createElement('a');
        a.href = `/wallet?next=${encodeURIComponent(location.pathname + location.search)}`;
        a.textContent = t('topup_action');
        line.append(' ', a);
      }
      box.append(document.createElement('br'), line);
    } catch { /* the message stands without the balance */ }
  }

  /** Under "wallet in debt": how much is owed, and the wallet page where it is repaid. */
  function explainDebt(box, err) {
    const line = document.createElement('small');
    line.className = 'funds';
    if (err.debt !== null) line.append(t('debt_now', { amount: money(err.debt) }), ' ');
    const a = document.createElement('a');
    a.href = '/wallet';
    a.textContent = t('repay_debt');
    line.append(a);
    box.append(document.createElement('br'), line);
  }

  /** A whole-number field; anything else is refused here, as the API would refuse it. */
  function int(form, name) {
    const input = form.elements[name];
    const raw = rawNumber(input);
    const value = Number(raw);
    if (!WHOLE.test(raw) || !Number.isSafeInteger(value)) {
      throw new ApiError({ status: 422, code: 'invalid-input',
        fields: [{ field: input.dataset.field || name, code: 'not-integer', params: {} }] });
    }
    return value;
  }

  /** Where to go after login: the path the server checked and rendered (same site only). */
  function nextUrl() {
    const holder = $('[data-next]');
    return holder && holder.dataset.next ? holder.dataset.next : null;
  }

  /** Login and signup links take the reader back to this page afterwards. */
  function linkBack(root) {
    if (PAGE === 'login' || PAGE === 'signup' || location.pathname === '/') return;
    const here = encodeURIComponent(location.pathname + location.search);
    for (const a of $$('a[href="/login"], a[href="/signup"]', root)) {
      a.href = `${a.getAttribute('href')}?next=${here}`;
    }
  }

  /* ---------- forms: one Idempotency-Key per submission ---------- */

  const FORMS = {
    async login(form) {
      await login(form.elements.email.value, form.elements.password.value);
      location.assign(nextUrl() || '/');
    },
    async signup(form, key) {
      const f = form.elements;
      await api('POST', '/auth/signup', { key, body: {
        email: f.email.value, password: f.password.value, display_name: f.display_name.value,
        role: f.role.value, language: f.language.value } });
      await login(f.email.value, f.password.value);
      location.assign(nextUrl() || (f.role.value === 'streamer' ? '/studio' : '/'));
    },
    async propose(form, key) {
      const f = form.elements;
      const mission = await api('POST', '/missions', { auth: 'required', key, body: {
        streamer_id: int(form, 'streamer_id'), title: f.title.value,
        description: f.description.value, amount: int(form, 'amount'),
        duration_seconds: int(form, 'duration') * int(form, 'duration_unit') } });
      form.reset();
      await reloadSections(['open-missions', 'board']);
      toast(t('proposed'), { href: `/missions/${mission.id}`, text: t('view_mission') });
    },
    async post(form, key) {
      const f = form.elements;
      await api('POST', `/channels/${int(form, 'streamer_id')}/posts`, { auth: 'required', key,
        body: { title: f.title.value, body: f.body.value } });
      await reloadSections(['board']);
      toast(t('post_done'));
    },
    async 'edit-post'(form) {
      const f = form.elements;
      await api('PATCH', `/posts/${form.dataset.post}`, { auth: 'required',
        body: { title: f.title.value, body: f.body.value } });
      await reloadSections(['post-main']);
      toast(t('saved'));
    },
    async comment(form, key) {
      await api('POST', `/posts/${form.dataset.post}/comments`, { auth: 'required', key,
        body: { body: form.elements.body.value } });
      await reloadSections(['comments']);
      toast(t('comment_done'));
    },
    async pledge(form, key) {
      const amount = int(form, 'amount');
      const body = { amount };
      const message = form.elements.message ? form.elements.message.value.trim() : '';
      if (message) body.message = message;
      if (form.elements.anonymous && form.elements.anonymous.checked) body.anonymous = true;
      await api('POST', `/missions/${form.dataset.mission}/pledges`, { auth: 'required', key,
        body });
      await reloadSections(['mission-main']);
      await loadMyBet();
      toast(t('pledge_done', { amount }));
    },
    async bet(form, key) {
      const points = int(form, 'points');
      await api('POST', `/missions/${form.dataset.mission}/bets`, { auth: 'required', key,
        body: { side: form.elements.side.value, points } });
      await reloadSections(['prediction']);
      await loadMyBet();
      toast(t('bet_done', { points }));
    },
    async topup(form, key) {
      const amount = int(form, 'amount');
      const topup = await api('POST', '/wallet/topups', { auth: 'required', key,
        body: { amount } });
      if (topup.checkout) {
        // A real provider: pay in its widget, then the server asks the provider what was paid.
        const method = form.elements.pay_method ? form.elements.pay_method.value : null;
        await window.MissionLinkPay.pay(topup.checkout,
          { method, redirectUrl: `${location.origin}/wallet` });
        await confirmTopup(topup.id);
        return;
      }
      await Promise.all([loadBalances(), loadJournal(), loadTopups()]);
      const back = nextUrl();
      toast(t('topup_done', { amount }), back ? { href: back, text: t('back_to_page') } : null);
    },
    async settings(form) {
      const settings = await api('PATCH', '/streamers/me/settings', { auth: 'required', body: {
        missions_enabled: form.elements.missions_enabled.checked,
        min_mission_amount: int(form, 'min_mission_amount'),
        accept_timeout_seconds: int(form, 'accept_timeout_minutes') * 60 } });
      fillSettings(form, settings);
      toast(t('saved'));
    },
  };

  /* ---------- fan board: the author edits a comment ---------- */

  Object.assign(FORMS, {
    async 'edit-comment'(form, key) {
      await api('PATCH', `/comments/${form.dataset.comment}`, { auth: 'required', key,
        body: { body: form.elements.body.value } });
      await reloadSections(['comments']);
      toast(t('comment_saved'));
    },
  });

  document.addEventListener('submit', async (event) => {
    const form = event.target;
    const handler = FORMS[form.dataset.form];
    if (!handler) return;
    event.preventDefault();
    if (form.dataset.busy) return; // a double click: the first submission is still running
    form.dataset.busy = '1';
    const buttons = $$('button[type=submit]', form);
    buttons.forEach((b) => { b.disabled = true; });
    clearError(form);
    // Kept until the submission succeeds or the form changes, so a retry after a lost
    // response replays the first result instead of paying twice.
    form.dataset.idempotencyKey ||= newKey();
    try {
      precheck(form);
      await handler(form, form.dataset.idempotencyKey);
      delete form.dataset.idempotencyKey;
    } catch (err) {
      showError(form, err instanceof ApiError ? err : new ApiError({ code: 'error' }));
    } finally {
      delete form.dataset.busy;
      buttons.forEach((b) => { b.disabled = false; });
    }
  });

  document.addEventListener('input', (event) => {
    const form = event.target.form;
    if (form && !form.dataset.busy) delete form.dataset.idempotencyKey; // a new submission
  });

  /* ---------- buttons ---------- */

  /** The optional reason typed next to a reject button (the server checks it again). */
  function rejectReason(button) {
    const box = button.closest('.actions')?.querySelector('input[name=reject_reason]');
    return box ? box.value.trim() : '';
  }

  const ACTIONS = {
    async 'repay-debt'(button) {
      button.dataset.idempotencyKey ||= newKey();
      const r = await api('POST', '/wallet/debt/repay', { auth: 'required',
        key: button.dataset.idempotencyKey });
      delete button.dataset.idempotencyKey;
      await Promise.all([loadBalances(), loadJournal()]);
      toast(t(r.debt ? 'debt_repaid_part' : 'debt_repaid', { amount: r.repaid, debt: r.debt }));
    },
    async 'hide-message'(button) {
      // The mission's streamer hides a backer's message; the pledge stays.
      if (!window.confirm(t('confirm_hide_message'))) return;
      await api('POST', `/missions/${document.body.dataset.missionId}/pledges/${button.dataset.pledge}/hide`,
        { auth: 'required' });
      await reloadSections(['backers']);
    },
    lang(button) {
      const lang = button.dataset.lang;
      rememberLang(lang);
      const url = new URL(location.href);
      url.searchParams.set('lang', lang);
      location.assign(url);
    },
    logout,
    async mission(button) {
      const { op, mission } = button.dataset;
      if (op !== 'accept' && !window.confirm(t(`confirm_${op}`))) return;
      const result = op === 'success' || op === 'failure';
      const reason = op === 'reject' ? rejectReason(button) : '';
      // A changed reason is a new request, not a retry of the old one.
      if (button.dataset.keyReason !== reason) delete button.dataset.idempotencyKey;
      button.dataset.keyReason = reason;
      button.dataset.idempotencyKey ||= newKey();
      const updated = await api('POST', `/missions/${mission}/${result ? 'result' : op}`, {
        auth: 'required', key: button.dataset.idempotencyKey,
        body: result ? { outcome: op } : (reason ? { reason } : undefined) });
      delete button.dataset.idempotencyKey;
      toast(t('mission_updated', { status: t(`status_${updated.status}`) }));
      await refreshMissions();
    },
    async 'delete-post'(button) {
      if (!window.confirm(t('confirm_delete'))) return;
      await api('DELETE', `/posts/${button.dataset.post}`, { auth: 'required' });
      location.assign(`/channels/${document.body.dataset.streamerId}`);
    },
    async 'delete-comment'(button) {
      if (!window.confirm(t('confirm_delete'))) return;
      await api('DELETE', `/comments/${button.dataset.comment}`, { auth: 'required' });
      await reloadSections(['comments']);
      toast(t('deleted'));
    },
    async refund(button) {
      const amount = Number(button.dataset.amount);
      if (!window.confirm(t('confirm_refund', { amount: money(amount) }))) return;
      button.dataset.idempotencyKey ||= newKey();
      const refund = await api('POST', `/wallet/topups/${button.dataset.topup}/refunds`, {
        auth: 'required', key: button.dataset.idempotencyKey, body: { amount } });
      toast(t(`refund_${refund.state}`, { amount: money(refund.amount) }));
      await Promise.all([loadBalances(), loadJournal(), loadTopups()]);
    },
    async csv() {
      const r = await apiResponse('GET', `/wallet/transactions?format=csv&lang=${LANG}`,
        { auth: 'required' });
      await saveFile(r, 'missionlink-statement.csv');
    },
    async 'journal-older'() { journal.index += 1; await loadJournal(); },
    async 'journal-newer'() { journal.index = Math.max(0, journal.index - 1); await loadJournal(); },
    async 'copy-overlay'() {
      const input = $('#overlay-url');
      try { await navigator.clipboard.writeText(input.value); } catch { input.select(); }
      toast(t('copied'));
    },
    async 'ops-pause'(button) {
      ops.paused = !ops.paused;
      button.setAttribute('aria-pressed', String(ops.paused));
      button.textContent = t(ops.paused ? 'ops_resume' : 'ops_pause');
      if (!ops.paused) await loadOperations();
      else showUpdated();
    },
    async replay(button) {
      const id = button.dataset.id;
      button.dataset.idempotencyKey ||= newKey();
      const result = await api('POST', `/admin/dead-letters/${encodeURIComponent(id)}/replay`,
        { auth: 'required', key: button.dataset.idempotencyKey });
      delete button.dataset.idempotencyKey;
      toast(t(result.replayed ? 'ops_replay_done' : 'ops_replay_already', { id }));
      ops.focusHeading = true;
      await loadOperations();
    },
    async 'rotate-overlay'(button) {
      if (!window.confirm(t('confirm_rotate'))) return;
      button.dataset.idempotencyKey ||= newKey();
      const overlay = await api('POST', '/streamers/me/overlay/rotate', { auth: 'required',
        key: button.dataset.idempotencyKey });
      delete button.dataset.idempotencyKey;
      $('#overlay-url').value = overlay.url;
      toast(t('rotated'));
    },
  };

  document.addEventListener('click', async (event) => {
    const button = event.target.closest('[data-action]');
    const action = button && ACTIONS[button.dataset.action];
    if (!action || button.dataset.busy) return;
    event.preventDefault();
    button.dataset.busy = '1';
    button.disabled = true;
    const scope = button.closest('li, article, section, form') || document.body;
    clearError(scope);
    try {
      await action(button);
    } catch (err) {
      showError(scope, err instanceof ApiError ? err : new ApiError({ code: 'error' }));
    } finally {
      delete button.dataset.busy;
      button.disabled = false;
    }
  });

  /* ---------- per page ---------- */

  async function refreshMissions() {
    if (PAGE === 'mission') { await reloadSections(['mission-main']); await loadMyBet(); }
    else if (PAGE === 'studio') await loadStudioMissions();
    else await reloadSections(['open-missions']);
  }

  async function loadMyBet() {
    const box = $('#my-bet');
    if (!box || !me) return;
    const p = await api('GET', `/missions/${document.body.dataset.missionId}/prediction`,
      { auth: 'optional' });
    if (!p.my_bet) return;
    box.textContent = t('my_bet', { side: t(`side_${p.my_bet.side}`), points: p.my_bet.points });
    box.hidden = false;
    // One side per user per mission: adding to the bet is fine, switching sides is not.
    for (const radio of $$('form[data-form=bet] input[name=side]')) {
      radio.checked = radio.value === p.my_bet.side;
      radio.disabled = radio.value !== p.my_bet.side;
    }
  }

  const journal = { cursors: [null], index: 0 };

  /** A table row, and ``cell(text, cls)`` that appends a text cell (with an optional
   *  class) to it and returns the cell. */
  function tableRow() {
    const tr = document.createElement('tr');
    const cell = (text, cls) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (cls) td.className = cls;
      tr.append(td);
      return td;
    };
    return [tr, cell];
  }

  /** A small button of ``action`` with its text and a label saying what it acts on. */
  function smallButton(action, text, label, data = {}) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'secondary small';
    button.dataset.action = action;
    Object.assign(button.dataset, data);
    button.textContent = text;
    if (label) button.setAttribute('aria-label', label);
    return button;
  }

  /** Save a response fetched with the caller's token (a CSV) as a download named ``name``. */
  async function saveFile(response, name) {
    const url = URL.createObjectURL(await response.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  /** A ``<time>`` of ``iso`` that the page shows in the reader's own time zone. */
  function localTime(iso) {
    const time = document.createElement('time');
    time.dateTime = iso;
    time.dataset.local = '';
    return time;
  }

  /** The latest top-ups and their states (pending, awaiting a deposit, completed...). */
  async function loadTopups() {
    const table = $('#topups');
    if (!table) return [];
    const page = await api('GET', '/wallet/topups?limit=10', { auth: 'required' });
    const rows = page.items.map((x) => {
      const [tr, cell] = tableRow();
      tr.dataset.status = x.status;
      cell('').append(localTime(x.created_at));
      cell(money(x.amount), 'num');
      cell(T[`topup_status_${x.status}`] || x.status);
      const due = x.deposit_due_at ? dateFormat.format(new Date(x.deposit_due_at)) : '';
      const note = cell(x.status === 'awaiting_deposit' && x.virtual_account
        ? t('deposit_to', { account: x.virtual_account, due }) : (x.failure_reason || ''));
      if (x.refundable > 0) {
        // Unspent cash of a completed top-up goes back to the method it was paid with.
        note.append(smallButton('refund', t('refund_action', { amount: money(x.refundable) }),
          null, { topup: x.id, amount: x.refundable }));
      }
      return tr;
    });
    $('#topups tbody').replaceChildren(...rows);
    $('#topups-empty').hidden = rows.length > 0;
    decorate(table);
    await loadRefunds();
    return page.items;
  }

  /** The latest refunds of top-ups and their states (pending, succeeded, failed). */
  async function loadRefunds() {
    const table = $('#refunds');
    if (!table) return;
    const page = await api('GET', '/wallet/refunds?limit=10', { auth: 'required' });
    const rows = page.items.map((x) => {
      const tr = document.createElement('tr');
      tr.dataset.state = x.state;
      for (const [text, cls] of [['', ''], [money(x.amount), 'num'],
        [T[`refund_state_${x.state}`] || x.state, ''], [x.failure_reason || '', '']]) {
        const td = document.createElement('td');
        td.textContent = text;
        if (cls) td.className = cls;
        tr.append(td);
      }
      const time = document.createElement('time');
      time.dateTime = x.created_at;
      time.dataset.local = '';
      tr.firstChild.append(time);
      return tr;
    });
    $('#refunds tbody').replaceChildren(...rows);
    $('#refunds-section').hidden = rows.length === 0;
    decorate(table);
  }

  /** Ask the server to confirm a top-up with its provider, and say what came of it. */
  async function confirmTopup(id) {
    try {
      const r = await api('POST', `/wallet/topups/${id}/confirm`, { auth: 'required' });
      const said = { completed: 'topup_done', awaiting_deposit: 'topup_awaiting_deposit',
        pending: 'topup_pending' };
      toast(t(said[r.status] || 'topup_not_paid', { amount: r.amount }));
    } finally {
      await Promise.all([loadBalances(), loadJournal(), loadTopups()]);
    }
  }

  /** Back from a provider's payment page (mobile, 3-D Secure): confirm that top-up. */
  async function returnFromProvider(items) {
    const params = new URLSearchParams(location.search);
    const pid = params.get('paymentId') || params.get('payment_intent');
    if (!pid) return;
    history.replaceState(null, '', '/wallet');
    const topup = items.find((x) => x.provider_payment_id === pid);
    if (topup) await confirmTopup(topup.id);
  }

  async function loadBalances() {
    const w = await api('GET', '/wallet', { auth: 'required' });
    $('#cash-balance').textContent = money(w.cash_balance);
    $('#points-balance').textContent = num(w.points_balance) + T.currency_PTS;
    const banner = $('#debt-banner');
    if (banner) {
      banner.hidden = !w.debt;
      $('#debt-amount').textContent = money(w.debt || 0);
    }
  }

  /** Top-up money a payment provider took back (disputes, cancellations we did not make). */
  async function loadChargebacks() {
    const section = $('#chargebacks-section');
    if (!section) return;
    const page = await api('GET', '/wallet/chargebacks?limit=20', { auth: 'required' });
    const rows = page.items.map((x) => {
      const [tr, cell] = tableRow();
      tr.dataset.state = x.state;
      cell('').append(localTime(x.created_at));
      cell(money(x.amount), 'num');
      cell(T[`chargeback_state_${x.state}`] || x.state);
      cell(x.reason || '');
      return tr;
    });
    $('#chargebacks tbody').replaceChildren(...rows);
    section.hidden = rows.length === 0;
    decorate(section);
  }

  async function loadJournal() {
    const cursor = journal.cursors[journal.index];
    const query = `?limit=20&lang=${LANG}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = await api('GET', `/wallet/transactions${query}`, { auth: 'required' });
    journal.cursors[journal.index + 1] = page.next_cursor;
    const rows = page.items.map((line) => {
      const [tr, cell] = tableRow();
      cell('').append(localTime(line.created_at));
      cell(T[`kind_${line.kind}`] || line.kind);
      const sign = line.amount > 0 ? '+' : '−';
      cell(sign + num(Math.abs(line.amount)) + (T[`currency_${line.currency}`] || ''),
        `num ${line.amount > 0 ? 'plus' : 'minus'}`);
      journalDetail(cell(''), line);
      return tr;
    });
    $('#journal tbody').replaceChildren(...rows);
    $('#journal-empty').hidden = rows.length > 0 || journal.index > 0;
    $('[data-action=journal-older]').disabled = !page.next_cursor;
    $('[data-action=journal-newer]').disabled = journal.index === 0;
    decorate($('#journal'));
  }

  // --- Wallet as a statement: a line's mission title or other side, a payout's fee, and
  // the pledges held in escrow (docs/web.md, "Wallet").
  function journalDetail(td, line) {
    if (line.mission_id) {
      const a = document.createElement('a');
      a.href = `/missions/${line.mission_id}`;
      a.textContent = line.mission_title || `#${line.mission_id}`;
      a.className = 'journal-title';
      td.append(a);
    } else {
      const span = document.createElement('span');
      span.className = 'journal-counterparty';
      span.textContent = line.counterparty_label || '';
      td.append(span);
    }
    if (line.payout) {
      const p = document.createElement('span');
      p.className = 'payout-breakdown muted small';
      p.textContent = t('payout_breakdown', { gross: money(line.payout.gross),
        fee: money(line.payout.fee), rate: line.payout.fee_bps / 100,
        net: money(line.payout.net) });
      td.append(document.createElement('br'), p);
    }
  }

  async function loadEscrow() {
    const table = $('#escrow-items');
    if (!table) return;
    const page = await api('GET', '/wallet/escrow?limit=50', { auth: 'required' });
    $('#escrow-total').textContent = money(page.total);
    const rows = page.items.map((x) => {
      const tr = document.createElement('tr');
      tr.dataset.mission = x.mission_id;
      const cell = (cls) => {
        const td = document.createElement('td');
        if (cls) td.className = cls;
        tr.append(td);
        return td;
      };
      const a = document.createElement('a');
      a.href = `/missions/${x.mission_id}`;
      a.textContent = x.mission_title;
      cell('escrow-title').append(a);
      cell('num').textContent = money(x.amount);
      cell('escrow-state').textContent = x.outcome === 'settling'
        ? T.escrow_settling : (T[`status_${x.mission_status}`] || x.mission_status);
      const until = x.mission_status === 'pending' ? x.accept_by
        : (x.mission_status === 'accepted' ? x.deadline_at : null);
      const when = cell('');
      if (until) {
        const time = document.createElement('time');
        time.dateTime = until;
        time.dataset.local = '';
        when.append(time);
      }
      return tr;
    });
    $('#escrow-items tbody').replaceChildren(...rows);
    $('#escrow-empty').hidden = rows.length > 0;
    decorate(table);
  }
  // --- /Wallet as a statement

  function fillSettings(form, s) {
    form.elements.missions_enabled.checked = s.missions_enabled;
    form.elements.min_mission_amount.value = s.min_mission_amount;
    form.elements.accept_timeout_minutes.value = Math.round(s.accept_timeout_seconds / 60);
  }

  async function loadStudioMissions() {
    const r = await fetch(`/channels/${me.id}/open-missions?lang=${LANG}`,
      { credentials: 'same-origin', headers: { Accept: 'text/html' } });
    const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
    const section = doc.getElementById('open-missions');
    const holder = $('#studio-missions');
    if (section) holder.replaceChildren(document.adoptNode(section));
    decorate(holder);
  }

  /* ---------- the streamer's profile (studio) and quick pledge amounts ---------- */

  // The same rules as domain/profile.py, checked before sending so the reason shows in the
  // page's language; the server still decides.
  const LINK_CHARS = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+$/;
  const LINK_MAX = 300;
  /** The length the server counts: code points after NFC. */
  const textLength = (s) => [...s.normalize('NFC')].length;

  function introCount(form) {
    const box = $('.intro-count', form);
    if (box) {
      box.textContent = t('profile_intro_hint', { n: textLength(form.elements.intro.value.trim()),
        max: Number(form.dataset.introMax) });
    }
  }

  /** Whether ``value`` is a link the server refuses (an empty one removes the link). */
  function linkRefused(form, value) {
    const url = value.trim();
    if (!url) return false;
    if (url.length > LINK_MAX || !LINK_CHARS.test(url)) return true;
    const m = /^https:\/\/([^/?#]*)(.*)$/i.exec(url);
    if (!m || !form.dataset.linkHosts.split(' ').includes(m[1].toLowerCase())) return true;
    return m[2].split(/[?#]/)[0].replace(/\//g, '') === '';
  }

  function fillProfile(form, p) {
    form.elements.intro.value = p.intro;
    form.elements.link.value = p.link || '';
    introCount(form);
  }

  async function loadProfile() {
    const form = $('form[data-form=profile]');
    if (!form) return;
    $('.my-channel-link', form).href = `/channels/${me.id}`;
    fillProfile(form, await api('GET', '/streamers/me/profile', { auth: 'required' }));
    for (const el of form.elements) el.disabled = false;
    form.dataset.loaded = '1';
  }

  FORMS.profile = async (form) => {
    const f = form.elements;
    const max = Number(form.dataset.introMax);
    const refuse = (field, detail) => {
      field.focus();
      return new ApiError({ status: 422, code: 'invalid-input', detail });
    };
    if (textLength(f.intro.value.trim()) > max) {
      throw refuse(f.intro, t('profile_intro_too_long', { max }));
    }
    if (linkRefused(form, f.link.value)) throw refuse(f.link, t('profile_link_invalid'));
    const profile = await api('PATCH', '/streamers/me/profile', { auth: 'required',
      body: { intro: f.intro.value, link: f.link.value.trim() } });
    fillProfile(form, profile);
    toast(t('saved'));
  };

  document.addEventListener('input', (event) => {
    const form = event.target.form;
    if (form && form.dataset.form === 'profile' && event.target.name === 'intro') introCount(form);
  });

  // Quick amounts add to what is typed (an empty or unreadable field counts as 0); "clear"
  // empties it. The input event makes the next submission a new one (a fresh key).
  document.addEventListener('click', (event) => {
    const button = event.target.closest('[data-add-amount], [data-clear-amount]');
    const form = button && button.closest('form');
    if (!form || form.dataset.busy) return;
    const input = form.elements.amount;
    if ('clearAmount' in button.dataset) {
      input.value = '';
    } else {
      const typed = Number(String(input.value).replace(/[,\s]/g, ''));
      const base = Number.isSafeInteger(typed) && typed > 0 ? typed : 0;
      input.value = String(base + Number(button.dataset.addAmount));
    }
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });

  /* ---------- the operations page (admins) ---------- */

  const OPS_EVERY_MS = 5000;
  const ops = { paused: false, timer: null, at: null, focusHeading: false };
  const clockFormat = new Intl.DateTimeFormat(LANG === 'en' ? 'en-GB' : 'ko-KR',
    { timeStyle: 'medium' });
  const rate = (n) => (n === null || n === undefined ? '–'
    : Number(n).toLocaleString(LANG === 'en' ? 'en-US' : 'ko-KR', { maximumFractionDigits: 2 }));
  const ago = (seconds) => (seconds > 0 ? duration(Math.round(seconds)) : t('ops_none'));
  const setText = (id, text) => { $(`#${id}`).textContent = text; };

  function showUpdated() {
    if (!ops.at) return;
    const time = clockFormat.format(ops.at);
    setText('ops-updated', ops.paused ? t('ops_paused', { time })
      : t('ops_updated', { time, seconds: OPS_EVERY_MS / 1000 }));
  }

  function deadLetterRow(item) {
    const [tr, cell] = tableRow();
    cell(item.id, 'mono');
    const what = item.kind === 'event' ? t('ops_event_what', { topic: item.topic })
      : t('ops_email_what', { user: item.user_id, mission: item.mission_id });
    const about = cell(what);
    if (item.kind === 'event' && item.mission_id) {
      const a = document.createElement('a');
      a.href = `/missions/${item.mission_id}`;
      a.textContent = t('ops_mission_ref', { mission: item.mission_id });
      about.append(' · ', a);
    }
    cell(num(item.attempts), 'num');
    const when = cell('');
    if (item.at) {
      const time = document.createElement('time');
      time.dateTime = item.at;
      time.dataset.local = '';
      when.append(time);
    }
    cell(item.error, 'error-text');
    cell('').append(smallButton('replay', t('ops_replay'), t('ops_replay_label', { id: item.id }),
      { id: item.id }));
    return tr;
  }

  function fillOperations(o) {
    const p = o.process;
    const r = p.requests;
    setText('ops-rate', rate(r.per_second));
    setText('ops-5xx', rate(r.server_errors_per_second));
    setText('ops-4xx', rate(r.client_errors_per_second));
    setText('ops-latency', r.mean_seconds === null ? '–'
      : `${rate(r.mean_seconds * 1000)} ms`);
    $('#ops-5xx').classList.toggle('bad', r.server_errors_per_second > 0);
    setText('ops-requests-note', t('ops_process_note') + (r.window_seconds
      ? ' ' + t('ops_rate_window', { seconds: Math.round(r.window_seconds), total: r.total,
        errors: r.server_errors }) : ''));
    setText('ops-backlog', num(o.outbox.backlog));
    setText('ops-oldest', ago(o.outbox.oldest_age_seconds));
    $('#ops-oldest').classList.toggle('bad', o.outbox.oldest_age_seconds > 300);
    setText('ops-open', num(o.missions.open));
    setText('ops-unsettled', num(o.missions.awaiting_settlement));
    setText('ops-escrow', money(o.escrow_krw));
    setText('ops-emails-failed', num(o.emails.failed));
    $('#ops-emails-failed').classList.toggle('bad', o.emails.failed > 0);
    setText('ops-emails-queued', num(o.emails.queued));
    setText('ops-emails-sent', num(o.emails.sent));
    setText('ops-emails-retried', num(p.emails.retried));
    const rec = p.reconcile;
    const result = $('#ops-reconcile-result');
    result.textContent = !rec.ran ? t('ops_reconcile_never')
      : rec.ok ? t('ops_reconcile_ok') : t('ops_reconcile_failed', { n: rec.violations });
    result.className = !rec.ran ? 'muted' : rec.ok ? 'good' : 'bad';
    const at = $('#ops-reconcile-at');
    at.replaceChildren();
    if (rec.finished_at) {
      const time = document.createElement('time');
      time.dateTime = rec.finished_at;
      time.dataset.local = '';
      at.append(time);
    } else at.textContent = '–';
    setText('ops-reconcile-duration', rec.duration_seconds === null ? '–'
      : `${rate(rec.duration_seconds * 1000)} ms`);

    const dead = o.dead_letters;
    setText('ops-dead-count', num(dead.events + dead.emails));
    $('#ops-dead-count').classList.toggle('bad', dead.events + dead.emails > 0);
    // Rows are rebuilt on every refresh: keep the keyboard where it was.
    const focused = document.activeElement?.closest?.('#ops-dead [data-id]')?.dataset.id;
    $('#ops-dead tbody').replaceChildren(...dead.items.map(deadLetterRow));
    $('#ops-dead').hidden = dead.items.length === 0;
    $('#ops-dead-empty').hidden = dead.items.length > 0;
    const more = $('#ops-dead-more');
    more.hidden = dead.events <= dead.limit && dead.emails <= dead.limit;
    more.textContent = t('ops_newest_only', { n: dead.limit });
    decorate($('#ops-board'));
    const again = focused && $$('#ops-dead [data-id]').find((b) => b.dataset.id === focused);
    if (again) again.focus();
    else if (focused || ops.focusHeading) $('#ops-dead-h').focus();
    ops.focusHeading = false;
  }

  async function loadOperations() {
    clearTimeout(ops.timer);
    let again = true;
    try {
      const o = await api('GET', '/admin/operations', { auth: 'required' });
      $('#ops-error').hidden = true;
      ops.at = new Date();
      fillOperations(o);
      showUpdated();
    } catch (err) {
      showError($('#ops-board'), err instanceof ApiError ? err : new ApiError({ code: 'error' }));
      again = err.status !== 401 && err.status !== 403; // the session ended: stop
    } finally {
      if (again && !ops.paused) ops.timer = setTimeout(refreshOperations, OPS_EVERY_MS);
    }
  }

  function refreshOperations() {
    if (ops.paused) return;
    // A hidden tab does not poll; it catches up when shown again.
    if (document.hidden) { ops.timer = setTimeout(refreshOperations, OPS_EVERY_MS); return; }
    loadOperations();
  }

  /* ---------- live updates: the public streams of docs/live.md ---------- */

  // The mission, channel and studio pages follow their stream: a pledge bumps the total at
  // once, and the sections an event changes are re-rendered by the server (which escapes
  // everything), at most once per LIVE_GAP_MS (LIVE_BUSY_MS while events keep coming: a hot
  // mission's viewers each fetch its page at most every 2 s), never while the tab
  // is hidden. EventSource resumes a dropped stream itself with Last-Event-ID; a refused
  // one (429, 503) is reopened here after a backoff, and its snapshot catches the page up.
  const LIVE_GAP_MS = 500;
  const LIVE_BUSY_MS = 2000; // once the page re-rendered LIVE_BUSY_AFTER times in 10 s
  const LIVE_BUSY_AFTER = 5;
  const LIVE_LATE_MS = 3000; // a resume normally takes 2 s (retry: 2000): shown after this
  const MISSION_SECTIONS = ['mission-card', 'pledge-box', 'backers', 'prediction'];
  const live = { url: null, source: null, retry: 0, downTimer: null, shown: new Set(),
    fresh: new Set(), pending: new Set(), timer: null, last: 0, recent: [], running: false };

  function liveUrl() {
    const d = document.body.dataset;
    if (PAGE === 'mission') return `${API}/missions/${d.missionId}/events`;
    if (PAGE === 'channel') return `${API}/channels/${d.streamerId}/events`;
    if (PAGE === 'studio' && me && me.role === 'streamer') return `${API}/channels/${me.id}/events`;
    return null;
  }

  function liveState(on) {
    const box = $('#live-status');
    clearTimeout(live.downTimer);
    live.downTimer = null;
    if (!box) return;
    const show = (up) => {
      box.textContent = t(up ? 'live_on' : 'live_down');
      box.classList.toggle('on', up);
      box.classList.toggle('down', !up);
      box.hidden = false;
    };
    if (on) show(true);
    else live.downTimer = setTimeout(() => show(false), LIVE_LATE_MS);
  }

  /** A CSS selector that finds ``el`` again in a re-rendered copy of its section. */
  function selectorOf(el) {
    if (el.id) return `#${CSS.escape(el.id)}`;
    let sel = el.tagName.toLowerCase();
    for (const attr of ['data-action', 'data-op', 'data-mission', 'name', 'value']) {
      const v = el.getAttribute(attr);
      if (v === null || (attr === 'value' && el.type !== 'radio')) continue;
      sel += `[${attr}="${CSS.escape(v)}"]`;
    }
    const form = el.closest('form[data-form]');
    return form ? `form[data-form="${CSS.escape(form.dataset.form)}"] ${sel}` : sel;
  }

  /** What a re-render must not lose: focus, typed values, the submission's key, errors. */
  function keepState(root) {
    if (!root) return null;
    const active = document.activeElement;
    const forms = $$('form[data-form]', root).map((form) => ({
      name: form.dataset.form, key: form.dataset.idempotencyKey,
      fields: $$('input[name], textarea[name], select[name]', form)
        .filter((f) => (f.type === 'radio' || f.type === 'checkbox'
          ? f.checked !== f.defaultChecked : f.type !== 'hidden' && f.value !== f.defaultValue))
        .map((f) => ({ sel: selectorOf(f), value: f.value, checked: f.checked })),
    }));
    const errors = $$('.form-error', root)
      .map((box) => (box.hidden ? null : box.cloneNode(true)));
    return { id: root.id, focus: active && root.contains(active) ? selectorOf(active) : null,
      forms, errors };
  }

  function restoreState(saved) {
    const root = saved && document.getElementById(saved.id);
    if (!root) return;
    for (const f of saved.forms) {
      const form = $(`form[data-form="${CSS.escape(f.name)}"]`, root);
      if (!form) continue;
      if (f.key) form.dataset.idempotencyKey = f.key;
      for (const field of f.fields) {
        const el = $(field.sel, root);
        if (!el || el.disabled) continue;
        if (el.type === 'radio' || el.type === 'checkbox') el.checked = field.checked;
        else el.value = field.value;
      }
    }
    const boxes = $$('.form-error', root);
    if (boxes.length === saved.errors.length) {
      saved.errors.forEach((copy, i) => { if (copy) boxes[i].replaceWith(copy); });
    }
    const again = saved.focus && $(saved.focus, root);
    if (again && !again.disabled) again.focus({ preventScroll: true });
  }

  async function liveFlush() {
    live.timer = null;
    if (document.hidden) return; // shown again: visibilitychange flushes
    const ids = [...live.pending];
    live.pending.clear();
    live.last = Date.now();
    live.recent = live.recent.filter((at) => live.last - at < 10000);
    live.recent.push(live.last);
    live.running = true;
    const saved = ids.map((id) => keepState(document.getElementById(id)));
    try {
      if (PAGE === 'studio') await loadStudioMissions();
      else await reloadSections(ids.filter((id) => id !== 'studio-missions'));
      saved.forEach(restoreState);
      for (const row of $$('#backers tr[data-pledge-id]')) {
        const id = Number(row.dataset.pledgeId);
        if (live.fresh.delete(id)) row.classList.add('fresh');
        live.shown.add(id); // on the page already: its event, if it comes, changes nothing
      }
      if (PAGE === 'mission' && ids.includes('prediction')) await loadMyBet();
    } catch {
      // Offline for a moment: the next event or snapshot reloads.
    } finally {
      live.running = false;
      if (liveOver()) liveStop();
      else if (live.pending.size) liveReload([]);
    }
  }

  /** A settled mission changes no more: its page lets go of the stream. */
  const liveOver = () => PAGE === 'mission' && $('#mission-card')?.dataset.settlement === 'settled';

  function liveStop() {
    live.source?.close();
    live.source = null;
    clearTimeout(live.downTimer);
    const box = $('#live-status');
    if (box) box.hidden = true;
  }

  /** Re-render these sections soon: bursts share one reload, one per LIVE_GAP_MS at most. */
  function liveReload(ids) {
    for (const id of ids) live.pending.add(id);
    if (live.timer || live.running || !live.pending.size) return;
    const gap = live.recent.length >= LIVE_BUSY_AFTER ? LIVE_BUSY_MS : LIVE_GAP_MS;
    // A little jitter, so the viewers of one event do not all ask at the same moment.
    live.timer = setTimeout(liveFlush,
      Math.max(0, live.last + gap - Date.now()) + Math.random() * 250);
  }

  /** The sections of this page that an event of ``type`` changes. */
  function sectionsOf(type) {
    const ended = type === 'mission.ended' || type === 'mission.settled';
    if (PAGE === 'studio') return ['studio-missions'];
    if (PAGE === 'channel') {
      return ended ? ['open-missions', 'past-missions', 'top-backers']
        : ['open-missions', 'top-backers'];
    }
    if (type === 'pledge.created') return ['mission-card', 'backers'];
    if (type === 'bet.placed') return ['pools'];
    return MISSION_SECTIONS;
  }

  function liveTotal(missionId, total) {
    const els = PAGE === 'mission' ? $$('#mission-card .total[data-total]')
      : $$(`.mission-card[data-mission-id="${Number(missionId)}"] .total[data-total]`);
    for (const el of els) {
      // Totals only grow, and replayed pledges carry older running totals.
      if (total > Number(el.dataset.total)) {
        el.dataset.total = String(total);
        el.textContent = money(total);
      }
    }
  }

  /** The page shows something the snapshot does not (it changed since): re-render. */
  function liveSnapshot(e) {
    if (PAGE === 'mission') {
      const m = e.mission;
      const card = $('#mission-card');
      if (!m || !card) return;
      if (card.dataset.status !== m.status || card.dataset.settlement !== (m.settlement || '')
          || Number(card.dataset.total) !== m.total_pledged
          || Number(card.dataset.pledges) !== m.pledge_count) liveReload(MISSION_SECTIONS);
      return;
    }
    const open = new Map((e.missions || []).map((m) => [String(m.id), m]));
    const now = Date.now() + serverOffset;
    const stale = $$('#open-missions .mission-card').some((card) => {
      const m = open.get(card.dataset.missionId);
      open.delete(card.dataset.missionId);
      const total = $('.total[data-total]', card);
      if (!m) return Date.parse(card.dataset.closes) > now; // ended since, or unknown
      return m.status !== card.dataset.status
        || (total && Number(total.dataset.total) !== m.total_pledged);
    });
    if (stale || open.size) liveReload(sectionsOf('mission.ended'));
  }

  function onLive(message) {
    let e;
    try { e = JSON.parse(message.data); } catch { return; }
    if (!e || typeof e.type !== 'string') return;
    if (e.type === 'snapshot') { liveSnapshot(e); return; }
    if (e.type === 'pledge.created') {
      const id = Number(e.pledge_id);
      if (live.shown.has(id)) return; // already on the page: a replay, or seen twice
      live.shown.add(id);
      live.fresh.add(id);
      liveTotal(e.mission_id, Number(e.total_pledged));
    } else if (e.type === 'mission.created' && PAGE === 'studio') {
      toast(t('live_proposal', { title: String(e.title ?? '') }),
        { href: `/missions/${Number(e.mission_id)}`, text: t('view_mission') });
    } else if (e.type === 'bet.placed' && PAGE !== 'mission') return;
    liveReload(sectionsOf(e.type));
  }

  function liveConnect() {
    live.source?.close();
    const source = live.source = new EventSource(live.url);
    source.addEventListener('open', () => { live.retry = 0; liveState(true); });
    source.addEventListener('message', onLive);
    source.addEventListener('error', () => {
      liveState(false);
      // CONNECTING: the browser resumes by itself (Last-Event-ID). CLOSED: the server
      // refused the stream (429, 503): open a new one after a backoff, never give up.
      if (source.readyState !== EventSource.CLOSED || live.source !== source) return;
      source.close();
      const wait = Math.min(30000, 2000 * 2 ** Math.min(live.retry++, 4));
      setTimeout(() => { if (live.source === source) liveConnect(); },
        wait / 2 + Math.random() * wait / 2);
    });
  }

  async function loadOverlayStatus() {
    const box = $('#overlay-status');
    if (!box || !me) return;
    try {
      const s = await api('GET', `/streamers/${me.id}`);
      box.textContent = t(s.live ? 'overlay_connected' : 'overlay_not_connected');
      box.classList.toggle('good', Boolean(s.live));
      box.hidden = false;
    } catch { /* shown on the next round */ }
  }

  function startLive() {
    live.url = liveUrl();
    if (!live.url || !('EventSource' in window) || liveOver()) return;
    for (const row of $$('[data-pledge-id]')) live.shown.add(Number(row.dataset.pledgeId));
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) liveReload([]);
    });
    liveConnect();
    if (PAGE === 'studio') {
      loadOverlayStatus();
      setInterval(() => { if (!document.hidden) loadOverlayStatus(); }, 30000);
    }
  }

  const PAGES = {
    async wallet() {
      if (!me) return;
      const escrowShown = loadEscrow();
      const [, , topups] = await Promise.all([loadBalances(), loadJournal(), loadTopups(),
        loadChargebacks()]);
      await returnFromProvider(topups);
      await escrowShown;
    },
    async studio() {
      if (!me || me.role !== 'streamer') return;
      $('#my-channel').href = `/channels/${me.id}`;
      const [settings, overlay] = await Promise.all([
        api('GET', '/streamers/me/settings', { auth: 'required' }),
        api('GET', '/streamers/me/overlay', { auth: 'required' }),
      ]);
      fillSettings($('form[data-form=settings]'), settings);
      $('#overlay-url').value = overlay.url;
      await loadProfile();
      await loadStudioMissions();
    },
    mission: loadMyBet,
    async operations() {
      if (!me || me.role !== 'admin') return;
      await loadOperations();
    },
  };

  /* ---------- My page: the caller's pledges, bets and proposed missions ---------- */

  const MY_PAGE_SIZE = 10;
  const MY_RESULTS_SHOWN = 5;
  const myLists = {
    pledges: { cursors: [null], index: 0 },
    bets: { cursors: [null], index: 0 },
    missions: { cursors: [null], index: 0 },
  };

  /** What came of a pledge, bet or proposed mission, in the page's language. */
  function myOutcome(item) {
    if (item.outcome === 'refunded' && item.refunded) {
      return t('outcome_refunded_amount', { amount: money(item.refunded) });
    }
    if (item.outcome === 'refunded' && item.points_back) {
      return t('outcome_refunded_points', { points: item.points_back });
    }
    if (item.outcome === 'won') return t('outcome_won', { points: item.points_back });
    return T[`outcome_${item.outcome}`] || item.outcome;
  }

  function missionLink(id, title) {
    const a = document.createElement('a');
    a.href = `/missions/${id}`;
    a.textContent = title;
    return a;
  }

  function myRow(list, item) {
    const tr = document.createElement('tr');
    tr.dataset.outcome = item.outcome;
    const cell = (content, cls) => {
      const td = document.createElement('td');
      if (typeof content === 'string') td.textContent = content; else td.append(content);
      if (cls) td.className = cls;
      tr.append(td);
    };
    const id = list === 'missions' ? item.id : item.mission_id;
    cell(missionLink(id, list === 'missions' ? item.title : item.mission_title), 'my-title');
    if (list === 'pledges') cell(money(item.amount), 'num');
    if (list === 'bets') {
      cell(t(`side_${item.side}`));
      cell(`${num(item.points)} ${T.points_unit}`, 'num');
    }
    if (list === 'missions') cell(t(`status_${item.status}`));
    cell(myOutcome(item), `my-outcome outcome-${item.outcome}`);
    const time = document.createElement('time');
    time.dateTime = item.created_at;
    time.dataset.local = '';
    cell(time);
    return tr;
  }

  async function loadMyList(list) {
    const state = myLists[list];
    const cursor = state.cursors[state.index];
    const query = `?limit=${MY_PAGE_SIZE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = await api('GET', `/me/${list}${query}`, { auth: 'required' });
    state.cursors[state.index + 1] = page.next_cursor;
    const section = $(`#my-${list}`);
    $('tbody', section).replaceChildren(...page.items.map((item) => myRow(list, item)));
    $('.empty', section).hidden = page.items.length > 0 || state.index > 0;
    $('[data-action=my-older]', section).disabled = !page.next_cursor;
    $('[data-action=my-newer]', section).disabled = state.index === 0;
    decorate(section);
  }

  /** The newest results of what the caller backed: their pledges and bets on settled
   *  missions, the latest mission to end first. */
  async function loadMyResults() {
    const query = `?settled=true&limit=${MY_RESULTS_SHOWN}`;
    const [pledges, bets] = await Promise.all([
      api('GET', `/me/pledges${query}`, { auth: 'required' }),
      api('GET', `/me/bets${query}`, { auth: 'required' }),
    ]);
    const results = [
      ...pledges.items.map((item) => ({ kind: 'pledge', item })),
      ...bets.items.map((item) => ({ kind: 'bet', item })),
    ].sort((a, b) => (b.item.ended_at || '').localeCompare(a.item.ended_at || '')
      || b.item.id - a.item.id)
      .slice(0, MY_RESULTS_SHOWN);
    const rows = results.map(({ kind, item }) => {
      const li = document.createElement('li');
      li.dataset.outcome = item.outcome;
      const head = document.createElement('div');
      head.append(missionLink(item.mission_id, item.mission_title), ' · ',
        t(`status_${item.mission_status}`));
      const what = document.createElement('div');
      what.className = 'muted small';
      what.textContent = (kind === 'pledge'
        ? t('result_pledge', { amount: money(item.amount) })
        : t('result_bet', { side: t(`side_${item.side}`), points: item.points }))
        + ' → ' + myOutcome(item);
      li.append(head, what);
      if (item.reject_reason) {
        const reason = document.createElement('p');
        reason.className = 'reject-reason';
        reason.textContent = t('result_reason', { reason: item.reject_reason });
        li.append(reason);
      }
      return li;
    });
    const box = $('#my-results');
    $('ul', box).replaceChildren(...rows);
    $('.empty', box).hidden = rows.length > 0;
  }

  async function loadMyPage() {
    if (!me) return;
    await Promise.all([...Object.keys(myLists).map(loadMyList), loadMyResults()]);
  }

  /** Results arrive while the page is open: the first pages are read again now and then. */
  function followMyResults() {
    setInterval(async () => {
      if (document.hidden || !me) return;
      try {
        await Promise.all([loadMyResults(), ...Object.keys(myLists)
          .filter((list) => myLists[list].index === 0).map(loadMyList)]);
      } catch { /* the next round tries again */ }
    }, 30000);
  }

  Object.assign(ACTIONS, {
    async 'my-older'(button) {
      const state = myLists[button.dataset.list];
      state.index += 1;
      await loadMyList(button.dataset.list);
    },
    async 'my-newer'(button) {
      const state = myLists[button.dataset.list];
      state.index = Math.max(0, state.index - 1);
      await loadMyList(button.dataset.list);
    },
  });

  PAGES.me = async () => {
    await loadMyPage();
    followMyResults();
  };

  /* ---------- studio payouts: the payout account, earnings, withdrawals, statement ---------- */

  /** Income tax 3% and local income tax 10% of it, each truncated to 10 won: the rule of
   *  domain/payouts.py, shown before sending (the server computes it again). */
  function withholdingFor(gross) {
    const income = Math.floor(gross * 3 / 1000) * 10;
    const local = Math.floor(income / 100) * 10;
    return { income, local, tax: income + local, net: gross - income - local };
  }

  function showWithdrawPreview() {
    const form = $('form[data-form=withdraw]');
    if (!form) return;
    const raw = rawNumber(form.elements.amount);
    const w = WHOLE.test(raw) && Number(raw) > 0 ? withholdingFor(Number(raw)) : null;
    $('#withdraw-preview').textContent = w ? t('withdraw_preview', { tax: money(w.tax),
      income: money(w.income), local: money(w.local), net: money(w.net) }) : '';
  }

  function showPayoutAccount(a) {
    $('#payout-account-now').textContent = a ? t('payout_account_now',
      { bank: a.bank_name, number: a.account_number_masked, holder: a.holder })
      : T.payout_account_none;
    $('[data-action=delete-payout-account]').hidden = !a;
    if (a) $('form[data-form=payout-account]').elements.bank_code.value = a.bank_code;
  }

  /** The amounts and the account; false when payouts are off on this server. */
  async function loadPayouts() {
    let s;
    try {
      s = await api('GET', '/me/payouts', { auth: 'required' });
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 'payouts-unavailable')) throw err;
      $('#payouts-off').hidden = false;
      $('#payouts-main').hidden = true;
      return false;
    }
    for (const k of ['withdrawable', 'pending', 'requested', 'paid']) {
      $(`#payout-${k}`).textContent = money(s[k]);
    }
    showPayoutAccount(s.account);
    return true;
  }

  async function loadWithdrawals() {
    const page = await api('GET', '/me/withdrawals?limit=20', { auth: 'required' });
    const rows = page.items.map((w) => {
      const [tr, cell] = tableRow();
      tr.dataset.state = w.state;
      cell('').append(localTime(w.created_at));
      cell(money(w.gross), 'num');
      cell(money(w.withholding), 'num');
      cell(money(w.net), 'num');
      cell(T[`withdrawal_state_${w.state}`] || w.state);
      cell(w.failure_reason || w.account_number_masked);
      return tr;
    });
    $('#withdrawals tbody').replaceChildren(...rows);
    $('#withdrawals-empty').hidden = rows.length > 0;
    decorate($('#withdrawals'));
  }

  Object.assign(FORMS, {
    async 'payout-account'(form) {
      const f = form.elements;
      const account = await api('PUT', '/me/payout-account', { auth: 'required', body: {
        bank_code: f.bank_code.value, account_number: f.account_number.value.replace(/[\s-]/g, ''),
        holder: f.holder.value } });
      f.account_number.value = '';
      f.holder.value = '';
      showPayoutAccount(account);
      toast(t('payout_account_saved'));
    },
    async withdraw(form, key) {
      const amount = int(form, 'amount');
      await api('POST', '/me/withdrawals', { auth: 'required', key, body: { amount } });
      form.reset();
      showWithdrawPreview();
      await Promise.all([loadPayouts(), loadWithdrawals()]);
      toast(t('withdraw_done', { amount: money(amount) }));
    },
  });

  Object.assign(ACTIONS, {
    async 'delete-payout-account'() {
      if (!window.confirm(t('confirm_delete_payout_account'))) return;
      await api('DELETE', '/me/payout-account', { auth: 'required' });
      showPayoutAccount(null);
      toast(t('payout_account_deleted'));
    },
    async 'statement-csv'() {
      const year = $('#statement-year').value;
      const r = await apiResponse('GET', `/me/statements/${year}`, { auth: 'required' });
      await saveFile(r, `missionlink-statement-${year}.csv`);
    },
    async print() { window.print(); },
  });

  document.addEventListener('input', (event) => {
    const form = event.target.form;
    if (form && form.dataset.form === 'withdraw') showWithdrawPreview();
  });

  document.addEventListener('change', (event) => {
    if (event.target.id === 'statement-year') {
      $('#statement-print').href = `/studio/payouts/statement/${event.target.value}`;
    }
  });

  PAGES.payouts = async () => {
    if (!me || me.role !== 'streamer') return;
    if (await loadPayouts()) await loadWithdrawals();
  };

  /** The printable statement: twelve months (KST) and the year's total. */
  PAGES.statement = async () => {
    if (!me || me.role !== 'streamer') return;
    const year = Number(document.body.dataset.year);
    const s = await api('GET', `/me/statements/${year}?format=json`, { auth: 'required' });
    const monthName = new Intl.DateTimeFormat(LANG === 'en' ? 'en-GB' : 'ko-KR',
      { month: 'long', timeZone: 'UTC' });
    const columns = ['gross', 'fee', 'earnings', 'withdrawn', 'withholding', 'net'];
    const row = (label, values) => {
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = label;
      tr.append(th);
      for (const c of columns) {
        const td = document.createElement('td');
        td.className = 'num';
        td.textContent = money(values[c]);
        tr.append(td);
      }
      return tr;
    };
    $('#statement tbody').replaceChildren(...s.months.map((m, i) =>
      row(monthName.format(new Date(Date.UTC(year, i, 15))), m)));
    $('#statement tfoot').replaceChildren(row(T.statement_total, s.total));
    $('#statement-who').textContent = me.display_name || `#${me.id}`;
  };

  /* ---------- streamer payouts, the admin's side: withdrawals, batches, paid/failed ---------- */

  const PAYOUT_ROWS = 100; // the API's largest page

  /** An exported line: "paid", and "failed" with its required reason, errors beside them. */
  function markForm(w) {
    const form = document.createElement('form');
    form.method = 'post';
    form.noValidate = true;
    form.className = 'mark-withdrawal';
    form.dataset.form = 'withdrawal-failed';
    form.dataset.withdrawal = w.id;
    const label = document.createElement('label');
    const span = document.createElement('span');
    span.className = 'sr-only';
    span.textContent = t('payout_failure_reason_of', { id: w.id });
    const input = document.createElement('input');
    input.type = 'text';
    input.name = 'reason';
    input.required = true;
    input.maxLength = Number($('#payouts-admin').dataset.reasonMax);
    input.placeholder = T.payout_failure_reason;
    input.autocomplete = 'off';
    label.append(span, input);
    const actions = document.createElement('div');
    actions.className = 'actions';
    const failed = document.createElement('button');
    failed.type = 'submit';
    failed.className = 'danger small';
    failed.textContent = T.payout_mark_failed;
    failed.setAttribute('aria-label', t('payout_mark_failed_label', { id: w.id }));
    actions.append(smallButton('withdrawal-paid', T.payout_mark_paid,
      t('payout_mark_paid_label', { id: w.id }),
      { withdrawal: w.id, net: w.net, name: w.display_name || `#${w.user_id}` }), failed);
    const error = document.createElement('p');
    error.className = 'form-error';
    error.setAttribute('role', 'alert');
    error.hidden = true;
    form.append(label, actions, error);
    return form;
  }

  function adminWithdrawalRow(w) {
    const [tr, cell] = tableRow();
    tr.dataset.state = w.state;
    tr.dataset.withdrawal = w.id;
    cell(String(w.id), 'mono');
    const who = cell('');
    const a = document.createElement('a');
    a.href = `/channels/${w.user_id}`;
    a.textContent = w.display_name
      ? t('payout_streamer_ref', { name: w.display_name, id: w.user_id }) : `#${w.user_id}`;
    who.append(a);
    cell('').append(localTime(w.created_at));
    cell(money(w.gross), 'num');
    cell(money(w.withholding), 'num');
    cell(money(w.net), 'num');
    cell(T[`withdrawal_state_${w.state}`] || w.state);
    const batch = cell(w.batch_id ? `#${w.batch_id} ` : '–');
    if (w.batch_id) {
      batch.append(smallButton('batch-csv', 'CSV', t('payout_batch_csv_label', { id: w.batch_id }),
        { batch: w.batch_id }));
    }
    const last = cell(w.failure_reason || '');
    if (w.state === 'exported') last.append(markForm(w));
    return tr;
  }

  async function loadAdminWithdrawals(focusHeading = false) {
    const state = $('#payout-filter').value;
    const query = `limit=${PAYOUT_ROWS}` + (state ? `&state=${encodeURIComponent(state)}` : '');
    const page = await api('GET', `/admin/withdrawals?${query}`, { auth: 'required' });
    $('#admin-withdrawals tbody').replaceChildren(...page.items.map(adminWithdrawalRow));
    $('#admin-withdrawals').hidden = page.items.length === 0;
    $('#admin-withdrawals-empty').hidden = page.items.length > 0;
    const more = $('#admin-withdrawals-more');
    more.hidden = page.items.length < PAYOUT_ROWS;
    more.textContent = t('payout_admin_newest', { n: PAYOUT_ROWS });
    decorate($('#admin-withdrawals'));
    if (focusHeading) $('#admin-withdrawals-heading').focus();
  }

  /** The batch just made, with its transfer file one click away. */
  function showBatch(batch) {
    const box = $('#batch-result');
    const line = document.createElement('p');
    line.textContent = t('payout_batch_done', { id: batch.id, lines: batch.lines,
      total: money(batch.total_net) });
    const button = smallButton('batch-csv', T.payout_batch_csv, null, { batch: batch.id });
    box.replaceChildren(line, button);
  }

  function showBatchNote(key) {
    const line = document.createElement('p');
    line.className = 'muted';
    line.textContent = t(key);
    $('#batch-result').replaceChildren(line);
  }

  Object.assign(FORMS, {
    async 'withdrawal-failed'(form) {
      const id = form.dataset.withdrawal;
      const r = await api('POST', `/admin/withdrawals/${encodeURIComponent(id)}/failed`, {
        auth: 'required', body: { reason: form.elements.reason.value.trim() } });
      toast(r.applied ? t('payout_marked_failed', { id, gross: money(r.gross) })
        : t('payout_marked_already', { id }));
      await loadAdminWithdrawals(true);
    },
  });

  Object.assign(ACTIONS, {
    async 'payout-export'(button) {
      const waiting = () => api('GET', '/admin/withdrawals?state=requested&limit=1',
        { auth: 'required' });
      // A retry after a lost response sends its key again (and gets that batch back);
      // a fresh click with nothing requested is told so without asking for a batch.
      if (!button.dataset.idempotencyKey && !(await waiting()).items.length) {
        await loadAdminWithdrawals();
        showBatchNote('payout_batch_nothing');
        return;
      }
      // Kept until the server answers, so a retry after a lost response gets the same
      // batch back instead of a second one.
      button.dataset.idempotencyKey ||= newKey();
      let batch;
      try {
        batch = await api('POST', '/admin/payout-batches', { auth: 'required',
          key: button.dataset.idempotencyKey });
      } catch (err) {
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
          delete button.dataset.idempotencyKey;
        }
        if (!(err instanceof ApiError && err.code === 'withdrawal-state')) throw err;
        // Another export took them meanwhile, or took only some: say which.
        const left = (await waiting()).items.length;
        await loadAdminWithdrawals();
        showBatchNote(left ? 'payout_batch_changed' : 'payout_batch_nothing');
        return;
      }
      delete button.dataset.idempotencyKey;
      await loadAdminWithdrawals();
      showBatch(batch);
    },
    async 'batch-csv'(button) {
      const id = button.dataset.batch;
      const r = await apiResponse('GET',
        `/admin/payout-batches/${encodeURIComponent(id)}/transfers.csv`, { auth: 'required' });
      await saveFile(r, `payout-batch-${id}.csv`);
    },
    async 'withdrawal-paid'(button) {
      const { withdrawal: id, name } = button.dataset;
      if (!window.confirm(t('confirm_mark_paid', { id, name, net: money(button.dataset.net) }))) return;
      const r = await api('POST', `/admin/withdrawals/${encodeURIComponent(id)}/paid`,
        { auth: 'required' });
      toast(t(r.applied ? 'payout_marked_paid' : 'payout_marked_already', { id }));
      await loadAdminWithdrawals(true);
    },
  });

  document.addEventListener('change', (event) => {
    if (event.target.id !== 'payout-filter') return;
    const section = event.target.closest('section');
    clearError(section);
    loadAdminWithdrawals().catch((err) => showError(section,
      err instanceof ApiError ? err : new ApiError({ code: 'error' })));
  });

  PAGES['admin-payouts'] = async () => {
    if (!me || me.role !== 'admin') return;
    await loadAdminWithdrawals();
  };

  async function init() {
    if (syncLanguage()) return;
    const saved = store.json(sessionStorage, TOKEN_KEY);
    if (saved && saved.exp > Date.now()) {
      try { setAccess(saved.token, saved.exp, false); } catch { dropAccess(false); }
    }
    if (access || store.get(localStorage, SESSION_HINT)) {
      await getToken();
      await loadMe();
    }
    decorate(document);
    setInterval(tick, 1000);
    document.body.dataset.ready = '1';
    startLive();
    try {
      await PAGES[PAGE]?.();
    } catch (err) {
      toast(errorText(err instanceof ApiError ? err : new ApiError({ code: 'error' })));
    }
  }

  init();
})();
