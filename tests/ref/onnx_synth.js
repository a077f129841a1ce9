#!/usr/bin/env node
// onnx_synth.js — writes small synthetic ONNX models covering ops, attribute forms and opsets the
// faceplugin models do not use (Softmax before/after opset 13, Clip/Pad/Split/Squeeze input forms, Slice
// with steps, ConvTranspose, DepthToSpace, grouped/dilated/SAME convs, pools with ceil_mode and
// count_include_pad, reductions, Gemm attributes, 5-D Transpose, Resize/Upsample...). test_nn_models_onnx.sh runs each with
// ONNX Runtime (ort_ref.js) and with facekit and compares. Test-only.
//
//   node tests/ref/onnx_synth.js OUTDIR      -> OUTDIR/<case>.onnx, one line per case on stdout
'use strict';
const fs = require('fs');
const path = require('path');

// ---- protobuf wire format (encoder) ------------------------------------------------------------------
function varint(v) {
  let x = BigInt.asUintN(64, BigInt(v));
  const out = [];
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x > 0n) b |= 0x80;
    out.push(b);
  } while (x > 0n);
  return Buffer.from(out);
}
const key = (f, wt) => varint(f * 8 + wt);
const vint = (f, v) => Buffer.concat([key(f, 0), varint(v)]);
const bytes = (f, b) => Buffer.concat([key(f, 2), varint(b.length), b]);
const str = (f, s) => bytes(f, Buffer.from(s));
const f32 = (f, v) => { const b = Buffer.alloc(4); b.writeFloatLE(v); return Buffer.concat([key(f, 5), b]); };
const msg = (...parts) => Buffer.concat(parts.flat());

// ONNX messages (field numbers from onnx.proto)
const FLOAT = 1, INT64 = 7;
function tensor(name, dtype, dims, values) {
  let raw;
  if (dtype === FLOAT) raw = Buffer.from(new Float32Array(values).buffer);
  else raw = Buffer.from(new BigInt64Array(values.map((v) => BigInt(v))).buffer);
  return msg(dims.map((d) => vint(1, d)), vint(2, dtype), str(8, name), bytes(9, raw));
}
function attr(name, v) {
  // v: {i}, {f}, {s}, {ints}, {floats}, {t}
  if ('i' in v) return msg(str(1, name), vint(3, v.i), vint(20, 2));
  if ('f' in v) return msg(str(1, name), f32(2, v.f), vint(20, 1));
  if ('s' in v) return msg(str(1, name), str(4, v.s), vint(20, 3));
  if ('ints' in v) return msg(str(1, name), v.ints.map((x) => vint(8, x)), vint(20, 7));
  if ('floats' in v) return msg(str(1, name), v.floats.map((x) => f32(7, x)), vint(20, 6));
  if ('t' in v) return msg(str(1, name), bytes(5, v.t), vint(20, 4));
  throw new Error('attr');
}
function node(op, ins, outs, attrs = {}, name = '') {
  return msg(ins.map((s) => str(1, s)), outs.map((s) => str(2, s)), str(3, name || `${op}_${outs[0]}`), str(4, op),
    Object.entries(attrs).map(([k, v]) => bytes(5, attr(k, v))));
}
function valueInfo(name, dims) {
  const shape = msg(dims.map((d) => bytes(1, vint(1, d))));
  return msg(str(1, name), bytes(2, bytes(1, msg(vint(1, FLOAT), bytes(2, shape)))));
}
function model(opset, { inputs, outputs, nodes, inits = [] }) {
  const graph = msg(nodes.map((n) => bytes(1, n)), str(2, 'synth'), inits.map((t) => bytes(5, t)),
    inputs.map(([n, d]) => bytes(11, valueInfo(n, d))), outputs.map((n) => bytes(12, msg(str(1, n)))));
  return msg(vint(1, 7), str(2, 'facekit-onnx-synth'), bytes(7, graph), bytes(8, msg(str(1, ''), vint(2, opset))));
}

// deterministic weights
let seed = 12345;
function rnd() {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 * 2 - 1;
}
const randn = (n) => Array.from({ length: n }, () => rnd());
const I64_MAX = '9223372036854775807';

// ---- the cases -----------------------------------------------------------------------------------------
const cases = {};

