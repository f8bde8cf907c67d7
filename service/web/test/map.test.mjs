// The web map in a real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser download). Run by server/tests/web_map.rs against a
// `gengdi serve` that has analysed the demo season; it passes its URL and tokens:
//
//   GENGDI_URL                  http://127.0.0.1:PORT
//   GENGDI_INSPECTOR_TOKEN      inspector of county 640502
//   GENGDI_OTHER_TOKEN          inspector of county 640521 (the demo's other county)
//   GENGDI_EMPTY_TOKEN          inspector of a county without patches
//   GENGDI_RESEARCHER_TOKEN     researcher (sees every patch, may not record verdicts)
//   GENGDI_REVOKED_TOKEN        a revoked token
//   GENGDI_SCREENSHOTS          folder for the screenshots
//   GENGDI_CHROMIUM             the browser (default /usr/bin/chromium)
//
// Every request to another host than the server is aborted and counted: the count must be 0.
// Exit status 0 when every check holds; a failed check prints what differed and exits 1.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};

const BASE = env('GENGDI_URL');
const INSPECTOR = env('GENGDI_INSPECTOR_TOKEN');
const OTHER = env('GENGDI_OTHER_TOKEN');
const EMPTY = env('GENGDI_EMPTY_TOKEN');
const RESEARCHER = env('GENGDI_RESEARCHER_TOKEN');
const REVOKED = env('GENGDI_REVOKED_TOKEN');
const SHOTS = env('GENGDI_SCREENSHOTS');
const CHROMIUM = env('GENGDI_CHROMIUM', '/usr/bin/chromium');

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  console.error(`playwright-core is missing (${e.message}): run scripts/install-deps.sh`);
  process.exit(2);
}
if (!fs.existsSync(CHROMIUM)) {
  console.error(`${CHROMIUM} is missing: run scripts/install-deps.sh (Debian package chromium)`);
  process.exit(2);
}

const started = Date.now();
const step = (what) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${what}`);

/** The API as the test sees it (node's fetch, not the browser). */
async function api(token, p) {
  const res = await fetch(new URL(p, BASE), { headers: { Authorization: `Bearer ${token}` } });
  const text = await res.text();
  assert.equal(res.status, 200, `${p}: ${res.status} ${text}`);
  return JSON.parse(text);
}
const geojson = (token, query = '') => api(token, `/api/v1/changes?format=geojson${query}`);

fs.mkdirSync(SHOTS, { recursive: true });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'gengdi-chromium-'));
const base = new URL(BASE);
const blocked = [];
const pageErrors = [];

const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: 1280, height: 800 },
  timeout: 60_000,
});
context.setDefaultTimeout(30_000);
await context.route('**/*', (route) => {
  const u = new URL(route.request().url());
  if (u.protocol.startsWith('http') && u.host === base.host) return route.continue();
  blocked.push(route.request().url());
  return route.abort('blockedbyclient');
});

function watch(page, label) {
  page.on('pageerror', (e) => pageErrors.push(`${label}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) {
      console.log(`  [${label} console] ${m.text()}`);
    }
  });
  return page;
}

async function signIn(page, token) {
  await page.locator('#token').fill(token);
  await page.locator('#signin-submit').click();
}

async function waitReady(page) {
  await page.waitForSelector('body[data-state="ready"]');
}

const rowIds = (page) =>
  page.$$eval('#list .row', (rows) => rows.map((r) => Number(r.dataset.id)));
const polygonCount = (page) => page.locator('.leaflet-patches-pane path.patch').count();

/** Wait for an imagery tile drawn by the server (a 256 px image) in the map, of that style
 * and date when given. */
async function waitImageryTile(page, want = {}) {
  await page.waitForFunction((w) =>
    [...document.querySelectorAll('.imagery-layer img')]
      .some((i) => i.dataset.loaded === '1' && i.naturalWidth === 256
        && (!w.style || i.dataset.style === w.style) && (!w.date || i.dataset.date === w.date)),
  want, { timeout: 45_000 });
}

/** Wait until the map has stopped moving and drawn every imagery tile in view. */
async function waitMapIdle(page) {
  await page.waitForTimeout(300);
  // Drawn, and faded in (Leaflet fades each new tile in over 0.2 s).
  await page.waitForFunction(() => {
    const m = document.getElementById('map');
    return m.dataset.tiles === 'loaded' && m.dataset.moving === '0'
      && [...document.querySelectorAll('.imagery-layer img')]
        .every((i) => (i.dataset.loaded === '1' || i.style.visibility === 'hidden')
          && (i.style.opacity === '' || i.style.opacity === '1'));
  }, null, { timeout: 45_000 });
}

