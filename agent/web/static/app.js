// The POS screen: login, the sale with its scan field, payment, receipts,
// manager approvals, shifts and reports, and the status bar. It talks to
// the agent's local API (/api/...) and listens to its event stream for
// serial-scanner scans, device, sync and print changes.
import { setConfig, t, money, moneyPlain, parseMoney, parseDecimal, qty, age } from './i18n.js';

// A keyboard-wedge scanner types a code as a burst of keys a few ms apart,
// ending in Enter; people type slower. wedgeGap is the longest gap between
// two keys of a burst (config wedge_gap_ms, default 40), WEDGE_MIN its
// shortest length.
let wedgeGap = 40;
const WEDGE_MIN = 4;
const STATUS_EVERY = 3000;

const $ = (sel, root = document) => root.querySelector(sel);

/** h builds an element: h('button', {class: 'x', onclick: f, dataset: {a: 1}}, 'text', child). */
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else if (k in e && k !== 'list') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const state = {
  cfg: null,
  user: null,
  csrf: '',
  view: '',
  sale: null,
  selected: 0,
  mult: 1,
  lastSale: null,
  status: null,
  shift: undefined,
  dialogs: [],
  es: null,
  keys: {}, // idempotency key per sale id
};

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

function cancelled() {
  return new ApiError(0, 'cancelled', t('err.cancelled'));
}

async function api(method, path, body, headers = {}) {
  const hdr = { Accept: 'application/json', ...headers };
  const init = { method, headers: hdr, credentials: 'same-origin' };
  if (body !== undefined) {
    hdr['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && state.csrf) hdr['X-CSRF-Token'] = state.csrf;
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', t('err.network'));
  }
  let data = {};
  try {
    data = await res.json();
  } catch (e) { /* an empty or non-JSON answer */ }
  if (!res.ok) {
    const err = data.error || {};
    const e = new ApiError(res.status, err.code || 'http_' + res.status, err.message || res.statusText, err.detail);
    if (e.code === 'unauthenticated' && state.user) toLogin();
    throw e;
  }
  return data;
}

function uuid() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

// Sale changes run one after another, in the order they were asked for:
// two quick scans never race to open two sales.
let queue = Promise.resolve();
function serial(fn) {
  const p = queue.then(fn);
  queue = p.catch(() => {});
  return p;
}

// enqueue runs fn in order and shows its error to the cashier.
function enqueue(fn) {
  return serial(fn).catch(showError);
}

// run runs an action that may wait for the cashier (a dialog): it is not
// queued, so scans go on while the dialog is open.
function run(fn) {
  return Promise.resolve().then(fn).catch(showError);
}

// ---------------------------------------------------------------- toasts

function toast(msg, kind = 'error', ms) {
  (window.__toastLog ??= []).push(kind + ': ' + msg); // for tests and support
  const box = $('#toasts');
  const gone = () => {
    el.remove();
    if (!box.children.length && box.matches(':popover-open')) box.hidePopover();
  };
  const el = h('div', { class: 'toast toast-' + kind, role: kind === 'error' ? 'alert' : 'status', onclick: gone }, msg);
  box.append(el);
  while (box.children.length > 3) box.firstChild.remove();
  // The box is a popover so it shows above a modal dialog too; shown
  // again, it goes above the newest one.
  box.classList.toggle('over-dialog', state.dialogs.length > 0 || state.view !== 'sale');
  if (box.matches(':popover-open')) box.hidePopover();
  box.showPopover();
  setTimeout(gone, ms ?? (kind === 'error' ? 7000 : 3500));
  if (kind === 'error') beep();
}

function showError(e) {
  if (!e || e.code === 'cancelled') return;
  toast(e.message || String(e), 'error');
  const el = $('#toasts').lastChild;
  if (el && e.detail) el.title = e.detail;
  const scan = $('#scan');
  scan.classList.add('scan-error');
  setTimeout(() => scan.classList.remove('scan-error'), 1200);
}

let audio;
function beep() {
  try {
    audio ??= new AudioContext();
    const o = audio.createOscillator();
    const g = audio.createGain();
    o.frequency.value = 440;
    g.gain.value = 0.08;
    o.connect(g).connect(audio.destination);
    o.start();
    o.stop(audio.currentTime + 0.18);
  } catch (e) { /* no sound device */ }
}

// ---------------------------------------------------------------- dialogs

function topDialog() {
  return state.dialogs[state.dialogs.length - 1];
}

/**
 * openDialog shows a modal. body is a node; actions are buttons
 * {label, primary, kind, onClick, key}. The first primary action runs on
 * Enter (the body is a form). onScan(code, source) may take scans; return
 * false to let the sale have them.
 */
function openDialog({ id, title, body, actions = [], onScan, onKey, onClose, wide }) {
  const form = h('form', { class: 'dlg-form', method: 'dialog', novalidate: true });
  const foot = h('div', { class: 'dlg-actions' });
  const dlg = h('dialog', { class: 'dlg' + (wide ? ' dlg-wide' : ''), id });
  const d = { el: dlg, onScan, onKey, closed: false };
  d.close = (result) => {
    if (d.closed) return;
    d.closed = true;
    dlg.close();
    dlg.remove();
    state.dialogs = state.dialogs.filter((x) => x !== d);
    onClose?.(result);
    refocus(true);
  };
  let primary;
  for (const a of actions) {
    const b = h('button', { type: a.primary ? 'submit' : 'button', class: 'btn ' + (a.primary ? 'btn-primary' : a.kind === 'danger' ? 'btn-danger' : 'btn-plain'), dataset: { act: a.id || '' } },
      a.key ? h('kbd', {}, a.key) : null, a.label);
    if (!a.primary) b.addEventListener('click', () => a.onClick ? a.onClick(d) : d.close(null));
    else primary = a;
    foot.append(b);
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (primary) primary.onClick(d);
  });
  form.append(h('h2', { class: 'dlg-title' }, title), h('div', { class: 'dlg-body' }, body), foot);
  dlg.append(form);
  dlg.addEventListener('cancel', (e) => {
    e.preventDefault();
    d.close(null);
  });
  document.body.append(dlg);
  state.dialogs.push(d);
  dlg.showModal();
  const toasts = $('#toasts');
  if (toasts.matches(':popover-open')) { // keep messages above the new dialog
    toasts.classList.add('over-dialog');
    toasts.hidePopover();
    toasts.showPopover();
  }
  const first = dlg.querySelector('[autofocus]') || dlg.querySelector('input, select') || dlg.querySelector('button[type=submit]');
  first?.focus();
  first?.select?.();
  return d;
}

/** prompt asks for one value; resolves to the text, or null when cancelled. */
function prompt({ id = 'prompt-dialog', title, label, value = '', type = 'text', inputmode, acceptsScan, note, extra }) {
  return new Promise((resolve) => {
    const input = h('input', { id: id + '-input', class: 'input-big', type, value, inputmode, autocomplete: 'off', spellcheck: false, autofocus: true });
    if (acceptsScan) input.dataset.scan = 'accept';
    const body = h('div', {}, label ? h('label', { class: 'field' }, h('span', {}, label), input) : input, note ? h('p', { class: 'note' }, note) : null, extra || null);
    openDialog({
      id, title, body,
      onScan: acceptsScan ? (code) => { input.value = code; return true; } : undefined,
      actions: [
        { label: t('btn.cancel'), key: 'Esc' },
        { label: t('btn.ok'), primary: true, key: '⏎', onClick: (d) => { const v = input.value; d.close(v); } },
      ],
      onClose: (v) => resolve(v ?? null),
    });
  });
}

function confirmDlg(title, text) {
  return new Promise((resolve) => {
    openDialog({
      id: 'confirm-dialog', title, body: h('p', { class: 'dlg-text' }, text || ''),
      actions: [
        { label: t('btn.cancel'), key: 'Esc' },
        { label: t('btn.confirm'), primary: true, key: '⏎', onClick: (d) => d.close(true) },
      ],
      onClose: (v) => resolve(v === true),
    });
  });
}

function infoDlg(id, title, body, wide) {
  return openDialog({ id, title, body, wide, actions: [{ label: t('btn.close'), primary: true, key: '⏎', onClick: (d) => d.close() }] });
}

/** pinPad builds a touch keypad that types into target(). */
function pinPad(target, onEnter) {
  const pad = h('div', { class: 'pinpad' });
  const press = (k) => {
    const input = target();
    if (!input) return;
    if (k === 'C') input.value = '';
    else if (k === '⌫') input.value = input.value.slice(0, -1);
    else if (k === '⏎') { onEnter?.(); return; }
    else input.value += k;
    input.focus();
  };
  for (const k of ['1', '2', '3', '4', '5', '6', '7', '8', '9', 'C', '0', '⌫']) {
    const b = h('button', { type: 'button', class: 'pad-key' + (k === 'C' || k === '⌫' ? ' pad-fn' : ''), tabIndex: -1, dataset: { key: k } }, k === 'C' ? t('pad.clear') : k);
    b.addEventListener('mousedown', (e) => e.preventDefault()); // keep the field focused
    b.addEventListener('click', () => press(k));
    pad.append(b);
  }
  return pad;
}

/** askPIN asks a manager for their PIN; null when cancelled. error is the last attempt's. */
function askPIN(reason, error) {
  return new Promise((resolve) => {
    const input = h('input', { id: 'mgr-pin', class: 'input-big', type: 'password', inputmode: 'numeric', maxLength: 12, autocomplete: 'off', autofocus: true });
    const body = h('div', { class: 'pin-body' }, h('p', { class: 'dlg-text' }, t('mgr.prompt', reason)),
      error ? h('p', { class: 'dlg-error', id: 'pin-error', role: 'alert' }, error.message) : null, input, pinPad(() => input));
    openDialog({
      id: 'pin-dialog', title: t('mgr.title'), body,
      actions: [
        { label: t('btn.cancel'), key: 'Esc' },
        { label: t('btn.ok'), primary: true, key: '⏎', onClick: (d) => d.close(input.value) },
      ],
      onClose: (v) => resolve(v || null),
    });
  });
}

