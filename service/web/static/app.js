// gengdi web map: the inspectors' page. Plain ES module over Leaflet (window.L, bundled
// under /web/vendor/leaflet); everything it shows comes from this server's API with the
// token the user signs in with (kept in sessionStorage, sent only in the Authorization
// header: images and tiles are fetched and shown through object URLs, never by a URL that
// carries the token). Nothing is fetched from another host.

const L = window.L;
const TOKEN_KEY = 'gengdi.token';

/** Fill colour per kind (the kinds the analysis reports; another kind is grey). */
const KIND_COLOURS = {
  abandonment: '#f2a900',
  tree_planting: '#2e9e4f',
  fishpond: '#1f78d1',
  construction: '#c0392b',
  non_grain_pbf: '#9b4dca',
};
const OTHER_KIND = '#7f8c8d';
const KIND_LABELS = {
  abandonment: 'abandonment',
  tree_planting: 'tree planting',
  fishpond: 'fishpond',
  construction: 'construction',
  non_grain_pbf: 'non-grain on PBF',
};
/** Outline per status: open dashed yellow, confirmed red, false positive grey, rectified green. */
const STATUS_STYLES = {
  open: { color: '#ffe14d', weight: 2, dashArray: '5 4', fillOpacity: 0.45 },
  confirmed: { color: '#ff2d2d', weight: 3, dashArray: null, fillOpacity: 0.55 },
  false_positive: { color: '#bdbdbd', weight: 2, dashArray: '2 4', fillOpacity: 0.12 },
  rectified: { color: '#3ddc6a', weight: 3, dashArray: null, fillOpacity: 0.25 },
};
const STATUS_LABELS = {
  open: 'open',
  confirmed: 'confirmed',
  false_positive: 'false positive',
  rectified: 'rectified',
};
const VERIFIERS = ['admin', 'inspector'];
/** Below this zoom no imagery tile is asked for (a 60 m scene is still too coarse there). */
const IMAGERY_MIN_ZOOM = 8;
const TILE_MAX_ZOOM = 22;
/** Below this zoom the parcels are not asked for (a county holds ~10⁵ of them). */
const PARCEL_MIN_ZOOM = 13;
/** Most parcels drawn at once. */
const PARCEL_LIMIT = 3000;
/** Parcel outlines: permanent basic farmland (PBF) solid black, other farmland dashed white. */
const PARCEL_STYLES = {
  pbf: { color: '#111111', weight: 2.5, dashArray: null, fillColor: '#111111', fillOpacity: 0.06 },
  other: { color: '#ffffff', weight: 1, dashArray: '3 3', fillColor: '#ffffff', fillOpacity: 0 },
};

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  me: null,
  map: null,
  patchLayer: null,
  selectionLayer: null,
  imageryLayer: null,
  features: [],
  byId: new Map(), // id → {feature, layer, row}
  selected: null,
  detailSeq: 0,
  loadSeq: 0,
  chipUrls: [],
  imagery: { batch: null, dates: [], extraDates: [], date: null, style: 'true', on: true },
  /** The land-cover legend ({model, classes}) of the imagery's batch, once fetched. */
  landcover: { batch: null, legend: null },
  parcels: { on: false, layer: null, seq: 0, ctl: null },
};

// ---------------------------------------------------------------- DOM helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'style') el.setAttribute('style', v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const kindColour = (k) => KIND_COLOURS[k] || OTHER_KIND;
const kindLabel = (k) => KIND_LABELS[k] || k || '?';
const statusLabel = (s) => STATUS_LABELS[s] || s;
const mu = (x) => (typeof x === 'number' ? x.toFixed(2) : '?');
const badge = (status) => h('span', { class: `badge ${status}` }, statusLabel(status));
const isNarrow = () => window.matchMedia('(max-width: 760px)').matches;

function place(p) {
  const parts = [p.village_name || p.village_code, p.township_name || p.township_code].filter(Boolean);
  if (parts.length === 0) return p.county_name || p.location_code || 'no administrative unit';
  return parts.join(', ');
}

// ---------------------------------------------------------------- messages

function showBanner(text) {
  $('banner-text').textContent = text;
  $('banner').hidden = false;
}

function hideBanner() {
  $('banner').hidden = true;
  $('banner-text').textContent = '';
}

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** A request to this server with the token; an ApiError for a failed one (status 0: no answer). */
async function api(path, { method = 'GET', body, token = state.token, signal, cache } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined || form ? body : JSON.stringify(body),
      signal,
      cache,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    const where = path.split('?')[0];
    throw new ApiError(0, 'network',
      `the server did not answer (${method} ${where}); is gengdi serve running?`);
  }
  if (!res.ok) {
    let b = {};
    try {
      b = await res.json();
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(res.status, b.code || `http_${res.status}`,
      b.message || `${res.status} ${res.statusText}`, b.details);
  }
  return res;
}

const getJSON = async (path, opts) => (await api(path, opts)).json();

/** Report a failed request: a token refused mid-session signs out, the rest is a banner. */
function fail(e, what) {
  if (e && e.name === 'AbortError') return;
  console.error(what, e);
  if (e instanceof ApiError && e.status === 401) {
    signOut(`Signed out: the server no longer accepts this token (${e.message}).`);
    return;
  }
  showBanner(`${what}: ${e && e.message ? e.message : e}`);
}

// ---------------------------------------------------------------- sign in / out

function showSignIn(message) {
  $('app').hidden = true;
  $('who').hidden = true;
  $('views').hidden = true;
  $('stats').hidden = true;
  $('models').hidden = true;
  $('signin').hidden = false;
  const err = $('signin-error');
  err.textContent = message || '';
  err.hidden = !message;
  document.body.dataset.state = 'signin';
  $('token').focus();
}

async function signIn(token) {
  token = token.trim();
  let me;
  try {
    me = await getJSON('/api/v1/me', { token, cache: 'no-store' });
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      showSignIn(`This token was not accepted: ${e.message}`);
    } else {
      showSignIn(`Cannot sign in: ${e.message}`);
    }
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.token = token;
  state.me = me;
  hideBanner();
  $('signin').hidden = true;
  $('token').value = '';
  $('who-text').textContent =
    `${me.name} · ${me.role}${me.region ? ` · region ${me.region}` : ''}`;
  $('who').hidden = false;
  $('views').hidden = false;
  $('view-models').hidden = !MODEL_ROLES.includes(me.role);
  document.body.dataset.role = me.role;
  setView('map');
  initMap();
  state.map.invalidateSize();
  await loadPatches({ fit: true });
  const wanted = Number(new URLSearchParams(location.hash.slice(1)).get('patch'));
  if (wanted && state.byId.has(wanted)) await select(wanted);
  document.body.dataset.state = 'ready';
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  closeDetail();
  clearPatches();
  clearPosition();
  state.modelId = null;
  $('models-list').replaceChildren();
  $('model-card').replaceChildren();
  $('models-message').textContent = '';
  $('stats-table').replaceChildren();
  $('stats-chart').replaceChildren();
  $('stats-targets').hidden = true;
  $('views').hidden = true;
  $('stats').hidden = true;
  $('models').hidden = true;
  setImagery(null, []);
  state.landcover = { batch: null, legend: null };
  state.parcels.on = false;
  $('parcels-on').checked = false;
  clearParcels();
  $('f-kind').replaceChildren(h('option', { value: '' }, 'all kinds'));
  $('filters').reset();
  history.replaceState(null, '', location.pathname);
  showSignIn(message);
}

// ---------------------------------------------------------------- the map

