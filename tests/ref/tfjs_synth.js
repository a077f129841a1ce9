#!/usr/bin/env node
// tfjs_synth.js — test-only: writes small hand-built TF.js graph models (model.json + one weight shard) that
// use the TF ops and attribute forms the face models in models/human do not: explicit and dilated
// convolutions, depthwise multipliers, Conv2DBackpropInput, StridedSlice masks (ellipsis, new axis, shrink,
// negative strides), Slice, Pack, Transpose, MirrorPad, PadV2, nearest and align-corners resizes,
// DepthToSpace, AvgPool/MaxPool SAME, MatMul transposes, the unary and binary ops, AddN, Cast, reductions,
// FusedBatchNormV3, and uint8 / uint16 / float16 quantised weights. tests/test_nn_models_tfjs.sh runs each
// through tests/ref/tfjs_ref.js and `facekit nn run` and compares.
//
//   node tests/ref/tfjs_synth.js OUTDIR        -> OUTDIR/<name>/model.json, OUTDIR/<name>/weights.bin
'use strict';
const fs = require('fs');
const path = require('path');

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

const b64 = s => Buffer.from(s, 'latin1').toString('base64');
const A = {
  i: v => ({ i: String(v) }),
  f: v => ({ f: v }),
  b: v => ({ b: v }),
  s: v => ({ s: b64(v) }),
  ints: v => ({ list: { i: v.map(String) } }),
  strs: v => ({ list: { s: v.map(b64) } }),
  T: (t = 'DT_FLOAT') => ({ type: t }),
};

function floatToHalf(f) {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, f);
  const x = b.getUint32(0);
  const sign = (x >>> 16) & 0x8000;
  let e = ((x >>> 23) & 0xff) - 127 + 15;
  const m = x & 0x7fffff;
  if (e <= 0) return sign; // tiny values flush to zero: fine for test weights
  if (e >= 31) return sign | 0x7c00;
  return sign | (e << 10) | Math.round(m / 8192) & 0x3ff;
}

