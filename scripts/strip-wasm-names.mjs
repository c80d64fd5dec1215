#!/usr/bin/env node
// Removes the `name` custom section from a built worker's wasm, in place.
//
// The section maps function indices to Rust symbol names for stack traces; nothing runs from it.
// In the API worker it is over a quarter of the module (about 550 KB raw, 140 KB gzipped), and
// wasm-opt, which would drop it, cannot be downloaded on these machines. Rust's own `strip` breaks
// wasm-bindgen, so the section is removed after worker-build instead. Panics still log their
// message and source location (worker's panic hook); only wasm stack frames lose their names.
//
// Usage: node scripts/strip-wasm-names.mjs <file.wasm>...

import { readFileSync, writeFileSync } from "node:fs";

const MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** Reads an unsigned LEB128 at `offset`: [value, next offset]. */
function leb128(bytes, offset) {
  let value = 0;
  let shift = 0;
  for (;;) {
    if (offset >= bytes.length) throw new Error("truncated LEB128");
    const byte = bytes[offset++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [value, offset];
  }
}

/** The module without its custom sections called `name`; the rest byte for byte. */
function withoutNameSection(bytes) {
  if (bytes.length < 8 || !MAGIC.every((b, i) => bytes[i] === b)) throw new Error("not a wasm module");
  const kept = [bytes.subarray(0, 8)];
  let offset = 8;
  while (offset < bytes.length) {
    const start = offset;
    const id = bytes[offset++];
    const [size, body] = leb128(bytes, offset);
    const end = body + size;
    if (end > bytes.length) throw new Error("a section runs past the end of the module");
    let drop = false;
    if (id === 0) {
      const [nameLength, nameStart] = leb128(bytes, body);
      drop = Buffer.from(bytes.subarray(nameStart, nameStart + nameLength)).toString("utf8") === "name";
    }
    if (!drop) kept.push(bytes.subarray(start, end));
    offset = end;
  }
  return Buffer.concat(kept);
}

for (const file of process.argv.slice(2)) {
  const before = readFileSync(file);
  const after = withoutNameSection(before);
  // Node's own validator lags workerd's wasm features, so the check is a re-parse of the result.
  if (withoutNameSection(after).length !== after.length) throw new Error(`${file}: stripping did not settle`);
  writeFileSync(file, after);
  console.log(`[build] ${file}: name section removed, ${before.length} -> ${after.length} bytes`);
}