/** Imagery tiles of one batch date, fetched with the token (a GridLayer of <img>s). */
const AuthTiles = L && L.GridLayer.extend({
  options: {
    tileSize: 256,
    minZoom: IMAGERY_MIN_ZOOM,
    maxZoom: TILE_MAX_ZOOM,
    maxNativeZoom: TILE_MAX_ZOOM,
    updateWhenZooming: false,
    keepBuffer: 1,
    className: 'imagery-layer',
  },

  initialize(options) {
    L.GridLayer.prototype.initialize.call(this, options);
    this.params = { batch: null, date: null, style: 'true' };
    this.zoomOutMax = -1; // deepest zoom the server said was too far out
    this.controllers = new WeakMap(); // tile <img> → the AbortController of its request
    this.on('tileunload', (e) => {
      const ctl = this.controllers.get(e.tile);
      if (ctl) ctl.abort();
    });
  },

  setParams(params) {
    const batchChanged = params.batch !== this.params.batch;
    this.params = { ...this.params, ...params };
    if (batchChanged) this.zoomOutMax = -1;
    this.redraw();
  },

  createTile(coords, done) {
    const img = document.createElement('img');
    img.alt = '';
    img.setAttribute('role', 'presentation');
    const { batch, date, style } = this.params;
    const key = this._tileCoordsToKey(coords);
    let finished = false;
    // Leaflet finds a finished tile by its coordinates: a late answer for a tile already
    // replaced (redraw, another date) must not mark its successor loaded.
    const finish = (err) => {
      if (finished) return;
      finished = true;
      const current = this._tiles[key];
      if (current && current.el === img) done(err, img);
    };
    if (batch === null || !date || coords.z <= this.zoomOutMax) {
      img.style.visibility = 'hidden';
      setTimeout(() => finish(null), 0);
      return img;
    }
    const ctl = new AbortController();
    this.controllers.set(img, ctl);
    const url = `/tiles/${batch}/${date}/${style}/${coords.z}/${coords.x}/${coords.y}.png`;
    api(url, { signal: ctl.signal })
      .then((res) => res.blob())
      .then((blob) => {
        const objectUrl = URL.createObjectURL(blob);
        img.onload = () => {
          URL.revokeObjectURL(objectUrl);
          img.dataset.loaded = '1';
          img.dataset.date = date;
          img.dataset.style = style;
          finish(null);
        };
        img.onerror = () => {
          URL.revokeObjectURL(objectUrl);
          img.style.visibility = 'hidden';
          finish(null);
        };
        img.src = objectUrl;
      })
      .catch((e) => {
        img.style.visibility = 'hidden';
        if (e.name !== 'AbortError') {
          if (e.status === 422 && e.code === 'zoom_out') {
            this.zoomOutMax = Math.max(this.zoomOutMax, coords.z);
            this.fire('zoomout', { z: coords.z });
          } else {
            this.fire('tilefailed', { error: e });
          }
        }
        finish(null);
      })
      .finally(() => this.controllers.delete(img));
    return img;
  },
});

function initMap() {
  if (state.map) return;
  const map = L.map('map', {
    minZoom: 2,
    maxZoom: TILE_MAX_ZOOM,
    zoomSnap: 0.5,
    attributionControl: true,
  });
  map.attributionControl.setPrefix('Leaflet');
  map.attributionControl.addAttribution('imagery: the batch scenes, drawn by gengdi');
  L.control.scale({ imperial: false }).addTo(map);
  map.createPane('parcels').style.zIndex = 440;
  map.createPane('patches').style.zIndex = 450;
  map.createPane('selection').style.zIndex = 460;
  map.getPane('selection').style.pointerEvents = 'none';
  map.setView([36, 105], 4);
  state.map = map;

  const layer = new AuthTiles();
  layer.on('zoomout', updateZoomHint);
  layer.on('tilefailed', (e) => {
    const err = e.error;
    if (err.status === 0) fail(err, 'Imagery');
    else if (err.status === 401) fail(err, 'Imagery');
    else showZoomHint(`No imagery here: ${err.message}`);
  });
  // For a test (and a curious reader): whether the map is still moving or drawing tiles.
  const el = map.getContainer();
  el.dataset.tiles = 'loaded';
  el.dataset.moving = '0';
  layer.on('loading', () => { el.dataset.tiles = 'loading'; });
  layer.on('load', () => { el.dataset.tiles = 'loaded'; });
  map.on('movestart zoomstart', () => { el.dataset.moving = '1'; });
  map.on('moveend', () => { el.dataset.moving = '0'; });
  state.imageryLayer = layer;
  layer.addTo(map);
  map.on('zoomend', updateZoomHint);
  map.on('moveend', () => { if (state.parcels.on) loadParcels(); });
  renderLegend();
}

function showZoomHint(text) {
  $('zoom-hint').textContent = text;
  $('zoom-hint').hidden = false;
}

function updateZoomHint() {
  const layer = state.imageryLayer;
  const im = state.imagery;
  if (!state.map || !layer || !im.on || im.batch === null) {
    $('zoom-hint').hidden = true;
    return;
  }
  const z = Math.round(state.map.getZoom());
  if (z < IMAGERY_MIN_ZOOM || z <= layer.zoomOutMax) showZoomHint('Zoom in to see the imagery');
  else $('zoom-hint').hidden = true;
}

function renderLegend() {
  const legend = $('legend');
  legend.replaceChildren(
    ...Object.keys(KIND_COLOURS).map((k) =>
      h('span', { class: 'item' },
        h('span', { class: 'swatch', style: `background:${kindColour(k)}` }), kindLabel(k))),
    ...Object.entries(STATUS_STYLES).map(([s, st]) =>
      h('span', { class: 'item' },
        h('span', {
          class: 'line',
          style: `border-top-color:${st.color};border-top-style:${st.dashArray ? 'dashed' : 'solid'};background:#555`,
        }), statusLabel(s))),
    ...(state.parcels.on ? [['pbf', 'parcel, PBF'], ['other', 'parcel, not PBF']] : []).map(([k, label]) =>
      h('span', { class: 'item' },
        h('span', {
          class: 'box',
          style: `border-color:${PARCEL_STYLES[k].color};border-style:${PARCEL_STYLES[k].dashArray ? 'dashed' : 'solid'};background:#555`,
        }), label)),
  );
}

/** The land-cover legend of the imagery's batch, shown while the land-cover style is on. */
async function renderLandCoverLegend() {
  const box = $('lc-legend');
  const im = state.imagery;
  if (!(im.on && im.batch !== null && im.style === 'landcover')) {
    box.hidden = true;
    return;
  }
  const lc = state.landcover;
  if (lc.batch !== im.batch || !lc.legend) {
    const batch = im.batch;
    let legend;
    try {
      legend = await (await api(`/tiles/${batch}/landcover.json`)).json();
    } catch (e) {
      fail(e, 'The land-cover legend');
      return;
    }
    if (state.imagery.batch !== batch) return;
    state.landcover = { batch, legend };
  }
  const { legend } = state.landcover;
  box.replaceChildren(
    h('span', { class: 'title' }, `Land cover (model ${legend.model})`),
    ...legend.classes.map((c) =>
      h('span', { class: 'item', 'data-code': String(c.code), 'data-colour': c.colour },
        h('span', { class: 'swatch', style: `background:${c.colour}` }), c.name.replaceAll('_', ' '))),
  );
  box.hidden = !(state.imagery.on && state.imagery.style === 'landcover');
}

// ---------------------------------------------------------------- farmland parcels

function clearParcels() {
  const p = state.parcels;
  if (p.ctl) p.ctl.abort();
  p.ctl = null;
  if (p.layer && state.map) state.map.removeLayer(p.layer);
  p.layer = null;
  $('parcels-hint').hidden = true;
  if (state.map) {
    const el = state.map.getContainer();
    el.dataset.parcels = '0';
    el.dataset.parcelsTotal = '0';
    el.dataset.parcelsState = 'idle';
  }
}

