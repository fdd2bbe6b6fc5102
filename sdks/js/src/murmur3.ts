/**
 * MurmurHash3 x86 32-bit, seed 0, unsigned: the hash of DESIGN.md's step 6 and
 * of Unleash's flexibleRollout.
 *
 * Strings are hashed over their UTF-8 bytes, encoded on the fly (no TextEncoder,
 * no buffer: an ASCII user id allocates nothing). A lone surrogate (not encodable
 * as UTF-8) is encoded as its three WTF-8 bytes, the bytes Python's
 * `str.encode("utf-8", "surrogatepass")` gives, so the JS and Python SDKs put
 * such a user in the same bucket.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** The hash state after some bytes: full blocks mixed into `h`, `n` pending bytes in `k`. */
export interface HashState {
  readonly h: number;
  readonly k: number;
  readonly n: number;
  readonly length: number;
}

const EMPTY: HashState = { h: 0, k: 0, n: 0, length: 0 };

function scramble(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixBlock(h: number, k: number): number {
  h ^= scramble(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number, k: number, n: number, length: number): number {
  if (n > 0) h ^= scramble(k);
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 (seed 0, unsigned) of raw bytes. */
export function murmur3Bytes(data: Uint8Array): number {
  let h = 0;
  const blocks = data.length - (data.length % 4);
  for (let i = 0; i < blocks; i += 4) {
    const k =
      (data[i] as number) |
      ((data[i + 1] as number) << 8) |
      ((data[i + 2] as number) << 16) |
      ((data[i + 3] as number) << 24);
    h = mixBlock(h, k);
  }
  let k = 0;
  for (let i = blocks; i < data.length; i++) k |= (data[i] as number) << (8 * (i - blocks));
  return finish(h, k, data.length - blocks, data.length);
}

// The general path: feeds `text`'s UTF-8 (WTF-8 for lone surrogates) bytes from index
// `start` on into the state (h, k, n, length).
function feed(h: number, k: number, n: number, length: number, text: string, start: number): HashState {
  const end = text.length;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    // The code point's bytes packed little-endian into `word` (first byte lowest).
    let word: number;
    let count: number;
    if (c < 0x80) {
      word = c;
      count = 1;
    } else if (c < 0x800) {
      word = (0xc0 | (c >>> 6)) | ((0x80 | (c & 0x3f)) << 8);
      count = 2;
    } else {
      const d = i + 1 < end ? text.charCodeAt(i + 1) : 0;
      if (c >= 0xd800 && c < 0xdc00 && d >= 0xdc00 && d < 0xe000) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        word =
          (0xf0 | (cp >>> 18)) |
          ((0x80 | ((cp >>> 12) & 0x3f)) << 8) |
          ((0x80 | ((cp >>> 6) & 0x3f)) << 16) |
          ((0x80 | (cp & 0x3f)) << 24);
        count = 4;
        i++;
      } else {
        word = (0xe0 | (c >>> 12)) | ((0x80 | ((c >>> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
        count = 3;
      }
    }
    for (let j = 0; j < count; j++) {
      k |= (word & 0xff) << (n << 3);
      word >>>= 8;
      length++;
      if (++n === 4) {
        h = mixBlock(h, k);
        k = 0;
        n = 0;
      }
    }
  }
  return { h, k, n, length };
}

/** The state after hashing `prefix`: lets a flag hash `"<key>:"` once, not per call. */
export function hashPrefix(prefix: string): HashState {
  return feed(EMPTY.h, EMPTY.k, EMPTY.n, EMPTY.length, prefix, 0);
}

/** murmur3(prefix + text), given `state = hashPrefix(prefix)`: the hot path. */
export function murmur3From(state: HashState, text: string): number {
  let h = state.h;
  let k = state.k;
  let n = state.n;
  const end = text.length;
  // ASCII, one byte per code unit, stays in this small loop (V8 optimises it well);
  // the first other code unit hands the rest to the general path.
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) {
      const rest = feed(h, k, n, state.length + i, text, i);
      return finish(rest.h, rest.k, rest.n, rest.length);
    }
    k |= c << (n << 3);
    if (++n === 4) {
      h = mixBlock(h, k);
      k = 0;
      n = 0;
    }
  }
  return finish(h, k, n, state.length + end);
}

/** MurmurHash3 x86_32 (seed 0, unsigned) of `text`'s UTF-8 bytes (WTF-8 for lone surrogates). */
export function murmur3(text: string): number {
  return murmur3From(EMPTY, text);
}

/** The user's bucket 1..100 for `key`: Unleash's normalizedHash with groupId = key. */
export function bucket(key: string, userId: string): number {
  return (murmur3(`${key}:${userId}`) % 100) + 1;
}
