import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A Dockerfile read into instructions, enough to check it without a Docker engine: line
 * continuations joined, comments dropped, each instruction split into its keyword, its
 * `--flag=value` options and the rest.
 */
export interface Instruction {
  readonly keyword: string;
  readonly flags: Readonly<Record<string, string>>;
  /** What follows the flags, as written. */
  readonly rest: string;
}

export interface Stage {
  readonly image: string;
  /** The `AS` name; undefined for an unnamed stage. */
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

/** A COPY: where from (a stage name, or undefined for the build context), sources and target. */
export interface Copy {
  readonly from: string | undefined;
  readonly sources: readonly string[];
  readonly dest: string;
}

const repoFile = (name: string) => new URL(`../../${name}`, import.meta.url);

export function readRepoFile(name: string): string {
  return readFileSync(repoFile(name), 'utf8');
}

function instructionsOf(text: string): Instruction[] {
  const lines = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return lines.map((line) => {
    const [, keyword = '', tail = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const flags: Record<string, string> = {};
    let rest = tail;
    for (let m = /^--([\w-]+)=(\S+)\s*/.exec(rest); m; m = /^--([\w-]+)=(\S+)\s*/.exec(rest)) {
      flags[m[1]!] = m[2]!;
      rest = rest.slice(m[0].length);
    }
    return { keyword: keyword.toUpperCase(), flags, rest };
  });
}

/** The stages of the Dockerfile in the repository, in order. */
export function readDockerfile(name = 'Dockerfile'): Stage[] {
  const stages: { image: string; name: string | undefined; instructions: Instruction[] }[] = [];
  for (const ins of instructionsOf(readRepoFile(name))) {
    if (ins.keyword === 'FROM') {
      const [image = '', as, stageName] = ins.rest.split(/\s+/);
      stages.push({
        image,
        name: as?.toUpperCase() === 'AS' ? stageName : undefined,
        instructions: [],
      });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`${ins.keyword} before the first FROM`);
      stage.instructions.push(ins);
    }
  }
  return stages;
}

/** The exec form (a JSON array) of `rest`; throws on the shell form, which the checks refuse. */
export function execForm(rest: string): string[] {
  const parsed: unknown = JSON.parse(rest);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string'))
    throw new Error(`not an exec form: ${rest}`);
  return parsed;
}

export function instructions(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}

/** The stage's last value of `keyword` (USER, WORKDIR, ENTRYPOINT… where the last one counts). */
export function last(stage: Stage, keyword: string): Instruction | undefined {
  return instructions(stage, keyword).at(-1);
}

export function workdir(stage: Stage): string {
  return last(stage, 'WORKDIR')?.rest ?? '/';
}

/** The stage's ENV, both forms (`K=V K2=V2` and the legacy `K V`). */
export function env(stage: Stage): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const ins of instructions(stage, 'ENV')) {
    if (!ins.rest.includes('=')) {
      const [key = '', ...value] = ins.rest.split(/\s+/);
      vars[key] = value.join(' ');
    } else {
      for (const pair of ins.rest.split(/\s+/)) {
        const [key = '', ...value] = pair.split('=');
        vars[key] = value.join('=');
      }
    }
  }
  return vars;
}

export function copies(stage: Stage): Copy[] {
  return instructions(stage, 'COPY').map((ins) => {
    const parts = ins.rest.startsWith('[') ? execForm(ins.rest) : ins.rest.split(/\s+/);
    return { from: ins.flags['from'], sources: parts.slice(0, -1), dest: parts.at(-1)! };
  });
}

/**
 * Each path a COPY makes in the stage's file system, absolute, with the path of what it copies
 * (absolute in another stage, relative in the build context): a target ending in "/", or one of
 * several sources, receives the source under its own name.
 */
export function copiedPaths(
  stage: Stage,
  copy: Copy,
): { readonly target: string; readonly source: string }[] {
  const dest = path.posix.resolve(workdir(stage), copy.dest);
  const into = copy.dest.endsWith('/') || copy.sources.length > 1;
  return copy.sources.map((source) => ({
    target: into ? path.posix.join(dest, path.posix.basename(source)) : dest,
    source: path.posix.normalize(source).replace(/\/$/, ''),
  }));
}

/** Whether `file` is `dir` or lies inside it. */
export function within(file: string, dir: string): boolean {
  return file === dir || file.startsWith(`${dir.replace(/\/$/, '')}/`);
}

/** Whether a .dockerignore pattern list leaves `file` (relative to the context) out. */
export function dockerIgnored(patterns: readonly string[], file: string): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = path.posix.normalize(negated ? raw.slice(1) : raw).replace(/^\/|\/$/g, '');
    if (globRegex(pattern).test(file)) ignored = !negated;
  }
  return ignored;
}

/**
 * Docker's globs: a leading double star and slash matches any folders (or none), `*` and `?`
 * match within one name; a pattern naming a folder covers what it holds.
 */
function globRegex(pattern: string): RegExp {
  const body = pattern
    .split(/(\*\*\/|\*\*|\*|\?)/)
    .map((token) => {
      if (token === '**/') return '(?:.*/)?';
      if (token === '**') return '.*';
      if (token === '*') return '[^/]*';
      if (token === '?') return '[^/]';
      return token.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return new RegExp(`^${body}(?:/.*)?$`);
}

export function dockerignore(): string[] {
  return readRepoFile('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}
