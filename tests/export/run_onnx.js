// Runs an ONNX model with ONNX Runtime (npm onnxruntime-node) on the inputs of a kiln export
// examples file ({"inputs": {name: rows or {"dims", "data"}}, "logits": rows}) and prints
// {"max_abs_diff": d, "rows": n, "classes": c} comparing ONNX Runtime's logits with Kiln's.
// Usage: node run_onnx.js NODE_MODULES_DIR MODEL.onnx EXAMPLES.json
const path = require('path')
const fs = require('fs')
const ort = require(path.join(process.argv[2], 'onnxruntime-node'))

async function main() {
  const ex = JSON.parse(fs.readFileSync(process.argv[4], 'utf8'))
  const session = await ort.InferenceSession.create(process.argv[3], {intraOpNumThreads: 1, interOpNumThreads: 1})
  const feeds = {}
  for (const [name, value] of Object.entries(ex.inputs)) {
    // rows [[...], ...], or {"dims": [...], "data": [...]} for tensors of other ranks (pixel_values)
    const flat = value.dims ? value.data : value.flat()
    const dims = value.dims ? value.dims : [value.length, value[0].length]
    feeds[name] = name === 'features' || name === 'pixel_values'
      ? new ort.Tensor('float32', Float32Array.from(flat), dims)
      : new ort.Tensor('int64', BigInt64Array.from(flat.map(BigInt)), dims)
  }
  const out = await session.run(feeds)
  const logits = out[session.outputNames[0]]
  const want = ex.logits.flat()
  if (logits.data.length !== want.length) throw new Error(`ONNX Runtime gave ${logits.data.length} logits, Kiln ${want.length}`)
  let diff = 0
  for (let i = 0; i < want.length; ++i) diff = Math.max(diff, Math.abs(logits.data[i] - want[i]))
  console.log(JSON.stringify({max_abs_diff: diff, rows: ex.logits.length, classes: ex.logits[0].length,
                              dims: logits.dims.map(Number)}))
}
main().catch((e) => { console.error(e.message || e); process.exit(1) })