function parcelsHint(text) {
  $('parcels-hint').textContent = text;
  $('parcels-hint').hidden = !text;
}

/** The batch's parcels in the map's view (from zoom PARCEL_MIN_ZOOM on), PBF distinguished. */
async function loadParcels() {
  const p = state.parcels;
  const map = state.map;
  const batch = state.imagery.batch;
  if (!map || !p.on || batch === null) {
    clearParcels();
    return;
  }
  const el = map.getContainer();
  if (map.getZoom() < PARCEL_MIN_ZOOM) {
    clearParcels();
    parcelsHint('Zoom in to see the parcels');
    return;
  }
  const seq = ++p.seq;
  if (p.ctl) p.ctl.abort();
  p.ctl = new AbortController();
  el.dataset.parcelsState = 'loading';
  const b = map.getBounds();
  const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(6)).join(',');
  let fc;
  try {
    fc = await (await api(`/api/v1/batches/${batch}/parcels?bbox=${bbox}&limit=${PARCEL_LIMIT}`,
      { signal: p.ctl.signal })).json();
  } catch (e) {
    if (e.name === 'AbortError') return;
    el.dataset.parcelsState = 'failed';
    fail(e, 'Parcels');
    return;
  }
  if (seq !== p.seq || !p.on) return;
  if (p.layer) map.removeLayer(p.layer);
  p.layer = L.geoJSON(fc, {
    pane: 'parcels',
    style: (f) => {
      const st = PARCEL_STYLES[f.properties.pbf ? 'pbf' : 'other'];
      return { ...st, pane: 'parcels', opacity: 0.9, className: f.properties.pbf ? 'parcel pbf' : 'parcel' };
    },
    onEachFeature: (f, layer) => {
      const a = f.properties;
      layer.bindTooltip([
        `Parcel ${a.parcel}`,
        a.land_class ? `${a.land_class}${a.land_class_name ? ` ${a.land_class_name}` : ''}` : null,
        a.pbf ? 'permanent basic farmland' : 'not PBF',
        `${a.area_mu.toFixed(2)} mu`,
      ].filter(Boolean).join(' · '), { sticky: true });
    },
  }).addTo(map);
  el.dataset.parcels = String(fc.features.length);
  el.dataset.parcelsTotal = String(fc.total);
  el.dataset.parcelsBbox = bbox;
  el.dataset.parcelsState = 'loaded';
  parcelsHint(fc.truncated
    ? `${fc.features.length} of ${fc.total} parcels drawn: zoom in to see them all`
    : '');
}

function patchStyle(p) {
  const s = STATUS_STYLES[p.status] || STATUS_STYLES.open;
  return {
    pane: 'patches',
    color: s.color,
    weight: s.weight,
    dashArray: s.dashArray,
    opacity: 1,
    fillColor: kindColour(p.kind),
    fillOpacity: s.fillOpacity,
  };
}

// ---------------------------------------------------------------- imagery control

function setImagery(batch, dates, keepDate = true) {
  const im = state.imagery;
  const sameBatch = batch === im.batch;
  im.batch = batch;
  im.dates = [...(dates || [])].sort();
  if (!sameBatch) im.extraDates = [];
  const all = allImageryDates();
  if (!(keepDate && sameBatch && all.includes(im.date))) im.date = im.dates[im.dates.length - 1] || null;
  renderImageryControl();
  applyImagery();
  // The parcels are the batch's: another date or style keeps them.
  if (!sameBatch && state.parcels.on) loadParcels();
}

function allImageryDates() {
  const im = state.imagery;
  return [...new Set([...im.extraDates, ...im.dates])].sort();
}

function renderImageryControl() {
  const im = state.imagery;
  const select = $('img-date');
  select.replaceChildren(...allImageryDates().map((d) =>
    h('option', { value: d, selected: d === im.date },
      im.extraDates.includes(d) && !im.dates.includes(d) ? `${d} (baseline)` : d)));
  select.disabled = im.batch === null;
  $('img-batch').textContent = im.batch === null ? 'no batch' : `batch ${im.batch}`;
  for (const style of ['true', 'false', 'landcover']) {
    const b = $(`img-${style}`);
    b.classList.toggle('on', im.style === style);
    b.setAttribute('aria-pressed', String(im.style === style));
  }
  $('img-on').checked = im.on;
}

function applyImagery() {
  const layer = state.imageryLayer;
  if (!layer || !state.map) return;
  const im = state.imagery;
  if (im.on && im.batch !== null) {
    if (!state.map.hasLayer(layer)) layer.addTo(state.map);
    layer.setParams({ batch: im.batch, date: im.date, style: im.style });
  } else if (state.map.hasLayer(layer)) {
    state.map.removeLayer(layer);
    state.map.getContainer().dataset.tiles = 'loaded';
  }
  updateZoomHint();
  renderLandCoverLegend();
}

// ---------------------------------------------------------------- filters, list, counts

function filterParams() {
  const p = {};
  const kind = $('f-kind').value;
  const status = $('f-status').value;
  const region = $('f-region').value.trim();
  const minMu = $('f-min-mu').value.trim();
  const from = $('f-from').value;
  const to = $('f-to').value;
  if (kind) p.kind = kind;
  if (status) p.status = status;
  if (region) p.region = region;
  if (minMu) p.min_mu = minMu;
  if ($('f-pbf').checked) p.pbf = 'true';
  if (from) p.from = from;
  if (to) p.to = to;
  return p;
}

const geojsonUrl = (params) =>
  `/api/v1/changes?${new URLSearchParams({ format: 'geojson', ...params })}`;

function clearPatches() {
  if (state.patchLayer) state.patchLayer.remove();
  if (state.selectionLayer) state.selectionLayer.remove();
  state.patchLayer = null;
  state.selectionLayer = null;
  state.features = [];
  state.byId.clear();
  state.selected = null;
  $('list').replaceChildren();
  $('counts').replaceChildren();
  $('list-summary').textContent = '';
  document.body.dataset.patches = '0';
}

async function loadPatches({ fit = false } = {}) {
  const seq = ++state.loadSeq;
  const params = filterParams();
  const withoutKind = { ...params };
  delete withoutKind.kind;
  $('list-summary').textContent = 'Loading…';
  $('f-apply').disabled = true;
  let fc;
  let all;
  try {
    [fc, all] = await Promise.all([
      getJSON(geojsonUrl(params), { cache: 'no-store' }),
      params.kind ? getJSON(geojsonUrl(withoutKind), { cache: 'no-store' }) : null,
    ]);
  } catch (e) {
    if (seq === state.loadSeq) {
      $('list-summary').textContent = 'The list could not be loaded.';
      fail(e, 'Loading the suspected changes');
    }
    return;
  } finally {
    if (seq === state.loadSeq) $('f-apply').disabled = false;
  }
  if (seq !== state.loadSeq || !state.token) return;
  const selected = state.selected;
  clearPatches();
  state.features = fc.features || [];
  renderCounts(all ? all.features : state.features, params.kind || '');
  renderPatches();
  renderList();
  if (fit) fitToPatches();
  if (state.imagery.batch === null && state.features.length > 0) {
    const p = state.features[0].properties;
    setImagery(p.batch, splitDates(p.dates));
  }
  if (selected !== null && state.byId.has(selected)) {
    markSelected(selected);
  } else if (selected !== null) {
    closeDetail();
  }
}

function splitDates(d) {
  if (Array.isArray(d)) return d;
  return (d || '').split(';').filter(Boolean);
}

