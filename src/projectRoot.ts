import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding package.json and proto/, whether code runs from src/ or dist/src/. */
export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'proto')))
      return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('project root (package.json with proto/) not found');
    dir = parent;
  }
}
