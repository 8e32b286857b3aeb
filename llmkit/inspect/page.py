"""attention.html: one self-contained page (inline data, CSS and JS; no CDN, works offline).

The user picks a layer and head (and, with a comparison, model A, model B or the difference)
and hovers a token, on the token strip or on the map's rows, to see what it attends to. The
URL fragment pre-selects a view (``attention.html#layer=1&head=2&token=5&view=B``), which is
also how a headless browser checks that the page reacts.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np


def _rounded(att: np.ndarray) -> list:
    """Three decimals are plenty for a colour and keep the page small."""
    return np.round(att.astype(np.float64), 3).tolist()


def write_page(
    out: Path,
    labels: list[str],
    models: dict[str, tuple[str, np.ndarray]],
    title: str,
) -> Path:
    """``models``: view key ("A", "B") -> (model name, ``(layers, heads, q, k)`` weights)."""
    data = {
        "tokens": labels,
        "views": {k: {"name": name, "att": _rounded(att)} for k, (name, att) in models.items()},
    }
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    text = (
        PAGE.replace("__TITLE__", html.escape(title))
        .replace("__CSS__", CSS)
        .replace("__DATA__", payload)
        .replace("__JS__", JS)
    )
    out.write_text(text, encoding="utf-8")
    return out


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>__TITLE__</title>
<style>__CSS__</style></head>
<body>
<h1>__TITLE__</h1>
<div id="controls">
  <label>layer <select id="layer"></select></label>
  <label>head <select id="head"></select></label>
  <label id="view-label">view <select id="view"></select></label>
  <span id="legend"></span>
</div>
<div id="main">
  <canvas id="map" width="560" height="560"></canvas>
  <div id="side"><div id="info">hover a token (below, or a row of the map)</div>
  <div id="tokens"></div></div>
</div>
<script id="data" type="application/json">__DATA__</script>
<script>__JS__</script>
</body></html>
"""

CSS = """
body { font-family: system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 17px; margin: 0 0 10px; }
#controls { margin-bottom: 10px; } #controls label { margin-right: 14px; }
#main { display: flex; gap: 18px; align-items: flex-start; }
#map { border: 1px solid #bbb; image-rendering: pixelated; cursor: crosshair; }
#side { max-width: 560px; } #info { min-height: 3em; margin-bottom: 8px; font-size: 14px; }
#tokens { line-height: 1.9; font-family: ui-monospace, monospace; font-size: 13px; }
#tokens span { padding: 1px 2px; margin: 1px; border-radius: 3px; border: 1px solid #ddd;
  cursor: pointer; display: inline-block; }
#tokens span.query { outline: 2px solid #e8590c; }
#legend { font-size: 12px; color: #555; }
"""