function fitToPatches() {
  if (!state.patchLayer || state.features.length === 0) return;
  const b = state.patchLayer.getBounds();
  if (b.isValid()) state.map.fitBounds(b, { padding: [24, 24], maxZoom: 17 });
}

function renderPatches() {
  state.patchLayer = L.geoJSON({ type: 'FeatureCollection', features: state.features }, {
    style: (f) => patchStyle(f.properties),
    onEachFeature: (f, layer) => {
      const id = f.properties.id;
      state.byId.set(id, { feature: f, layer, row: null });
      layer.bindTooltip(
        `#${id} ${kindLabel(f.properties.kind)} · ${mu(f.properties.area_mu)} mu · ${statusLabel(f.properties.status)}`,
        { sticky: true },
      );
      layer.on('click', () => select(id));
      layer.on('add', () => {
        const el = layer.getElement && layer.getElement();
        if (el) {
          el.dataset.id = String(id);
          el.classList.add('patch');
        }
      });
    },
  }).addTo(state.map);
  document.body.dataset.patches = String(state.features.length);
}

function renderCounts(features, activeKind) {
  const counts = new Map();
  for (const f of features) {
    const k = f.properties.kind;
    counts.set(k, (counts.get(k) || 0) + 1);
  }
  const kinds = [...new Set([...Object.keys(KIND_COLOURS), ...counts.keys()])];
  const select = $('f-kind');
  select.replaceChildren(
    h('option', { value: '' }, `all kinds (${features.length})`),
    ...kinds.map((k) => h('option', { value: k, selected: k === activeKind },
      `${kindLabel(k)} (${counts.get(k) || 0})`)),
  );
  $('counts').replaceChildren(...kinds.filter((k) => counts.get(k)).map((k) =>
    h('button', {
      type: 'button',
      class: `count${k === activeKind ? ' active' : ''}`,
      dataset: { kind: k, count: String(counts.get(k)) },
      title: k === activeKind ? 'show every kind' : `show only ${kindLabel(k)}`,
      onclick: () => {
        $('f-kind').value = k === activeKind ? '' : k;
        loadPatches({ fit: true });
      },
    }, h('span', { class: 'swatch', style: `background:${kindColour(k)}` }),
    `${kindLabel(k)} ${counts.get(k)}`)));
}

function renderList() {
  const list = $('list');
  const total = state.features.reduce((s, f) => s + (f.properties.area_mu || 0), 0);
  const n = state.features.length;
  $('list-summary').textContent = n === 0
    ? 'No suspected changes match (for your role and region).'
    : `${n} suspected change${n === 1 ? '' : 's'} · ${mu(total)} mu`;
  list.replaceChildren(...state.features.map((f) => {
    const p = f.properties;
    const row = h('button', {
      type: 'button',
      class: 'row',
      dataset: { id: String(p.id), kind: p.kind, status: p.status },
      onclick: () => select(p.id),
    },
    h('span', { class: 'swatch', style: `background:${kindColour(p.kind)}` }),
    h('span', { class: 'kind' }, `${kindLabel(p.kind)}${p.pbf && p.kind !== 'non_grain_pbf' ? ' · PBF' : ''}`),
    h('span', { class: 'area' }, `${mu(p.area_mu)} mu`),
    h('span', { class: 'place' }, `#${p.id} · ${place(p)}`),
    badge(p.status));
    const entry = state.byId.get(p.id);
    if (entry) entry.row = row;
    return h('li', {}, row);
  }));
  list.dataset.count = String(n);
}

function markSelected(id) {
  for (const { row } of state.byId.values()) if (row) row.classList.remove('selected');
  const entry = state.byId.get(id);
  if (!entry) return;
  if (entry.row) {
    entry.row.classList.add('selected');
    entry.row.scrollIntoView({ block: 'nearest' });
  }
  if (state.selectionLayer) state.selectionLayer.remove();
  state.selectionLayer = L.geoJSON(entry.feature, {
    pane: 'selection',
    interactive: false,
    style: { color: '#00e5ff', weight: 5, opacity: 0.9, fill: false },
  }).addTo(state.map);
}

async function select(id) {
  const entry = state.byId.get(id);
  if (!entry) return;
  state.selected = id;
  history.replaceState(null, '', `#patch=${id}`);
  markSelected(id);
  updateLocateText();
  await openDetail(id);
  // after the detail panel took its room
  state.map.invalidateSize();
  const b = entry.layer.getBounds();
  if (b.isValid()) state.map.fitBounds(b, { padding: [40, 40], maxZoom: 17 });
  if (isNarrow()) document.querySelector('.mapwrap').scrollIntoView({ block: 'start' });
}

// ---------------------------------------------------------------- detail

function closeDetail() {
  state.detailSeq += 1;
  state.selected = null;
  for (const u of state.chipUrls) URL.revokeObjectURL(u);
  state.chipUrls = [];
  $('detail').hidden = true;
  $('app').classList.remove('with-detail');
  if (state.selectionLayer) {
    state.selectionLayer.remove();
    state.selectionLayer = null;
  }
  for (const { row } of state.byId.values()) if (row) row.classList.remove('selected');
  if (state.map) state.map.invalidateSize();
  updateLocateText();
  if (location.hash) history.replaceState(null, '', location.pathname);
}

async function openDetail(id) {
  const seq = ++state.detailSeq;
  for (const u of state.chipUrls) URL.revokeObjectURL(u);
  state.chipUrls = [];
  const entry = state.byId.get(id);
  const p = entry ? entry.feature.properties : { id };
  $('detail').hidden = false;
  $('app').classList.add('with-detail');
  $('detail').dataset.id = String(id);
  $('d-title').textContent = `#${id} ${kindLabel(p.kind)}`;
  $('d-status').replaceChildren('Loading…');
  $('d-evidence').textContent = '';
  $('d-chips').replaceChildren();
  $('d-attrs').replaceChildren();
  $('d-history').replaceChildren();
  $('v-message').textContent = '';
  $('d-verdict').hidden = true;
  let rec;
  try {
    rec = await getJSON(`/api/v1/changes/${id}`, { cache: 'no-store' });
  } catch (e) {
    if (seq === state.detailSeq) {
      $('d-status').textContent = `Cannot load this patch: ${e.message}`;
      fail(e, `Loading patch #${id}`);
    }
    return;
  }
  if (seq !== state.detailSeq) return;
  renderDetail(rec);
  setImagery(rec.batch, rec.dates);
  loadChips(rec, seq);
}

function renderDetail(rec) {
  const a = rec.admin || {};
  $('d-title').textContent = `#${rec.id} ${kindLabel(rec.kind)}`;
  $('d-status').replaceChildren(badge(rec.status),
    ` · ${mu(rec.area_mu)} mu · batch ${rec.batch} · confidence ${Number(rec.confidence).toFixed(2)}`);
  $('d-evidence').textContent = rec.evidence || '(no evidence sentence)';
  const unit = (name, code) => (name || code ? `${name || ''}${name && code ? ' ' : ''}${code ? `(${code})` : ''}` : '—');
  const rows = [
    ['Parcel', rec.parcel || '—'],
    ['Class before → after', `${rec.class_before || '?'} → ${rec.class_after || '?'}`],
    ['PBF', rec.pbf ? 'yes (permanent basic farmland)' : 'no'],
    ['Area', `${mu(rec.area_mu)} mu (${Math.round(rec.area_m2)} m²)`],
    ['County', unit(a.county_name, a.county_code)],
    ['Township', unit(a.township_name, a.township_code)],
    ['Village', unit(a.village_name, a.village_code)],
    ['Group', unit(a.group_name, a.group_code)],
    ['Dates', (rec.dates || []).join(', ')],
    ['Model', rec.model_version || '—'],
    ['Reference', rec.reference || '—'],
  ];
  $('d-attrs').replaceChildren(...rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))));
  renderSeries(rec.series);
  const verdicts = rec.verdicts || [];
  $('d-history').replaceChildren(...(verdicts.length === 0
    ? [h('li', { class: 'muted' }, 'No verdict yet.')]
    : verdicts.map((v) => h('li', { dataset: { verdict: v.verdict } },
      h('strong', {}, statusLabel(v.verdict)),
      ` by ${v.actor} (${v.role}), ${formatTime(v.at)}`,
      v.class_found ? h('div', { class: 'found' }, 'Found on the ground: ', h('strong', {}, v.class_found)) : null,
      v.note ? h('div', { class: 'note' }, `“${v.note}”`) : null,
      (v.photos || []).length > 0 ? h('div', { class: 'photos' }, ...v.photos.map(photoThumb)) : null))));
  const may = state.me && VERIFIERS.includes(state.me.role);
  $('d-verdict').hidden = !may;
}