/**
 * withManager runs fn(pin) without a PIN first; if the API says a manager
 * must approve, it asks for a manager PIN and tries again until it is
 * right or the cashier cancels.
 */
async function withManager(reason, fn) {
  try {
    return await fn('');
  } catch (e) {
    if (e.code !== 'needs_manager') throw e;
  }
  let last;
  for (;;) {
    const pin = await askPIN(reason, last);
    if (pin === null) throw cancelled();
    try {
      return await fn(pin);
    } catch (e) {
      if (e.code !== 'bad_pin') throw e;
      last = e;
      beep();
    }
  }
}

function pinArg(pin) {
  return pin ? pin : undefined;
}

// ---------------------------------------------------------------- views

function applyStrings() {
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  $('#scan').placeholder = t('scan.placeholder');
  document.title = t('app.title');
}

function show(view) {
  state.view = view;
  $('#login-view').hidden = view !== 'login';
  $('#sale-view').hidden = view !== 'sale';
  refocus();
}

// refocus puts the keyboard back where it belongs. force moves focus out
// and back: after a dialog closes, Chromium may report the field focused
// while it no longer receives typed text.
function refocus(force) {
  const top = topDialog();
  if (top) {
    if (force) {
      const f = top.el.querySelector('input:not([hidden])') || top.el.querySelector('button[type=submit]');
      f?.blur();
      f?.focus();
    }
    return;
  }
  if (state.view === 'sale') {
    const scan = $('#scan');
    if (force && document.activeElement === scan) scan.blur();
    scan.focus();
  }
  else if (state.view === 'login') {
    const u = $('#login-user');
    (u.value ? $('#login-pin') : u).focus();
  }
}

function toLogin() {
  for (const d of [...state.dialogs]) d.close(null);
  state.user = null;
  state.csrf = '';
  state.sale = null;
  state.es?.close();
  state.es = null;
  $('#st-user').textContent = '';
  $('#login-pin').value = '';
  show('login');
}

async function onSession(si) {
  state.user = si.user;
  state.csrf = si.csrf;
  $('#st-user').textContent = si.user.name;
  $('#st-user').title = `${si.user.id} · ${si.user.role}`;
  show('sale');
  connectEvents();
  refreshStatus();
  refreshShift();
  try {
    const open = await api('GET', '/api/sales/open');
    if (open.sales.length) setSale(open.sales[0]);
    else setSale(null);
  } catch (e) {
    showError(e);
  }
}

// ---------------------------------------------------------------- login

let loginField;
function setupLogin() {
  const user = $('#login-user');
  const pin = $('#login-pin');
  loginField = user;
  for (const f of [user, pin]) f.addEventListener('focus', () => { loginField = f; });
  const submit = () => $('#login-form').requestSubmit();
  $('#login-pad').replaceWith(Object.assign(pinPad(() => loginField, submit), { id: 'login-pad' }));
  user.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      pin.focus();
    }
  });
  $('#login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!user.value) { user.focus(); return; }
    if (!pin.value) { pin.focus(); return; }
    try {
      const si = await api('POST', '/api/login', { user: user.value.trim(), pin: pin.value });
      pin.value = '';
      await onSession(si);
    } catch (err) {
      pin.value = '';
      showError(err);
      pin.focus();
    }
  });
}

// ---------------------------------------------------------------- sale

function liveLines(s) {
  return (s?.lines || []).filter((l) => !l.voided);
}

function setSale(s) {
  state.sale = s;
  const live = liveLines(s);
  if (!live.some((l) => l.line === state.selected)) state.selected = live.length ? live[live.length - 1].line : 0;
  render();
  for (const d of state.dialogs) d.onSale?.(s);
}

async function ensureSale() {
  if (state.sale && state.sale.state === 'open') return state.sale;
  const r = await api('POST', '/api/sales');
  setSale(r.sale);
  return r.sale;
}

function render() {
  const s = state.sale;
  const tbody = $('#lines tbody');
  const rows = [];
  for (const l of s ? s.lines : []) {
    const note = l.override_by ? h('span', { class: 'tag' }, t('cart.override', l.override_by)) : null;
    const tr = h('tr', { class: (l.voided ? 'voided ' : '') + (l.line === state.selected ? 'selected' : ''), dataset: { line: l.line, sku: l.sku } },
      h('td', { class: 'c-no' }, l.line),
      h('td', { class: 'c-item' }, h('div', { class: 'name' }, l.name), h('div', { class: 'sub' }, l.sku, note ? ' · ' : '', note)),
      h('td', { class: 'c-qty' }, qty(l.qty, l.unit)),
      h('td', { class: 'c-price' }, money(l.unit_price) + (l.unit === 'kg' ? '/kg' : '')),
      h('td', { class: 'c-disc' }, l.discount ? '−' + money(l.discount) : ''),
      h('td', { class: 'c-total' }, l.voided ? t('cart.voided') : money(l.total)));
    if (!l.voided) tr.addEventListener('click', () => { state.selected = l.line; render(); refocus(); });
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);
  $('#cart-empty').hidden = rows.length > 0;
  $('#lines tr.selected')?.scrollIntoView({ block: 'nearest' });

  const live = liveLines(s);
  let items = 0;
  for (const l of live) items += l.unit === 'kg' ? 1 : l.qty / 1000;
  $('#tot-items').textContent = items;
  $('#tot-subtotal').textContent = money(s?.subtotal || 0);
  $('#tot-discount').textContent = s?.discount ? '−' + money(s.discount) : money(0);
  $('#tot-tax').textContent = money(s?.tax || 0);
  $('#tot-total').textContent = money(s?.total || 0);
  $('#key-pay-total').textContent = money(s?.total || 0);
  const paid = s && s.tenders && s.tenders.length > 0;
  $('#tot-paid-row').hidden = !paid;
  if (paid) {
    $('#tot-paid').textContent = money(s.paid);
    $('#tot-due').textContent = money(s.due);
  }

  const meta = [];
  if (s?.member) {
    meta.push(h('button', { type: 'button', class: 'chip chip-member', title: t('member.remove'), onclick: () => enqueue(detachMember) }, t('cart.member', s.member), ' ×'));
  }
  for (const c of s?.coupons || []) {
    const label = c.problem ? t('cart.coupon.problem', c.problem) : t('cart.coupon', money(c.amount));
    meta.push(h('button', { type: 'button', class: 'chip ' + (c.problem ? 'chip-bad' : 'chip-coupon'), onclick: () => enqueue(() => removeCoupon(c.coupon_id)) }, label, ' ×'));
  }
  if (s?.sale_discount?.kind) meta.push(h('span', { class: 'chip' }, t('cart.salediscount')));
  $('#sale-meta').replaceChildren(...meta);
}

function selectedLine() {
  return state.sale?.lines.find((l) => l.line === state.selected && !l.voided);
}

function moveSelection(delta) {
  const live = liveLines(state.sale);
  if (!live.length) return;
  let i = live.findIndex((l) => l.line === state.selected);
  i = Math.min(live.length - 1, Math.max(0, (i < 0 ? live.length - 1 : i) + delta));
  state.selected = live[i].line;
  render();
}

function setMult(n) {
  state.mult = Math.max(1, Math.min(999, n));
  const chip = $('#scan-mult');
  chip.hidden = state.mult === 1;
  chip.textContent = t('scan.mult', state.mult);
}

/** onScanned takes a code from the wedge or the serial scanner. */
function onScanned(code, source) {
  if (state.view !== 'sale' || !state.user) return;
  const top = topDialog();
  if (top?.onScan && top.onScan(code, source) !== false) return;
  enqueue(() => scanCode(code, source));
}

async function scanCode(code, source) {
  const before = state.sale && state.sale.state === 'open' ? state.sale.lines.map((l) => l.qty) : [];
  const sale = await ensureSale();
  let r;
  try {
    r = await withManager(t('key.coupon'), (pin) => api('POST', `/api/sales/${sale.id}/scan`, { code, source, manager_pin: pinArg(pin) }));
  } catch (e) {
    if (source === 'keyed' && (e.code === 'unknown_code' || e.code === 'malformed_barcode')) {
      run(() => pickProduct(code, e)); // a dialog: outside the queue
      return;
    }
    throw e;
  }
  const shown = r.kind === 'coupon' ? t('key.coupon') : r.kind === 'member' ? t('member.title') : code.length > 24 ? code.slice(0, 24) + '…' : code;
  $('#last-scan').textContent = t('scan.last.' + source, shown);
  if (r.kind === 'member') {
    setSale(r.sale);
    toast(t('member.attached') + ' · ' + r.sale.member, 'ok');
    return;
  }
  if (r.kind === 'coupon') {
    setSale(r.sale);
    const c = r.sale.coupons[r.sale.coupons.length - 1];
    toast(t('scan.coupon', money(c?.amount || 0)), 'ok');
    return;
  }
  const changed = r.sale.lines.find((l, i) => i >= before.length || l.qty !== before[i]);
  if (changed) state.selected = changed.line;
  setSale(r.sale);
  if (state.mult > 1 && changed && changed.unit === 'each') {
    const n = state.mult;
    setMult(1);
    const r2 = await api('PATCH', `/api/sales/${r.sale.id}/lines/${changed.line}`, { qty: changed.qty + (n - 1) * 1000 });
    setSale(r2.sale);
  }
}

