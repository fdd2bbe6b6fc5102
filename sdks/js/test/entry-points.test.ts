/** The main entry point must load in a browser: nothing it imports may reach `node:` modules. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const IMPORT = /^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']/gm;

/** Every module specifier reachable from `entry` through relative imports. */
function reachable(entry: string): { files: string[]; specifiers: string[] } {
  const files: string[] = [];
  const specifiers: string[] = [];
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (files.includes(file)) continue;
    files.push(file);
    for (const match of readFileSync(file, "utf8").matchAll(IMPORT)) {
      const specifier = (match[1] ?? match[2]) as string;
      if (specifier.startsWith(".")) queue.push(resolve(dirname(file), specifier));
      else specifiers.push(specifier);
    }
  }
  return { files, specifiers };
}

const src = fileURLToPath(new URL("../src/", import.meta.url));

test("the main entry imports no Node built-in and no package (no runtime dependencies)", () => {
  const { files, specifiers } = reachable(resolve(src, "index.js"));
  assert.ok(files.length >= 8, `only ${files.length} modules found: the import scan is broken`);
  assert.ok(!files.some((f) => f.includes("/node/")), "the folder source must stay out of the main entry");
  assert.deepEqual(specifiers, []);
});

test("the node entry adds node:fs and node:path, nothing else", () => {
  const { specifiers } = reachable(resolve(src, "node/index.js"));
  assert.deepEqual([...new Set(specifiers)].sort(), ["node:fs", "node:path"]);
});

test("the published entry points resolve by package name, with their .d.ts", async () => {
  const main = (await import("@flagops/sdk")) as Record<string, unknown>;
  const node = (await import("@flagops/sdk/node")) as Record<string, unknown>;
  for (const name of ["FeatureFlags", "evaluate", "evaluateDetail", "parseDocument", "bucket"]) {
    assert.equal(typeof main[name], "function", name);
  }
  assert.equal(typeof node["fromFolder"], "function");
  assert.equal(node["FeatureFlags"], main["FeatureFlags"], "one FeatureFlags class for both entries");
  const dist = fileURLToPath(new URL("../../dist/", import.meta.url));
  for (const types of ["index.d.ts", "node/index.d.ts"]) {
    assert.match(readFileSync(resolve(dist, types), "utf8"), /export /, types);
  }
});