class Model {
  constructor(name, seed) {
    this.name = name;
    this.nodes = [];
    this.weights = [];
    this.bytes = [];
    this.rand = mulberry32(seed);
  }
  node(name, op, input, attr = {}) {
    this.nodes.push({ name, op, input, attr });
    return name;
  }
  input(name, shape) {
    return this.node(name, 'Placeholder', [], {
      dtype: A.T(), shape: { shape: { dim: shape.map(s => ({ size: String(s) })) } },
    });
  }
  // A constant: VALUES (array) or random in [lo, hi); quant: undefined | 'uint8' | 'uint16' | 'float16'.
  konst(name, shape, values, { dtype = 'float32', quant, lo = -1, hi = 1 } = {}) {
    const n = shape.reduce((a, x) => a * x, 1);
    const v = values || Array.from({ length: n }, () => lo + (hi - lo) * this.rand());
    const spec = { name, shape, dtype };
    let buf;
    if (dtype === 'int32') {
      buf = Buffer.alloc(4 * n);
      v.forEach((x, i) => buf.writeInt32LE(x, 4 * i));
    } else if (!quant) {
      buf = Buffer.alloc(4 * n);
      v.forEach((x, i) => buf.writeFloatLE(x, 4 * i));
    } else if (quant === 'float16') {
      buf = Buffer.alloc(2 * n);
      v.forEach((x, i) => buf.writeUInt16LE(floatToHalf(x), 2 * i));
      spec.quantization = { dtype: 'float16', original_dtype: 'float32' };
    } else {
      const levels = quant === 'uint8' ? 255 : 65535, size = quant === 'uint8' ? 1 : 2;
      const min = Math.min(...v), max = Math.max(...v), scale = (max - min) / levels || 1;
      buf = Buffer.alloc(size * n);
      v.forEach((x, i) => {
        const q = Math.round((x - min) / scale);
        if (size === 1) buf.writeUInt8(q, i); else buf.writeUInt16LE(q, 2 * i);
      });
      spec.quantization = { dtype: quant, scale, min };
    }
    this.weights.push(spec);
    this.bytes.push(buf);
    this.node(name, 'Const', [], { dtype: A.T(dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT') });
    return name;
  }
  ints(name, values, shape = [values.length]) {
    return this.konst(name, shape, values, { dtype: 'int32' });
  }
  write(dir) {
    const d = path.join(dir, this.name);
    fs.mkdirSync(d, { recursive: true });
    const json = {
      format: 'graph-model', generatedBy: 'tfjs_synth.js', convertedBy: null,
      modelTopology: { node: this.nodes, library: {}, versions: { producer: 1 } },
      weightsManifest: [{ paths: ['weights.bin'], weights: this.weights }],
    };
    fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify(json, null, 1));
    fs.writeFileSync(path.join(d, 'weights.bin'), Buffer.concat(this.bytes));
  }
}

const NHWC = { data_format: A.s('NHWC') };
const conv = (strides, padding, extra = {}) => ({
  ...NHWC, T: A.T(), strides: A.ints([1, ...strides, 1]), padding: A.s(padding),
  dilations: A.ints([1, 1, 1, 1]), ...extra,
});

const models = [];

// Convolutions: explicit padding, dilation, fused LeakyRelu / Relu6 / Prelu, depthwise multiplier 2,
// quantised filters (uint8, uint16, float16).
{
  const m = new Model('convs', 1);
  m.input('x', [-1, 9, 11, 4]);
  m.konst('w1', [3, 3, 4, 6], null, { quant: 'uint8' });
  m.node('c1', 'Conv2D', ['x', 'w1'], conv([2, 2], 'EXPLICIT', { explicit_paddings: A.ints([0, 0, 1, 2, 2, 1, 0, 0]) }));
  m.konst('w2', [3, 3, 6, 5], null, { quant: 'float16' });
  m.konst('b2', [5], null, { quant: 'uint16' });
  m.node('c2', '_FusedConv2D', ['c1', 'w2', 'b2'], conv([1, 1], 'SAME', {
    dilations: A.ints([1, 2, 2, 1]), fused_ops: A.strs(['BiasAdd', 'LeakyRelu']), num_args: A.i(1),
    leakyrelu_alpha: A.f(0.1), epsilon: A.f(0),
  }));
  m.konst('dw', [3, 3, 5, 2]);
  m.konst('db', [10]);
  m.node('c3', 'FusedDepthwiseConv2dNative', ['c2', 'dw', 'db'], conv([2, 2], 'SAME', {
    fused_ops: A.strs(['BiasAdd', 'Relu6']), num_args: A.i(1),
  }));
  m.konst('w4', [1, 1, 10, 3]);
  m.konst('b4', [3]);
  m.konst('a4', [3], null, { lo: 0, hi: 0.5 });
  m.node('c4', '_FusedConv2D', ['c3', 'w4', 'b4', 'a4'], conv([1, 1], 'VALID', {
    fused_ops: A.strs(['BiasAdd', 'Prelu']), num_args: A.i(2), epsilon: A.f(0),
  }));
  m.node('c4b', 'Conv2D', ['c3', 'w4'], conv([1, 1], 'VALID')); // w4 shared by two convolutions
  m.node('c4s', 'AddV2', ['c4', 'c4b'], { T: A.T() });
  m.konst('dw5', [2, 2, 3, 1]);
  m.node('c5', 'DepthwiseConv2dNative', ['c4s', 'dw5'], conv([1, 1], 'VALID'));
  m.konst('w6', [1, 1, 3, 2]);
  m.konst('b6', [2]);
  m.node('c6', '_FusedConv2D', ['c5', 'w6', 'b6'], conv([1, 1], 'SAME', {
    fused_ops: A.strs(['BiasAdd', 'Sigmoid']), num_args: A.i(1), epsilon: A.f(0),
  }));
  m.node('out', 'Tanh', ['c6'], { T: A.T() });
  models.push(m);
}

// Transposed convolution (SAME with stride 2, VALID with a size TF rounds), bias and sigmoid.
{
  const m = new Model('deconv', 2);
  m.input('x', [1, 5, 6, 3]);
  m.ints('os1', [1, 10, 12, 4]);
  m.konst('w1', [3, 3, 4, 3]);
  m.node('d1', 'Conv2DBackpropInput', ['os1', 'w1', 'x'], conv([2, 2], 'SAME'));
  m.ints('os2', [1, 21, 25, 2]);
  m.konst('w2', [3, 3, 2, 4]);
  m.node('d2', 'Conv2DBackpropInput', ['os2', 'w2', 'd1'], conv([2, 2], 'VALID'));
  m.konst('b', [2]);
  m.node('ba', 'BiasAdd', ['d2', 'b'], { ...NHWC, T: A.T() });
  m.node('out', 'Sigmoid', ['ba'], { T: A.T() });
  models.push(m);
}

// Shapes: StridedSlice (masks, ellipsis, new axis, shrink, negative stride), Slice, Transpose, Pack,
// ConcatV2, ExpandDims, Squeeze, Reshape, reductions.
{
  const m = new Model('shapes', 3);
  m.input('x', [1, 6, 8, 3]);
  const ss = (name, inp, b, e, s, masks) => {
    m.ints(name + '/b', b); m.ints(name + '/e', e); m.ints(name + '/s', s);
    const at = { T: A.T(), Index: A.T('DT_INT32') };
    for (const k of ['begin_mask', 'end_mask', 'ellipsis_mask', 'new_axis_mask', 'shrink_axis_mask'])
      at[k] = A.i(masks[k] || 0);
    return m.node(name, 'StridedSlice', [inp, name + '/b', name + '/e', name + '/s'], at);
  };
  ss('s1', 'x', [0, 1, 0, 0], [0, 5, 8, 2], [1, 2, 1, 1], { begin_mask: 1 | 4, end_mask: 1 | 4 }); // [1,2,8,2]
  ss('s2', 'x', [0, 0, -1, 0], [0, 0, 0, 0], [1, 1, -1, 1], { begin_mask: 3 | 8, end_mask: 15 }); // reversed W
  ss('s3', 's2', [0, 1], [0, 2], [1, 1], { ellipsis_mask: 1, shrink_axis_mask: 2 }); // [..., 1] -> [1,6,8]
  ss('s4', 's3', [0, 0, 2], [1, 0, 6], [1, 1, 1], { new_axis_mask: 2, end_mask: 2 }); // [0:1, newaxis, 2:6]
  m.ints('sl/b', [0, 1, 2, 0]); m.ints('sl/s', [-1, 4, -1, 2]);
  m.node('sl', 'Slice', ['x', 'sl/b', 'sl/s'], { T: A.T(), Index: A.T('DT_INT32') }); // [1,4,6,2]
  m.ints('perm', [0, 2, 1, 3]);
  m.node('tr', 'Transpose', ['sl', 'perm'], { T: A.T(), Tperm: A.T('DT_INT32') }); // [1,6,4,2]
  m.ints('rs/shape', [1, 6, 8]);
  m.node('rs', 'Reshape', ['tr', 'rs/shape'], { T: A.T(), Tshape: A.T('DT_INT32') });
  m.node('pk', 'Pack', ['rs', 's3'], { T: A.T(), N: A.i(2), axis: A.i(-1) }); // [1,6,8,2]
  m.ints('ax', [3], []);
  m.node('cc', 'ConcatV2', ['pk', 's1', 'ax'], { T: A.T(), N: A.i(2), Tidx: A.T('DT_INT32') }); // needs same H
  m.ints('red1', [1]);
  m.node('sum', 'Sum', ['cc', 'red1'], { T: A.T(), Tidx: A.T('DT_INT32'), keep_dims: A.b(true) });
  m.ints('red2', [1, 2]);
  m.node('max', 'Max', ['x', 'red2'], { T: A.T(), Tidx: A.T('DT_INT32'), keep_dims: A.b(false) });
  m.ints('ed/axis', [-1], []);
  m.node('ed', 'ExpandDims', ['max', 'ed/axis'], { T: A.T(), Tdim: A.T('DT_INT32') });
  m.node('sq', 'Squeeze', ['ed'], { T: A.T(), squeeze_dims: A.ints([2]) });
  m.node('out_sum', 'Identity', ['sum'], { T: A.T() });
  m.node('out_s4', 'Identity', ['s4'], { T: A.T() });
  m.node('out_sq', 'Identity', ['sq'], { T: A.T() });
  models.push(m);
}
// s1 has H=2 and pk has H=6: make the concat valid by slicing pk to 2 rows first.
{
  const m = models[models.length - 1];
  const cc = m.nodes.find(n => n.name === 'cc');
  m.ints('pk2/b', [0, 0, 0, 0]); m.ints('pk2/s', [-1, 2, -1, -1]);
  m.nodes.splice(m.nodes.indexOf(cc), 0,
    { name: 'pk2', op: 'Slice', input: ['pk', 'pk2/b', 'pk2/s'], attr: { T: A.T(), Index: A.T('DT_INT32') } });
  cc.input = ['pk2', 's1', 'ax'];
}

// Padding, resizing, pooling, DepthToSpace.
{
  const m = new Model('spatial', 4);
  m.input('x', [1, 5, 7, 2]);
  m.ints('mp', [0, 0, 1, 2, 2, 1, 0, 0], [4, 2]);
  m.node('mirror', 'MirrorPad', ['x', 'mp'], { T: A.T(), Tpaddings: A.T('DT_INT32'), mode: A.s('REFLECT') }); // [1,8,10,2]
  m.ints('pp', [0, 0, 0, 1, 1, 0, 1, 1], [4, 2]);
  m.konst('pv', [], [0.5]);
  m.node('padv2', 'PadV2', ['mirror', 'pp', 'pv'], { T: A.T(), Tpaddings: A.T('DT_INT32') }); // [1,9,11,4]
  m.ints('sz1', [7, 9]);
  m.node('rn1', 'ResizeNearestNeighbor', ['padv2', 'sz1'], { T: A.T(), align_corners: A.b(false), half_pixel_centers: A.b(true) });
  m.ints('sz2', [13, 5]);
  m.node('rb', 'ResizeBilinear', ['rn1', 'sz2'], { T: A.T(), align_corners: A.b(true), half_pixel_centers: A.b(false) });
  m.ints('sz3', [10, 12]);
  m.node('rn2', 'ResizeNearestNeighbor', ['rb', 'sz3'], { T: A.T(), align_corners: A.b(false), half_pixel_centers: A.b(false) });
  m.ints('sz4', [6, 7]);
  m.node('rb2', 'ResizeBilinear', ['rn2', 'sz4'], { T: A.T(), align_corners: A.b(false), half_pixel_centers: A.b(false) });
  m.node('ap', 'AvgPool', ['rb2'], { ...NHWC, T: A.T(), ksize: A.ints([1, 3, 3, 1]), strides: A.ints([1, 2, 2, 1]), padding: A.s('SAME') });
  m.node('mx', 'MaxPool', ['rb2'], { ...NHWC, T: A.T(), ksize: A.ints([1, 3, 2, 1]), strides: A.ints([1, 2, 2, 1]), padding: A.s('SAME') });
  m.node('add', 'AddV2', ['ap', 'mx'], { T: A.T() });
  m.node('d2s', 'DepthToSpace', ['add'], { ...NHWC, T: A.T(), block_size: A.i(2) });
  m.node('out', 'Identity', ['d2s'], { T: A.T() });
  models.push(m);
}

// Dense layers and element-wise ops.
{
  const m = new Model('dense', 5);
  m.input('x', [1, 10]);
  m.konst('w1', [6, 10]);
  m.node('mm1', 'MatMul', ['x', 'w1'], { T: A.T(), transpose_a: A.b(false), transpose_b: A.b(true) });
  m.konst('b1', [6]);
  m.node('ba1', 'BiasAdd', ['mm1', 'b1'], { ...NHWC, T: A.T() });
  m.node('r6', 'Relu6', ['ba1'], { T: A.T() });
  m.konst('w2', [6, 8], null, { quant: 'uint8' });
  m.konst('b2', [8]);
  m.node('fm', '_FusedMatMul', ['r6', 'w2', 'b2'], {
    T: A.T(), transpose_a: A.b(false), transpose_b: A.b(false), fused_ops: A.strs(['BiasAdd', 'Sigmoid']),
    num_args: A.i(1), epsilon: A.f(0),
  });
  m.konst('c', [8], null, { lo: 0.5, hi: 2 });
  m.node('sub', 'Sub', ['fm', 'c'], { T: A.T() });
  m.node('abs', 'Abs', ['sub'], { T: A.T() });
  m.node('sqrt', 'Sqrt', ['abs'], { T: A.T() });
  m.node('rsq', 'Rsqrt', ['c'], { T: A.T() });
  m.node('div', 'RealDiv', ['sqrt', 'rsq'], { T: A.T() });
  m.node('neg', 'Neg', ['div'], { T: A.T() });
  m.node('exp', 'Exp', ['neg'], { T: A.T() });
  m.node('sqr', 'Square', ['sub'], { T: A.T() });
  m.node('maxi', 'Maximum', ['exp', 'sqr'], { T: A.T() });
  m.node('mini', 'Minimum', ['exp', 'sqr'], { T: A.T() });
  m.node('mul', 'Mul', ['maxi', 'mini'], { T: A.T() });
  m.node('addn', 'AddN', ['mul', 'maxi', 'sub'], { T: A.T(), N: A.i(3) });
  m.node('lr', 'LeakyRelu', ['addn'], { T: A.T(), alpha: A.f(0.3) });
  m.konst('al', [8], null, { lo: 0, hi: 0.5 });
  m.node('pr', 'Prelu', ['sub', 'al'], { T: A.T() });
  m.node('add', 'Add', ['lr', 'pr'], { T: A.T() });
  m.node('sm', 'Softmax', ['add'], { T: A.T() });
  m.ints('mean_ax', [1]);
  m.node('mean', 'Mean', ['add', 'mean_ax'], { T: A.T(), Tidx: A.T('DT_INT32'), keep_dims: A.b(true) });
  m.konst('ten', [], [10]);
  m.node('scaled', 'Mul', ['add', 'ten'], { T: A.T() });
  m.node('ci', 'Cast', ['scaled'], { SrcT: A.T(), DstT: A.T('DT_INT32'), Truncate: A.b(false) });
  m.node('cf', 'Cast', ['ci'], { SrcT: A.T('DT_INT32'), DstT: A.T(), Truncate: A.b(false) });
  m.node('out_sm', 'Identity', ['sm'], { T: A.T() });
  m.node('out_mean', 'Identity', ['mean'], { T: A.T() });
  m.node('out_cast', 'Identity', ['cf'], { T: A.T() });
  models.push(m);
}

// Image-shaped batch norm and a Shape -> StridedSlice -> Pack -> Reshape chain (as facemesh-detection has).
{
  const m = new Model('bn_shape', 6);
  m.input('x', [-1, 4, 4, 3]);
  m.konst('sc', [3]); m.konst('of', [3]); m.konst('mu', [3]); m.konst('var', [3], null, { lo: 0.5, hi: 2 });
  m.node('bn', 'FusedBatchNormV3', ['x', 'sc', 'of', 'mu', 'var'], {
    ...NHWC, T: A.T(), U: A.T(), epsilon: A.f(0.001), is_training: A.b(false),
  });
  m.node('shape', 'Shape', ['bn'], { T: A.T(), out_type: A.T('DT_INT32') });
  m.ints('b', [0]); m.ints('e', [1]); m.ints('s', [1]);
  m.node('n', 'StridedSlice', ['shape', 'b', 'e', 's'], {
    T: A.T('DT_INT32'), Index: A.T('DT_INT32'), begin_mask: A.i(0), end_mask: A.i(0), ellipsis_mask: A.i(0),
    new_axis_mask: A.i(0), shrink_axis_mask: A.i(1),
  });
  m.ints('d1', [-1], []); m.ints('d2', [6], []);
  m.node('pk', 'Pack', ['n', 'd1', 'd2'], { T: A.T('DT_INT32'), N: A.i(3), axis: A.i(0) });
  m.node('rs', 'Reshape', ['bn', 'pk'], { T: A.T(), Tshape: A.T('DT_INT32') });
  m.node('out', 'Identity', ['rs'], { T: A.T() });
  models.push(m);
}

// Multi-output and composed ops: Split, SplitV, Unpack, Elu, SquaredDifference, ClipByValue, GatherV2,
// BatchMatMulV2.
{
  const m = new Model('multi', 7);
  m.input('x', [1, 6, 4]);
  m.ints('sp/axis', [2], []);
  m.node('sp', 'Split', ['sp/axis', 'x'], { T: A.T(), num_split: A.i(2) }); // 2 x [1,6,2]
  m.ints('spv/sizes', [1, 3, 2]); m.ints('spv/axis', [1], []);
  m.node('spv', 'SplitV', ['x', 'spv/sizes', 'spv/axis'], { T: A.T(), Tlen: A.T('DT_INT32'), num_split: A.i(3) });
  m.node('un', 'Unpack', ['x'], { T: A.T(), num: A.i(4), axis: A.i(-1) }); // 4 x [1,6]
  m.node('elu', 'Elu', ['sp:1'], { T: A.T() });
  m.node('sd', 'SquaredDifference', ['sp', 'elu'], { T: A.T() });
  m.konst('lo', [], [0.1]); m.konst('hi', [], [0.6]);
  m.node('clip', 'ClipByValue', ['spv:1', 'lo', 'hi'], { T: A.T() });
  m.ints('gi', [2, 0, 0, 1]); m.ints('gax', [1], []);
  m.node('ga', 'GatherV2', ['clip', 'gi', 'gax'], { Tparams: A.T(), Tindices: A.T('DT_INT32'), Taxis: A.T('DT_INT32'), batch_dims: A.i(0) });
  m.konst('bw', [4, 3]);
  m.node('bmm', 'BatchMatMulV2', ['ga', 'bw'], { T: A.T(), adj_x: A.b(false), adj_y: A.b(false) }); // [1,4,3]
  m.node('add', 'AddV2', ['un:3', 'un:1'], { T: A.T() });
  m.node('out_sd', 'Identity', ['sd'], { T: A.T() });
  m.node('out_bmm', 'Identity', ['bmm'], { T: A.T() });
  m.node('out_add', 'Identity', ['add'], { T: A.T() });
  m.node('out_spv', 'Identity', ['spv:2'], { T: A.T() });
  models.push(m);
}

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: tfjs_synth.js OUTDIR\n');
  process.exit(2);
}
for (const m of models) m.write(out);
process.stdout.write(models.map(m => m.name).join('\n') + '\n');
