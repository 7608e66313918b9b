/* global OpenSeadragon */
import { analyse, api, esc } from './common.js';

const slideId = location.pathname.split('/').filter(Boolean).pop();
const wanted = new URLSearchParams(location.search).get('analysis');
const $ = (id) => document.getElementById(id);

const slide = await api(`/api/slides/${slideId}`);
document.title = `Lamina — ${slide.name}`;
$('title').textContent = `${slide.name} · ${slide.width} × ${slide.height} px · ${slide.format}`;

const viewer = OpenSeadragon({
  id: 'osd',
  prefixUrl: '/vendor/openseadragon/images/',
  tileSources: `/api/slides/${slideId}/dzi`,
  showNavigator: true,
  maxZoomPixelRatio: 2,
  timeout: 60000,
  // The 2D canvas drawer works everywhere, including browsers without WebGL (headless, old GPUs).
  drawer: 'canvas',
});
// Exposed for the browser test and for curious users in the console.
window.lamina = { viewer, heatmap: null, analysis: null };

const maxLevel = Math.ceil(Math.log2(Math.max(slide.width, slide.height)));
let analysis = null;
let heatmapKey = '';

/** Heatmap layers in the world, oldest first; the newest is window.lamina.heatmap. */
const layers = new Set();
/** Counts showHeatmap calls, so a layer that was superseded before OpenSeadragon added it is dropped. */
let layerGen = 0;

/**
 * The heatmap as a second TiledImage over the slide: a Deep Zoom layer with the slide's geometry
 * whose tiles the API paints from the scores (transparent where none). Re-added when the threshold
 * changes or more scores arrive while the analysis runs.
 *
 * OpenSeadragon adds items in the order asked, and not before the slide's own descriptor has
 * loaded, so several calls can be pending at once (a slider dragged, batches finishing fast, the
 * slide descriptor slower than result.json). Which layers to drop is therefore decided when a
 * layer arrives, not when it is asked for: a superseded one is dropped at once, and the newest
 * drops every older one when it has drawn (so nothing flickers).
 */
function showHeatmap(version) {
  if (!analysis) return;
  const threshold = Number($('threshold').value);
  const key = `${analysis.id}|${threshold}|${version}`;
  if (key === heatmapKey) return;
  heatmapKey = key;
  const gen = ++layerGen;
  viewer.addTiledImage({
    tileSource: {
      width: slide.width, height: slide.height, tileSize: 254, tileOverlap: 1, minLevel: 0, maxLevel,
      getTileUrl: (level, x, y) => `/api/analyses/${analysis.id}/heatmap/dzi_files/${level}/${x}_${y}.png?threshold=${threshold}&v=${encodeURIComponent(version)}`,
    },
    x: 0, y: 0, width: 1,
    opacity: Number($('opacity').value),
    success: (e) => {
      if (gen !== layerGen) {
        viewer.world.removeItem(e.item);
        return;
      }
      layers.add(e.item);
      window.lamina.heatmap = e.item;
      const dropOlder = () => {
        if (!layers.has(e.item)) return;
        for (const l of layers) {
          if (l === e.item) break;
          layers.delete(l);
          viewer.world.removeItem(l);
        }
      };
      if (e.item.getFullyLoaded()) dropOlder();
      else e.item.addOnceHandler('fully-loaded-change', dropOlder);
    },
  });
}

function showState(a) {
  analysis = a;
  window.lamina.analysis = a;
  $('state').textContent = a ? a.state : 'none';
  $('state').className = `state ${a ? a.state : ''}`;
  $('analyse').hidden = Boolean(a && !['failed', 'cancelled'].includes(a.state));
  $('reason').textContent = a && a.reason ? a.reason : '';
  const live = a && ['queued', 'planning', 'running', 'aggregating'].includes(a.state);
  $('progress').hidden = !live;
  if (a) {
    $('progress').value = a.progress.fraction;
    $('progress-text').textContent = live ? `${a.progress.tilesDone} / ${a.progress.tilesTotal || '?'} tiles` : '';
  }
}

async function showResult(a) {
  const result = await api(`/api/analyses/${a.id}/result.json`);
  $('score-box').hidden = false;
  $('score').textContent = result.slideScore.toFixed(3);
  $('score-def').textContent = result.slideScoreDefinition;
  // Which encoder made the scores, with its note (an UNTRAINED warning, or the model card's summary).
  const m = result.model;
  $('model-box').hidden = !m;
  if (m) {
    $('model-name').textContent = `${m.name} (${m.trained ? 'trained' : 'UNTRAINED'})`;
    $('model-note').textContent = m.note || '';
  }
  const regions = result.regions;
  $('no-regions').hidden = regions.length > 0;
  $('regions').innerHTML = regions.map((r, i) =>
    `<li data-i="${i}">max ${r.maxScore.toFixed(2)}, mean ${r.meanScore.toFixed(2)} · ${r.tiles} tiles</li>`).join('');
  $('regions').onclick = (e) => {
    const li = e.target.closest('li');
    if (!li) return;
    const b = regions[Number(li.dataset.i)].bbox;
    // A margin of half the box on each side keeps the region's surroundings in view.
    const rect = viewer.viewport.imageToViewportRectangle(b.x - b.width / 2, b.y - b.height / 2, b.width * 2, b.height * 2);
    viewer.viewport.fitBounds(rect);
  };
  if ($('threshold').dataset.touched !== '1') {
    // Start at the analysis's own threshold, so the layer shows what the regions were cut from.
    $('threshold').value = String(result.parameters.threshold);
    $('threshold-value').textContent = String(result.parameters.threshold);
  }
}

async function follow(a) {
  showState(a);
  if (!a) return;
  if (a.state === 'completed') {
    // The final layer after the result, which sets the threshold: one layer, not a threshold-0 one
    // drawn and replaced at once.
    try { await showResult(a); } finally { showHeatmap(`final-${a.runs}`); }
    return;
  }
  showHeatmap(`live-${a.runs}-${a.progress.batchesDone}`);
  if (['failed', 'cancelled'].includes(a.state)) return;
  // Server-sent events: the heatmap fills in as batches finish.
  const events = new EventSource(`/api/analyses/${a.id}/events`);
  events.addEventListener('analysis', (e) => {
    const now = JSON.parse(e.data);
    showState(now);
    if (now.state === 'completed') {
      events.close();
      follow(now);
    } else {
      showHeatmap(`live-${now.runs}-${now.progress.batchesDone}`);
      if (['failed', 'cancelled'].includes(now.state)) events.close();
    }
  });
}

$('opacity').addEventListener('input', () => {
  $('opacity-value').textContent = $('opacity').value;
  if (window.lamina.heatmap) window.lamina.heatmap.setOpacity(Number($('opacity').value));
});
$('threshold').addEventListener('change', () => {
  $('threshold').dataset.touched = '1';
  $('threshold-value').textContent = $('threshold').value;
  if (analysis) showHeatmap(heatmapKey.split('|')[2]);
});
$('analyse').addEventListener('click', async () => {
  try { follow(await analyse(slideId)); } catch (err) { $('reason').textContent = err.message; }
});

const list = slide.analyses;
const pick = wanted ? list.find((a) => a.id === wanted) : list.at(-1);
follow(pick ? await api(`/api/analyses/${pick.id}`) : null);