// Softmax: opset < 13 flattens to 2-D at axis (the loader emits Flatten/Softmax/Reshape); 13 is per-axis.
for (const opset of [11, 13]) {
  cases[`softmax_axis1_op${opset}`] = model(opset, {
    inputs: [['x', [2, 3, 4, 5]]], outputs: ['y', 'z'],
    nodes: [node('Softmax', ['x'], ['y'], { axis: { i: 1 } }), node('Softmax', ['x'], ['z'], { axis: { i: -1 } })],
  });
}
cases.softmax_default_op9 = model(9, { inputs: [['x', [2, 3, 4]]], outputs: ['y'], nodes: [node('Softmax', ['x'], ['y'])] });

// elementwise and activations, binary broadcasting, Clip in both forms
cases.eltwise_op11 = model(11, {
  inputs: [['x', [2, 3, 4, 5]]], outputs: ['o1', 'o2', 'o3', 'o4', 'o5', 'o6'],
  inits: [tensor('lo', FLOAT, [], [-0.3]), tensor('hi', FLOAT, [], [0.5]), tensor('c5', FLOAT, [5], randn(5)),
    tensor('c31', FLOAT, [3, 1, 1], randn(3)), tensor('slope', FLOAT, [3, 1, 1], [0.1, 0.2, 0.3]),
    tensor('two', FLOAT, [], [2])],
  nodes: [
    node('Clip', ['x', 'lo', 'hi'], ['o1']),
    node('Clip', ['x', '', 'hi'], ['c1']),
    node('LeakyRelu', ['c1'], ['l1'], { alpha: { f: 0.2 } }),
    node('Sigmoid', ['l1'], ['s1']),
    node('Add', ['s1', 'c5'], ['o2']),
    node('Abs', ['x'], ['a1']), node('Neg', ['a1'], ['n1']), node('Sub', ['c31', 'n1'], ['d1']),
    node('Sqrt', ['a1'], ['q1']), node('Div', ['q1', 'd1'], ['o3']),
    node('PRelu', ['x', 'slope'], ['p1']), node('Tanh', ['p1'], ['t1']), node('Exp', ['t1'], ['e1']),
    node('Mul', ['e1', 'c31'], ['o4']),
    node('Max', ['x', 'c5'], ['m1']), node('Min', ['m1', 'c31'], ['o5']),
    node('Pow', ['a1', 'two'], ['o6']),
  ],
});
cases.clip_attr_op9 = model(9, {
  inputs: [['x', [1, 4, 3, 3]]], outputs: ['y'],
  nodes: [node('Clip', ['x'], ['c'], { min: { f: -0.25 }, max: { f: 0.4 } }), node('Relu', ['c'], ['y'])],
});

// shape ops: opset-13 Unsqueeze/Squeeze/Split inputs, Slice with steps and negative indices, 5-D Transpose
cases.shape_op13 = model(13, {
  inputs: [['x', [1, 6, 4, 8]]], outputs: ['y1', 'y2', 'y3', 'y4'],
  inits: [tensor('ax0', INT64, [1], [0]), tensor('sp', INT64, [2], [2, 4]),
    tensor('st', INT64, [2], [1, -7]), tensor('en', INT64, [2], [I64_MAX, -1]), tensor('axs', INT64, [2], [1, 3]),
    tensor('stp', INT64, [2], [2, 2]), tensor('shp5', INT64, [5], [1, 2, 3, 4, 8]), tensor('shp4', INT64, [4], [1, 6, 4, 8])],
  nodes: [
    node('Unsqueeze', ['x', 'ax0'], ['u']), node('Squeeze', ['u', 'ax0'], ['s']),
    node('Split', ['s', 'sp'], ['a', 'b'], { axis: { i: 1 } }),
    node('Concat', ['b', 'a'], ['y1'], { axis: { i: 1 } }),
    node('Slice', ['x', 'st', 'en', 'axs', 'stp'], ['y2']),
    node('Reshape', ['x', 'shp5'], ['r5']), node('Transpose', ['r5'], ['t5'], { perm: { ints: [0, 2, 1, 4, 3] } }),
    node('Reshape', ['t5', 'shp4'], ['y3']),
    node('Transpose', ['x'], ['y4']),
  ],
});
cases.shape_op9 = model(9, {
  inputs: [['x', [2, 3, 4, 5]]], outputs: ['y1', 'y2', 'y3', 'y4'],
  inits: [tensor('idx', INT64, [3], [2, 0, -1])],
  nodes: [
    node('Slice', ['x'], ['y1'], { starts: { ints: [1, 1] }, ends: { ints: [I64_MAX, -1] }, axes: { ints: [1, -1] } }),
    node('Split', ['x'], ['p', 'q'], { axis: { i: 3 }, split: { ints: [2, 3] } }),
    node('Flatten', ['q'], ['y2'], { axis: { i: 2 } }),
    node('Gather', ['x', 'idx'], ['y3'], { axis: { i: 1 } }),
    node('Unsqueeze', ['p'], ['u'], { axes: { ints: [0, 3] } }), node('Squeeze', ['u'], ['y4'], { axes: { ints: [0] } }),
  ],
});
cases.cast_identity_op13 = model(13, {
  inputs: [['x', [2, 3, 4]]], outputs: ['y'],
  nodes: [node('Dropout', ['x'], ['d']), node('Identity', ['d'], ['i']), node('Cast', ['i'], ['y'], { to: { i: 1 } })],
});

