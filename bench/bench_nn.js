#!/usr/bin/env node
/*
 * bench_nn.js — facekit's executor against ONNX Runtime, model by model, 1 thread (the `make bench-nn` target).
 *
 *   node bench/bench_nn.js --timer build/bench/nn_time --flush build/bench/fk_flush_model [--rounds 7]
 *                          [--runs 20] [--round-ms 100] [--threads 1] [--models fr_detect,fr_feature] [--markdown]
 *
 * For every faceplugin model: ORT (onnxruntime-node from tests/ref/node_modules, graph optimisation 'all',
 * intra/inter-op threads = --threads, sequential) gets a copy of the model whose weights |w| < 1e-10 were set to
 * zero by fk_flush_model (facekit runs with FTZ/DAZ, so both start from flushed math). Both get the same input:
 * the LCG `facekit nn bench` fills its inputs with (seed 12345). Rounds alternate ours, ORT, ours, ORT ...;
 * ours run in one warm `nn_time MODEL serve` process per model (each round: N timed runs through the public
 * API, medians of wall time and of thread CPU time), ORT in its warm session in this process (N timed runs,
 * medians of wall time and of process CPU time, which on one intra-op thread is the inference thread's); the
 * table shows the median over rounds and the ratios ours / ORT (<= 1.0: we are at least as fast). On a loaded
 * machine the CPU-time ratio is the steadier one.
 * Runs per round: at least --runs, and for fast models enough for a round to last about --round-ms (from a
 * first timing of ORT), the same count for both: 20 runs of a 0.05-0.5 ms model are over in a few ms, and this
 * VM's speed drifts by tens of percent over seconds, so both sides must be both warm and timed close together
 * (a fresh process per round, as before, measured its own start-up as much as the kernels).
 */
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync, spawn } = require('child_process');

const { root, opt: optIn, median, lcgFill, loadOrt } = require('./common');
const args = process.argv.slice(2);
const opt = (name, def) => optIn(args, name, def);
const timer = path.resolve(opt('--timer', path.join(root, 'build/bench/nn_time')));
const flushTool = path.resolve(opt('--flush', path.join(root, 'build/bench/fk_flush_model')));
const rounds = parseInt(opt('--rounds', '7'), 10);
const runs = parseInt(opt('--runs', '20'), 10);
const roundMs = parseFloat(opt('--round-ms', '100'));
const threads = parseInt(opt('--threads', '1'), 10);
const markdown = args.includes('--markdown');
const all = ['fr_detect', 'fr_landmark', 'fr_feature', 'fr_liveness', 'fr_pose', 'fr_age', 'fr_gender', 'fr_eye',
             'fr_expression'];
const models = opt('--models', all.join(',')).split(',');
const modelsDir = process.env.FK_MODELS_DIR || path.join(root, 'models');

const ort = loadOrt();

// One warm nn_time process for a model: run(n) times n runs and resolves to its {median_ms, median_cpu_ms}.
function oursServer(modelPath) {
  const p = spawn(timer, [modelPath, 'serve', String(threads)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let buf = '', waiting = null, failed = null;
  p.stdout.on('data', (d) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0;) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (waiting) {
        const w = waiting;
        waiting = null;
        w.resolve(JSON.parse(line));
      }
    }
  });
  p.on('exit', (code) => {
    failed = new Error(`nn_time ${modelPath} exited (${code})`);
    if (waiting) waiting.reject(failed);
  });
  return {
    run: (n) => new Promise((resolve, reject) => {
      if (failed) return reject(failed);
      waiting = { resolve, reject };
      p.stdin.write(`${n}\n`);
    }),
    close: () => p.stdin.end('0\n'),
  };
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
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < 5; k++) await sess.run(feeds);
    const oneMs = Number(process.hrtime.bigint() - t0) / 5e6;
    const n = Math.max(runs, Math.ceil(roundMs / oneMs));
    const a = [], ac = [], b = [], bc = [];
    const srv = oursServer(modelPath);
    await srv.run(3); // load and warm-up
    for (let r = 0; r < rounds; r++) {
      const o = await srv.run(n);
      a.push(o.median_ms);
      ac.push(o.median_cpu_ms);
      const t = [], tc = [];
      for (let k = 0; k < n; k++) {
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
    srv.close();
    const row = { model: name, ours: median(a), ort: median(b), oursCpu: median(ac), ortCpu: median(bc), zeroed, n };
    row.ratio = row.ours / row.ort;
    row.ratioCpu = row.oursCpu / row.ortCpu;
    rows.push(row);
    process.stderr.write(`${name}: wall ours ${row.ours.toFixed(3)} ms, ORT ${row.ort.toFixed(3)} ms, ratio ` +
                         `${row.ratio.toFixed(2)}; cpu ours ${row.oursCpu.toFixed(3)}, ORT ${row.ortCpu.toFixed(3)}, ` +
                         `ratio ${row.ratioCpu.toFixed(2)}\n`);
    if (sess.release) await sess.release();
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  const head = `threads ${threads}, ${rounds} alternating rounds x runs per round (>= ${runs}, ~${roundMs} ms a round), medians in ms`;
  if (markdown) {
    console.log('| model | runs/round | facekit ms | ORT 1.30 ms | ratio | facekit CPU ms | ORT CPU ms | CPU ratio |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows)
      console.log(`| ${r.model} | ${r.n} | ${r.ours.toFixed(3)} | ${r.ort.toFixed(3)} | ${r.ratio.toFixed(2)} | ` +
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
