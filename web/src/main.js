// The page of `deepsalt view`: the map's multiscale Zarr store on an OpenLayers map, read in the browser.
//
// OpenLayers' GeoZarr source finds the pyramid through the store's `multiscales`, `spatial:` and `proj:`
// conventions and reads its sharded arrays with zarrita (a shard index is the shard's last bytes). The
// map is drawn in the store's own CRS (proj4 from `proj:wkt2`), so pixels are never resampled between
// projections. A click reads the full-resolution pixel from the store with zarrita. The only context
// is a bundled outline of countries, states and counties: the page fetches nothing but its own server.
// The full-resolution level is the store's root group itself (layout asset "."), the coarser levels
// its child groups.

import 'ol/ol.css';
import './style.css';

import {defaults as defaultControls} from 'ol/control/defaults.js';
import ScaleLine from 'ol/control/ScaleLine.js';
import GeoJSON from 'ol/format/GeoJSON.js';
import VectorLayer from 'ol/layer/Vector.js';
import WebGLTileLayer from 'ol/layer/WebGLTile.js';
import OLMap from 'ol/Map.js';
import {get as getProjection, toLonLat} from 'ol/proj.js';
import {register} from 'ol/proj/proj4.js';
import GeoZarr from 'ol/source/GeoZarr.js';
import VectorSource from 'ol/source/Vector.js';
import {Stroke, Style} from 'ol/style.js';
import View from 'ol/View.js';
import proj4 from 'proj4';
import {feature, mesh} from 'topojson-client';
import {FetchStore, get as zarrGet, open as zarrOpen, root as zarrRoot} from 'zarrita';

// the layout's asset for a level held by the multiscales group itself (the store's full resolution)
const SAME_GROUP = '.';
// countries farther than this from the map (degrees of longitude) are left out: far from its
// central meridian a transverse Mercator grid (UTM) folds outlines over the map
const OUTLINE_REACH_DEG = 60;

const $ = (id) => document.getElementById(id);

function rgba(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255, 1];
}

// CF writes "1" for a dimensionless quantity
const unitLabel = (units) => (units === '1' ? '' : units);

function formatValue(value) {
  if (!Number.isFinite(value)) {
    return 'no value';
  }
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(3);
}

/** The WebGL style colouring band `band` (1-based) as `variable`'s legend says. */
function styleFor(variable, band) {
  const value = ['band', band];
  if (variable.classes) {
    const color = ['case'];
    const last = variable.classes[variable.classes.length - 1];
    for (const c of variable.classes.slice(0, -1)) {
      color.push(['<', value, c.high], rgba(c.colour));
    }
    color.push(rgba(last.colour));
    return {color};
  }
  const {low, high, colours} = variable.ramp;
  const color = ['interpolate', ['linear'], value];
  colours.forEach((c, i) => color.push(low + ((high - low) * i) / (colours.length - 1), rgba(c)));
  return {color};
}

function swatch(colour) {
  const span = document.createElement('span');
  span.className = 'swatch';
  span.style.background = colour;
  return span;
}

function showLegend(variable) {
  const legend = $('legend');
  legend.replaceChildren();
  const heading = document.createElement('h2');
  heading.textContent = variable.units === '1' ? variable.title : `${variable.title} (${variable.units})`;
  heading.title = variable.long_name;
  legend.append(heading);
  const list = document.createElement('ul');
  if (variable.classes) {
    for (const c of variable.classes) {
      const item = document.createElement('li');
      item.append(swatch(c.colour), c.label);
      list.append(item);
    }
  } else {
    const {low, high, colours} = variable.ramp;
    const bar = document.createElement('li');
    bar.className = 'ramp';
    bar.style.background = `linear-gradient(to right, ${colours.join(', ')})`;
    const ticks = document.createElement('li');
    ticks.className = 'ticks';
    const [lowTick, highTick] = [document.createElement('span'), document.createElement('span')];
    lowTick.textContent = `${formatValue(low)} ${unitLabel(variable.units)}`;
    highTick.textContent = `${formatValue(high)} ${unitLabel(variable.units)}`;
    ticks.append(lowTick, highTick);
    list.append(bar, ticks);
  }
  const none = document.createElement('li');
  none.append(swatch('transparent'), 'no prediction (transparent; see quality)');
  list.append(none);
  legend.append(list);
  legend.dataset.variable = variable.name;
}

function registerProjection(attrs) {
  const code = attrs['proj:code'] || 'DEEPSALT:MAP';
  if (!getProjection(code)) {
    proj4.defs(code, attrs['proj:wkt2']);
    register(proj4);
  }
  return getProjection(code);
}