/** handleKeyed is Enter in the scan field after typing by hand. */
function handleKeyed(text) {
  let v = text.trim();
  if (!v) return;
  let m = v.match(/^(\d{1,3})\*$/);
  if (m) {
    setMult(Number(m[1]));
    return;
  }
  m = v.match(/^(\d{1,3})\*(.+)$/);
  if (m) {
    setMult(Number(m[1]));
    v = m[2];
  }
  enqueue(() => scanCode(v, 'keyed'));
}

async function pickProduct(q, orig) {
  const r = await api('GET', '/api/products?limit=9&q=' + encodeURIComponent(q));
  const ps = r.products.filter((p) => p.active);
  if (!ps.length) {
    showError(orig);
    return;
  }
  const p = await new Promise((resolve) => {
    const list = h('div', { class: 'pick-list' });
    const d = openDialog({
      id: 'pick-dialog', title: t('pick.title'), body: list,
      onKey: (e) => {
        const n = Number(e.key);
        if (n >= 1 && n <= ps.length) { d.close(ps[n - 1]); return true; }
        return false;
      },
      actions: [{ label: t('btn.cancel'), key: 'Esc' }, { label: t('btn.ok'), primary: true, key: '⏎', onClick: () => d.close(ps[0]) }],
      onClose: resolve,
    });
    ps.forEach((p, i) => list.append(h('button', { type: 'button', class: 'pick-item', onclick: () => d.close(p) },
      h('kbd', {}, i + 1), h('span', { class: 'name' }, p.name), h('span', { class: 'sub' }, p.sku), h('b', {}, money(p.price) + (p.unit === 'kg' ? '/kg' : '')))));
  });
  if (!p) return;
  let q3 = state.mult * 1000;
  if (p.unit === 'kg') {
    const w = await prompt({ title: p.name, label: t('qty.kg'), inputmode: 'decimal' });
    if (w === null) return;
    q3 = parseDecimal(w, 3);
    if (!q3) throw new ApiError(0, 'bad_quantity', t('qty.kg') + ': ' + w);
  }
  setMult(1);
  const sale = await serial(ensureSale);
  const r2 = await api('POST', `/api/sales/${sale.id}/items`, { sku: p.sku, qty: q3 });
  state.selected = r2.sale.lines[r2.sale.lines.length - 1].line;
  setSale(r2.sale);
}

async function detachMember() {
  const r = await api('PUT', `/api/sales/${state.sale.id}/member`, { member: '' });
  setSale(r.sale);
}

async function removeCoupon(id) {
  const r = await api('DELETE', `/api/sales/${state.sale.id}/coupons/${encodeURIComponent(id)}`);
  setSale(r.sale);
}

// ---------------------------------------------------------------- actions

const actions = {
  pay: () => openPay(),
  menu: () => openMenu(),
  async qty() {
    const l = selectedLine();
    if (!l) return;
    const kg = l.unit === 'kg';
    const v = await prompt({ id: 'qty-dialog', title: `${t('qty.title')} · ${l.name}`, label: kg ? t('qty.kg') : t('qty.each'),
      value: kg ? qty(l.qty, 'kg').replace(' kg', '') : String(l.qty / 1000), inputmode: kg ? 'decimal' : 'numeric' });
    if (v === null) return;
    const q3 = kg ? parseDecimal(v, 3) : (/^\d{1,4}$/.test(v.trim()) ? Number(v.trim()) * 1000 : null);
    if (!q3) throw new ApiError(0, 'bad_quantity', t('qty.title') + ': ' + v);
    const r = await api('PATCH', `/api/sales/${state.sale.id}/lines/${l.line}`, { qty: q3 });
    setSale(r.sale);
  },
  async void() {
    const l = selectedLine();
    if (!l) return;
    if (!(await confirmDlg(t('void.title'), `${l.line}. ${l.name} · ${qty(l.qty, l.unit)} · ${money(l.total)}`))) return;
    const r = await api('DELETE', `/api/sales/${state.sale.id}/lines/${l.line}`);
    setSale(r.sale);
  },
  async discount() {
    if (!liveLines(state.sale).length) return;
    const l = selectedLine();
    let scope = l ? 'line' : 'sale';
    let kind = 'percent';
    const input = h('input', { id: 'disc-value', class: 'input-big', inputmode: 'decimal', autocomplete: 'off', autofocus: true });
    const seg = (opts, get, set) => {
      const box = h('div', { class: 'seg' });
      const draw = () => box.replaceChildren(...opts.map(([v, label]) => h('button', { type: 'button', class: 'seg-btn' + (get() === v ? ' on' : ''), onclick: () => { set(v); draw(); input.focus(); } }, label)));
      draw();
      return box;
    };
    const body = h('div', {},
      seg(l ? [['line', t('disc.line') + ': ' + l.name], ['sale', t('disc.sale')]] : [['sale', t('disc.sale')]], () => scope, (v) => { scope = v; }),
      seg([['percent', t('disc.percent')], ['amount', t('disc.amount')]], () => kind, (v) => { kind = v; }),
      h('label', { class: 'field' }, h('span', {}, t('disc.value')), input));
    const val = await new Promise((resolve) => openDialog({
      id: 'discount-dialog', title: t('disc.title'), body,
      actions: [{ label: t('btn.cancel'), key: 'Esc' }, { label: t('btn.ok'), primary: true, key: '⏎', onClick: (d) => d.close(input.value) }],
      onClose: (v) => resolve(v ?? null),
    }));
    if (val === null) return;
    const n = kind === 'percent' ? parseDecimal(val || '0', 2) : parseMoney(val || '0');
    if (n === null) throw new ApiError(0, 'bad_amount', t('disc.value') + ': ' + val);
    const d = n === 0 ? { kind: '', value: 0 } : { kind, value: n };
    const path = scope === 'line' ? `/api/sales/${state.sale.id}/lines/${l.line}/discount` : `/api/sales/${state.sale.id}/discount`;
    const r = await api('PUT', path, d);
    setSale(r.sale);
  },
  async coupon() {
    const code = await prompt({ id: 'coupon-dialog', title: t('coupon.title'), label: t('coupon.prompt'), acceptsScan: true });
    if (!code || !code.trim()) return;
    const sale = await serial(ensureSale);
    const r = await withManager(t('key.coupon'), (pin) => api('POST', `/api/sales/${sale.id}/coupons`, { token: code.trim(), manager_pin: pinArg(pin) }));
    setSale(r.sale);
    const c = r.sale.coupons[r.sale.coupons.length - 1];
    toast(t('scan.coupon', money(c?.amount || 0)), 'ok');
  },
  async member() {
    const q = await prompt({ id: 'member-dialog', title: t('member.title'), label: t('member.prompt'), acceptsScan: true, inputmode: 'text' });
    if (!q || !q.trim()) return;
    const sale = await serial(ensureSale);
    let id = q.trim();
    try {
      const m = (await api('GET', '/api/members/' + encodeURIComponent(id))).member;
      id = m.id;
      toast(t('member.found', m.name || m.id, m.points), 'ok');
    } catch (e) {
      if (e.code !== 'not_found') throw e;
      if (!(await confirmDlg(t('member.title'), t('member.unknown', id)))) return;
    }
    const r = await api('PUT', `/api/sales/${sale.id}/member`, { member: id });
    setSale(r.sale);
  },
  async suspend() {
    if (!liveLines(state.sale).length) {
      toast(t('suspend.empty'), 'info');
      return;
    }
    await api('POST', `/api/sales/${state.sale.id}/suspend`);
    setSale(null);
    toast(t('suspend.done'), 'ok');
  },
  async resume() {
    if (liveLines(state.sale).length) {
      toast(t('resume.busy'), 'error');
      return;
    }
    const r = await api('GET', '/api/sales/suspended');
    if (!r.sales.length) {
      toast(t('resume.none'), 'info');
      return;
    }
    const s = await new Promise((resolve) => {
      const list = h('div', { class: 'pick-list' });
      const d = openDialog({
        id: 'resume-dialog', title: t('resume.title'), body: list,
        onKey: (e) => {
          const n = Number(e.key);
          if (n >= 1 && n <= r.sales.length) { d.close(r.sales[n - 1]); return true; }
          return false;
        },
        actions: [{ label: t('btn.cancel'), key: 'Esc' }, { label: t('btn.ok'), primary: true, key: '⏎', onClick: () => d.close(r.sales[0]) }],
        onClose: resolve,
      });
      r.sales.slice(0, 9).forEach((s, i) => list.append(h('button', { type: 'button', class: 'pick-item', onclick: () => d.close(s) },
        h('kbd', {}, i + 1), h('span', { class: 'name' }, new Date(s.created_at).toLocaleTimeString()),
        h('span', { class: 'sub' }, `${liveLines(s).length} · ${s.cashier}`), h('b', {}, money(s.total)))));
    });
    if (!s) return;
    if (state.sale) await api('POST', `/api/sales/${state.sale.id}/cancel`);
    const r2 = await api('POST', `/api/sales/${s.id}/resume`);
    setSale(r2.sale);
  },
  async price() {
    const l = selectedLine();
    if (!l) return;
    const v = await prompt({ id: 'price-dialog', title: `${t('price.title')} · ${l.name}`, label: t('price.new'), value: moneyPlain(l.unit_price), inputmode: 'decimal' });
    if (v === null) return;
    const p = parseMoney(v);
    if (p === null) throw new ApiError(0, 'bad_price', t('price.new') + ': ' + v);
    const r = await withManager(t('price.title'), (pin) => api('PUT', `/api/sales/${state.sale.id}/lines/${l.line}/price`, { price: p, manager_pin: pinArg(pin) }));
    setSale(r.sale);
  },
};

function act(name) {
  if (!state.user || topDialog()) return;
  const fn = actions[name];
  if (fn) run(fn);
}

// ---------------------------------------------------------------- payment

function quickAmounts(due) {
  const p = 10 ** state.cfg.minor_digits;
  const out = [];
  for (const step of [1, 5, 10, 20, 50, 100]) {
    const v = Math.ceil(due / (step * p)) * step * p;
    if (v > due && !out.includes(v)) out.push(v);
  }
  return out.slice(0, 4);
}

