/**
 * Checks every TypeScript and JavaScript block in README.md and docs/*.md: each is extracted, type-checked
 * with `tsc --strict` against the package's own sources (`resthooks`, `resthooks/*` mapped to src/), and
 * the complete programs among them are run.
 *
 * A block is a complete program unless the HTML comment on the line before its fence says otherwise:
 *
 *   <!-- snippet: prelude=NAME[,NAME…] -->  a fragment: type-checked after the declarations in
 *                                           scripts/snippet-preludes/NAME.ts, not run
 *   <!-- snippet: sigterm-after=WORD -->    a server: run it, send it SIGTERM once its output has WORD; it must exit 0
 *   <!-- snippet: typecheck-only: REASON --> complete, type-checked, not run, for the reason given
 *   <!-- snippet: skip: REASON -->         neither compiled nor run, for the reason given (say why it cannot be)
 *   <!-- verifier: NAME -->                  run by test/verifier-snippets.test.ts; type-checked here
 *
 * An unknown marker is an error, so a typo cannot exclude a block. Programs run with node (through tsx, which
 * maps `resthooks` to src/ as tsc does) in a fresh directory, with DATABASE_URL, REDIS_URL and TARGET_URL
 * (a receiver on 127.0.0.1) when the caller provides them, and must exit with code 0.
 *
 * Usage: `npm run check:snippets -- [--run] [files…]` (type-checks README.md and docs/*.md, or the files given);
 * `--run` also runs the programs, with the variables above taken from the environment.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PRELUDES = join(ROOT, 'scripts', 'snippet-preludes');
const CHECKED_LANGUAGES: Record<string, '.ts' | '.tsx' | '.mjs'> = { ts: '.ts', typescript: '.ts', tsx: '.tsx', js: '.mjs', javascript: '.mjs' };

export type SnippetMode =
  | { kind: 'run'; sigtermAfter?: string }
  | { kind: 'prelude'; preludes: readonly string[] }
  | { kind: 'typecheck-only'; reason: string }
  | { kind: 'skip'; reason: string };

export interface Snippet {
  /** The Markdown file, relative to the repository root. */
  readonly doc: string;
  /** 1-based line of the block's first line of code in `doc`. */
  readonly line: number;
  readonly lang: string;
  /** The `file=` name from the info string, when the block names the file it is. */
  readonly file: string | undefined;
  readonly mode: SnippetMode;
  readonly code: string;
}

export interface SnippetProblem {
  readonly doc: string;
  readonly line: number;
  readonly message: string;
}

/** The Markdown files whose blocks are checked: README.md and every docs/*.md. */
export function documentedFiles(root = ROOT): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => join('docs', name));
  return ['README.md', ...docs];
}

function parseMarker(comment: string, doc: string, line: number): SnippetMode | SnippetProblem | undefined {
  const verifier = /^<!--\s*verifier:\s*[\w-]+\s*-->$/.exec(comment);
  if (verifier) return { kind: 'typecheck-only', reason: 'run by test/verifier-snippets.test.ts' };
  const marker = /^<!--\s*snippet:\s*(.*?)\s*-->$/.exec(comment);
  if (!marker) return undefined;
  const body = marker[1]!;
  const prelude = /^prelude=([\w-]+(?:,[\w-]+)*)$/.exec(body);
  if (prelude) {
    const preludes = prelude[1]!.split(',');
    const missing = preludes.filter((name) => !existsSync(join(PRELUDES, `${name}.ts`)));
    if (missing.length > 0) return { doc, line, message: `unknown prelude ${missing.join(', ')} (scripts/snippet-preludes/ has no such file)` };
    return { kind: 'prelude', preludes };
  }
  const sigterm = /^sigterm-after=(\S+)$/.exec(body);
  if (sigterm) return { kind: 'run', sigtermAfter: sigterm[1]! };
  const typecheckOnly = /^typecheck-only:\s*(\S.*)$/.exec(body);
  if (typecheckOnly) return { kind: 'typecheck-only', reason: typecheckOnly[1]! };
  const skip = /^skip:\s*(\S.*)$/.exec(body);
  if (skip) return { kind: 'skip', reason: skip[1]! };
  return { doc, line, message: `unknown snippet marker "${comment}": use prelude=NAME, typecheck-only: REASON or skip: REASON` };
}

