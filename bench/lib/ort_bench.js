// ONNX Runtime timing for bench/optimize_vs_onnxruntime.sh.
//   node ort_bench.js NODE_MODULES MODEL.onnx INPUTS.json THREADS LABEL ROUNDS LATENCY_ROUNDS
// INPUTS.json: {"throughput": {name: {dims, data}}, "latency": {...}} (bench/optimize_forward.cpp).
// Session options as ONNX Runtime's performance docs recommend for CPU: all graph optimizations,
// sequential execution, intra-op threads = THREADS. Prints one JSON line like optimize_forward's.
const path = require('path')
const fs = require('fs')
const ort = require(path.join(process.argv[2], 'onnxruntime-node'))
const [model, inputsFile, threads, label, rounds, latencyRounds] = process.argv.slice(3)

function feeds(spec) {
  const out = {}
  for (const [name, t] of Object.entries(spec)) {
    out[name] = name === 'features' || name === 'pixel_values' ? new ort.Tensor('float32', Float32Array.from(t.data), t.dims)
                                    : new ort.Tensor('int64', BigInt64Array.from(t.data.map(BigInt)), t.dims)
  }
  return out
}

async function main() {
  const inputs = JSON.parse(fs.readFileSync(inputsFile, 'utf8'))
  const s = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all'})
  const big = feeds(inputs.throughput), one = feeds(inputs.latency)
  const rows = Object.values(inputs.throughput)[0].dims[0]
  await s.run(big); await s.run(one)
  let best = Infinity
  for (let r = 0; r < Number(rounds); ++r) {
    const t0 = process.hrtime.bigint(); await s.run(big)
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9)
  }
  const lat = []
  for (let r = 0; r < Number(latencyRounds); ++r) {
    const t0 = process.hrtime.bigint(); await s.run(one)
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  lat.sort((a, b) => a - b)
  console.log(JSON.stringify({system: label, threads: Number(threads), throughput: rows / best,
                              latency_ms: lat[Math.floor(lat.length / 2)]}))
}
main().catch((e) => { console.error(e.message || e); process.exit(1) })
