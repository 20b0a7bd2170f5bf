// Workload dashboard: a read-only, live view of the operator's Workloads.
//
// The server pushes Server-Sent Events: /api/list feeds the list and the map, and each Workload page
// opens /api/workloads/<namespace>/<name>. One stream is open at a time, because a browser allows only
// six HTTP/1.1 connections per host across all its tabs and every stream holds one for good.
//
// Names, messages and results are user input: the DOM is built with createElement and textContent only.

const ROW_HEIGHT = 30; // px; every list row has this height, so the visible window is plain arithmetic
const OVERSCAN = 10; // rows kept in the DOM above and below the visible ones, so a fast scroll shows no gap
const RETRY_MS = 3000; // reconnect delay once the browser has given up on a stream
const LIST_URL = '/api/list';
const THEME_KEY = 'workload-dashboard.theme';

// States with a colour designed in app.css (--st-<name>). They are also taken as the known states until
// the first snapshot brings the server's own map.
const DESIGNED_STATES = ['queued', 'preparing', 'running', 'collecting', 'completed', 'failed', 'cancelled',
  'orphaned', 'serving', 'stopping'];
const ALERT_STATES = new Set(['failed', 'orphaned']); // timeline bands that must catch the eye
const POD_PHASE_COLORS = { Pending: 'preparing', Running: 'running', Succeeded: 'completed', Failed: 'failed' };
const CONDITION_CLASSES = { True: 'ok', False: 'muted' };

/* ---------- DOM building ---------- */

/** An element with attributes and children; `on<event>` props add listeners, strings become text. */
function h(tag, props = {}, ...children) {
  return assemble(document.createElement(tag), props, children);
}

function svg(tag, props = {}, ...children) {
  return assemble(document.createElementNS('http://www.w3.org/2000/svg', tag), props, children);
}

function assemble(node, props, children) {
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    // Styles go through the CSSOM: the server's Content-Security-Policy blocks style attributes.
    else if (key === 'style') for (const [name, css] of Object.entries(value)) node.style.setProperty(name, css);
    else node.setAttribute(key, value === true ? '' : value);
  }
  node.append(...children.flat().filter((child) => child != null && child !== false));
  return node;
}

/** Writes text only when it differs, so an unchanged cell costs the browser no work. */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function setAttr(node, name, value) {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

const muted = (text) => h('span', { class: 'muted' }, text);
const plural = (n, noun) => `${n} ${noun}${n === 1 ? ' is' : 's are'}`;
const empty = (text) => h('p', { class: 'empty' }, text);

/* ---------- time ---------- */

let clockSkew = 0; // server clock minus browser clock: ages are measured on the server's clock

function syncClock(serverTime) {
  const t = Date.parse(serverTime);
  if (Number.isFinite(t)) clockSkew = t - Date.now();
}

const serverNow = () => Date.now() + clockSkew;
const pad = (n) => String(n).padStart(2, '0');

/** kubectl-style durations: 42s, 3m07s, 5h12m, 2d04h. */
function formatDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor(s / 3600) % 24)}h`;
}

/** Local wall-clock time, sortable and unambiguous: 2026-12-06 19:00:01. */
function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function ageText(iso) {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? formatDuration(serverNow() - t) : '—';
}

/** Shows the time since `iso` in `node`; the ticker keeps every such node current. */
function setAge(node, iso) {
  setAttr(node, 'data-since', iso ?? '');
  setAttr(node, 'title', iso ? formatTime(iso) : '');
  setText(node, ageText(iso));
}

function age(iso) {
  const node = h('span');
  setAge(node, iso);
  return node;
}

/* ---------- states and their colours ---------- */

const isKnown = (state) => store.stateIndex.has(state);

/** A known state's colour: designed in app.css, else a stable hue derived from its name. */
function stateColor(state) {
  if (DESIGNED_STATES.includes(state)) return `var(--st-${state})`;
  let hue = 0;
  for (const char of state) hue = (hue * 31 + char.codePointAt(0)) % 360;
  return `light-dark(oklch(0.52 0.14 ${hue}), oklch(0.76 0.13 ${hue}))`;
}

/**
 * Gives a node its state's colour through --c; a state outside the map, or none, is marked `unknown`
 * instead (grey, dashed), and its literal name is still shown by the caller.
 */
function paintState(node, state) {
  const known = state != null && isKnown(state);
  node.classList.toggle('unknown', !known);
  if (known) node.style.setProperty('--c', stateColor(state));
  else node.style.removeProperty('--c');
  return node;
}

/** A chip in any colour; without one it looks like an unknown state's. */
function chip(text, color) {
  const node = h('span', { class: color ? 'chip' : 'chip unknown', title: text }, text);
  if (color) node.style.setProperty('--c', color);
  return node;
}

function stateChip(state) {
  return setStateChip(h('span', { class: 'chip' }), state);
}

/** Turns `node` into the chip of `state`; the list reuses its chips this way as rows scroll by. */
function setStateChip(node, state) {
  setAttr(node, 'data-state', state ?? '');
  setAttr(node, 'title', state ?? 'no state yet');
  setText(node, state ?? 'no state');
  return paintState(node, state);
}

/* ---------- the list store, fed by /api/list ---------- */

const store = {
  rows: new Map(), // uid -> Row, as last received
  lifecycle: null, // the map of states from the last snapshot
  stateIndex: new Map(DESIGNED_STATES.map((state, i) => [state, i])), // known state -> its place in the map
  scope: undefined, // the server's namespaces, null when it reads all of them
  loaded: false, // a snapshot has arrived
  counts: { state: new Map(), namespace: new Map(), type: new Map() }, // field value -> number of rows
};

const knownStates = () => [...store.stateIndex.keys()];

/** How many rows are in a state outside the map, or in none yet. */
function otherCount() {
  let other = 0;
  for (const [state, n] of store.counts.state) if (!isKnown(state)) other += n;
  return other;
}

/** Adds (+1) or takes away (-1) a row from the per-field counts, so a change batch costs O(batch). */
function tally(row, delta) {
  for (const [field, counts] of Object.entries(store.counts)) {
    const n = (counts.get(row[field]) ?? 0) + delta;
    if (n) counts.set(row[field], n);
    else counts.delete(row[field]);
  }
}

function applySnapshot(data) {
  syncClock(data.serverTime);
  store.lifecycle = data.map;
  store.stateIndex = new Map(data.map.states.map((state, i) => [state, i]));
  store.scope = data.namespaces;
  store.rows = new Map();
  for (const counts of Object.values(store.counts)) counts.clear();
  for (const row of data.workloads) {
    store.rows.set(row.uid, row);
    tally(row, +1);
  }
  store.loaded = true;
  page?.update?.({ reset: true });
}

function applyChanges(data) {
  syncClock(data.serverTime);
  const changed = []; // [row before, row after]; undefined for an added or a removed row
  for (const row of data.upsert ?? []) {
    const before = store.rows.get(row.uid);
    if (before) tally(before, -1);
    tally(row, +1);
    store.rows.set(row.uid, row);
    changed.push([before, row]);
  }
  for (const uid of data.remove ?? []) {
    const before = store.rows.get(uid);
    if (!before) continue;
    tally(before, -1);
    store.rows.delete(uid);
    changed.push([before, undefined]);
  }
  page?.update?.({ changed });
}

const LIST_EVENTS = { snapshot: applySnapshot, changes: applyChanges };

/* ---------- the one live stream, and its indicator ---------- */

const liveBadge = document.querySelector('[data-testid=live]');
const LIVE_LABELS = { connecting: 'Connecting…', live: 'Live', lost: 'Connection lost, retrying…' };
let stream = null; // { url, handlers, source, retry }

function setLive(status) {
  liveBadge.dataset.status = status;
  setText(liveBadge.querySelector('.live-text'), LIVE_LABELS[status]);
}

/** Makes `url` the open stream; the list and the map share theirs, so moving between them keeps it. */
function connect(url, handlers) {
  if (stream?.url === url && stream.handlers === handlers) return;
  stream?.source.close();
  clearTimeout(stream?.retry);
  stream = { url, handlers, source: null, retry: 0 };
  setLive('connecting');
  openSource(stream);
}

function openSource(current) {
  const source = new EventSource(current.url);
  current.source = source;
  source.onopen = () => setLive('live');
  source.onerror = () => {
    setLive('lost');
    // EventSource reconnects by itself, except after an HTTP error status: then it stays closed.
    if (source.readyState === EventSource.CLOSED) current.retry = setTimeout(() => openSource(current), RETRY_MS);
  };
  for (const [type, handle] of Object.entries(current.handlers)) {
    source.addEventListener(type, (event) => handle(JSON.parse(event.data)));
  }
}

/* ---------- links ---------- */

const workloadHref = (namespace, name) =>
  `#/workload/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`;

