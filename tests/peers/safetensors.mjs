// A safetensors file read in the browser, for the peers that are handed plain arrays (TensorFlow.js):
// 8 bytes of little-endian header length, a JSON header { name: { dtype, shape, data_offsets: [begin, end] } },
// then the raw little-endian data, offsets counted from the end of the header.
export function parseSafetensors(buffer) {
  const view = new DataView(buffer);
  const headerLen = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, headerLen)));
  const base = 8 + headerLen;
  const tensors = new Map();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') throw new Error(`${name}: dtype ${t.dtype}, only F32 is read here`);
    const [begin, end] = t.data_offsets;
    // A copy: the data need not be 4-byte aligned in the file.
    const data = new Float32Array(buffer.slice(base + begin, base + end));
    tensors.set(name.replace(/^transformer\./, ''), { shape: t.shape, data });
  }
  return tensors;
}

export async function fetchBytes(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.arrayBuffer();
}

export async function fetchJson(url) {
  return JSON.parse(new TextDecoder().decode(await fetchBytes(url)));
}

/** The same pseudo-random floats in [-1, 1) in every engine, from a seed (a 32-bit LCG). */
export function randomFloats(n, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}
