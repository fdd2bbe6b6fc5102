/**
 * Flags from a mounted `feature-flags` ConfigMap (Node only: uses `node:fs`).
 *
 * kubelet writes a new version into a fresh `..<timestamp>` folder and renames the
 * `..data` symlink over the old one; `flags.json` is a symlink to `..data/flags.json`.
 * Every poll resolves that chain and compares the real path, device, inode, mtime
 * and size, so the swap is seen even when the new file has the same size and time.
 */

import { readFileSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";

import { FeatureFlags, type FeatureFlagsOptions, type Source, type SourceSink } from "../client.js";

export const FILE_NAME = "flags.json";

export interface FolderOptions extends FeatureFlagsOptions {
  /** How often to check the file, in ms (default 500); 0 = load once, never poll. */
  readonly reloadIntervalMs?: number | undefined;
}

/** The `flags.json` a path names: the path itself, or `flags.json` in it when it is (or will be) a folder. */
export function flagsFilePath(path: string): string {
  try {
    return statSync(path).isDirectory() ? join(path, FILE_NAME) : path;
  } catch {
    return path.endsWith(".json") ? path : join(path, FILE_NAME);
  }
}

class FolderWatch implements Source {
  private signature: string | null = null;
  private missingReported = false;
  private readonly timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly file: string,
    private readonly sink: SourceSink,
    intervalMs: number,
  ) {
    this.check();
    if (intervalMs > 0) {
      this.timer = setInterval(() => this.check(), intervalMs);
      // Like a daemon thread: polling alone does not keep the process alive.
      this.timer.unref();
    }
  }

  close(): void {
    clearInterval(this.timer);
  }

  private check(): void {
    let real: string;
    let signature: string;
    try {
      real = realpathSync(this.file);
      const st = statSync(real, { bigint: true });
      signature = `${real}\0${st.dev}\0${st.ino}\0${st.mtimeNs}\0${st.size}`;
    } catch {
      if (!this.missingReported) {
        this.missingReported = true;
        this.signature = null;
        this.sink.fail("file is missing");
      }
      return;
    }
    this.missingReported = false;
    if (signature === this.signature) return;
    // Recorded before reading: a bad version is reported once, not on every poll.
    this.signature = signature;
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(real);
    } catch (err) {
      this.sink.fail(`file is unreadable (${(err as NodeJS.ErrnoException).code ?? "error"})`);
      return;
    }
    this.sink.load(bytes);
  }
}

/**
 * Flags from a mounted `flags.json` (the file, or the folder the ConfigMap is mounted
 * at), reloaded within a second of kubelet's swap. A missing or malformed file never
 * throws: it is reported and the last good state (empty at first) stays in use.
 */
export function fromFolder(path: string, options: FolderOptions = {}): FeatureFlags {
  const file = flagsFilePath(path);
  return FeatureFlags.fromSource(
    file,
    (sink) => new FolderWatch(file, sink, options.reloadIntervalMs ?? 500),
    options,
  );
}
