// End-to-end test of the web console: Debian's chromium driven by playwright-core against a real
// `facekit serve` (the test-hooks build, whose captcha answer is forced by FK_TEST_CAPTCHA_ANSWER) on
// loopback with a temporary data directory. Run by tests/test_console_e2e.sh, which prepares the data
// directory and accounts and passes everything in the environment. Prints "N passed, N failed".
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const env = (k) => { const v = process.env[k]; if (!v) { console.error(`console.e2e: ${k} is not set`); process.exit(2); } return v; };
const BIN = env('FK_SERVE_BIN'), DATA = env('FK_E2E_DATA'), PORT = env('FK_E2E_PORT'), CAPTCHA = env('FK_E2E_CAPTCHA');
const SHOTS = env('FK_E2E_SHOTS'), FACES = env('FK_E2E_FACES'), WEB_DIR = env('FK_E2E_WEB');
const PW = { admin: env('FK_E2E_ADMIN_PW'), auditor: env('FK_E2E_AUDITOR_PW'), victim: env('FK_E2E_VICTIM_PW'), oper: env('FK_E2E_OPER_PW') };
const EXTRA = (process.env.FK_E2E_SERVE_ARGS || '').split(' ').filter(Boolean);
const API = `http://127.0.0.1:${PORT}`;

let passed = 0, failed = 0;
const results = [];
async function step(name, fn) {
  const t0 = Date.now();
  try { await fn(); passed++; results.push(`PASS ${name}`); console.log(`PASS ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`); }
  catch (e) {
    failed++; results.push(`FAIL ${name}: ${e.message}`); console.log(`FAIL ${name}: ${e.stack || e}`);
    // A failed step may leave a dialog open or a route installed: the next step starts from a clean page.
    try { await admin.unrouteAll({ behavior: 'ignoreErrors' }); await admin.goto(`${BASE}/#/dashboard`); await admin.reload(); } catch { /* the next step reports */ }
  }
}
function check(cond, msg) { if (!cond) throw new Error(msg); }

// ---- the service ----
let srv = null;
const log = fs.openSync(path.join(path.dirname(DATA), 'serve.log'), 'a');
async function startService() {
  srv = spawn(BIN, ['serve', '--data', DATA, '--listen', `127.0.0.1:${PORT}`, ...EXTRA],
    { env: { ...process.env, FK_TEST_CAPTCHA_ANSWER: CAPTCHA }, stdio: ['ignore', log, log] });
  const exited = new Promise((r) => srv.once('exit', (c) => r(c)));
  for (let i = 0; i < 600; i++) {
    const done = await Promise.race([exited.then((c) => ({ c })), new Promise((r) => setTimeout(r, 200))]);
    if (done) throw new Error(`facekit serve exited with ${done.c} (see ${path.dirname(DATA)}/serve.log)`);
    try { const r = await fetch(`${API}/api/v1/health`); if (r.ok) return; } catch { /* not up yet */ }
  }
  throw new Error('facekit serve did not answer /api/v1/health within 120 s');
}
async function stopService() {
  if (!srv || srv.exitCode !== null) return;
  const gone = new Promise((r) => srv.once('exit', r));
  srv.kill('SIGTERM');
  const t = setTimeout(() => srv.kill('SIGKILL'), 20000);
  await gone;
  clearTimeout(t);
}

// ---- the browser ----
const shotNames = [];
let shotN = 0;
async function shot(page, name) {
  const f = path.join(SHOTS, `${String(++shotN).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: f, fullPage: true });
  shotNames.push(path.basename(f));
}

async function login(page, base, user, pw, { expectOk = true } = {}) {
  // A fresh page load each time: no message or captcha from an earlier attempt can be mistaken for this one.
  await page.goto(`${base}/#/dashboard`);
  await page.reload();
  await page.waitForSelector('[data-testid=login-form]');
  await page.waitForSelector('[data-testid=captcha-img]');
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', pw);
  await page.fill('input[name=captcha]', CAPTCHA);
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/login')),
    page.click('[data-testid=login-form] button[type=submit]'),
  ]);
  if (!expectOk) {
    await page.waitForSelector('[data-testid=login-form] [data-msg=error]');
    return (await page.textContent('[data-testid=login-form] [data-msg=error]')).trim();
  }
  const which = await Promise.race([
    page.waitForSelector('[data-testid=who]', { timeout: 30000 }).then(() => 'in'),
    page.waitForSelector('[data-testid=password-form]', { timeout: 30000 }).then(() => 'pw'),
    page.waitForSelector('[data-testid=login-form] [data-msg=error]', { timeout: 30000 }).then(() => 'err'),
  ]);
  if (which === 'err') throw new Error(`login of ${user} refused: ${await page.textContent('[data-testid=login-form] [data-msg=error]')}`);
  if (which === 'pw') { // an account on a one-time password: set the same password again is refused by some services; use a new one
    const np = `${pw}-2`;
    await page.fill('input[name=new_password]', np);
    await page.fill('input[name=new_password2]', np);
    await page.click('[data-testid=password-form] button[type=submit]');
    await page.waitForSelector('[data-testid=who]');
    PW[user] = np;
  }
}

const nav = async (page, id) => { await page.click(`[data-nav=${id}]`); await page.waitForSelector('main h2'); };
const apiGet = (page, p) => page.evaluate(async (u) => { const r = await fetch(u, { credentials: 'same-origin' }); let b = null; try { b = await r.json(); } catch { /* */ } return { status: r.status, body: b }; }, `/api/v1/${p}`);