function listHref(filters) {
  const query = new URLSearchParams(Object.entries(filters).filter(([, value]) => value)).toString();
  return query ? `#/?${query}` : '#/';
}

let listHash = '#/'; // the list's last URL, so links back to it keep its filters

function rememberListHash(hash) {
  listHash = hash;
  document.querySelector('[data-nav=list]').setAttribute('href', hash);
}

/* ---------- the list page ---------- */

/** A cell filler for plain text; `title` gives the tooltip, for text that an ellipsis may cut. */
const textFill = (get, title) => (td, row) => {
  const value = get(row);
  setText(td, value == null ? '—' : String(value));
  td.classList.toggle('none', value == null);
  if (title) setAttr(td, 'title', title(row) ?? '');
};

/** The cell's one child element, made on first use and then updated in place. */
const only = (td, make) => td.firstElementChild || td.appendChild(make());

function readyFraction(ready) {
  const [have, want] = String(ready ?? '').split('/').map(Number);
  return want > 0 ? have / want : null;
}

// One entry per column: how to sort by it (a number or a string; null sorts last) and how to fill its cell.
const COLUMNS = [
  {
    key: 'namespace', label: 'Namespace', width: 132,
    sortValue: (r) => r.namespace, fill: textFill((r) => r.namespace, (r) => r.namespace),
  },
  {
    key: 'name', label: 'Name',
    sortValue: (r) => r.name,
    fill: (td, r) => {
      const link = only(td, () => h('a'));
      setAttr(link, 'href', workloadHref(r.namespace, r.name));
      setAttr(link, 'title', r.name);
      setText(link, r.name);
    },
  },
  {
    key: 'type', label: 'Type', width: 96,
    sortValue: (r) => r.type, fill: textFill((r) => r.type, (r) => r.type),
  },
  {
    key: 'state', label: 'State', width: 150,
    sortValue: (r) => (r.state == null ? null : store.stateIndex.get(r.state) ?? store.stateIndex.size), // map order
    fill: (td, r) => setStateChip(only(td, () => h('span', { class: 'chip' })), r.state),
  },
  {
    key: 'ready', label: 'Ready', width: 70, numeric: true,
    sortValue: (r) => readyFraction(r.ready), fill: textFill((r) => r.ready),
  },
  {
    key: 'attempts', label: 'Attempts', width: 94, numeric: true,
    sortValue: (r) => r.attempts, fill: textFill((r) => r.attempts),
  },
  {
    key: 'reason', label: 'Reason', width: 168,
    sortValue: (r) => r.reason, fill: textFill((r) => r.reason, (r) => r.message ?? r.reason),
  },
  {
    key: 'age', label: 'Age', width: 80, numeric: true,
    sortValue: (r) => -Date.parse(r.created), fill: (td, r) => setAge(td, r.created),
  },
  {
    key: 'queue', label: 'Queue', width: 80, numeric: true,
    sortValue: (r) => r.queuePosition, fill: textFill((r) => r.queuePosition),
  },
];
const DEFAULT_SORT = { key: 'namespace', desc: false }; // ties always fall back to namespace, then name

/** Orders two sort values; empty ones (null, NaN) go last whatever the direction. */
function compareValues(a, b, direction) {
  const aEmpty = a == null || Number.isNaN(a);
  const bEmpty = b == null || Number.isNaN(b);
  if (aEmpty || bEmpty) return aEmpty - bEmpty;
  return a < b ? -direction : a > b ? direction : 0;
}

function createRow() {
  const cells = COLUMNS.map((column) => h('td', { class: column.numeric ? 'num' : null }));
  return { tr: h('tr', { 'data-testid': 'row' }, cells), cells, row: null };
}

function fillRow(slot, row) {
  slot.row = row;
  setAttr(slot.tr, 'data-namespace', row.namespace);
  setAttr(slot.tr, 'data-name', row.name);
  setAttr(slot.tr, 'data-state', row.state ?? '');
  COLUMNS.forEach((column, i) => column.fill(slot.cells[i], row));
}

/** Indices of a longest increasing run (not necessarily contiguous) of `values`; negative values are left out. */
function longestIncreasing(values) {
  const tails = []; // tails[k]: the index ending the best run of length k + 1 found so far
  const previous = [];
  values.forEach((value, i) => {
    if (value < 0) return;
    let low = 0;
    let high = tails.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (values[tails[mid]] < value) low = mid + 1;
      else high = mid;
    }
    previous[i] = low > 0 ? tails[low - 1] : -1;
    tails[low] = i;
  });
  const run = new Set();
  for (let i = tails.length ? tails[tails.length - 1] : -1; i >= 0; i = previous[i]) run.add(i);
  return run;
}

/**
 * Puts the rows' elements after `anchor` in the order of `slots`, moving as few as possible: a moved row is
 * laid out afresh by the browser, a row left in place costs nothing. The rows already in order stay.
 */
function orderRows(anchor, slots) {
  const domIndex = new Map([...anchor.parentNode.children].map((tr, i) => [tr, i]));
  const stay = longestIncreasing(slots.map((slot) => domIndex.get(slot.tr) ?? -1));
  slots.forEach((slot, i) => {
    if (!stay.has(i)) anchor.after(slot.tr);
    anchor = slot.tr;
  });
}

