// The web page of `tally serve` (docs/http-api.md, rules H41-H43): a query
// box with completion, the time range, the result as a table and as the
// server's chart, and the query and range kept in the address. Plain
// JavaScript with no dependency; it only talks to this server's native API.
'use strict';

const $ = (id) => document.getElementById(id);
const ROWS_SHOWN = 1000;
const TOKEN_KEY = 'tally-token';
const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  login: null, // the promise of the token being typed, shared by every request that met a 401
  functions: [],
  metrics: [],
  runs: 0, // numbers the runs, so that a late answer of an older one is dropped
  completing: 0,
  items: [],
  active: 0,
};

// JSON with every number kept as the server wrote it (its text), where
// the browser gives the source text: counts beyond 2^53 stay exact, and a
// percentage keeps its two decimals, as the CLI prints them.
function parseJson(text) {
  return JSON.parse(text, (key, value, context) =>
    typeof value === 'number' && context && typeof context.source === 'string' ? context.source : value);
}

// One request to the API, with the token when there is one. A 401 asks
// for the token (once for all the requests waiting) and tries again.
async function api(path, params) {
  const url = path + (params ? '?' + new URLSearchParams(params) : '');
  for (;;) {
    const headers = state.token ? { Authorization: 'Bearer ' + state.token } : {};
    const response = await fetch(url, { headers });
    if (response.status === 401) {
      await askToken(state.token ? 'the token is wrong' : '');
      continue;
    }
    const text = await response.text();
    let body = null;
    try { body = parseJson(text); } catch (e) { body = { status: 'error', error: text || response.statusText }; }
    return body;
  }
}

function askToken(message) {
  if (!state.login) {
    state.login = new Promise((resolve) => {
      $('login-error').textContent = message;
      $('login').hidden = false;
      $('token').value = '';
      $('token').focus();
      $('login').onsubmit = (event) => {
        event.preventDefault();
        state.token = $('token').value.trim();
        sessionStorage.setItem(TOKEN_KEY, state.token);
        $('login').hidden = true;
        state.login = null;
        resolve();
      };
    });
  }
  return state.login;
}

function setStatus(kind, text) {
  $('status').dataset.state = kind;
  $('status').textContent = text;
}

