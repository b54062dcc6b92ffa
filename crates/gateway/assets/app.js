// Crunch dashboard. Plain ES module, no build step, no dependencies.
// Rule: nothing a user typed or a site returned is ever parsed as HTML. Every
// value reaches the page through textContent, attribute setters or <option>
// constructors; the Content-Security-Policy forbids inline script on top.

const KEY_STORE = 'crunch.apiKey';
const JOBS_SHOWN = 10;
const SELECTED_PAGE = 10;

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/** Builds an element; children are nodes or strings (always text nodes). */
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** JSON.parse keeping integers above 2^53 exact (as their decimal text). */
function parseJson(text) {
  return JSON.parse(text, (_k, v, ctx) =>
    typeof v === 'number' && !Number.isSafeInteger(v) && Number.isInteger(v) && ctx && ctx.source ? ctx.source : v);
}

// ---------------------------------------------------------------- API access

const state = {
  key: localStorage.getItem(KEY_STORE) || '',
  config: null,
  jobs: new Map(), // kind -> array of jobs, newest first
  fetching: new Set(),
  ws: null,
  wsBackoff: 500,
  hotels: [],
  cityId: null, // the catalogue id of the city in the city box, if it is one
  selected: { q: '', order: '-selected_at', offset: 0, total: 0 },
  fileNames: new Map(), // gene file id -> file name
};

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error ? body.error.code : 'http_error';
    this.field = body && body.error ? body.error.field : undefined;
  }
}

async function api(path, { method = 'GET', body, auth = true } = {}) {
  const headers = { Accept: 'application/json' };
  if (auth && state.key) headers.Authorization = `Bearer ${state.key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, { error: { code: 'network', message: `the gateway could not be reached (${e.message})` } });
  }
  const text = await res.text();
  let data = null;
  try { data = text ? parseJson(text) : null; } catch { data = null; }
  if (res.status === 401) showAuthProblem('The API key is missing or was rejected (401 unauthorized): enter a valid key above.');
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

function showAuthProblem(message) {
  const banner = $('#auth-banner');
  banner.textContent = message;
  banner.hidden = false;
  $('#api-key').classList.add('invalid');
}

function clearAuthProblem() {
  $('#auth-banner').hidden = true;
  $('#api-key').classList.remove('invalid');
}

// ------------------------------------------------------------ result summaries

const fmtBytes = (n) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
const fmtMs = (ms) => (ms === null || ms === undefined ? '–' : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms * 10) / 10} ms`);

function factorText(result) {
  const factors = result.factors || [];
  if (factors.length === 0) return '1 (no prime factors)';
  return factors.map((f) => (f.e > 1 ? `${f.p}^${f.e}` : `${f.p}`)).join(' × ');
}

function inputText(job) {
  const p = job.params || {};
  switch (job.kind) {
    case 'factorize': return p.n;
    case 'primes': return `[${p.from}, ${p.to}] ${p.mode}`;
    case 'nth_prime': return `n = ${p.n}`;
    case 'check_url': return `${p.method || 'GET'} ${p.url}`;
    case 'scrape_hotels': return `${p.city || p.start_url} · ${p.pages} page${p.pages === 1 ? '' : 's'}`;
    case 'genes': return state.fileNames.get(p.file_id) || `file ${String(p.file_id).slice(0, 8)}`;
    default: return JSON.stringify(p);
  }
}