function setSpacer(spacer, height) {
  spacer.hidden = height === 0;
  spacer.style.height = `${height}px`;
}

class ListPage {
  constructor(params) {
    this.visible = []; // the rows that pass the filters, sorted
    this.rendered = new Map(); // uid -> { tr, cells, row }: the rows in the DOM, in their order
    this.stale = true; // `visible` must be derived again
    this.summaryStale = true; // the counts, the options and "N of M" must be redrawn
    this.frame = 0;
    this.countKeys = '';
    this.countNodes = new Map(); // count key -> { button, number }
    this.optionKeys = new Map(); // select -> the option values it shows
    this.el = this.build();
    this.readQuery(params);
    this.resize = new ResizeObserver(() => this.schedule());
    this.resize.observe(this.scroller);
    this.onKey = (event) => this.focusSearch(event);
    document.addEventListener('keydown', this.onKey);
    document.title = 'Workloads';
    connect(LIST_URL, LIST_EVENTS);
    this.schedule();
  }

  build() {
    this.counts = h('div', { class: 'counts', role: 'group', 'aria-label': 'Workloads per state' });
    this.search = h('input', {
      type: 'search', class: 'search', 'data-testid': 'filter-text', 'aria-label': 'Filter by name',
      placeholder: 'Filter by name', title: 'Filter by name (press / to focus)',
      autocomplete: 'off', spellcheck: 'false',
      oninput: (event) => this.setFilter('q', event.target.value.trim()),
    });
    this.selects = {
      ns: this.select('filter-namespace', 'ns', 'Namespace'),
      state: this.select('filter-state', 'state', 'State'),
      type: this.select('filter-type', 'type', 'Type'),
    };
    this.clear = h('button', { type: 'button', class: 'text-button', onclick: () => this.setFilters({}) },
      'Clear filters');
    this.scope = h('span', { class: 'scope' });
    this.shown = h('span', { class: 'shown', 'data-testid': 'shown' });

    this.headers = COLUMNS.map((column) => h('th', { scope: 'col', class: column.numeric ? 'num' : null },
      h('button', { type: 'button', onclick: () => this.sortBy(column.key) }, column.label)));
    this.thead = h('thead', {}, h('tr', {}, this.headers));
    // Spacers stand for the rows above and below the window, so the scrollbar is true.
    const spacer = () => h('tr', { class: 'spacer', 'aria-hidden': 'true' }, h('td', { colspan: COLUMNS.length }));
    this.topSpacer = spacer();
    this.bottomSpacer = spacer();
    this.emptyCell = h('td', { colspan: COLUMNS.length });
    this.emptyRow = h('tr', { class: 'empty-row' }, this.emptyCell);
    const widths = COLUMNS.map((column) => h('col', { style: column.width ? { width: `${column.width}px` } : null }));
    const table = h('table', { class: 'grid', style: { '--row-h': `${ROW_HEIGHT}px` } }, h('colgroup', {}, widths),
      this.thead, h('tbody', {}, this.topSpacer, this.bottomSpacer, this.emptyRow));
    this.scroller = h('div', { class: 'table-scroll', onscroll: () => this.schedule() }, table);

    return h('section', { class: 'list-page' },
      this.counts,
      h('div', { class: 'toolbar' }, this.search, Object.values(this.selects), this.clear,
        h('span', { class: 'toolbar-gap' }), this.scope, this.shown),
      this.scroller);
  }

  select(testid, key, label) {
    return h('select', {
      'data-testid': testid, 'aria-label': label, onchange: (event) => this.setFilter(key, event.target.value),
    });
  }

  /** Filters and sort come from the URL, so a link reproduces a view. */
  readQuery(params) {
    const param = (name) => params.get(name) ?? '';
    this.filters = { ns: param('ns'), state: param('state'), type: param('type'), q: param('q') };
    const sort = param('sort');
    const key = sort.replace(/^-/, '');
    this.sort = COLUMNS.some((column) => column.key === key) ? { key, desc: sort.startsWith('-') } : DEFAULT_SORT;
    this.search.value = this.filters.q;
    rememberListHash(this.hash());
    this.refresh();
  }

  hash() {
    const { key, desc } = this.sort;
    const sort = key === DEFAULT_SORT.key && !desc ? '' : `${desc ? '-' : ''}${key}`;
    return listHref({ ...this.filters, sort });
  }

  setFilter(key, value) {
    this.setFilters({ ...this.filters, [key]: value });
  }

  setFilters(filters) {
    this.filters = { ns: '', state: '', type: '', q: '', ...filters };
    this.search.value = this.filters.q;
    this.commit();
  }

  sortBy(key) {
    this.sort = { key, desc: this.sort.key === key && !this.sort.desc };
    this.commit();
  }

  /** Records the view in the URL without a history entry per keystroke (replaceState fires no hashchange). */
  commit() {
    rememberListHash(this.hash());
    history.replaceState(null, '', listHash);
    this.refresh();
  }

  refresh() {
    this.stale = true;
    this.summaryStale = true;
    this.scroller.scrollTop = 0;
    this.schedule();
  }

  /** Called by the store after a snapshot (reset) or a change batch. */
  update(change) {
    this.summaryStale = true;
    if (change.reset) this.stale = true;
    else if (!this.stale) this.merge(change.changed);
    this.schedule();
  }

  /** Applies a change batch without sorting again: the changed rows are taken out, then merged back in. */
  merge(changed) {
    const match = this.matcher();
    const compare = this.comparator();
    const touched = new Set(changed.map(([before, after]) => (before || after).uid));
    const incoming = changed.map(([, after]) => after).filter((row) => row && match(row)).sort(compare);
    const kept = this.visible.filter((row) => !touched.has(row.uid));
    const merged = [];
    let i = 0;
    for (const row of incoming) {
      while (i < kept.length && compare(kept[i], row) <= 0) merged.push(kept[i++]);
      merged.push(row);
    }
    this.visible = merged.concat(kept.slice(i));
  }

  column() {
    return COLUMNS.find((column) => column.key === this.sort.key);
  }

  matcher() {
    const { ns, state, type, q } = this.filters;
    const needle = q.toLowerCase();
    return (row) => (!ns || row.namespace === ns)
      && (!type || row.type === type)
      && (!state || (state === 'other' ? !isKnown(row.state) : row.state === state))
      && (!needle || row.name.toLowerCase().includes(needle));
  }

  /** Orders rows by the sort column, then namespace and name; each row's sort value is computed once. */
  comparator() {
    const { sortValue } = this.column();
    const direction = this.sort.desc ? -1 : 1;
    const values = new WeakMap();
    const value = (row) => {
      if (!values.has(row)) values.set(row, sortValue(row));
      return values.get(row);
    };
    return (a, b) => compareValues(value(a), value(b), direction)
      || compareValues(a.namespace, b.namespace, 1) || compareValues(a.name, b.name, 1);
  }

