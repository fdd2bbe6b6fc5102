/**
 * Canonical JSON, byte for byte what the operator's Python writes
 * (`json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`)
 * for the values a flags document holds: objects, arrays, strings, integers,
 * booleans and null. Keys sort by code point, as Python sorts str.
 */

// UTF-16 order differs from code point order only for a surrogate against U+E000..U+FFFF.
function codePointOrder(unit: number): number {
  return unit < 0xd800 ? unit : unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointOrder(x) - codePointOrder(y);
  }
  return a.length - b.length;
}

/** Canonical JSON text of `value`. Throws TypeError on what JSON cannot hold. */
export function canonicalJson(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "string":
      // JSON.stringify escapes exactly the characters Python does with ensure_ascii=False.
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new TypeError("JSON cannot hold NaN or Infinity");
      return String(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort(compareCodePoints);
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
    }
    default:
      throw new TypeError(`JSON cannot hold a ${typeof value}`);
  }
}