const SVG = 'http://www.w3.org/2000/svg';
/** An SVG element with attributes and children. */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

/** Land-cover class colours of the season chart. */
const CLASS_COLOURS = {
  annual_crop: '#e3c33b', orchard: '#8f5fbf', tree: '#1f7a3a', grass: '#8cc65a',
  bare: '#b98b5c', water: '#2f6fd0', built: '#d04a3a',
};

/**
 * The parcel over the season (the record's `series`): NDVI of its mean clear reflectance per
 * date as a line, and under each date a bar of its clear pixels' land-cover classes.
 */
function renderSeries(series) {
  const box = $('d-series');
  const dates = (series && series.dates) || [];
  if (dates.length === 0) {
    box.replaceChildren(h('figcaption', { class: 'muted' }, 'No season evidence stored for this patch.'));
    return;
  }
  const W = 360, padL = 34, padR = 20, top = 8, chartH = 84, barTop = top + chartH + 22, barH = 14;
  const H = barTop + barH + 4;
  const n = dates.length;
  const x = (i) => padL + (n === 1 ? (W - padL - padR) / 2 : (i * (W - padL - padR)) / (n - 1));
  const y = (v) => top + ((1 - (v + 0.2) / 1.2) * chartH); // NDVI −0.2 … 1
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'NDVI and land cover over the season' });
  for (const v of [0, 0.5, 1]) {
    svg.append(s('line', { x1: padL, x2: W - padR, y1: y(v), y2: y(v), class: 'grid' }),
      s('text', { x: padL - 4, y: y(v) + 3, 'text-anchor': 'end', class: 'axis' }, v.toFixed(1)));
  }
  svg.append(s('text', { x: 2, y: top + 8, class: 'axis' }, 'NDVI'));
  const points = dates.map((d, i) => (typeof d.ndvi === 'number' ? [x(i), y(d.ndvi), d] : null));
  let path = '';
  for (const p of points) {
    if (p) path += `${path && !path.endsWith('|') ? 'L' : 'M'}${p[0].toFixed(1)},${p[1].toFixed(1)}`;
    else path += '|';
  }
  svg.append(s('path', { d: path.replaceAll('|', ''), class: 'ndvi' }));
  const barW = Math.max(6, Math.min(28, (W - padL - padR) / n - 4));
  dates.forEach((d, i) => {
    const p = points[i];
    if (p) {
      svg.append(s('circle', { cx: p[0], cy: p[1], r: 3, class: 'ndvi-point', 'data-date': d.date || '' },
        s('title', {}, `${d.date}: NDVI ${d.ndvi.toFixed(2)}, ${d.clear_pixels} clear px`)));
    }
    svg.append(s('text', { x: x(i), y: top + chartH + 14, 'text-anchor': 'middle', class: 'axis' },
      (d.date || '?').slice(5)));
    // The date's land cover: a bar of its class shares (grey: no clear pixel).
    let left = x(i) - barW / 2;
    const shares = Object.entries(d.class_fractions || {}).filter(([, f]) => f > 0);
    if (shares.length === 0) {
      svg.append(s('rect', { x: left, y: barTop, width: barW, height: barH, class: 'no-clear' },
        s('title', {}, `${d.date}: no clear pixel`)));
    }
    for (const [name, f] of shares) {
      const w = f * barW;
      svg.append(s('rect', { x: left, y: barTop, width: w, height: barH, fill: CLASS_COLOURS[name] || '#999', 'data-class': name },
        s('title', {}, `${d.date}: ${name} ${(100 * f).toFixed(0)} %`)));
      left += w;
    }
  });
  const seen = [...new Set(dates.flatMap((d) => Object.keys(d.class_fractions || {})
    .filter((k) => d.class_fractions[k] > 0)))];
  const crop = series.crop_type ? ` · crop-type model: ${series.crop_type[0]} (${series.crop_type[1].toFixed(2)})` : '';
  box.replaceChildren(svg, h('figcaption', {},
    ...seen.map((name) => h('span', { class: 'swatch-item' },
      h('span', { class: 'swatch', style: `background:${CLASS_COLOURS[name] || '#999'}` }), name)),
    h('span', { class: 'muted' }, ` · ${series.pixels} px${crop}`)));
}

/** A verdict's photo: fetched with the token, shown small, opened full size on click. */
function photoThumb(p) {
  const img = h('img', { class: 'photo', alt: `photo ${p.id}`, dataset: { photo: String(p.id) } });
  const place = p.lon !== null && p.lon !== undefined ? ` at ${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}` : '';
  img.title = `${p.content_type}, ${p.bytes} bytes${p.taken_at ? `, ${formatTime(p.taken_at)}` : ''}${place}`;
  api(p.url).then((r) => r.blob()).then((b) => {
    img.src = URL.createObjectURL(b);
    img.addEventListener('click', () => window.open(img.src, '_blank'));
  }).catch((e) => fail(e, 'Loading a photo'));
  return img;
}

function formatTime(at) {
  const t = new Date(at);
  return Number.isNaN(t.getTime()) ? at : t.toLocaleString();
}

function chipFigure(caption) {
  const slot = h('div', { class: 'nochip' }, '…');
  const fig = h('figure', {}, slot, h('figcaption', {}, caption));
  $('d-chips').append(fig);
  return { fig, slot };
}

/** One chip into its figure; false when the server has none (404), after showing why. */
async function loadChip(id, date, fig, slot, seq, { quiet404 = false } = {}) {
  try {
    const res = await api(`/api/v1/changes/${id}/chips/${date}.png`);
    const drawn = res.headers.get('X-Chip-Date');
    const blob = await res.blob();
    if (seq !== state.detailSeq) return null;
    const url = URL.createObjectURL(blob);
    state.chipUrls.push(url);
    const img = h('img', { alt: `patch ${id} on ${drawn || date}`, dataset: { date } });
    img.src = url;
    slot.replaceWith(img);
    return drawn || date;
  } catch (e) {
    if (seq !== state.detailSeq) return null;
    if (quiet404 && e.status === 404) {
      fig.remove();
      return null;
    }
    if (e.status === 401 || e.status === 0) fail(e, 'Image chips');
    slot.textContent = `no image: ${e.message}`;
    return null;
  }
}