  derive() {
    this.visible = [...store.rows.values()].filter(this.matcher()).sort(this.comparator());
    this.stale = false;
  }

  /** Renders are coalesced: any number of batches and scroll events in a frame cost one render. */
  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  render() {
    this.frame = 0;
    if (this.stale) this.derive();
    if (this.summaryStale) this.renderSummary();
    this.renderWindow();
  }

  renderSummary() {
    this.summaryStale = false;
    this.renderCounts();
    const { ns, state, type } = this.filters;
    this.syncOptions(this.selects.ns, [...store.counts.namespace.keys()].sort(), 'All namespaces', ns);
    this.syncOptions(this.selects.state, [...knownStates(), 'other'], 'All states', state);
    this.syncOptions(this.selects.type, [...store.counts.type.keys()].map(String).sort(), 'All types', type);
    this.clear.hidden = !Object.values(this.filters).some(Boolean);
    const scope = store.scope ? `Namespaces: ${store.scope.join(', ')}` // null: all; undefined: not known yet
      : store.scope === null ? 'All namespaces' : '';
    setText(this.scope, scope);
    setAttr(this.scope, 'title', scope);
    this.headers.forEach((th, i) => {
      const sorted = COLUMNS[i].key === this.sort.key;
      setAttr(th, 'aria-sort', sorted ? (this.sort.desc ? 'descending' : 'ascending') : 'none');
    });
    setText(this.shown, `${this.visible.length} of ${store.rows.size} workloads`);
  }

  renderCounts() {
    const other = otherCount();
    const keys = other ? [...knownStates(), 'other'] : knownStates();
    if (keys.join('\n') !== this.countKeys) {
      this.countKeys = keys.join('\n');
      this.countNodes.clear();
      this.counts.replaceChildren(...keys.map((key) => this.countButton(key)));
    }
    for (const [key, { button, number }] of this.countNodes) {
      const n = key === 'other' ? other : store.counts.state.get(key) ?? 0;
      setText(number, String(n));
      button.classList.toggle('zero', n === 0);
      button.setAttribute('aria-pressed', String(this.filters.state === key));
    }
  }

  countButton(key) {
    const number = h('span', { class: 'count-n', 'data-testid': 'count', 'data-state': key });
    const button = h('button', {
      type: 'button', class: 'count',
      title: key === 'other' ? 'States outside the lifecycle map, or no state yet' : `Show only ${key}`,
      onclick: () => this.setFilter('state', this.filters.state === key ? '' : key),
    }, h('span', { class: 'dot' }), h('span', { class: 'count-label' }, key), number);
    paintState(button, key === 'other' ? null : key);
    this.countNodes.set(key, { button, number });
    return button;
  }

  /** Rebuilds a select's options only when they change; a value named by the URL stays even if unseen. */
  syncOptions(select, values, allLabel, current) {
    const all = current && !values.includes(current) ? [...values, current] : values;
    if (this.optionKeys.get(select) !== all.join('\n')) {
      this.optionKeys.set(select, all.join('\n'));
      const options = all.map((value) => h('option', { value }, value));
      select.replaceChildren(h('option', { value: '' }, allLabel), ...options);
    }
    select.value = current;
  }

  /**
   * Only the rows in view (plus OVERSCAN) are in the DOM. A row that stays in view keeps its element and
   * is not touched; a row that comes into view takes over the element of one that left, in document order,
   * so that a jump far down rewrites cells in place and moves nothing.
   */
  renderWindow() {
    const { scrollTop, clientHeight } = this.scroller;
    const top = Math.max(0, scrollTop - this.thead.offsetHeight);
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.visible.length, Math.ceil((top + clientHeight) / ROW_HEIGHT) + OVERSCAN);
    const wanted = this.visible.slice(first, last);
    const inView = new Set(wanted.map((row) => row.uid));
    const spare = [...this.rendered].filter(([uid]) => !inView.has(uid)).map(([, slot]) => slot).reverse();
    const rendered = new Map();
    for (const row of wanted) {
      const slot = this.rendered.get(row.uid) || spare.pop() || createRow();
      if (slot.row !== row) fillRow(slot, row);
      rendered.set(row.uid, slot);
    }
    for (const slot of spare) slot.tr.remove();
    this.rendered = rendered;
    orderRows(this.topSpacer, [...rendered.values()]);
    setSpacer(this.topSpacer, first * ROW_HEIGHT);
    setSpacer(this.bottomSpacer, (this.visible.length - last) * ROW_HEIGHT);
    this.emptyRow.hidden = this.visible.length > 0;
    setText(this.emptyCell, !store.loaded ? 'Waiting for the server…'
      : store.rows.size ? 'No workload matches these filters.' : 'No workloads yet.');
  }

  focusSearch(event) {
    const typing = event.target.closest?.('input, select, textarea');
    if (event.key === '/' && !typing && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      this.search.focus();
    }
  }

  leave() {
    cancelAnimationFrame(this.frame);
    this.resize.disconnect();
    document.removeEventListener('keydown', this.onKey);
  }
}

/* ---------- the map page ---------- */

const MAP = {
  nodeW: 150, nodeH: 40, colGap: 76, rowGap: 44, // node boxes and the space between them
  laneMargin: 22, laneGap: 9, // edges routed around the nodes run in lanes above and below them
  slotMargin: 14, slotGap: 7, // ...and turn in the gaps between columns, one slot each
  loopBulge: 34, radius: 9, backRadius: 18, margin: 16,
};

/** Distance from `initial` along the transitions, through non-terminal states only. */
function distances(initial, transitions, terminal) {
  const depth = new Map([[initial, 0]]);
  const queue = [initial];
  while (queue.length) {
    const state = queue.shift();
    for (const next of transitions[state] ?? []) {
      if (depth.has(next) || terminal.has(next)) continue;
      depth.set(next, depth.get(state) + 1);
      queue.push(next);
    }
  }
  return depth;
}

/** Places the states: column = distance from `initial`, terminal states in a last column. */
function placeNodes({ states, initial, terminal, transitions }) {
  const isTerminal = new Set(terminal);
  const depth = distances(initial, transitions, isTerminal);
  const unreachable = Math.max(0, ...depth.values()) + 1; // column of non-terminal states `initial` never reaches
  const lastColumn = unreachable + (states.some((s) => !isTerminal.has(s) && !depth.has(s)) ? 1 : 0);
  const columns = [];
  for (const state of states) {
    const column = isTerminal.has(state) ? lastColumn : depth.get(state) ?? unreachable;
    if (!columns[column]) columns[column] = [];
    columns[column].push(state);
  }
  const tallest = Math.max(...columns.filter(Boolean).map((members) => members.length));
  const nodes = new Map();
  columns.forEach((members, col) => members.forEach((state, i) => {
    const row = i + (tallest - members.length) / 2; // centre short columns
    nodes.set(state, {
      state, col, terminal: isTerminal.has(state), left: [], right: [],
      x: col * (MAP.nodeW + MAP.colGap), y: row * (MAP.nodeH + MAP.rowGap),
    });
  }));
  return nodes;
}