function resultNodes(job) {
  if (job.status === 'failed' && job.error) {
    return [el('span', { class: 'bad', text: `${job.error.code}: ${job.error.message}` })];
  }
  if (job.status === 'cancelled') return [el('span', { class: 'muted', text: 'cancelled' })];
  const r = job.result;
  if (!r) return [];
  switch (job.kind) {
    case 'factorize':
      return [el('span', { class: 'factors', text: factorText(r) }),
        el('div', { class: 'muted', text: `${r.method} · ${fmtMs(r.elapsed_ms)}` })];
    case 'primes': {
      const head = `${r.count} prime${r.count === 1 ? '' : 's'}`;
      if (r.mode === 'list') {
        const first = (r.first_primes || []).join(', ');
        return [el('span', { text: head }), el('div', { class: 'muted', text: first ? `first: ${first}${r.count > (r.first_primes || []).length ? ', …' : ''}` : 'none' })];
      }
      return [el('span', { text: head }), el('div', { class: 'muted', text: `${fmtMs(r.elapsed_ms)}${r.shards ? ` · ${r.shards} shards` : ''}` })];
    }
    case 'nth_prime':
      return [el('span', { text: r.prime }), el('div', { class: 'muted', text: `prime number ${r.n} · ${fmtMs(r.elapsed_ms)}` })];
    case 'check_url': {
      if (!r.ok) {
        const err = r.error || {};
        return [el('span', { class: 'bad', text: `${err.kind || 'error'}: ${err.message || ''}` }),
          el('div', { class: 'muted', text: `${r.attempts} attempt${r.attempts === 1 ? '' : 's'} · ${fmtMs(r.timings_ms && r.timings_ms.total)}` })];
      }
      const t = r.timings_ms || {};
      const hops = (r.redirects || []).length;
      return [el('span', { text: `HTTP ${r.status} · ${fmtMs(t.total)}` }),
        el('div', { class: 'muted', text: `dns ${fmtMs(t.dns)} · connect ${fmtMs(t.connect)} · tls ${fmtMs(t.tls)} · first byte ${fmtMs(t.first_byte)}` }),
        hops ? el('div', { class: 'muted', text: `${hops} redirect${hops === 1 ? '' : 's'} → ${r.final_url}` }) : null];
    }
    case 'scrape_hotels': {
      const failures = (r.failures || []).length;
      const city = r.city ? ` in ${r.city.name}${r.city.country ? `, ${r.city.country}` : ''}` : '';
      const searched = r.city && r.city.found_by === 'site_search' ? ' (found through the site\'s search)' : '';
      return [el('span', { text: `${r.hotels} hotels${city}${searched}` }),
        el('div', { class: 'muted', text: `${r.details_fetched} detail pages · ${failures} failure${failures === 1 ? '' : 's'} · ${fmtMs(r.elapsed_ms)}` })];
    }
    case 'genes': {
      const gc = typeof r.gc === 'number' ? `GC ${(r.gc * 100).toFixed(1)}%` : '';
      return [el('span', { text: `${r.stored} sequence${r.stored === 1 ? '' : 's'} stored` }),
        el('div', { class: 'muted', text: `${r.invalid} invalid · ${r.duplicates} duplicate names · ${gc} · ${fmtBytes(r.bytes)} · ${fmtMs(r.elapsed_ms)}` }),
        el('button', { type: 'button', class: 'link', text: 'download result', onclick: () => downloadGenes(job.params.file_id) })];
    }
    default:
      return [el('code', { text: JSON.stringify(r).slice(0, 200) })];
  }
}

