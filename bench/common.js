/*
 * bench/common.js — what bench_nn.js and bench_pipeline.js share: command-line options, the median, the
 * deterministic inputs `facekit nn bench` uses, and the test-only ONNX Runtime from tests/ref/node_modules.
 */
'use strict';
const path = require('path');

const root = path.resolve(__dirname, '..');

/* the value after NAME in ARGS, or DEF */
function opt(args, name, def) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
}

function median(a) {
  const s = [...a].sort((x, y) => x - y);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* The inputs `facekit nn bench` uses: x = LCG(seed) >> 8, scaled to [-1, 1); SEEDBOX.s carries the state. */
function lcgFill(seedBox, n) {
  const a = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    seedBox.s = (Math.imul(seedBox.s, 1664525) + 1013904223) >>> 0;
    a[k] = (seedBox.s >>> 8) / 16777216 * 2 - 1;
  }
  return a;
}

function loadOrt() {
  return require(path.join(root, 'tests/ref/node_modules/onnxruntime-node'));
}

module.exports = { root, opt, median, lcgFill, loadOrt };
