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
const fs = require('fs');
const path = require('path');
const cdp = require('./cdp');

const [chromium, outDir, ...pages] = process.argv.slice(2);
if (!chromium || !outDir || pages.length === 0) {
  console.error('usage: browser_check.js CHROMIUM OUT_DIR PAGE.html [PAGE.html ...]');
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
const browser = cdp.launch(chromium);
const send = browser.send;
const waitFor = browser.waitFor;

async function checkPage(file, problems) {
  const url = 'file://' + path.resolve(file);
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  const seen = cdp.watch(browser, sessionId);
  for (const m of ['Page.enable', 'Runtime.enable', 'Log.enable', 'Network.enable']) await send(m, {}, sessionId);
  await send('Emulation.setDeviceMetricsOverride', { width: 1280, height: 900, deviceScaleFactor: 1, mobile: false }, sessionId);
  const loaded = waitFor((m) => m.sessionId === sessionId && m.method === 'Page.loadEventFired', 30000, 'load of ' + file);
  const nav = await send('Page.navigate', { url }, sessionId);
  if (nav.errorText) problems.push(file + ': navigation failed: ' + nav.errorText);
  await loaded;
  const res = await send('Runtime.evaluate', { expression: cdp.inspect, returnByValue: true }, sessionId);
  const info = res.result.value || {};
  if (info.error) problems.push(file + ': ' + info.error);
  const figs = info.figures || [];
  problems.push(...cdp.figureProblems(file, info));
  if (info.scripts) problems.push(file + ': ' + info.scripts + ' executable <script> element(s); reports run no script');
  const png = path.join(outDir, path.basename(file, '.html') + '.png');
  await cdp.screenshots(browser, sessionId, info.height, path.join(outDir, path.basename(file, '.html')), problems);
  if (process.env.KILN_FIGURE_SHOTS) {  // one picture per figure, for a person to look at
    for (const f of figs.filter((x) => x.present)) {
      const clip = { x: 0, y: Math.max(0, f.top - 10), width: 1280, height: Math.min(2000, f.height + 80), scale: 1 };
      const s = await send('Page.captureScreenshot', { format: 'png', clip, captureBeyondViewport: true }, sessionId);
      fs.writeFileSync(path.join(outDir, path.basename(file, '.html') + '-' + f.id + '.png'), Buffer.from(s.data, 'base64'));
    }
  }
  seen.stop();
  await send('Target.closeTarget', { targetId });
  const requests = seen.requests.map((r) => r.url).filter((u) => u !== url);
  for (const e of seen.errors) problems.push(file + ': ' + e);
  for (const r of requests) problems.push(file + ': network request to ' + r);
  console.log(file + ': ' + figs.length + ' figures, ' + seen.errors.length + ' console errors, ' + requests.length +
              ' requests, screenshot ' + png + ' (' + fs.statSync(png).size + ' bytes)');
}

(async () => {
  const problems = [];
  const watchdog = setTimeout(() => {
    console.error('browser_check: no answer from ' + chromium + ' within 120 s\n' + browser.stderr.slice(-2000));
    browser.child.kill('SIGKILL');
    process.exit(1);
  }, 120000);
  try {
    await send('Browser.getVersion');
    for (const p of pages) await checkPage(p, problems);
  } catch (e) {
    problems.push(String(e.stack || e));
  }
  clearTimeout(watchdog);
  await browser.close();
  if (problems.length) {
    console.error(problems.join('\n'));
    process.exit(1);
  }
  process.exit(0);
})();