async function downloadGenes(fileId) {
  const res = await fetch(`/api/v1/gene-files/${encodeURIComponent(fileId)}/result`, { headers: { Authorization: `Bearer ${state.key}` } });
  if (!res.ok) return;
  const url = URL.createObjectURL(await res.blob());
  const a = el('a', { href: url, download: `${state.fileNames.get(fileId) || fileId}.result.json` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// /metrics needs a key, which a plain link cannot send: the text is fetched
// with the key and opened in a new tab as a blob.
async function openMetrics(ev) {
  ev.preventDefault();
  if (!state.key) { showAuthProblem('Enter an API key above to see the metrics.'); return; }
  const tab = window.open('', '_blank');
  const res = await fetch('/metrics', { headers: { Authorization: `Bearer ${state.key}` } });
  const text = res.ok ? await res.text() : `The metrics could not be read: HTTP ${res.status}`;
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  if (tab) tab.location = url;
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

async function loadFileNames() {
  if (!state.key) return;
  try {
    const page = await api('/api/v1/gene-files?limit=100');
    for (const f of page.items) state.fileNames.set(f.id, f.file_name);
  } catch { /* the list is a nicety */ }
}

// ------------------------------------------------------------------ job lists

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

function jobRow(job, fresh) {
  const time = new Date(job.created_at);
  const cancel = TERMINAL.has(job.status) ? null : el('button', {
    type: 'button', class: 'link', text: 'cancel',
    onclick: () => api(`/api/v1/jobs/${encodeURIComponent(job.id)}`, { method: 'DELETE' }).then(upsertJob).catch(() => {}),
  });
  const pct = Math.round((job.progress || 0) * 100);
  const tr = el('tr', { class: fresh ? 'fresh' : undefined },
    el('td', { text: time.toLocaleTimeString(), title: job.created_at }),
    el('td', {}, el('code', { text: job.id.slice(0, 8), title: job.id })),
    el('td', { class: 'input', text: inputText(job) }),
    el('td', {}, el('span', { class: `badge ${job.status}`, text: job.status })),
    el('td', {}, el('progress', { max: 100, value: pct }), ` ${pct}%`,
      job.status === 'running' && job.stage ? el('div', { class: 'stage muted', text: job.stage }) : null),
    el('td', { class: 'result' }, ...resultNodes(job)),
    el('td', {}, cancel));
  tr.dataset.jobId = job.id;
  tr.dataset.status = job.status;
  return tr;
}

function renderJobs(kind, freshId) {
  const body = $(`tbody[data-jobs="${kind}"]`);
  if (!body) return;
  const jobs = state.jobs.get(kind) || [];
  body.replaceChildren(...jobs.map((j) => jobRow(j, j.id === freshId)));
  if (jobs.length === 0) body.append(el('tr', {}, el('td', { colspan: '7', class: 'muted', text: state.key ? 'no jobs yet' : 'enter an API key to see jobs' })));
}

const RANK = { queued: 0, running: 1, succeeded: 2, failed: 2, cancelled: 2 };

/** The further along of two views of one job: REST answers and events race
 * (a fast job's events can arrive before the response that created it). */
function furthest(a, b) {
  if (!a) return b;
  if (!b) return a;
  const ra = RANK[a.status] ?? 0;
  const rb = RANK[b.status] ?? 0;
  if (ra !== rb) return ra > rb ? a : b;
  return (b.progress || 0) >= (a.progress || 0) ? b : a;
}

/** What the events said of each job lately (bounded). */
const latest = new Map();
function remember(jobId, view) {
  latest.set(jobId, furthest(latest.get(jobId), view));
  if (latest.size > 1000) latest.delete(latest.keys().next().value);
}

/** Inserts or replaces a job (newest first, at most JOBS_SHOWN per kind). */
function upsertJob(incoming) {
  // A monitor's check belongs to the monitors table, not the URL checks'.
  if (!incoming || !incoming.kind || incoming.monitor_id) return;
  const old = (state.jobs.get(incoming.kind) || []).find((j) => j.id === incoming.id);
  const ev = latest.get(incoming.id);
  let job = furthest(old, incoming);
  if (ev && furthest(job, ev) === ev && ev !== job) job = { ...job, ...ev };
  const list = (state.jobs.get(job.kind) || []).filter((j) => j.id !== job.id);
  list.push(job);
  list.sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
  state.jobs.set(job.kind, list.slice(0, JOBS_SHOWN));
  renderJobs(job.kind, job.id);
}

async function loadJobs() {
  const kinds = (state.config && state.config.kinds) || [];
  await loadFileNames();
  await Promise.all(kinds.map(async (kind) => {
    if (!state.key) { state.jobs.set(kind, []); renderJobs(kind); return; }
    try {
      const page = await api(`/api/v1/jobs?kind=${encodeURIComponent(kind)}&limit=${JOBS_SHOWN}`);
      state.jobs.set(kind, page.items);
      renderJobs(kind);
    } catch (e) {
      if (e.status !== 401) console.warn('loading jobs failed', e);
    }
  }));
}

function onEvent(ev) {
  if (ev.type === 'lagged') { loadJobs(); return; }
  // Any of the key's jobs that ends moves the charts, seen by this tab or not
  // (a job submitted elsewhere can end before its row is fetched).
  if (ev.type === 'succeeded' || ev.type === 'failed' || ev.type === 'cancelled') {
    refreshStatsSoon();
    if (ev.kind === 'check_url') refreshMonitorsSoon();
  }
  const list = state.jobs.get(ev.kind);
  if (!list) return;
  const view = { status: ev.status, progress: ev.type === 'succeeded' ? 1 : ev.progress };
  if (ev.type === 'progress' && ev.data && ev.data.stage) view.stage = ev.data.stage;
  if (ev.type === 'succeeded') view.result = ev.data;
  if (ev.type === 'failed') view.error = ev.data;
  remember(ev.job_id, view);
  const job = list.find((j) => j.id === ev.job_id);
  if (!job) {
    // A job this tab has not seen (another tab, a script, the demo generator).
    if (state.fetching.has(ev.job_id)) return;
    state.fetching.add(ev.job_id);
    api(`/api/v1/jobs/${encodeURIComponent(ev.job_id)}`).then(upsertJob).catch(() => {}).finally(() => state.fetching.delete(ev.job_id));
    return;
  }
  if (furthest(job, view) !== view) return; // e.g. late progress after the end
  const next = { ...job, ...view };
  const rows = list.map((j) => (j.id === job.id ? next : j));
  state.jobs.set(ev.kind, rows);
  renderJobs(ev.kind);
  if (ev.kind === 'scrape_hotels' && ev.type === 'succeeded') {
    // The city the scrape found (perhaps through the site's search) is the
    // one shown.
    const city = ev.data && ev.data.city;
    if (city && city.id !== null && String(city.id) !== state.cityId) {
      $('#city-input').value = city.name;
      loadCities();
    } else loadHotels();
  }
}

function setWsStatus(text, ok) {
  const pill = $('#ws-status');
  pill.textContent = `events: ${text}`;
  pill.className = `pill ${ok === true ? 'ok' : ok === false ? 'bad' : ''}`;
}

function connectEvents() {
  if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
  if (!state.key) { setWsStatus('off'); return; }
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${proto}://${location.host}/api/v1/events?access_token=${encodeURIComponent(state.key)}`);
  state.ws = ws;
  setWsStatus('connecting');
  ws.onopen = () => {
    setWsStatus('live', true);
    state.wsBackoff = 500;
    loadJobs(); // catch up with what happened while disconnected
  };
  ws.onmessage = (m) => {
    try { onEvent(parseJson(m.data)); } catch (e) { console.warn('bad event', e); }
  };
  ws.onclose = () => {
    setWsStatus('reconnecting', false);
    setTimeout(() => { if (state.ws === ws) connectEvents(); }, state.wsBackoff);
    state.wsBackoff = Math.min(state.wsBackoff * 2, 10000);
  };
}

// ------------------------------------------------------------------- forms
// The forms send what was typed; the rules, limits and messages are the
// server's own (POST /api/v1/jobs/validate checks without storing), so the
// page keeps no copy of them. Only what never reaches the server is checked
// here: that a file was chosen, and that it is within the upload limit.

/** A whole number as a number (what the API expects), anything else as typed. */
const intOrText = (t) => (/^[0-9]{1,15}$/.test(t) ? Number(t) : t === '' ? undefined : t);

const formParams = {
  factorize: (form) => ({ n: form.n.value.trim() }),
  primes: (form) => ({ from: form.from.value.trim(), to: form.to.value.trim(), mode: form.mode.value }),
  nth_prime: (form) => ({ n: intOrText(form.n.value.trim()) }),
  check_url: (form) => ({ url: form.url.value.trim(), method: form.method.value, retries: intOrText(form.retries.value.trim()), timeout_ms: intOrText(form.timeout_ms.value.trim()) }),
  scrape_hotels: (form) => ({ city: form.city.value || undefined, pages: intOrText(form.pages.value.trim()), details: form.details.checked }),
};

function geneFileChoice(form, limits) {
  const file = form.file.files[0];
  if (!file) return { field: 'file_name', message: 'choose a FASTA, FASTQ or CSV file (optionally .gz)' };
  if (file.size === 0) return { field: 'file_name', message: 'the file is empty' };
  if (file.size > limits.genes_max_upload_bytes) return { field: 'file_name', message: `the file is larger than the upload limit of ${limits.genes_max_upload_bytes} bytes` };
  return { params: { file, format: form.format.value || undefined, on_invalid: form.on_invalid.value } };
}

/** Creates a gene file, uploads its bytes (streamed by the browser) and returns its job. */
async function uploadGeneFile({ file, format, on_invalid: onInvalid }) {
  const created = await api('/api/v1/gene-files', { method: 'POST', body: { file_name: file.name, format, on_invalid: onInvalid } });
  state.fileNames.set(created.id, created.file_name);
  const res = await fetch(created.upload.url, { method: 'PUT', headers: { Authorization: `Bearer ${state.key}`, 'Content-Type': 'application/octet-stream' }, body: file });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data.job;
}

function clearErrors(form) {
  for (const s of $$('.field-error', form)) s.textContent = '';
  for (const i of $$('.invalid', form)) i.classList.remove('invalid');
  $('.form-error', form).textContent = '';
}

function showFieldError(form, field, message) {
  const slot = field ? $(`[data-error-for="${CSS.escape(field)}"]`, form) : null;
  const input = field ? $(`[data-field="${CSS.escape(field)}"]`, form) : null;
  if (input) input.classList.add('invalid');
  if (slot) slot.textContent = message;
  else $('.form-error', form).textContent = message;
}

async function submitForm(form) {
  clearErrors(form);
  const kind = form.dataset.kind;
  if (!state.config) return;
  if (!state.key) { showAuthProblem('Enter an API key above to submit jobs.'); return; }
  const fail = (field, message) => {
    showFieldError(form, field, message);
    const input = field ? $(`[data-field="${CSS.escape(field)}"]`, form) : null;
    if (input) input.focus();
  };
  const button = $('button[type="submit"]', form);
  button.disabled = true;
  try {
    let job;
    if (kind === 'genes') {
      const choice = geneFileChoice(form, state.config.limits);
      if (!choice.params) { fail(choice.field, choice.message); return; }
      job = await uploadGeneFile(choice.params);
    } else {
      const valid = await api('/api/v1/jobs/validate', { method: 'POST', body: { kind, params: formParams[kind](form) } });
      job = await api('/api/v1/jobs', { method: 'POST', body: { kind, params: valid.params, fresh: true } });
    }
    clearAuthProblem();
    upsertJob(job);
  } catch (e) {
    if (e.status === 401) showFieldError(form, null, 'not submitted: the API key was rejected');
    else if (e.status === 503) showFieldError(form, null, `${e.message} (service unavailable; nothing was stored, try again shortly)`);
    else fail(e.field, e.message);
  } finally {
    button.disabled = false;
  }
}

// --------------------------------------------------------------------- hotels

function safeHref(url) {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch { return null; }
}

function hotelName(h) {
  const href = safeHref(h.url);
  return href ? el('a', { href, target: '_blank', rel: 'noopener noreferrer', text: h.name }) : el('span', { text: h.name });
}

const num = (v) => (v === null || v === undefined ? '–' : String(v));

function selectedCityId() {
  return state.cityId;
}

// The city box offers the catalogue's cities as the user types
// (GET /api/v1/cities?q=); a name that is not in it is looked up through the
// site's search when the scrape runs.
async function loadCities() {
  const text = $('#city-input').value.trim();
  const hint = $('#city-hint');
  let items = [];
  try {
    const page = await api(`/api/v1/cities?q=${encodeURIComponent(text)}&limit=20`, { auth: false });
    items = page.items;
  } catch (e) { console.warn('loading cities failed', e); }
  if ($('#city-input').value.trim() !== text) return; // typed on meanwhile
  $('#city-options').replaceChildren(...items.map((c) => el('option', { value: c.name, label: `${c.name}${c.country ? `, ${c.country}` : ''}` })));
  const exact = items.find((c) => c.name.toLowerCase() === text.toLowerCase());
  const id = exact ? String(exact.id) : null;
  hint.textContent = !text || exact ? ''
    : `"${text}" is not in the catalogue yet: Scrape looks it up through the site's search.`;
  // The hotels table is redrawn only for another city (a redraw clears picks).
  if (id !== state.cityId) {
    state.cityId = id;
    loadHotels();
  }
}

async function loadHotels() {
  const city = selectedCityId();
  const body = $('#hotels-body');
  if (!city) { state.hotels = []; body.replaceChildren(); $('#hotels-count').textContent = ''; updateSaveButton(); return; }
  try {
    const page = await api(`/api/v1/hotels?city=${encodeURIComponent(city)}&order=-rating&limit=100`, { auth: false });
    state.hotels = page.items;
    const total = `${page.total}${page.total_exact === false ? '+' : ''}`;
    $('#hotels-count').textContent = `(${total}${page.total > page.items.length ? `, best ${page.items.length} shown` : ''})`;
    body.replaceChildren(...page.items.map((h) => {
      const tr = el('tr', {},
        el('td', {}, el('input', { type: 'checkbox', class: 'pick', value: String(h.id), 'aria-label': `select ${h.name}`, onchange: updateSaveButton })),
        el('td', {}, hotelName(h)),
        el('td', { text: num(h.rating) }),
        el('td', { text: num(h.reviews) }),
        el('td', { text: h.rank ? `${h.rank}${h.rank_total ? ` of ${h.rank_total}` : ''}` : '–' }),
        el('td', { text: num(h.stars) }),
        el('td', { class: 'desc', text: h.description || '' }));
      tr.dataset.hotelId = String(h.id);
      return tr;
    }));
    if (page.items.length === 0) body.append(el('tr', {}, el('td', { colspan: '7', class: 'muted', text: 'no hotels for this city yet: run a scrape' })));
  } catch (e) { console.warn('loading hotels failed', e); }
  $('#hotels-all').checked = false;
  updateSaveButton();
}

function pickedIds() {
  return $$('#hotels-body input.pick:checked').map((i) => Number(i.value));
}

function updateSaveButton() {
  const n = pickedIds().length;
  const b = $('#save-selected');
  b.disabled = n === 0;
  b.textContent = n ? `Save selected (${n})` : 'Save selected';
}

/** Polls the selections until `done(page)` holds (the persister is asynchronous). */
async function waitForSelections(done, status) {
  for (let i = 0; i < 40; i += 1) {
    const page = await api('/api/v1/selections?limit=100&order=-selected_at');
    if (done(page)) { status(true); return; }
    await new Promise((r) => setTimeout(r, 250));
  }
  status(false);
}

async function saveSelected() {
  const ids = pickedIds();
  if (!ids.length) return;
  const status = $('#save-status');
  if (!state.key) { showAuthProblem('Enter an API key above to save selections.'); return; }
  try {
    await api('/api/v1/selections', { method: 'POST', body: { hotel_ids: ids } });
    status.textContent = `${ids.length} sent through Kafka; waiting for the persister…`;
    await waitForSelections((page) => ids.slice(0, 100).every((id) => page.items.some((s) => s.id === id)), (ok) => {
      status.textContent = ok ? `${ids.length} saved` : `${ids.length} sent; not stored yet (the persister may be down): they will appear when it catches up`;
    });
    for (const i of $$('#hotels-body input.pick:checked')) i.checked = false;
    $('#hotels-all').checked = false;
    updateSaveButton();
    state.selected.offset = 0;
    loadSelected();
  } catch (e) {
    status.textContent = `not saved: ${e.message}`;
  }
}

async function removeSelected(hotelId) {
  try {
    await api(`/api/v1/selections/${encodeURIComponent(hotelId)}`, { method: 'DELETE' });
    await waitForSelections((page) => !page.items.some((s) => s.id === hotelId), () => {});
    loadSelected();
  } catch (e) { $('#save-status').textContent = `not removed: ${e.message}`; }
}

async function loadSelected() {
  const body = $('#selected-body');
  if (!state.key) { body.replaceChildren(); $('#sel-info').textContent = ''; return; }
  const s = state.selected;
  const q = s.q ? `&q=${encodeURIComponent(s.q)}` : '';
  try {
    const page = await api(`/api/v1/selections?order=${encodeURIComponent(s.order)}&offset=${s.offset}&limit=${SELECTED_PAGE}${q}`);
    s.total = page.total;
    body.replaceChildren(...page.items.map((h) => {
      const tr = el('tr', {},
        el('td', {}, hotelName(h)),
        el('td', { text: num(h.rating) }),
        el('td', { text: num(h.reviews) }),
        el('td', { text: h.rank ? `${h.rank}${h.rank_total ? ` of ${h.rank_total}` : ''}` : '–' }),
        el('td', { text: new Date(h.selected_at).toLocaleString(), title: h.selected_at }),
        el('td', {}, el('button', { type: 'button', class: 'link', text: 'remove', onclick: () => removeSelected(h.id) })));
      tr.dataset.hotelId = String(h.id);
      return tr;
    }));
    if (page.items.length === 0) body.append(el('tr', {}, el('td', { colspan: '6', class: 'muted', text: s.q ? 'no selected hotel matches' : 'nothing selected yet' })));
    const last = Math.min(s.offset + page.items.length, page.total);
    $('#sel-info').textContent = page.total ? `${s.offset + 1}–${last} of ${page.total}` : '0 of 0';
    $('#sel-prev').disabled = s.offset === 0;
    $('#sel-next').disabled = last >= page.total;
    for (const b of $$('#selected-table button.sort')) {
      const col = b.dataset.order;
      b.textContent = col === 'selected_at' ? 'selected' : col;
      if (s.order === col) b.textContent += ' ▲';
      if (s.order === `-${col}`) b.textContent += ' ▼';
    }
  } catch (e) {
    if (e.status !== 401) $('#sel-info').textContent = `could not load: ${e.message}`;
  }
}

// ---------------------------------------------------------------- the rest

async function checkReady() {
  const pill = $('#ready-status');
  try {
    const res = await fetch('/readyz');
    const body = await res.json().catch(() => ({}));
    const down = Object.entries(body).filter(([, v]) => v === false).map(([k]) => k);
    pill.textContent = res.ok ? 'ready' : `not ready${down.length ? `: ${down.join(', ')} down` : ''}`;
    pill.className = `pill ${res.ok ? 'ok' : 'bad'}`;
  } catch {
    pill.textContent = 'gateway unreachable';
    pill.className = 'pill bad';
  }
}

// --- charts: the server's own numbers (GET /api/v1/stats/jobs), as SVG ---

// The same colours as the legend's (app.css, .legend i.k-<kind>).
const KIND_COLORS = { factorize: '#2f6fed', primes: '#1a7f37', nth_prime: '#0b7a75', check_url: '#b26a00', scrape_hotels: '#8e44ad', genes: '#c62828' };
const SVG_NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
  const n = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

const hhmm = (ms) => new Date(ms).toISOString().slice(11, 16);

// Lines of [time ms, value] points over [t0, t1]: a linear or log10 y axis,
// three ticks on each axis. Draws into `host`, replacing what was there.
function drawChart(host, lines, { t0, t1, log = false, fmt = String }) {
  const W = 480, H = 160, L = 46, R = 8, T = 8, B = 18;
  const values = lines.flatMap((l) => l.points.map((p) => p[1])).filter((v) => (log ? v > 0 : v >= 0));
  let lo = 0, hi = Math.max(...values, 0);
  if (log) {
    lo = Math.floor(Math.log10(Math.min(...values, 1)));
    hi = Math.max(Math.ceil(Math.log10(Math.max(...values, 10))), lo + 1);
  } else if (hi === 0) hi = 1;
  const x = (t) => L + ((t - t0) / Math.max(t1 - t0, 1)) * (W - L - R);
  const y = (v) => {
    const f = log ? (Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo) : v / hi;
    return H - B - f * (H - T - B);
  };
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
  root.append(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }), svg('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
  for (const f of [0, 0.5, 1]) {
    const v = log ? 10 ** (lo + f * (hi - lo)) : f * hi;
    root.append(svg('text', { class: 'tick', x: L - 4, y: y(v) + 3, 'text-anchor': 'end' }, fmt(v)));
    const t = t0 + f * (t1 - t0);
    root.append(svg('text', { class: 'tick', x: x(t), y: H - 4, 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle' }, hhmm(t)));
  }
  for (const l of lines) {
    if (l.points.length === 0) continue;
    const d = l.points.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    const path = svg('path', { class: 'series', d, stroke: l.color, 'data-kind': l.kind });
    if (l.dash) path.setAttribute('stroke-dasharray', '4 3');
    root.append(path);
    if (l.points.length === 1) root.append(svg('circle', { cx: x(l.points[0][0]), cy: y(l.points[0][1]), r: 2.5, fill: l.color }));
  }
  host.replaceChildren(root);
}

const fmtRate = (v) => (v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2));
const fmtDuration = (ms) => (ms >= 1000 ? `${+(ms / 1000).toPrecision(2)} s` : `${+ms.toPrecision(2)} ms`);

async function loadStats() {
  if (!state.key) return;
  let stats;
  try { stats = await api('/api/v1/stats/jobs?minutes=60'); } catch (e) { console.warn('loading stats failed', e); return; }
  const t0 = Date.parse(stats.since), t1 = Date.parse(stats.until);
  const step = stats.step_s * 1000;
  const rate = [], latency = [];
  for (const s of stats.series) {
    const color = KIND_COLORS[s.kind] || '#555';
    // Minutes without an ended job are 0 jobs/s; their durations are unknown.
    const byMinute = new Map(s.points.map((p) => [Date.parse(p.t), p]));
    const perS = [];
    for (let t = t0; t <= t1; t += step) perS.push([t, byMinute.has(t) ? byMinute.get(t).per_s : 0]);
    rate.push({ kind: s.kind, color, points: perS });
    latency.push({ kind: s.kind, color, points: s.points.map((p) => [Date.parse(p.t), p.p50_ms]) });
    latency.push({ kind: s.kind, color, dash: true, points: s.points.map((p) => [Date.parse(p.t), p.p99_ms]) });
  }
  drawChart($('#chart-rate'), rate, { t0, t1, fmt: fmtRate });
  drawChart($('#chart-latency'), latency, { t0, t1, log: true, fmt: fmtDuration });
  const total = stats.series.reduce((n, s) => n + s.points.reduce((m, p) => m + p.succeeded + p.failed, 0), 0);
  $('#charts-info').textContent = `(${total} job${total === 1 ? '' : 's'} ended)`;
  $('#charts-legend').replaceChildren(...stats.series.map((s) => el('span', { 'data-kind': s.kind }, el('i', { class: `k-${s.kind}` }), s.kind)));
}

// At most one refresh every 2 s however many jobs end.
let statsPending = null;
function refreshStatsSoon() {
  if (statsPending) return;
  statsPending = setTimeout(() => { statsPending = null; loadStats(); }, 2000);
}

// --- monitors ---

// The response times of the last checks as a line; a red dot where a check
// was down.
function sparkline(recent) {
  const W = 160, H = 28, P = 3;
  const root = svg('svg', { class: 'spark', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${recent.length} checks` });
  const ms = recent.map((r) => (typeof r.ms === 'number' ? r.ms : 0));
  const hi = Math.max(...ms, 1);
  const x = (i) => P + (recent.length > 1 ? (i / (recent.length - 1)) * (W - 2 * P) : (W - 2 * P) / 2);
  const y = (v) => H - P - (v / hi) * (H - 2 * P);
  if (recent.length) root.append(svg('path', { d: ms.map((v, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ') }));
  recent.forEach((r, i) => { if (!r.ok) root.append(svg('circle', { class: 'down', cx: x(i), cy: y(ms[i]), r: 2 })); });
  return root;
}

const pct = (v) => (typeof v === 'number' ? `${v.toFixed(v === 100 ? 0 : 1)}%` : '–');
const msOrDash = (v) => (typeof v === 'number' ? fmtMs(v) : '–');

async function loadMonitors() {
  const body = $('#monitors-body');
  if (!state.key) { body.replaceChildren(); return; }
  let list;
  try { list = await api('/api/v1/monitors'); } catch (e) { console.warn('loading monitors failed', e); return; }
  body.replaceChildren(...list.items.map((m) => {
    const last = m.last_check;
    const lastText = last ? `${last.status ?? last.error ?? ''} · ${new Date(last.checked_at).toLocaleTimeString()}` : 'not yet';
    const tr = el('tr', {},
      el('td', { class: 'input', text: m.url }),
      el('td', {}, el('span', { class: `badge ${m.state}`, text: m.state })),
      el('td', {}, sparkline(m.recent)),
      el('td', { text: `${pct(m.uptime_24h)} / ${pct(m.uptime_7d)}` }),
      el('td', { text: `${msOrDash(m.p50_ms_24h)} / ${msOrDash(m.p95_ms_24h)}` }),
      el('td', { class: 'muted', text: lastText }),
      el('td', {},
        el('button', { type: 'button', class: 'link', text: m.paused ? 'resume' : 'pause',
          onclick: () => api(`/api/v1/monitors/${encodeURIComponent(m.id)}`, { method: 'PATCH', body: { paused: !m.paused } }).then(loadMonitors) }),
        ' ',
        el('button', { type: 'button', class: 'link', text: 'delete',
          onclick: () => api(`/api/v1/monitors/${encodeURIComponent(m.id)}`, { method: 'DELETE' }).then(loadMonitors) })));
    tr.dataset.monitorId = m.id;
    tr.dataset.state = m.state;
    return tr;
  }));
  if (list.items.length === 0) body.append(el('tr', {}, el('td', { colspan: '7', class: 'muted', text: 'no monitors yet' })));
}

async function createMonitor(form) {
  const error = $('#monitor-error');
  error.textContent = '';
  try {
    await api('/api/v1/monitors', { method: 'POST', body: { url: form.url.value.trim(), interval_s: intOrText(form.interval_s.value.trim()) } });
    form.url.value = '';
    loadMonitors();
  } catch (e) { error.textContent = e.message; }
}

// Checks end as job events of kind check_url: the table follows them (at
// most once a second), and every 10 s anyway.
let monitorsPending = null;
function refreshMonitorsSoon() {
  if (monitorsPending) return;
  monitorsPending = setTimeout(() => { monitorsPending = null; loadMonitors(); }, 1000);
}

function useKey(key) {
  state.key = key;
  if (key) localStorage.setItem(KEY_STORE, key); else localStorage.removeItem(KEY_STORE);
  clearAuthProblem();
  if (!key) showAuthProblem('Enter an API key to see and submit jobs.');
  state.jobs = new Map();
  connectEvents();
  loadJobs();
  state.selected.offset = 0;
  loadSelected();
  loadStats();
  loadMonitors();
}

function wire() {
  $('#metrics-link').addEventListener('click', openMetrics);
  const keyInput = $('#api-key');
  keyInput.value = state.key;
  $('#key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const key = keyInput.value.trim();
    const err = $('#key-error');
    err.textContent = '';
    if (!(key.startsWith('crk_') && key.length > 4 && key.length <= 128)) {
      err.textContent = 'an API key looks like crk_ followed by hex digits';
      keyInput.classList.add('invalid');
      return;
    }
    useKey(key);
  });
  $('#key-forget').addEventListener('click', () => { keyInput.value = ''; useKey(''); });
  for (const form of $$('form.job-form')) {
    form.addEventListener('submit', (e) => { e.preventDefault(); submitForm(form); });
  }
  let cityTimer = null;
  $('#city-input').addEventListener('input', () => { clearTimeout(cityTimer); cityTimer = setTimeout(loadCities, 200); });
  $('#hotels-all').addEventListener('change', (e) => {
    for (const i of $$('#hotels-body input.pick')) i.checked = e.target.checked;
    updateSaveButton();
  });
  $('#save-selected').addEventListener('click', saveSelected);
  $('#monitor-form').addEventListener('submit', (e) => { e.preventDefault(); createMonitor(e.target); });
  let timer = null;
  $('#sel-search').addEventListener('input', (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.selected.q = e.target.value.trim(); state.selected.offset = 0; loadSelected(); }, 250);
  });
  $('#sel-prev').addEventListener('click', () => { state.selected.offset = Math.max(0, state.selected.offset - SELECTED_PAGE); loadSelected(); });
  $('#sel-next').addEventListener('click', () => { state.selected.offset += SELECTED_PAGE; loadSelected(); });
  for (const b of $$('#selected-table button.sort')) {
    b.addEventListener('click', () => {
      const col = b.dataset.order;
      const s = state.selected;
      const descFirst = col !== 'name' && col !== 'rank';
      if (s.order === col) s.order = `-${col}`;
      else if (s.order === `-${col}`) s.order = col;
      else s.order = descFirst ? `-${col}` : col;
      s.offset = 0;
      loadSelected();
    });
  }
}

async function main() {
  wire();
  checkReady();
  setInterval(checkReady, 5000);
  // The charts' window moves on even when no job ends.
  setInterval(loadStats, 30000);
  setInterval(loadMonitors, 10000);
  try {
    state.config = await api('/api/v1/ui-config', { auth: false });
  } catch (e) {
    showAuthProblem(`The dashboard settings could not be loaded: ${e.message}`);
    return;
  }
  const c = state.config;
  if (c.adminer_url) {
    const a = $('#adminer-link');
    a.href = c.adminer_url;
    a.hidden = false;
  }
  if (c.demo && c.demo.enabled) {
    const d = $('#demo-info');
    d.textContent = `Demo traffic: a random factorization job every ${c.demo.interval_secs} s, as the key named "${c.demo.key_name}".`;
    d.hidden = false;
  }
  for (const section of $$('section.kind')) section.hidden = !c.kinds.includes(section.dataset.kind);
  await loadCities();
  useKey(state.key);
  document.body.dataset.ready = 'true';
}

main();
