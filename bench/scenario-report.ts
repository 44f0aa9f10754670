/**
 * What every scenario of `npm run bench` hands back, and where its section lives in docs/benchmarks.md:
 * between two markers, so that a scenario run alone (`npm run bench -- --only <name>`) replaces its own
 * section and leaves the rest of the page as the last full run wrote it.
 * @module
 */
import type { AdapterCost } from './orm-insert.js';
import type { Receiver } from './receiver-process.js';

export interface ScenarioContext {
  readonly rx: Receiver;
  /** A temp dir for the scenario's files; the run removes it. */
  readonly dir: string;
  /** The length of the body resthooks sends for the bench's book, so a ceiling sends the same size. */
  readonly bodyLength: number;
  readonly log: (line: string) => void;
  /** The ORM adapters' table of the same run, when the full run measured it (the `{ tx }` scenario reuses its raw SQLite rows). */
  readonly adapterCosts?: readonly AdapterCost[];
}

export interface ScenarioReport {
  readonly name: string;
  /** The section's Markdown lines, heading first. */
  readonly lines: readonly string[];
  /** One line per target: "met", or "missed" with the measured reason. */
  readonly verdicts: readonly string[];
  /** When, how loaded and by which command it was measured (set by the runner). */
  readonly measured?: string;
}

export interface Scenario {
  readonly name: string;
  run(context: ScenarioContext): Promise<ScenarioReport>;
}

const start = (name: string) => `<!-- scenario:${name}:start (written by \`npm run bench\`, or alone by \`npm run bench -- --only ${name}\`) -->`;
const end = (name: string) => `<!-- scenario:${name}:end -->`;

/** The report's lines between its markers. */
export function sectionOf(report: ScenarioReport): string[] {
  const [heading = '', ...rest] = report.lines;
  return [start(report.name), '', heading, ...(report.measured ? ['', report.measured] : []), ...rest, '', end(report.name)];
}

/**
 * The page with the report's section replaced, or appended before `before` (a heading) when the page
 * has none yet.
 */
export function spliceSection(page: string, report: ScenarioReport, before: string): string {
  const section = sectionOf(report).join('\n');
  const from = page.indexOf(start(report.name).slice(0, start(report.name).indexOf(' (')));
  const to = page.indexOf(end(report.name));
  if (from >= 0 && to > from) return page.slice(0, from) + section + page.slice(to + end(report.name).length);
  const at = page.indexOf(before);
  return at >= 0 ? `${page.slice(0, at)}${section}\n\n${page.slice(at)}` : `${page.trimEnd()}\n\n${section}\n`;
}