// Pad: opset-2 attributes and opset-11 inputs, three modes
cases.pad_op9 = model(9, {
  inputs: [['x', [1, 2, 5, 6]]], outputs: ['y'],
  nodes: [node('Pad', ['x'], ['y'], { pads: { ints: [0, 0, 1, 2, 0, 0, 2, 1] }, value: { f: 0.7 } })],
});
cases.pad_op11 = model(11, {
  inputs: [['x', [1, 2, 5, 6]]], outputs: ['y1', 'y2'],
  inits: [tensor('pads', INT64, [8], [0, 0, 1, 2, 0, 0, 2, 1])],
  nodes: [node('Pad', ['x', 'pads'], ['y1'], { mode: { s: 'reflect' } }), node('Pad', ['x', 'pads'], ['y2'], { mode: { s: 'edge' } })],
});

// reductions and matrix products
cases.reduce_gemm_op13 = model(13, {
  inputs: [['x', [2, 3, 4, 5]]], outputs: ['r1', 'r2', 'r3', 'g1', 'm1'],
  inits: [tensor('ax1', INT64, [1], [1]), tensor('B', FLOAT, [6, 4], randn(24)), tensor('C', FLOAT, [6], randn(6)),
    tensor('W', FLOAT, [5, 7], randn(35)), tensor('shp', INT64, [2], [4, 30])],
  nodes: [
    node('ReduceMean', ['x'], ['r1'], { axes: { ints: [2, 3] }, keepdims: { i: 0 } }),
    node('ReduceSum', ['x', 'ax1'], ['r2']),
    node('ReduceMax', ['x'], ['r3'], { axes: { ints: [-1] } }),
    node('Reshape', ['x', 'shp'], ['x2']),
    node('Gemm', ['x2', 'B', 'C'], ['g1'], { transA: { i: 1 }, transB: { i: 1 }, alpha: { f: 0.5 }, beta: { f: 2 } }),
    node('MatMul', ['x', 'W'], ['m1']),
  ],
});

// convolutions: grouped, dilated, asymmetric pads, SAME_UPPER, depthwise + BN, ConvTranspose, DepthToSpace
cases.conv_op11 = model(11, {
  inputs: [['x', [1, 4, 9, 11]]], outputs: ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'],
  inits: [tensor('w1', FLOAT, [6, 2, 3, 3], randn(108)), tensor('b1', FLOAT, [6], randn(6)),
    tensor('w2', FLOAT, [4, 4, 3, 2], randn(96)),
    tensor('wd', FLOAT, [4, 1, 3, 3], randn(36)),
    tensor('g', FLOAT, [4], [1, 0.5, 2, 1.5]), tensor('be', FLOAT, [4], randn(4)), tensor('mu', FLOAT, [4], randn(4)),
    tensor('va', FLOAT, [4], [0.5, 1, 2, 0.25]),
    tensor('wt', FLOAT, [4, 3, 3, 3], randn(108)), tensor('bt', FLOAT, [3], randn(3))],
  nodes: [
    node('Conv', ['x', 'w1', 'b1'], ['c1'], { group: { i: 2 }, dilations: { ints: [2, 1] }, pads: { ints: [0, 1, 2, 1] } }),
    node('Conv', ['x', 'w2'], ['c2'], { auto_pad: { s: 'SAME_UPPER' }, strides: { ints: [2, 2] }, kernel_shape: { ints: [3, 2] } }),
    node('Conv', ['x', 'wd'], ['d1'], { group: { i: 4 }, pads: { ints: [1, 1, 1, 1] } }),
    node('BatchNormalization', ['d1', 'g', 'be', 'mu', 'va'], ['c3'], { epsilon: { f: 1e-3 } }),
    node('ConvTranspose', ['x', 'wt', 'bt'], ['c4'], { strides: { ints: [2, 2] }, pads: { ints: [1, 1, 1, 1] },
      output_padding: { ints: [1, 1] } }),
    node('DepthToSpace', ['x'], ['c5'], { blocksize: { i: 2 }, mode: { s: 'DCR' } }),
    node('DepthToSpace', ['x'], ['c6'], { blocksize: { i: 2 }, mode: { s: 'CRD' } }),
  ],
});