const middleY = (node) => node.y + MAP.nodeH / 2;

/** Points along the S-curve a direct edge would take, to test it against the other nodes. */
function sCurvePoints(x1, y1, x2, y2) {
  const points = [];
  for (let i = 0; i <= 32; i++) {
    const t = i / 32;
    const u = 1 - t;
    const x = u * u * u * x1 + 3 * u * t * (x1 + x2) / 2 + t * t * t * x2;
    const y = (u * u * u + 3 * u * u * t) * y1 + (3 * u * t * t + t * t * t) * y2;
    points.push([x, y]);
  }
  return points;
}

/** 'direct' (an S-curve), 'loop' (within a column) or 'lane' (around the nodes: back edges, blocked ones). */
function edgeKind(from, to, nodes) {
  if (from.col === to.col) return 'loop';
  if (to.col < from.col) return 'lane';
  const pad = 6;
  const points = sCurvePoints(from.x + MAP.nodeW, middleY(from), to.x, middleY(to));
  const blocked = [...nodes.values()].some((node) => node !== from && node !== to && points.some(([x, y]) =>
    x > node.x - pad && x < node.x + MAP.nodeW + pad && y > node.y - pad && y < node.y + MAP.nodeH + pad));
  return blocked ? 'lane' : 'direct';
}

/**
 * Lanes above or below the nodes. Edges into one state from one side share a lane, a turn and an arrowhead
 * (a bus), so the many edges into `failed` read as one line rather than a comb. Shorter buses run closer to
 * the nodes, so lanes nest instead of crossing.
 */
function assignLanes(edges, nodes) {
  const ys = [...nodes.values()].map((node) => node.y);
  const top = Math.min(...ys) - MAP.laneMargin;
  const bottom = Math.max(...ys) + MAP.nodeH + MAP.laneMargin;
  const middle = (Math.min(...ys) + Math.max(...ys) + MAP.nodeH) / 2;
  const reach = (edge) => Math.abs(edge.to.col - edge.from.col) + (edge.back ? 1 : -1);
  const bundles = new Map();
  const perSide = { top: 0, bottom: 0 };
  for (const edge of edges) {
    const y = (middleY(edge.from) + middleY(edge.to)) / 2;
    const side = y < middle ? 'top' : y > middle ? 'bottom' : perSide.top <= perSide.bottom ? 'top' : 'bottom';
    perSide[side] += 1;
    const key = edge.back ? edge : `${side}\n${edge.to.state}`; // a back edge keeps a lane of its own
    if (!bundles.has(key)) bundles.set(key, { side, to: edge.to, reach: 0, port: { order: 0 } });
    edge.bundle = bundles.get(key);
    edge.bundle.reach = Math.max(edge.bundle.reach, reach(edge));
  }
  for (const side of ['top', 'bottom']) {
    [...bundles.values()].filter((bundle) => bundle.side === side).sort((a, b) => a.reach - b.reach)
      .forEach((bundle, i) => {
        bundle.lane = i;
        bundle.laneY = side === 'top' ? top - i * MAP.laneGap : bottom + i * MAP.laneGap;
        bundle.port.order = bundle.laneY;
        bundle.to.left.push(bundle.port);
      });
  }
}

/** Spreads each side's edge ends along the node's border, ordered by where they head, to avoid crossings. */
function assignPorts(nodes, edges) {
  for (const edge of edges) {
    const routed = edge.kind === 'lane';
    edge.fromPort = { order: routed ? edge.bundle.laneY : middleY(edge.to) };
    edge.from.right.push(edge.fromPort);
    if (routed) {
      edge.toPort = edge.bundle.port; // placed once per bundle by assignLanes
    } else {
      edge.toPort = { order: middleY(edge.from) };
      (edge.kind === 'loop' ? edge.to.right : edge.to.left).push(edge.toPort);
    }
  }
  for (const node of nodes.values()) {
    for (const ports of [node.left, node.right]) {
      const step = Math.min(8, (MAP.nodeH - 14) / Math.max(1, ports.length - 1));
      ports.sort((a, b) => a.order - b.order)
        .forEach((port, i) => { port.y = middleY(node) + (i - (ports.length - 1) / 2) * step; });
    }
  }
}

function groupBy(items, key) {
  const groups = new Map();
  for (const item of items) {
    if (!groups.has(key(item))) groups.set(key(item), []);
    groups.get(key(item)).push(item);
  }
  return groups.values();
}

/** Where lane edges turn, in the gaps between columns: outer lanes turn closest to their node. */
function assignSlots(edges) {
  const outerFirst = (a, b) => b.lane - a.lane;
  for (const list of groupBy(edges, (edge) => edge.from.col)) {
    list.sort((a, b) => outerFirst(a.bundle, b.bundle)).forEach((edge, i) => {
      edge.exitX = edge.from.x + MAP.nodeW + MAP.slotMargin + i * MAP.slotGap;
    });
  }
  const bundles = new Set(edges.map((edge) => edge.bundle));
  for (const list of groupBy(bundles, (bundle) => bundle.to.col)) {
    list.sort(outerFirst).forEach((bundle, i) => { bundle.entryX = bundle.to.x - MAP.slotMargin - i * MAP.slotGap; });
  }
}

/** An SVG path through orthogonal points, with rounded corners. */
function roundedPath(points, radius) {
  const toward = ([x, y], [tx, ty], distance) => {
    const length = Math.hypot(tx - x, ty - y) || 1;
    return [x + ((tx - x) / length) * distance, y + ((ty - y) / length) * distance];
  };
  let d = `M${points[0].join(' ')}`;
  for (let i = 1; i < points.length - 1; i++) {
    const [previous, corner, next] = points.slice(i - 1, i + 2);
    const r = Math.min(radius, Math.hypot(corner[0] - previous[0], corner[1] - previous[1]) / 2,
      Math.hypot(next[0] - corner[0], next[1] - corner[1]) / 2);
    d += ` L${toward(corner, previous, r).join(' ')} Q${corner.join(' ')} ${toward(corner, next, r).join(' ')}`;
  }
  return `${d} L${points[points.length - 1].join(' ')}`;
}

function edgePath(edge) {
  const x1 = edge.from.x + MAP.nodeW;
  const y1 = edge.fromPort.y;
  const y2 = edge.toPort.y;
  if (edge.kind === 'loop') {
    const x2 = edge.to.x + MAP.nodeW;
    const bulge = x1 + MAP.loopBulge;
    return `M${x1} ${y1} C${bulge} ${y1} ${bulge} ${y2} ${x2} ${y2}`;
  }
  const x2 = edge.to.x;
  if (edge.kind === 'direct') {
    const mid = (x1 + x2) / 2;
    return `M${x1} ${y1} C${mid} ${y1} ${mid} ${y2} ${x2} ${y2}`;
  }
  const { laneY, entryX } = edge.bundle;
  return roundedPath([[x1, y1], [edge.exitX, y1], [edge.exitX, laneY], [entryX, laneY], [entryX, y2], [x2, y2]],
    edge.back ? MAP.backRadius : MAP.radius);
}

