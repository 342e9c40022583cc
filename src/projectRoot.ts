import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * What marks the project root (a container image must hold them too: test/unit/dockerCompose).
 * package.json also makes the built .js files ES modules ("type": "module").
 */
export const ROOT_MARKERS = ['package.json', 'proto'] as const;

/** The folder holding package.json and proto/, whether code runs from src/ or dist/src/. */
export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (ROOT_MARKERS.every((marker) => existsSync(path.join(dir, marker)))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('project root (package.json with proto/) not found');
    dir = parent;
  }
}