// pools: ceil_mode, count_include_pad both ways, global
cases.pool_op11 = model(11, {
  inputs: [['x', [1, 3, 10, 9]]], outputs: ['p1', 'p2', 'p3', 'p4'],
  nodes: [
    node('MaxPool', ['x'], ['p1'], { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] }, ceil_mode: { i: 1 } }),
    node('AveragePool', ['x'], ['p2'], { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] }, pads: { ints: [1, 1, 1, 1] },
      count_include_pad: { i: 1 } }),
    node('AveragePool', ['x'], ['p3'], { kernel_shape: { ints: [3, 2] }, strides: { ints: [2, 1] }, pads: { ints: [1, 0, 1, 1] } }),
    node('GlobalAveragePool', ['x'], ['p4']),
  ],
});

// Resize (opset 11/13 roi-scales-sizes inputs, the coordinate modes) and Upsample (opset 9)
cases.resize_op13 = model(13, {
  inputs: [['x', [1, 2, 5, 7]]], outputs: ['r1', 'r2', 'r3', 'r4'],
  inits: [tensor('sc2', FLOAT, [4], [1, 1, 2, 2]), tensor('sz', INT64, [4], [1, 2, 9, 4]), tensor('sc3', FLOAT, [4], [1, 1, 3, 1.5])],
  nodes: [
    node('Resize', ['x', '', 'sc2'], ['r1'], { mode: { s: 'nearest' } }),
    node('Resize', ['x', '', '', 'sz'], ['r2'], { mode: { s: 'linear' } }),
    node('Resize', ['x', '', '', 'sz'], ['r3'], { mode: { s: 'linear' }, coordinate_transformation_mode: { s: 'align_corners' } }),
    node('Resize', ['x', '', 'sc3'], ['r4'], { mode: { s: 'nearest' }, coordinate_transformation_mode: { s: 'asymmetric' },
      nearest_mode: { s: 'floor' } }),
  ],
});
cases.resize_op11 = model(11, {
  inputs: [['x', [1, 2, 5, 7]]], outputs: ['r1'],
  inits: [tensor('roi', FLOAT, [0], []), tensor('sc2', FLOAT, [4], [1, 1, 2, 2])],
  nodes: [node('Resize', ['x', 'roi', 'sc2'], ['r1'], { mode: { s: 'linear' }, coordinate_transformation_mode: { s: 'pytorch_half_pixel' } })],
});
cases.upsample_op9 = model(9, {
  inputs: [['x', [1, 2, 5, 7]]], outputs: ['u1', 'u2'],
  inits: [tensor('sc', FLOAT, [4], [1, 1, 2, 3])],
  nodes: [node('Upsample', ['x', 'sc'], ['u1'], { mode: { s: 'nearest' } }), node('Upsample', ['x', 'sc'], ['u2'], { mode: { s: 'linear' } })],
});

const outdir = process.argv[2];
if (!outdir) {
  process.stderr.write('usage: onnx_synth.js OUTDIR\n');
  process.exit(2);
}
fs.mkdirSync(outdir, { recursive: true });
for (const [name, bytesOut] of Object.entries(cases)) {
  fs.writeFileSync(path.join(outdir, `${name}.onnx`), bytesOut);
  console.log(name);
}
