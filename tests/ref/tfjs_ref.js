#!/usr/bin/env node
// tfjs_ref.js — test-only reference for the TF.js front-end: runs a TF.js graph model with @tensorflow/tfjs
// (pure JS CPU backend) and writes its inputs and outputs as .npy (float32, C order), so that
// tests/test_nn_models_tfjs.sh can compare `facekit nn run` with them. Never part of the product.
//
//   node tests/ref/tfjs_ref.js MODEL.json OUTDIR [--input NAME=file.npy]... [--random SEED] [--size HxW]
//                              [--image face.jpg]
//
// Inputs: --input files, else an image (--image: JPEG decoded with jpeg-js, resized bilinearly, values in
// [0,1]), else seeded uniform random values in [0,1). Unknown sizes: batch 1, --size for H and W.
// Written: OUTDIR/in/<input>.npy and OUTDIR/<output>.npy, names sanitised ('/' and ':' -> '_').
// Outputs are the signature's when it names them, else every node nobody reads — the rule of src/nn/tfjs.c.
// OUTDIR/io.txt lists "input NAME FILE" and "output NAME FILE" lines for the shell test.
//
//   node tests/ref/tfjs_ref.js --compare OURS.npy REF.npy
// prints "max_err N" with N = max |ours - ref| / max(1, |ref|) (exit 1 on a shape mismatch or unreadable file).
'use strict';
const fs = require('fs');
const path = require('path');

// tfjs prints a hint about tfjs-node on load; keep stdout clean for the caller.
const origLog = console.log;
console.log = () => {};
const tf = require('@tensorflow/tfjs');
console.log = origLog;

function usage() {
  process.stderr.write('usage: tfjs_ref.js MODEL.json OUTDIR [--input NAME=file.npy] [--random SEED] [--size HxW] [--image f.jpg]\n');
  process.exit(2);
}

// ---- .npy (float32 little-endian, C order) ----
function npyRead(file) {
  const b = fs.readFileSync(file);
  if (b[0] !== 0x93 || b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = b.toString('latin1', hstart, hstart + hlen);
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header))
    throw new Error(`${file}: only float32 C-order .npy is supported`);
  const m = header.match(/'shape':\s*\(([^)]*)\)/);
  const shape = m[1].split(',').map(s => s.trim()).filter(s => s.length).map(Number);
  const n = shape.reduce((a, x) => a * x, 1);
  const off = hstart + hlen;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = b.readFloatLE(off + 4 * i);
  return { shape, data };
}

function npyWrite(file, shape, data) {
  const sh = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${sh}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const h = Buffer.alloc(10);
  h[0] = 0x93;
  h.write('NUMPY', 1, 'latin1');
  h[6] = 1;
  h[7] = 0;
  h.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(4 * data.length);
  for (let i = 0; i < data.length; i++) body.writeFloatLE(data[i], 4 * i);
  fs.writeFileSync(file, Buffer.concat([h, Buffer.from(header, 'latin1'), body]));
}

const sanitize = name => name.replace(/[/:]/g, '_');

// ---- inputs ----
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// JPEG -> [H,W,C] float in [0,1], bilinear resize with half-pixel centres.
function imageInput(file, shape) {
  const jpeg = require('jpeg-js');
  const img = jpeg.decode(fs.readFileSync(file), { useTArray: true, formatAsRGBA: true });
  const [, H, W, C] = shape;
  const out = new Float32Array(H * W * C);
  const sy = img.height / H, sx = img.width / W;
  const px = (x, y, c) => img.data[4 * (y * img.width + x) + c] / 255;
  for (let y = 0; y < H; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), img.height - 1);
    const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, img.height - 1), wy = fy - y0;
    for (let x = 0; x < W; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), img.width - 1);
      const x0 = Math.floor(fx), x1 = Math.min(x0 + 1, img.width - 1), wx = fx - x0;
      const rgb = [0, 1, 2].map(c =>
        (1 - wy) * ((1 - wx) * px(x0, y0, c) + wx * px(x1, y0, c)) + wy * ((1 - wx) * px(x0, y1, c) + wx * px(x1, y1, c)));
      for (let c = 0; c < C; c++)
        out[(y * W + x) * C + c] = C === 3 ? rgb[c] : 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
    }
  }
  return out;
}