function openPay() {
  const s = state.sale;
  if (!s || !liveLines(s).length) {
    toast(t('pay.nothing'), 'info');
    return;
  }
  let method = 'cash';
  const amount = h('input', { id: 'pay-amount', class: 'input-big', inputmode: 'decimal', autocomplete: 'off', autofocus: true });
  const ref = h('input', { id: 'pay-ref', class: 'input-big', autocomplete: 'off' });
  const refField = h('label', { class: 'field' }, h('span', {}, t('pay.ref')), ref);
  const amountLabel = h('span', {}, t('pay.amount'));
  const pointsNote = h('p', { class: 'note', id: 'pay-points-note' });
  let member = null; // the attached member's points, read when points are chosen
  const methods = h('div', { class: 'seg seg-pay' });
  const quick = h('div', { class: 'quick' });
  const tenders = h('ul', { class: 'tenders', id: 'pay-tenders' });
  const figures = h('div', { class: 'pay-figures' });
  const complete = h('button', { type: 'button', class: 'btn btn-go', id: 'pay-complete' }, t('pay.complete'));
  let busy = false;
  let lastDue = -1;

  const draw = () => {
    const s = state.sale;
    if (!s) return;
    figures.replaceChildren(
      h('div', {}, h('span', {}, t('tot.total')), h('b', { id: 'pay-total' }, money(s.total))),
      h('div', {}, h('span', {}, t('tot.paid')), h('b', {}, money(s.paid))),
      s.change_due > 0
        ? h('div', { class: 'pay-change' }, h('span', {}, t('tot.change')), h('b', { id: 'pay-change' }, money(s.change_due)))
        : h('div', { class: 'pay-due' }, h('span', {}, t('tot.due')), h('b', { id: 'pay-due' }, money(s.due))));
    const ms = [['cash', 'F2', t('pay.cash')], ['card', 'F3', t('pay.card')], ['wallet', 'F4', t('pay.wallet')]];
    if (s.member) ms.push(['points', 'F5', t('pay.points')]);
    methods.replaceChildren(...ms.map(([m, k, label]) =>
      h('button', { type: 'button', class: 'seg-btn' + (m === method ? ' on' : ''), dataset: { method: m }, onclick: () => setMethod(m) }, h('kbd', {}, k), label)));
    refField.hidden = method === 'cash' || method === 'points';
    quick.hidden = method !== 'cash' || s.due === 0;
    amountLabel.textContent = method === 'points' ? t('pay.points.amount') : t('pay.amount');
    pointsNote.hidden = method !== 'points';
    quick.replaceChildren(
      h('button', { type: 'button', class: 'btn btn-quick', dataset: { amount: s.due }, onclick: () => pay(s.due) }, t('pay.exact')),
      ...quickAmounts(s.due).map((v) => h('button', { type: 'button', class: 'btn btn-quick', dataset: { amount: v }, onclick: () => pay(v) }, money(v))));
    tenders.replaceChildren(...(s.tenders || []).map((tn) => h('li', {}, h('span', {}, t('pay.' + tn.kind) + (tn.ref ? ' · ' + tn.ref : '')), h('b', {}, money(tn.amount)))));
    complete.disabled = s.due > 0;
    if (s.due !== lastDue && method !== 'points') {
      // A payment changed what is due: offer the rest.
      lastDue = s.due;
      amount.value = s.due > 0 ? moneyPlain(s.due) : '';
      if (document.activeElement === amount) amount.select();
    }
  };
  const setMethod = async (m) => {
    if (m === 'points') {
      if (!state.sale?.member) return;
      try {
        member = (await api('GET', '/api/members/' + encodeURIComponent(state.sale.member))).member;
      } catch (e) {
        showError(e);
        return;
      }
      const most = Math.min(member.spendable, Math.floor(state.sale.due / member.point_value));
      pointsNote.textContent = t('pay.points.note', member.spendable, money(member.point_value));
      amount.value = most > 0 ? String(most) : '';
      lastDue = -1;
    } else if (method === 'points') {
      lastDue = -1;
    }
    method = m;
    draw();
    const f = m === 'cash' || m === 'points' ? amount : ref;
    f.focus();
    f.select();
  };
  const pay = async (v) => {
    if (busy) return;
    const s = state.sale;
    if (v === null || v <= 0) {
      showError(new ApiError(0, 'bad_amount', t('pay.amount') + ': ' + amount.value));
      return;
    }
    busy = true;
    try {
      const r = method === 'points'
        ? await api('POST', `/api/sales/${s.id}/points`, { points: v })
        : await api('POST', `/api/sales/${s.id}/tenders`, { kind: method, amount: v, ref: method === 'cash' ? undefined : ref.value.trim() });
      if (method === 'points') {
        method = 'cash';
        lastDue = -1;
      }
      ref.value = '';
      setSale(r.sale);
      if (r.sale.due === 0) await finish();
    } catch (e) {
      showError(e);
    } finally {
      busy = false;
    }
  };
  const finish = async () => {
    const s = state.sale;
    const key = (state.keys[s.id] ??= uuid());
    const r = await api('POST', `/api/sales/${s.id}/complete`, undefined, { 'Idempotency-Key': key });
    delete state.keys[s.id];
    d.close('done');
    state.lastSale = r.sale;
    setSale(null);
    openReceipt(r.sale, r.drawer);
  };
  complete.addEventListener('click', () => enqueue(finish));
  const clear = h('button', { type: 'button', class: 'btn btn-plain', id: 'pay-clear', onclick: () => enqueue(async () => {
    const r = await api('DELETE', `/api/sales/${state.sale.id}/tenders`);
    setSale(r.sale);
  }) }, t('pay.clear'));
  const body = h('div', { class: 'pay' },
    figures,
    methods,
    h('label', { class: 'field' }, amountLabel, amount),
    pointsNote,
    refField,
    quick,
    tenders,
    h('div', { class: 'pay-row' }, clear, complete),
    h('p', { class: 'note' }, t('pay.keys')));
  const d = openDialog({
    id: 'pay-dialog', title: t('pay.title'), body, wide: true,
    onKey: (e) => {
      const m = { F2: 'cash', F3: 'card', F4: 'wallet', F5: 'points' }[e.key];
      if (m) { setMethod(m); return true; }
      return false;
    },
    actions: [
      { label: t('btn.close'), key: 'Esc' },
      { label: t('pay.add'), primary: true, key: '⏎', onClick: () => pay(method === 'points' ? (/^\d{1,12}$/.test(amount.value.trim()) ? Number(amount.value.trim()) : null) : parseMoney(amount.value)) },
    ],
  });
  d.onSale = (s) => { if (s) draw(); };
  draw();
}

// ---------------------------------------------------------------- receipt

function openReceipt(sale, drawerMsg) {
  const stateEl = h('span', { id: 'print-state', class: 'pill', dataset: { state: 'queued' } }, t('print.queued'));
  const preview = h('pre', { id: 'receipt-preview', class: 'receipt' });
  const reprint = h('button', { type: 'button', class: 'btn btn-plain', id: 'reprint', onclick: () => enqueue(async () => {
    await api('POST', `/api/sales/${sale.id}/reprint`);
    toast(t('print.reprinted'), 'ok');
    poll();
  }) }, t('done.reprint'));
  const body = h('div', { class: 'done' },
    h('div', { class: 'done-receipt', id: 'done-receipt' }, t('done.receipt', sale.receipt)),
    sale.change_due > 0 ? h('div', { class: 'done-change' }, h('span', {}, t('done.change')), h('b', { id: 'done-change' }, money(sale.change_due))) : null,
    h('div', { class: 'print-row' }, stateEl, reprint),
    preview);
  const d = openDialog({
    id: 'receipt-dialog', title: t('done.title'), body, wide: true,
    // The next customer's first scan closes the receipt and starts a sale.
    onScan: () => { d.close(); return false; },
    actions: [{ label: t('done.new'), primary: true, key: '⏎', onClick: (dd) => dd.close() }],
  });
  if (drawerMsg) toast(drawerMsg, 'error');
  api('GET', `/api/sales/${sale.id}/receipt`).then((r) => { preview.textContent = r.text; }).catch(() => {});
  let timer;
  const poll = async () => {
    clearTimeout(timer);
    if (d.closed) return;
    let job;
    try {
      job = (await api('GET', `/api/print-jobs?limit=1&sale_id=${encodeURIComponent(sale.id)}`)).jobs[0];
    } catch (e) { /* keep the last state */ }
    const st = showPrintState(stateEl, job);
    reprint.classList.toggle('btn-attn', st === 'paper' || st === 'failed');
    if (st !== 'printed') timer = setTimeout(poll, 1000);
  };
  d.refreshPrint = poll;
  poll();
}

// showPrintState shows a print job's state (and the printer's trouble
// while it waits) in el, and returns it: queued, printed, failed, paper
// or offline.
function showPrintState(el, job) {
  const printer = (state.status?.devices || []).find((x) => x.kind === 'printer');
  let st = 'queued';
  let text = t('print.queued');
  if (job?.state === 'printed') { st = 'printed'; text = t('print.printed'); }
  else if (job?.state === 'failed') { st = 'failed'; text = t('print.failed') + (job.last_error ? ': ' + job.last_error : ''); }
  else if (/paper/i.test(printer?.reason || '') || /paper/i.test(job?.last_error || '')) { st = 'paper'; text = t('print.paper'); }
  else if (printer && (printer.state === 'error' || printer.state === 'closed')) { st = 'offline'; text = t('print.offline'); }
  el.dataset.state = st;
  el.textContent = text;
  el.className = 'pill ' + (st === 'printed' ? 'pill-ok' : st === 'queued' ? 'pill-info' : 'pill-bad');
  return st;
}