/** The whole layout: nodes, edges with their paths, and the box that holds them. */
function layoutMap(lifecycle) {
  const nodes = placeNodes(lifecycle);
  const edges = [];
  for (const [state, from] of nodes) {
    for (const target of new Set(lifecycle.transitions[state] ?? [])) {
      const to = nodes.get(target);
      if (to) edges.push({ from, to, kind: edgeKind(from, to, nodes), back: to.col < from.col });
    }
  }
  const lanes = edges.filter((edge) => edge.kind === 'lane');
  assignLanes(lanes, nodes);
  assignPorts(nodes, edges);
  assignSlots(lanes);
  for (const edge of edges) edge.d = edgePath(edge);

  const xs = [...nodes.values()].flatMap((node) => [node.x, node.x + MAP.nodeW + MAP.loopBulge]);
  const ys = [...nodes.values()].flatMap((node) => [node.y, node.y + MAP.nodeH]);
  xs.push(...lanes.map((edge) => edge.bundle.entryX));
  ys.push(...lanes.map((edge) => edge.bundle.laneY));
  const box = { x: Math.min(...xs) - MAP.margin, y: Math.min(...ys) - MAP.margin };
  box.w = Math.max(...xs) + MAP.margin - box.x;
  box.h = Math.max(...ys) + MAP.margin - box.y;
  return { nodes, edges, box };
}

const arrowMarker = (id) => svg('marker', {
  id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 8, markerHeight: 8,
  markerUnits: 'userSpaceOnUse', orient: 'auto',
}, svg('path', { d: 'M0 0L10 5L0 10z' }));

/** The SVG of the map; `counts` holds the text node of each state's number, to update it live. */
function drawMap(lifecycle) {
  const { nodes, edges, box } = layoutMap(lifecycle);
  const paths = edges.map((edge) => svg('path', { class: edge.back ? 'map-edge back' : 'map-edge', d: edge.d }));
  // Hovering or focusing a state lights its edges and dims the others.
  const highlight = (state) => edges.forEach((edge, i) => {
    const hot = edge.from.state === state || edge.to.state === state;
    paths[i].classList.toggle('hot', state != null && hot);
    paths[i].classList.toggle('dim', state != null && !hot);
  });
  const counts = new Map();
  const nodeViews = [...nodes.values()].map((node) => {
    const count = svg('text', { class: 'map-count', x: MAP.nodeW - 12, y: MAP.nodeH / 2 }, '0');
    counts.set(node.state, count);
    const on = () => highlight(node.state);
    const off = () => highlight(null);
    const view = svg('a', {
      href: listHref({ state: node.state }), class: node.terminal ? 'map-node terminal' : 'map-node',
      'data-testid': 'map-state', 'data-state': node.state, transform: `translate(${node.x} ${node.y})`,
      onmouseenter: on, onmouseleave: off, onfocus: on, onblur: off,
    },
    svg('rect', { class: 'outer', width: MAP.nodeW, height: MAP.nodeH, rx: 8 }),
    node.terminal && svg('rect', { class: 'inner', x: 3, y: 3, width: MAP.nodeW - 6, height: MAP.nodeH - 6, rx: 6 }),
    svg('text', { class: 'map-name', x: 12, y: MAP.nodeH / 2 }, node.state),
    count);
    return paintState(view, node.state);
  });
  const drawing = svg('svg', {
    class: 'map', viewBox: `${box.x} ${box.y} ${box.w} ${box.h}`, width: box.w, height: box.h,
    'aria-label': 'Lifecycle map: click a state to list its Workloads',
  },
  svg('defs', {}, arrowMarker('arrow'), arrowMarker('arrow-hot')),
  svg('g', {}, paths), svg('g', {}, nodeViews));
  return { svg: drawing, counts };
}

class MapPage {
  constructor() {
    this.frame = 0;
    this.drawn = ''; // the map the SVG was drawn from, as JSON
    this.canvas = h('div', { class: 'map-canvas' });
    this.noteText = h('span');
    this.note = h('p', { class: 'map-note' },
      this.noteText, h('a', { href: listHref({ state: 'other' }) }, 'list them'));
    this.el = h('section', { class: 'map-page' },
      h('div', { class: 'card' },
        h('div', { class: 'card-head' }, h('h2', {}, 'Lifecycle map'),
          h('span', { class: 'legend' },
            h('span', { class: 'legend-item' }, h('span', { class: 'legend-line' }), 'transition'),
            h('span', { class: 'legend-item' }, h('span', { class: 'legend-line back' }), 'back edge'),
            h('span', { class: 'legend-item' }, h('span', { class: 'legend-box terminal' }), 'terminal'),
            'Click a state to list its Workloads.')),
        this.canvas),
      this.note);
    document.title = 'Map · Workloads';
    connect(LIST_URL, LIST_EVENTS);
    this.update();
  }

  update() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  render() {
    this.frame = 0;
    const { lifecycle } = store;
    if (!lifecycle?.states.length) {
      this.canvas.replaceChildren(empty(store.loaded ? 'The lifecycle map is empty.' : 'Waiting for the server…'));
      return;
    }
    if (JSON.stringify(lifecycle) !== this.drawn) {
      this.drawn = JSON.stringify(lifecycle);
      this.drawing = drawMap(lifecycle);
      this.canvas.replaceChildren(this.drawing.svg);
    }
    for (const [state, count] of this.drawing.counts) setText(count, String(store.counts.state.get(state) ?? 0));
    const other = otherCount();
    this.note.hidden = !other;
    setText(this.noteText, `${plural(other, 'workload')} in a state outside the map, or in none yet: `);
  }

  leave() {
    cancelAnimationFrame(this.frame);
  }
}

/* ---------- the Workload page ---------- */

function card(title, body, testid) {
  return h('section', { class: 'card', 'data-testid': testid },
    h('div', { class: 'card-head' }, h('h2', {}, title)), body);
}

/** A small table; the column named `grow` takes the spare width (and wraps), the others fit their content. */
function dataTable(headings, grow, rows) {
  return h('div', { class: 'table-box' }, h('table', { class: 'table' },
    h('thead', {}, h('tr', {}, headings.map((heading) =>
      h('th', { scope: 'col', class: heading === grow ? null : 'fit' }, heading)))),
    h('tbody', {}, rows)));
}

const cell = (content, className) => h('td', { class: className }, content ?? muted('—'));

/** Terms and values in a grid; empty values are left out, `wide` ones (long names) take two cells. */
function factList(facts) {
  const shown = facts.filter(([, value]) => value != null && value !== '');
  return h('dl', { class: 'facts' }, shown.map(([term, value, wide]) =>
    h('div', { class: wide ? 'wide' : null }, h('dt', {}, term), h('dd', {}, value))));
}

