// Headless Chromium over the DevTools protocol through --remote-debugging-pipe (no WebSocket
// library, nothing fetched from npm), with Chromium's own background networking switched off so
// that the only requests left are the page's. Shared by browser_check.js and live_check.js.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

function launch(chromium) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-chromium-'));
  const args = [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-default-apps', '--disable-extensions', '--disable-domain-reliability',
    '--disable-client-side-phishing-detection', '--disable-breakpad', '--metrics-recording-only',
    '--disable-features=Translate,OptimizationHints,MediaRouter,InterestFeedContentSuggestions',
    '--user-data-dir=' + profile, '--remote-debugging-pipe', 'about:blank',
  ];
  const child = spawn(chromium, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  const cdp = { child, stderr: '', listeners: [] };
  child.stderr.on('data', (d) => { cdp.stderr += d; });
  const toBrowser = child.stdio[3], fromBrowser = child.stdio[4];
  let nextId = 1;
  const waiting = new Map();
  let buf = Buffer.alloc(0);
  fromBrowser.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    let end;
    while ((end = buf.indexOf(0)) >= 0) {
      const msg = JSON.parse(buf.subarray(0, end).toString('utf8'));
      buf = buf.subarray(end + 1);
      if (msg.id && waiting.has(msg.id)) {
        const { resolve, reject, method } = waiting.get(msg.id);
        waiting.delete(msg.id);
        if (msg.error) reject(new Error(method + ': ' + msg.error.message));
        else resolve(msg.result);
      } else if (msg.method) {
        for (const l of cdp.listeners.slice()) l(msg);
      }
    }
  });
  cdp.send = (method, params = {}, sessionId) => {
    const id = nextId++;
    const msg = { id, method, params };
    if (sessionId) msg.sessionId = sessionId;
    toBrowser.write(JSON.stringify(msg) + '\0');
    return new Promise((resolve, reject) => waiting.set(id, { resolve, reject, method }));
  };
  cdp.waitFor = (pred, ms, what) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cdp.listeners.splice(cdp.listeners.indexOf(l), 1);
      reject(new Error('timed out after ' + ms + ' ms waiting for ' + what));
    }, ms);
    const l = (msg) => {
      if (pred(msg)) {
        clearTimeout(timer);
        cdp.listeners.splice(cdp.listeners.indexOf(l), 1);
        resolve(msg);
      }
    };
    cdp.listeners.push(l);
  });
  cdp.close = async () => {
    try { await Promise.race([cdp.send('Browser.close'), new Promise((r) => setTimeout(r, 3000))]); } catch (e) { /* closing */ }
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    try { fs.rmSync(profile, { recursive: true, force: true, maxRetries: 5 }); } catch (e) { /* a temporary profile */ }
  };
  return cdp;
}

// Records a session's console errors, exceptions, error log entries and requests.
function watch(cdp, sessionId) {
  const seen = { errors: [], requests: [] };
  const l = (msg) => {
    if (msg.sessionId !== sessionId) return;
    if (msg.method === 'Runtime.consoleAPICalled' && (msg.params.type === 'error' || msg.params.type === 'assert')) {
      seen.errors.push('console.' + msg.params.type + ': ' + msg.params.args.map((a) => a.value || a.description).join(' '));
    } else if (msg.method === 'Runtime.exceptionThrown') {
      const d = msg.params.exceptionDetails;
      seen.errors.push('exception: ' + d.text + ' ' + ((d.exception && d.exception.description) || ''));
    } else if (msg.method === 'Log.entryAdded' && msg.params.entry.level === 'error') {
      seen.errors.push('log: ' + msg.params.entry.text + (msg.params.entry.url ? ' (' + msg.params.entry.url + ')' : ''));
    } else if (msg.method === 'Network.requestWillBeSent') {
      seen.requests.push({ url: msg.params.request.url, method: msg.params.request.method });
    }
  };
  cdp.listeners.push(l);
  seen.stop = () => cdp.listeners.splice(cdp.listeners.indexOf(l), 1);
  return seen;
}

// Runs in a page: each figure named in the embedded data, its element and its size.
const inspect = `(() => {
  const block = document.getElementById('kiln-report-data');
  if (!block) return { error: 'no kiln-report-data block' };
  const data = JSON.parse(block.textContent);
  const figures = (data.figures || []).map((id) => {
    const el = document.getElementById(id);
    if (!el) return { id, present: false };
    const body = el.querySelector('svg, table');
    const box = body ? body.getBoundingClientRect() : { width: 0, height: 0 };
    const parts = body ? body.querySelectorAll('rect, polyline, circle, line, td').length : 0;
    const top = el.getBoundingClientRect().top + window.scrollY;
    const hidden = !!el.closest('details:not([open])');
    return { id, present: true, kind: el.dataset.kind, width: box.width, height: box.height, parts, hidden,
             caption: (el.querySelector('figcaption') || {}).textContent || '', top };
  });
  return { figures, title: document.title, height: document.documentElement.scrollHeight,
           scripts: document.querySelectorAll('script:not([type="application/json"])').length };
})()`;

// Problems with the figures `info` (inspect's result) lists: missing, empty or untitled. A figure
// inside a closed <details> has no box: it counts when it has shapes.
function figureProblems(file, info) {
  const problems = [];
  const figs = info.figures || [];
  if (figs.length === 0) problems.push(file + ': the page lists no figures');
  for (const f of figs) {
    if (!f.present) problems.push(file + ': figure ' + f.id + ' is listed in the data but has no element');
    else if (!((f.hidden || (f.width > 0 && f.height > 0)) && f.parts > 0)) {
      problems.push(file + ': figure ' + f.id + ' is empty (' + f.width + 'x' + f.height + ' px, ' + f.parts + ' shapes)');
    } else if (!f.caption.trim()) problems.push(file + ': figure ' + f.id + ' has no title');
  }
  return problems;
}

// Full-page screenshots, light then dark (the colours must follow prefers-color-scheme).
async function screenshots(cdp, sessionId, height, base, problems) {
  const h = Math.min(16000, Math.max(900, Math.ceil(height || 900)));
  await cdp.send('Emulation.setDeviceMetricsOverride', { width: 1280, height: h, deviceScaleFactor: 1, mobile: false }, sessionId);
  const shot = await cdp.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true }, sessionId);
  fs.writeFileSync(base + '.png', Buffer.from(shot.data, 'base64'));
  const bg = async () => (await cdp.send('Runtime.evaluate', { expression: 'getComputedStyle(document.body).backgroundColor', returnByValue: true }, sessionId)).result.value;
  const light = await bg();
  await cdp.send('Emulation.setEmulatedMedia', { features: [{ name: 'prefers-color-scheme', value: 'dark' }] }, sessionId);
  const dark = await bg();
  if (light === dark) problems.push(base + ': the background stays ' + light + ' under prefers-color-scheme: dark');
  const darkShot = await cdp.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true }, sessionId);
  fs.writeFileSync(base + '-dark.png', Buffer.from(darkShot.data, 'base64'));
  await cdp.send('Emulation.setEmulatedMedia', { features: [{ name: 'prefers-color-scheme', value: 'light' }] }, sessionId);
}

module.exports = { launch, watch, inspect, figureProblems, screenshots };