/** Every ts/js block of the given Markdown files, with its marker; problems for markers that mean nothing. */
export function extractSnippets(docs = documentedFiles(), root = ROOT): { snippets: Snippet[]; problems: SnippetProblem[] } {
  const snippets: Snippet[] = [];
  const problems: SnippetProblem[] = [];
  for (const doc of docs) {
    const lines = readFileSync(resolve(root, doc), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const open = /^(\s*)(`{3,})(\S*)(.*)$/.exec(lines[i]!);
      if (!open) continue;
      const [, indent, fence, lang, info] = open as unknown as [string, string, string, string, string];
      let end = i + 1;
      while (end < lines.length && !(lines[end]!.trim().startsWith(fence) && lines[end]!.trim().replace(/`/g, '') === '')) end++;
      const body = lines.slice(i + 1, end).map((text) => (text.startsWith(indent) ? text.slice(indent.length) : text.trimStart()));
      const previous = (lines[i - 1] ?? '').trim();
      const markerLine = i; // 1-based number of the line before the fence
      i = end;
      const language = lang.toLowerCase();
      if (!(language in CHECKED_LANGUAGES)) {
        if (previous.startsWith('<!-- snippet')) problems.push({ doc, line: markerLine, message: `a snippet marker before a \`\`\`${lang} block, which is not checked` });
        continue;
      }
      const marker = previous.startsWith('<!--') ? parseMarker(previous, doc, markerLine) : undefined;
      if (marker && 'message' in marker) {
        problems.push(marker);
        continue;
      }
      const file = /(?:^|\s)file=(\S+)/.exec(info)?.[1];
      snippets.push({ doc, line: markerLine + 2, lang: language, file, mode: marker ?? { kind: 'run' }, code: body.join('\n') });
    }
  }
  return { snippets, problems };
}