async function loadChips(rec, seq) {
  const dates = [...(rec.dates || [])].sort();
  const season = dates.map((d) => {
    const { fig, slot } = chipFigure(d);
    return loadChip(rec.id, d, fig, slot, seq);
  });
  // before / after: only where the batch has a baseline (404 no_baseline otherwise).
  const before = chipFigure('before');
  const beforeDate = await loadChip(rec.id, 'before', before.fig, before.slot, seq, { quiet404: true });
  if (beforeDate && seq === state.detailSeq) {
    before.fig.querySelector('figcaption').textContent = `before (${beforeDate})`;
    const after = chipFigure('after');
    const afterDate = await loadChip(rec.id, 'after', after.fig, after.slot, seq);
    if (afterDate) after.fig.querySelector('figcaption').textContent = `after (${afterDate})`;
    if (!state.imagery.extraDates.includes(beforeDate) && state.imagery.batch === rec.batch) {
      state.imagery.extraDates.push(beforeDate);
      renderImageryControl();
    }
  }
  await Promise.all(season);
  if (seq === state.detailSeq) $('d-chips').dataset.loaded = '1';
}

async function recordVerdict(verdict) {
  const id = state.selected;
  if (id === null) return;
  const buttons = [...document.querySelectorAll('.verdict-buttons button')];
  buttons.forEach((b) => { b.disabled = true; });
  const note = $('v-note').value;
  // The land-cover class found on the ground (optional; the API refuses it with rectified).
  const classFound = $('v-class').value;
  const files = [...($('v-photos').files || [])];
  $('v-message').textContent = 'Recording…';
  try {
    let body = { verdict, note };
    if (classFound) body.class_found = classFound;
    if (files.length > 0) {
      // With photos: multipart, with when they are sent and, when "where am I" knows it,
      // where (the browser's position).
      body = new FormData();
      body.append('verdict', verdict);
      body.append('note', note);
      if (classFound) body.append('class_found', classFound);
      body.append('taken_at', new Date().toISOString());
      if (state.position) {
        body.append('lon', String(state.position.latlng.lng));
        body.append('lat', String(state.position.latlng.lat));
      }
      for (const f of files) body.append('photos', f, f.name);
    }
    const res = await api(`/api/v1/changes/${id}/verdicts`, {
      method: 'POST',
      body,
    });
    const out = await res.json();
    const entry = state.byId.get(id);
    if (entry) {
      entry.feature.properties.status = out.status;
      entry.layer.setStyle(patchStyle(entry.feature.properties));
      entry.layer.setTooltipContent(
        `#${id} ${kindLabel(entry.feature.properties.kind)} · ${mu(entry.feature.properties.area_mu)} mu · ${statusLabel(out.status)}`);
      if (entry.row) {
        entry.row.dataset.status = out.status;
        entry.row.querySelector('.badge').replaceWith(badge(out.status));
      }
    }
    $('v-note').value = '';
    $('v-class').value = '';
    $('v-photos').value = '';
    const rec = await getJSON(`/api/v1/changes/${id}`, { cache: 'no-store' });
    if (state.selected === id) {
      renderDetail(rec);
      $('v-message').textContent = `Recorded: ${statusLabel(verdict)}. The patch is now ${statusLabel(out.status)}.`;
    }
  } catch (e) {
    $('v-message').textContent = `Not recorded: ${e.message}`;
    fail(e, 'Recording the verdict');
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// ---------------------------------------------------------------- views: map, statistics, models

/** Roles that may see the model registry (the API answers 403 to the others). */
const MODEL_ROLES = ['admin', 'centre', 'researcher'];
/** Roles that may activate a model. */
const ACTIVATORS = ['admin', 'researcher'];
const STATUSES = ['open', 'confirmed', 'false_positive', 'rectified'];

function setView(view) {
  const me = state.me;
  if (view === 'models' && !(me && MODEL_ROLES.includes(me.role))) view = 'map';
  state.view = view;
  for (const b of document.querySelectorAll('#views button')) {
    const on = b.dataset.view === view;
    b.classList.toggle('on', on);
    b.setAttribute('aria-pressed', String(on));
  }
  $('app').hidden = view !== 'map';
  $('stats').hidden = view !== 'stats';
  $('models').hidden = view !== 'models';
  document.body.dataset.view = view;
  if (view === 'map' && state.map) state.map.invalidateSize();
  if (view === 'stats') loadStats();
  if (view === 'models') loadModels();
}

const tally = (t) => (t ? `${t.patches} · ${mu(t.mu)}` : '0 · 0.00');

async function loadStats() {
  const seq = (state.statsSeq = (state.statsSeq || 0) + 1);
  const level = $('stats-level').value;
  const box = $('stats');
  box.dataset.state = 'loading';
  $('stats-summary').textContent = 'Loading…';
  let st;
  try {
    st = await getJSON(`/api/v1/stats?level=${encodeURIComponent(level)}`, { cache: 'no-store' });
  } catch (e) {
    if (seq === state.statsSeq) {
      $('stats-summary').textContent = `The statistics could not be loaded: ${e.message}`;
      box.dataset.state = 'error';
      fail(e, 'Loading the statistics');
    }
    return;
  }
  if (seq !== state.statsSeq) return;
  renderStats(st, level);
  box.dataset.level = level;
  box.dataset.state = 'ready';
}

function renderStats(st, level) {
  const units = st.units || [];
  const t = st.totals;
  $('stats-summary').textContent = units.length === 0
    ? `No suspected changes in any ${level} (for your role and region).`
    : `${units.length} ${level}${units.length === 1 ? '' : 's'} · ${t.patches} patches · ${mu(t.mu)} mu`;
  // the kinds found, in the map's order first
  const found = Object.keys(t.by_kind || {});
  const kinds = [...Object.keys(KIND_COLOURS).filter((k) => found.includes(k)),
    ...found.filter((k) => !(k in KIND_COLOURS))];
  const unitName = (u) => (u.code === null ? 'no unit' : `${u.name || ''}${u.name ? ' ' : ''}(${u.code})`);

  // targets (admin, centre, researcher; inspectors get null)
  const tg = st.targets;
  const targets = $('stats-targets');
  if (tg) {
    const row = (key, label, g) => h('tr', { dataset: { target: key } },
      h('th', {}, label),
      h('td', { dataset: { col: 'area' } }, `${mu(g.area_mu)} mu`),
      h('td', { dataset: { col: 'target' } }, `${mu(g.target_mu)} mu`),
      h('td', { dataset: { col: 'gap' }, class: g.gap_mu > 0 ? 'short' : 'met' },
        `${mu(g.gap_mu)} mu ${g.gap_mu > 0 ? 'short' : 'met'}`));
    targets.replaceChildren(h('h3', {}, 'Farmland against the targets'),
      h('table', { class: 'attrs' },
        h('tr', {}, h('th', {}, ''), h('th', {}, 'area'), h('th', {}, 'target'), h('th', {}, 'gap')),
        row('cropland', 'Cropland', tg.cropland), row('pbf', 'Permanent basic farmland', tg.pbf)),
      h('p', { class: 'muted small' }, `farmland layer${tg.layers.length === 1 ? '' : 's'} ${tg.layers.join(', ')}; gap = target − area`));
    targets.hidden = false;
  } else {
    targets.replaceChildren();
    targets.hidden = true;
  }

  // the table
  const cells = (f) => [
    h('td', { dataset: { col: 'patches' }, class: 'num' }, String(f.patches)),
    h('td', { dataset: { col: 'mu' }, class: 'num' }, mu(f.mu)),
    ...kinds.map((k) => h('td', { dataset: { col: `kind:${k}` }, class: 'num' }, tally(f.by_kind[k]))),
    ...STATUSES.map((s2) => h('td', { dataset: { col: `status:${s2}` }, class: 'num' }, tally(f.by_status[s2]))),
    h('td', { dataset: { col: 'out' }, class: 'num' }, tally(f.balance.out)),
    h('td', { dataset: { col: 'in' }, class: 'num' }, tally(f.balance.in)),
    h('td', { dataset: { col: 'net' }, class: `num ${f.balance.net_mu < 0 ? 'neg' : ''}` }, mu(f.balance.net_mu)),
  ];
  $('stats-table').replaceChildren(
    h('thead', {},
      h('tr', {}, h('th', {}, level), h('th', {}, 'patches'), h('th', {}, 'mu'),
        ...kinds.map((k) => h('th', {}, h('span', { class: 'swatch', style: `background:${kindColour(k)}` }), ` ${kindLabel(k)}`)),
        ...STATUSES.map((s2) => h('th', {}, statusLabel(s2))),
        h('th', {}, 'out'), h('th', {}, 'in'), h('th', {}, 'net mu'))),
    h('tbody', {}, ...units.map((u) => h('tr', { dataset: { code: u.code === null ? '' : u.code } },
      h('th', { class: 'unit' }, unitName(u)), ...cells(u)))),
    h('tfoot', {}, h('tr', { dataset: { code: 'total' } }, h('th', {}, 'total'), ...cells(t))),
  );
  const note = h('caption', { class: 'muted small' }, 'each kind, status, out and in: patches · mu');
  $('stats-table').prepend(note);

  renderStatsChart(units, kinds, unitName);
}

/** mu by kind per unit: one horizontal stacked bar a unit, in the map's kind colours. */
function renderStatsChart(units, kinds, unitName) {
  const box = $('stats-chart');
  if (units.length === 0) {
    box.replaceChildren();
    return;
  }
  // narrower on a phone so that its text stays readable
  const W = isNarrow() ? 380 : 560, labelW = isNarrow() ? 118 : 150, padR = 60, barH = 16, gap = 6, top = 6, axisH = 18;
  const H = top + units.length * (barH + gap) + axisH;
  const max = Math.max(...units.map((u) => kinds.reduce((a, k) => a + ((u.by_kind[k] || {}).mu || 0), 0)), 1e-9);
  const scale = (W - labelW - padR) / max;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'mu by kind per unit' });
  units.forEach((u, i) => {
    const y = top + i * (barH + gap);
    const name = unitName(u);
    svg.append(s('text', { x: labelW - 6, y: y + barH - 4, 'text-anchor': 'end', class: 'axis' },
      name.length > 26 ? `${name.slice(0, 25)}…` : name));
    let x = labelW;
    let sum = 0;
    for (const k of kinds) {
      const v = (u.by_kind[k] || {}).mu || 0;
      if (v <= 0) continue;
      const w = v * scale;
      svg.append(s('rect', {
        x, y, width: Math.max(w, 0.5), height: barH, fill: kindColour(k),
        'data-unit': u.code === null ? '' : u.code, 'data-kind': k, 'data-mu': v,
      }, s('title', {}, `${name}: ${kindLabel(k)} ${mu(v)} mu`)));
      x += w;
      sum += v;
    }
    svg.append(s('text', { x: x + 4, y: y + barH - 4, class: 'axis' }, `${mu(sum)} mu`));
  });
  svg.append(s('text', { x: labelW, y: H - 4, class: 'axis' }, 'mu by kind'));
  box.replaceChildren(svg, h('figcaption', {}, ...kinds.map((k) => h('span', { class: 'swatch-item' },
    h('span', { class: 'swatch', style: `background:${kindColour(k)}` }), kindLabel(k)))));
}