function compare(a, b) {
  const x = npyRead(a), y = npyRead(b);
  if (x.shape.join(',') !== y.shape.join(',')) {
    process.stdout.write(`shape_mismatch [${x.shape}] vs [${y.shape}]\n`);
    process.exit(1);
  }
  let err = 0;
  for (let i = 0; i < x.data.length; i++) {
    const e = Math.abs(x.data[i] - y.data[i]) / Math.max(1, Math.abs(y.data[i]));
    if (!(e <= err)) err = e; // NaN counts as the largest error
  }
  process.stdout.write(`max_err ${err}\n`);
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === '--compare' && argv.length === 3) return compare(argv[1], argv[2]);
  if (argv.length < 2) usage();
  const modelPath = argv[0], outDir = argv[1];
  const given = {};
  let seed = 1, size = null, image = null;
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i], v = argv[i + 1];
    if (a === '--input' && v) { const k = v.indexOf('='); given[v.slice(0, k)] = v.slice(k + 1); i++; }
    else if (a === '--random' && v) { seed = Number(v); i++; }
    else if (a === '--size' && v) { size = v.split('x').map(Number); i++; }
    else if (a === '--image' && v) { image = v; i++; }
    else usage();
  }
  fs.mkdirSync(path.join(outDir, 'in'), { recursive: true });

  const json = JSON.parse(fs.readFileSync(modelPath, 'utf8'));
  if (size) // tfjs checks inputs against the Placeholder shape: declare the requested image size there
    for (const n of json.modelTopology.node) {
      const dim = n.op === 'Placeholder' && n.attr.shape && n.attr.shape.shape && n.attr.shape.shape.dim;
      if (dim && dim.length === 4) { dim[1].size = String(size[0]); dim[2].size = String(size[1]); }
    }
  const dir = path.dirname(modelPath);
  const specs = [], bufs = [];
  for (const g of json.weightsManifest) {
    for (const p of g.paths) bufs.push(fs.readFileSync(path.join(dir, p)));
    specs.push(...g.weights);
  }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.length);
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: json.modelTopology, weightSpecs: specs, weightData, format: json.format,
    generatedBy: json.generatedBy, convertedBy: json.convertedBy, signature: json.signature,
    userDefinedMetadata: json.userDefinedMetadata, modelInitializer: json.modelInitializer,
  }));

  const nodes = json.modelTopology.node;
  const io = [];
  const feed = {};
  const rand = mulberry32(seed);
  for (const n of nodes.filter(n => n.op === 'Placeholder')) {
    const dims = ((n.attr.shape && n.attr.shape.shape && n.attr.shape.shape.dim) || []).map(d => Number(d.size || -1));
    const shape = dims.map((d, i) => (d >= 0 ? d : i === 0 ? 1 : (dims.length === 4 && i === 3) ? 3 : 224));
    if (size && shape.length === 4) { shape[1] = size[0]; shape[2] = size[1]; }
    let data;
    if (given[n.name]) {
      const t = npyRead(given[n.name]);
      data = t.data;
      shape.splice(0, shape.length, ...t.shape);
    } else if (image) {
      data = imageInput(image, shape);
    } else {
      data = new Float32Array(shape.reduce((a, x) => a * x, 1));
      for (let i = 0; i < data.length; i++) data[i] = rand();
    }
    const file = path.join(outDir, 'in', sanitize(n.name) + '.npy');
    npyWrite(file, shape, data);
    io.push(`input ${n.name} ${file}`);
    feed[n.name] = tf.tensor(data, shape, 'float32');
  }

  let outs = [];
  if (json.signature && json.signature.outputs && Object.keys(json.signature.outputs).length) {
    for (const [k, v] of Object.entries(json.signature.outputs)) outs.push((v.name || k).replace(/:0$/, ''));
  } else {
    const read = new Set();
    for (const n of nodes) for (const i of n.input || []) if (!i.startsWith('^')) read.add(i.replace(/:\d+$/, ''));
    outs = nodes.filter(n => !read.has(n.name) && !['Const', 'Placeholder', 'NoOp'].includes(n.op)).map(n => n.name);
  }
  const warn = console.warn;
  console.warn = () => {}; // "use model.execute()" hint
  let res = await model.executeAsync(feed, outs);
  console.warn = warn;
  if (!Array.isArray(res)) res = [res];
  for (let i = 0; i < outs.length; i++) {
    const t = res[i].dtype === 'float32' ? res[i] : res[i].cast('float32');
    const file = path.join(outDir, sanitize(outs[i]) + '.npy');
    npyWrite(file, t.shape, t.dataSync());
    io.push(`output ${outs[i]} ${file}`);
  }
  fs.writeFileSync(path.join(outDir, 'io.txt'), io.join('\n') + '\n');
}

main().catch(e => {
  process.stderr.write(`tfjs_ref.js: ${e.stack || e}\n`);
  process.exit(1);
});
