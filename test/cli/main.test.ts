import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-process.js';

const COMMANDS = ['listen', 'migrate', 'secrets'];

describe('resthooks (dispatcher)', () => {
  it('--help lists every command, exit 0', async () => {
    const { code, stdout } = await runCli(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: resthooks <command> \[options\]/);
    for (const name of COMMANDS) expect(stdout).toMatch(new RegExp(`^  ${name} +\\S`, 'm'));
  });

  it('<command> --help prints that command’s options and examples', async () => {
    const results = await Promise.all(COMMANDS.map((name) => runCli([name, '--help'])));
    for (const [index, { code, stdout }] of results.entries()) {
      expect(code).toBe(0);
      expect(stdout).toMatch(new RegExp(`^Usage: resthooks ${COMMANDS[index]}`));
      expect(stdout).toContain('Examples:');
    }
    expect(results[0]!.stdout).toContain('--secret <whsec>');
    expect(results[1]!.stdout).toContain('--db <target>');
  });

  it('--version prints the package.json version', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const { code, stdout } = await runCli(['--version']);
    expect(code).toBe(0);
    expect(stdout).toBe(`${version}\n`);
  });

  it('an unknown command prints the usage and exits 2', async () => {
    const { code, stdout, stderr } = await runCli(['lisen']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('resthooks: unknown command "lisen"');
    expect(stderr).toContain('Usage: resthooks <command>');
  });

  it('no command prints the usage and exits 2; a bad option exits 2 with a pointer to --help', async () => {
    const [none, bad] = await Promise.all([runCli([]), runCli(['listen', '--prot', '1'])]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: resthooks <command>');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^resthooks listen: Unknown option '--prot'/);
    expect(bad.stderr).toContain('Run "resthooks listen --help" for usage.');
  });
});
