#!/usr/bin/env node
// Opens Kiln report pages in headless Chromium over the DevTools protocol (through
// --remote-debugging-pipe: no WebSocket library, nothing fetched from npm) and checks each page:
// no console errors or exceptions, no network request but the page itself, every figure listed in
// the page's embedded JSON present and non-empty (an <svg> or <table> with a non-zero box and
// content), the colours switching under prefers-color-scheme: dark, and screenshots written (light
// and dark).
//
//   node browser_check.js CHROMIUM OUT_DIR PAGE.html [PAGE.html ...]
//
// Prints one line per page; exits 1 naming every problem, 0 when all pages pass.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [chromium, outDir, ...pages] = process.argv.slice(2);
if (!chromium || !outDir || pages.length === 0) {
  console.error('usage: browser_check.js CHROMIUM OUT_DIR PAGE.html [PAGE.html ...]');
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-chromium-'));
const args = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check',
  // Chromium's own background traffic off: the only requests left are the page's.
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-default-apps', '--disable-extensions', '--disable-domain-reliability',
  '--disable-client-side-phishing-detection', '--disable-breakpad', '--metrics-recording-only',
  '--disable-features=Translate,OptimizationHints,MediaRouter,InterestFeedContentSuggestions',
  '--user-data-dir=' + profile, '--remote-debugging-pipe', 'about:blank',
];
const child = spawn(chromium, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
let stderr = '';
child.stderr.on('data', (d) => { stderr += d; });
const toBrowser = child.stdio[3], fromBrowser = child.stdio[4];

let nextId = 1;
const waiting = new Map();
const listeners = [];
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
      for (const l of listeners) l(msg);
    }
  }
});
function send(method, params = {}, sessionId) {
  const id = nextId++;
  const msg = { id, method, params };
  if (sessionId) msg.sessionId = sessionId;
  toBrowser.write(JSON.stringify(msg) + '\0');
  return new Promise((resolve, reject) => waiting.set(id, { resolve, reject, method }));
}
function waitFor(pred, ms, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out after ' + ms + ' ms waiting for ' + what)), ms);
    const l = (msg) => {
      if (pred(msg)) {
        clearTimeout(timer);
        listeners.splice(listeners.indexOf(l), 1);
        resolve(msg);
      }
    };
    listeners.push(l);
  });
}