function summaryView(w) {
  return [
    h('div', { class: 'wl-title' }, h('h1', {}, w.name), stateChip(w.state)),
    factList([
      ['Namespace', h('a', { href: listHref({ ns: w.namespace }) }, w.namespace)],
      ['Type', w.type],
      ['Attempts', w.attempts],
      ['Ready', w.ready],
      ['Reason', w.reason],
      ['Queue position', w.queuePosition],
      ['Transitions', w.transitions],
      ['Age', age(w.created)],
      ['Completed', w.completionTime && formatTime(w.completionTime)],
      ['Replicas', w.spec?.replicas],
      ['Priority', w.spec?.priority],
      ['Image', w.spec?.image && h('code', {}, w.spec.image), 'wide'],
      ['Endpoint', w.endpoint && h('code', {}, w.endpoint), 'wide'],
    ]),
    w.message != null && h('p', { class: 'message', 'data-testid': 'message' }, w.message),
  ];
}

function bandDuration(entry) {
  const end = entry.end == null ? serverNow() : Date.parse(entry.end);
  return Math.max(0, end - Date.parse(entry.start)) || 0;
}

// flex-grow: bands share the free width in proportion to their time. Status times are whole seconds, so a
// band shown as 0 s lasted up to a second: it counts as half of one, and a fast history still fills the bar.
const bandWeight = (ms) => Math.max(ms, 500) / 1000;

function bandTitle(entry, ms) {
  const duration = entry.end == null ? `${formatDuration(ms)} so far` : `for ${formatDuration(ms)}`;
  return [
    `${entry.state ?? 'no state'} (attempt ${entry.attempt ?? '?'})`,
    `from ${formatTime(entry.start)}, ${duration}`,
    entry.reason ? `reason: ${entry.reason}` : '',
  ].filter(Boolean).join('\n');
}

function bandView(entry, ms) {
  const band = h('div', {
    class: 'band', 'data-testid': 'band', 'data-state': entry.state ?? '', 'data-attempt': entry.attempt,
    title: bandTitle(entry, ms), role: 'listitem',
  }, h('span', {}, entry.state ?? 'no state'));
  paintState(band, entry.state);
  band.classList.toggle('alert', ALERT_STATES.has(entry.state));
  band.classList.toggle('open', entry.end == null);
  band.style.flexGrow = bandWeight(ms);
  return band;
}

/** The history as a table, latest first; # counts from the very first transition, dropped ones included. */
function transitionsView(history, dropped) {
  const rows = history.map((step, i) => h('tr', {},
    cell(String(dropped + i + 1), 'num muted'),
    cell(h('span', { class: 'transition' },
      step.from == null ? muted('start') : stateChip(step.from), ' → ', stateChip(step.to))),
    cell(formatTime(step.at)),
    cell(step.reason, 'wrap')));
  return [
    h('h3', { class: 'subhead' }, `Transitions, latest first (${dropped + history.length})`),
    dropped > 0 && h('p', { class: 'note' },
      `${plural(dropped, 'older transition')} not kept: the history holds the last ${history.length}.`),
    h('div', { class: 'scroll-box' }, dataTable(['#', 'Transition', 'At', 'Reason'], 'Reason', rows.reverse())),
  ];
}

function conditionsView(conditions) {
  if (!conditions.length) return [empty('No conditions.')];
  const rows = conditions.map((c) => h('tr', {},
    cell(c.type),
    cell(h('span', { class: `status ${CONDITION_CLASSES[c.status] || ''}` }, c.status)),
    cell(c.reason),
    cell(c.message, 'wrap'),
    cell(age(c.lastTransitionTime))));
  return [dataTable(['Type', 'Status', 'Reason', 'Message', 'Since'], 'Message', rows)];
}

function runView(run) {
  if (!run) return [empty('No run yet.')];
  const exit = run.exitCode == null ? null
    : h('span', { class: run.exitCode === 0 ? 'ok' : 'bad' }, String(run.exitCode));
  const took = run.finishedAt ? formatDuration(Date.parse(run.finishedAt) - Date.parse(run.startedAt)) : null;
  return [factList([
    ['Pod', run.pod && h('code', {}, run.pod), 'wide'],
    ['Exit code', exit],
    ['Started', run.startedAt && formatTime(run.startedAt)],
    ['Finished', run.finishedAt && formatTime(run.finishedAt)],
    ['Duration', took ?? (run.startedAt && h('span', {}, age(run.startedAt), ' so far'))],
  ])];
}

function resultView(result) {
  if (result == null) return [empty('No result yet.')];
  const text = typeof result === 'string' ? result : JSON.stringify(result, null, 2);
  return [h('pre', { class: 'result', 'data-testid': 'result' }, text)];
}

function podsView(pods) {
  if (!pods.length) return [empty('No pods.')];
  const rows = pods.map((pod) => {
    const color = POD_PHASE_COLORS[pod.phase];
    return h('tr', { 'data-testid': 'pod', 'data-phase': pod.phase ?? '', class: pod.deleting ? 'deleting' : null },
      cell(pod.name),
      cell(pod.rank, 'num'),
      cell(pod.attempt, 'num'),
      cell(chip(pod.phase ?? 'unknown', color && `var(--st-${color})`)),
      cell(h('span', { class: pod.ready ? 'ok' : 'bad' }, pod.ready ? 'yes' : 'no')),
      cell(pod.node),
      cell(pod.deleting ? 'deleting' : null),
      cell(pod.reason));
  });
  return [dataTable(['Name', 'Rank', 'Attempt', 'Phase', 'Ready', 'Node', 'Deleting', 'Reason'], 'Name', rows)];
}

function eventsView(events) {
  if (!events.length) return [empty('No events.')];
  const rows = events.map((event) => {
    const warning = event.type === 'Warning';
    return h('tr', { 'data-testid': 'event', 'data-type': event.type, class: warning ? 'warning' : null },
      cell(warning ? chip('Warning', 'var(--warning)') : event.type),
      cell(event.reason),
      cell(event.message, 'wrap'),
      cell(event.count, 'num'),
      cell(age(event.last)));
  });
  return [dataTable(['Type', 'Reason', 'Message', 'Count', 'Last seen'], 'Message', rows)];
}

