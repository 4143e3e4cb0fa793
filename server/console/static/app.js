// fieldsync supervisors' console. Plain JavaScript, no build step, no
// dependency. It speaks only the public API (PROTOCOL.md §4–§6 and the
// extensions of docs/protocol-notes.md) with the bearer token the user
// typed, kept in sessionStorage and sent only in the Authorization header.
// It never writes to the browser console: no token and no value is logged.
'use strict';

(() => {
  const STRINGS = window.FIELDSYNC_I18N || { en: {} };
  const TOKEN_KEY = 'fieldsync.console.token';
  const LANG_KEY = 'fieldsync.console.lang';
  const LOCALES = { ar: 'ar-MA', fr: 'fr-MA', en: 'en-GB' };
  const PAGE = 100;
  const REVIEW_STATES = ['received', 'has_issues', 'approved', 'rejected'];
  const MAX_NOTE = 4000; // bytes of UTF-8, as the server counts
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

  // ---------------------------------------------------------------------
  // State.

  const S = {
    token: null,
    role: null, // supervisor | hq | admin
    lang: 'fr',
    seq: 0, // route generation: a late answer of an old route is dropped
    view: null, // the current view: {name, draw()}
    cur: null, // the current view's data
    names: new Map(), // actor id -> {name, role}
    scopes: new Set(), // zones seen in answers (HQ and admins, who hold them all)
    forms: new Set(),
    queue: { scope: '', form: '', items: [], next: '', loaded: false },
    list: { review: '', scope: '', form: '', items: [], next: '', loaded: false },
    exp: { form: '', scope: '', review: '', deleted: false, reviewColumn: false, busy: false, last: null },
    flash: null, // a message for the next view: {text, link, href}
    me: null, // GET /v1/whoami: {id, role, name, scopes, created_at, revoked}
  };

  const $ = (sel) => document.querySelector(sel);

  // ---------------------------------------------------------------------
  // JSON that keeps numbers exactly: a number whose text would change
  // through a JavaScript double (a big integer, 1.0, 1e3) is kept as its
  // source text and written back as it came, so that a supervisor who picks
  // a value sends exactly that value.

  const HAS_RAW = typeof JSON.rawJSON === 'function';
  const HAS_SOURCE = (() => {
    try {
      let ok = false;
      JSON.parse('1.0', (k, v, c) => { ok = !!(c && c.source === '1.0'); return v; });
      return ok;
    } catch (e) {
      return false;
    }
  })();

  class RawNumber {
    constructor(src) { this.src = src; }
    toJSON() { return HAS_RAW ? JSON.rawJSON(this.src) : Number(this.src); }
    toString() { return this.src; }
  }

  function parseJSON(text) {
    if (!HAS_RAW || !HAS_SOURCE) return JSON.parse(text);
    return JSON.parse(text, (k, v, c) =>
      (typeof v === 'number' && c && typeof c.source === 'string' && c.source !== String(v)) ? new RawNumber(c.source) : v);
  }

  // canon is a value's comparable form: parsed JSON, keys sorted, numbers
  // by value (as the server compares siblings).
  function canon(v) {
    if (v instanceof RawNumber) {
      if (/^-?\d+$/.test(v.src)) {
        try { return 'n:' + BigInt(v.src).toString(); } catch (e) { /* fall through */ }
      }
      return 'n:' + String(Number(v.src));
    }
    if (typeof v === 'number') return 'n:' + String(v);
    if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']';
    if (v && typeof v === 'object') {
      return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}';
    }
    return JSON.stringify(v === undefined ? null : v);
  }

  function noteTooLong(s) {
    return new TextEncoder().encode(s || '').length > MAX_NOTE;
  }

  function valueText(v) {
    if (typeof v === 'string') return v;
    if (v instanceof RawNumber) return v.src;
    return JSON.stringify(v);
  }

  // ---------------------------------------------------------------------
  // Strings, dates, DOM.

  function t(key, params) {
    let s = (STRINGS[S.lang] && STRINGS[S.lang][key]) ?? (STRINGS.en && STRINGS.en[key]) ?? key;
    if (params) s = s.replace(/\{(\w+)\}/g, (m, p) => (params[p] !== undefined ? String(params[p]) : m));
    return s;
  }

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === false || v === null || v === undefined) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (v === true) el.setAttribute(k, '');
        else el.setAttribute(k, String(v));
      }
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  function toDate(v) {
    const d = new Date(v);
    return isNaN(d.getTime()) ? null : d;
  }

  function fmtTime(v) {
    const d = toDate(v);
    if (!d) return '—';
    return new Intl.DateTimeFormat(LOCALES[S.lang], { dateStyle: 'medium', timeStyle: 'short' }).format(d);
  }

  function timeEl(v, extraTitle) {
    const d = toDate(v);
    if (!d) return h('span', { class: 'muted' }, '—');
    const iso = d.toISOString();
    return h('time', { datetime: iso, title: extraTitle ? iso + ' — ' + extraTitle : iso }, fmtTime(d));
  }

  function num(n) {
    return new Intl.NumberFormat(LOCALES[S.lang]).format(n);
  }

  // valueEl shows a field value; dir="auto" so that Arabic reads right to
  // left inside a French or English page, and Latin left to right in Arabic.
  function valueEl(v, cls) {
    if (v === null || v === undefined) return h('span', { class: 'val empty ' + (cls || '') }, t('value.empty'));
    if (v === '') return h('span', { class: 'val empty ' + (cls || '') }, t('value.blank'));
    return h('span', { class: 'val ' + (cls || ''), dir: 'auto' }, valueText(v));
  }

  function shortId(id) {
    return id && id.length > 8 ? '…' + id.slice(-8) : id || '';
  }

  function idEl(id) {
    return h('bdi', { class: 'id', title: id, dir: 'ltr' }, shortId(id));
  }

  function roleName(role) {
    return role ? t('role.' + role) : '';
  }

  // actorEl names a writer: the name (a tablet's label, a user's name)
  // and role that came with the answer (name, role), else one learnt from
  // an earlier answer, else the bare id.
  function actorEl(id, name, role) {
    const mine = S.me && S.me.id === id;
    const known = S.names.get(id);
    const n = name || (mine ? S.me.name : '') || (known && known.name) || '';
    const r = role || (mine ? S.me.role : '') || (known && known.role) || '';
    if (n) {
      const extra = mine ? t('actor.you') : roleName(r);
      return h('span', { class: 'actor', title: id }, h('bdi', { dir: 'auto' }, n), extra ? h('span', { class: 'muted' }, ' · ' + extra) : null);
    }
    if (mine) return h('span', { class: 'actor', title: id }, h('bdi', null, t('actor.you')));
    return h('span', { class: 'actor', title: id }, t('actor.unknown'), ' ', idEl(id));
  }

  function noteName(id, name, role) {
    if (id && name) S.names.set(id, { name, role: role || '' });
  }

  // myScopes is the list of zones of a supervisor, or null for HQ and
  // admins, who see every zone.
  function myScopes() {
    if (!S.me || S.role === 'hq' || S.role === 'admin') return null;
    return Array.isArray(S.me.scopes) ? S.me.scopes.slice().sort() : [];
  }

  // breakable splits an identifier after _ . and -, so that a narrow
  // column wraps it there and not in the middle of a word.
  function breakable(s) {
    const out = [];
    for (const part of String(s).split(/(?<=[_.-])/)) {
      if (out.length) out.push(h('wbr'));
      out.push(part);
    }
    return out;
  }

  // slug shows a form or zone name: always [a-z0-9_-], so left to right.
  function slug(s) {
    return h('bdi', { class: 'slug', dir: 'ltr' }, breakable(s));
  }

  function field(name) {
    return h('bdi', { class: 'field-name', dir: 'ltr' }, breakable(name));
  }

  function reviewBadge(review) {
    const st = (review && review.state) || 'received';
    return h('span', { class: 'badge review-' + st }, t('review.' + st));
  }

  // ---------------------------------------------------------------------
  // Messages.

  function say(text) {
    const el = $('#status');
    el.replaceChildren(text ? h('p', null, text) : '');
  }

  function clearAlert() {
    $('#alert').replaceChildren();
  }

  function errorText(err) {
    if (typeof err === 'string') return err;
    if (!(err instanceof ApiError)) return t('error.unexpected');
    if (err.status === 0) return t('error.network');
    const known = !err.noHint && STRINGS.en['code.' + err.code] ? t('code.' + err.code) : '';
    return t('error.api', { code: err.code, message: err.message, status: err.status }) + (known ? ' ' + known : '');
  }

  function alertError(err, context) {
    const box = h('div', { class: 'notice error' },
      h('p', null, context ? h('strong', null, context + ' ') : null, errorText(err)),
      h('button', { type: 'button', class: 'secondary small', onclick: clearAlert }, t('dismiss')));
    $('#alert').replaceChildren(box);
  }

  // ---------------------------------------------------------------------
  // The API.

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body, opts) {
    const o = opts || {};
    const headers = { Authorization: 'Bearer ' + S.token, Accept: o.accept || 'application/json' };
    const init = { method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'network', t('error.network'));
    }
    if (!res.ok) {
      let code = 'http_' + res.status;
      let message = res.statusText || '';
      try {
        const j = JSON.parse(await res.text());
        if (j && j.error) {
          code = String(j.error.code || code);
          message = String(j.error.message || message);
        }
      } catch (e) { /* not JSON: keep the status */ }
      const err = new ApiError(res.status, code, message);
      if (res.status === 401 && !o.login) unauthorized(err);
      throw err;
    }
    if (o.raw) return res;
    const text = await res.text();
    return text ? parseJSON(text) : null;
  }

  function q(params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== '' && v !== undefined && v !== null && v !== false) u.set(k, String(v));
    }
    const s = u.toString();
    return s ? '?' + s : '';
  }

  // ---------------------------------------------------------------------
  // Logging in: one GET /v1/whoami says who the token is (id, role, name,
  // zones). A 401 is a wrong or revoked token; a tablet's token is valid
  // but not for the console, which says so without asking anything else.

  const CONSOLE_ROLES = ['supervisor', 'hq', 'admin'];

  async function loadMe() {
    const me = await api('GET', '/v1/whoami', undefined, { login: true });
    if (!me || !CONSOLE_ROLES.includes(me.role)) {
      throw new Error(me && me.role === 'device' ? t('login.device') : t('login.notConsole'));
    }
    S.me = { id: String(me.id || ''), role: me.role, name: String(me.name || ''), scopes: Array.isArray(me.scopes) ? me.scopes : [], created_at: me.created_at || '' };
    for (const s of S.me.scopes) S.scopes.add(s);
    return me.role;
  }

  // loginError shows why a token was not taken: a tablet token is refused
  // by the console itself (a plain message), anything else by the server.
  function loginError(e) {
    if (e instanceof ApiError) alertError(e, t('login.refused'));
    else alertError(e && e.message ? e.message : t('error.unexpected'));
  }

  function unauthorized(err) {
    logout(false);
    alertError(err, t('login.refused'));
  }

  function resetData() {
    S.role = null;
    S.cur = null;
    S.view = null;
    S.names = new Map();
    S.scopes = new Set();
    S.forms = new Set();
    S.queue = { scope: '', form: '', items: [], next: '', loaded: false };
    S.list = { review: '', scope: '', form: '', items: [], next: '', loaded: false };
    S.exp = { form: '', scope: '', review: '', deleted: false, reviewColumn: false, busy: false, last: null };
    S.flash = null;
    S.me = null;
  }

  function logout(byUser) {
    S.token = null;
    S.seq++;
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage off */ }
    resetData();
    if (location.hash) history.replaceState(null, '', location.pathname);
    say(byUser ? t('logout.done') : '');
    clearAlert();
    showLogin();
  }

  function showChrome() {
    const logged = !!S.role;
    $('#nav').hidden = !logged;
    $('#logout').hidden = !logged;
    const who = $('#who');
    who.hidden = !logged;
    if (logged) {
      const zones = myScopes();
      who.replaceChildren(
        h('span', { class: 'who-as' }, t('who.as') + ' '),
        S.me && S.me.name ? h('bdi', { dir: 'auto', class: 'who-name', id: 'who-name' }, S.me.name) : null,
        h('span', { class: 'who-role', id: 'who-role' }, S.me && S.me.name ? ' · ' + roleName(S.role) : roleName(S.role)),
        h('span', { class: 'who-scopes', id: 'who-scopes' }, ' · ', zones === null ? t('who.allScopes')
          : zones.length ? [t(zones.length > 1 ? 'who.scopes' : 'who.scope') + ' ', zonesEl(zones)]
            : t('who.noScopes')));
      who.title = S.me && S.me.created_at ? t('who.since', { date: fmtTime(S.me.created_at) }) : '';
      for (const li of document.querySelectorAll('#nav li[data-roles]')) {
        li.hidden = !li.dataset.roles.split(' ').includes(S.role);
      }
    }
  }

  function showLogin() {
    showChrome();
    const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'token-help' });
    const form = h('form', { id: 'login', class: 'card login', novalidate: true },
      h('h1', { tabindex: '-1' }, t('login.title')),
      h('p', { class: 'muted' }, t('login.intro')),
      h('label', { for: 'token' }, t('login.token')),
      input,
      h('p', { id: 'token-help', class: 'help' }, t('login.help')),
      h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'login-submit' }, t('login.submit'))));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const token = input.value.trim();
      clearAlert();
      if (!token) {
        alertError(t('login.empty'));
        input.focus();
        return;
      }
      const btn = form.querySelector('button');
      btn.disabled = true;
      say(t('login.checking'));
      S.token = token;
      try {
        S.role = await loadMe();
        try { sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* storage off: this tab only */ }
        input.value = '';
        say(S.me.name ? t('login.okName', { name: S.me.name, role: roleName(S.role) }) : t('login.ok', { role: roleName(S.role) }));
        showChrome();
        if (!location.hash || location.hash === '#') history.replaceState(null, '', '#/conflicts');
        route();
      } catch (e) {
        S.token = null;
        S.role = null;
        S.me = null;
        say('');
        loginError(e);
        btn.disabled = false;
        input.focus();
        input.select();
      }
    });
    $('#main').replaceChildren(form);
    input.focus();
  }

  // ---------------------------------------------------------------------
  // Routing: #/conflicts, #/conflict/ID, #/review, #/record/ID, #/export,
  // #/fleet. Record ids are not secret; the token never goes in the URL.

  function parseRoute() {
    const m = /^#\/([a-z]+)(?:\/([0-9a-f-]{36}))?$/.exec(location.hash);
    if (!m) return { name: 'conflicts' };
    return { name: m[1], id: m[2] };
  }

  async function route() {
    if (!S.token || !S.role) {
      showLogin();
      return;
    }
    const r = parseRoute();
    const view = VIEWS[r.name] && (!r.name.match(/^(conflict|record)$/) || (r.id && UUID.test(r.id))) ? VIEWS[r.name] : VIEWS.conflicts;
    const seq = ++S.seq;
    const navName = { conflict: 'conflicts', record: 'review' }[r.name] || r.name;
    for (const a of document.querySelectorAll('#nav a[data-route]')) {
      if (a.dataset.route === navName) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    clearAlert();
    if (S.view) say('');
    const main = $('#main');
    main.setAttribute('aria-busy', 'true');
    main.replaceChildren(h('p', { class: 'loading' }, t('loading')));
    try {
      const data = await view.load(r);
      if (seq !== S.seq) return;
      S.view = view;
      S.cur = data;
      draw(true);
    } catch (e) {
      if (seq !== S.seq || !S.token) return;
      S.view = null;
      main.replaceChildren(h('h1', { tabindex: '-1' }, t('error.title')), h('p', null, errorText(e)));
      alertError(e);
    } finally {
      if (seq === S.seq) main.removeAttribute('aria-busy');
    }
  }

  function draw(focus) {
    if (!S.view) return;
    const main = $('#main');
    const active = document.activeElement && document.activeElement.id;
    main.replaceChildren(S.view.draw(S.cur));
    if (focus) {
      const h1 = main.querySelector('h1');
      if (h1) h1.focus({ preventScroll: false });
    } else if (active) {
      const el = document.getElementById(active);
      if (el) el.focus();
    }
  }

  function flashEl() {
    if (!S.flash) return null;
    const f = S.flash;
    S.flash = null;
    return h('div', { class: 'notice ok', id: 'flash' }, h('p', null, f.text, f.href ? [' ', h('a', { href: f.href }, f.link)] : null));
  }

  function absorbEntry(e) {
    S.scopes.add(e.scope);
    S.forms.add(e.form);
    for (const sibs of Object.values(e.fields || {})) {
      for (const s of sibs) noteName(s.by, s.by_name, s.by_role);
    }
  }

  function datalists() {
    return [
      h('datalist', { id: 'scopes-list' }, [...S.scopes].sort().map((s) => h('option', { value: s }))),
      h('datalist', { id: 'forms-list' }, [...S.forms].sort().map((s) => h('option', { value: s }))),
    ];
  }

  function filterInput(id, labelKey, value, list) {
    return h('div', { class: 'filter' },
      h('label', { for: id }, t(labelKey)),
      h('input', { id, name: id, type: 'text', value, list, autocomplete: 'off', spellcheck: 'false', pattern: '[a-z0-9_\\-]{1,64}', dir: 'ltr' }));
  }

  // scopeFilter is the zone filter: a menu of the user's own zones (from
  // whoami) for a supervisor; HQ and admins hold every zone, so they type
  // one, with the zones seen so far as suggestions.
  function scopeFilter(id, value) {
    const zones = myScopes();
    if (zones === null) return filterInput(id, 'filter.scope', value, 'scopes-list');
    const opts = value && !zones.includes(value) ? zones.concat([value]) : zones;
    return h('div', { class: 'filter' },
      h('label', { for: id }, t('filter.scope')),
      h('select', { id, name: id },
        h('option', { value: '', selected: value === '' }, t('filter.allScopes')),
        opts.map((s) => h('option', { value: s, selected: value === s, dir: 'ltr' }, s))));
  }

  // ---------------------------------------------------------------------
  // The conflict queue.

  async function loadQueue(more) {
    const qs = S.queue;
    const page = await api('GET', '/v1/conflicts' + q({ scope: qs.scope, form: qs.form, limit: PAGE, after: more ? qs.next : '' }));
    const items = page.conflicts || [];
    items.forEach(absorbEntry);
    qs.items = more ? qs.items.concat(items) : items;
    qs.next = page.next || '';
    qs.loaded = true;
    updateNavCount();
  }

  function updateNavCount() {
    const el = $('#nav-count');
    if (!S.queue.loaded) {
      el.hidden = true;
      return;
    }
    el.hidden = false;
    el.textContent = num(S.queue.items.length) + (S.queue.next ? '+' : '');
  }

  function countsBy(items, key) {
    const m = new Map();
    for (const e of items) m.set(e[key], (m.get(e[key]) || 0) + 1);
    return [...m.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  }

  const VIEWS = {};

  VIEWS.conflicts = {
    async load() {
      await loadQueue(false);
      return {};
    },
    draw() {
      const qs = S.queue;
      const form = h('form', { class: 'filters', id: 'queue-filters' },
        scopeFilter('q-scope', qs.scope),
        filterInput('q-form', 'filter.form', qs.form, 'forms-list'),
        h('div', { class: 'filter-actions' },
          h('button', { type: 'submit' }, t('filter.apply')),
          h('button', { type: 'button', class: 'secondary', onclick: () => { qs.scope = ''; qs.form = ''; route(); } }, t('filter.clear'))));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        qs.scope = form.querySelector('#q-scope').value.trim();
        qs.form = form.querySelector('#q-form').value.trim();
        route();
      });

      const n = qs.items.length;
      const summary = h('p', { class: 'summary', id: 'queue-count' },
        qs.next ? t('queue.countMore', { n: num(n) }) : (n === 0 ? t('queue.none') : t('queue.count', { n: num(n) })));
      const counts = n === 0 ? null : h('div', { class: 'counts' },
        h('p', null, h('span', { class: 'muted' }, t('queue.byScope') + ' '), countsBy(qs.items, 'scope').map(([k, c]) => h('span', { class: 'chip' }, slug(k), ' ', h('b', null, num(c))))),
        h('p', null, h('span', { class: 'muted' }, t('queue.byForm') + ' '), countsBy(qs.items, 'form').map(([k, c]) => h('span', { class: 'chip' }, slug(k), ' ', h('b', null, num(c))))));

      let table = null;
      if (n > 0) {
        table = h('div', { class: 'table-wrap' }, h('table', { class: 'list queue', id: 'queue-table' },
          h('caption', { class: 'sr-only' }, t('queue.caption')),
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, t('col.detected')),
            h('th', { scope: 'col' }, t('col.record')),
            h('th', { scope: 'col' }, t('col.form')),
            h('th', { scope: 'col' }, t('col.scope')),
            h('th', { scope: 'col' }, t('col.kind')),
            h('th', { scope: 'col' }, t('col.fields')),
            h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, t('col.action'))))),
          h('tbody', null, qs.items.map((e) => {
            const names = Object.keys(e.fields || {}).filter((f) => f !== '_deleted');
            return h('tr', { 'data-record': e.record },
              h('td', { 'data-label': t('col.detected') }, timeEl(e.detected_at)),
              h('td', { 'data-label': t('col.record') }, idEl(e.record)),
              h('td', { 'data-label': t('col.form') }, slug(e.form)),
              h('td', { 'data-label': t('col.scope') }, slug(e.scope)),
              h('td', { 'data-label': t('col.kind') }, h('span', { class: 'badge kind-' + e.kind }, t('kind.' + e.kind))),
              h('td', { 'data-label': t('col.fields') }, names.map((f, i) => [i ? ', ' : '', field(f)])),
              h('td', { class: 'action' }, h('a', { class: 'button small', href: '#/conflict/' + e.record, 'aria-label': t('queue.openLabel', { id: shortId(e.record) }) }, t('open'))));
          }))));
      }
      const more = qs.next ? h('button', { type: 'button', class: 'secondary', id: 'queue-more', onclick: async (ev) => {
        ev.target.disabled = true;
        try { await loadQueue(true); draw(false); } catch (e) { alertError(e); ev.target.disabled = false; }
      } }, t('more')) : null;

      return h('section', { class: 'view', 'aria-labelledby': 'queue-title' },
        flashEl(),
        h('div', { class: 'view-head' },
          h('h1', { id: 'queue-title', tabindex: '-1' }, t('queue.title')),
          h('button', { type: 'button', class: 'secondary', id: 'queue-reload', onclick: () => route() }, t('reload'))),
        h('p', { class: 'muted' }, t('queue.intro')),
        form, datalists(), summary, counts, table, more);
    },
  };

  // ---------------------------------------------------------------------
  // One conflict: each conflicted field's siblings side by side.

  function siblingsOf(rec, name) {
    const out = [];
    for (const w of rec.writes || []) {
      if (w.fields && Object.prototype.hasOwnProperty.call(w.fields, name)) out.push({ v: w.fields[name], by: w.by, n: w.n, at: w.at });
    }
    // newest first, as last-writer-wins orders them
    out.sort((a, b) => (b.at - a.at) || (a.by < b.by ? 1 : a.by > b.by ? -1 : b.n - a.n));
    return out;
  }

  function distinct(sibs) {
    const seen = new Set(sibs.map((s) => canon(s.v)));
    return seen.size > 1;
  }

  // noteHistoryNames learns the writers' names (tablet labels, users'
  // names) that a record's history carries.
  function noteHistoryNames(hist) {
    for (const e of hist || []) noteName(e.actor, e.actor_name, e.actor_role);
  }

  async function loadConflict(id) {
    // The history names every writer of the record, a tablet that wrote
    // since the queue was loaded included.
    const [v, hist] = await Promise.all([
      api('GET', '/v1/records/' + id),
      api('GET', '/v1/records/' + id + '/history'),
    ]);
    S.scopes.add(v.record.scope);
    S.forms.add(v.record.form);
    noteHistoryNames(hist && hist.history);
    return v;
  }

  function typeOf(v) {
    if (typeof v === 'string') return 'text';
    if (typeof v === 'number' || v instanceof RawNumber) return 'number';
    return 'json';
  }

  // parseCustom turns what the supervisor typed into a JSON value, or
  // throws a message.
  function parseCustom(text, type) {
    if (type === 'text') return text;
    if (type === 'number') {
      const s = text.trim().replace(',', '.');
      if (!/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(s)) throw new Error(t('resolve.badNumber'));
      return String(Number(s)) === s ? Number(s) : new RawNumber(s);
    }
    try {
      return parseJSON(text);
    } catch (e) {
      throw new Error(t('resolve.badJSON'));
    }
  }

  VIEWS.conflict = {
    async load(r) {
      const v = await loadConflict(r.id);
      return { id: r.id, view: v, picks: {}, custom: {}, types: {}, del: '', note: '', stale: null, problem: '' };
    },
    draw(c) {
      const v = c.view;
      const rec = v.record;
      const canWrite = S.role === 'supervisor' || S.role === 'admin';
      const head = h('div', { class: 'view-head' },
        h('h1', { tabindex: '-1', id: 'conflict-title' }, t('conflict.title'), ' ', idEl(c.id)),
        h('a', { class: 'button secondary', href: '#/conflicts' }, t('back.queue')));
      const meta = h('dl', { class: 'meta' },
        h('div', null, h('dt', null, t('col.form')), h('dd', null, slug(rec.form))),
        h('div', null, h('dt', null, t('col.scope')), h('dd', null, slug(rec.scope))),
        v.conflict_since ? h('div', null, h('dt', null, t('col.detected')), h('dd', null, timeEl(v.conflict_since))) : null,
        h('div', null, h('dt', null, t('col.record')), h('dd', null, h('a', { href: '#/record/' + c.id }, t('conflict.openRecord')))));

      const stale = c.stale ? h('div', { class: 'notice warn', id: 'stale', tabindex: '-1' },
        h('p', null, h('strong', null, t('stale.title'))),
        h('p', null, t('stale.body')),
        c.changed && c.changed.length ? h('p', null, t('stale.changed'), ' ', c.changed.map((f, i) => [i ? ', ' : '', field(f)])) : null,
        h('p', { class: 'muted' }, t('error.api', { code: c.stale.code, message: c.stale.message, status: c.stale.status }))) : null;

      if (!v.conflict_kind) {
        return h('section', { class: 'view' }, head, meta, stale,
          h('div', { class: 'notice ok' }, h('p', null, t('conflict.noneLeft')), h('p', null, h('a', { href: '#/record/' + c.id }, t('conflict.openRecord')))));
      }

      const conflicted = Object.keys(v.conflicts || {}).sort();
      const pickers = conflicted.filter((f) => distinct(siblingsOf(rec, f)));
      const edited = conflicted.filter((f) => !pickers.includes(f));
      const parts = [];

      if (v.conflict_kind === 'delete_edit') {
        const dels = siblingsOf(rec, '_deleted').filter((s) => s.v === true);
        const editors = new Map();
        for (const f of edited.concat(pickers)) {
          for (const s of siblingsOf(rec, f)) if (!editors.has(s.by)) editors.set(s.by, s);
        }
        const who = (list) => list.map((s, i) => [i ? ', ' : '', actorEl(s.by), ' (', timeEl(s.at, t('time.tablet')), ')']);
        parts.push(h('fieldset', { class: 'card field delete-edit' + missCls(c, '_deleted'), id: 'fs-_deleted', 'data-field': '_deleted' },
          h('legend', null, t('deleteEdit.title')),
          h('p', { class: 'explain' }, t('deleteEdit.deletedBy'), ' ', who(dels), '. ', t('deleteEdit.editedBy'), ' ', who([...editors.values()]), '.'),
          h('p', { class: 'explain' }, t('deleteEdit.explain')),
          edited.length ? h('div', { class: 'edited' },
            h('p', { class: 'muted' }, t('deleteEdit.edits')),
            h('ul', null, edited.map((f) => h('li', null, field(f), ': ', valueEl(v.values[f]), ' — ', siblingsOf(rec, f).map((s) => [actorEl(s.by), ' ', timeEl(s.at, t('time.tablet'))]))))) : null,
          h('div', { class: 'choices' },
            choice('del', 'keep', c.del === 'keep', t('deleteEdit.keep'), t('deleteEdit.keepHelp'), (val) => { c.del = val; }),
            choice('del', 'restore', c.del === 'restore', t('deleteEdit.restore'), t('deleteEdit.restoreHelp'), (val) => { c.del = val; }))));
      } else if (v.deleted) {
        // A deleted record whose conflicting edits the delete had seen:
        // resolving would restore it (editing undeletes), unless the
        // supervisor keeps it deleted.
        parts.push(h('fieldset', { class: 'card field delete-edit' + missCls(c, '_deleted'), id: 'fs-_deleted', 'data-field': '_deleted' },
          h('legend', null, t('deleted.title')),
          h('p', { class: 'explain' }, t('deleted.explain')),
          h('div', { class: 'choices' },
            choice('del', 'keep', c.del === 'keep', t('deleteEdit.keep'), t('deleteEdit.keepHelp'), (val) => { c.del = val; }),
            choice('del', 'restore', c.del === 'restore', t('deleteEdit.restore'), t('deleteEdit.restoreHelp'), (val) => { c.del = val; }))));
      }

      for (const f of pickers) {
        const sibs = siblingsOf(rec, f);
        if (!c.types[f]) c.types[f] = typeOf(v.values[f]);
        const other = c.picks[f] === 'other';
        const customId = 'custom-' + f;
        const typeId = 'type-' + f;
        parts.push(h('fieldset', { class: 'card field' + missCls(c, f), id: 'fs-' + f, 'data-field': f },
          h('legend', null, field(f)),
          h('p', { class: 'muted small' }, t('conflict.shown'), ' ', valueEl(v.values[f])),
          h('div', { class: 'siblings' },
            sibs.map((s, i) => h('label', { class: 'sib' + (c.picks[f] === String(i) ? ' picked' : '') },
              h('input', { type: 'radio', name: 'pick-' + f, value: String(i), checked: c.picks[f] === String(i), onchange: () => { c.picks[f] = String(i); markPicked(f); } }),
              h('span', { class: 'sib-body' },
                valueEl(s.v, 'sib-value'),
                h('span', { class: 'sib-meta' }, actorEl(s.by)),
                h('span', { class: 'sib-meta' }, timeEl(s.at, t('time.tablet')))))),
            h('div', { class: 'sib other' + (other ? ' picked' : '') },
              h('label', { class: 'other-pick' },
                h('input', { type: 'radio', name: 'pick-' + f, value: 'other', checked: other, onchange: () => { c.picks[f] = 'other'; markPicked(f); } }),
                h('span', null, t('conflict.other'))),
              h('label', { for: customId, class: 'sr-only' }, t('conflict.otherLabel', { field: f })),
              h('input', { id: customId, type: 'text', dir: 'auto', value: c.custom[f] || '', oninput: (ev) => {
                c.custom[f] = ev.target.value;
                if (c.picks[f] !== 'other') {
                  c.picks[f] = 'other';
                  const r = ev.target.closest('.sib').querySelector('input[type=radio]');
                  r.checked = true;
                  markPicked(f);
                }
              } }),
              h('label', { for: typeId, class: 'type-label' }, t('conflict.as')),
              h('select', { id: typeId, onchange: (ev) => { c.types[f] = ev.target.value; } },
                ['text', 'number', 'json'].map((ty) => h('option', { value: ty, selected: c.types[f] === ty }, t('type.' + ty))))))));
      }

      const noteId = 'resolve-note';
      const form = h('form', { id: 'resolve-form', class: 'resolve', novalidate: true },
        stale, parts,
        h('div', { class: 'card' },
          h('label', { for: noteId }, t('resolve.note')),
          h('textarea', { id: noteId, rows: '3', dir: 'auto', oninput: (ev) => { c.note = ev.target.value; } }, c.note),
          c.problem ? h('p', { class: 'notice error', id: 'resolve-problem', tabindex: '-1' }, c.problem) : null,
          canWrite
            ? h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'resolve-submit' }, t('resolve.submit')))
            : h('p', { class: 'muted' }, t('readonly.hq'))));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        if (canWrite) resolve(c, pickers);
      });
      return h('section', { class: 'view' }, head, meta, h('p', { class: 'muted' }, t(pickers.length ? 'conflict.intro' : 'conflict.introDelete')), form);
    },
  };

  function missCls(c, f) {
    return c.missing && c.missing.includes(f) ? ' missing' : '';
  }

  function choice(name, value, checked, label, help, set) {
    const id = name + '-' + value;
    return h('label', { class: 'sib choice' + (checked ? ' picked' : ''), for: id },
      h('input', { type: 'radio', id, name, value, checked, onchange: (ev) => {
        set(value);
        for (const l of ev.target.closest('.choices').querySelectorAll('.sib')) l.classList.toggle('picked', l.contains(ev.target));
        ev.target.closest('fieldset').classList.remove('missing');
      } }),
      h('span', { class: 'sib-body' }, h('strong', null, label), h('span', { class: 'muted small' }, help)));
  }

  // changedFields lists the fields whose values or siblings differ between
  // two views of a record.
  function changedFields(a, b) {
    const sibs = (v, f) => canon(siblingsOf(v.record, f).map((s) => [s.by, s.n, s.v]));
    const names = new Set();
    for (const v of [a, b]) for (const w of v.record.writes || []) for (const f of Object.keys(w.fields || {})) names.add(f);
    return [...names].filter((f) => sibs(a, f) !== sibs(b, f)).sort();
  }

  function markPicked(f) {
    const fs = document.getElementById('fs-' + f);
    if (!fs) return;
    for (const l of fs.querySelectorAll('.sib')) l.classList.toggle('picked', !!l.querySelector('input[type=radio]:checked'));
    fs.classList.remove('missing');
  }

  async function resolve(c, pickers) {
    const v = c.view;
    const values = {};
    const missing = [];
    c.problem = '';
    c.missing = [];
    try {
      for (const f of pickers) {
        const p = c.picks[f];
        if (p === undefined) {
          missing.push(f);
        } else if (p === 'other') {
          try {
            values[f] = parseCustom(c.custom[f] || '', c.types[f] || 'text');
          } catch (e) {
            throw new Error(f + ': ' + e.message);
          }
        } else {
          values[f] = siblingsOf(v.record, f)[Number(p)].v;
        }
      }
      let delMissing = false;
      if (v.conflict_kind === 'delete_edit' || v.deleted) {
        if (!c.del) delMissing = true;
        else values._deleted = c.del === 'keep';
      }
      c.missing = delMissing ? missing.concat(['_deleted']) : missing;
      if (noteTooLong(c.note)) throw new Error(t('note.tooLong', { n: MAX_NOTE }));
      if (c.missing.length) {
        const msg = [];
        if (missing.length) msg.push(t('resolve.missing', { fields: missing.join(', ') }));
        if (delMissing) msg.push(t('resolve.missingDelete'));
        throw new Error(msg.join(' '));
      }
    } catch (e) {
      c.problem = e.message;
      draw(false);
      const p = document.getElementById('resolve-problem');
      if (p) p.focus();
      return;
    }
    const btn = document.getElementById('resolve-submit');
    if (btn) btn.disabled = true;
    say(t('resolve.sending'));
    try {
      await api('POST', '/v1/conflicts/' + c.id + '/resolve', { clock: v.record.clock, values, note: c.note });
      S.queue.items = S.queue.items.filter((e) => e.record !== c.id);
      S.flash = { text: t('resolve.done', { id: shortId(c.id) }), link: t('conflict.openRecord'), href: '#/record/' + c.id };
      say(t('resolve.done', { id: shortId(c.id) }));
      location.hash = '#/conflicts';
    } catch (e) {
      say('');
      if (e.status === 409 && e.code === 'stale_resolution') {
        // Someone or some tablet changed the record: load it again and say why.
        try {
          const fresh = await loadConflict(c.id);
          c.changed = changedFields(c.view, fresh);
          c.view = fresh;
        } catch (e2) {
          alertError(e2);
          if (btn) btn.disabled = false;
          return;
        }
        c.stale = e;
        c.picks = {};
        c.del = '';
        draw(false);
        const st = document.getElementById('stale');
        if (st) st.focus();
        return;
      }
      alertError(e, t('resolve.failed'));
      if (btn) btn.disabled = false;
    }
  }

  // ---------------------------------------------------------------------
  // A record: values, review, history.

  const KIND_KEYS = { push: 'history.push', resolve: 'history.resolve', review: 'history.review' };
  const RESERVED_LABELS = { _review: 'review.title', _deleted: 'history.deletion' };

  function historyValue(name, val) {
    if (name === '_review' && val && typeof val === 'object') {
      return [reviewBadge(val), val.note ? [' ', h('q', { dir: 'auto' }, val.note)] : null];
    }
    if (name === '_deleted') return h('span', { class: 'badge' }, val === true ? t('history.deleted') : t('history.restored'));
    return valueEl(val);
  }

  VIEWS.record = {
    async load(r) {
      const [v, hist] = await Promise.all([
        api('GET', '/v1/records/' + r.id),
        api('GET', '/v1/records/' + r.id + '/history'),
      ]);
      S.scopes.add(v.record.scope);
      S.forms.add(v.record.form);
      noteHistoryNames(hist.history);
      return { id: r.id, view: v, history: hist.history || [], comment: '', busy: false };
    },
    draw(c) {
      const v = c.view;
      const rec = v.record;
      const canWrite = S.role === 'supervisor' || S.role === 'admin';
      const head = h('div', { class: 'view-head' },
        h('h1', { tabindex: '-1', id: 'record-title' }, t('record.title'), ' ', idEl(c.id)),
        h('a', { class: 'button secondary', href: '#/review' }, t('back.review')));
      const badges = h('p', { class: 'badges' },
        reviewBadge(v.review),
        v.deleted ? h('span', { class: 'badge deleted' }, t('record.deleted')) : null,
        v.conflict_kind ? h('a', { class: 'badge kind-' + v.conflict_kind, href: '#/conflict/' + c.id }, t('record.conflict')) : null);
      const meta = h('dl', { class: 'meta' },
        h('div', null, h('dt', null, t('col.form')), h('dd', null, slug(rec.form))),
        h('div', null, h('dt', null, t('col.scope')), h('dd', null, slug(rec.scope))),
        h('div', null, h('dt', null, t('record.created')), h('dd', null, timeEl(v.created_at))),
        h('div', null, h('dt', null, t('col.updated')), h('dd', null, timeEl(v.updated_at))),
        h('div', null, h('dt', null, t('record.id')), h('dd', null, h('bdi', { class: 'id full', dir: 'ltr' }, c.id))));

      const names = Object.keys(v.values || {}).sort();
      const values = h('section', { class: 'card', 'aria-labelledby': 'values-title' },
        h('h2', { id: 'values-title' }, t('record.values')),
        names.length === 0 ? h('p', { class: 'muted' }, t('record.noValues')) : h('table', { class: 'kv', id: 'values-table' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, t('col.field')), h('th', { scope: 'col' }, t('col.value')))),
          h('tbody', null, names.map((f) => h('tr', { 'data-field': f },
            h('th', { scope: 'row' }, field(f), v.conflicts && v.conflicts[f] ? h('span', { class: 'badge kind-fields small' }, t('record.fieldConflict')) : null),
            h('td', null, valueEl(v.values[f])))))));

      const review = h('section', { class: 'card review-box', 'aria-labelledby': 'review-title' },
        h('h2', { id: 'review-title' }, t('review.title')),
        h('p', null, t('review.current'), ' ', reviewBadge(v.review),
          v.review && v.review.by ? [' ', h('span', { class: 'muted' }, t('review.by'), ' '), h('bdi', { dir: 'auto' }, v.review.by)] : null),
        v.review && v.review.note ? h('blockquote', { dir: 'auto', id: 'review-note' }, v.review.note) : null);
      if (canWrite) {
        const cid = 'review-comment';
        review.append(
          h('label', { for: cid }, t('review.comment')),
          h('textarea', { id: cid, rows: '3', dir: 'auto', oninput: (ev) => { c.comment = ev.target.value; } }, c.comment),
          h('p', { class: 'help' }, t('review.help')),
          h('div', { class: 'actions review-actions' },
            reviewButton(c, 'approved', 'review.approve', ''),
            reviewButton(c, 'has_issues', 'review.issues', 'warn'),
            reviewButton(c, 'rejected', 'review.reject', 'danger')));
      } else {
        review.append(h('p', { class: 'muted' }, t('readonly.hq')));
      }

      const timeline = h('section', { class: 'card', 'aria-labelledby': 'history-title' },
        h('h2', { id: 'history-title' }, t('history.title')),
        h('ol', { class: 'timeline', id: 'history' }, c.history.map((e) => h('li', { class: 'kind-' + e.kind },
          h('p', { class: 'tl-head' },
            h('strong', null, t(KIND_KEYS[e.kind] || 'history.push')), ' · ', actorEl(e.actor, e.actor_name, e.actor_role), ' · ', timeEl(e.received_at, t('time.server')),
            e.merged_concurrent ? h('span', { class: 'badge warn small' }, t('history.concurrent')) : null),
          h('ul', { class: 'tl-fields' }, (e.fields || []).map((f) => {
            const has = e.values && Object.prototype.hasOwnProperty.call(e.values, f);
            const label = RESERVED_LABELS[f] ? h('span', { class: 'field-label' }, t(RESERVED_LABELS[f])) : field(f);
            return h('li', null, label, has ? [': ', historyValue(f, e.values[f])] : [' ', h('span', { class: 'muted' }, t('history.replaced'))]);
          })),
          e.note && e.kind !== 'review' ? h('blockquote', { dir: 'auto' }, e.note) : null))));

      return h('section', { class: 'view' }, head, badges, meta,
        h('div', { class: 'columns' }, h('div', null, values, review), timeline));
    },
  };

  function reviewButton(c, state, key, cls) {
    return h('button', { type: 'button', class: cls, id: 'review-' + state, onclick: async (ev) => {
      if (noteTooLong(c.comment)) {
        alertError(t('note.tooLong', { n: MAX_NOTE }));
        return;
      }
      const buttons = ev.target.closest('.review-actions').querySelectorAll('button');
      buttons.forEach((b) => { b.disabled = true; });
      say(t('review.sending'));
      try {
        const v = await api('POST', '/v1/records/' + c.id + '/review', { state, note: c.comment });
        let hist = c.history;
        try {
          hist = (await api('GET', '/v1/records/' + c.id + '/history')).history || hist;
          noteHistoryNames(hist);
        } catch (e) {
          if (e.status === 401) return;
        }
        if (S.cur !== c) return;
        c.view = v;
        c.history = hist;
        c.comment = '';
        for (const it of S.list.items) if (it.id === c.id) it.review = v.review;
        draw(false);
        say(t('review.saved', { state: t('review.' + state) }));
      } catch (e) {
        say('');
        alertError(e, t('review.failed'));
        buttons.forEach((b) => { b.disabled = false; });
      }
    } }, t(key));
  }

  // ---------------------------------------------------------------------
  // The review list.

  async function loadList(more) {
    const ls = S.list;
    const page = await api('GET', '/v1/records' + q({ review: ls.review, scope: ls.scope, form: ls.form, limit: PAGE, after: more ? ls.next : '' }));
    const items = page.records || [];
    for (const r of items) {
      S.scopes.add(r.scope);
      S.forms.add(r.form);
    }
    ls.items = more ? ls.items.concat(items) : items;
    ls.next = page.next || '';
    ls.loaded = true;
  }

  function summaryOf(values) {
    const keys = Object.keys(values || {}).sort();
    const strs = keys.filter((k) => typeof values[k] === 'string' && values[k] !== '').slice(0, 2);
    const pick = strs.length ? strs : keys.slice(0, 2);
    return pick.map((k, i) => [i ? ' · ' : '', valueEl(values[k])]);
  }

  VIEWS.review = {
    async load() {
      await loadList(false);
      return {};
    },
    draw() {
      const ls = S.list;
      const form = h('form', { class: 'filters', id: 'review-filters' },
        h('div', { class: 'filter' },
          h('label', { for: 'r-review' }, t('filter.review')),
          h('select', { id: 'r-review' },
            h('option', { value: '', selected: ls.review === '' }, t('filter.all')),
            REVIEW_STATES.map((s) => h('option', { value: s, selected: ls.review === s }, t('review.' + s))))),
        scopeFilter('r-scope', ls.scope),
        filterInput('r-form', 'filter.form', ls.form, 'forms-list'),
        h('div', { class: 'filter-actions' },
          h('button', { type: 'submit' }, t('filter.apply')),
          h('button', { type: 'button', class: 'secondary', onclick: () => { ls.review = ''; ls.scope = ''; ls.form = ''; route(); } }, t('filter.clear'))));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        ls.review = form.querySelector('#r-review').value;
        ls.scope = form.querySelector('#r-scope').value.trim();
        ls.form = form.querySelector('#r-form').value.trim();
        route();
      });
      const n = ls.items.length;
      const table = n === 0 ? h('p', { class: 'summary' }, t('list.none')) : h('div', { class: 'table-wrap' }, h('table', { class: 'list records', id: 'review-table' },
        h('caption', { class: 'sr-only' }, t('list.caption')),
        h('thead', null, h('tr', null,
          h('th', { scope: 'col' }, t('col.record')),
          h('th', { scope: 'col' }, t('col.summary')),
          h('th', { scope: 'col' }, t('col.form')),
          h('th', { scope: 'col' }, t('col.scope')),
          h('th', { scope: 'col' }, t('col.updated')),
          h('th', { scope: 'col' }, t('col.review')),
          h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, t('col.action'))))),
        h('tbody', null, ls.items.map((r) => h('tr', { 'data-record': r.id },
          h('td', { 'data-label': t('col.record') }, idEl(r.id)),
          h('td', { 'data-label': t('col.summary'), class: 'summary-cell' }, summaryOf(r.values)),
          h('td', { 'data-label': t('col.form') }, slug(r.form)),
          h('td', { 'data-label': t('col.scope') }, slug(r.scope)),
          h('td', { 'data-label': t('col.updated') }, timeEl(r.updated_at)),
          h('td', { 'data-label': t('col.review') }, reviewBadge(r.review),
            r.conflict ? h('span', { class: 'badge kind-fields' }, t('record.conflict')) : null,
            r.deleted ? h('span', { class: 'badge deleted' }, t('record.deleted')) : null),
          h('td', { class: 'action' }, h('a', { class: 'button small', href: '#/record/' + r.id, 'aria-label': t('list.openLabel', { id: shortId(r.id) }) }, t('open'))))))));
      const more = ls.next ? h('button', { type: 'button', class: 'secondary', id: 'review-more', onclick: async (ev) => {
        ev.target.disabled = true;
        try { await loadList(true); draw(false); } catch (e) { alertError(e); ev.target.disabled = false; }
      } }, t('more')) : null;
      return h('section', { class: 'view' },
        flashEl(),
        h('div', { class: 'view-head' },
          h('h1', { tabindex: '-1' }, t('list.title')),
          h('button', { type: 'button', class: 'secondary', onclick: () => route() }, t('reload'))),
        h('p', { class: 'muted' }, t('list.intro')),
        form, datalists(),
        h('p', { class: 'summary', id: 'review-count' }, n ? (ls.next ? t('list.countMore', { n: num(n) }) : t('list.count', { n: num(n) })) : ''),
        table, more);
    },
  };

  // ---------------------------------------------------------------------
  // HQ: exports, downloaded with fetch so that the token stays in the
  // Authorization header, then saved from a blob.

  function fileName(res, fallback) {
    const cd = res.headers.get('Content-Disposition') || '';
    const m = /filename="([^"]+)"/.exec(cd);
    return m ? m[1] : fallback;
  }

  async function runExport(format, bom) {
    const e = S.exp;
    if (e.busy) return;
    e.busy = true;
    e.last = null;
    draw(false);
    say(t('export.running'));
    try {
      const res = await api('GET', '/v1/export' + q({
        format, bom: bom ? 'true' : '', form: e.form, scope: e.scope, review: e.review,
        deleted: e.deleted ? 'true' : '', review_column: format === 'csv' && e.reviewColumn ? 'true' : '',
      }), undefined, { raw: true, accept: format === 'csv' ? 'text/csv' : 'application/x-ndjson' });
      const seq = res.headers.get('X-Snapshot-Seq') || '';
      const cursor = res.headers.get('X-Snapshot-Cursor') || '';
      const blob = await res.blob();
      const name = fileName(res, 'fieldsync-export-' + (seq || 'snapshot') + '.' + format);
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name, class: 'sr-only' });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      e.last = { name, seq, cursor, size: blob.size, format, bom };
      say(t('export.done', { name, seq }));
    } catch (err) {
      say('');
      alertError(err, t('export.failed'));
    } finally {
      e.busy = false;
      if (S.view === VIEWS.export) draw(false);
    }
  }

  VIEWS.export = {
    async load() {
      return {};
    },
    draw() {
      const e = S.exp;
      if (S.role !== 'hq' && S.role !== 'admin') {
        return h('section', { class: 'view' }, h('h1', { tabindex: '-1' }, t('export.title')), h('p', null, t('export.forbidden')));
      }
      const bind = (id, key) => (ev) => { e[key] = ev.target.type === 'checkbox' ? ev.target.checked : ev.target.value.trim(); };
      const form = h('form', { class: 'filters', id: 'export-form', onsubmit: (ev) => ev.preventDefault() },
        h('div', { class: 'filter' }, h('label', { for: 'x-form' }, t('filter.form')),
          h('input', { id: 'x-form', type: 'text', value: e.form, list: 'forms-list', dir: 'ltr', autocomplete: 'off', oninput: bind('x-form', 'form') })),
        h('div', { class: 'filter' }, h('label', { for: 'x-scope' }, t('filter.scope')),
          h('input', { id: 'x-scope', type: 'text', value: e.scope, list: 'scopes-list', dir: 'ltr', autocomplete: 'off', oninput: bind('x-scope', 'scope') })),
        h('div', { class: 'filter' }, h('label', { for: 'x-review' }, t('filter.review')),
          h('select', { id: 'x-review', onchange: bind('x-review', 'review') },
            h('option', { value: '', selected: e.review === '' }, t('filter.all')),
            REVIEW_STATES.map((s) => h('option', { value: s, selected: e.review === s }, t('review.' + s))))),
        h('div', { class: 'checks' },
          h('label', { class: 'check' }, h('input', { type: 'checkbox', id: 'x-deleted', checked: e.deleted, onchange: bind('x-deleted', 'deleted') }), ' ', t('export.deleted')),
          h('label', { class: 'check' }, h('input', { type: 'checkbox', id: 'x-review-col', checked: e.reviewColumn, onchange: bind('x-review-col', 'reviewColumn') }), ' ', t('export.reviewColumn'))));
      const buttons = h('div', { class: 'actions export-actions' },
        h('button', { type: 'button', id: 'export-csv', disabled: e.busy, onclick: () => runExport('csv', false) }, t('export.csv')),
        h('button', { type: 'button', id: 'export-csv-bom', disabled: e.busy, onclick: () => runExport('csv', true) }, t('export.csvBom')),
        h('button', { type: 'button', id: 'export-jsonl', disabled: e.busy, onclick: () => runExport('jsonl', false) }, t('export.jsonl')));
      const last = e.last ? h('div', { class: 'notice ok', id: 'export-result' },
        h('p', null, t('export.saved', { name: e.last.name })),
        h('dl', { class: 'meta' },
          h('div', null, h('dt', null, t('export.seq')), h('dd', { id: 'export-seq' }, e.last.seq)),
          h('div', null, h('dt', null, t('export.size')), h('dd', null, t('export.bytes', { n: num(e.last.size) }))),
          h('div', null, h('dt', null, t('export.cursor')), h('dd', null, h('code', { class: 'cursor', dir: 'ltr' }, e.last.cursor))))) : null;
      return h('section', { class: 'view' },
        h('h1', { tabindex: '-1' }, t('export.title')),
        h('p', { class: 'muted' }, t('export.intro')),
        form, datalists(), buttons,
        e.busy ? h('p', { class: 'loading' }, t('export.running')) : null,
        last,
        h('p', { class: 'help' }, t('export.memory')));
    },
  };

  // ---------------------------------------------------------------------
  // Tablets (the fleet): GET /v1/admin/devices. Admins see every tablet,
  // supervisors and HQ those of their zones. A server started without the
  // fleet view answers 404: the panel then says it is not available.

  const SEC = 1000;
  const MIN = 60 * SEC;
  const HOUR = 60 * MIN;
  const DAY = 24 * HOUR;

  async function fetchFleet() {
    try {
      const body = await api('GET', '/v1/admin/devices');
      const devices = body && Array.isArray(body.devices) ? body.devices.filter((d) => d && typeof d.id === 'string') : [];
      for (const d of devices) {
        noteName(d.id, d.label, 'device');
        for (const s of d.scopes || []) S.scopes.add(s);
      }
      return { state: 'ok', devices };
    } catch (e) {
      if (e.status === 404 || e.status === 405) return { state: 'missing' };
      if (e.status === 403) return { state: 'forbidden' };
      throw e;
    }
  }

  function unitText(n, unit, display, sign) {
    try {
      return new Intl.NumberFormat(LOCALES[S.lang], { style: 'unit', unit, unitDisplay: display, signDisplay: sign || 'auto', maximumFractionDigits: 0 }).format(n);
    } catch (e) {
      return String(n) + ' ' + unit;
    }
  }

  // bestUnit picks the unit for a length of time: seconds under 90 s,
  // minutes under 90 min, hours under 36 h, then days.
  function bestUnit(ms) {
    const a = Math.abs(ms);
    if (a < 90 * SEC) return ['second', Math.round(ms / SEC)];
    if (a < 90 * MIN) return ['minute', Math.round(ms / MIN)];
    if (a < 36 * HOUR) return ['hour', Math.round(ms / HOUR)];
    return ['day', Math.round(ms / DAY)];
  }

  // skewText is a clock skew, short and signed: "+5 min", "-30 s" (in
  // Arabic the unit in full: its abbreviations are one letter).
  function skewText(ms) {
    const [unit, n] = bestUnit(ms);
    return unitText(n, unit, S.lang === 'ar' ? 'long' : 'short', 'exceptZero');
  }

  // durationText is a length of time in words: "5 minutes".
  function durationText(ms) {
    const [unit, n] = bestUnit(Math.abs(ms));
    return unitText(n, unit, 'long');
  }

  // relTime says how long ago a server time was, in the page's language.
  function relTime(d, now) {
    const ms = d.getTime() - now; // negative: in the past
    const a = Math.abs(ms);
    const rtf = new Intl.RelativeTimeFormat(LOCALES[S.lang], { numeric: 'auto' });
    if (a < 45 * SEC) return rtf.format(0, 'second');
    if (a < HOUR) return rtf.format(Math.round(ms / MIN) || Math.sign(ms), 'minute');
    if (a < DAY) return rtf.format(Math.round(ms / HOUR), 'hour');
    if (a < 45 * DAY) return rtf.format(Math.round(ms / DAY), 'day');
    return rtf.format(Math.round(ms / (30 * DAY)), 'month');
  }

  // whenEl shows a server time as "5 minutes ago" over the date and time.
  function whenEl(v, now) {
    const d = v ? toDate(v) : null;
    if (!d) return h('span', { class: 'muted' }, t('fleet.never'));
    const iso = d.toISOString();
    return h('time', { class: 'when', datetime: iso, title: iso },
      h('span', { class: 'rel' }, relTime(d, now)),
      h('span', { class: 'abs' }, fmtTime(d)));
  }

  function lastSync(d) {
    const times = [d.last_push, d.last_pull].map((v) => (v ? toDate(v) : null)).filter(Boolean).map((x) => x.getTime());
    return times.length ? Math.max(...times) : 0;
  }

  function hasSkew(d) {
    return d.skew_ms !== null && d.skew_ms !== undefined && d.skew_ms !== '' && Number.isFinite(Number(d.skew_ms));
  }

  // zonesEl lists zones, each kept whole on one line.
  function zonesEl(zones) {
    if (!zones || !zones.length) return h('span', { class: 'muted' }, '—');
    const sep = S.lang === 'ar' ? '\u060c ' : ', ';
    // the separator goes with the zone before it, so a line never starts with it
    return zones.map((z, i) => [i ? ' ' : '', h('span', { class: 'zone' }, h('bdi', { dir: 'ltr' }, z), i < zones.length - 1 ? sep.trim() : '')]);
  }

  function flagText(f, d, now) {
    if (f === 'clock_skew') {
      if (!hasSkew(d)) return t('fleet.flag.clock_skew');
      const ms = Number(d.skew_ms);
      return t(ms >= 0 ? 'fleet.flag.ahead' : 'fleet.flag.behind', { d: durationText(ms) });
    }
    if (f === 'not_synced') {
      const last = lastSync(d);
      if (!last) return t('fleet.flag.never');
      const days = Math.floor((now - last) / DAY);
      return t('fleet.flag.notSyncedFor', { d: days >= 1 ? unitText(days, 'day', 'long') : durationText(now - last) });
    }
    return null;
  }

  function flagEl(f, d, now) {
    const text = flagText(f, d, now);
    return h('span', { class: 'badge warn flag', 'data-flag': f }, text === null ? h('bdi', { dir: 'ltr' }, f) : text);
  }

  function skewEl(d) {
    if (!hasSkew(d)) return h('span', { class: 'muted', title: t('fleet.skewUnknown') }, '—');
    const ms = Number(d.skew_ms);
    const off = (d.flags || []).includes('clock_skew');
    const title = Math.abs(ms) < SEC ? t('fleet.skewNone') : t(ms >= 0 ? 'fleet.skewAhead' : 'fleet.skewBehind', { d: durationText(ms) });
    return h('span', { class: 'skew' + (off ? ' off' : ''), title }, skewText(ms));
  }

  // Flagged tablets first, then the others, the revoked ones last; by
  // label within each group.
  function fleetRank(d) {
    if (d.revoked) return 2;
    return (d.flags || []).length ? 0 : 1;
  }

  function sortFleet(devices) {
    const coll = new Intl.Collator(LOCALES[S.lang]);
    return devices.slice().sort((a, b) => fleetRank(a) - fleetRank(b) || coll.compare(String(a.label || ''), String(b.label || '')) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  VIEWS.fleet = {
    async load() {
      return fetchFleet();
    },
    draw(c) {
      const parts = [h('div', { class: 'view-head' },
        h('h1', { tabindex: '-1' }, t('fleet.title')),
        c.state === 'ok' ? h('button', { type: 'button', class: 'secondary', id: 'fleet-reload', onclick: () => route() }, t('reload')) : null)];
      if (c.state === 'forbidden') parts.push(h('p', null, t('fleet.forbidden')));
      else if (c.state === 'missing') parts.push(h('div', { class: 'notice', id: 'fleet-missing' }, h('p', null, t('fleet.missing'))));
      else parts.push(h('p', { class: 'muted' }, t(myScopes() === null ? 'fleet.introAdmin' : 'fleet.intro')), fleetTable(c.devices));
      return h('section', { class: 'view' }, parts);
    },
  };

  function fleetTable(devices) {
    if (devices.length === 0) return h('p', { class: 'summary', id: 'fleet-count' }, t('fleet.empty'));
    const now = Date.now();
    const rows = sortFleet(devices);
    const flagged = rows.filter((d) => fleetRank(d) === 0).length;
    const cols = ['fleet.label', 'fleet.scopes', 'fleet.lastPush', 'fleet.lastPull', 'fleet.version', 'fleet.skew', 'fleet.pushed', 'fleet.state'];
    return [
      h('p', { class: 'summary', id: 'fleet-count' }, t('fleet.count', { n: num(rows.length) }),
        flagged ? [' · ', h('span', { class: 'attention' }, t('fleet.attention', { n: num(flagged) }))] : [' · ', t('fleet.allOk')]),
      h('div', { class: 'table-wrap' }, h('table', { class: 'fleet', id: 'fleet-table' },
        h('caption', { class: 'sr-only' }, t('fleet.caption')),
        h('thead', null, h('tr', null, cols.map((k) => h('th', { scope: 'col' }, t(k))))),
        h('tbody', null, rows.map((d) => {
          const flags = d.revoked ? [] : (d.flags || []);
          return h('tr', { 'data-device': d.id, class: [flags.length ? 'flagged' : '', d.revoked ? 'revoked' : ''].join(' ').trim() || null },
            h('th', { scope: 'row', class: 'dev', 'data-label': t('fleet.label') },
              h('bdi', { dir: 'auto', class: 'dev-label' }, d.label || t('fleet.noLabel')), ' ',
              h('span', { class: 'dev-id' }, idEl(d.id))),
            h('td', { class: 'scopes', 'data-label': t('fleet.scopes') }, zonesEl(d.scopes)),
            h('td', { class: 'push', 'data-label': t('fleet.lastPush') }, whenEl(d.last_push, now)),
            h('td', { class: 'pull', 'data-label': t('fleet.lastPull') }, whenEl(d.last_pull, now)),
            h('td', { class: 'version', 'data-label': t('fleet.version') }, d.app_version ? h('bdi', { dir: 'ltr', class: 'app-version' }, d.app_version) : h('span', { class: 'muted', title: t('fleet.versionUnknown') }, '—')),
            h('td', { class: 'skew-cell', 'data-label': t('fleet.skew') }, skewEl(d)),
            h('td', { class: 'pushed', 'data-label': t('fleet.pushed') }, num(Number(d.records_pushed || 0))),
            h('td', { class: 'state', 'data-label': t('fleet.state') }, h('span', { class: 'flags' },
              d.revoked ? h('span', { class: 'badge deleted' }, t('fleet.revoked')) : null,
              flags.map((f) => flagEl(f, d, now)),
              !d.revoked && !flags.length ? h('span', { class: 'badge review-approved' }, t('fleet.ok')) : null)));
        })))),
    ];
  }

  // ---------------------------------------------------------------------
  // Language.

  function setLang(lang, redraw) {
    S.lang = STRINGS[lang] ? lang : 'fr';
    const root = document.documentElement;
    root.lang = S.lang;
    root.dir = S.lang === 'ar' ? 'rtl' : 'ltr';
    try { localStorage.setItem(LANG_KEY, S.lang); } catch (e) { /* storage off */ }
    $('#lang').value = S.lang;
    document.title = t('app.name');
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    $('#nav').setAttribute('aria-label', t('nav.label'));
    $('#main').setAttribute('aria-label', t('main.label'));
    if (!redraw) return;
    say(''); // a message in the old language would linger
    showChrome();
    if (!S.token) showLogin();
    else if (S.view) draw(false);
    updateNavCount();
  }

  function initialLang() {
    try {
      const saved = localStorage.getItem(LANG_KEY);
      if (saved && STRINGS[saved]) return saved;
    } catch (e) { /* storage off */ }
    for (const l of navigator.languages || [navigator.language || '']) {
      const p = String(l).slice(0, 2).toLowerCase();
      if (STRINGS[p]) return p;
    }
    return 'fr';
  }

  // ---------------------------------------------------------------------
  // Start.

  async function start() {
    setLang(initialLang(), false);
    $('#lang').addEventListener('change', (ev) => setLang(ev.target.value, true));
    $('#logout').addEventListener('click', () => logout(true));
    $('#skip').addEventListener('click', () => $('#main').focus());
    window.addEventListener('hashchange', () => { if (S.token) route(); });
    let token = null;
    try { token = sessionStorage.getItem(TOKEN_KEY); } catch (e) { /* storage off */ }
    if (!token) {
      showLogin();
      return;
    }
    S.token = token;
    say(t('login.checking'));
    try {
      S.role = await loadMe();
      say('');
      showChrome();
      route();
    } catch (e) {
      logout(false);
      loginError(e);
    }
  }

  start();
})();