async function loadModels(selectId) {
  const seq = (state.modelsSeq = (state.modelsSeq || 0) + 1);
  const box = $('models');
  box.dataset.state = 'loading';
  let out;
  try {
    out = await getJSON('/api/v1/models', { cache: 'no-store' });
  } catch (e) {
    if (seq === state.modelsSeq) {
      $('models-message').textContent = `The models could not be loaded: ${e.message}`;
      box.dataset.state = 'error';
      fail(e, 'Loading the models');
    }
    return;
  }
  if (seq !== state.modelsSeq) return;
  renderModels(out.items || []);
  const items = out.items || [];
  const want = selectId || state.modelId;
  const pick = items.find((m) => m.id === want) || items.find((m) => m.active) || items[0];
  box.dataset.state = 'ready';
  if (pick) await openModel(pick.id);
}

function renderModels(items) {
  state.models = items;
  const may = state.me && ACTIVATORS.includes(state.me.role);
  $('models-list').replaceChildren(...items.map((m) => h('li', {
    class: `model${m.id === state.modelId ? ' selected' : ''}`,
    dataset: { id: m.id, task: m.task, active: String(!!m.active) },
  },
  h('button', { type: 'button', class: 'model-open', onclick: () => openModel(m.id) },
    h('span', { class: 'task' }, m.task), ' ', h('code', {}, m.id)),
  m.active ? h('span', { class: 'badge active' }, 'active') : null,
  !m.active && may ? h('button', {
    type: 'button', class: 'activate quiet', onclick: (e) => activateModel(m.id, e.target),
  }, 'Activate') : null)));
}

async function activateModel(id, button) {
  if (button) button.disabled = true;
  $('models-message').textContent = `Activating ${id}…`;
  try {
    const res = await api(`/api/v1/models/${encodeURIComponent(id)}/activate`, { method: 'POST' });
    const out = await res.json();
    renderModels(out.items || []);
    $('models-message').textContent = `${id} is now the active ${(out.items.find((m) => m.id === id) || {}).task || ''} model; batches from now on use it.`;
  } catch (e) {
    $('models-message').textContent = `Not activated: ${e.message}`;
    if (button) button.disabled = false;
    fail(e, 'Activating the model');
  }
}

async function openModel(id) {
  const seq = (state.cardSeq = (state.cardSeq || 0) + 1);
  state.modelId = id;
  for (const li of document.querySelectorAll('#models-list li')) li.classList.toggle('selected', li.dataset.id === id);
  const box = $('model-card');
  box.dataset.id = id;
  box.dataset.state = 'loading';
  box.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  let card;
  try {
    card = await getJSON(`/api/v1/models/${encodeURIComponent(id)}`);
  } catch (e) {
    if (seq === state.cardSeq) {
      box.replaceChildren(h('p', { class: 'error' }, `Cannot load model ${id}: ${e.message}`));
      box.dataset.state = 'error';
      fail(e, `Loading model ${id}`);
    }
    return;
  }
  if (seq !== state.cardSeq) return;
  renderCard(card);
  box.dataset.state = 'ready';
}

const pct = (x) => (typeof x === 'number' ? x.toFixed(3) : '—');

function renderCard(card) {
  const box = $('model-card');
  const m = (card.metrics && card.metrics.overall) || null;
  const head = [
    h('h3', {}, `${card.task} model `, h('code', {}, card.id)),
    h('p', { class: 'muted' }, `${(card.architecture && card.architecture.kind) || ''} · created ${card.created || '?'}`),
  ];
  if (!m) {
    box.replaceChildren(...head, h('p', { class: 'muted' }, 'This card has no metrics.'));
    return;
  }
  const summary = h('p', { class: 'model-summary' },
    `held-out test: ${m.n} samples · overall accuracy ${pct(m.overall_accuracy)} · kappa ${pct(m.kappa)} · macro F1 ${pct(m.macro_f1)}`);
  const perClass = h('table', { class: 'per-class' },
    h('thead', {}, h('tr', {}, ...['class', 'precision', 'recall', 'F1', 'support'].map((c) => h('th', {}, c)))),
    h('tbody', {}, ...(m.per_class || []).map((c) => h('tr', { dataset: { class: c.class } },
      h('th', {}, c.class), h('td', { class: 'num' }, pct(c.precision)), h('td', { class: 'num' }, pct(c.recall)),
      h('td', { class: 'num' }, pct(c.f1)), h('td', { class: 'num' }, String(c.support))))));
  box.replaceChildren(...head, summary, h('h4', {}, 'Per class'), perClass,
    h('h4', {}, 'Confusion matrix (rows: true class, columns: predicted; shade: share of the row)'),
    h('div', { class: 'table-scroll' }, confusionTable(m.classes || [], m.confusion || [])));
}