class WorkloadPage {
  constructor(namespace, name) {
    this.namespace = namespace;
    this.name = name;
    this.slots = null; // section -> element, once the Workload has been found
    this.shown = new Map(); // section -> JSON it shows: an unchanged section keeps its scroll and selection
    this.openBand = null; // the band of the current state, which grows as time passes
    this.body = h('div', { class: 'wl-body' }, empty('Waiting for the server…'));
    this.el = h('article', { class: 'wl-page' },
      h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
        h('a', { href: listHash }, 'Workloads'), h('span', { 'aria-hidden': 'true' }, '/'),
        h('a', { href: listHref({ ns: namespace }) }, namespace)),
      this.body);
    document.title = `${name} · Workloads`;
    connect(`/api/workloads/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`,
      { workload: (data) => this.show(data) });
  }

  show(data) {
    syncClock(data.serverTime);
    if (!data.found) {
      this.showMissing();
      return;
    }
    if (!this.slots) this.layout();
    const { workload, timeline = [], pods = [], events = [] } = data;
    const { history = [], droppedTransitions = 0, conditions = [], run = null, result = null, ...facts } = workload;
    this.fill('summary', facts, summaryView);
    this.fill('timeline', { timeline, history, droppedTransitions }, (view) => this.timelineView(view));
    this.fill('pods', pods, podsView);
    this.fill('events', events, eventsView);
    this.fill('conditions', conditions, conditionsView);
    this.fill('run', run, runView);
    this.fill('result', result, resultView);
  }

  layout() {
    const slot = () => h('div', { class: 'card-body' });
    this.slots = {
      summary: h('header', { class: 'card wl-summary' }), timeline: slot(), pods: slot(), events: slot(),
      conditions: slot(), run: slot(), result: slot(),
    };
    this.shown.clear();
    const { summary, timeline, pods, events, conditions, run, result } = this.slots;
    this.body.replaceChildren(summary, card('Timeline', timeline),
      h('div', { class: 'wl-columns' },
        h('div', { class: 'wl-column' }, card('Pods', pods, 'pods'), card('Events', events, 'events')),
        h('div', { class: 'wl-column' },
          card('Conditions', conditions, 'conditions'), card('Run', run), card('Result', result))));
  }

  fill(section, data, view) {
    const json = JSON.stringify(data);
    if (this.shown.get(section) === json) return;
    this.shown.set(section, json);
    this.slots[section].replaceChildren(...view(data).filter(Boolean)); // views use `cond && node`
  }

  showMissing() {
    if (this.body.querySelector('[data-testid=not-found]')) return;
    this.slots = null;
    this.openBand = null;
    this.body.replaceChildren(h('div', { class: 'card not-found', 'data-testid': 'not-found' },
      h('p', { class: 'not-found-title' },
        `No Workload ${this.namespace}/${this.name} (deleted, or not created yet).`),
      h('p', { class: 'muted' }, 'This page shows it as soon as it exists.'),
      h('a', { href: listHash }, 'Back to the list')));
  }

  /**
   * One band per timeline entry, grouped by attempt. Widths are proportional to time on top of a minimum
   * width (flex-grow over a fixed basis), so a 2-second band next to a 3-hour one stays visible.
   */
  timelineView({ timeline, history, droppedTransitions }) {
    this.openBand = null;
    const groups = [];
    for (const entry of timeline) {
      const group = groups[groups.length - 1];
      if (group && group.attempt === entry.attempt) group.entries.push(entry);
      else groups.push({ attempt: entry.attempt, entries: [entry] });
    }
    const bar = h('div', { class: 'timeline', 'data-testid': 'timeline', role: 'list' },
      groups.map((group) => this.attemptView(group)));
    if (!timeline.length) return [bar, empty('No transitions yet.')];
    const first = timeline[0];
    const last = timeline[timeline.length - 1];
    const ongoing = last.end == null;
    const total = ongoing ? [age(first.start), ' so far'] : formatDuration(Date.parse(last.end) - Date.parse(first.start));
    const axis = h('div', { class: 'timeline-axis' },
      h('span', {}, formatTime(first.start)),
      h('span', {}, total),
      h('span', {}, ongoing ? 'now' : formatTime(last.end)));
    return [bar, axis, ...transitionsView(history, droppedTransitions)];
  }

  attemptView({ attempt, entries }) {
    const bands = h('div', { class: 'attempt-bands' });
    const group = h('div', { class: 'attempt', role: 'listitem' },
      h('div', { class: 'attempt-label', title: `attempt ${attempt}` }, `attempt ${attempt ?? '?'}`), bands);
    let weight = 0;
    let open = null;
    for (const entry of entries) {
      const ms = bandDuration(entry);
      const band = bandView(entry, ms);
      bands.append(band);
      weight += bandWeight(ms);
      if (entry.end == null) open = { entry, band, group, others: -bandWeight(ms) };
    }
    group.style.flexGrow = weight;
    if (open) {
      open.others += weight; // the weight of the group's finished bands
      this.openBand = open;
    }
    return group;
  }

  /** Every second: the current state's band grows. */
  tick() {
    const open = this.openBand;
    if (!open) return;
    const ms = bandDuration(open.entry);
    open.band.style.flexGrow = bandWeight(ms);
    open.group.style.flexGrow = open.others + bandWeight(ms);
    open.band.title = bandTitle(open.entry, ms);
  }
}

/* ---------- theme ---------- */

const themeButton = document.querySelector('[data-testid=theme]');
const prefersDark = matchMedia('(prefers-color-scheme: dark)');

let chosenTheme = null; // 'light' or 'dark' once the user has picked one; until then the system decides

try {
  chosenTheme = localStorage.getItem(THEME_KEY);
} catch {
  // storage can be off (privacy settings): the choice then lasts for this visit only
}

/** app.css picks every colour from data-theme. */
function applyTheme() {
  const system = prefersDark.matches ? 'dark' : 'light';
  const theme = chosenTheme === 'light' || chosenTheme === 'dark' ? chosenTheme : system;
  document.documentElement.dataset.theme = theme;
  const label = `Switch to the ${theme === 'dark' ? 'light' : 'dark'} theme`;
  themeButton.setAttribute('aria-label', label);
  themeButton.title = label;
}

themeButton.addEventListener('click', () => {
  chosenTheme = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  try {
    localStorage.setItem(THEME_KEY, chosenTheme);
  } catch {
    // kept for this visit only
  }
  applyTheme();
});
prefersDark.addEventListener('change', applyTheme);

/* ---------- routing ---------- */

let page = null; // the page on screen
const main = document.getElementById('main');

function decode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function route() {
  const hash = location.hash.slice(1) || '/';
  const cut = hash.indexOf('?');
  const path = cut < 0 ? hash : hash.slice(0, cut);
  const params = new URLSearchParams(cut < 0 ? '' : hash.slice(cut + 1));
  const workload = path.match(/^\/workload\/([^/]+)\/([^/]+)$/);
  const section = workload ? 'workload' : path === '/map' ? 'map' : 'list';
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (section === 'list' && page instanceof ListPage) {
    page.readQuery(params); // back/forward between two list views: keep the page, change the view
    return;
  }
  page?.leave?.();
  if (workload) page = new WorkloadPage(decode(workload[1]), decode(workload[2]));
  else if (section === 'map') page = new MapPage();
  else page = new ListPage(params);
  main.replaceChildren(page.el);
  main.scrollTop = 0;
}

applyTheme();
window.addEventListener('hashchange', route);
// Ages and the current timeline band follow the clock; one timer serves every page.
setInterval(() => {
  for (const node of main.querySelectorAll('[data-since]')) setText(node, ageText(node.dataset.since));
  page?.tick?.();
}, 1000);
route();