const fmtMu = (x) => x.toFixed(2);
const fmtTally = (t) => (t ? `${t.patches} · ${fmtMu(t.mu)}` : '0 · 0.00');

/** The statistics view at a level shows exactly the API's units and totals for the token. */
async function checkStats(page, token, level) {
  await page.click('#view-stats');
  await page.selectOption('#stats-level', level);
  await page.waitForSelector(`#stats[data-state="ready"][data-level="${level}"]`);
  const st = await api(token, `/api/v1/stats?level=${level}`);
  const shown = await page.$$eval('#stats-table tbody tr, #stats-table tfoot tr', (rows) =>
    rows.map((r) => ({
      code: r.dataset.code,
      cells: Object.fromEntries([...r.querySelectorAll('td')].map((td) => [td.dataset.col, td.textContent])),
    })));
  const kinds = Object.keys(st.totals.by_kind);
  const want = (code, f) => ({
    code,
    cells: Object.fromEntries([
      ['patches', String(f.patches)], ['mu', fmtMu(f.mu)],
      ...kinds.map((k) => [`kind:${k}`, fmtTally(f.by_kind[k])]),
      ...['open', 'confirmed', 'false_positive', 'rectified'].map((s) => [`status:${s}`, fmtTally(f.by_status[s])]),
      ['out', fmtTally(f.balance.out)], ['in', fmtTally(f.balance.in)], ['net', fmtMu(f.balance.net_mu)],
    ]),
  });
  const expected = [...st.units.map((u) => want(u.code === null ? '' : u.code, u)), want('total', st.totals)];
  const sortKey = (a, b) => a.code.localeCompare(b.code);
  assert.deepEqual([...shown].sort(sortKey), [...expected].sort(sortKey), `the ${level} table is the API's`);
  // the chart: a segment per unit and kind with mu, of that mu
  const segs = await page.$$eval('#stats-chart rect[data-kind]', (rs) =>
    rs.map((r) => `${r.dataset.unit}/${r.dataset.kind}/${Number(r.dataset.mu)}`).sort());
  const wantSegs = st.units.flatMap((u) => Object.entries(u.by_kind).filter(([, t]) => t.mu > 0)
    .map(([k, t]) => `${u.code === null ? '' : u.code}/${k}/${t.mu}`)).sort();
  assert.deepEqual(segs, wantSegs, 'a bar segment per unit and kind');
  return st;
}

/** Great-circle distance (m) and the 8-point compass direction from a to b ({lat, lon}). */
function haversine(a, b) {
  const R = 6371008.8;
  const r = (d) => (d * Math.PI) / 180;
  const dp = r(b.lat - a.lat);
  const dl = r(b.lon - a.lon);
  const x = Math.sin(dp / 2) ** 2 + Math.cos(r(a.lat)) * Math.cos(r(b.lat)) * Math.sin(dl / 2) ** 2;
  const d = 2 * R * Math.asin(Math.sqrt(x));
  const y = Math.sin(dl) * Math.cos(r(b.lat));
  const z = Math.cos(r(a.lat)) * Math.sin(r(b.lat)) - Math.sin(r(a.lat)) * Math.cos(r(b.lat)) * Math.cos(dl);
  const bearing = ((Math.atan2(y, z) * 180) / Math.PI + 360) % 360;
  return { d, compass: ['N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW'][Math.round(bearing / 45) % 8] };
}

/** The centre of a GeoJSON geometry's bounding box, as {lat, lon}. */
function bboxCentre(geometry) {
  const pts = [];
  const walk = (c) => (typeof c[0] === 'number' ? pts.push(c) : c.forEach(walk));
  walk(geometry.coordinates);
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  return { lon: (Math.min(...xs) + Math.max(...xs)) / 2, lat: (Math.min(...ys) + Math.max(...ys)) / 2 };
}