// openSlip shows a recorded return: its number, the refund (owed by the
// online channel for an online order), how its slip prints, and the slip
// as the printer lays it out. The slip's print job has the return's id.
function openSlip(ret, drawerMsg) {
  const stateEl = h('span', { id: 'slip-print-state', class: 'pill pill-info', dataset: { state: 'queued' } }, t('print.queued'));
  const preview = h('pre', { id: 'slip-preview', class: 'receipt' });
  const online = ret.channel === 'online';
  const body = h('div', { class: 'done' },
    h('div', { class: 'done-receipt', id: 'slip-number' }, t('slip.number', ret.receipt)),
    h('div', { class: 'done-change', id: 'slip-refund' }, h('span', {}, online ? t('oret.owed') : t('ret.total')), h('b', {}, money(ret.total))),
    online ? h('p', { class: 'note' }, t('oret.nodrawer')) : null,
    h('div', { class: 'print-row' }, stateEl),
    preview);
  const d = openDialog({
    id: 'slip-dialog', title: t('slip.title'), body, wide: true,
    onScan: () => { d.close(); return false; }, // the next customer
    actions: [{ label: t('btn.close'), primary: true, key: '⏎', onClick: (dd) => dd.close() }],
  });
  if (drawerMsg) toast(drawerMsg, 'error');
  api('GET', `/api/print-jobs/${encodeURIComponent(ret.id)}/text`).then((r) => { preview.textContent = r.text; }).catch(() => {});
  let timer;
  const poll = async () => {
    clearTimeout(timer);
    if (d.closed) return;
    let job;
    try {
      job = (await api('GET', `/api/print-jobs/${encodeURIComponent(ret.id)}`)).job;
    } catch (e) { /* keep the last state */ }
    if (showPrintState(stateEl, job) !== 'printed') timer = setTimeout(poll, 1000);
  };
  d.refreshPrint = poll;
  poll();
}

// ---------------------------------------------------------------- menu

const menuItems = [
  ['returns', 'menu.returns'],
  ['onlinereturn', 'menu.onlinereturn'],
  ['voidsale', 'menu.voidsale'],
  ['reprint', 'menu.reprint'],
  ['drawer', 'menu.drawer'],
  ['cash', 'menu.cash'],
  ['shift', 'menu.shift'],
  ['x', 'menu.x'],
  ['z', 'menu.z'],
  ['pickups', 'menu.pickups'],
  ['alerts', 'menu.alerts'],
  ['stock', 'menu.stock'],
  ['cancel', 'menu.cancel'],
  ['logout', 'menu.logout'],
];

function openMenu() {
  const list = h('div', { class: 'menu-grid' });
  const keys = '1234567890-=[';
  const d = openDialog({
    id: 'menu-dialog', title: t('menu.title'), body: list, wide: true,
    onKey: (e) => {
      const i = keys.indexOf(e.key);
      if (i >= 0 && i < menuItems.length) { pick(menuItems[i][0]); return true; }
      return false;
    },
    actions: [{ label: t('btn.close'), key: 'Esc' }],
  });
  const pick = (id) => {
    d.close();
    run(menuActions[id]);
  };
  menuItems.forEach(([id, key], i) => list.append(h('button', { type: 'button', class: 'menu-item', dataset: { menu: id }, onclick: () => pick(id) }, h('kbd', {}, keys[i]), t(key))));
  list.querySelector('button').focus();
}

async function askReceipt(title) {
  const r = await prompt({ id: 'receipt-number-dialog', title, label: t('receipt.prompt'), acceptsScan: true, value: state.lastSale?.receipt || '' });
  if (!r || !r.trim()) return null;
  return (await api('GET', '/api/receipts/' + encodeURIComponent(r.trim()))).sale;
}

function mulDivHalfUp(a, b, c) {
  return Math.floor((a * b + Math.floor(c / 2)) / c);
}

// refundOf is what the ledger refunds for returning q of line l (the last
// part gets what is left, so the parts add up to what was paid).
function refundOf(l, q) {
  const returned = l.returned_qty || 0;
  if (q === l.qty - returned) return l.total - mulDivHalfUp(l.total, returned, l.qty);
  return mulDivHalfUp(l.total, q, l.qty);
}

