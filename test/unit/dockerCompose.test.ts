import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, loadConfig, VARIABLES } from '../../src/config.js';
import { descriptorSetPath } from '../../src/grpc/addReflection.js';
import { projectRoot, ROOT_MARKERS } from '../../src/projectRoot.js';
import { migrationsDir } from '../../src/store/migrate.js';
import {
  copiedPaths,
  copies,
  dockerignore,
  dockerIgnored,
  env,
  execForm,
  instructions,
  last,
  readDockerfile,
  readRepoFile,
  within,
  workdir,
  type Stage,
} from '../support/dockerfile.js';
import { runtimeImports } from '../support/runtimeImports.js';

// No Docker engine runs here, so the files are kept valid by construction and checked by
// parsing them against what the server really reads and the CLI really has.

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  env_file?: { path: string; required?: boolean }[];
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}

const root = projectRoot();
const compose = parse(readRepoFile('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
};
const service = (name: string) => compose.services[name]!;
const REPLICAS = ['quota-a', 'quota-b'];
const known = new Set(VARIABLES.map((v) => v.name));
const defaultOf = (name: string) => VARIABLES.find((v) => v.name === name)!.default!;

const stages = readDockerfile();
const runtime = stages.at(-1)!;
const imageEnv = env(runtime);
/** What a container of the image has, before compose adds its own environment. */
const inImage = (name: string) => imageEnv[name] ?? defaultOf(name);
const healthcheckCommand = (() => {
  const ins = last(runtime, 'HEALTHCHECK')!;
  expect(ins.rest).toMatch(/^CMD\s/);
  return execForm(ins.rest.replace(/^CMD\s+/, ''));
})();

/** Subcommands of the built CLI, as `--help` lists them. */
function cliCommands(): string[] {
  const main = path.join(root, 'dist', 'src', 'main.js');
  expect(existsSync(main), 'dist/ missing: run `npm run build`').toBe(true);
  const help = execFileSync(process.execPath, [main, '--help'], { encoding: 'utf8' });
  const section = help.split(/^Commands:$/m)[1]!.split(/\n\s*\n/)[0]!;
  return [...section.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!);
}
const commands = cliCommands();

/** KEY=VALUE lines of an env file, comments and blanks left out. */
function envFile(name: string): Record<string, string> {
  const lines = readRepoFile(name)
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  return Object.fromEntries(
    lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

describe('docker-compose.yml', () => {
  it('defines PostgreSQL, a one-shot migration step and two replicas started after it', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['migrate', 'postgres', ...REPLICAS]);
    expect(service('postgres').image).toMatch(/^postgres:17/);
    expect(service('migrate').command).toEqual(['migrate']);
    expect(service('migrate').depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    for (const name of REPLICAS) {
      expect(service(name).command).toEqual(['serve']);
      expect(service(name).depends_on).toEqual({
        migrate: { condition: 'service_completed_successfully' },
      });
      // One image for all: the migration step applies what the replicas expect.
      expect(service(name).image).toBe(service('migrate').image);
      expect(service(name).build).toBe('.');
    }
  });

  it('runs only commands the CLI has', () => {
    for (const name of ['migrate', ...REPLICAS])
      expect(commands).toContain(service(name).command![0]);
    expect(commands).toEqual(expect.arrayContaining(['serve', 'migrate', 'healthcheck']));
  });

  it('publishes the replicas on 50051 and 50052, and their metrics on 9464 and 9465', () => {
    const published = REPLICAS.map((name) => {
      const s = service(name);
      const port = s.environment?.['QUOTA_PORT'] ?? inImage('QUOTA_PORT');
      const metrics = s.environment?.['QUOTA_METRICS_PORT'] ?? inImage('QUOTA_METRICS_PORT');
      const byContainerPort = Object.fromEntries(
        s.ports!.map((p) => p.split(':').reverse() as [string, string]),
      );
      // Each host port leads to the port the replica listens on, and nothing else is published.
      expect(Object.keys(byContainerPort).sort()).toEqual([port, metrics].sort());
      return [byContainerPort[port], byContainerPort[metrics]];
    });
    expect(published).toEqual([
      ['50051', '9464'],
      ['50052', '9465'],
    ]);
  });

  it('gives each replica more time to stop than its drain takes (10 s)', () => {
    for (const name of REPLICAS) {
      const grace = (service(name) as { stop_grace_period?: string }).stop_grace_period ?? '10s';
      expect(Number(/^(\d+)s$/.exec(grace)?.[1])).toBeGreaterThan(10);
    }
  });

  it('sets only variables the server reads, in the environment and in the env file', () => {
    for (const name of ['migrate', ...REPLICAS])
      for (const key of Object.keys(service(name).environment ?? {})) expect(known).toContain(key);
    for (const key of Object.keys(envFile('deploy/quota.env.example')))
      expect(known).toContain(key);
  });

  it('points DATABASE_URL at the postgres service with its credentials', () => {
    const pg = service('postgres').environment!;
    for (const name of ['migrate', ...REPLICAS]) {
      const url = new URL(service(name).environment!['DATABASE_URL']!);
      expect([url.hostname, url.port, url.username, url.password, url.pathname]).toEqual([
        'postgres',
        '5432',
        pg['POSTGRES_USER'],
        pg['POSTGRES_PASSWORD'],
        `/${pg['POSTGRES_DB']}`,
      ]);
    }
  });

  it('reads the admin token from deploy/quota.env, a required file that git and the image ignore', () => {
    for (const name of REPLICAS) {
      expect(service(name).env_file).toEqual([{ path: 'deploy/quota.env', required: true }]);
      expect(service(name).environment).not.toHaveProperty('QUOTA_ADMIN_TOKEN');
    }
    expect(readRepoFile('.gitignore').split('\n')).toContain('deploy/quota.env');
    expect(dockerIgnored(dockerignore(), 'deploy/quota.env')).toBe(true);
    const example = envFile('deploy/quota.env.example');
    expect(Object.keys(example)).toEqual(['QUOTA_ADMIN_TOKEN']);
    expect(readRepoFile('deploy/quota.env.example')).toContain('openssl rand -base64 32');
    // An unedited copy stops the server at start instead of running with a known token.
    expect(() => loadConfig(example)).toThrow(ConfigError);
  });

  it('checks health: pg_isready for PostgreSQL, the image HEALTHCHECK command for each replica', () => {
    // Over TCP: a socket check passes while the image's init server (socket only) runs.
    expect(service('postgres').healthcheck!.test.join(' ')).toMatch(
      /pg_isready (?:.* )?(?:-h|--host)[ =]?127\.0\.0\.1\b/,
    );
    for (const name of REPLICAS)
      expect(service(name).healthcheck!.test).toEqual(['CMD', ...healthcheckCommand]);
  });
});

/** Each path the runtime stage holds, with the stage (undefined: the context) it comes from. */
function runtimeFiles(stage: Stage) {
  return copies(stage).flatMap((copy) =>
    copiedPaths(stage, copy).map((p) => ({ ...p, from: copy.from })),
  );
}

describe('Dockerfile', () => {
  const names = stages.map((s) => s.name);

  it('builds in one stage and runs from a slim one, as a user that is not root', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) expect(s.image).toBe('node:20-bookworm-slim');
    const build = stages.find((s) => s.name === 'build')!;
    const runs = instructions(build, 'RUN').map((r) => r.rest);
    expect(runs.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
    expect(last(runtime, 'USER')?.rest).toBe('node');
    // The runtime stage compiles nothing and installs no dev dependency.
    for (const r of instructions(runtime, 'RUN')) expect(r.rest).not.toMatch(/\bnpm\b/);
  });

  it('installs the production dependencies only, for the runtime stage', () => {
    const modules = runtimeFiles(runtime).find(
      (f) => f.target === `${workdir(runtime)}/node_modules`,
    );
    const deps = stages.find((s) => s.name === modules?.from)!;
    const install = instructions(deps, 'RUN').map((r) => r.rest);
    expect(install.some((r) => /\bnpm ci\b.*--omit=dev/.test(r))).toBe(true);
  });

  it('copies only from stages that exist, and earlier ones', () => {
    stages.forEach((stage, i) => {
      for (const copy of copies(stage)) {
        if (copy.from === undefined) continue;
        expect(names).toContain(copy.from);
        expect(names.indexOf(copy.from)).toBeLessThan(i);
      }
    });
  });

  it('exposes the gRPC and metrics ports the server listens on by default', () => {
    const exposed = instructions(runtime, 'EXPOSE').flatMap((e) => e.rest.split(/\s+/));
    expect(exposed.sort()).toEqual([inImage('QUOTA_PORT'), inImage('QUOTA_METRICS_PORT')].sort());
    for (const key of Object.keys(imageEnv)) expect(known).toContain(key);
  });

  it('checks health with the CLI healthcheck command of the entrypoint script', () => {
    const entrypoint = execForm(last(runtime, 'ENTRYPOINT')!.rest);
    const script = entrypoint.find((a) => a.endsWith('.js'));
    expect(healthcheckCommand).toEqual(['node', script, 'healthcheck']);
    expect(commands).toContain(healthcheckCommand[2]);
    expect(execForm(last(runtime, 'CMD')!.rest)).toEqual(['serve']);
  });

  it('gives the runtime stage every file the server reads at run time', () => {
    const app = workdir(runtime);
    const rel = (p: string) => path.relative(root, p);
    const entry = path.join(root, 'dist', 'src', 'main.js');
    const graph = runtimeImports(entry);
    expect(graph.missing).toEqual([]);
    const needed = [
      ...ROOT_MARKERS,
      rel(migrationsDir()),
      rel(descriptorSetPath()),
      ...graph.files.map(rel),
    ];
    const held = runtimeFiles(runtime);
    for (const file of needed) {
      const copy = held.find((h) => within(`${app}/${file}`, h.target));
      expect(copy, `${file} is not copied into the runtime stage`).toBeDefined();
      const from = stages.find((s) => s.name === copy!.from);
      // Copied to where the server looks for it, from the same place in the project.
      const source = from ? path.posix.relative(workdir(from), copy!.source) : copy!.source;
      expect(within(file, source), `${file} comes from ${copy!.source}`).toBe(true);
      // A file taken from another stage got there from the context, unless the build made it.
      if (from && !within(file, 'dist')) {
        const there = runtimeFiles(from).some((f) => within(`${workdir(from)}/${file}`, f.target));
        expect(there, `${file} is not in stage ${from.name}`).toBe(true);
      }
      // What comes from the context (directly or through the build) is not left out of it.
      if (!within(file, 'dist')) expect(dockerIgnored(dockerignore(), file), file).toBe(false);
    }
    // Every package the server imports is installed with --omit=dev.
    const { dependencies } = JSON.parse(readRepoFile('package.json')) as {
      dependencies: Record<string, string>;
    };
    for (const pkg of graph.packages) expect(Object.keys(dependencies)).toContain(pkg);
  });
});
