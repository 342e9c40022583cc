import { existsSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';

/** What a built module graph needs at run time: its own files and the packages it imports. */
export interface RuntimeImports {
  /** Absolute paths of every module reached, the entry included. */
  readonly files: readonly string[];
  /** Relative specifiers that name no file: `specifier (in file)`. */
  readonly missing: readonly string[];
  /** Package names imported (Node's built-ins left out). */
  readonly packages: ReadonlySet<string>;
}

const SPECIFIERS = [
  /\bfrom\s*['"]([^'"]+)['"]/g,
  /^\s*import\s*['"]([^'"]+)['"]/gm,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  // A script started as a process of its own (the load sampler) is part of the graph too.
  /\bnew URL\(\s*['"](\.[^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g,
];

function specifiers(code: string): string[] {
  // Comments may quote imports that are not there: JSDoc blocks and whole-line comments go.
  const text = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  return SPECIFIERS.flatMap((re) => [...text.matchAll(re)].map((m) => m[1]!));
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/**
 * Follows the static imports, string-literal dynamic imports and `new URL('./x.js',
 * import.meta.url)` scripts of built JavaScript from `entry`.
 */
export function runtimeImports(entry: string): RuntimeImports {
  const seen = new Set<string>();
  const missing: string[] = [];
  const packages = new Set<string>();
  const queue = [path.resolve(entry)];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) {
        const target = path.resolve(path.dirname(file), spec);
        if (existsSync(target)) queue.push(target);
        else missing.push(`${spec} (in ${file})`);
      } else if (!isBuiltin(spec)) {
        packages.add(packageName(spec));
      }
    }
  }
  return { files: [...seen], missing, packages };
}
