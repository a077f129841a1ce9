#!/usr/bin/env node
/*
 * bench_nn.js — facekit's executor against ONNX Runtime, model by model, 1 thread (the `make bench-nn` target).
 *
 *   node bench/bench_nn.js --timer build/bench/nn_time --flush build/bench/fk_flush_model [--rounds 7]
 *                          [--runs 20] [--threads 1] [--models fr_detect,fr_feature] [--markdown]
 *
 * For every faceplugin model: ORT (onnxruntime-node from tests/ref/node_modules, graph optimisation 'all',
 * intra/inter-op threads = --threads, sequential) gets a copy of the model whose weights |w| < 1e-10 were set to
 * zero by fk_flush_model (facekit runs with FTZ/DAZ, so both start from flushed math). Both get the same input:
 * the LCG `facekit nn bench` fills its inputs with (seed 12345). Rounds alternate ours, ORT, ours, ORT ...;
 * each round is one nn_time process (N timed runs through the public API after warm-up: medians of wall time
 * and of thread CPU time) and N timed ORT runs (medians of wall time and of process CPU time, which on one
 * intra-op thread is the inference thread's); the table shows the median over rounds and the ratios ours / ORT
 * (<= 1.0: we are at least as fast). On a loaded machine the CPU-time ratio is the steadier one.
 */
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const { root, opt: optIn, median, lcgFill, loadOrt } = require('./common');
const args = process.argv.slice(2);
const opt = (name, def) => optIn(args, name, def);
const timer = path.resolve(opt('--timer', path.join(root, 'build/bench/nn_time')));
const flushTool = path.resolve(opt('--flush', path.join(root, 'build/bench/fk_flush_model')));
const rounds = parseInt(opt('--rounds', '7'), 10);
const runs = parseInt(opt('--runs', '20'), 10);
const threads = parseInt(opt('--threads', '1'), 10);
const markdown = args.includes('--markdown');
const all = ['fr_detect', 'fr_landmark', 'fr_feature', 'fr_liveness', 'fr_pose', 'fr_age', 'fr_gender', 'fr_eye',
             'fr_expression'];
const models = opt('--models', all.join(',')).split(',');
const modelsDir = process.env.FK_MODELS_DIR || path.join(root, 'models');

const ort = loadOrt();

function ours(modelPath) {
  const out = execFileSync(timer, [modelPath, String(runs), String(threads)], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop());
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fk-bench-nn-'));
  const rows = [];
  for (const name of models) {
    const modelPath = path.join(modelsDir, 'faceplugin', name + '.onnx');
    if (!fs.existsSync(modelPath)) throw new Error(`${modelPath} missing (run scripts/setup)`);
    const flushed = path.join(tmp, name + '.onnx');
    const zeroed = parseInt(execFileSync(flushTool, [modelPath, flushed], { encoding: 'utf8' }).trim(), 10);
    const sess = await ort.InferenceSession.create(flushed, {
      graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    });
    const feeds = {};
    const seed = { s: 12345 };
    for (const inName of sess.inputNames) {
      const meta = sess.inputMetadata ? sess.inputMetadata.find((m) => m.name === inName) : null;
      let dims = meta && meta.shape ? meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1)) : null;
      if (!dims) throw new Error(`${name}: cannot read the shape of input ${inName}`);
      const n = dims.reduce((x, y) => x * y, 1);
      feeds[inName] = new ort.Tensor('float32', lcgFill(seed, n), dims);
    }
    for (let k = 0; k < 3; k++) await sess.run(feeds);
    const a = [], ac = [], b = [], bc = [];
    for (let r = 0; r < rounds; r++) {
      const o = ours(modelPath);
      a.push(o.median_ms);
      ac.push(o.median_cpu_ms);
      const t = [], tc = [];
      for (let k = 0; k < runs; k++) {
        const c0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        await sess.run(feeds);
        t.push(Number(process.hrtime.bigint() - t0) / 1e6);
        const c = process.cpuUsage(c0);
        tc.push((c.user + c.system) / 1e3);
      }
      b.push(median(t));
      bc.push(median(tc));
    }
    const row = { model: name, ours: median(a), ort: median(b), oursCpu: median(ac), ortCpu: median(bc), zeroed };
    row.ratio = row.ours / row.ort;
    row.ratioCpu = row.oursCpu / row.ortCpu;
    rows.push(row);
    process.stderr.write(`${name}: wall ours ${row.ours.toFixed(3)} ms, ORT ${row.ort.toFixed(3)} ms, ratio ` +
                         `${row.ratio.toFixed(2)}; cpu ours ${row.oursCpu.toFixed(3)}, ORT ${row.ortCpu.toFixed(3)}, ` +
                         `ratio ${row.ratioCpu.toFixed(2)}\n`);
    if (sess.release) await sess.release();
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  const head = `threads ${threads}, ${rounds} alternating rounds x ${runs} runs, medians in ms`;
  if (markdown) {
    console.log('| model | facekit ms | ORT 1.30 ms | ratio | facekit CPU ms | ORT CPU ms | CPU ratio |');
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    for (const r of rows)
      console.log(`| ${r.model} | ${r.ours.toFixed(3)} | ${r.ort.toFixed(3)} | ${r.ratio.toFixed(2)} | ` +
                  `${r.oursCpu.toFixed(3)} | ${r.ortCpu.toFixed(3)} | ${r.ratioCpu.toFixed(2)} |`);
    console.log(`\n(${head}; ORT weights flushed below 1e-10)`);
  } else {
    console.log(head);
    console.log('model          facekit_ms    ort_ms  ratio   fk_cpu_ms  ort_cpu_ms  cpu_ratio  (weights flushed for ORT)');
    for (const r of rows)
      console.log(`${r.model.padEnd(14)} ${r.ours.toFixed(3).padStart(10)} ${r.ort.toFixed(3).padStart(9)}  ` +
                  `${r.ratio.toFixed(2).padStart(5)}  ${r.oursCpu.toFixed(3).padStart(10)} ${r.ortCpu.toFixed(3).padStart(11)}` +
                  `  ${r.ratioCpu.toFixed(2).padStart(9)}  (${r.zeroed})`);
  }
}

main().catch((e) => {
  console.error(`bench_nn: ${e.message}`);
  process.exit(1);
});
