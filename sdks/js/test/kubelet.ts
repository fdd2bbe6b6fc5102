/**
 * A ConfigMap volume laid out the way kubelet's AtomicWriter does it: data in a
 * `..<timestamp>` folder, a `..data` symlink to it, and `flags.json -> ..data/flags.json`.
 * An update writes a new folder, points `..data_tmp` at it and renames it over `..data`.
 */

import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export class KubeletVolume {
  readonly dir = mkdtempSync(join(tmpdir(), "flagops-js-volume-"));
  private version = 0;
  private current: string | null = null;

  /** Publish `files` as the volume's new content, atomically. */
  write(files: Record<string, string>): void {
    const name = `..2026_06_01_12_00_00.${process.pid}_${++this.version}`;
    mkdirSync(join(this.dir, name));
    for (const [file, text] of Object.entries(files)) writeFileSync(join(this.dir, name, file), text);
    symlinkSync(name, join(this.dir, "..data_tmp"));
    renameSync(join(this.dir, "..data_tmp"), join(this.dir, "..data"));
    for (const file of Object.keys(files)) {
      try {
        symlinkSync(join("..data", file), join(this.dir, file));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
    }
    if (this.current !== null) rmSync(join(this.dir, this.current), { recursive: true });
    this.current = name;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