/** The confusion matrix as a heat map: cell shade by its share of the row, the count as text. */
function confusionTable(classes, matrix) {
  const table = h('table', { id: 'confusion', class: 'confusion' });
  table.append(h('thead', {}, h('tr', {}, h('th', { class: 'corner' }, 'true \\ predicted'),
    ...classes.map((c) => h('th', { class: 'col' }, c)))));
  table.append(h('tbody', {}, ...matrix.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    return h('tr', {}, h('th', {}, classes[i] || `#${i}`), ...row.map((v, j) => {
      const share = total > 0 ? v / total : 0;
      const hue = i === j ? '47, 107, 60' : '179, 38, 30';
      return h('td', {
        class: `cell${i === j ? ' diag' : ''}${share > 0.5 ? ' dark' : ''}`,
        dataset: { row: String(i), col: String(j), share: share.toFixed(3) },
        style: `background: rgba(${hue}, ${(0.06 + 0.94 * share).toFixed(3)})`,
        title: `${classes[i]} → ${classes[j]}: ${v} (${(100 * share).toFixed(1)} % of the row)`,
      }, String(v));
    }));
  })));
  return table;
}

// ---------------------------------------------------------------- where am I

const EARTH_RADIUS_M = 6371008.8;
const COMPASS = ['N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW'];
const rad = (d) => (d * Math.PI) / 180;

/** Great-circle distance (m) and initial bearing (degrees from north) from a to b. */
function distanceBearing(a, b) {
  const [p1, p2] = [rad(a.lat), rad(b.lat)];
  const dp = p2 - p1;
  const dl = rad(b.lng - a.lng);
  const x = Math.sin(dp / 2) ** 2 + Math.cos(p1) * Math.cos(p2) * Math.sin(dl / 2) ** 2;
  const d = 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(x)));
  const y = Math.sin(dl) * Math.cos(p2);
  const z = Math.cos(p1) * Math.sin(p2) - Math.sin(p1) * Math.cos(p2) * Math.cos(dl);
  const bearing = ((Math.atan2(y, z) * 180) / Math.PI + 360) % 360;
  return { d, bearing, compass: COMPASS[Math.round(bearing / 45) % 8] };
}

const metres = (d) => (d < 10000 ? `${Math.round(d)} m` : `${(d / 1000).toFixed(1)} km`);

function locateMessage(text, kind = 'info') {
  const el = $('locate-msg');
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = !text;
}

function locate() {
  if (!navigator.geolocation) {
    locateMessage('This browser gives no position (no geolocation).', 'error');
    return;
  }
  $('locate').disabled = true;
  locateMessage('Asking the browser for your position…');
  navigator.geolocation.getCurrentPosition((pos) => {
    $('locate').disabled = false;
    showPosition(pos.coords);
  }, (err) => {
    $('locate').disabled = false;
    const why = {
      1: 'permission denied — allow this page to use your location (browsers give it only over https or on localhost)',
      2: 'position unavailable — no GPS or network fix',
      3: 'timed out — try again in the open',
    }[err.code] || err.message;
    locateMessage(`Where am I: ${why}.`, 'error');
    $('locate-msg').dataset.error = String(err.code);
  }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 10000 });
}

function showPosition(coords) {
  if (!state.map) return;
  const here = L.latLng(coords.latitude, coords.longitude);
  state.position = { latlng: here, accuracy: coords.accuracy };
  if (state.youLayer) state.youLayer.remove();
  state.youLayer = L.layerGroup([
    L.circle(here, { radius: coords.accuracy || 0, className: 'you-accuracy', color: '#1a73e8', weight: 1, fillOpacity: 0.12, interactive: false }),
    L.circleMarker(here, { radius: 7, className: 'you-marker', color: '#fff', weight: 2, fillColor: '#1a73e8', fillOpacity: 1 })
      .bindTooltip('you are here'),
  ]).addTo(state.map);
  const target = selectedCentre();
  if (target) state.map.fitBounds(L.latLngBounds([here, target]), { padding: [50, 50], maxZoom: 17 });
  else state.map.setView(here, Math.max(state.map.getZoom(), 15));
  updateLocateText();
}

/** The selected patch's centre: the middle of its bounding box. */
function selectedCentre() {
  const entry = state.selected !== null ? state.byId.get(state.selected) : null;
  if (!entry) return null;
  const b = entry.layer.getBounds();
  return b.isValid() ? b.getCenter() : null;
}

function updateLocateText() {
  const pos = state.position;
  if (!pos) return;
  const acc = pos.accuracy ? ` (±${Math.round(pos.accuracy)} m)` : '';
  const target = selectedCentre();
  const el = $('locate-msg');
  delete el.dataset.error;
  if (!target) {
    delete el.dataset.distance;
    locateMessage(`You are here${acc}. Select a patch for its distance and direction.`);
    return;
  }
  const { d, bearing, compass } = distanceBearing(pos.latlng, target);
  el.dataset.distance = d.toFixed(2);
  el.dataset.bearing = bearing.toFixed(1);
  el.dataset.compass = compass;
  locateMessage(`Patch #${state.selected}: ${metres(d)} ${compass} of you${acc}`);
}

function clearPosition() {
  if (state.youLayer) state.youLayer.remove();
  state.youLayer = null;
  state.position = null;
  locateMessage('');
}

// ---------------------------------------------------------------- wiring

function wire() {
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token').value;
    if (token.trim()) signIn(token).catch((err) => fail(err, 'Signing in'));
  });
  $('signout').addEventListener('click', () => signOut());
  $('banner-close').addEventListener('click', hideBanner);
  $('filters').addEventListener('submit', (e) => {
    e.preventDefault();
    loadPatches({ fit: true });
  });
  $('f-reset').addEventListener('click', () => {
    $('filters').reset();
    $('f-kind').value = '';
    loadPatches({ fit: true });
  });
  $('f-kind').addEventListener('change', () => loadPatches({ fit: true }));
  $('d-close').addEventListener('click', closeDetail);
  for (const b of document.querySelectorAll('.verdict-buttons button')) {
    b.addEventListener('click', () => recordVerdict(b.dataset.verdict));
  }
  $('img-on').addEventListener('change', (e) => {
    state.imagery.on = e.target.checked;
    applyImagery();
  });
  $('img-date').addEventListener('change', (e) => {
    state.imagery.date = e.target.value;
    applyImagery();
  });
  $('parcels-on').addEventListener('change', (e) => {
    state.parcels.on = e.target.checked;
    renderLegend();
    if (state.parcels.on) loadParcels();
    else clearParcels();
  });
  for (const style of ['true', 'false', 'landcover']) {
    $(`img-${style}`).addEventListener('click', () => {
      state.imagery.style = style;
      renderImageryControl();
      applyImagery();
    });
  }
  for (const b of document.querySelectorAll('#views button')) {
    b.addEventListener('click', () => setView(b.dataset.view));
  }
  $('stats-level').addEventListener('change', () => loadStats());
  $('stats-refresh').addEventListener('click', () => loadStats());
  $('locate').addEventListener('click', locate);
  window.addEventListener('unhandledrejection', (e) => fail(e.reason, 'Unexpected error'));
}

function start() {
  if (!L) {
    document.body.dataset.state = 'error';
    showBanner('The map library did not load (/web/vendor/leaflet/leaflet.js).');
    return;
  }
  wire();
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token).catch((e) => fail(e, 'Signing in'));
  else showSignIn();
}

start();