const menuActions = {
  async returns() {
    const sale = await askReceipt(t('ret.title'));
    if (!sale) return;
    const inputs = [];
    let kind = 'cash';
    const total = h('b', { id: 'ret-total' }, money(0));
    const ref = h('input', { id: 'ret-ref', class: 'input', autocomplete: 'off', placeholder: t('pay.ref') });
    const compute = () => {
      let sum = 0;
      const lines = [];
      for (const { l, input } of inputs) {
        const q = l.unit === 'kg' ? parseDecimal(input.value || '0', 3) : (/^\d*$/.test(input.value.trim()) ? Number(input.value || 0) * 1000 : null);
        if (q === null || q <= 0) continue;
        lines.push({ line: l.line, qty: q });
        sum += refundOf(l, Math.min(q, l.qty - (l.returned_qty || 0)));
      }
      total.textContent = money(sum);
      return { lines, sum };
    };
    const rows = sale.lines.map((l) => {
      const input = h('input', { class: 'input input-qty', inputmode: l.unit === 'kg' ? 'decimal' : 'numeric', value: '', dataset: { line: l.line }, oninput: compute });
      inputs.push({ l, input });
      return h('tr', {}, h('td', {}, l.line), h('td', {}, l.name), h('td', {}, t('ret.sold', qty(l.qty, l.unit))),
        h('td', {}, l.returned_qty ? t('ret.returned', qty(l.returned_qty, l.unit)) : ''), h('td', {}, money(l.total)), h('td', {}, input));
    });
    const seg = h('div', { class: 'seg' });
    const drawSeg = () => seg.replaceChildren(...['cash', 'card', 'wallet'].map((k) => h('button', { type: 'button', class: 'seg-btn' + (k === kind ? ' on' : ''), onclick: () => { kind = k; drawSeg(); ref.hidden = k === 'cash'; } }, t('pay.' + k))));
    drawSeg();
    ref.hidden = true;
    const body = h('div', {}, h('p', { class: 'dlg-text' }, t('done.receipt', sale.receipt)),
      h('table', { class: 'mini' }, h('tbody', {}, rows)),
      h('div', { class: 'field' }, h('span', {}, t('ret.refund')), seg, ref),
      h('p', { class: 'ret-total' }, t('ret.total'), ' ', total));
    const ok = await new Promise((resolve) => openDialog({
      id: 'return-dialog', title: t('ret.title'), body, wide: true,
      actions: [{ label: t('btn.cancel'), key: 'Esc' }, { label: t('btn.confirm'), primary: true, key: '⏎', onClick: (d) => d.close(true) }],
      onClose: resolve,
    }));
    if (!ok) return;
    const { lines, sum } = compute();
    if (!lines.length) throw new ApiError(0, 'invalid', t('ret.none'));
    // Of a sale paid partly with points, that part comes back as points:
    // the ledger says what is left to refund in money.
    let amount = sum;
    if ((sale.tenders || []).some((x) => x.kind === 'points')) amount = (await api('POST', '/api/returns/quote', { receipt: sale.receipt, lines })).refund;
    const refunds = amount > 0 ? [{ kind, amount, ref: kind === 'cash' ? undefined : ref.value.trim() }] : [];
    const r = await withManager(t('ret.title'), (pin) => api('POST', '/api/returns', { receipt: sale.receipt, lines, refunds, manager_pin: pinArg(pin) }));
    toast(t('ret.done', r.return.receipt, money(r.return.total)), 'ok');
    openSlip(r.return, r.drawer);
  },
  onlinereturn: () => onlineReturn(),
  async voidsale() {
    const sale = await askReceipt(t('voidsale.title'));
    if (!sale) return;
    const reason = await prompt({ id: 'void-reason-dialog', title: `${t('voidsale.title')} · ${sale.receipt} · ${money(sale.total)}`, label: t('voidsale.reason') });
    if (reason === null) return;
    const r = await withManager(t('voidsale.title'), (pin) => api('POST', `/api/sales/${sale.id}/void`, { reason, manager_pin: pinArg(pin) }));
    toast(t('voidsale.done', r.sale.receipt), 'ok');
  },
  async reprint() {
    if (!state.lastSale) return;
    await api('POST', `/api/sales/${state.lastSale.id}/reprint`);
    toast(t('print.reprinted'), 'ok');
  },
  async drawer() {
    const reason = await prompt({ id: 'drawer-dialog', title: t('menu.drawer'), label: t('drawer.reason') });
    if (reason === null) return;
    const r = await withManager(t('menu.drawer'), (pin) => api('POST', '/api/drawer/open', { reason, manager_pin: pinArg(pin) }));
    if (r.opened) toast(t('drawer.done'), 'ok');
    else toast(r.drawer, 'error');
  },
  async stock() {
    // Goods in (delivery, transfer in) by any cashier; counts, write-offs
    // and corrections ask for a manager (the API says which).
    const reasons = ['delivery', 'count', 'damage', 'transfer_in', 'transfer_out', 'correction'];
    let reason = 'delivery';
    const code = h('input', { id: 'stock-code', class: 'input-big', autocomplete: 'off', spellcheck: false, autofocus: true, dataset: { scan: 'accept' } });
    const amount = h('input', { id: 'stock-qty', class: 'input-big', inputmode: 'decimal', autocomplete: 'off' });
    const note = h('input', { id: 'stock-note', class: 'input-big', autocomplete: 'off' });
    // Enter after the product (typed, or a scan's suffix) goes on to the
    // quantity instead of submitting half a form.
    code.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); amount.focus(); }
    });
    const qtyLabel = h('span', {});
    const seg = h('div', { class: 'seg', id: 'stock-reason' });
    const drawSeg = () => {
      seg.replaceChildren(...reasons.map((k) => h('button', { type: 'button', class: 'seg-btn' + (k === reason ? ' on' : ''), dataset: { reason: k },
        onclick: () => { reason = k; drawSeg(); amount.focus(); } }, t('stock.r.' + k))));
      qtyLabel.textContent = t(reason === 'count' ? 'stock.qty.count' : reason === 'correction' ? 'stock.qty.signed' : 'stock.qty.move');
    };
    drawSeg();
    const ok = await new Promise((resolve) => openDialog({
      id: 'stock-dialog', title: t('stock.title'), wide: true,
      body: h('div', {}, h('label', { class: 'field' }, h('span', {}, t('stock.code')), code), seg,
        h('label', { class: 'field' }, qtyLabel, amount), h('label', { class: 'field' }, h('span', {}, t('stock.note')), note)),
      onScan: (c) => { code.value = c; amount.focus(); return true; },
      actions: [{ label: t('btn.cancel'), key: 'Esc' }, { label: t('btn.ok'), primary: true, key: '⏎', onClick: (d) => d.close(true) }],
      onClose: resolve,
    }));
    if (!ok) return;
    let text = amount.value.trim();
    let sign = ['damage', 'transfer_out'].includes(reason) ? -1 : 1;
    if (reason === 'correction' && /^[-+]/.test(text)) {
      sign = text[0] === '-' ? -1 : 1;
      text = text.slice(1);
    }
    const n = parseDecimal(text, 3); // pieces or kg, in thousandths
    if (n === null || (n === 0 && reason !== 'count')) throw new ApiError(0, 'bad_quantity', t('stock.badqty', amount.value));
    const req = { code: code.value.trim(), reason, note: note.value.trim() || undefined };
    if (reason === 'count') req.count = n;
    else req.delta = sign * n;
    const r = await withManager(t('stock.title'), (pin) => api('POST', '/api/inventory/adjust', { ...req, manager_pin: pinArg(pin) }));
    const s = r.stock;
    const moved = (s.delta < 0 ? '−' : '+') + qty(Math.abs(s.delta), s.unit);
    toast(t('stock.done', s.name, moved, qty(Math.max(s.on_hand, 0), s.unit) + (s.on_hand < 0 ? ' (' + t('stock.negative') + ')' : '')), 'ok');
  },
  async cash() {
    let kind = 'paid_in';
    const amount = h('input', { id: 'cash-amount', class: 'input-big', inputmode: 'decimal', autocomplete: 'off', autofocus: true });
    const reason = h('input', { id: 'cash-reason', class: 'input-big', autocomplete: 'off' });
    const seg = h('div', { class: 'seg' });
    const drawSeg = () => seg.replaceChildren(...[['paid_in', t('cash.in')], ['paid_out', t('cash.out')]].map(([k, label]) => h('button', { type: 'button', class: 'seg-btn' + (k === kind ? ' on' : ''), onclick: () => { kind = k; drawSeg(); amount.focus(); } }, label)));
    drawSeg();
    const ok = await new Promise((resolve) => openDialog({
      id: 'cash-dialog', title: t('cash.title'),
      body: h('div', {}, seg, h('label', { class: 'field' }, h('span', {}, t('pay.amount')), amount), h('label', { class: 'field' }, h('span', {}, t('cash.reason')), reason)),
      actions: [{ label: t('btn.cancel'), key: 'Esc' }, { label: t('btn.ok'), primary: true, key: '⏎', onClick: (d) => d.close(true) }],
      onClose: resolve,
    }));
    if (!ok) return;
    const v = parseMoney(amount.value);
    if (!v) throw new ApiError(0, 'bad_amount', t('pay.amount') + ': ' + amount.value);
    const r = await withManager(t('cash.out'), (pin) => api('POST', '/api/shift/cash', { kind, amount: v, reason: reason.value, manager_pin: pinArg(pin) }));
    toast(t('cash.done'), 'ok');
    if (!r.opened && r.drawer) toast(r.drawer, 'error');
  },
  async shift() {
    const cur = (await api('GET', '/api/shift')).shift;
    if (!cur) {
      const v = await prompt({ id: 'shift-dialog', title: t('shift.title'), label: t('shift.float'), note: t('shift.none'), inputmode: 'decimal', value: '' });
      if (v === null) return;
      const f = parseMoney(v || '0');
      if (f === null) throw new ApiError(0, 'bad_amount', t('shift.float') + ': ' + v);
      await api('POST', '/api/shift/open', { float: f });
      toast(t('shift.open'), 'ok');
      refreshShift();
      return;
    }
    const x = await api('GET', '/api/reports/x');
    const note = t('shift.opened', new Date(cur.opened_at).toLocaleTimeString(), cur.cashier, money(cur.float)) + ' · ' + t('shift.expected') + ' ' + money(x.cash_expected || 0);
    const v = await prompt({ id: 'shift-dialog', title: t('shift.close'), label: t('shift.counted'), note, inputmode: 'decimal' });
    if (v === null) return;
    const counted = parseMoney(v);
    if (counted === null) throw new ApiError(0, 'bad_amount', t('shift.counted') + ': ' + v);
    const r = await api('POST', '/api/shift/close', { counted });
    infoDlg('shift-result-dialog', t('shift.title'), h('p', { class: 'dlg-text' }, t('shift.closed', money(r.shift.counted), money(r.shift.expected), money(r.shift.over_short))));
    refreshShift();
  },
  async x() {
    showReport(await api('GET', '/api/reports/x'));
  },
  async z() {
    showReport(await withManager(t('menu.z'), (pin) => api('GET', '/api/reports/z', undefined, pin ? { 'X-Manager-PIN': pin } : {})));
  },
  async pickups() {
    const waiting = (await api('GET', '/api/pickups')).orders;
    const chosen = await new Promise((resolve) => {
      const input = h('input', { id: 'pickup-q', class: 'input-big', autocomplete: 'off', spellcheck: false, autofocus: true });
      input.dataset.scan = 'accept';
      const item = (o) => h('button', { type: 'button', class: 'pick-item', dataset: { order: o.id }, onclick: () => d.close(o) },
        h('span', { class: 'name' }, o.code), h('span', { class: 'sub' }, [o.customer, o.phone].filter(Boolean).join(' · ')),
        h('span', { class: 'sub' }, t('pick.items', o.lines.length)), h('b', {}, money(o.paid)));
      const list = h('div', { class: 'pick-list', id: 'pickup-list' }, waiting.length ? waiting.map(item) : h('p', { class: 'dlg-text' }, t('pick.empty')));
      const find = async () => {
        const q = input.value.trim();
        if (!q) return;
        try {
          const r = await api('GET', '/api/pickups/lookup?q=' + encodeURIComponent(q));
          if (r.orders.length === 1) d.close(r.orders[0]);
          else list.replaceChildren(...r.orders.map(item));
        } catch (e) {
          showError(e);
          input.select();
        }
      };
      const d = openDialog({
        id: 'pickups-dialog', title: t('pick.orders'), wide: true,
        body: h('div', {}, h('label', { class: 'field' }, h('span', {}, t('pick.lookup')), input), list),
        onScan: (code) => { input.value = code; find(); return true; },
        actions: [{ label: t('btn.close'), key: 'Esc' }, { label: t('pick.find'), primary: true, key: '⏎', onClick: () => find() }],
        onClose: resolve,
      });
    });
    if (!chosen) return;
    await handOver(chosen.id);
  },
  async alerts() {
    showAlerts();
  },
  async cancel() {
    if (!state.sale) return;
    if (!(await confirmDlg(t('menu.cancel'), t('cancel.confirm')))) return;
    await api('POST', `/api/sales/${state.sale.id}/cancel`);
    setSale(null);
    toast(t('cancel.done'), 'ok');
  },
  async logout() {
    await api('POST', '/api/logout');
    toLogin();
    toast(t('logout.done'), 'info');
  },
};

// handOver shows an online order's lines with what is left of each, lets
// the cashier hand over all or part (a substitute, a missing item) and
// records it.
async function handOver(id) {
  const o = (await api('GET', '/api/pickups/lookup?q=' + encodeURIComponent(id))).orders[0];
  const unitOf = (v) => (v % 1000 === 0 ? 'each' : 'kg');
  const rows = o.lines.map((l) => {
    const left = l.missing ? 0 : Math.max(l.qty - (l.handed || 0), 0);
    const now = h('input', { class: 'input input-qty', inputmode: 'decimal', value: left ? qty(left, unitOf(left)).replace(' kg', '') : '0', dataset: { now: l.sku }, disabled: !left });
    const sub = h('input', { class: 'input input-sku', autocomplete: 'off', placeholder: 'SKU', dataset: { sub: l.sku }, disabled: !left });
    const missing = h('input', { type: 'checkbox', dataset: { missing: l.sku }, disabled: !left });
    return { l, now, sub, missing, tr: h('tr', { dataset: { sku: l.sku } }, h('td', {}, l.sku), h('td', { class: 'num' }, qty(l.qty, unitOf(l.qty))),
      h('td', { class: 'num' }, qty(l.handed || 0, unitOf(l.handed || 0)) + (l.missing ? ' · ' + t('pick.col.missing') : '')),
      h('td', {}, now), h('td', {}, sub), h('td', {}, h('label', { class: 'check' }, missing, t('pick.col.missing')))) };
  });
  const body = h('div', {},
    h('p', { class: 'dlg-text' }, [o.customer, o.phone].filter(Boolean).join(' · '), ' · ', t('pick.paid', money(o.paid))),
    h('table', { class: 'mini', id: 'handover-table' },
      h('thead', {}, h('tr', {}, ['pick.col.item', 'pick.col.ordered', 'pick.col.handed', 'pick.col.now', 'pick.col.sub', 'pick.col.missing'].map((k) => h('th', {}, t(k))))),
      h('tbody', {}, rows.map((r) => r.tr))));
  const ok = await new Promise((resolve) => openDialog({
    id: 'handover-dialog', title: t('pick.handover', o.code), body, wide: true,
    actions: [{ label: t('btn.cancel'), key: 'Esc' }, { label: t('pick.give'), primary: true, key: '⏎', onClick: (d) => d.close(true) }],
    onClose: resolve,
  }));
  if (!ok) return;
  const lines = [];
  for (const r of rows) {
    if (r.now.disabled) continue;
    const handed = parseDecimal(r.now.value || '0', 3);
    if (handed === null) throw new ApiError(0, 'bad_quantity', `${r.l.sku}: ${r.now.value}`);
    if (handed > 0 || r.missing.checked) lines.push({ sku: r.l.sku, handed, substitute: r.sub.value.trim() || undefined, missing: r.missing.checked || undefined });
  }
  const res = await api('POST', `/api/pickups/${encodeURIComponent(o.id)}/handover`, { lines });
  toast(t(res.handover.final ? 'pick.done' : 'pick.partial', o.code), 'ok');
}

