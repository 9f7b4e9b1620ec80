#!/usr/bin/env node
// Opens a running `kiln serve`'s own page (GET /) in headless Chromium over the DevTools protocol
// and checks it works as a user sees it: no console errors or exceptions (the page's inline script
// passes its Content-Security-Policy hash), no request but the page and same-origin /metrics,
// /v1/predict and /v1/explain (never an admin route or another host), every static figure present
// and non-empty, the live panel updating from /metrics after requests (the request count and rate
// change, the live figures get drawn), the try-it box answering a label with its probability
// bars, the explain button hidden when /v1/explain answers 404, token highlights drawn from an
// explanation, and screenshots (light and dark).
//
//   node live_check.js CHROMIUM OUT_DIR URL TEXT LABEL...
//
// TEXT is typed into the try-it box ('-': the model reads no text); LABEL... are the model's labels.
// With TRY_IMAGE=FILE in the environment (an image model), the file is chosen in the try-it box's
// file input as a user would, and an explanation must draw the patch heat map over it. Prints what
// it saw; exits 1 naming every problem.
'use strict';
const fs = require('fs');
const path = require('path');
const cdp = require('./cdp');

const [chromium, outDir, url, text, ...labels] = process.argv.slice(2);
if (!chromium || !outDir || !url || !text || labels.length === 0) {
  console.error('usage: live_check.js CHROMIUM OUT_DIR URL TEXT LABEL...');
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
const browser = cdp.launch(chromium);
const send = browser.send;
const origin = new URL(url).origin;

(async () => {
  const problems = [];
  const watchdog = setTimeout(() => {
    console.error('live_check: no answer from ' + chromium + ' within 90 s\n' + browser.stderr.slice(-2000));
    browser.child.kill('SIGKILL');
    process.exit(1);
  }, 90000);
  let seen = null, explainAbsent = false;
  try {
    await send('Browser.getVersion');
    const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
    seen = cdp.watch(browser, sessionId);
    for (const m of ['Page.enable', 'Runtime.enable', 'Log.enable', 'Network.enable']) await send(m, {}, sessionId);
    await send('Emulation.setDeviceMetricsOverride', { width: 1280, height: 900, deviceScaleFactor: 1, mobile: false }, sessionId);
    const loaded = browser.waitFor((m) => m.sessionId === sessionId && m.method === 'Page.loadEventFired', 30000, 'load of ' + url);
    const nav = await send('Page.navigate', { url }, sessionId);
    if (nav.errorText) throw new Error('navigation failed: ' + nav.errorText);
    await loaded;
    // Runs `body` (an async function's body) in the page and returns its value.
    const run = async (body) => {
      const r = await send('Runtime.evaluate', { expression: '(async () => {' + body + '})()', awaitPromise: true, returnByValue: true }, sessionId);
      if (r.exceptionDetails) throw new Error('in the page: ' + (r.exceptionDetails.exception || {}).description);
      return r.result.value;
    };
    const until = (cond, what) => run(`
      const end = Date.now() + 20000;
      while (Date.now() < end) { if (${cond}) return true; await new Promise((r) => setTimeout(r, 50)); }
      throw new Error('timed out waiting for ${what.replace(/'/g, '')}');`);

    // The live panel reads /metrics: wait for two reads (a rate needs two).
    await until('window.kilnLive && kilnLive.polls() >= 2', 'two reads of /metrics');
    const before = await run(`return { requests: Number(document.getElementById('live-requests').textContent),
                                       rate: document.getElementById('live-rate').textContent };`);
    // The try-it box: type (and choose the image), press Predict, read the answer.
    const tryImage = process.env.TRY_IMAGE;
    if (tryImage) {
      const doc = await send('DOM.getDocument', {}, sessionId);
      const input = await send('DOM.querySelector', { nodeId: doc.root.nodeId, selector: '#try-image' }, sessionId);
      if (!input.nodeId) throw new Error('the page has no image input (#try-image)');
      await send('DOM.setFileInputFiles', { files: [path.resolve(tryImage)], nodeId: input.nodeId }, sessionId);
      await until(`!document.getElementById('try-preview').hidden`, 'the chosen image preview');
    }
    if (text !== '-') await run(`document.getElementById('try-text').value = ${JSON.stringify(text)};`);
    await run(`document.getElementById('try-predict').click();`);
    await until(`document.getElementById('try-label')`, 'the try-it answer');
    const answer = await run(`return { label: document.getElementById('try-label').textContent,
      bars: document.querySelectorAll('#try-probabilities svg rect').length };`);
    if (!labels.includes(answer.label)) problems.push('try-it answered label ' + JSON.stringify(answer.label) + ', not one of ' + labels.join(', '));
    if (answer.bars < Math.min(2, labels.length)) problems.push('try-it drew ' + answer.bars + ' probability bars');
    // More traffic, then the live panel must show it.
    await run(`for (let i = 0; i < 4; i++) document.getElementById('try-predict').click(), await new Promise((r) => setTimeout(r, 30));`);
    await until(`Number(document.getElementById('live-requests').textContent) >= ${before.requests} + 2`, 'the request count to rise');
    await until(`kilnLive.polls() >= 4`, 'two more reads');
    const after = await run(`return { requests: Number(document.getElementById('live-requests').textContent),
      rate: document.getElementById('live-rate').textContent,
      maxRate: Math.max(...kilnLive.history().map((h) => h.rate).filter(isFinite)),
      p50: document.getElementById('live-p50').textContent,
      drift: document.querySelectorAll('#live-drift tbody tr').length,
      status: document.getElementById('live-status').textContent };`);
    if (!(after.requests > before.requests)) problems.push('live request count stayed ' + before.requests);
    if (!(after.maxRate > 0)) problems.push('live request rate never rose above 0');
    if (after.rate === before.rate && before.rate === '—') problems.push('live rate never shown');
    if (!/^[0-9.e+-]+$/.test(after.p50)) problems.push('p50 latency shows ' + after.p50);
    // Explain: where the server has no /v1/explain the button hides itself.
    const explain = await run(`document.getElementById('try-explain').click();
      const end = Date.now() + 20000;
      while (Date.now() < end) {
        if (document.getElementById('try-explain').hidden) return 'hidden';
        if (document.getElementById(${JSON.stringify(tryImage ? 'try-heatmap' : 'try-highlights')})) return 'explained';
        const err = document.querySelector('#try-answer .err');
        if (err) return 'error: ' + err.textContent;
        await new Promise((r) => setTimeout(r, 50));
      }
      return 'no answer';`);
    if (explain !== 'hidden' && explain !== 'explained') problems.push('the explain button: ' + explain);
    explainAbsent = explain === 'hidden';
    if (tryImage && explain === 'explained') {
      const heat = await run(`const s = document.getElementById('try-heatmap');
        return { rects: s.querySelectorAll('rect').length, image: s.querySelectorAll('image').length,
                 titled: [...s.querySelectorAll('rect > title')].filter((t) => /^patch\\(/.test(t.textContent)).length };`);
      if (heat.image !== 1 || heat.rects < 1 || heat.titled !== heat.rects) problems.push('image heat map: ' + JSON.stringify(heat));
      console.log('heat map: ' + heat.rects + ' patches over the chosen image');
      // The try-it box with the heat map, as a user sees it (the viewport's first 900 px).
      const shot = await send('Page.captureScreenshot', { format: 'png' }, sessionId);
      fs.writeFileSync(path.join(outDir, 'explain-image.png'), Buffer.from(shot.data, 'base64'));
    }
    // Token highlights from an explanation of the documented shape (drawn by the page's own code).
    const marks = await run(`kilnLive.showExplanation({label: 'L', output: 1.5, base_value: 0.25, space: 'logit', method: 'linear',
        attributions: [{feature: 'goal', value: 0.9, start: 0, end: 4}, {feature: 'bank', value: -0.4, start: 5, end: 9},
                       {feature: '(absent features)', value: 0.35}]}, 'goal bank é');
      return { marks: [...document.querySelectorAll('#try-highlights mark')].map((m) => m.className + ':' + m.textContent),
               other: document.querySelectorAll('#try-other-attributions tr').length };`);
    if (JSON.stringify(marks.marks) !== JSON.stringify(['pos:goal', 'neg:bank'])) problems.push('highlights: ' + JSON.stringify(marks.marks));
    if (marks.other !== 1) problems.push('attributions without offsets: ' + marks.other + ' rows, expected 1');
    // Show a real answer again for the screenshots, then check every figure (static and live).
    await run(`document.getElementById('try-predict').click();`);
    await until(`document.getElementById('try-label')`, 'the try-it answer');
    await until(`kilnLive.polls() >= 6`, 'two more reads');
    const info = (await send('Runtime.evaluate', { expression: cdp.inspect, returnByValue: true }, sessionId)).result.value;
    problems.push(...cdp.figureProblems(url, info));
    const live = (info.figures || []).filter((f) => f.id.startsWith('live-'));
    if (live.length < 5) problems.push('the page lists ' + live.length + ' live figures, expected 5');
    for (const f of live) {
      if (f.kind !== 'table' && f.parts < 3) problems.push('live figure ' + f.id + ' was not drawn (' + f.parts + ' shapes)');
    }
    await cdp.screenshots(browser, sessionId, info.height, path.join(outDir, 'live'), problems);
    console.log('live page: ' + (info.figures || []).length + ' figures (' + live.length + ' live), try-it answered ' + answer.label +
                ' (' + answer.bars + ' bars), predict requests ' + before.requests + ' -> ' + after.requests + ', rate ' + before.rate +
                ' -> peak ' + after.maxRate.toFixed(2) + '/s, p50 ' + after.p50 + ' ms, drift rows ' + after.drift + ', explain ' + explain +
                '; status: ' + after.status);
    seen.stop();
    await send('Target.closeTarget', { targetId });
  } catch (e) {
    problems.push(String(e.stack || e));
  }
  clearTimeout(watchdog);
  if (seen) {
    const allowed = new Set(['/metrics', '/v1/predict', '/v1/explain']);
    const counts = {};
    for (const r of seen.requests) {
      // The chosen image's preview is a data: URL the page made itself: no network involved.
      if (r.url.startsWith('data:')) continue;
      const u = new URL(r.url);
      const key = u.origin === origin ? r.method + ' ' + u.pathname : r.url;
      counts[key] = (counts[key] || 0) + 1;
      if (r.url === url) continue;
      if (u.origin !== origin || !allowed.has(u.pathname)) problems.push('request to ' + r.url);
    }
    console.log('requests: ' + JSON.stringify(counts));
    for (const e of seen.errors) {
      // The one error a browser logs by itself: the 404 of the probe of an absent /v1/explain.
      if (explainAbsent && /status of 404/.test(e) && e.includes('/v1/explain')) continue;
      problems.push('console: ' + e);
    }
  }
  await browser.close();
  if (problems.length) {
    console.error(problems.join('\n'));
    process.exit(1);
  }
  process.exit(0);
})();