JS = r"""
const D = JSON.parse(document.getElementById('data').textContent);
const T = D.tokens.length, keys = Object.keys(D.views);
const sel = {layer: document.getElementById('layer'), head: document.getElementById('head'),
             view: document.getElementById('view')};
const canvas = document.getElementById('map'), ctx = canvas.getContext('2d');
const info = document.getElementById('info'), strip = document.getElementById('tokens');
const first = D.views[keys[0]].att;
let query = null;

function fill(select, n, label) {
  for (let i = 0; i < n; i++) select.add(new Option(label(i), String(i)));
}
fill(sel.layer, first.length, i => String(i));
fill(sel.head, first[0].length, i => String(i));
keys.forEach(k => sel.view.add(new Option(k + ': ' + D.views[k].name, k)));
if (keys.length === 2) sel.view.add(new Option('B - A (difference)', 'diff'));
else document.getElementById('view-label').style.display = 'none';

function current() {
  const l = +sel.layer.value, h = +sel.head.value, v = sel.view.value || keys[0];
  if (v === 'diff') {
    const a = D.views[keys[0]].att[l][h], b = D.views[keys[1]].att[l][h];
    return {m: b.map((row, i) => row.map((x, j) => x - a[i][j])), diff: true};
  }
  return {m: D.views[v].att[l][h], diff: false};
}

const VIRIDIS = [[68,1,84],[72,40,120],[62,74,137],[49,104,142],[38,130,142],[31,158,137],
                 [53,183,121],[109,205,89],[180,222,44],[253,231,37]];
function color(x, diff) {
  if (diff) {  // blue (less in B) - white - red (more in B)
    const t = Math.max(-1, Math.min(1, x)), a = Math.abs(t);
    return t >= 0 ? [255, 255 * (1 - a), 255 * (1 - a)] : [255 * (1 - a), 255 * (1 - a), 255];
  }
  const t = Math.max(0, Math.min(1, x)) * (VIRIDIS.length - 1), i = Math.min(8, Math.floor(t));
  const f = t - i, c0 = VIRIDIS[i], c1 = VIRIDIS[i + 1];
  return [0, 1, 2].map(k => c0[k] + f * (c1[k] - c0[k]));
}

function draw() {
  const {m, diff} = current();
  let scale = 1;
  if (diff) scale = Math.max(1e-6, ...m.map(r => Math.max(...r.map(Math.abs))));
  const off = document.createElement('canvas'); off.width = T; off.height = T;
  const octx = off.getContext('2d'), img = octx.createImageData(T, T);
  let sum = 0;
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
    const c = color(m[i][j] / scale, diff), p = 4 * (i * T + j);
    img.data[p] = c[0]; img.data[p + 1] = c[1]; img.data[p + 2] = c[2]; img.data[p + 3] = 255;
    sum += m[i][j] * (i + 1) * (j + 1);
  }
  octx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
  if (query !== null) {
    const cell = canvas.height / T;
    ctx.strokeStyle = '#e8590c'; ctx.lineWidth = 2;
    ctx.strokeRect(0, query * cell, canvas.width, Math.max(cell, 2));
  }
  document.getElementById('legend').textContent = diff
    ? 'red: more attention in B, blue: less (max |B - A| = ' + scale.toFixed(3) + ')'
    : 'rows: query tokens, columns: the tokens they attend to (0 to 1)';
  document.body.dataset.drawn = [sel.view.value || keys[0], sel.layer.value,
                                 sel.head.value].join(':');
  document.body.dataset.checksum = sum.toFixed(3);
  highlight();
}

D.tokens.forEach((t, i) => {
  const s = document.createElement('span');
  s.textContent = t; s.title = 'token ' + i; s.dataset.i = i;
  s.addEventListener('mouseenter', () => { query = i; draw(); });
  strip.appendChild(s);
});
canvas.addEventListener('mousemove', e => {
  const r = canvas.getBoundingClientRect();
  const i = Math.floor((e.clientY - r.top) / r.height * T);
  if (i >= 0 && i < T && i !== query) { query = i; draw(); }
});

function highlight() {
  const spans = strip.children;
  if (query === null) return;
  const {m, diff} = current(), row = m[query];
  let best = 0, top = 1e-9;  // shade relative to the row's largest weight, so weak rows show
  for (let j = 0; j <= query; j++) top = Math.max(top, Math.abs(row[j]));
  for (let j = 0; j < T; j++) {
    const w = j <= query ? row[j] : 0, s = spans[j];
    const c = diff ? (w >= 0 ? '220,40,40' : '40,80,220') : '232,89,12';
    s.style.background = 'rgba(' + c + ',' + Math.min(1, Math.abs(w) / top) + ')';
    s.dataset.w = w.toFixed(3);
    s.className = j === query ? 'query' : '';
    if (Math.abs(w) > Math.abs(row[best])) best = j;
  }
  info.textContent = 'token ' + query + ' "' + D.tokens[query] + '" ' +
    (diff ? 'changed most towards ' : 'attends most to ') + 'token ' + best + ' "' +
    D.tokens[best] + '" (' + row[best].toFixed(3) + ')';
}

['layer', 'head', 'view'].forEach(k => sel[k].addEventListener('change', draw));

function fromHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  for (const k of ['layer', 'head', 'view']) {
    const v = p.get(k);
    if (v !== null && [...sel[k].options].some(o => o.value === v)) {
      sel[k].value = v;
      sel[k].dispatchEvent(new Event('change'));  // the same path as a user's selection
    }
  }
  const t = parseInt(p.get('token'), 10);
  if (t >= 0 && t < T) { query = t; }
  draw();
}
window.addEventListener('hashchange', fromHash);
fromHash();
"""