/** `resthooks` and `resthooks/<entry>` → the entry's source file, from tsup.config.ts's `libraryEntries`. */
export function entryPaths(root = ROOT): Record<string, string[]> {
  const config = readFileSync(join(root, 'tsup.config.ts'), 'utf8');
  const block = /const libraryEntries = \{([\s\S]*?)\};/.exec(config)?.[1];
  if (!block) throw new Error('tsup.config.ts: no `const libraryEntries = { … }` to read the entry points from');
  const paths: Record<string, string[]> = {};
  for (const [, name, source] of block.matchAll(/['"]?([\w-]+)['"]?:\s*['"](src\/[^'"]+)['"]/g)) {
    paths[name === 'index' ? 'resthooks' : `resthooks/${name}`] = [join(root, source!)];
  }
  return paths;
}

function snippetFileName(snippet: Snippet): string {
  const slug = snippet.doc.replace(/\.md$/, '').replace(/[^\w]+/g, '-');
  const extension = snippet.file ? extname(snippet.file) : CHECKED_LANGUAGES[snippet.lang]!;
  const stem = snippet.file ? `-${basename(snippet.file, extname(snippet.file)).replace(/[^\w]+/g, '-')}` : '';
  return `${slug}-L${snippet.line}${stem}${extension}`;
}

export interface Workspace {
  readonly dir: string;
  readonly tsconfig: string;
  /** Absolute path of each snippet's file, and how many prelude lines come before its code. */
  readonly files: Map<Snippet, { path: string; preludeLines: number }>;
  cleanup(): void;
}

/** Writes the snippets, a package.json and a tsconfig.json to a scratch directory that resolves the repository's node_modules. */
export function writeWorkspace(snippets: readonly Snippet[], root = ROOT): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'resthooks-snippets-'));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'snippets', private: true, type: 'module' })}\n`);
  const files = new Map<Snippet, { path: string; preludeLines: number }>();
  for (const snippet of snippets.filter((s) => s.mode.kind !== 'skip')) {
    const prelude = snippet.mode.kind === 'prelude' ? snippet.mode.preludes.map((name) => readFileSync(join(PRELUDES, `${name}.ts`), 'utf8')).join('\n') : '';
    const preludeText = prelude === '' ? '' : `${prelude.trimEnd()}\n`;
    const path = join(dir, snippetFileName(snippet));
    writeFileSync(path, `${preludeText}${snippet.code}\n`);
    files.set(snippet, { path, preludeLines: preludeText === '' ? 0 : preludeText.split('\n').length - 1 });
  }
  const tsconfig = join(dir, 'tsconfig.json');
  const compilerOptions = {
    // What a user's strict project has; the repository's extra checks (unused locals, indexed access) are
    // for its own code, not for examples that show one thing at a time.
    strict: true,
    target: 'ES2022',
    lib: ['ES2023'],
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    moduleDetection: 'force',
    esModuleInterop: true,
    skipLibCheck: true,
    allowJs: true,
    checkJs: true,
    jsx: 'react-jsx',
    noEmit: true,
    types: ['node'],
    paths: entryPaths(root),
  };
  // The source's own ambient declarations (modules it imports that ship no types), which imports alone do not reach.
  const declarations = (readdirSync(join(root, 'src'), { recursive: true }) as string[]).filter((f) => f.endsWith('.d.ts')).map((f) => join(root, 'src', f));
  writeFileSync(tsconfig, `${JSON.stringify({ compilerOptions, files: [...[...files.values()].map((f) => f.path), ...declarations] }, null, 2)}\n`);
  return { dir, tsconfig, files, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** tsc over every snippet at once; each error is given back at its line in the Markdown file. */
export function typecheck(workspace: Workspace, root = ROOT): SnippetProblem[] {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', workspace.tsconfig, '--pretty', 'false'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const output = `${result.stdout}${result.stderr}`;
  if (result.status === 0) return [];
  const byPath = new Map([...workspace.files].map(([snippet, file]) => [file.path, { snippet, ...file }]));
  const problems: SnippetProblem[] = [];
  for (const block of output.split(/\n(?=\S)/)) {
    const match = /^(.+?)\((\d+),(\d+)\): error (TS\d+): ([\s\S]*)$/.exec(block.trim());
    if (!match) {
      if (block.trim() !== '') problems.push({ doc: 'tsc', line: 0, message: block.trim() });
      continue;
    }
    const [, path, lineText, column, code, message] = match as unknown as [string, string, string, string, string, string];
    const found = byPath.get(resolve(workspace.dir, path));
    const line = Number(lineText);
    if (!found) {
      problems.push({ doc: relative(root, resolve(workspace.dir, path)), line, message: `${code}: ${message.trim()} (column ${column}; reached from a snippet)` });
    } else if (line <= found.preludeLines) {
      problems.push({ doc: found.snippet.doc, line: found.snippet.line, message: `${code} in its prelude (line ${line}): ${message.trim()}` });
    } else {
      problems.push({ doc: found.snippet.doc, line: found.snippet.line + line - found.preludeLines - 1, message: `${code}: ${message.trim()} (column ${column})` });
    }
  }
  if (problems.length === 0) problems.push({ doc: 'tsc', line: 0, message: `exited ${result.status}: ${output.trim()}` });
  return problems;
}

export interface RunResult {
  readonly code: number | null;
  readonly output: string;
  /** Whether a server snippet was sent its SIGTERM. */
  readonly signalled: boolean;
}

/** Why a run failed, or undefined when it did what its marker says. */
export function runFailure(snippet: Snippet, result: RunResult): string | undefined {
  const sigtermAfter = snippet.mode.kind === 'run' ? snippet.mode.sigtermAfter : undefined;
  if (sigtermAfter && !result.signalled) return `never printed "${sigtermAfter}", so it was never sent SIGTERM:\n${result.output}`;
  if (result.code !== 0) return `exited ${result.code}${result.signalled ? ' after SIGTERM' : ''}:\n${result.output}`;
  return undefined;
}

/**
 * Runs one snippet's file with node through tsx, in `cwd`, with `env` added; kills it after `timeoutMs`. A server
 * snippet (`sigterm-after`) gets SIGTERM once its output shows the word it waits for.
 */
export function runSnippet(workspace: Workspace, snippet: Snippet, options: { cwd: string; env: Record<string, string>; timeoutMs: number }, root = ROOT): Promise<RunResult> {
  const file = workspace.files.get(snippet);
  if (!file) throw new Error(`${snippet.doc}:${snippet.line} is not in this workspace`);
  const tsx = join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs');
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, ['--import', tsx, file.path], {
      cwd: options.cwd,
      env: { ...process.env, TSX_TSCONFIG_PATH: workspace.tsconfig, NODE_OPTIONS: '', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let signalled = false;
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (snippet.mode.kind === 'run' && snippet.mode.sigtermAfter && !signalled && output.includes(snippet.mode.sigtermAfter)) {
        signalled = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      output += `\n[killed: still running after ${options.timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, output, signalled });
    });
  });
}

