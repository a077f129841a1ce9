#!/usr/bin/env node
// ort_prof.js — where ONNX Runtime spends its time on one faceplugin model (bench tool, not a test): runs the
// weight-flushed model (as bench_nn.js gives it to ORT) with ORT's profiler on, 1 thread, and prints the median
// time per node, summed by op type and, for Conv, by (kernel, input height, output channels of a 3x3) with the
// GFLOP/s of each group. Set beside `bench/prof_nn MODEL RUNS TOP fast` (ours, per node) it says which layers
// ORT runs faster. ORT's NCHWc rewrite shows up here: BatchNormalization becomes a 1x1 depthwise Conv (counted
// in its 1x1 group with ~no FLOPs), nodes are renamed *_nchwc.
// Usage: node bench/ort_prof.js --flush build/bench/fk_flush_model [--model fr_expression] [--runs 25]
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { root, opt: optIn, median, lcgFill, loadOrt } = require('./common');

const args = process.argv.slice(2);
const opt = (name, def) => optIn(args, name, def);
const flushTool = opt('--flush', path.join(root, 'build/bench/fk_flush_model'));
const name = opt('--model', 'fr_expression');
const runs = parseInt(opt('--runs', '25'), 10);
const modelsDir = process.env.FK_MODELS_DIR || path.join(root, 'models');

async function main() {
  const ort = loadOrt();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fk-ort-prof-'));
  const flushed = path.join(tmp, name + '.onnx');
  execFileSync(flushTool, [path.join(modelsDir, 'faceplugin', name + '.onnx'), flushed]);
  const sess = await ort.InferenceSession.create(flushed, {
    graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
    enableProfiling: true, profileFilePrefix: path.join(tmp, 'p'),
  });
  const meta = sess.inputMetadata[0];
  const dims = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  const feeds = { [sess.inputNames[0]]: new ort.Tensor('float32', lcgFill({ s: 12345 }, dims.reduce((a, b) => a * b, 1)), dims) };
  for (let i = 0; i < runs + 5; i++) await sess.run(feeds);
  await sess.endProfiling();
  const file = fs.readdirSync(tmp).find((f) => f.startsWith('p') && f.endsWith('.json'));
  const events = JSON.parse(fs.readFileSync(path.join(tmp, file), 'utf8'));
  const perNode = new Map();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const k = e.name.slice(0, -'_kernel_time'.length);
    if (!perNode.has(k)) perNode.set(k, { t: [], args: e.args });
    perNode.get(k).t.push(e.dur);
  }
  const byOp = new Map(), conv = new Map();
  let total = 0;
  for (const { t, args: a } of perNode.values()) {
    const us = median(t.slice(5)); // the first runs include warm-up
    total += us;
    byOp.set(a.op_name, (byOp.get(a.op_name) || 0) + us);
    if (a.op_name !== 'Conv') continue;
    const shape = (v) => Object.values(v)[0];
    const x = shape(a.input_type_shape[0]), w = shape(a.input_type_shape[1]), y = shape(a.output_type_shape[0]);
    const key = `k${w[2]} @${x[2]} ${w[2] === 3 ? 'O' + w[0] : ''}`.trim();
    const g = conv.get(key) || { nodes: 0, us: 0, flop: 0 };
    g.nodes++, g.us += us, g.flop += 2 * y[2] * y[3] * w[0] * w[1] * w[2] * w[3];
    conv.set(key, g);
  }
  console.log(`${name}: ORT 1 thread, sum of node medians ${(total / 1e3).toFixed(2)} ms over ${runs} runs`);
  for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1])) console.log(`  ${op.padEnd(22)} ${(us / 1e3).toFixed(2)} ms`);
  console.log('Conv groups (kernel, input height, 3x3 output channels): nodes, ms, GFLOP/s');
  for (const [k, g] of [...conv].sort((a, b) => b[1].us - a[1].us))
    console.log(`  ${k.padEnd(14)} ${String(g.nodes).padStart(3)} ${(g.us / 1e3).toFixed(2).padStart(7)} ${(g.flop / g.us / 1e3).toFixed(1).padStart(6)}`);
  fs.rmSync(tmp, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