async function outlineLayer(projection, center) {
  const [{default: countriesTopology}, {default: usTopology}] = await Promise.all([
    import('world-atlas/countries-110m.json'),
    import('us-atlas/counties-10m.json'),
  ]);
  const format = new GeoJSON({dataProjection: 'EPSG:4326', featureProjection: projection});
  // every position of a GeoJSON geometry lies within OUTLINE_REACH_DEG of the map's longitude
  const near = (coords) =>
    typeof coords[0] === 'number' ? Math.abs(coords[0] - center[0]) <= OUTLINE_REACH_DEG : coords.every(near);
  const nearby = (f) => f.geometry !== null && near(f.geometry.coordinates);
  const countries = feature(countriesTopology, countriesTopology.objects.countries).features.filter(nearby);
  const lines = [
    [countries, 1.2, '#404040'],
    [[{type: 'Feature', geometry: mesh(usTopology, usTopology.objects.states, (a, b) => a !== b)}], 1, '#606060'],
    [
      [
        {
          type: 'Feature',
          // county borders inside a state (the first two digits of a county's FIPS code are its state's)
          geometry: mesh(
            usTopology,
            usTopology.objects.counties,
            (a, b) => a !== b && ((a.id / 1000) | 0) === ((b.id / 1000) | 0),
          ),
        },
      ],
      0.5,
      '#9a9a9a',
    ],
  ];
  const source = new VectorSource();
  for (const [features, width, colour] of lines) {
    const style = new Style({stroke: new Stroke({color: colour, width})});
    for (const f of format.readFeatures({type: 'FeatureCollection', features})) {
      f.setStyle(style);
      source.addFeature(f);
    }
  }
  return new VectorLayer({source, properties: {name: 'outlines'}});
}

/**
 * Let the source read `band` at a level held by the multiscales group itself (asset ".").
 *
 * OpenLayers' GeoZarr source (10.10) lists a level's arrays by looking up `${asset}/${band}` in the
 * consolidated metadata, where the root's own arrays are keyed `${band}`; so it finds no band at
 * asset "." and would draw that level from the next coarser one. Its tile reads resolve
 * `./${band}` to the right array, so naming the band at that level is all it lacks. Fails loudly
 * if a later OpenLayers stores the levels' bands differently (the browser test then fails too).
 */
function readLevelAtGroup(source, band, layout) {
  const bandsByLevel = source.bandsByLevel_;
  if (!bandsByLevel || typeof bandsByLevel !== 'object') {
    throw new Error('this OpenLayers GeoZarr source no longer lists bands per level (bandsByLevel_)');
  }
  for (const entry of layout) {
    if (entry.asset === SAME_GROUP && !(bandsByLevel[SAME_GROUP] || []).includes(band)) {
      bandsByLevel[SAME_GROUP] = [...(bandsByLevel[SAME_GROUP] || []), band];
    }
  }
  return source;
}

function sourceReady(source) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const state = source.getState();
      if (state === 'ready') {
        resolve(source);
      } else if (state === 'error') {
        reject(source.getError?.() || new Error('the map store could not be read'));
      } else {
        source.once('change', check);
      }
    };
    check();
  });
}

function decodeFlags(value, flags) {
  const set = flags.filter((f) => (value & f.mask) !== 0).map((f) => f.name);
  return set.length ? set.join(', ') : 'ok';
}

function addRow(table, name, label, text, value) {
  const row = document.createElement('tr');
  row.dataset.name = name;
  const th = document.createElement('th');
  th.textContent = label;
  const td = document.createElement('td');
  td.textContent = text;
  if (value !== undefined) {
    td.dataset.value = String(value);
  }
  row.append(th, td);
  table.append(row);
}