// ---------------------------------------------------------------- online return

// onlineReturn takes back goods bought online: the order by its pickup
// QR, code or id; the lines and quantities, with the refunds the order
// suggests; a manager's PIN; then the return slip. An order this store
// never saw (delivered to the customer's home) is taken item by item,
// amounts typed. The refund is owed by the online channel: no drawer.
async function onlineReturn() {
  const found = await new Promise((resolve) => {
    const input = h('input', { id: 'oret-q', class: 'input-big', autocomplete: 'off', spellcheck: false, autofocus: true });
    input.dataset.scan = 'accept'; // a wedge scan's Enter submits the form
    let busy = false;
    const find = async () => {
      const q = input.value.trim();
      if (!q || busy) return;
      busy = true;
      try {
        const r = await api('GET', '/api/returns/online/lookup?q=' + encodeURIComponent(q));
        d.close({ order: r.order });
      } catch (e) {
        if (e.code === 'pickup_unknown') d.close({ unknown: q });
        else { showError(e); input.select(); }
      } finally {
        busy = false;
      }
    };
    const d = openDialog({
      id: 'oret-find-dialog', title: t('oret.title'),
      body: h('div', {}, h('label', { class: 'field' }, h('span', {}, t('oret.lookup')), input), h('p', { class: 'note' }, t('oret.lookup.note'))),
      onScan: (code) => { input.value = code; find(); return true; },
      actions: [{ label: t('btn.cancel'), key: 'Esc' }, { label: t('pick.find'), primary: true, key: '⏎', onClick: () => find() }],
      onClose: resolve,
    });
  });
  if (!found) return;
  if (found.unknown && !(await confirmDlg(t('oret.title'), t('oret.unknown', found.unknown)))) return;
  const ret = await onlineReturnLines(found.order, found.unknown);
  if (!ret) return;
  toast(t('oret.done', ret.receipt, money(ret.total)), 'ok');
  openSlip(ret);
}

const stripAIM = (code) => code.trim().replace(/^\][A-Za-z][0-9A-Za-z]/, '');

// onlineReturnLines asks what comes back and records the return; it
// resolves to the return, or null when cancelled. A refusal (too many, a
// refund too large, a wrong PIN) keeps the dialog open.
function onlineReturnLines(order, unknownId) {
  const known = !!order;
  const rows = [];
  const tbody = h('tbody');
  const total = h('b', { id: 'oret-total' }, money(0));
  const add = h('input', { id: 'oret-add', class: 'input', autocomplete: 'off', spellcheck: false, placeholder: t('oret.add') });
  const parseQ = (r) => {
    const v = r.qty.value.trim();
    if (!v) return 0;
    if (r.unit === 'kg') return parseDecimal(v, 3);
    return /^\d{1,4}$/.test(v) ? Number(v) * 1000 : null;
  };
  // The suggested refund for q of a row (the last units get what is left
  // of the row's share, as the ledger's returns do).
  const suggest = (r, q) => {
    if (!r.suggested || !(q > 0) || !r.returnable) return null;
    return q >= r.returnable ? r.refundable : mulDivHalfUp(r.refundable, q, r.returnable);
  };
  const compute = () => {
    let sum = 0;
    for (const r of rows) {
      const a = parseMoney(r.amount.value || '0');
      if (parseQ(r) > 0 && a !== null) sum += a;
    }
    total.textContent = money(sum);
  };
  const setQty = (r, q3) => {
    r.qty.value = r.unit === 'kg' ? qty(q3, 'kg').replace(' kg', '') : String(q3 / 1000);
    onQty(r);
  };
  const onQty = (r) => {
    const s = suggest(r, parseQ(r));
    if (s !== null && !r.typed) r.amount.value = moneyPlain(s);
    compute();
  };
  const addRow = (it) => {
    const have = rows.find((r) => r.sku === it.sku);
    if (have) return have;
    const off = known && !it.returnable;
    const r = { ...it, typed: false };
    r.qty = h('input', { class: 'input input-qty', inputmode: it.unit === 'kg' ? 'decimal' : 'numeric', autocomplete: 'off', dataset: { qty: it.sku }, disabled: off });
    r.amount = h('input', { class: 'input input-qty', inputmode: 'decimal', autocomplete: 'off', dataset: { amount: it.sku }, disabled: off });
    r.qty.addEventListener('input', () => onQty(r));
    r.amount.addEventListener('input', () => { r.typed = r.amount.value !== ''; compute(); });
    const all = known ? h('button', { type: 'button', class: 'btn btn-plain btn-small', dataset: { all: it.sku }, disabled: off, onclick: () => { r.typed = false; setQty(r, it.returnable); r.qty.focus(); } }, t('oret.all')) : null;
    rows.push(r);
    tbody.append(h('tr', { dataset: { sku: it.sku } },
      h('td', {}, h('div', { class: 'name' }, it.name || it.sku), h('div', { class: 'sub' }, it.sku, it.substitute_for ? ' · ' + t('oret.subfor', it.substitute_for) : '')),
      known ? h('td', { class: 'num' }, qty(it.handed, it.unit)) : null,
      known ? h('td', { class: 'num' }, it.returned ? qty(it.returned, it.unit) : '') : null,
      h('td', {}, r.qty, all), h('td', {}, r.amount)));
    return r;
  };
  for (const it of order?.items || []) addRow(it);

  // A scanned item: on a known order one more of it; on an unknown one a
  // new line (weighed goods: the weight is typed).
  const take = async (raw) => {
    const code = stripAIM(raw);
    if (!code) return;
    let r = rows.find((x) => x.sku === code);
    if (!r) {
      const ps = (await api('GET', '/api/products?limit=5&q=' + encodeURIComponent(code))).products;
      const p = ps.find((x) => x.sku === code || (x.barcodes || []).some((b) => b.endsWith(code))) || (ps.length === 1 ? ps[0] : null);
      if (!p) throw new ApiError(0, 'not_found', t('oret.noitem', code));
      r = rows.find((x) => x.sku === p.sku);
      if (!r && known) throw new ApiError(0, 'not_found', t('oret.notonorder', p.name));
      if (!r) r = addRow({ sku: p.sku, name: p.name, unit: p.unit, suggested: false });
    }
    if (r.qty.disabled) throw new ApiError(0, 'return_too_many', t('oret.nothingleft', r.name || r.sku));
    if (r.unit === 'kg') { r.qty.focus(); return; }
    setQty(r, (parseQ(r) || 0) + 1000);
  };
  add.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault(); // not the form's confirm
    const v = add.value;
    add.value = '';
    run(() => take(v));
  });

  const head = known
    ? h('p', { class: 'dlg-text', id: 'oret-order' }, order.code, order.customer ? ' · ' + order.customer : '', ' · ', t('pick.paid', money(order.paid)),
      order.refunded ? ' · ' + t('oret.refunded', money(order.refunded)) : '')
    : h('p', { class: 'dlg-text', id: 'oret-order' }, t('oret.byhand', unknownId));
  const cols = known ? ['oret.col.item', 'oret.col.handed', 'oret.col.returned', 'oret.col.qty', 'oret.col.amount'] : ['oret.col.item', 'oret.col.qty', 'oret.col.amount'];
  const body = h('div', {}, head,
    h('table', { class: 'mini', id: 'oret-table' }, h('thead', {}, h('tr', {}, cols.map((k) => h('th', {}, t(k))))), tbody),
    known ? null : h('label', { class: 'field' }, h('span', {}, t('oret.add.label')), add),
    h('p', { class: 'ret-total' }, t('oret.owed'), ' ', total),
    h('p', { class: 'note' }, known ? t('oret.note.known', money(order.left)) : t('oret.note.unknown')));

  return new Promise((resolve) => {
    let busy = false;
    const confirm = async (d) => {
      if (busy) return;
      const lines = [];
      for (const r of rows) {
        const q = parseQ(r);
        if (q === null) { showError(new ApiError(0, 'bad_quantity', `${r.name || r.sku}: ${r.qty.value}`)); r.qty.focus(); return; }
        if (!q) continue;
        const a = parseMoney(r.amount.value || '');
        if (a === null) { showError(new ApiError(0, 'bad_amount', `${r.name || r.sku}: ${r.amount.value}`)); r.amount.focus(); return; }
        lines.push({ sku: r.sku, qty: q, amount: a });
      }
      if (!lines.length) { showError(new ApiError(0, 'invalid', t('ret.none'))); return; }
      busy = true;
      try {
        const res = await withManager(t('oret.title'), (pin) => api('POST', '/api/returns/online', { order: known ? order.order_id : unknownId, lines, manager_pin: pinArg(pin) }));
        d.close(res.return);
      } catch (e) {
        showError(e);
      } finally {
        busy = false;
      }
    };
    openDialog({
      id: 'oret-lines-dialog', title: t('oret.title') + (known ? ' · ' + order.code : ''), body, wide: true,
      onScan: (code) => { run(() => take(code)); return true; },
      actions: [{ label: t('btn.cancel'), key: 'Esc' }, { label: t('oret.confirm'), primary: true, key: '⏎', onClick: (d) => confirm(d) }],
      onClose: (v) => resolve(v || null),
    });
    (rows.find((r) => !r.qty.disabled)?.qty || add).focus();
  });
}

