// ort_npy.js — minimal .npy (format 1.0/2.0) reader and writer for the ONNX reference harness: float32, int64,
// int32, little-endian, C order. Test-only; the product reads .npy in C.
'use strict';
const fs = require('fs');

const DESCR = { '<f4': 'float32', '<i8': 'int64', '<i4': 'int32', '|u1': 'uint8' };
const CTOR = { float32: Float32Array, int64: BigInt64Array, int32: Int32Array, uint8: Uint8Array };

function readNpy(path) {
  const buf = fs.readFileSync(path);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${path}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const order = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !order || !shape) throw new Error(`${path}: bad .npy header`);
  if (order[1] === 'True') throw new Error(`${path}: Fortran order is not supported`);
  const dtype = DESCR[descr[1]];
  if (!dtype) throw new Error(`${path}: dtype ${descr[1]} is not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  const off = hstart + hlen;
  const C = CTOR[dtype];
  if (buf.length - off < n * C.BYTES_PER_ELEMENT) throw new Error(`${path}: truncated data`);
  const ab = buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + n * C.BYTES_PER_ELEMENT);
  return { dtype, shape: dims, data: new C(ab) };
}

function writeNpy(path, dtype, shape, data) {
  const descr = Object.keys(DESCR).find((k) => DESCR[k] === dtype);
  if (!descr) throw new Error(`writeNpy: dtype ${dtype}`);
  const shp = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shp}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const h = Buffer.alloc(10);
  h.write('\x93NUMPY', 0, 'latin1');
  h[6] = 1;
  h[7] = 0;
  h.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(path, Buffer.concat([h, Buffer.from(header, 'latin1'), body]));
}

module.exports = { readNpy, writeNpy };
