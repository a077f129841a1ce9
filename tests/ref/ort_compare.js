#!/usr/bin/env node
// ort_compare.js — compares our outputs with the ONNX Runtime reference written by ort_ref.js.
//
//   node tests/ref/ort_compare.js REFDIR OURDIR [--tol 1e-4] [--label TEXT]
//
// For every name in REFDIR/outputs.txt: shapes must match and max |ours - ref| / max(1, |ref|) <= tol (NaN
// anywhere fails). Prints one line per output ("LABEL OUTPUT max_err E shape [..] ok|FAIL"); exit 1 on a failure.
'use strict';
const fs = require('fs');
const path = require('path');
const { readNpy } = require('./ort_npy.js');

const argv = process.argv.slice(2);
if (argv.length < 2) {
  process.stderr.write('usage: ort_compare.js REFDIR OURDIR [--tol 1e-4] [--label TEXT]\n');
  process.exit(2);
}
const [refdir, ourdir] = argv;
let tol = 1e-4, label = path.basename(refdir);
for (let i = 2; i < argv.length; i++) {
  if (argv[i] === '--tol') tol = Number(argv[++i]);
  else if (argv[i] === '--label') label = argv[++i];
}
const names = fs.readFileSync(path.join(refdir, 'outputs.txt'), 'utf8').split('\n').filter((s) => s.length);
let failed = 0;
for (const name of names) {
  const file = `${name.replace(/[/:\\]/g, '_')}.npy`;
  const ref = readNpy(path.join(refdir, file));
  let ours;
  try {
    ours = readNpy(path.join(ourdir, file));
  } catch (e) {
    console.log(`${label} ${name} missing: ${e.message} FAIL`);
    failed++;
    continue;
  }
  const shapeOk = ref.shape.length === ours.shape.length && ref.shape.every((d, i) => d === ours.shape[i]);
  let err = 0, worst = -1;
  if (shapeOk) {
    for (let i = 0; i < ref.data.length; i++) {
      const r = Number(ref.data[i]), o = Number(ours.data[i]);
      const e = Math.abs(o - r) / Math.max(1, Math.abs(r));
      if (!(e <= err)) { // NaN-safe: a NaN error always becomes the worst
        err = Number.isNaN(e) ? Infinity : e;
        worst = i;
      }
    }
  }
  const ok = shapeOk && err <= tol;
  const where = worst >= 0 ? ` at ${worst} (ours ${Number(ours.data[worst])}, ref ${Number(ref.data[worst])})` : '';
  console.log(`${label} ${name} max_err ${shapeOk ? err.toExponential(2) : 'n/a'} shape [${ours.shape}]` +
    `${shapeOk ? '' : ` vs ref [${ref.shape}]`}${ok ? '' : where} ${ok ? 'ok' : 'FAIL'}`);
  if (!ok) failed++;
}
process.exit(failed ? 1 : 0);
