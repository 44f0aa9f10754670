/**
 * docs/deployment.md's artefacts. Its alert rules are valid YAML on metrics resthooks exports. And
 * examples/distributed/docker-compose.yml is checked without Docker: every service's command is one this
 * package runs (the built CLI's subcommands with options they accept, the demo's entry file), every
 * environment variable is one the code reads, and URLs, ports and health checks agree with each other.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../examples/bookstore/config.js';
import { listen, parseListenOptions } from '../src/cli/listen.js';
import { migrate } from '../src/cli/migrate.js';
import { parseWorkerOptions, worker } from '../src/cli/worker-command.js';
import { ROOT } from '../scripts/snippets.js';

// js-yaml comes with the dev tools (@changesets/cli); the test only reads with it.
const { load } = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}

const COMPOSE_DIR = join(ROOT, 'examples', 'distributed');
const compose = load(readFileSync(join(COMPOSE_DIR, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };
const services = compose.services;
const resthooksServices = Object.entries(services).filter(([, service]) => service.build !== undefined);
const env = (name: string) => services[name]!.environment ?? {};
const args = (name: string) => services[name]!.command!;
/** The container ports a service publishes ("127.0.0.1:9465:9464" → 9464). */
const containerPorts = (name: string) => (services[name]!.ports ?? []).map((mapping) => Number(mapping.split(':').at(-1)));
/** The port a `fetch('http://127.0.0.1:N/…')` health check probes. */
const probedPort = (name: string) => Number(/127\.0\.0\.1:(\d+)\//.exec(services[name]!.healthcheck!.test.join(' '))?.[1]);

/** Every `env.X` / `process.env.X` name read by the CLI, the demo and the library. */
function environmentNamesRead(): Set<string> {
  const files = ['src/cli/worker-command.ts', 'src/cli/migrate.ts', 'src/cli/listen.ts', 'examples/bookstore/config.ts', 'src/hooks.ts'];
  const names = new Set<string>();
  for (const file of files) for (const [, name] of readFileSync(join(ROOT, file), 'utf8').matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g)) names.add(name!);
  return names;
}