const IMG = {
  obama1: `${FACES}/examples/knn_examples/train/obama/obama.jpg`,
  obama2: `${FACES}/examples/knn_examples/train/obama/obama2.jpg`,
  biden1: `${FACES}/examples/knn_examples/train/biden/biden.jpg`,
  biden2: `${FACES}/examples/knn_examples/train/biden/biden2.jpg`,
  obamaProbe: `${FACES}/tests/test_images/obama3.jpg`,
  bidenProbe: `${FACES}/examples/biden.jpg`,
};
for (const [k, f] of Object.entries(IMG)) if (!fs.existsSync(f)) { console.error(`console.e2e: missing test photo ${k}: ${f}`); process.exit(2); }

fs.mkdirSync(SHOTS, { recursive: true });
for (const f of fs.readdirSync(SHOTS)) if (f.endsWith('.png')) fs.rmSync(path.join(SHOTS, f));

await startService();
// The service itself serves the console at / (--web <build>/web): no other server is involved.
const BASE = API;
{
  const r = await fetch(`${API}/`).catch((e) => ({ ok: false, status: String(e) }));
  const html = r.ok ? await r.text() : '';
  if (!html.includes('<div id="app">')) {
    console.error(`console.e2e: facekit serve does not serve the console at ${API}/ (answer ${r.status}; web files ${WEB_DIR}, serve args ${EXTRA.join(' ') || '(none)'})`);
    await stopService();
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  console.log(`facekit serve serves the console at ${API}/`);
}

const browser = await chromium.launch({
  executablePath: process.env.FK_CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--lang=zh-CN', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const newPage = async (opts = {}) => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: 'zh-CN', timezoneId: 'Asia/Shanghai', ...opts });
  await ctx.grantPermissions(['camera']);
  const p = await ctx.newPage();
  p.setDefaultTimeout(60000);
  // confirm() dialogs are accepted, unless a step asks for the next one to be dismissed (p.dismissNext).
  p.on('dialog', (d) => { p.lastDialog = d.message(); if (p.dismissNext) { p.dismissNext = false; d.dismiss(); } else d.accept(); });
  p.on('pageerror', (e) => console.log(`  browser error: ${e.message}`));
  return p;
};

const admin = await newPage();

await step('login page (Chinese by default), wrong captcha refused with the service message', async () => {
  await admin.goto(`${BASE}/`);
  await admin.waitForSelector('[data-testid=captcha-img]');
  check((await admin.textContent('h1')).includes('控制台'), 'login title is not Chinese');
  const src1 = await admin.getAttribute('[data-testid=captcha-img]', 'src');
  check(src1.startsWith('data:image/png;base64,'), 'captcha is not a PNG data URL');
  await admin.click('[data-testid=captcha-refresh]');
  await admin.waitForFunction((s) => document.querySelector('[data-testid=captcha-img]')?.getAttribute('src') !== s, src1);
  await shot(admin, 'login');
  await admin.fill('input[name=username]', 'admin');
  await admin.fill('input[name=password]', PW.admin);
  await admin.fill('input[name=captcha]', 'ZZZZZ' === CAPTCHA ? 'YYYYY' : 'ZZZZZ');
  await admin.click('[data-testid=login-form] button[type=submit]');
  await admin.waitForSelector('[data-testid=login-form] [data-msg=error]');
  const msg = await admin.textContent('[data-testid=login-form] [data-msg=error]');
  check(msg.includes('登录失败，请重新登录！'), `failure message was "${msg}"`);
  check(await admin.inputValue('input[name=username]') === 'admin' && await admin.inputValue('input[name=password]') === PW.admin, 'the form lost what was typed');
  await shot(admin, 'login-failed');
});

await step('admin logs in; dashboard', async () => {
  await login(admin, BASE, 'admin', PW.admin);
  await admin.waitForSelector('[data-testid=health]');
  await admin.waitForSelector('[data-testid=tile-matches]');
  check((await admin.textContent('[data-testid=health]')).includes('正常'), 'health not ok');
  const me = await apiGet(admin, 'auth/me');
  check(me.status === 200 && me.body.user.username === 'admin', 'auth/me after login');
  await shot(admin, 'dashboard');
});

async function createPerson(page, name, photos, purpose) {
  await nav(page, 'persons');
  await page.click('[data-testid=person-new]');
  await page.fill('[data-testid=person-form] input[name=name]', name);
  await page.check('[data-testid=person-form] input[name=consent]');
  await page.fill('[data-testid=person-form] input[name=consent_by]', name);
  await page.fill('[data-testid=person-form] input[name=consent_purpose]', purpose);
  for (let i = 0; i < photos.length; i++) {
    await page.setInputFiles('[data-testid=person-form] [data-testid=file-enrol]', photos[i]);
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=photo-results] > li').length >= n, i + 1);
  }
  return async () => {
    await page.click('[data-testid=person-save]');
    await page.waitForSelector('.modal [data-msg=ok]');
    const items = await page.$$eval('[data-testid=photo-results] > li', (l) => l.map((x) => x.getAttribute('data-status')));
    check(items.length === photos.length && items.every((s) => s === 'enrolled'), `photos not all enrolled: ${items}`);
    await page.click('.modal button.primary');
  };
}

await step('enrol two people from photos with consent and purpose (quality in words)', async () => {
  const save1 = await createPerson(admin, 'Barack Obama', [IMG.obama1, IMG.obama2], '门禁通行');
  const words = await admin.textContent('[data-testid=photo-results]');
  check(words.length > 0, 'no quality feedback shown');
  await shot(admin, 'persons-enrol');
  await save1();
  const save2 = await createPerson(admin, 'Joe Biden', [IMG.biden2], '门禁通行');
  // The first save meets a network failure: the dialog says so and keeps name, consent and photo.
  await admin.route('**/api/v1/persons', (r) => (r.request().method() === 'POST' ? r.abort('connectionreset') : r.continue()));
  await admin.click('[data-testid=person-save]');
  await admin.waitForSelector('[data-testid=person-form] [data-msg=error]');
  check((await admin.textContent('[data-testid=person-form] [data-msg=error]')).includes('网络'), 'no network error shown');
  check(await admin.inputValue('[data-testid=person-form] input[name=name]') === 'Joe Biden' && await admin.isChecked('[data-testid=person-form] input[name=consent]')
    && await admin.inputValue('[data-testid=person-form] input[name=consent_purpose]') === '门禁通行'
    && (await admin.$$('[data-testid=photo-results] > li')).length === 1, 'the new-person form lost what was typed');
  await admin.unroute('**/api/v1/persons');
  await save2();
  await admin.waitForSelector('[data-person="Barack Obama"]');
  await admin.waitForSelector('[data-person="Joe Biden"]');
  const list = await apiGet(admin, 'persons');
  check(list.body.total === 2, `persons total ${list.body.total}`);
  const ob = list.body.items.find((p) => p.name === 'Barack Obama');
  check(ob && ob.faces === 2, `Obama has ${ob && ob.faces} faces`);
  const one = await apiGet(admin, `persons/${ob.id}`);
  check(one.body.consent && one.body.consent.purpose === '门禁通行', 'consent purpose not recorded');
  // Search by name narrows the list.
  await admin.fill('input[name=q]', 'Biden');
  await admin.press('input[name=q]', 'Enter');
  await admin.waitForFunction(() => { const r = document.querySelectorAll('[data-testid=persons-table] tr[data-person]'); return r.length === 1 && r[0].getAttribute('data-person') === 'Joe Biden'; });
  await admin.fill('input[name=q]', '');
  await admin.press('input[name=q]', 'Enter');
  await admin.waitForSelector('[data-person="Barack Obama"]');
  await admin.click('[data-person="Barack Obama"] a');
  await admin.waitForSelector('.modal .thumbs img');
  await shot(admin, 'person-detail');
  await admin.click('.modal-head button');
  await shot(admin, 'persons');
});

await step('webcam capture (fake camera): the photo is checked and refused with the reason in words', async () => {
  await nav(admin, 'persons');
  await admin.click('[data-person="Barack Obama"] [data-testid=enrol]');
  await admin.waitForSelector('[data-testid=enrol-form]');
  await admin.click('[data-testid=enrol-form] .imginput button');
  await admin.waitForSelector('[data-testid=enrol-form] video.webcam');
  await admin.waitForFunction(() => document.querySelector('video.webcam')?.videoWidth > 0);
  await admin.click('[data-testid=enrol-form] .imginput button');
  await admin.waitForSelector('[data-testid=enrol-form] img.preview');
  check(await admin.inputValue('[data-testid=enrol-form] input[name=consent_purpose]') === '门禁通行', 'recorded purpose not prefilled');
  await admin.check('[data-testid=enrol-form] input[name=consent]');
  await admin.fill('[data-testid=enrol-form] input[name=consent_by]', 'Barack Obama');
  await admin.click('[data-testid=enrol-form] button[type=submit]');
  await admin.waitForSelector('[data-testid=photo-results] li[data-status=refused]');
  const txt = await admin.textContent('[data-testid=photo-results]');
  check(txt.includes('未检测到人脸'), `no words for a faceless photo: ${txt}`);
  check(await admin.isChecked('[data-testid=enrol-form] input[name=consent]'), 'consent tick lost after a refusal');
  await shot(admin, 'enrol-webcam-refused');
  await admin.click('.modal-head button');
  const ob = (await apiGet(admin, 'persons')).body.items.find((x) => x.name === 'Barack Obama');
  check(ob.faces === 2, `a refused photo changed the faces: ${ob.faces}`);
});

await step('edit a person (external id, group, metadata); a save that fails on the network keeps what was typed', async () => {
  await nav(admin, 'persons');
  await admin.click('[data-person="Joe Biden"] [data-testid=person-edit]');
  await admin.waitForSelector('[data-testid=person-edit-form]');
  const f = (n) => `[data-testid=person-edit-form] [name=${n}]`;
  await admin.fill(f('external_id'), 'E-1002');
  await admin.fill(f('group'), '访客');
  await admin.fill(f('metadata'), '{"room": "3-201"}');
  // The network fails: the PUT is aborted before it reaches the service.
  await admin.route('**/api/v1/persons/*', (r) => (r.request().method() === 'PUT' ? r.abort('connectionrefused') : r.continue()));
  await admin.click('[data-testid=person-edit-save]');
  await admin.waitForSelector('[data-testid=person-edit-form] [data-msg=error]');
  const msg = await admin.textContent('[data-testid=person-edit-form] [data-msg=error]');
  check(msg.includes('未保存') && msg.includes('网络'), `failed save message: "${msg}"`);
  check(await admin.inputValue(f('external_id')) === 'E-1002' && await admin.inputValue(f('group')) === '访客'
    && await admin.inputValue(f('metadata')) === '{"room": "3-201"}', 'typed values lost after a failed save');
  await shot(admin, 'person-edit-failed');
  await admin.unroute('**/api/v1/persons/*');
  const id = (await apiGet(admin, 'persons')).body.items.find((x) => x.name === 'Joe Biden').id;
  check(!(await apiGet(admin, `persons/${id}`)).body.external_id, 'the aborted save reached the service');
  // The same form, sent again, saves.
  const [resp] = await Promise.all([
    admin.waitForResponse((r) => r.url().endsWith(`/api/v1/persons/${id}`) && r.request().method() === 'PUT'),
    admin.click('[data-testid=person-edit-save]'),
  ]);
  check(resp.status() === 200, `PUT /persons/${id} answered ${resp.status()}`);
  await admin.waitForSelector('.modal [data-testid=person-kv] [data-field=external_id]');
  check((await admin.textContent('.modal [data-field=external_id]')) === 'E-1002', 'external id not shown after saving');
  await shot(admin, 'person-edited');
  await admin.click('.modal-head button');
  const one = (await apiGet(admin, `persons/${id}`)).body;
  check(one.external_id === 'E-1002' && one.group === '访客' && one.metadata && one.metadata.room === '3-201', `person after edit: ${JSON.stringify(one)}`);
  await admin.waitForSelector('[data-person="Joe Biden"]');
});

await step('delete a single face (asks first; cancel keeps it)', async () => {
  await nav(admin, 'persons');
  await admin.click('[data-person="Barack Obama"] a');
  await admin.waitForFunction(() => document.querySelectorAll('.modal [data-testid=faces] figure').length === 2);
  const ob = (await apiGet(admin, 'persons')).body.items.find((x) => x.name === 'Barack Obama');
  const faceId = await admin.getAttribute('.modal [data-testid=faces] figure:last-child', 'data-face');
  admin.dismissNext = true;
  await admin.click('.modal [data-testid=faces] figure:last-child [data-testid=face-delete]');
  await admin.waitForTimeout(300);
  check(admin.lastDialog && admin.lastDialog.includes('Barack Obama'), `no confirmation asked: ${admin.lastDialog}`);
  check((await apiGet(admin, `persons/${ob.id}/faces`)).body.items.length === 2, 'a dismissed confirmation deleted the face');
  const [resp] = await Promise.all([
    admin.waitForResponse((r) => r.url().endsWith(`/api/v1/persons/${ob.id}/faces/${faceId}`) && r.request().method() === 'DELETE'),
    admin.click('.modal [data-testid=faces] figure:last-child [data-testid=face-delete]'),
  ]);
  check(resp.status() === 200, `DELETE face answered ${resp.status()}`);
  await admin.waitForFunction(() => document.querySelectorAll('.modal [data-testid=faces] figure').length === 1);
  await admin.waitForSelector('.modal [data-msg=ok]');
  await shot(admin, 'person-face-deleted');
  await admin.click('.modal-head button');
  const faces = (await apiGet(admin, `persons/${ob.id}/faces`)).body.items;
  check(faces.length === 1 && String(faces[0].id) !== faceId, `faces after delete: ${JSON.stringify(faces)}`);
  check((await apiGet(admin, 'persons')).body.items.find((x) => x.name === 'Barack Obama').faces === 1, 'face count not updated');
});

await step('compare: same person / different, threshold slider live', async () => {
  await nav(admin, 'compare');
  // The slider starts at the threshold in effect and names the model manifest's default (GET /models).
  const m = (await apiGet(admin, 'models')).body;
  check(typeof m.defaults?.threshold === 'number', `no manifest threshold: ${JSON.stringify(m)}`);
  await admin.waitForSelector('[data-testid=threshold-default]');
  check(Math.abs(Number(await admin.getAttribute('[data-testid=threshold-default]', 'data-v')) - m.defaults.threshold) < 1e-9, 'manifest default not shown');
  check(await admin.textContent('[data-testid=threshold-value]') === m.in_effect.compare_threshold.toFixed(2), `slider starts at ${await admin.textContent('[data-testid=threshold-value]')}, not ${m.in_effect.compare_threshold}`);
  await admin.setInputFiles('[data-testid=file-a]', IMG.obama1);
  await admin.setInputFiles('[data-testid=file-b]', IMG.obamaProbe);
  await admin.waitForSelector('[data-testid=faces-a]');
  await admin.waitForSelector('[data-testid=faces-b]');
  await admin.click('[data-testid=compare-run]');
  await admin.waitForSelector('[data-testid=verdict]');
  check(await admin.getAttribute('[data-testid=verdict]', 'data-same') === '1', `Obama vs Obama not the same (score ${await admin.textContent('[data-testid=score]')})`);
  check((await admin.$$('.faceview svg rect')).length >= 2, 'faces not drawn');
  await shot(admin, 'compare-same');
  await admin.fill('[data-testid=threshold]', '1');
  await admin.waitForSelector('[data-testid=verdict][data-same="0"]');
  await admin.fill('[data-testid=threshold]', String(await admin.evaluate(() => 0.5)));
  await admin.setInputFiles('[data-testid=file-b]', IMG.bidenProbe);
  await admin.waitForSelector('[data-testid=faces-b]');
  const thr = await admin.textContent('[data-testid=threshold-value]');
  const models = (await apiGet(admin, 'models')).body;
  await admin.fill('[data-testid=threshold]', String(models.in_effect.compare_threshold));
  await admin.click('[data-testid=compare-run]');
  await admin.waitForSelector('[data-testid=verdict]');
  check(await admin.getAttribute('[data-testid=verdict]', 'data-same') === '0', `Obama vs Biden judged the same (score ${await admin.textContent('[data-testid=score]')}, threshold ${thr})`);
  await shot(admin, 'compare-different');
});

await step('search 1:N finds the right person', async () => {
  await nav(admin, 'search');
  await admin.setInputFiles('[data-testid=file-probe]', IMG.obamaProbe);
  await admin.click('[data-testid=search-run]');
  await admin.waitForSelector('[data-testid=candidates]');
  const first = await admin.$eval('.cands li', (li) => ({ name: li.getAttribute('data-candidate'), known: li.getAttribute('data-known') }));
  check(first.name === 'Barack Obama' && first.known === '1', `top candidate ${JSON.stringify(first)}`);
  const other = await admin.$eval('.cands li[data-candidate="Joe Biden"]', (li) => li.getAttribute('data-known'));
  check(other === '0' && (await admin.textContent('.cands li[data-candidate="Joe Biden"]')).includes('未知'), 'Biden not shown as unknown for an Obama probe');
  await shot(admin, 'search');
  await admin.setInputFiles('[data-testid=file-probe]', IMG.bidenProbe);
  await admin.click('[data-testid=search-run]');
  await admin.waitForSelector('[data-testid=candidates]');
  const f2 = await admin.$eval('.cands li', (li) => li.getAttribute('data-candidate'));
  check(f2 === 'Joe Biden', `top candidate for Biden: ${f2}`);
});

await step('records: the searches are found by name, with thumbnails and detail; CSV export', async () => {
  await nav(admin, 'records');
  await admin.waitForSelector('[data-testid=records-table]');
  await admin.fill('.filters input[name=name]', 'Obama');
  await admin.click('.filters button[type=submit]');
  await admin.waitForFunction(() => { const r = document.querySelectorAll('[data-testid=records-table] tr[data-record]'); return r.length >= 1 && [...r].every((x) => x.textContent.includes('Obama')); });
  await admin.waitForFunction(() => [...document.querySelectorAll('[data-testid=records-table] img.thumb')].some((i) => i.complete && i.naturalWidth > 0));
  await shot(admin, 'records');
  const [dl, csvResp] = await Promise.all([
    admin.waitForEvent('download'),
    admin.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/records.csv'),
    admin.click('[data-testid=records-csv]'),
  ]);
  check(csvResp.status() === 200 && (csvResp.headers()['content-type'] || '').includes('text/csv'), `records.csv answered ${csvResp.status()} ${csvResp.headers()['content-type']}`);
  check(new URL(csvResp.url()).searchParams.get('name') === 'Obama', `CSV not asked with the filter: ${csvResp.url()}`);
  const csvFile = path.join(SHOTS, '..', 'e2e-records.csv');
  await dl.saveAs(csvFile);
  const lines = fs.readFileSync(csvFile, 'utf8').replace(/^\ufeff/, '').split(/\r?\n/).filter(Boolean);
  const head = lines[0].split(',');
  check(['id', 'time', 'decision', 'person_name', 'score'].every((c) => head.includes(c)), `CSV header: ${lines[0]}`);
  check(lines.length >= 2 && lines.slice(1).every((l) => l.includes('Barack Obama')), `CSV rows: ${lines.slice(1, 3).join(' | ')}`);
  const row = lines[1].split(',');
  check(row[head.indexOf('decision')] === 'match' && Number(row[head.indexOf('score')]) > 0, `CSV row: ${lines[1]}`);
  // More filters: not matched -> nothing (both searches matched); source + score range -> both records.
  await admin.selectOption('.filters [name=matched]', 'false');
  await admin.click('.filters button[type=submit]');
  await admin.waitForFunction(() => !document.querySelector('[data-testid=records-table] tr[data-record]'));
  await admin.click('.filters button[type=button]');
  await admin.fill('.filters [name=source]', 'console');
  await admin.fill('.filters [name=min_score]', '0.5');
  await admin.fill('.filters [name=max_score]', '1');
  await admin.selectOption('.filters [name=matched]', 'true');
  await admin.click('.filters button[type=submit]');
  await admin.waitForFunction(() => document.querySelectorAll('[data-testid=records-table] tr[data-record]').length === 2);
  await admin.click('[data-testid=records-table] tr[data-record]');
  await admin.waitForSelector('.modal .kv');
  await admin.waitForFunction(() => [...document.querySelectorAll('.modal .pair img')].some((i) => i.complete && i.naturalWidth > 0));
  await shot(admin, 'record-detail');
  await admin.click('.modal-head button');
});

await step("dashboard: today's counts and the per-source table from /stats", async () => {
  await nav(admin, 'dashboard');
  await admin.waitForSelector('[data-testid=sources-table] tr[data-source=console]');
  const st = (await apiGet(admin, `stats?tz_offset=${await admin.evaluate(() => -new Date().getTimezoneOffset())}`)).body;
  check(st.totals.match >= 2, `stats: ${JSON.stringify(st.totals)}`);
  check((await admin.textContent('[data-testid=tile-matches] b')) === String(st.totals.match), 'match tile differs from /stats');
  const row = await admin.$$eval('[data-testid=sources-table] tr[data-source=console] td', (l) => l.map((x) => x.textContent));
  const src = st.by_source.find((x) => x.source === 'console');
  check(row[1] === String(src.match) && row[4] === String(src.total), `console row ${row} vs ${JSON.stringify(src)}`);
  await shot(admin, 'dashboard-today');
});

await step('users (new with a one-time password, disable/enable, role, reset), API keys (create, last used, revoke), help, audit query + CSV + chain', async () => {
  await nav(admin, 'users');
  await admin.waitForSelector('[data-user=auditor]');
  // A new operator without a password gets a one-time password; disable, enable, reset, role change.
  await admin.click('[data-testid=user-new]');
  await admin.fill('[data-testid=user-form] [name=username]', 'clerk');
  await admin.selectOption('[data-testid=user-form] [name=role]', 'operator');
  await admin.click('[data-testid=user-form] button.primary');
  await admin.waitForSelector('[data-testid=otp] code');
  await admin.waitForSelector('[data-user=clerk]');
  await admin.click('[data-user=clerk] [data-testid=user-toggle]');
  await admin.waitForFunction(() => document.querySelector('[data-user=clerk] [data-testid=user-status]')?.textContent === '已停用');
  const u1 = (await apiGet(admin, 'users')).body.items.find((u) => u.username === 'clerk');
  check(u1.disabled === true, `clerk not disabled: ${JSON.stringify(u1)}`);
  await admin.click('[data-user=clerk] [data-testid=user-toggle]');
  await admin.waitForFunction(() => document.querySelector('[data-user=clerk] [data-testid=user-status]')?.textContent === '正常');
  await admin.click('[data-user=clerk] [data-testid=user-edit]');
  await admin.selectOption('[data-testid=user-form] [name=role]', 'auditor');
  await admin.click('[data-testid=user-form] button.primary');
  await admin.waitForFunction(() => document.querySelector('[data-user=clerk] td:nth-child(2)')?.textContent === '审计员');
  const otp1 = (await admin.textContent('[data-testid=otp] code')).trim();
  await admin.click('[data-user=clerk] [data-testid=user-reset]');
  await admin.waitForFunction((o) => { const c = document.querySelector('[data-testid=otp] code'); return c && c.textContent.trim() !== o; }, otp1);
  PW.clerk = (await admin.textContent('[data-testid=otp] code')).trim();
  await shot(admin, 'users');
  // The one-time password works once: the clerk must choose a new password, then lands in the console.
  const c = await newPage();
  await login(c, BASE, 'clerk', PW.clerk);
  check(PW.clerk.endsWith('-2'), 'the one-time password did not ask for a new one');
  check((await c.textContent('[data-testid=who]')).includes('审计员'), 'clerk is not an auditor');
  await c.context().close();
  await nav(admin, 'apikeys');
  await admin.fill('form input[required]', 'gate-1');
  await admin.click('form button.primary');
  await admin.waitForSelector('[data-testid=new-key] code');
  const key = (await admin.textContent('[data-testid=new-key] code')).trim();
  // A device uses the key: the list shows when it was last used.
  const dev = await fetch(`${API}/api/v1/settings`, { headers: { 'X-API-Key': key } });
  check(dev.status === 200, `the new key was refused: ${dev.status}`);
  await admin.reload();
  await admin.waitForSelector('tr[data-key=gate-1]');
  check(!(await admin.textContent('tr[data-key=gate-1]')).includes('从未'), 'last use not shown');
  // A second key is revoked (confirmed) and stops working.
  await admin.fill('form input[required]', 'gate-2');
  await admin.click('form button.primary');
  await admin.waitForSelector('tr[data-key=gate-2] button.danger');
  const key2 = (await admin.textContent('[data-testid=new-key] code')).trim();
  await admin.click('tr[data-key=gate-2] button.danger');
  await admin.waitForFunction(() => !document.querySelector('tr[data-key=gate-2] button.danger'));
  const st2 = (await fetch(`${API}/api/v1/settings`, { headers: { 'X-API-Key': key2 } })).status;
  check(st2 === 401 || st2 === 403, `a revoked key answered ${st2}`);
  await shot(admin, 'apikeys');
  await nav(admin, 'help');
  await admin.fill('textarea[name=message]', '摄像头 2 号无法连接');
  await admin.fill('input[name=contact]', '13800000000');
  await admin.click('[data-testid=help-form] button[type=submit]');
  await admin.waitForSelector('.support li');
  await admin.fill('.support li input', '已处理');
  await admin.click('.support li form button');
  await admin.waitForSelector('.support .reply');
  await shot(admin, 'help');
  await nav(admin, 'audit');
  await admin.waitForSelector('[data-testid=chain] [data-ok="1"]');
  await admin.waitForSelector('[data-testid=audit-table] tbody tr');
  // Query by what (the person edit), then the same query as CSV.
  await admin.fill('[data-testid=audit-filters] [name=action]', 'PUT /api/v1/persons');
  await admin.click('[data-testid=audit-filters] button[type=submit]');
  await admin.waitForFunction(() => { const r = [...document.querySelectorAll('[data-testid=audit-table] tbody tr')]; return r.length >= 1 && r.every((x) => x.textContent.includes('PUT /api/v1/persons')); });
  await shot(admin, 'audit');
  const [adl] = await Promise.all([admin.waitForEvent('download'), admin.click('[data-testid=audit-csv]')]);
  const acsv = fs.readFileSync(await adl.path(), 'utf8').replace(/^\ufeff/, '').split(/\r?\n/).filter(Boolean);
  check(acsv[0].startsWith('id,time,actor') && acsv.length >= 2 && acsv.slice(1).every((l) => l.includes('PUT /api/v1/persons')), `audit CSV: ${acsv.slice(0, 2).join(' | ')}`);
});

await step('a failed save keeps what was typed (network error)', async () => {
  await nav(admin, 'settings');
  await admin.waitForSelector('input[name=retention_days]');
  await admin.route('**/api/v1/settings', (r) => (r.request().method() === 'PUT' ? r.abort('connectionrefused') : r.continue()));
  await admin.fill('input[name=retention_days]', '46');
  await admin.click('[data-testid=settings-save]');
  await admin.waitForSelector('[data-testid=settings-form] [data-msg=error]');
  check(await admin.inputValue('input[name=retention_days]') === '46', 'typed value lost after a failed save');
  await shot(admin, 'settings-save-failed');
  await admin.unroute('**/api/v1/settings');
});

await step('an expired session: login dialog over the page, the typed message survives and is sent', async () => {
  await nav(admin, 'help');
  await admin.fill('textarea[name=message]', '会话过期时输入的留言');
  await admin.fill('input[name=contact]', 'ops@example.com');
  await admin.context().clearCookies();
  await admin.click('[data-testid=help-form] button[type=submit]');
  await admin.waitForSelector('.modal [data-testid=login-form] [data-testid=captcha-img]');
  check(await admin.inputValue('textarea[name=message]') === '会话过期时输入的留言', 'message lost when the session expired');
  await shot(admin, 'session-expired');
  await admin.fill('.modal input[name=username]', 'admin');
  await admin.fill('.modal input[name=password]', PW.admin);
  await admin.fill('.modal input[name=captcha]', CAPTCHA);
  await admin.click('.modal [data-testid=login-form] button[type=submit]');
  await admin.waitForSelector('.modal', { state: 'detached' });
  await admin.click('[data-testid=help-form] button[type=submit]');
  await admin.waitForSelector('[data-testid=help-form] [data-msg=ok]');
  const list = await apiGet(admin, 'support');
  check(list.body.items.some((m) => m.message === '会话过期时输入的留言'), 'message not stored after logging in again');
});

await step('settings: change, save, restart the service, still there', async () => {
  await nav(admin, 'settings');
  await admin.waitForSelector('input[name=retention_days]');
  await admin.fill('input[name=retention_days]', '45');
  await admin.fill('input[name=feature_url]', 'http://10.0.0.5:8080/api/v1/embed');
  // Camera parameters devices fetch: manual white balance and exposure open their value fields.
  await admin.selectOption('select[name="camera.white_balance"]', 'manual');
  await admin.fill('input[name="camera.white_balance_kelvin"]', '4500');
  await admin.check('input[name="camera.mirror"]');
  await admin.selectOption('select[name="camera.exposure"]', 'manual');
  await admin.selectOption('select[name="camera.shutter"]', 'fixed');
  await admin.fill('input[name="camera.shutter_us"]', '8000');
  await admin.selectOption('select[name="camera.power_line_hz"]', '60');
  await admin.selectOption('select[name="camera.led"]', 'blink');
  await admin.fill('input[name="camera.usb_bandwidth"]', '80');
  await admin.click('[data-testid=settings-save]');
  await admin.waitForSelector('[data-testid=settings-form] [data-msg=ok]');
  await shot(admin, 'settings');
  await stopService();
  await startService();
  await admin.goto(`${BASE}/#/settings`);
  await admin.reload();
  if (await admin.$('[data-testid=login-form]')) await login(admin, BASE, 'admin', PW.admin);
  await admin.goto(`${BASE}/#/settings`);
  await admin.waitForSelector('input[name=retention_days]');
  check(await admin.inputValue('input[name=retention_days]') === '45', `retention after restart: ${await admin.inputValue('input[name=retention_days]')}`);
  check(await admin.inputValue('select[name="camera.led"]') === 'blink', 'LED setting lost after restart');
  check(await admin.inputValue('input[name="camera.white_balance_kelvin"]') === '4500' && await admin.isChecked('input[name="camera.mirror"]')
    && await admin.inputValue('input[name="camera.shutter_us"]') === '8000' && await admin.inputValue('select[name="camera.power_line_hz"]') === '60'
    && await admin.inputValue('input[name=feature_url]') === 'http://10.0.0.5:8080/api/v1/embed', 'camera parameters / URL lost after restart');
  const cam = (await apiGet(admin, 'settings')).body.camera;
  check(cam.white_balance === 'manual' && cam.white_balance_kelvin === 4500 && cam.mirror === true && cam.exposure === 'manual'
    && cam.shutter === 'fixed' && cam.shutter_us === 8000 && cam.power_line_hz === 60 && cam.led === 'blink' && cam.usb_bandwidth === 80, `camera: ${JSON.stringify(cam)}`);
  // Load: an unsaved change in the form is replaced by what the service has.
  await admin.fill('input[name=retention_days]', '77');
  await admin.click('[data-testid=settings-load]');
  await admin.waitForFunction(() => document.querySelector('input[name=retention_days]').value === '45');
  await shot(admin, 'settings-after-restart');
});

await step('5 bad logins lock the account (even the right password is refused)', async () => {
  const p = await newPage();
  for (let i = 0; i < 5; i++) {
    const m = await login(p, BASE, 'victim', 'wrong-password', { expectOk: false });
    check(m.includes('登录失败'), `failure ${i + 1}: "${m}"`);
  }
  const m = await login(p, BASE, 'victim', PW.victim, { expectOk: false });
  check(m.includes('登录失败'), `locked account message "${m}"`);
  await shot(p, 'login-locked');
  await p.context().close();
  const users = await apiGet(admin, 'users');
  const v = users.body.items.find((u) => u.username === 'victim');
  check(v && v.locked_until * 1000 > Date.now(), `victim not locked: ${JSON.stringify(v)}`);
  await nav(admin, 'users');
  await admin.waitForSelector('[data-user=victim]');
  await shot(admin, 'users-locked');
  const fails = await apiGet(admin, 'login-failures');
  check(fails.body.items.filter((f) => f.username === 'victim').length >= 5, 'failures not recorded');
});

await step('auditor: no user management (hidden and refused by the service), audit works; help message answered by an admin', async () => {
  const p = await newPage();
  await login(p, BASE, 'auditor', PW.auditor);
  check(!(await p.$('[data-nav=users]')), 'users link shown to the auditor');
  check(!(await p.$('[data-nav=settings]')), 'settings link shown to the auditor');
  await p.goto(`${BASE}/#/users`);
  await p.waitForSelector('[data-testid=forbidden]');
  const r = await apiGet(p, 'users');
  check(r.status === 403, `GET /users as auditor answered ${r.status}`);
  await shot(p, 'auditor-users-forbidden');
  await p.goto(`${BASE}/#/audit`);
  await p.waitForSelector('[data-testid=chain] [data-ok="1"]');
  await shot(p, 'auditor-audit');
  // Records without pictures: snapshots are not the auditor's (the service answers 403 for them too).
  await p.goto(`${BASE}/#/records`);
  await p.waitForSelector('[data-testid=records-table] tr[data-record]');
  check(!(await p.$('[data-testid=records-table] img')), 'snapshots offered to the auditor');
  const rid = await p.getAttribute('[data-testid=records-table] tr[data-record]', 'data-record');
  const snap = await p.evaluate(async (u) => (await fetch(u)).status, `/api/v1/records/${rid}/snapshot`);
  check(snap === 403, `snapshot as auditor answered ${snap}`);
  // Help channel: the auditor writes with a contact, an admin answers, the auditor reads the answer.
  await p.goto(`${BASE}/#/help`);
  await p.waitForSelector('[data-testid=help-form]');
  await p.fill('textarea[name=message]', '审计导出需要按月份筛选');
  await p.fill('input[name=contact]', 'auditor@example.com');
  await p.click('[data-testid=help-form] button[type=submit]');
  await p.waitForSelector('[data-testid=help-form] [data-msg=ok]');
  check(!(await p.textContent('.support')).includes('摄像头 2 号无法连接'), "the auditor sees another user's message");
  check(!(await p.$('.support li form')), 'the auditor is offered an answer form');
  await nav(admin, 'help');
  const li = admin.locator('.support li', { hasText: '审计导出需要按月份筛选' });
  check((await li.textContent()).includes('auditor@example.com'), 'the admin does not see the contact');
  await li.locator('input').fill('下个版本支持');
  await li.locator('form button').click();
  await admin.locator('.support li', { hasText: '审计导出需要按月份筛选' }).locator('.reply').waitFor();
  await p.reload();
  await p.locator('.support li', { hasText: '审计导出需要按月份筛选' }).locator('.reply', { hasText: '下个版本支持' }).waitFor();
  await shot(p, 'auditor-help-answered');
  await p.context().close();
});

await step('operator: the navigation offers only the operator pages; the service refuses the rest', async () => {
  const p = await newPage();
  await login(p, BASE, 'oper', PW.oper);
  const navs = await p.$$eval('nav.side a', (l) => l.map((a) => a.getAttribute('data-nav')));
  check(JSON.stringify(navs) === JSON.stringify(['dashboard', 'persons', 'compare', 'search', 'records', 'help']), `operator navigation: ${navs}`);
  for (const [pg, api] of [['settings', null], ['users', 'users'], ['apikeys', 'apikeys'], ['audit', 'audit']]) {
    await p.goto(`${BASE}/#/${pg}`);
    await p.waitForSelector('[data-testid=forbidden]');
    if (api) { const r = await apiGet(p, api); check(r.status === 403, `GET /${api} as operator answered ${r.status}`); }
  }
  const put = await p.evaluate(async () => (await fetch('/api/v1/settings', { method: 'PUT', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': sessionStorage.getItem('fk_csrf') || '' }, body: '{"retention_days":1}' })).status);
  check(put === 403, `PUT /settings as operator answered ${put}`);
  await p.goto(`${BASE}/#/persons`);
  await p.waitForSelector('[data-person="Barack Obama"]');
  await shot(p, 'operator-persons');
  await p.context().close();
});

await step('English and phone width (375 px)', async () => {
  await admin.goto(`${BASE}/#/dashboard`);
  await admin.selectOption('[data-testid=lang]', 'en');
  await admin.waitForFunction(() => document.querySelector('[data-nav=dashboard]')?.textContent === 'Dashboard');
  await admin.waitForSelector('[data-testid=health]');
  await shot(admin, 'dashboard-en');
  for (const pg of ['persons', 'records', 'settings']) {
    await nav(admin, pg);
    await admin.waitForLoadState('networkidle');
    check(!/[\u4e00-\u9fff]/.test(await admin.textContent('nav.side')), 'Chinese left in the English navigation');
    await shot(admin, `${pg}-en`);
  }
  check((await admin.textContent('main h2')) === 'Settings', 'settings title not English');
  await admin.selectOption('[data-testid=lang]', 'zh-CN');
  await admin.waitForFunction(() => document.querySelector('[data-nav=dashboard]')?.textContent === '概览');
  const cookies = await admin.context().cookies();
  const phone = await newPage({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
  await phone.goto(`${BASE}/`);
  await phone.waitForSelector('[data-testid=captcha-img]');
  check(await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth) <= 1, 'login wider than the phone');
  await shot(phone, 'phone-login');
  await phone.context().addCookies(cookies);
  for (const pg of ['dashboard', 'persons', 'compare', 'search', 'records', 'users', 'apikeys', 'audit', 'settings', 'help']) {
    await phone.goto(`${BASE}/#/${pg}`);
    if (pg === 'dashboard') await phone.reload();
    await phone.waitForSelector('main h2');
    await phone.waitForLoadState('networkidle');
    await phone.waitForTimeout(300);
    const over = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(over <= 1, `${pg} is ${over}px wider than the phone`);
    await shot(phone, `phone-${pg}`);
  }
  // Results at phone width: a compare with the faces drawn and a 1:N search.
  const fits = async (what) => check(await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth) <= 1, `${what} wider than the phone`);
  await phone.goto(`${BASE}/#/compare`);
  await phone.setInputFiles('[data-testid=file-a]', IMG.obama1);
  await phone.setInputFiles('[data-testid=file-b]', IMG.obamaProbe);
  await phone.waitForSelector('[data-testid=faces-b]');
  await phone.click('[data-testid=compare-run]');
  await phone.waitForSelector('[data-testid=verdict]');
  await fits('compare result');
  await shot(phone, 'phone-compare-result');
  await phone.goto(`${BASE}/#/search`);
  await phone.setInputFiles('[data-testid=file-probe]', IMG.bidenProbe);
  await phone.click('[data-testid=search-run]');
  await phone.waitForSelector('[data-testid=candidates] .cands li img');
  await fits('search result');
  await shot(phone, 'phone-search-result');
  // A person's detail (edit form, faces) and a record's detail are dialogs: they must fit too.
  await phone.goto(`${BASE}/#/persons`);
  await phone.click('[data-person="Joe Biden"] [data-testid=person-edit]');
  await phone.waitForSelector('[data-testid=person-edit-form]');
  await phone.waitForSelector('.modal [data-testid=faces] img');
  check(await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth) <= 1, 'person dialog wider than the phone');
  await shot(phone, 'phone-person-edit');
  await phone.goto(`${BASE}/#/records`);
  await phone.click('[data-testid=records-table] tr[data-record]');
  await phone.waitForSelector('.modal .kv');
  check(await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth) <= 1, 'record dialog wider than the phone');
  await shot(phone, 'phone-record-detail');
  await phone.goto(`${BASE}/#/dashboard`);
  await phone.click('.menu-btn');
  await phone.waitForSelector('.side.open');
  await shot(phone, 'phone-menu');
  await phone.context().close();
});

await browser.close();
await stopService();
console.log(`screenshots (${shotNames.length}) in ${SHOTS}: ${shotNames.join(' ')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
