#!/usr/bin/env node
// ort_ref.js — runs an ONNX model with ONNX Runtime (1 thread) and writes its inputs and outputs as .npy: the
// reference our executor is compared with (tests/test_nn_models_onnx.sh). Test-only.
//
//   node tests/ref/ort_ref.js MODEL.onnx OUTDIR [--input NAME=file.npy ...] [--random SEED] [--size HxW]
//                             [--face IMAGE.jpg [--crop X,Y,W,H]] [--outputs NAME,NAME...]
//
// Inputs not given with --input are made: from a JPEG (--face: crop, bilinear resize to the input's H x W,
// grey for 1-channel inputs, (v - 127.5) / 128) or uniform random in [-1, 1) from SEED (default 1).
// --size overrides the first input's H and W (NCHW). ORT refuses sizes other than the declared ones, so
// the model is then re-encoded with those dims, output shapes and value_info dropped (a few lines of protobuf
// wire-format editing below); --outputs runs only up to the named tensors (graph outputs or intermediate
// ones; the rest of the graph is pruned, e.g. a branch that depends on constants baked for the exported size). Writes OUTDIR/in_<name>.npy for every input,
// OUTDIR/<name>.npy for every output ('/' and ':' in names become '_') and OUTDIR/outputs.txt (one name a line).
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, 'node_modules', 'onnxruntime-node'));
const { readNpy, writeNpy } = require('./ort_npy.js');

function usage(msg) {
  if (msg) process.stderr.write(`ort_ref: ${msg}\n`);
  process.stderr.write('usage: ort_ref.js MODEL.onnx OUTDIR [--input NAME=file.npy ...] [--random SEED] [--size HxW] ' +
    '[--face IMAGE.jpg [--crop X,Y,W,H]]\n');
  process.exit(2);
}

// ---- protobuf wire format: just enough to rewrite input dims -------------------------------------------
function readVarint(buf, pos) {
  let v = 0, mul = 1, b;
  do {
    if (pos >= buf.length) throw new Error('truncated varint');
    b = buf[pos++];
    v += (b & 0x7f) * mul;
    mul *= 128;
  } while (b & 0x80);
  return [v, pos];
}

function varint(v) {
  const out = [];
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
  return Buffer.from(out);
}

// Fields of one message: {field, wt, raw (the whole field), val (payload of length-delimited fields)}.
function fields(buf) {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    let key;
    [key, pos] = readVarint(buf, pos);
    const field = Math.floor(key / 8), wt = key % 8;
    let val = null;
    if (wt === 0) [, pos] = readVarint(buf, pos);
    else if (wt === 1) pos += 8;
    else if (wt === 5) pos += 4;
    else if (wt === 2) {
      let len;
      [len, pos] = readVarint(buf, pos);
      val = buf.subarray(pos, pos + len);
      pos += len;
    } else throw new Error(`wire type ${wt}`);
    out.push({ field, wt, raw: buf.subarray(start, pos), val });
  }
  return out;
}

function lenField(field, payload) { return Buffer.concat([varint(field * 8 + 2), varint(payload.length), payload]); }

// Rewrites message BUF: EDIT(f) returns a Buffer (replacement raw field), null (drop) or undefined (keep).
function editMessage(buf, edit) {
  return Buffer.concat(fields(buf).map((f) => {
    const r = edit(f);
    return r === undefined ? f.raw : r === null ? Buffer.alloc(0) : r;
  }));
}

// Drops the nodes and graph outputs that the outputs in ONLY do not need (ORT infers shapes of every node at
// load, so a branch that cannot work at another size must go).
function pruneModel(bytes, only) {
  const strs = (msg, field) => fields(msg).filter((f) => f.field === field).map((f) => f.val.toString());
  const graph = fields(bytes).find((f) => f.field === 7).val;
  const nodes = fields(graph).filter((f) => f.field === 1).map((f) => ({ ins: strs(f.val, 1), outs: strs(f.val, 2) }));
  const need = new Set(only);
  const keep = new Set();
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (!nodes[i].outs.some((o) => need.has(o))) continue;
    keep.add(i);
    nodes[i].ins.forEach((n) => need.add(n));
  }
  return editMessage(bytes, (f) => {
    if (f.field !== 7) return undefined;
    let k = 0;
    const declared = new Set();
    const graphOut = editMessage(f.val, (g) => {
      if (g.field === 1) return keep.has(k++) ? undefined : null;
      if (g.field === 12) {
        const name = strs(g.val, 1)[0];
        if (!only.includes(name)) return null;
        declared.add(name);
      }
      return undefined;
    });
    // intermediate tensors asked for become graph outputs (name only: ORT infers the type)
    const extra = only.filter((n) => !declared.has(n)).map((n) => lenField(12, lenField(1, Buffer.from(n))));
    return lenField(7, Buffer.concat([graphOut, ...extra]));
  });
}