async function main() {
  const settings = await (await fetch('viewer.json')).json();
  document.title = settings.title;
  $('title').textContent = settings.title;
  const storeUrl = new URL(settings.store, window.location.href).href.replace(/\/$/, '');
  // this page's own server answers suffix ranges, so a shard index costs one request, not HEAD + range
  const store = new FetchStore(storeUrl, {useSuffixRequest: true});
  const rootGroup = await zarrOpen.v3(zarrRoot(store), {kind: 'group'});
  const attrs = rootGroup.attrs;
  const projection = registerProjection(attrs);
  const layout = attrs.multiscales.layout;
  // the full-resolution level: the one not derived from another
  const full = layout.find((entry) => !entry.derived_from);
  const [a, , c, , e, f] = full['spatial:transform'];
  const [height, width] = full['spatial:shape'];

  // one source per variable, so each variable's own NaNs are transparent (GeoZarr composes
  // several bands with one shared no-data mask)
  const sources = new Map();
  const sourceFor = (name) => {
    if (!sources.has(name)) {
      const source = new GeoZarr({url: storeUrl, bands: [name], transition: 0, resample: 'nearest'});
      sources.set(name, sourceReady(source).then((ready) => readLevelAtGroup(ready, name, layout)));
    }
    return sources.get(name);
  };
  const first = settings.variables[0];
  const source = await sourceFor(first.name);
  const layer = new WebGLTileLayer({source, style: styleFor(first, 1)});
  const bbox = attrs['spatial:bbox'];
  const center = [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2];
  const view = new View({projection: source.getProjection() || projection, center, zoom: 0});
  const map = new OLMap({
    target: 'map',
    layers: [layer],
    view,
    controls: defaultControls().extend([new ScaleLine()]),
  });
  // the side panel covers the right of the page: fit the map beside it
  const panelWidth = $('panel').offsetWidth + 20;
  view.fit(bbox, {padding: [20, Math.min(panelWidth, map.getSize()[0] / 2), 20, 20]});
  map.addLayer(await outlineLayer(view.getProjection(), toLonLat(center, view.getProjection())));

  // the variable switcher and its legend
  const picker = $('variables');
  settings.variables.forEach((variable, index) => {
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'radio';
    input.name = 'variable';
    input.value = variable.name;
    input.checked = index === 0;
    input.addEventListener('change', async () => {
      layer.setSource(await sourceFor(variable.name));
      layer.setStyle(styleFor(variable, 1));
      showLegend(variable);
      document.body.dataset.variable = variable.name;
    });
    label.append(input, ` ${variable.title}`);
    picker.append(label);
  });
  showLegend(first);
  document.body.dataset.variable = first.name;

  // which pyramid level is on screen
  const grid = source.getTileGrid();
  const showLevel = () => {
    const z = grid.getZForResolution(view.getResolution(), source.zDirection);
    // the level's number: its place in the layout, finest (the root, asset ".") first
    const level = String(layout.findIndex((entry) => entry.asset === grid.getMatrixId(z)));
    const resolution = grid.getResolution(z);
    const units = view.getProjection().getUnits();
    $('level').textContent = `pyramid level ${level} (${formatValue(resolution)} ${units} pixels)`;
    document.body.dataset.level = level;
  };
  view.on('change:resolution', showLevel);
  showLevel();

  // a click reads the full-resolution pixel under it
  const arrays = {};
  for (const name of [...settings.variables.map((v) => v.name), 'quality']) {
    arrays[name] = zarrOpen.v3(rootGroup.resolve(`${full.asset}/${name}`), {kind: 'array'});
  }
  let clicks = 0;
  map.on('singleclick', async (event) => {
    const click = ++clicks;
    const [x, y] = event.coordinate;
    const col = Math.floor((x - c) / a);
    const row = Math.floor((y - f) / e);
    const table = $('pixel-values');
    table.replaceChildren();
    $('pixel').hidden = false;
    if (row < 0 || col < 0 || row >= height || col >= width) {
      addRow(table, 'outside', 'outside the map', '');
      document.body.dataset.pixel = 'outside';
      return;
    }
    document.body.dataset.pixel = 'reading';
    const names = Object.keys(arrays);
    const read = await Promise.all(names.map(async (name) => Number(await zarrGet(await arrays[name], [row, col]))));
    if (click !== clicks) {
      return; // a later click is being answered
    }
    const values = Object.fromEntries(names.map((name, i) => [name, read[i]]));
    for (const variable of settings.variables) {
      const value = values[variable.name];
      const text = Number.isFinite(value) ? `${formatValue(value)} ${unitLabel(variable.units)}`.trim() : 'no prediction';
      addRow(table, variable.name, variable.title, text, value);
    }
    addRow(table, 'quality', 'quality', decodeFlags(values.quality, settings.flags), values.quality);
    const [lon, lat] = toLonLat([x, y], view.getProjection());
    addRow(table, 'pixel', 'row, column', `${row}, ${col}`);
    addRow(table, 'lonlat', 'lon, lat', `${lon.toFixed(5)}, ${lat.toFixed(5)}`);
    document.body.dataset.pixel = `${row},${col}`;
  });

  // for scripts driving the page: what was last drawn completely, and how often. What a frame shows
  // is noted as it is drawn: OpenLayers reports the frame complete in a timeout after it, and a
  // change of level or variable can come in between (that report is about the frame before it).
  let drawn = '';
  map.on('postrender', () => {
    drawn = `${document.body.dataset.variable}@${document.body.dataset.level}`;
  });
  map.on('rendercomplete', () => {
    document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
    document.body.dataset.rendered = drawn;
  });
  window.deepsaltViewer = {map, view, layer, settings};
}

main().catch((error) => {
  $('error').hidden = false;
  $('error').textContent = `The map could not be shown: ${error.message || error}`;
  document.body.dataset.error = String(error.message || error);
  throw error;
});
