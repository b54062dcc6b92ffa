// Drives the dashboard in Debian's headless Chromium with playwright-core.
// Run by crates/e2e/tests/dashboard.rs, which starts the gateway, a worker, a
// persister and a generated hotel site, and passes:
//   BASE_URL   the gateway, e.g. http://127.0.0.1:41234
//   API_KEY    a valid key
//   SITE_URL   a page of the generated hotel site (a monitor checks it)
//   ARTIFACTS  where screenshots go (an ignored folder)
//   CHROMIUM   the browser (default /usr/bin/chromium)
// Exits non-zero with a message on the first failed expectation.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;
// A page of the hotel site the test serves, for a monitor.
const SITE_URL = process.env.SITE_URL;
const KEY = process.env.API_KEY;
const ARTIFACTS = process.env.ARTIFACTS || 'artifacts/dashboard';
if (!BASE || !KEY || !SITE_URL) throw new Error('BASE_URL, API_KEY and SITE_URL are required');
mkdirSync(ARTIFACTS, { recursive: true });

const step = (name) => console.log(`[dashboard] ${name}`);
function expect(cond, message) {
  if (!cond) throw new Error(`expectation failed: ${message}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
const pageErrors = [];
const consoleErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
if (process.env.DEBUG) {
  page.on('console', (m) => console.log(`[console] ${m.type()}: ${m.text()}`));
  page.on('websocket', (ws) => ws.on('framereceived', (f) => console.log(`[ws] ${f.payload}`)));
}
page.on('dialog', (d) => { pageErrors.push(`unexpected dialog: ${d.message()}`); d.dismiss(); });
const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
const rowOf = (kind, id) => page.locator(`tbody[data-jobs="${kind}"] tr[data-job-id="${id}"]`);
const noXss = async (where) => {
  const flag = await page.evaluate(() => window.__xss);
  expect(flag === undefined, `${where}: injected script ran (window.__xss = ${flag})`);
};

async function api(path, init = {}) {
  const res = await fetch(BASE + path, {
    ...init,
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', ...(init.headers || {}) },
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

let failed = false;
try {
  step('open the page without a key');
  const response = await page.goto(`${BASE}/`);
  const csp = response.headers()['content-security-policy'] || '';
  expect(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), `CSP forbids inline script: ${csp}`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  await page.locator('#auth-banner').waitFor({ state: 'visible' });
  expect((await page.textContent('#ready-status')).includes('ready'), 'readiness shown');
  expect(await page.locator('a[href="/docs/"]').count() === 1, 'Swagger UI link');
  expect(await page.locator('a[href="/metrics"]').count() === 1, 'metrics link');
  // The gateway is started with CRUNCH_ADMINER_URL (dashboard.rs).
  await page.locator('#adminer-link').waitFor({ state: 'visible' });
  expect(await page.getAttribute('#adminer-link', 'href') === 'http://127.0.0.1:8088/', 'Adminer link');
  await shot('01-no-key');

  step('a wrong key is refused with a clear 401 message');
  await page.fill('#api-key', `crk_${'0'.repeat(64)}`);
  await page.click('#key-form button[type="submit"]');
  await page.waitForFunction(() => document.querySelector('#auth-banner').textContent.includes('401'));
  expect(await page.locator('#api-key.invalid').count() === 1, 'key box marked invalid');
  await shot('02-bad-key');
  await page.fill('#api-key', 'not-a-key');
  await page.click('#key-form button[type="submit"]');
  expect((await page.textContent('#key-error')).includes('crk_'), 'malformed key explained');

  step('the right key: events go live');
  await page.fill('#api-key', KEY);
  await page.click('#key-form button[type="submit"]');
  await page.waitForFunction(() => document.querySelector('#ws-status').textContent === 'events: live', null, { timeout: 15000 });
  expect(await page.locator('#auth-banner').isHidden(), '401 banner gone');
  expect(await page.evaluate(() => localStorage.getItem('crunch.apiKey')) === KEY, 'key kept in localStorage');

  step('submit a factorization from the form and see it complete');
  await page.fill('form[data-kind="factorize"] input[name="n"]', '1000');
  await page.click('form[data-kind="factorize"] button[type="submit"]');
  const row1000 = page.locator('tbody[data-jobs="factorize"] tr', { hasText: '2^3 × 5^3' });
  await row1000.waitFor({ timeout: 20000 });
  expect((await row1000.locator('.badge').textContent()) === 'succeeded', 'status succeeded');

  step('a job submitted elsewhere appears and completes live (WebSocket)');
  const other = await api('/api/v1/jobs', { method: 'POST', body: JSON.stringify({ kind: 'factorize', params: { n: '18446744073709551617' }, fresh: true }) });
  expect(other.status === 202, `API submit: ${other.status}`);
  const liveRow = rowOf('factorize', other.body.id);
  await liveRow.waitFor({ timeout: 10000 });
  await page.waitForFunction((id) => document.querySelector(`tr[data-job-id="${id}"]`)?.dataset.status === 'succeeded', other.body.id, { timeout: 20000 });
  expect((await liveRow.locator('td.result').textContent()).includes('274177 × 67280421310721'), '2^64+1 = 274177 × 67280421310721');
  await shot('03-factorized');

  step('a big number shows its ECM level and curves live, then is cancelled');
  // (2^521 - 1)(2^127 - 1): 196 digits, a 39-digit factor ECM would need
  // days for; the row says which level runs and how many curves are done.
  const big = (2n ** 521n - 1n) * (2n ** 127n - 1n);
  const ecmJob = await api('/api/v1/jobs', { method: 'POST', body: JSON.stringify({ kind: 'factorize', params: { n: big.toString() }, fresh: true }) });
  expect(ecmJob.status === 202, `API submit: ${ecmJob.status}`);
  const ecmRow = rowOf('factorize', ecmJob.body.id);
  await ecmRow.locator('.stage', { hasText: /^ECM p\d+: \d+ of \d+ curves/ }).waitFor({ timeout: 20000 });
  const firstStage = await ecmRow.locator('.stage').textContent();
  await page.waitForFunction(([id, before]) => {
    const s = document.querySelector(`tr[data-job-id="${id}"] .stage`);
    return s && s.textContent !== before;
  }, [ecmJob.body.id, firstStage], { timeout: 20000 });
  expect((await ecmRow.locator('.stage').textContent()).includes('196-digit cofactor'), 'the stage names the cofactor');
  await shot('03b-ecm-progress');
  await api(`/api/v1/jobs/${ecmJob.body.id}`, { method: 'DELETE' });
  await page.waitForFunction((id) => document.querySelector(`tr[data-job-id="${id}"]`)?.dataset.status === 'cancelled', ecmJob.body.id, { timeout: 20000 });
  expect(await ecmRow.locator('.stage').count() === 0, 'no stage once the job has ended');

  step('inline errors for bad input, without a request');
  // The server's own check (POST /api/v1/jobs/validate) answers: wait for it.
  const inlineError = async (selector) => {
    await page.waitForFunction((sel) => document.querySelector(sel).textContent !== '', selector, { timeout: 10000 });
    return page.textContent(selector);
  };
  let posts = 0;
  page.on('request', (r) => { if (r.method() === 'POST' && r.url().endsWith('/api/v1/jobs')) posts += 1; });
  await page.fill('form[data-kind="factorize"] input[name="n"]', '12a');
  await page.click('form[data-kind="factorize"] button[type="submit"]');
  const nError = await inlineError('form[data-kind="factorize"] [data-error-for="params.n"]');
  expect(nError.includes('digits 0-9 only'), `inline error for n: ${nError}`);
  await page.fill('form[data-kind="primes"] input[name="from"]', '10');
  await page.fill('form[data-kind="primes"] input[name="to"]', '5');
  await page.click('form[data-kind="primes"] button[type="submit"]');
  const fromError = await inlineError('form[data-kind="primes"] [data-error-for="params.from"]');
  expect(fromError.includes('must not exceed to'), `inline error for from: ${fromError}`);
  await page.fill('form[data-kind="check_url"] input[name="url"]', 'javascript:alert(1)');
  await page.click('form[data-kind="check_url"] button[type="submit"]');
  const urlError = await inlineError('form[data-kind="check_url"] [data-error-for="params.url"]');
  expect(urlError.includes('only http and https'), `inline error for url: ${urlError}`);
  expect(posts === 0, `client-side checks sent ${posts} requests`);
  await shot('04-inline-errors');

  step("the API's own error message lands next to its field");
  await page.route('**/api/v1/jobs', (route) => (route.request().method() === 'POST'
    ? route.fulfill({ status: 400, contentType: 'application/json', body: JSON.stringify({ error: { code: 'invalid_params', message: 'params.to makes the range too wide (server says)', field: 'params.to' } }) })
    : route.continue()));
  await page.fill('form[data-kind="primes"] input[name="from"]', '0');
  await page.fill('form[data-kind="primes"] input[name="to"]', '100');
  await page.click('form[data-kind="primes"] button[type="submit"]');
  await page.waitForFunction(() => document.querySelector('form[data-kind="primes"] [data-error-for="params.to"]').textContent.includes('server says'));
  await page.unroute('**/api/v1/jobs');

  step('a prime list shows its count and first primes');
  await page.selectOption('form[data-kind="primes"] select[name="mode"]', 'list');
  await page.click('form[data-kind="primes"] button[type="submit"]');
  const primesRow = page.locator('tbody[data-jobs="primes"] tr', { hasText: '25 primes' });
  await primesRow.waitFor({ timeout: 20000 });
  expect((await primesRow.textContent()).includes('first: 2, 3, 5, 7, 11'), 'first primes shown');

  step('a count up to 2^64 - 1 from the form: progress moves live, then it is cancelled');
  await page.selectOption('form[data-kind="primes"] select[name="mode"]', 'count');
  await page.fill('form[data-kind="primes"] input[name="from"]', '0');
  await page.fill('form[data-kind="primes"] input[name="to"]', '18446744073709551615');
  await page.click('form[data-kind="primes"] button[type="submit"]');
  const wideRow = page.locator('tbody[data-jobs="primes"] tr', { hasText: '18446744073709551615' });
  await wideRow.waitFor({ timeout: 20000 });
  const wideId = await wideRow.getAttribute('data-job-id');
  await page.waitForFunction((id) => {
    const bar = document.querySelector(`tr[data-job-id="${id}"] progress`);
    return bar && bar.value > 0;
  }, wideId, { timeout: 90000 });
  await shot('04b-count-to-2^64');
  await api(`/api/v1/jobs/${wideId}`, { method: 'DELETE' });
  await page.waitForFunction((id) => document.querySelector(`tr[data-job-id="${id}"]`)?.dataset.status === 'cancelled', wideId, { timeout: 20000 });

  step('the n-th prime from the form');
  await page.fill('form[data-kind="nth_prime"] input[name="n"]', '1000000000');
  await page.click('form[data-kind="nth_prime"] button[type="submit"]');
  const nthRow = page.locator('tbody[data-jobs="nth_prime"] tr', { hasText: '22801763489' });
  await nthRow.waitFor({ timeout: 30000 });
  expect((await nthRow.textContent()).includes('prime number 1000000000'), 'the result names n');

  step('a gene file: upload from the browser, parsed live');
  const fasta = Array.from({ length: 13 }, (_, i) => `>gene ${i} synthetic\n${'acgtgc'.repeat(10)}\n${'ggcc'.repeat(5)}\n`).join('');
  await page.setInputFiles('form[data-kind="genes"] input[name="file"]', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from(fasta) });
  await page.click('form[data-kind="genes"] button[type="submit"]');
  const formatError = await inlineError('form[data-kind="genes"] [data-error-for="format"]');
  expect(formatError.includes('could not be inferred'), `inline error for the format: ${formatError}`);
  await page.setInputFiles('form[data-kind="genes"] input[name="file"]', { name: 'demo_file.fasta', mimeType: 'text/plain', buffer: Buffer.from(fasta) });
  await page.click('form[data-kind="genes"] button[type="submit"]');
  const genesRow = page.locator('tbody[data-jobs="genes"] tr', { hasText: '13 sequences stored' });
  await genesRow.waitFor({ timeout: 30000 });
  expect((await genesRow.locator('td.input').textContent()) === 'demo_file.fasta', 'the file name is shown');
  expect((await genesRow.textContent()).includes('GC 75.0%'), `GC shown: ${await genesRow.textContent()}`);
  await shot('05-gene-file');

  step('an XSS payload in a URL check stays text');
  const payload = 'http://10.0.0.1/"><img src=x onerror=window.__xss=1><script>window.__xss=2</script>';
  await page.fill('form[data-kind="check_url"] input[name="url"]', payload);
  await page.fill('form[data-kind="check_url"] input[name="retries"]', '0');
  await page.click('form[data-kind="check_url"] button[type="submit"]');
  const checkRow = page.locator('tbody[data-jobs="check_url"] tr', { hasText: 'blocked' });
  await checkRow.waitFor({ timeout: 20000 });
  expect(await page.locator('tbody[data-jobs="check_url"] img, tbody[data-jobs="check_url"] script').count() === 0, 'no element injected');
  expect((await checkRow.locator('td.input').textContent()).includes('10.0.0.1'), 'URL shown as text');
  await noXss('URL check');
  await shot('06-url-check-xss');

  step('hotels: pick a city, scrape, see the hotels');
  await page.fill('#city-input', 'Dub');
  await page.waitForFunction(() => [...document.querySelectorAll('#city-options option')].some((o) => o.value === 'Dubai'));
  await page.fill('#city-input', 'Dubai');
  await page.click('form[data-kind="scrape_hotels"] button[type="submit"]');
  await page.locator('tbody[data-jobs="scrape_hotels"] tr', { hasText: '30 hotels' }).waitFor({ timeout: 30000 });
  await page.waitForFunction(() => document.querySelectorAll('#hotels-body input.pick').length === 30, null, { timeout: 10000 });

  step('select several, save through Kafka, find them in the selected table');
  const picks = page.locator('#hotels-body input.pick');
  for (const i of [0, 1, 2]) await picks.nth(i).check();
  expect((await page.textContent('#save-selected')).includes('(3)'), 'save button counts the picks');
  const pickedNames = await Promise.all([0, 1, 2].map((i) => page.locator('#hotels-body tr').nth(i).locator('td').nth(1).textContent()));
  await page.click('#save-selected');
  await page.waitForFunction(() => document.querySelector('#save-status').textContent === '3 saved', null, { timeout: 30000 });
  await page.waitForFunction(() => document.querySelectorAll('#selected-body tr[data-hotel-id]').length === 3);
  const selectedText = await page.textContent('#selected-body');
  for (const n of pickedNames) expect(selectedText.includes(n), `${n} in the selected table`);
  await shot('07-selected');

  step('select all, then page, order and search the selected table');
  await page.check('#hotels-all');
  await page.click('#save-selected');
  await page.waitForFunction(() => document.querySelector('#save-status').textContent === '30 saved', null, { timeout: 30000 });
  await page.waitForFunction(() => document.querySelector('#sel-info').textContent === '1–10 of 30');
  await page.click('#sel-next');
  await page.waitForFunction(() => document.querySelector('#sel-info').textContent === '11–20 of 30');
  await page.click('#selected-table button.sort[data-order="name"]');
  await page.waitForFunction(() => document.querySelector('#sel-info').textContent === '1–10 of 30');
  await page.waitForFunction(() => document.querySelector('#selected-body tr td')?.textContent === 'H01000');
  await page.click('#selected-table button.sort[data-order="name"]');
  await page.waitForFunction(() => document.querySelector('#selected-body tr td')?.textContent === 'H01029');
  await page.fill('#sel-search', 'H01004');
  await page.waitForFunction(() => document.querySelector('#sel-info').textContent === '1–1 of 1');
  expect((await page.textContent('#selected-body')).includes('H01004'), 'search finds H01004');
  await page.locator('#selected-body button', { hasText: 'remove' }).click();
  await page.waitForFunction(() => document.querySelector('#sel-info').textContent === '0 of 0', null, { timeout: 30000 });
  await page.fill('#sel-search', '');
  await page.waitForFunction(() => document.querySelector('#sel-info').textContent === '1–10 of 29');
  await shot('08-selected-paged');

  step('hostile hotel names and descriptions stay text');
  await page.fill('#city-input', 'Paris');
  await page.click('form[data-kind="scrape_hotels"] button[type="submit"]');
  await page.locator('tbody[data-jobs="scrape_hotels"] tr', { hasText: '3 hotels' }).waitFor({ timeout: 30000 });
  await page.waitForFunction(() => document.querySelectorAll('#hotels-body input.pick').length === 3, null, { timeout: 10000 });
  const hotelsText = await page.textContent('#hotels-body');
  expect(hotelsText.includes('<img src=x onerror=window.__xss=1>Evil 3000'), `name shown literally: ${hotelsText.slice(0, 200)}`);
  expect(hotelsText.includes('<script>window.__xss=2</script>'), 'description shown literally');
  expect(await page.locator('#hotels-body img, #hotels-body script, #hotels-body b').count() === 0, 'no element injected');
  await page.check('#hotels-all');
  await page.click('#save-selected');
  await page.waitForFunction(() => document.querySelector('#save-status').textContent === '3 saved', null, { timeout: 30000 });
  await page.fill('#sel-search', 'Evil');
  await page.waitForFunction(() => document.querySelector('#sel-info').textContent === '1–3 of 3');
  expect((await page.textContent('#selected-body')).includes('<img src=x onerror=window.__xss=1>Evil 3000'), 'selected hostile name shown literally');
  expect(await page.locator('#selected-body img').count() === 0, 'no element injected in the selected table');
  await noXss('hotels');
  await shot('09-hostile-hotels');

  step("any city: looked up through the site's search, or said to be unknown");
  await page.fill('#city-input', 'Reyk');
  await page.waitForFunction(() => document.querySelector('#city-hint').textContent.includes('not in the catalogue yet'));
  await page.click('form[data-kind="scrape_hotels"] button[type="submit"]');
  await page.locator('tbody[data-jobs="scrape_hotels"] tr', { hasText: "in Reykjavik, Iceland (found through the site's search)" }).waitFor({ timeout: 30000 });
  await page.waitForFunction(() => document.querySelector('#city-input').value === 'Reykjavik'
    && document.querySelectorAll('#hotels-body input.pick').length === 10, null, { timeout: 10000 });
  expect(await page.textContent('#city-hint') === '', 'Reykjavik is in the catalogue now');
  await page.fill('#city-input', 'Atlantis');
  await page.click('form[data-kind="scrape_hotels"] button[type="submit"]');
  await page.locator('tbody[data-jobs="scrape_hotels"] tr', { hasText: "found no city for 'Atlantis'" }).waitFor({ timeout: 30000 });
  await shot('10-city-search');

  step('a monitor: checked every second, its state and sparkline live');
  const urlChecks = await page.locator('tbody[data-jobs="check_url"] tr[data-job-id]').count();
  await page.fill('#monitor-form input[name="url"]', SITE_URL);
  await page.fill('#monitor-form input[name="interval_s"]', '0');
  await page.click('#monitor-form button[type="submit"]');
  await page.waitForFunction(() => document.querySelector('#monitor-error').textContent.includes('interval_s'));
  await page.fill('#monitor-form input[name="interval_s"]', '1');
  await page.click('#monitor-form button[type="submit"]');
  await page.waitForFunction(() => {
    const tr = document.querySelector('#monitors-body tr[data-monitor-id]');
    return tr && tr.dataset.state === 'up' && tr.querySelector('svg.spark path');
  }, null, { timeout: 20000 });
  const points = await page.getAttribute('#monitors-body svg.spark', 'aria-label');
  await page.waitForFunction((n) => document.querySelector('#monitors-body svg.spark').getAttribute('aria-label') !== n, points, { timeout: 15000 });
  expect((await page.textContent('#monitors-body')).includes('100%'), 'uptime shown');
  expect(await page.locator('tbody[data-jobs="check_url"] tr[data-job-id]').count() === urlChecks, "a monitor's checks stay out of the URL checks table");
  await shot('11-monitors');
  await page.locator('#monitors-body button', { hasText: 'pause' }).click();
  await page.waitForFunction(() => document.querySelector('#monitors-body tr[data-monitor-id]').dataset.state === 'paused');
  await page.locator('#monitors-body button', { hasText: 'delete' }).click();
  await page.waitForFunction(() => document.querySelector('#monitors-body').textContent.includes('no monitors yet'));

  step("the charts draw the last hour from the server's numbers, live");
  await page.waitForFunction(() => document.querySelector('#chart-rate path.series[data-kind="factorize"]')
    && document.querySelector('#chart-latency path.series[data-kind="scrape_hotels"]'), null, { timeout: 10000 });
  const legend = await page.textContent('#charts-legend');
  for (const k of ['factorize', 'primes', 'genes', 'scrape_hotels']) expect(legend.includes(k), `the legend lists ${k}: ${legend}`);
  const ended = async () => Number(((await page.textContent('#charts-info')).match(/\((\d+) jobs? ended\)/) || [])[1]);
  const stats = (await api('/api/v1/stats/jobs?minutes=60')).body;
  const before = stats.series.reduce((n, x) => n + x.points.reduce((m, p) => m + p.succeeded + p.failed, 0), 0);
  expect(await ended() <= before && before > 0, `the page counts what the API does: ${await ended()} of ${before}`);
  const one = await api('/api/v1/jobs', { method: 'POST', body: JSON.stringify({ kind: 'factorize', params: { n: '1000003' }, fresh: true }) });
  expect(one.status === 202, `submitted: ${one.status}`);
  await page.waitForFunction((n) => Number((document.querySelector('#charts-info').textContent.match(/\((\d+) jobs? ended\)/) || [])[1]) > n,
    before, { timeout: 15000 });
  await shot('12-charts');

  step('reload: the key is remembered and the lists come back');
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  await page.waitForFunction(() => document.querySelector('#ws-status').textContent === 'events: live', null, { timeout: 15000 });
  await page.locator('tbody[data-jobs="factorize"] tr', { hasText: '2^3 × 5^3' }).waitFor();
  await noXss('after reload');

  expect(pageErrors.length === 0, `page errors: ${pageErrors.join('; ')}`);
  const violations = consoleErrors.filter((m) => /Content Security Policy/i.test(m));
  expect(violations.length === 0, `CSP violations: ${violations.join('; ')}`);
  step('all passed');
} catch (e) {
  failed = true;
  console.error(`[dashboard] FAILED: ${e.message}`);
  await shot('failure').catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