// Runs in the page: each figure named in the embedded data, its element and its size.
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
    return { id, present: true, kind: el.dataset.kind, width: box.width, height: box.height, parts,
             caption: (el.querySelector('figcaption') || {}).textContent || '', top };
  });
  return { figures, title: document.title, height: document.documentElement.scrollHeight,
           scripts: document.querySelectorAll('script:not([type="application/json"])').length };
})()`;

async function checkPage(file, problems) {
  const url = 'file://' + path.resolve(file);
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  const errors = [], requests = [];
  const l = (msg) => {
    if (msg.sessionId !== sessionId) return;
    if (msg.method === 'Runtime.consoleAPICalled' && (msg.params.type === 'error' || msg.params.type === 'assert')) {
      errors.push('console.' + msg.params.type + ': ' + msg.params.args.map((a) => a.value || a.description).join(' '));
    } else if (msg.method === 'Runtime.exceptionThrown') {
      errors.push('exception: ' + msg.params.exceptionDetails.text);
    } else if (msg.method === 'Log.entryAdded' && msg.params.entry.level === 'error') {
      errors.push('log: ' + msg.params.entry.text + (msg.params.entry.url ? ' (' + msg.params.entry.url + ')' : ''));
    } else if (msg.method === 'Network.requestWillBeSent') {
      if (msg.params.request.url !== url) requests.push(msg.params.request.url);
    }
  };
  listeners.push(l);
  for (const m of ['Page.enable', 'Runtime.enable', 'Log.enable', 'Network.enable']) await send(m, {}, sessionId);
  await send('Emulation.setDeviceMetricsOverride', { width: 1280, height: 900, deviceScaleFactor: 1, mobile: false }, sessionId);
  const loaded = waitFor((m) => m.sessionId === sessionId && m.method === 'Page.loadEventFired', 30000, 'load of ' + file);
  const nav = await send('Page.navigate', { url }, sessionId);
  if (nav.errorText) problems.push(file + ': navigation failed: ' + nav.errorText);
  await loaded;
  const res = await send('Runtime.evaluate', { expression: inspect, returnByValue: true }, sessionId);
  const info = res.result.value || {};
  if (info.error) problems.push(file + ': ' + info.error);
  const figs = info.figures || [];
  if (figs.length === 0) problems.push(file + ': the page lists no figures');
  for (const f of figs) {
    if (!f.present) problems.push(file + ': figure ' + f.id + ' is listed in the data but has no element');
    else if (!(f.width > 0 && f.height > 0 && f.parts > 0)) {
      problems.push(file + ': figure ' + f.id + ' is empty (' + f.width + 'x' + f.height + ' px, ' + f.parts + ' shapes)');
    } else if (!f.caption.trim()) problems.push(file + ': figure ' + f.id + ' has no title');
  }
  if (info.scripts) problems.push(file + ': ' + info.scripts + ' executable <script> element(s); reports run no script');
  // Full-page screenshot.
  const height = Math.min(16000, Math.max(900, Math.ceil(info.height || 900)));
  await send('Emulation.setDeviceMetricsOverride', { width: 1280, height, deviceScaleFactor: 1, mobile: false }, sessionId);
  const shot = await send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true }, sessionId);
  const png = path.join(outDir, path.basename(file, '.html') + '.png');
  fs.writeFileSync(png, Buffer.from(shot.data, 'base64'));
  // Dark mode: the page's colours follow prefers-color-scheme (a second screenshot).
  const bg = async () => (await send('Runtime.evaluate', { expression: 'getComputedStyle(document.body).backgroundColor', returnByValue: true }, sessionId)).result.value;
  const light = await bg();
  await send('Emulation.setEmulatedMedia', { features: [{ name: 'prefers-color-scheme', value: 'dark' }] }, sessionId);
  const dark = await bg();
  if (light === dark) problems.push(file + ': the background stays ' + light + ' under prefers-color-scheme: dark');
  const darkShot = await send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true }, sessionId);
  fs.writeFileSync(path.join(outDir, path.basename(file, '.html') + '-dark.png'), Buffer.from(darkShot.data, 'base64'));
  await send('Emulation.setEmulatedMedia', { features: [{ name: 'prefers-color-scheme', value: 'light' }] }, sessionId);
  if (process.env.KILN_FIGURE_SHOTS) {  // one picture per figure, for a person to look at
    for (const f of figs.filter((x) => x.present)) {
      const clip = { x: 0, y: Math.max(0, f.top - 10), width: 1280, height: Math.min(2000, f.height + 80), scale: 1 };
      const s = await send('Page.captureScreenshot', { format: 'png', clip, captureBeyondViewport: true }, sessionId);
      fs.writeFileSync(path.join(outDir, path.basename(file, '.html') + '-' + f.id + '.png'), Buffer.from(s.data, 'base64'));
    }
  }
  listeners.splice(listeners.indexOf(l), 1);
  await send('Target.closeTarget', { targetId });
  for (const e of errors) problems.push(file + ': ' + e);
  for (const r of requests) problems.push(file + ': network request to ' + r);
  console.log(file + ': ' + figs.length + ' figures, ' + errors.length + ' console errors, ' + requests.length +
              ' requests, screenshot ' + png + ' (' + fs.statSync(png).size + ' bytes)');
}

(async () => {
  const problems = [];
  const watchdog = setTimeout(() => {
    console.error('browser_check: no answer from ' + chromium + ' within 120 s\n' + stderr.slice(-2000));
    child.kill('SIGKILL');
    process.exit(1);
  }, 120000);
  try {
    await send('Browser.getVersion');
    for (const p of pages) await checkPage(p, problems);
  } catch (e) {
    problems.push(String(e.stack || e));
  }
  clearTimeout(watchdog);
  try { await Promise.race([send('Browser.close'), new Promise((r) => setTimeout(r, 3000))]); } catch (e) { /* closing */ }
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  try { fs.rmSync(profile, { recursive: true, force: true, maxRetries: 5 }); } catch (e) { /* a temporary profile */ }
  if (problems.length) {
    console.error(problems.join('\n'));
    process.exit(1);
  }
  process.exit(0);
})();