export function describeMode(mode: SnippetMode): string {
  if (mode.kind === 'prelude') return `fragment (prelude ${mode.preludes.join(', ')})`;
  if (mode.kind === 'typecheck-only') return `typecheck-only: ${mode.reason}`;
  if (mode.kind === 'skip') return `skipped: ${mode.reason}`;
  return mode.sigtermAfter ? `server (run, SIGTERM after "${mode.sigtermAfter}")` : 'program (run)';
}

/** By file, then line: the order a reader fixes them in. */
export function sortProblems(problems: readonly SnippetProblem[]): SnippetProblem[] {
  return [...problems].sort((a, b) => a.doc.localeCompare(b.doc) || a.line - b.line);
}

export function formatProblem(problem: SnippetProblem): string {
  return problem.line > 0 ? `${problem.doc}:${problem.line}: ${problem.message}` : `${problem.doc}: ${problem.message}`;
}

async function main(argv: readonly string[]): Promise<number> {
  const run = argv.includes('--run');
  const docs = argv.filter((arg) => !arg.startsWith('--'));
  const { snippets, problems } = extractSnippets(docs.length > 0 ? docs : undefined);
  const workspace = writeWorkspace(snippets);
  try {
    for (const snippet of snippets) console.log(`${snippet.doc}:${snippet.line}  ${snippet.lang}${snippet.file ? ` file=${snippet.file}` : ''}  ${describeMode(snippet.mode)}`);
    problems.push(...typecheck(workspace));
    if (run && problems.length === 0) {
      for (const snippet of snippets.filter((s) => s.mode.kind === 'run')) {
        const cwd = join(workspace.dir, `run-L${snippet.line}-${basename(snippet.doc, '.md')}`);
        mkdirSync(cwd);
        // A server snippet listens on PORT: a free one unless told otherwise.
        const env: Record<string, string> = { PORT: process.env.PORT ?? '0' };
        for (const name of ['DATABASE_URL', 'REDIS_URL', 'TARGET_URL']) if (process.env[name]) env[name] = process.env[name]!;
        const result = await runSnippet(workspace, snippet, { cwd, env, timeoutMs: 60_000 });
        const failure = runFailure(snippet, result);
        if (failure) problems.push({ doc: snippet.doc, line: snippet.line, message: failure });
      }
    }
  } finally {
    workspace.cleanup();
  }
  for (const problem of sortProblems(problems)) console.error(formatProblem(problem));
  console.log(`${snippets.length} blocks, ${problems.length} problems`);
  return problems.length === 0 ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
