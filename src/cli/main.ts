#!/usr/bin/env node
/**
 * The `resthooks` command (package.json `bin`): a thin dispatcher. Each command lives in its own
 * file and is a `Command`; this file only picks one, handles `--help` / `--version`, and maps
 * errors to exit codes (0 ok, 1 failure, 2 bad command line).
 * @module
 */
import { readFileSync } from 'node:fs';
import { CliError, UsageError, type Command } from './command.js';
import { listen } from './listen.js';
import { migrate } from './migrate.js';
import { secrets } from './secrets-command.js';
import { worker } from './worker-command.js';

const COMMANDS: readonly Command[] = [listen, migrate, secrets, worker];

function usage(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  return `Usage: resthooks <command> [options]

Commands:
${COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`).join('\n')}

Options:
  -h, --help     show this help, or a command's help: resthooks <command> --help
  -v, --version  print the version
`;
}

function version(): string {
  // The same relative path from src/cli/main.ts (tsx) and dist/cli/main.js (built).
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

const isHelp = (arg: string | undefined) => arg === '--help' || arg === '-h';

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || isHelp(name) || name === 'help') {
    if (name === undefined) {
      process.stderr.write(usage());
      return 2;
    }
    const topic = name === 'help' ? COMMANDS.find((command) => command.name === args[0]) : undefined;
    process.stdout.write(topic ? topic.help : usage());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (!command) {
    process.stderr.write(`resthooks: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  if (args.some(isHelp)) {
    process.stdout.write(command.help);
    return 0;
  }
  try {
    return await command.run(args);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`resthooks ${command.name}: ${error.message}\nRun "resthooks ${command.name} --help" for usage.\n`);
      return 2;
    }
    if (error instanceof CliError) {
      process.stderr.write(`resthooks ${command.name}: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`resthooks ${command.name}: unexpected error\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
}

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