// A model whose first input has dims[2..3] = SIZE, with output shapes and value_info removed.
function resizeModel(bytes, inputName, size) {
  const shapeEdit = (shape) => {
    let i = 0;
    return editMessage(shape, (f) => {
      if (f.field !== 1) return undefined;
      const d = i++;
      if (d !== 2 && d !== 3) return undefined;
      return lenField(1, Buffer.concat([varint(1 * 8 + 0), varint(size[d - 2])]));
    });
  };
  const valueInfo = (vi, onTensor) => editMessage(vi, (f) => (f.field !== 2 ? undefined :
    lenField(2, editMessage(f.val, (g) => (g.field !== 1 ? undefined : lenField(1, onTensor(g.val)))))));
  const nameOf = (vi) => { const n = fields(vi).find((f) => f.field === 1); return n ? n.val.toString() : ''; };
  return editMessage(bytes, (f) => {
    if (f.field !== 7) return undefined; // ModelProto.graph
    return lenField(7, editMessage(f.val, (g) => {
      if (g.field === 13) return null; // value_info
      if (g.field === 11 && nameOf(g.val) === inputName) // input
        return lenField(11, valueInfo(g.val, (t) => editMessage(t, (h) => (h.field === 2 ? lenField(2, shapeEdit(h.val)) : undefined))));
      if (g.field === 12) // output: drop the declared shape
        return lenField(12, valueInfo(g.val, (t) => editMessage(t, (h) => (h.field === 2 ? null : undefined))));
      return undefined;
    }));
  });
}

function fileName(name) { return name.replace(/[/:\\]/g, '_'); }

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

// A face crop as an NCHW float32 tensor of SHAPE [1, C, H, W].
function faceTensor(file, crop, shape) {
  const jpeg = require(path.join(__dirname, 'node_modules', 'jpeg-js'));
  const img = jpeg.decode(fs.readFileSync(file), { useTArray: true, formatAsRGBA: true });
  const [cx, cy, cw, ch] = crop || [0, 0, img.width, img.height];
  const [, C, H, W] = shape;
  const out = new Float32Array(C * H * W);
  const px = (x, y, c) => img.data[(y * img.width + x) * 4 + c];
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      // pixel centres (half-pixel) mapped into the crop, clamped
      const sx = Math.min(Math.max(cx + (x + 0.5) * cw / W - 0.5, 0), img.width - 1);
      const sy = Math.min(Math.max(cy + (y + 0.5) * ch / H - 0.5, 0), img.height - 1);
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const x1 = Math.min(x0 + 1, img.width - 1), y1 = Math.min(y0 + 1, img.height - 1);
      const fx = sx - x0, fy = sy - y0;
      const rgb = [0, 1, 2].map((c) => (px(x0, y0, c) * (1 - fx) + px(x1, y0, c) * fx) * (1 - fy) +
        (px(x0, y1, c) * (1 - fx) + px(x1, y1, c) * fx) * fy);
      for (let c = 0; c < C; c++) {
        const v = C === 1 ? 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] : rgb[c % 3];
        out[(c * H + y) * W + x] = (v - 127.5) / 128;
      }
    }
  }
  return out;
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.length < 2) usage();
  const [model, outdir] = argv;
  const given = {};
  let seed = 1, size = null, face = null, crop = null, only = null;
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i], v = argv[i + 1];
    if (a === '--input' && v && v.includes('=')) { given[v.slice(0, v.indexOf('='))] = v.slice(v.indexOf('=') + 1); i++; }
    else if (a === '--random' && v) { seed = Number(v); i++; }
    else if (a === '--size' && /^\d+x\d+$/.test(v || '')) { size = v.split('x').map(Number); i++; }
    else if (a === '--face' && v) { face = v; i++; }
    else if (a === '--outputs' && v) { only = v.split(','); i++; }
    else if (a === '--crop' && /^\d+,\d+,\d+,\d+$/.test(v || '')) { crop = v.split(',').map(Number); i++; }
    else usage(`bad argument ${a}`);
  }
  ort.env.logLevel = 'error';
  const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', logSeverityLevel: 3 };
  let sess = await ort.InferenceSession.create(model, opts);
  if (size || only) {
    const first = sess.inputNames[0];
    await sess.release();
    let bytes = fs.readFileSync(model);
    if (size) bytes = resizeModel(bytes, first, size);
    if (only) bytes = pruneModel(bytes, only);
    sess = await ort.InferenceSession.create(bytes, opts);
  }
  fs.mkdirSync(outdir, { recursive: true });
  const feeds = {};
  const rnd = mulberry32(seed);
  sess.inputMetadata.forEach((meta, idx) => {
    const name = meta.name;
    if (given[name]) {
      const t = readNpy(given[name]);
      feeds[name] = new ort.Tensor(t.dtype, t.data, t.shape);
      return;
    }
    if (meta.type !== 'float32') throw new Error(`input ${name}: type ${meta.type}, pass it with --input`);
    const shape = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    if (size && idx === 0) {
      if (shape.length !== 4) throw new Error(`--size needs a 4-D input, ${name} is ${shape.length}-D`);
      shape[2] = size[0];
      shape[3] = size[1];
    }
    const n = shape.reduce((a, b) => a * b, 1);
    let data;
    if (face) {
      if (shape.length !== 4) throw new Error(`--face needs a 4-D NCHW input, ${name} is ${shape.length}-D`);
      data = faceTensor(face, crop, shape);
    } else {
      data = new Float32Array(n);
      for (let i = 0; i < n; i++) data[i] = rnd() * 2 - 1;
    }
    feeds[name] = new ort.Tensor('float32', data, shape);
  });
  for (const [name, t] of Object.entries(feeds)) writeNpy(path.join(outdir, `in_${fileName(name)}.npy`), t.type, t.dims, t.data);
  const wanted = only || sess.outputNames;
  const res = await sess.run(feeds, wanted);
  const names = [];
  for (const name of wanted) {
    const t = res[name];
    writeNpy(path.join(outdir, `${fileName(name)}.npy`), t.type, t.dims, t.data);
    names.push(name);
  }
  fs.writeFileSync(path.join(outdir, 'outputs.txt'), names.join('\n') + '\n');
}

main().catch((e) => { process.stderr.write(`ort_ref: ${e.message || e}\n`); process.exit(1); });