function showReport(r) {
  const rows = [
    ['rep.sales', r.sales, false], ['rep.gross', r.gross, true], ['rep.discounts', r.discounts, true], ['rep.coupons', r.coupons, true],
    ['rep.tax', r.tax, true], ['rep.voids', `${r.voids} · ${money(r.void_total)}`, false], ['rep.returns', `${r.returns} · ${money(r.return_total)}`, false],
    ['rep.net', r.net, true], ['rep.change', r.change, true],
  ];
  for (const [k, v] of Object.entries(r.tenders || {})) rows.push([t('rep.tender', t('pay.' + k)), v, true, true]);
  if (r.cash_expected) rows.push(['rep.cash', r.cash_expected, true]);
  const body = h('table', { class: 'mini report', id: 'report-table' }, h('tbody', {}, rows.map(([k, v, isMoney, raw]) =>
    h('tr', {}, h('td', {}, raw ? k : t(k)), h('td', { class: 'num' }, isMoney ? money(v) : String(v))))));
  infoDlg('report-dialog', t('rep.title', r.kind, r.business_day), body);
}

function showAlerts() {
  const al = state.status?.alerts || [];
  const body = al.length
    ? h('ul', { class: 'alerts-list' }, al.map((a) => h('li', {}, h('b', {}, t('alert.' + a.kind)), ` · ${a.shelf}${a.slot ? '/' + a.slot : ''} ${a.sku || ''} ${a.count ? '×' + a.count : ''} ${a.detail || ''}`)))
    : h('p', { class: 'dlg-text' }, t('alerts.none'));
  infoDlg('alerts-dialog', t('alerts.title'), body);
}

// ---------------------------------------------------------------- status

async function refreshStatus() {
  if (!state.user) return;
  let st;
  try {
    st = await api('GET', '/api/status');
  } catch (e) {
    st = null;
  }
  state.status = st;
  const sync = $('#st-sync');
  const backlog = $('#st-backlog');
  if (!st) {
    sync.textContent = t('status.offline');
    sync.dataset.online = 'false';
    sync.className = 'pill pill-bad';
    return;
  }
  const on = st.sync.online;
  sync.textContent = '● ' + (on ? t('status.online') : t('status.offline'));
  sync.dataset.online = String(on);
  sync.className = 'pill ' + (on ? 'pill-ok' : 'pill-bad');
  const n = st.sync.backlog || 0;
  backlog.dataset.backlog = String(n);
  if (n === 0) {
    backlog.textContent = t('status.synced');
    backlog.className = 'st-backlog';
  } else {
    const oldest = st.sync.oldest_unacked ? age(new Date(st.now) - new Date(st.sync.oldest_unacked)) : '?';
    backlog.textContent = t('status.waiting', n, oldest) + (st.sync.rejected ? ' · ' + t('status.rejected', st.sync.rejected) : '');
    backlog.className = 'st-backlog ' + (on ? '' : 'st-warn');
  }
  $('#st-store').textContent = `${st.store} / ${st.terminal}`;
  $('#st-devices').replaceChildren(...st.devices.map((d) => {
    const ok = d.state === 'idle' || d.state === 'busy';
    const label = ok ? t('dev.' + d.kind) : `${t('dev.' + d.kind)}: ${d.reason || t('state.' + d.state)}`;
    return h('span', { class: 'pill ' + (ok ? 'pill-ok' : d.state === 'closed' ? 'pill-off' : 'pill-bad'), title: d.name, dataset: { device: d.name, kind: d.kind, state: d.state } }, label);
  }));
  const al = $('#st-alerts');
  al.hidden = !st.alerts.length;
  al.textContent = `⚠ ${st.alerts.length}`;
  for (const d of state.dialogs) d.refreshPrint?.();
}

async function refreshShift() {
  try {
    state.shift = (await api('GET', '/api/shift')).shift;
  } catch (e) {
    return;
  }
  const el = $('#st-shift');
  el.hidden = !!state.shift;
  el.textContent = t('status.noshift');
}

function connectEvents() {
  state.es?.close();
  const es = new EventSource('/api/events');
  state.es = es;
  const payload = (ev) => {
    try {
      return JSON.parse(ev.data).data;
    } catch (e) {
      return null;
    }
  };
  es.addEventListener('scan', (ev) => {
    const d = payload(ev);
    if (d?.code) onScanned(d.code, 'serial');
  });
  for (const name of ['status', 'sync', 'print']) es.addEventListener(name, () => refreshStatus());
  es.addEventListener('alert', (ev) => {
    const a = payload(ev);
    if (a) toast(`${t('alert.' + a.kind)} · ${a.shelf} ${a.sku || ''}`, 'warn');
    refreshStatus();
  });
  es.addEventListener('logout', () => {
    es.close();
    toLogin();
  });
  es.addEventListener('open', () => { document.body.dataset.events = 'open'; });
}

function clock() {
  const d = new Date();
  $('#st-clock').textContent = d.toLocaleTimeString(state.cfg?.locale === 'en' ? 'en-GB' : 'zh-CN', { hour: '2-digit', minute: '2-digit' });
}

// ---------------------------------------------------------------- keyboard

const burst = { text: '', last: 0, target: null, before: '' };

function isTextField(el) {
  return el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement;
}

// onKeyCapture sees every key first and tells scanner bursts from typing.
function onKeyCapture(e) {
  if (e.isComposing) return;
  const now = e.timeStamp;
  if (e.key === 'Enter') {
    const code = burst.text;
    const wedge = code.length >= WEDGE_MIN && now - burst.last < wedgeGap;
    burst.text = '';
    if (!wedge || state.view !== 'sale') return;
    const el = e.target;
    if (el instanceof HTMLInputElement && el.dataset.scan === 'accept') return; // the field takes scans: Enter submits it
    e.preventDefault();
    e.stopImmediatePropagation();
    let scanned = code;
    if (el.id === 'scan') {
      // The scan field holds nothing but the code (a stall inside the
      // burst must not cut it), after an optional "3*" multiplier.
      const m = el.value.trim().match(/^(?:(\d{1,3})\*)?(.+)$/);
      el.value = '';
      if (m) {
        if (m[1]) setMult(Number(m[1]));
        scanned = m[2];
      }
    } else if (isTextField(el) && burst.target === el) {
      el.value = burst.before; // take the burst back out of the field it went into
    }
    onScanned(scanned, 'wedge');
    return;
  }
  if (e.key.length === 1 && !e.ctrlKey && !e.altKey && !e.metaKey) {
    if (burst.text && now - burst.last < wedgeGap && burst.target === e.target) burst.text += e.key;
    else {
      burst.text = e.key;
      burst.target = e.target;
      burst.before = isTextField(e.target) ? e.target.value : '';
    }
    burst.last = now;
    if (state.view === 'sale' && !topDialog() && !isTextField(e.target)) {
      // Typing with nothing focused goes to the scan field.
      e.preventDefault();
      const scan = $('#scan');
      scan.focus();
      burst.before = scan.value;
      scan.value += e.key;
      burst.target = scan;
    }
  }
}

function onKey(e) {
  if (/^F([1-9]|10)$/.test(e.key)) e.preventDefault(); // no reload, help or find in a POS
  if (state.view !== 'sale' || !state.user) return;
  const top = topDialog();
  if (top) {
    if (top.onKey?.(e)) e.preventDefault();
    return;
  }
  const map = { F1: 'menu', F2: 'qty', F3: 'void', F4: 'discount', F5: 'coupon', F6: 'member', F7: 'suspend', F8: 'resume', F9: 'price', F10: 'pay' };
  if (map[e.key]) {
    act(map[e.key]);
    return;
  }
  if (e.key === 'ArrowUp' || e.key === 'ArrowDown') {
    e.preventDefault();
    moveSelection(e.key === 'ArrowUp' ? -1 : 1);
  } else if (e.key === 'Escape') {
    $('#scan').value = '';
    setMult(1);
  }
}

// ---------------------------------------------------------------- boot

async function boot() {
  window.addEventListener('keydown', onKeyCapture, true);
  window.addEventListener('keydown', onKey);
  const scan = $('#scan');
  scan.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      const v = scan.value;
      scan.value = '';
      handleKeyed(v);
    }
  });
  scan.addEventListener('blur', () => setTimeout(refocus, 0));
  for (const b of document.querySelectorAll('#keys button[data-act]')) {
    b.addEventListener('mousedown', (e) => e.preventDefault());
    b.addEventListener('click', () => act(b.dataset.act));
  }
  $('#st-alerts').addEventListener('click', () => { if (state.user && !topDialog()) showAlerts(); });
  try {
    state.cfg = await api('GET', '/api/config');
  } catch (e) {
    state.cfg = { locale: 'en', currency: 'CNY', minor_digits: 2 };
    showError(e);
  }
  setConfig(state.cfg);
  if (state.cfg.wedge_gap_ms > 0) wedgeGap = state.cfg.wedge_gap_ms;
  applyStrings();
  setupLogin();
  clock();
  setInterval(clock, 10000);
  setInterval(refreshStatus, STATUS_EVERY);
  render();
  try {
    await onSession(await api('GET', '/api/session'));
  } catch (e) {
    show('login');
  }
  document.body.dataset.ready = 'true';
}

boot();