describe('examples/distributed/docker-compose.yml', () => {
  it('has the topology of docs/deployment.md: PostgreSQL, Redis, a migration, the app, two workers, a receiver', () => {
    expect(Object.keys(services).sort()).toEqual(['app', 'migrate', 'postgres', 'receiver', 'redis', 'worker-1', 'worker-2']);
    for (const [name, service] of Object.entries(services)) {
      for (const dependency of Object.keys(service.depends_on ?? {})) expect(services, `${name} depends on ${dependency}`).toHaveProperty(dependency);
    }
    expect(services.app!.depends_on).toMatchObject({ migrate: { condition: 'service_completed_successfully' } });
  });

  it('builds every resthooks service from the repository with a Dockerfile that installs and builds the package', () => {
    expect(resthooksServices.map(([name]) => name).sort()).toEqual(['app', 'migrate', 'receiver', 'worker-1', 'worker-2']);
    for (const [, service] of resthooksServices) {
      const context = resolve(COMPOSE_DIR, service.build!.context);
      expect(context).toBe(resolve(ROOT));
      const dockerfile = readFileSync(join(context, service.build!.dockerfile), 'utf8');
      expect(dockerfile).toMatch(/^RUN npm ci$/m);
      expect(dockerfile).toMatch(/^RUN npm run build$/m); // dist/cli/main.js, which the commands run
    }
    // tsup builds the CLI there, the path the commands name.
    expect(readFileSync(join(ROOT, 'tsup.config.ts'), 'utf8')).toContain("'cli/main': 'src/cli/main.ts'");
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).bin.resthooks).toBe('./dist/cli/main.js');
  });

  it('runs CLI subcommands that exist, with options they accept', () => {
    const cli = resthooksServices.filter(([, service]) => service.command![0] === 'node');
    for (const [name, service] of cli) {
      expect(service.command!.slice(0, 2), name).toEqual(['node', 'dist/cli/main.js']);
      expect([migrate.name, worker.name, listen.name], name).toContain(service.command![2]);
    }
    expect(args('migrate')).toEqual(['node', 'dist/cli/main.js', 'migrate']); // DATABASE_URL from the environment
    expect(parseListenOptions(args('receiver').slice(3))).toMatchObject({ host: '0.0.0.0', port: 4000 });
  });

  it.each(['worker-1', 'worker-2'])('%s: a worker on the compose PostgreSQL and Redis, health served where it is probed and published', (name) => {
    const options = parseWorkerOptions(args(name).slice(3), env(name));
    expect(options).toMatchObject({ db: { engine: 'postgres', url: env(name).DATABASE_URL }, redis: env(name).REDIS_URL, host: '0.0.0.0', allowPrivateTargets: true });
    expect(options.port).toBe(probedPort(name));
    expect(containerPorts(name)).toEqual([options.port]);
  });

  it('app: the demo, relaying only (its deliveries are the workers\'), listening where it is published and probed', () => {
    const [npx, tsx, entry, ...rest] = args('app');
    expect([npx, tsx]).toEqual(['npx', 'tsx']);
    expect(existsSync(join(ROOT, entry!))).toBe(true);
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start).toBe(`tsx ${entry}`);
    const config = readConfig(env('app'), rest);
    expect(config).toMatchObject({ host: '0.0.0.0', databaseUrl: env('app').DATABASE_URL, redisUrl: env('app').REDIS_URL, embeddedWorker: false, tour: false });
    expect(containerPorts('app')).toEqual([config.port]);
    expect(probedPort('app')).toBe(config.port);
  });

  it('sets only environment variables the code reads', () => {
    const read = environmentNamesRead();
    for (const [name] of resthooksServices) {
      for (const variable of Object.keys(env(name))) expect(read, `${name}: ${variable}`).toContain(variable);
    }
  });

  it('points DATABASE_URL and REDIS_URL at the postgres and redis services, with their credentials and ports', () => {
    const postgres = env('postgres');
    for (const [name] of resthooksServices.filter(([service]) => service !== 'receiver')) {
      const database = new URL(env(name).DATABASE_URL!);
      expect({ host: database.hostname, port: database.port, user: database.username, password: database.password, db: database.pathname.slice(1) }, name).toEqual({
        host: 'postgres',
        port: '5432',
        user: postgres.POSTGRES_USER,
        password: postgres.POSTGRES_PASSWORD,
        db: postgres.POSTGRES_DB,
      });
      expect(new URL(env(name).REDIS_URL!), name).toMatchObject({ protocol: 'redis:', hostname: 'redis', port: '6379' });
    }
  });

  it('runs Redis as BullMQ needs it: noeviction, append-only file synced every second', () => {
    const command = args('redis').join(' ');
    expect(command).toContain('--maxmemory-policy noeviction');
    expect(command).toContain('--appendonly yes');
    expect(command).toContain('--appendfsync everysec');
  });
});

describe('docs/deployment.md', () => {
  const guide = readFileSync(join(ROOT, 'docs', 'deployment.md'), 'utf8');

  it('its Prometheus alert rules parse, and every metric they use is one resthooks exports', () => {
    const block = /```yaml\n([\s\S]*?)```/.exec(guide)?.[1];
    const rules = (load(block!) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> }).groups.flatMap((group) => group.rules);
    expect(rules.length).toBeGreaterThanOrEqual(6);
    const exported = new Set<string>();
    for (const file of ['delivery-metrics.ts', 'observability.ts', 'prometheus-text.ts', 'telemetry.ts']) {
      for (const [name] of readFileSync(join(ROOT, 'src', 'telemetry', file), 'utf8').matchAll(/resthooks_[a-z_]+/g)) exported.add(name);
    }
    for (const { alert, expr } of rules) {
      const used = [...expr.matchAll(/resthooks_[a-z_]+/g)].map(([name]) => name.replace(/_(bucket|sum|count)$/, ''));
      expect(used.length, alert).toBeGreaterThan(0);
      for (const name of used) expect(exported, `${alert}: ${name}`).toContain(name);
    }
  });

  it('links the compose file, which exists', () => {
    expect(guide).toContain('](../examples/distributed/docker-compose.yml)');
    expect(existsSync(join(COMPOSE_DIR, 'docker-compose.yml'))).toBe(true);
  });
});