let failed = false;
try {
  // ---------------------------------------------------------------- desktop, inspector
  const page = watch(await context.newPage(), 'desktop');
  step(`open ${BASE}/`);
  await page.goto(`${BASE}/`);
  await page.waitForSelector('#signin-form', { state: 'visible' });

  step('a wrong token and a revoked token are refused on the sign-in form');
  await signIn(page, `gd_${'0'.repeat(64)}`);
  await page.waitForSelector('#signin-error', { state: 'visible' });
  assert.match(await page.textContent('#signin-error'), /not accepted/);
  assert.ok(await page.locator('#app').isHidden(), 'the map stays hidden');
  await signIn(page, REVOKED);
  await page.waitForFunction(() => /revoked/i.test(document.getElementById('signin-error').textContent));

  step('sign in as the county 640502 inspector');
  const mine = await geojson(INSPECTOR);
  const mineIds = mine.features.map((f) => f.properties.id).sort((a, b) => a - b);
  assert.ok(mineIds.length > 5, `the demo batch gives the county patches (${mineIds.length})`);
  await signIn(page, INSPECTOR);
  await waitReady(page);
  assert.match(await page.textContent('#who-text'), /inspector.*640502/);
  const ids = (await rowIds(page)).sort((a, b) => a - b);
  assert.deepEqual(ids, mineIds, 'the list holds exactly the API\'s patches');
  assert.equal(await polygonCount(page), mineIds.length, 'one polygon per patch');
  step(`${ids.length} rows and polygons; waiting for an imagery tile`);
  await waitImageryTile(page);
  await waitMapIdle(page);
  await page.screenshot({ path: path.join(SHOTS, 'map-desktop.png') });

  step('zoomed out too far for the scenes: a hint, no imagery');
  for (let i = 0; i < 5; i += 1) {
    // one step at a time: Leaflet ignores a zoom asked for during its zoom animation
    await page.click('.leaflet-control-zoom-out');
    await page.waitForTimeout(100);
    await page.waitForFunction(() => document.getElementById('map').dataset.moving === '0');
  }
  await page.waitForSelector('#zoom-hint', { state: 'visible' });
  assert.match(await page.textContent('#zoom-hint'), /Zoom in to see the imagery/);

  step('filter by kind');
  const byKind = new Map();
  for (const f of mine.features) byKind.set(f.properties.kind, (byKind.get(f.properties.kind) || 0) + 1);
  const [kind, count] = [...byKind.entries()].sort((a, b) => b[1] - a[1])
    .find(([, n]) => n < mineIds.length) ?? [...byKind.entries()][0];
  assert.equal(await page.getAttribute(`#counts .count[data-kind="${kind}"]`, 'data-count'), String(count));
  await page.selectOption('#f-kind', kind);
  await page.waitForFunction((n) => document.querySelectorAll('#list .row').length === n, count);
  assert.equal(await page.locator(`#list .row:not([data-kind="${kind}"])`).count(), 0);
  assert.equal(await polygonCount(page), count);
  const apiKind = await geojson(INSPECTOR, `&kind=${kind}`);
  assert.equal(apiKind.features.length, count);
  await page.selectOption('#f-kind', '');
  await page.waitForFunction((n) => document.querySelectorAll('#list .row').length === n, mineIds.length);

  step('the other filters (region, minimum mu, PBF only, stored dates): each the API\'s selection');
  const township = mine.features.map((f) => f.properties.township_code).filter(Boolean).sort()[0];
  const areas = mine.features.map((f) => f.properties.area_mu).sort((a, b) => a - b);
  const midMu = areas[Math.floor(areas.length / 2)].toFixed(1);
  const today = new Date().toISOString().slice(0, 10);
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  for (const [fields, query] of [
    [{ '#f-region': township }, `&region=${township}`],
    [{ '#f-min-mu': midMu }, `&min_mu=${midMu}`],
    [{ '#f-pbf': true }, '&pbf=true'],
    [{ '#f-region': township, '#f-pbf': true }, `&region=${township}&pbf=true`],
    [{ '#f-from': today }, `&from=${today}`],
    [{ '#f-to': yesterday }, `&to=${yesterday}`],
  ]) {
    await page.click('#f-reset');
    await page.waitForFunction((n) => document.querySelectorAll('#list .row').length === n, mineIds.length);
    for (const [sel, v] of Object.entries(fields)) {
      if (v === true) await page.check(sel);
      else await page.fill(sel, v);
    }
    const want = (await geojson(INSPECTOR, query)).features.map((f) => f.properties.id).sort((a, b) => a - b);
    await page.click('#f-apply');
    await page.waitForFunction((w) => {
      const got = [...document.querySelectorAll('#list .row')].map((r) => Number(r.dataset.id)).sort((a, b) => a - b);
      return got.length === w.length && got.every((x, i) => x === w[i]);
    }, want);
    assert.equal(await polygonCount(page), want.length, `${query}: a polygon per patch`);
    if (query.startsWith('&region') && !query.includes('pbf')) {
      assert.ok(want.length > 0 && want.length < mineIds.length, `${query} selects some (${want.length})`);
    }
  }
  await page.click('#f-reset');
  await page.waitForFunction((n) => document.querySelectorAll('#list .row').length === n, mineIds.length);
  await waitMapIdle(page);
  assert.ok(await page.locator('#zoom-hint').isHidden(), 'fitted to the patches again: no hint');

  step('open a patch from the list: chips, evidence, attributes');
  const target = mineIds[0];
  const rec = await api(INSPECTOR, `/api/v1/changes/${target}`);
  await page.click(`#list .row[data-id="${target}"]`);
  await page.waitForSelector(`#detail[data-id="${target}"]`, { state: 'visible' });
  await page.waitForSelector('#d-chips[data-loaded="1"]');
  const chips = await page.$$eval('#d-chips img', (imgs) =>
    imgs.map((i) => ({ date: i.dataset.date, w: i.naturalWidth, h: i.naturalHeight })));
  const chipDates = chips.map((c) => c.date).filter((d) => /^\d{4}-/.test(d)).sort();
  assert.deepEqual(chipDates, [...rec.dates].sort(), 'a chip per date of the patch');
  for (const c of chips) assert.ok(c.w > 0 && c.h > 0, `chip ${c.date} drawn: ${c.w}x${c.h}`);
  assert.equal((await page.textContent('#d-evidence')).trim(), rec.evidence);
  const attrs = await page.textContent('#d-attrs');
  assert.ok(attrs.includes(rec.parcel), 'the parcel id');
  assert.ok(attrs.includes(rec.area_mu.toFixed(2)), 'the area in mu');
  assert.ok(await page.locator('#d-verdict').isVisible(), 'an inspector may record verdicts');

  step('the season chart: NDVI per date and the land-cover shares, as the API gives them');
  assert.ok(rec.series && rec.series.dates.length > 0, 'the record carries its series');
  const ndviDates = rec.series.dates.filter((d) => typeof d.ndvi === 'number').map((d) => d.date);
  const points = await page.$$eval('#d-series circle.ndvi-point', (cs) => cs.map((c) => c.dataset.date));
  assert.deepEqual(points, ndviDates, 'a point per date with an NDVI');
  const bars = await page.$$eval('#d-series rect[data-class]', (rs) =>
    rs.map((r) => [r.dataset.class, Number(r.getAttribute('width'))]));
  const shares = rec.series.dates.flatMap((d) =>
    Object.entries(d.class_fractions).filter(([, f]) => f > 0).map(([k]) => k));
  assert.deepEqual(bars.map(([k]) => k), shares, 'a bar segment per class share of each date');
  assert.ok(bars.every(([, w]) => w > 0), 'segments have widths');
  await waitImageryTile(page);
  await waitMapIdle(page);
  await page.screenshot({ path: path.join(SHOTS, 'detail-desktop.png') });

  step('a polygon selects its patch');
  const other = mineIds[mineIds.length - 1];
  await page.locator(`.leaflet-patches-pane path.patch[data-id="${other}"]`).dispatchEvent('click');
  await page.waitForSelector(`#detail[data-id="${other}"]`);
  await page.waitForSelector(`#list .row.selected[data-id="${other}"]`);

  step('imagery: false colour, another date');
  await page.click('#img-false');
  await waitImageryTile(page, { style: 'false' });
  const dates = await page.$$eval('#img-date option', (o) => o.map((x) => x.value));
  assert.ok(dates.length >= 2, `dates to pick: ${dates}`);
  await page.selectOption('#img-date', dates[0]);
  await waitImageryTile(page, { style: 'false', date: dates[0] });

  step('the land-cover map of a date: tiles in the legend\'s colours, the legend the API\'s');
  await page.selectOption('#img-date', dates[dates.length - 1]);
  await page.click('#img-landcover');
  await waitImageryTile(page, { style: 'landcover', date: dates[dates.length - 1] });
  await waitMapIdle(page);
  await page.waitForSelector('#lc-legend', { state: 'visible' });
  const legend = await api(INSPECTOR, `/tiles/${rec.batch}/landcover.json`);
  const legendShown = await page.$$eval('#lc-legend .item', (items) =>
    items.map((i) => [Number(i.dataset.code), i.dataset.colour]));
  assert.deepEqual(legendShown, legend.classes.map((c) => [c.code, c.colour]), 'the legend is the API\'s');
  assert.ok((await page.textContent('#lc-legend')).includes(legend.model), 'the legend names the model');
  // Every drawn pixel of the land-cover tiles in view is a class colour (or transparent).
  const lcColours = await page.evaluate(() => {
    const counts = {};
    const c = document.createElement('canvas');
    c.width = 256;
    c.height = 256;
    const ctx = c.getContext('2d', { willReadFrequently: true });
    for (const img of document.querySelectorAll('.imagery-layer img')) {
      if (img.dataset.loaded !== '1' || img.dataset.style !== 'landcover') continue;
      ctx.clearRect(0, 0, 256, 256);
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, 256, 256).data;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3] === 0) continue;
        const hex = `#${[d[i], d[i + 1], d[i + 2]].map((v) => v.toString(16).padStart(2, '0')).join('')}`;
        counts[hex] = (counts[hex] || 0) + 1;
      }
    }
    return counts;
  });
  const palette = new Set(legend.classes.map((c) => c.colour));
  const drawn = Object.keys(lcColours);
  assert.ok(drawn.length >= 2, `classes drawn: ${drawn}`);
  for (const hex of drawn) assert.ok(palette.has(hex), `${hex} (${lcColours[hex]} px) is a class colour`);

  step('the farmland parcels in view, PBF distinguished: exactly the API\'s for that box');
  await page.check('#parcels-on');
  await page.waitForFunction(() => document.getElementById('map').dataset.parcelsState === 'loaded');
  const mapData = await page.$eval('#map', (m) => ({ ...m.dataset }));
  const fc = await api(INSPECTOR,
    `/api/v1/batches/${rec.batch}/parcels?bbox=${mapData.parcelsBbox}&limit=3000`);
  assert.ok(fc.features.length > 0, 'parcels in view');
  assert.equal(Number(mapData.parcels), fc.features.length);
  assert.equal(await page.locator('.leaflet-parcels-pane path.parcel').count(), fc.features.length,
    'a path per parcel');
  const pbfCount = fc.features.filter((f) => f.properties.pbf).length;
  assert.equal(await page.locator('.leaflet-parcels-pane path.parcel.pbf').count(), pbfCount,
    'the PBF parcels are drawn as PBF');
  assert.ok(pbfCount > 0 && pbfCount < fc.features.length, `PBF and other parcels in view (${pbfCount})`);
  const strokes = await page.$$eval('.leaflet-parcels-pane path.parcel', (ps) =>
    [...new Set(ps.map((p) => `${p.classList.contains('pbf')}:${p.getAttribute('stroke')}`))].sort());
  assert.deepEqual(strokes, ['false:#ffffff', 'true:#111111'], 'one outline per kind of parcel');
  assert.ok((await page.textContent('#legend')).includes('parcel, PBF'), 'the legend names them');
  // Moving the map fetches the parcels of the new view.
  await page.click('.leaflet-control-zoom-out');
  await page.waitForFunction((before) => {
    const m = document.getElementById('map');
    return m.dataset.moving === '0' && m.dataset.parcelsState === 'loaded' && m.dataset.parcelsBbox !== before;
  }, mapData.parcelsBbox);
  const wider = await page.$eval('#map', (m) => ({ ...m.dataset }));
  const fcWider = await api(INSPECTOR,
    `/api/v1/batches/${rec.batch}/parcels?bbox=${wider.parcelsBbox}&limit=3000`);
  assert.ok(fcWider.features.length > fc.features.length, 'more parcels in the wider view');
  assert.equal(await page.locator('.leaflet-parcels-pane path.parcel').count(), fcWider.features.length);
  await waitMapIdle(page);
  await page.screenshot({ path: path.join(SHOTS, 'landcover-parcels-desktop.png') });
  await page.click('#img-true');
  await page.waitForSelector('#lc-legend', { state: 'hidden' });
  await page.uncheck('#parcels-on');
  assert.equal(await page.locator('.leaflet-parcels-pane path.parcel').count(), 0, 'parcels off');

  step('record a verdict with a note, the class found on the ground and a photo; the map and list update at once');
  await page.click(`#list .row[data-id="${target}"]`);
  await page.waitForSelector(`#detail[data-id="${target}"]`);
  await page.waitForFunction(() => !document.getElementById('d-verdict').hidden);
  const note = `seen in the field ${Date.now()}`;
  await page.fill('#v-note', note);
  // The optional select: empty, then the seven land-cover class names.
  assert.deepEqual(
    await page.$$eval('#v-class option', (os) => os.map((o) => o.value)),
    ['', 'annual_crop', 'orchard', 'tree', 'grass', 'bare', 'water', 'built']);
  assert.equal(await page.inputValue('#v-class'), '', 'not recorded unless chosen');
  await page.selectOption('#v-class', 'grass');
  // A real 1 × 1 PNG, as a phone would attach a picture.
  const photo = Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
    'base64');
  await page.setInputFiles('#v-photos', { name: 'field.png', mimeType: 'image/png', buffer: photo });
  await page.click('.verdict-buttons [data-verdict="confirmed"]');
  await page.waitForFunction(() => /Recorded/.test(document.getElementById('v-message').textContent));
  assert.equal(await page.getAttribute(`#list .row[data-id="${target}"]`, 'data-status'), 'confirmed');
  assert.ok((await page.textContent('#d-history')).includes(note), 'the history shows the note');
  assert.equal(await page.textContent('#d-history li:last-child .found strong'), 'grass',
    'the history shows the class found');
  assert.equal(await page.inputValue('#v-class'), '', 'the select is cleared once recorded');
  await page.waitForFunction(() => [...document.querySelectorAll('#d-history img.photo')]
    .some((i) => i.complete && i.naturalWidth === 1));
  {
    const withPhoto = await api(INSPECTOR, `/api/v1/changes/${target}`);
    const photos = withPhoto.verdicts.at(-1).photos;
    assert.equal(photos.length, 1, 'the verdict keeps the photo');
    assert.equal(photos[0].content_type, 'image/png');
    assert.equal(photos[0].sha256, crypto.createHash('sha256').update(photo).digest('hex'));
    assert.ok(photos[0].taken_at, 'with when it was sent');
    assert.equal(withPhoto.verdicts.at(-1).class_found, 'grass', 'the verdict keeps the class found');
    assert.equal(withPhoto.class_found, 'grass', "and it is the patch's");
  }
  const stroke = await page.getAttribute(`.leaflet-patches-pane path.patch[data-id="${target}"]`, 'stroke');
  assert.equal(stroke.toLowerCase(), '#ff2d2d', 'the polygon is drawn as confirmed');

  step('reload: the status is kept');
  await page.reload();
  await waitReady(page);
  assert.equal(await page.getAttribute(`#list .row[data-id="${target}"]`, 'data-status'), 'confirmed');
  await page.waitForSelector(`#detail[data-id="${target}"]`, { state: 'visible' });
  await page.waitForFunction((n) => document.getElementById('d-history').textContent.includes(n), note);
  await page.waitForFunction(() => [...document.querySelectorAll('#d-history img.photo')]
    .some((i) => i.complete && i.naturalWidth === 1));
  const stored = await api(INSPECTOR, `/api/v1/changes/${target}`);
  assert.equal(stored.status, 'confirmed');
  assert.equal(stored.class_found, 'grass');
  assert.equal(await page.textContent('#d-history li:last-child .found strong'), 'grass',
    'the class found is kept across a reload');

  step('where am I: the position against the selected patch');
  const feature = mine.features.find((f) => f.properties.id === target);
  const centre = bboxCentre(feature.geometry);
  // 230 m south and 180 m west of the patch's centre: the patch is NE of you
  const you = {
    lat: centre.lat - 230 / 111_320,
    lon: centre.lon - 180 / (111_320 * Math.cos((centre.lat * Math.PI) / 180)),
  };
  await context.grantPermissions(['geolocation'], { origin: BASE });
  await context.setGeolocation({ latitude: you.lat, longitude: you.lon, accuracy: 12 });
  await page.click('#locate');
  await page.waitForSelector('#locate-msg[data-distance]', { state: 'visible' });
  assert.equal(await page.locator('path.you-marker').count(), 1, 'a marker where you are');
  assert.equal(await page.locator('path.you-accuracy').count(), 1, 'the accuracy circle');
  const where = await page.textContent('#locate-msg');
  const m = where.match(/(\d+) m ([NESW]{1,2}) of you/);
  assert.ok(m, `distance and direction: ${where}`);
  const expect = haversine(you, centre);
  assert.ok(Math.abs(Number(m[1]) - expect.d) <= 1, `${m[1]} m against ${expect.d.toFixed(1)} m`);
  assert.equal(m[2], expect.compass);
  assert.equal(expect.compass, 'NE');
  await waitMapIdle(page);
  await page.screenshot({ path: path.join(SHOTS, 'where-am-i-desktop.png') });
  await context.clearPermissions();
  await page.click('#locate');
  await page.waitForSelector('#locate-msg[data-error]', { state: 'visible' });
  assert.match(await page.textContent('#locate-msg'), /permission denied/);

  step('the statistics view: the inspector\'s units and totals are the API\'s, no targets');
  assert.ok(await page.locator('#view-models').isHidden(), 'no models view for an inspector');
  for (const level of ['county', 'township', 'village']) await checkStats(page, INSPECTOR, level);
  assert.ok(await page.locator('#stats-targets').isHidden(), 'no targets for an inspector');
  await page.screenshot({ path: path.join(SHOTS, 'stats-desktop.png') });
  await page.click('#view-map');
  await page.waitForSelector('#map', { state: 'visible' });

  step('a failed request shows the banner');
  await page.route('**/api/v1/changes?*', (route) => route.abort('connectionrefused'));
  await page.click('#f-apply');
  await page.waitForSelector('#banner', { state: 'visible' });
  assert.match(await page.textContent('#banner-text'), /did not answer/);
  await page.unroute('**/api/v1/changes?*');
  await page.click('#banner-close');

  step('sign out; the other county\'s inspector sees only their own patches');
  await page.click('#signout');
  await page.waitForSelector('#signin-form', { state: 'visible' });
  const theirs = await geojson(OTHER);
  await signIn(page, OTHER);
  await waitReady(page);
  const otherIds = await rowIds(page);
  assert.equal(otherIds.length, theirs.features.length);
  assert.equal(otherIds.filter((id) => mineIds.includes(id)).length, 0, 'none of county 640502');
  assert.equal(await polygonCount(page), theirs.features.length);

  step('an inspector of a county without patches: an empty list');
  await page.click('#signout');
  await signIn(page, EMPTY);
  await waitReady(page);
  assert.equal(await page.locator('#list .row').count(), 0);
  assert.equal(await polygonCount(page), 0);
  assert.match(await page.textContent('#list-summary'), /No suspected changes/);

  step('a researcher sees every patch and no verdict buttons');
  await page.click('#signout');
  const all = await geojson(RESEARCHER);
  await signIn(page, RESEARCHER);
  await waitReady(page);
  assert.equal(await page.locator('#list .row').count(), all.features.length);
  await page.click(`#list .row[data-id="${target}"]`);
  await page.waitForSelector(`#detail[data-id="${target}"]`, { state: 'visible' });
  await page.waitForFunction(() => document.getElementById('d-history').children.length > 0
    && document.getElementById('d-title').textContent.startsWith('#'));
  assert.ok(await page.locator('#d-verdict').isHidden(), 'a researcher may not record verdicts');

  step('a researcher: the statistics with the targets');
  const rst = await checkStats(page, RESEARCHER, 'township');
  assert.ok(rst.targets, 'the API gives a researcher the targets');
  await page.waitForSelector('#stats-targets', { state: 'visible' });
  for (const key of ['cropland', 'pbf']) {
    const g = rst.targets[key];
    const row = await page.$$eval(`#stats-targets tr[data-target="${key}"] td`, (tds) =>
      Object.fromEntries(tds.map((td) => [td.dataset.col, td.textContent])));
    assert.equal(row.area, `${fmtMu(g.area_mu)} mu`);
    assert.equal(row.target, `${fmtMu(g.target_mu)} mu`);
    assert.ok(row.gap.startsWith(`${fmtMu(g.gap_mu)} mu`), `${key} gap: ${row.gap}`);
  }

  step('a researcher: the models, a card\'s metrics and confusion matrix, activate');
  await page.click('#view-models');
  await page.waitForSelector('#models[data-state="ready"]');
  await page.waitForSelector('#model-card[data-state="ready"]');
  const listed = async () => page.$$eval('#models-list li', (lis) =>
    lis.map((li) => ({ task: li.dataset.task, id: li.dataset.id, active: li.dataset.active === 'true' })));
  const models = await api(RESEARCHER, '/api/v1/models');
  assert.deepEqual(await listed(), models.items, 'the models listed are the API\'s');
  for (const mdl of models.items) {
    await page.click(`#models-list li[data-id="${mdl.id}"] .model-open`);
    await page.waitForSelector(`#model-card[data-id="${mdl.id}"][data-state="ready"]`);
    const card = await api(RESEARCHER, `/api/v1/models/${mdl.id}`);
    const { classes, confusion, per_class: perClass } = card.metrics.overall;
    const n = classes.length;
    const cells = await page.$$eval('#confusion td.cell', (tds) =>
      tds.map((td) => [Number(td.dataset.row), Number(td.dataset.col), td.textContent]));
    assert.equal(cells.length, n * n, `${mdl.id}: ${n}x${n} cells`);
    for (const [i, j, text] of cells) assert.equal(text, String(confusion[i][j]), `${mdl.id} [${i}][${j}]`);
    const heads = await page.$$eval('#confusion th.col', (ths) => ths.map((x) => x.textContent));
    assert.deepEqual(heads, classes, 'the class names');
    const rows = await page.$$eval('#model-card .per-class tbody tr', (trs) =>
      trs.map((tr) => [tr.dataset.class, ...[...tr.querySelectorAll('td')].map((td) => td.textContent)]));
    assert.deepEqual(rows, perClass.map((c) => [c.class, c.precision.toFixed(3), c.recall.toFixed(3),
      c.f1.toFixed(3), String(c.support)]), 'per-class precision, recall, F1');
    const activateButtons = await page.locator(`#models-list li[data-id="${mdl.id}"] .activate`).count();
    assert.equal(activateButtons, mdl.active ? 0 : 1, `${mdl.id}: activate only when not active`);
  }
  await page.screenshot({ path: path.join(SHOTS, 'models-desktop.png'), fullPage: true });
  const idle = models.items.find((x) => !x.active);
  if (idle) {
    const was = models.items.find((x) => x.active && x.task === idle.task);
    await page.click(`#models-list li[data-id="${idle.id}"] .activate`);
    await page.waitForSelector(`#models-list li[data-id="${idle.id}"][data-active="true"]`);
    const after = await api(RESEARCHER, '/api/v1/models');
    assert.deepEqual(await listed(), after.items, 'the list after activating is the API\'s');
    assert.ok(after.items.find((x) => x.id === idle.id).active);
    assert.equal(await page.locator(`#models-list li[data-id="${idle.id}"] .activate`).count(), 0);
    if (was) {
      // put the shipped choice back
      await page.click(`#models-list li[data-id="${was.id}"] .activate`);
      await page.waitForSelector(`#models-list li[data-id="${was.id}"][data-active="true"]`);
      assert.deepEqual((await api(RESEARCHER, '/api/v1/models')).items, models.items);
    }
  }
  await page.close();

  // ---------------------------------------------------------------- phone
  step('phone (390 x 844): list and map stack');
  const phone = watch(await context.newPage(), 'phone');
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(`${BASE}/`);
  await signIn(phone, INSPECTOR);
  await waitReady(phone);
  const box = async (sel) => phone.locator(sel).boundingBox();
  const [mapBox, panelBox] = [await box('.mapwrap'), await box('#panel')];
  assert.ok(mapBox.width > 370 && panelBox.width > 370, `full width: ${mapBox.width}, ${panelBox.width}`);
  assert.ok(panelBox.y >= mapBox.y + mapBox.height - 1, `the list below the map: ${JSON.stringify([mapBox, panelBox])}`);
  const scrollWidth = await phone.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scrollWidth <= 392, `no sideways scrolling: ${scrollWidth}`);
  assert.equal(await phone.locator('#list .row').count(), mineIds.length);
  await waitImageryTile(phone);
  await waitMapIdle(phone);
  await phone.screenshot({ path: path.join(SHOTS, 'map-phone.png') });
  await phone.click(`#list .row[data-id="${other}"]`);
  await phone.waitForSelector(`#detail[data-id="${other}"]`, { state: 'visible' });
  await phone.waitForSelector('#d-chips[data-loaded="1"]');
  await waitMapIdle(phone);
  const detailBox = await box('#detail');
  assert.ok(detailBox.width > 370, `the detail takes the width: ${detailBox.width}`);
  await phone.screenshot({ path: path.join(SHOTS, 'detail-phone.png'), fullPage: true });
  step('phone: the statistics view');
  await checkStats(phone, INSPECTOR, 'township');
  const statsWidth = await phone.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(statsWidth <= 392, `no sideways scrolling in the statistics: ${statsWidth}`);
  await phone.screenshot({ path: path.join(SHOTS, 'stats-phone.png'), fullPage: true });
  await phone.close();

  step('no request left for another host; no script error');
  assert.deepEqual(blocked, [], 'requests to other hosts');
  assert.deepEqual(pageErrors, [], 'uncaught errors in the page');
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.stack || e}`);
  for (const p of context.pages()) {
    try {
      await p.screenshot({ path: path.join(SHOTS, `failure-${context.pages().indexOf(p)}.png`) });
    } catch {
      // the page is gone
    }
  }
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
step(`${failed ? 'failed' : 'passed'}; blocked requests to other hosts: ${blocked.length}; screenshots in ${SHOTS}`);
process.exit(failed ? 1 : 0);
