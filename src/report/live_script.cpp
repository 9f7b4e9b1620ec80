// The script of the served model's page (live_page.cpp): polls /metrics (same origin) and redraws the
// live panel as SVG, and runs the try-it box (POST /v1/predict, /v1/explain). Its SHA-256 is in the
// page's Content-Security-Policy, so it must be served byte for byte as written here.
namespace kiln::report::detail {

extern const char* const kLiveScript;
const char* const kLiveScript = R"JS(
(function () {
  'use strict';
  const data = JSON.parse(document.getElementById('kiln-report-data').textContent);
  const cfg = data.live;
  const $ = (id) => document.getElementById(id);
  const NS = 'http://www.w3.org/2000/svg';
  let pollMs = cfg.poll_ms;
  const asked = Number(new URLSearchParams(location.search).get('poll_ms'));
  if (asked >= 250) pollMs = asked;

  // Prometheus text format 0.0.4: one sample per line, NAME{label="value",...} VALUE [TIMESTAMP].
  function parseProm(text) {
    const out = [];
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line || line[0] === '#') continue;
      let i = 0;
      while (i < line.length && /[A-Za-z0-9_:]/.test(line[i])) i++;
      const name = line.slice(0, i), labels = {};
      if (line[i] === '{') {
        i++;
        while (i < line.length && line[i] !== '}') {
          while (line[i] === ',' || line[i] === ' ') i++;
          if (line[i] === '}') break;
          const eq = line.indexOf('=', i);
          if (eq < 0) break;
          const key = line.slice(i, eq).trim();
          i = eq + 2;
          let v = '';
          while (i < line.length && line[i] !== '"') {
            if (line[i] === '\\') { i++; v += line[i] === 'n' ? '\n' : line[i]; } else v += line[i];
            i++;
          }
          i++;
          labels[key] = v;
        }
        i++;
      }
      const word = line.slice(i).trim().split(/\s+/)[0];
      const value = word === '+Inf' ? Infinity : word === '-Inf' ? -Infinity : Number(word);
      if (name) out.push({ name, labels, value });
    }
    return out;
  }
  const total = (s, name, keep) => s.filter((x) => x.name === name && (!keep || keep(x.labels))).reduce((a, x) => a + x.value, 0);
  // Cumulative buckets [[le, count], ...] of histogram `name`, summed over the series `keep` selects.
  function buckets(s, name, keep) {
    const by = new Map();
    for (const x of s) {
      if (x.name !== name + '_bucket' || (keep && !keep(x.labels))) continue;
      const le = x.labels.le === '+Inf' ? Infinity : Number(x.labels.le);
      by.set(le, (by.get(le) || 0) + x.value);
    }
    return [...by.entries()].sort((a, b) => a[0] - b[0]);
  }
  // PromQL's histogram_quantile over cumulative buckets.
  function quantile(q, b) {
    if (!b.length || !(b[b.length - 1][1] > 0)) return NaN;
    const rank = q * b[b.length - 1][1];
    let pb = b[0][0] > 0 ? 0 : b[0][0], pc = 0;
    for (const [bound, count] of b) {
      if (count >= rank) {
        if (bound === Infinity) return pb;
        if (count === pc) return bound;
        return pb + (bound - pb) * (rank - pc) / (count - pc);
      }
      pb = bound; pc = count;
    }
    return pb;
  }
  function fmt(v, digits) {
    if (v === undefined || v === null || !isFinite(v)) return '—';
    if (v === 0) return '0';
    const a = Math.abs(v);
    if (a >= 1e6 || a < 1e-3) return v.toExponential(2);
    return String(Number(v.toPrecision(digits || 3)));
  }
  function ticks(lo, hi, n) {
    const span = hi - lo || 1, raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw))), r = raw / mag;
    const step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag, out = [];
    // From the first multiple of step at or below lo to the first at or above hi: the data fits.
    for (let v = Math.floor(lo / step + 1e-9) * step; ; v += step) {
      out.push(Number(v.toPrecision(12)));
      if (v >= hi - step * 1e-9) break;
    }
    return out;
  }

  // Drawing: the same CSS classes as the kit's figures, so colours follow light, dark and print.
  function el(tag, attrs, parent, text) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function newSvg(w, h, title) {
    const s = el('svg', { xmlns: NS, width: w, height: h, viewBox: '0 0 ' + w + ' ' + h, role: 'img' });
    el('title', {}, s, title);
    return s;
  }
  function replaceSvg(figId, svg) {
    const fig = $(figId), old = fig.querySelector('svg');
    if (old) old.replaceWith(svg); else fig.insertBefore(svg, fig.querySelector('p.note'));
  }
  // Lines over x; series: [{name, y: [...], cls}], NaN is a gap.
  function lineChart(figId, title, xs, series, xLabel, yLabel) {
    const W = 760, H = 240, L = 64, R = 150, T = 14, B = 44, s = newSvg(W, H, title);
    const ys = series.flatMap((se) => se.y.filter((v) => isFinite(v)));
    const x0 = xs.length ? Math.min(...xs) : 0, x1 = xs.length ? Math.max(...xs) : 1;
    const yMax = ys.length ? Math.max(...ys) : 1, yt = ticks(0, yMax > 0 ? yMax : 1, 4), y1 = yt[yt.length - 1];
    const X = (v) => L + (x1 > x0 ? (v - x0) / (x1 - x0) : 0.5) * (W - L - R), Y = (v) => H - B - (v / y1) * (H - T - B);
    for (const t of yt) {
      el('line', { x1: L, x2: W - R, y1: Y(t), y2: Y(t), class: 'g' }, s);
      el('text', { x: L - 6, y: Y(t) + 4, class: 'tk', 'text-anchor': 'end' }, s, fmt(t, 4));
    }
    for (const t of ticks(x0, x1 > x0 ? x1 : x0 + 1, 6)) {
      if (t < x0 || t > x1) continue;
      el('text', { x: X(t), y: H - B + 16, class: 'tk', 'text-anchor': 'middle' }, s, fmt(t, 4));
    }
    el('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'ax' }, s);
    el('line', { x1: L, x2: L, y1: T, y2: H - B, class: 'ax' }, s);
    el('text', { x: (L + W - R) / 2, y: H - 6, class: 'at', 'text-anchor': 'middle' }, s, xLabel);
    el('text', { x: 14, y: (T + H - B) / 2, class: 'at', 'text-anchor': 'middle', transform: 'rotate(-90 14 ' + (T + H - B) / 2 + ')' }, s, yLabel);
    series.forEach((se, k) => {
      let run = [];
      const flush = () => {
        if (run.length > 1) el('polyline', { points: run.join(' '), class: 'l ' + se.cls }, s);
        else if (run.length === 1) { const [a, b] = run[0].split(','); el('circle', { cx: a, cy: b, r: 2.5, class: 'p ' + se.cls }, s); }
        run = [];
      };
      se.y.forEach((v, i) => { if (isFinite(v)) run.push(X(xs[i]).toFixed(1) + ',' + Y(v).toFixed(1)); else flush(); });
      flush();
      el('line', { x1: W - R + 12, x2: W - R + 30, y1: T + 8 + 18 * k, y2: T + 8 + 18 * k, class: 'l ' + se.cls }, s);
      el('text', { x: W - R + 36, y: T + 12 + 18 * k, class: 'lg' }, s, se.name);
    });
    replaceSvg(figId, s);
  }
  // Vertical bars of equal width, one per bin, labelled with the bin's range.
  function histChart(figId, title, names, values, xLabel, yLabel) {
    const W = 760, H = 240, L = 64, R = 16, T = 14, B = 52, s = newSvg(W, H, title);
    const yt = ticks(0, Math.max(1, ...values), 4), y1 = yt[yt.length - 1], bw = (W - L - R) / Math.max(1, values.length);
    const Y = (v) => H - B - (v / y1) * (H - T - B);
    for (const t of yt) {
      el('line', { x1: L, x2: W - R, y1: Y(t), y2: Y(t), class: 'g' }, s);
      el('text', { x: L - 6, y: Y(t) + 4, class: 'tk', 'text-anchor': 'end' }, s, fmt(t, 4));
    }
    values.forEach((v, i) => {
      const r = el('rect', { x: L + i * bw + 1, y: Y(v), width: Math.max(1, bw - 2), height: Math.max(0, H - B - Y(v)), class: 'bar' }, s);
      el('title', {}, r, names[i] + ': ' + v);
      el('text', { x: L + (i + 0.5) * bw, y: H - B + 14, class: 'tk small', 'text-anchor': 'middle' }, s, names[i]);
    });
    el('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'ax' }, s);
    el('text', { x: (L + W - R) / 2, y: H - 8, class: 'at', 'text-anchor': 'middle' }, s, xLabel);
    el('text', { x: 14, y: (T + H - B) / 2, class: 'at', 'text-anchor': 'middle', transform: 'rotate(-90 14 ' + (T + H - B) / 2 + ')' }, s, yLabel);
    replaceSvg(figId, s);
  }
  // Horizontal bars, one row per label (probabilities, counts per label).
  function hbars(title, names, values, axisLabel, max, colors) {
    const W = 760, row = 22, L = 200, R = 70, T = 8, B = 36, H = T + B + row * Math.max(1, names.length), s = newSvg(W, H, title);
    const top = max || Math.max(1e-12, ...values), X = (v) => L + (v / top) * (W - L - R);
    for (const t of ticks(0, top, 4)) {
      if (t > top * 1.0001) continue;
      el('line', { x1: X(t), x2: X(t), y1: T, y2: H - B, class: 'g' }, s);
      el('text', { x: X(t), y: H - B + 14, class: 'tk', 'text-anchor': 'middle' }, s, fmt(t, 3));
    }
    names.forEach((n, i) => {
      const y = T + i * row;
      const label = n.length > 30 ? n.slice(0, 29) + '…' : n;
      el('text', { x: L - 8, y: y + row / 2 + 4, class: 'tk', 'text-anchor': 'end' }, s, label);
      const r = el('rect', { x: L, y: y + 3, width: Math.max(1, X(values[i]) - L), height: row - 6, class: 'bar' + (colors && colors[i] ? ' hi' : '') }, s);
      el('title', {}, r, n + ': ' + fmt(values[i], 4));
      el('text', { x: X(values[i]) + 6, y: y + row / 2 + 4, class: 'tk' }, s, fmt(values[i], 4));
    });
    el('line', { x1: L, x2: L, y1: T, y2: H - B, class: 'ax' }, s);
    el('text', { x: (L + W - R) / 2, y: H - 6, class: 'at', 'text-anchor': 'middle' }, s, axisLabel);
    return s;
  }
  function setText(id, v) { const e = $(id); if (e) e.textContent = v; }

  // The live panel.
  const history = [];
  let prev = null, opened = performance.now() / 1000, polls = 0;
  const isPredict = (l) => l.route === cfg.predict_path;
  function diff(cur, old) {
    const o = new Map(old || []);
    return cur.map(([le, c]) => [le, c - (o.get(le) || 0)]);
  }
  function update(s) {
    const t = performance.now() / 1000 - opened;
    const requests = total(s, 'kiln_requests_total', isPredict);
    const lat = buckets(s, 'kiln_request_duration_seconds', isPredict);
    let rate = NaN, win = [NaN, NaN, NaN];
    if (prev) {
      rate = Math.max(0, (requests - prev.requests) / Math.max(1e-3, t - prev.t));
      const d = diff(lat, prev.lat);
      win = [0.5, 0.9, 0.99].map((q) => 1000 * quantile(q, d));
    }
    prev = { t, requests, lat };
    history.push({ t, rate, p50: win[0], p90: win[1], p99: win[2] });
    if (history.length > 200) history.shift();
    polls++;
    setText('live-requests', String(Math.round(requests)));
    setText('live-rate', fmt(rate, 3));
    setText('live-texts', String(Math.round(total(s, 'kiln_texts_total'))));
    setText('live-errors', String(Math.round(total(s, 'kiln_request_errors_total'))));
    setText('live-p50', fmt(1000 * quantile(0.5, lat), 3));
    setText('live-p90', fmt(1000 * quantile(0.9, lat), 3));
    setText('live-p99', fmt(1000 * quantile(0.99, lat), 3));
    setText('live-drift-window', String(Math.round(total(s, 'kiln_drift_window_texts'))));
    const xs = history.map((h) => h.t);
    lineChart('live-rate-chart', 'Predict requests per second', xs, [{ name: 'requests/s', y: history.map((h) => h.rate), cls: 'c0' }],
              'seconds since the page opened (s)', 'requests per second (1/s)');
    lineChart('live-latency-chart', 'Latency per interval', xs,
              [{ name: 'p50', y: history.map((h) => h.p50), cls: 'c0' }, { name: 'p90', y: history.map((h) => h.p90), cls: 'c4' },
               { name: 'p99', y: history.map((h) => h.p99), cls: 'c1' }],
              'seconds since the page opened (s)', 'latency (ms)');
    const conf = buckets(s, 'kiln_prediction_confidence');
    if (conf.length) {
      const names = [], values = [];
      let lo = 0, pc = 0;
      for (const [le, c] of conf) {
        names.push(le === Infinity ? '≥' + fmt(lo, 2) : fmt(lo, 2) + '–' + fmt(le, 2));
        values.push(c - pc);
        lo = le; pc = c;
      }
      histChart('live-confidence', 'Top-class probability of every prediction', names, values, 'top-class probability', 'predictions');
    }
    const per = s.filter((x) => x.name === 'kiln_predictions_total').sort((a, b) => b.value - a.value).slice(0, 10);
    if (per.length) {
      replaceSvg('live-labels', hbars('Predictions per label', per.map((x) => x.labels.label || ''), per.map((x) => x.value), 'predictions (texts)'));
    }
    const rows = s.filter((x) => x.name.startsWith('kiln_drift_') || x.name === 'kiln_feature_importance_shift');
    const tbody = $('live-drift').querySelector('tbody');
    if (tbody && rows.length) {
      tbody.textContent = '';
      for (const x of rows) {
        const tr = document.createElement('tr');
        const key = Object.keys(x.labels).map((k) => k + '=' + x.labels[k]).join(', ');
        const reading = x.name === 'kiln_drift_psi' ? (x.value > 0.2 ? 'large shift' : x.value > 0.1 ? 'moderate shift' : 'stable') : '';
        for (const [text, n] of [[x.name + (key ? ' {' + key + '}' : ''), false], [fmt(x.value, 4), true], [reading, false]]) {
          const td = document.createElement('td');
          td.textContent = text;
          if (n) td.className = 'n';
          tr.appendChild(td);
        }
        if (reading === 'large shift') tr.className = 'hi';
        tbody.appendChild(tr);
      }
    }
  }
  async function poll() {
    try {
      const r = await fetch(cfg.metrics_path, { cache: 'no-store', credentials: 'same-origin' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      update(parseProm(await r.text()));
      setText('live-status', 'Updated ' + new Date().toLocaleTimeString() + ' from ' + cfg.metrics_path + ', every ' +
              fmt(pollMs / 1000, 3) + ' s (' + polls + ' reads).');
    } catch (e) {
      setText('live-status', 'Cannot read ' + cfg.metrics_path + ' (' + e.message + '); retrying every ' + fmt(pollMs / 1000, 3) + ' s.');
    }
    setTimeout(poll, pollMs);
  }

  // The try-it box.
  const answer = $('try-answer');
  let image = null, imageUrl = null;  // the chosen image: base64 for the request, data: URL to draw
  function say(text, isError) {
    answer.textContent = '';
    const p = document.createElement('p');
    p.textContent = text;
    if (isError) p.className = 'err';
    answer.appendChild(p);
  }
  function requestBody() {
    const text = cfg.has_text ? $('try-text').value : '';
    if (cfg.has_text && !text.trim()) { say('Type a text first.', true); return null; }
    if (cfg.has_image) {
      if (!image) { say('Choose an image first.', true); return null; }
      const input = { image };
      if (cfg.has_text) input.text = text;
      return { inputs: [input] };
    }
    return { texts: [text] };
  }
  async function post(path, body) {
    const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), credentials: 'same-origin' });
    let j = null;
    try { j = await r.json(); } catch (e) { j = null; }
    return { status: r.status, ok: r.ok, json: j };
  }
  function errorText(res) {
    const e = res.json && res.json.error;
    return 'HTTP ' + res.status + ': ' + (e ? (e.message || e) : 'no answer body');
  }
  function showPrediction(p) {
    answer.textContent = '';
    const head = document.createElement('p');
    const b = document.createElement('span');
    b.className = 'label';
    b.id = 'try-label';
    b.textContent = p.label;
    head.appendChild(b);
    head.appendChild(document.createTextNode(' with probability ' + fmt(p.probability, 4)));
    answer.appendChild(head);
    const top = p.top_k || [{ label: p.label, probability: p.probability }];
    const fig = document.createElement('figure');
    fig.id = 'try-probabilities';
    const cap = document.createElement('figcaption');
    cap.textContent = 'Probabilities of the top ' + top.length + ' labels';
    fig.appendChild(cap);
    fig.appendChild(hbars('Probabilities of the top labels', top.map((x) => x.label), top.map((x) => x.probability), 'probability', 1));
    answer.appendChild(fig);
  }
  async function predict(ev) {
    if (ev) ev.preventDefault();
    const body = requestBody();
    if (!body) return;
    body.top_k = cfg.top_k;
    $('try-predict').disabled = true;
    try {
      const res = await post(cfg.predict_path, body);
      if (!res.ok || !res.json || !res.json.predictions) say(errorText(res), true);
      else showPrediction(res.json.predictions[0]);
    } catch (e) {
      say('The request failed: ' + e.message, true);
    } finally {
      $('try-predict').disabled = false;
    }
  }
  // Character offsets count Unicode code points of the text as sent.
  function showExplanation(e, text) {
    answer.textContent = '';
    const head = document.createElement('p');
    head.textContent = 'Explained label ' + e.label + ' (' + (e.method || '?') + ', ' + (e.space || '?') + '): base value ' +
      fmt(e.base_value, 4) + ' + contributions = ' + fmt(e.output, 4) + '.';
    answer.appendChild(head);
    const patches = imageUrl ? heatMap(e.attributions || []) : null;
    const chars = Array.from(text || ''), score = new Array(chars.length).fill(0), tip = new Array(chars.length).fill('');
    const loose = [];
    for (const a of e.attributions || []) {
      if (patches && patches.has(a)) continue;
      const spans = Array.isArray(a.spans) ? a.spans : (Number.isInteger(a.start) && Number.isInteger(a.end) ? [[a.start, a.end]] : []);
      let placed = false;
      for (const [s0, s1] of spans) {
        for (let i = Math.max(0, s0); i < Math.min(chars.length, s1); i++) {
          score[i] += a.value;
          tip[i] += (tip[i] ? '; ' : '') + a.feature + ' ' + fmt(a.value, 3);
          placed = true;
        }
      }
      if (!placed) loose.push(a);
    }
    const top = Math.max(1e-12, ...score.map(Math.abs));
    const box = document.createElement('div');
    box.className = 'attr';
    box.id = 'try-highlights';
    let i = 0;
    while (i < chars.length) {
      let j = i + 1;
      while (j < chars.length && score[j] === score[i] && tip[j] === tip[i]) j++;
      const piece = chars.slice(i, j).join('');
      if (score[i] !== 0) {
        const m = document.createElement('mark');
        const alpha = (0.15 + 0.65 * Math.abs(score[i]) / top).toFixed(2);
        m.style.background = score[i] > 0 ? 'rgba(207,34,46,' + alpha + ')' : 'rgba(31,111,235,' + alpha + ')';
        m.className = score[i] > 0 ? 'pos' : 'neg';
        m.title = tip[i];
        m.textContent = piece;
        box.appendChild(m);
      } else {
        box.appendChild(document.createTextNode(piece));
      }
      i = j;
    }
    if (chars.length) {  // an image-only model has no text to highlight
      answer.appendChild(box);
      const legend = document.createElement('p');
      legend.className = 'status';
      legend.innerHTML = '<span class="legend-pos">red</span>: pushes towards the label; <span class="legend-neg">blue</span>: pushes away. Hover a token for its value.';
      answer.appendChild(legend);
    }
    if (loose.length) {
      const t = document.createElement('table');
      t.id = 'try-other-attributions';
      for (const a of loose) {
        const tr = t.insertRow();
        tr.insertCell().textContent = a.feature;
        const c = tr.insertCell();
        c.textContent = fmt(a.value, 4);
        c.className = 'n';
      }
      answer.appendChild(t);
    }
  }
  // An image explanation's patches ("patch(r,c) rows a-b cols c-d", integrated gradients summed per
  // patch) drawn over the chosen image: red pushes towards the label, blue away. Returns the
  // attributions it drew (null when there are none).
  function heatMap(attrs) {
    const re = /^patch\((\d+),(\d+)\) rows (\d+)-(\d+) cols (\d+)-(\d+)$/;
    const cells = [];
    for (const a of attrs) {
      const m = re.exec(a.feature || '');
      if (m) cells.push({ a, r0: +m[3], r1: +m[4] + 1, c0: +m[5], c1: +m[6] + 1 });
    }
    if (!cells.length) return null;
    const h = Math.max(...cells.map((c) => c.r1)), w = Math.max(...cells.map((c) => c.c1));
    const top = Math.max(1e-12, ...cells.map((c) => Math.abs(c.a.value)));
    const scale = 256 / Math.max(h, w);
    const s = newSvg(Math.round(w * scale), Math.round(h * scale), 'Attribution per image patch');
    s.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    s.id = 'try-heatmap';
    const picture = el('image', { href: imageUrl, x: 0, y: 0, width: w, height: h, preserveAspectRatio: 'none' }, s);
    picture.style.imageRendering = 'pixelated';  // the model's pixels, not a smoothed upscale
    for (const c of cells) {
      const v = c.a.value;
      const r = el('rect', { x: c.c0, y: c.r0, width: c.c1 - c.c0, height: c.r1 - c.r0,
        fill: v > 0 ? '#cf222e' : '#1f6feb', 'fill-opacity': v === 0 ? 0 : (0.1 + 0.5 * Math.abs(v) / top).toFixed(2),
        class: v > 0 ? 'pos' : 'neg' }, s);
      el('title', {}, r, c.a.feature + ' ' + fmt(v, 4));
    }
    answer.appendChild(s);
    const legend = document.createElement('p');
    legend.className = 'status';
    legend.innerHTML = '<span class="legend-pos">red</span>: the patch pushes towards the label; <span class="legend-neg">blue</span>: away. Hover a patch for its value.';
    answer.appendChild(legend);
    return new Set(cells.map((c) => c.a));
  }
  async function explain() {
    const body = requestBody();
    if (!body) return;
    const text = cfg.has_text ? $('try-text').value : '';
    $('try-explain').disabled = true;
    try {
      const res = await post(cfg.explain_path, body);
      if (res.status === 404) {
        $('try-explain').hidden = true;
        say('This server has no ' + cfg.explain_path + ' route, so there is nothing to explain with here; `kiln explain` does it offline.');
        return;
      }
      const j = res.json;
      const e = Array.isArray(j) ? j[0] : j && (j.explanations || j.results) ? (j.explanations || j.results)[0] : j;
      if (!res.ok || !e || !e.attributions) say(errorText(res), true);
      else showExplanation(e, text);
    } catch (err) {
      say('The request failed: ' + err.message, true);
    } finally {
      $('try-explain').disabled = false;
    }
  }

  const form = $('try-form');
  if (form) {
    form.hidden = false;
    form.addEventListener('submit', predict);
    $('try-explain').addEventListener('click', explain);
    const file = $('try-image');
    if (file) {
      file.addEventListener('change', () => {
        image = imageUrl = null;
        const f = file.files && file.files[0];
        if (!f) return;
        const reader = new FileReader();
        reader.onload = () => {
          const url = String(reader.result);
          image = url.slice(url.indexOf(',') + 1);
          imageUrl = url;
          const img = $('try-preview');
          img.src = url;
          img.hidden = false;
        };
        reader.readAsDataURL(f);
      });
    }
  }
  for (const pre of document.querySelectorAll('pre')) pre.textContent = pre.textContent.replace('http://HOST:PORT', location.origin);
  window.kilnLive = { parseProm, quantile, buckets, requestBody, showExplanation, predict, explain, polls: () => polls,
                     history: () => history.slice() };
  poll();
})();
)JS";

}  // namespace kiln::report::detail
