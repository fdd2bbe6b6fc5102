/** Test helpers: waiting for a condition with a deadline (never a bare sleep), quiet loggers. */

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import type { Logger } from "../src/index.js";

/** Resolve once `condition()` holds; reject with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A logger that keeps what it is told, for asserting on (and keeping test output clean). */
export class FakeLogger implements Logger {
  readonly warnings: string[] = [];
  readonly infos: string[] = [];
  warn(message: string): void {
    this.warnings.push(message);
  }
  info(message: string): void {
    this.infos.push(message);
  }
}

/** A file under the repository root (this file runs from sdks/js/.test-build/test/). */
export function repoFile(relative: string): string {
  return fileURLToPath(new URL(`../../../../${relative}`, import.meta.url));
}

/** A file under sdks/js/test/fixtures. */
export function fixture(name: string): string {
  return readFileSync(fileURLToPath(new URL(`../../test/fixtures/${name}`, import.meta.url)), "utf8");
}