// The address of a view: the query and the range, never the token.
function viewParams() {
  const params = new URLSearchParams();
  const q = $('q').value.trim();
  if (q) params.set('q', q);
  for (const name of ['from', 'to']) {
    const value = $(name).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

async function run(remember) {
  closeCompletions();
  const params = viewParams();
  if (!params.get('q')) return;
  const address = '?' + params;
  if (remember && address !== location.search) history.pushState(null, '', address);
  const ticket = ++state.runs;
  const started = performance.now();
  setStatus('running', 'Running…');
  params.set('chart', 'true');
  let body;
  try {
    body = await api('api/query', params);
  } catch (e) {
    body = { status: 'error', error: 'the server could not be reached: ' + e.message };
  }
  if (ticket !== state.runs) return;
  if (body.status === 'error' || !Array.isArray(body.rows)) {
    showError(body);
  } else {
    showResult(body, Math.round(performance.now() - started));
  }
}

function showError(body) {
  $('error').textContent = body.caret || ('error: ' + body.error);
  $('error').hidden = false;
  $('notices').hidden = true;
  $('chart').hidden = true;
  $('result').replaceChildren();
  setStatus('error', 'The query failed.');
}

function showResult(body, ms) {
  $('error').hidden = true;
  const notices = body.notices || [];
  $('notices').replaceChildren(...notices.map((n) => element('li', 'note: ' + n.message)));
  $('notices').hidden = notices.length === 0;
  showChart(body.chart);
  const table = element('table');
  const head = element('tr');
  for (const column of body.columns) head.append(element('th', column.name));
  table.append(head);
  for (const row of body.rows.slice(0, ROWS_SHOWN)) {
    const tr = element('tr');
    row.forEach((value, i) => {
      const type = body.columns[i].type;
      const text = type === 'percent' && typeof value === 'number' ? value.toFixed(2) : String(value);
      tr.append(element('td', text, type === 'int' || type === 'percent' ? 'num' : ''));
    });
    table.append(tr);
  }
  $('result').replaceChildren(table);
  const n = body.rows.length;
  const shown = n > ROWS_SHOWN ? ` (the first ${ROWS_SHOWN} shown)` : '';
  setStatus('done', `${n} row${n === 1 ? '' : 's'}${shown}, ${ms} ms`);
}

// The chart is the server's SVG, parsed as SVG (not HTML) and placed in
// the page, so that it scales and its classes can be styled or tested.
function showChart(svg) {
  const figure = $('chart');
  if (typeof svg !== 'string') {
    figure.replaceChildren(element('figcaption', 'This result has no chart (only series, drops, recoveries and summarize(…, STEP) have one).'));
    figure.hidden = false;
    return;
  }
  const doc = new DOMParser().parseFromString(svg, 'image/svg+xml');
  if (doc.querySelector('parsererror')) {
    figure.replaceChildren(element('figcaption', 'The chart could not be read.'));
  } else {
    figure.replaceChildren(document.importNode(doc.documentElement, true));
  }
  figure.hidden = false;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// Completion. What is offered depends on the text before the cursor:
// inside account="…" (or =~, !=, !~) the accounts that start with what is
// typed; otherwise, on a word, the functions and metrics that start with it.
const ACCOUNT = /([A-Za-z_][A-Za-z0-9_]*)?\s*\{[^{}]*account\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)$/;
// A word being typed: letters after anything but a letter or digit (so the
// `h` of `1h` is not one).
const WORD = /(?:^|[^A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)$/;
const escapeRegex = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const escapeString = (s) => s.replace(/[\\"]/g, '\\$&');

async function complete(explicit) {
  const box = $('q');
  const before = box.value.slice(0, box.selectionStart);
  const ticket = ++state.completing;
  let items = [];
  let from = before.length;
  const account = ACCOUNT.exec(before);
  if (account) {
    const typed = account[3].replace(/\\(.)/g, '$1');
    const regex = account[2].endsWith('~');
    const params = { match: escapeRegex(typed) + '.*', limit: '20' };
    if (account[1]) params.metric = account[1];
    const body = await api('api/accounts', params).catch(() => null);
    if (ticket !== state.completing || !body || !Array.isArray(body.accounts)) return;
    from = before.length - account[3].length;
    const after = box.value.slice(box.selectionStart);
    const close = after.startsWith('"') ? '' : '"';
    items = body.accounts.map((name) => ({
      label: name, kind: 'account', about: '',
      insert: escapeString(regex ? escapeRegex(name) : name) + close,
    }));
  } else {
    const inString = (before.match(/"/g) || []).length % 2 === 1;
    const word = (WORD.exec(before) || ['', ''])[1];
    if (inString || (!word && !explicit)) return closeCompletions();
    from = before.length - word.length;
    const lower = word.toLowerCase();
    for (const f of state.functions) {
      if (f.name.startsWith(lower)) {
        items.push({ label: f.usage, kind: 'function', about: f.about, insert: f.prefix ? 'not recovered_within(' : f.name + '(' });
      }
    }
    for (const m of state.metrics) {
      if (m.toLowerCase().startsWith(lower)) items.push({ label: m, kind: 'metric', about: '', insert: m });
    }
  }
  if (ticket !== state.completing) return;
  state.items = items.map((item) => ({ ...item, from }));
  state.active = 0;
  drawCompletions();
}

function drawCompletions() {
  const list = $('completions');
  list.replaceChildren(...state.items.map((item, i) => {
    const li = element('li', item.label, i === state.active ? 'active' : '');
    li.setAttribute('role', 'option');
    li.append(element('span', item.kind, 'kind'));
    if (item.about) li.append(element('span', item.about, 'about'));
    li.onmousedown = (event) => { event.preventDefault(); accept(i); };
    return li;
  }));
  list.hidden = state.items.length === 0;
}

function closeCompletions() {
  state.completing++;
  state.items = [];
  $('completions').hidden = true;
}

function accept(i) {
  const item = state.items[i];
  if (!item) return;
  const box = $('q');
  const end = box.selectionStart;
  box.value = box.value.slice(0, item.from) + item.insert + box.value.slice(end);
  const caret = item.from + item.insert.length;
  box.setSelectionRange(caret, caret);
  closeCompletions();
  box.focus();
}

function onKey(event) {
  const open = !$('completions').hidden;
  if (open && (event.key === 'ArrowDown' || event.key === 'ArrowUp')) {
    event.preventDefault();
    const n = state.items.length;
    state.active = (state.active + (event.key === 'ArrowDown' ? 1 : n - 1)) % n;
    drawCompletions();
  } else if (open && (event.key === 'Tab' || (event.key === 'Enter' && !event.ctrlKey))) {
    event.preventDefault();
    accept(state.active);
  } else if (open && event.key === 'Escape') {
    closeCompletions();
  } else if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    run(true);
  } else if ((event.key === ' ' && event.ctrlKey) || (event.key === 'Tab' && !event.shiftKey && WORD.test($('q').value.slice(0, $('q').selectionStart)))) {
    event.preventDefault();
    complete(true);
  }
}

// Shows the view the address names, and runs its query.
function loadView() {
  const params = new URLSearchParams(location.search);
  $('q').value = params.get('q') || '';
  $('from').value = params.get('from') || '';
  $('to').value = params.get('to') || '';
  if ($('q').value) run(false);
}

async function start() {
  $('ask').onsubmit = (event) => { event.preventDefault(); run(true); };
  $('q').addEventListener('keydown', onKey);
  $('q').addEventListener('input', () => complete(false));
  $('q').addEventListener('blur', closeCompletions);
  window.addEventListener('popstate', loadView);
  loadView();
  const [functions, metrics] = await Promise.all([api('api/functions'), api('api/metrics')]);
  state.functions = (functions && functions.functions) || [];
  state.metrics = (metrics && metrics.metrics) || [];
}

document.addEventListener('DOMContentLoaded', start);
