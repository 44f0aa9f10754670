/**
 * Counters, histograms and gauges written in the Prometheus text exposition format (version 0.0.4).
 * Written by hand rather than with prom-client: the core stays free of dependencies, and the few
 * metric kinds the engine needs fit in this file.
 * @module
 */

export type Labels = Readonly<Record<string, string>>;

// Label values may hold anything; the format escapes backslash, double quote and line feed.
const escapeLabel = (value: string) => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escapeHelp = (text: string) => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

// Runs on every count (each trigger, each attempt): a loop over the few labels, no arrays, and no
// regular expressions for the values that need no escaping (nearly all).
function labelText(labels: Labels): string {
  let text = '';
  for (const name in labels) {
    const value = labels[name]!;
    text += `${text === '' ? '{' : ','}${name}="${NEEDS_ESCAPE.test(value) ? escapeLabel(value) : value}"`;
  }
  return text === '' ? '' : `${text}}`;
}

const NEEDS_ESCAPE = /[\\"\n]/;

function numberText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function header(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
}

/** A counter per label set; the label sets listed at construction are shown from the start, at 0. */
export class Counter {
  readonly #values = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    initial: readonly Labels[] = [{}],
  ) {
    for (const labels of initial) this.#values.set(labelText(labels), { labels, value: 0 });
  }

  inc(labels: Labels = {}, by = 1): void {
    this.#entry(labels).value += by;
  }

  /** The count of one label set, to add to without building its label text each time (hot paths). */
  labelled(labels: Labels): { inc(by?: number): void } {
    const entry = this.#entry(labels);
    return {
      inc(by = 1) {
        entry.value += by;
      },
    };
  }

  #entry(labels: Labels): { labels: Labels; value: number } {
    const key = labelText(labels);
    let entry = this.#values.get(key);
    if (!entry) this.#values.set(key, (entry = { labels, value: 0 }));
    return entry;
  }

  value(labels: Labels = {}): number {
    return this.#values.get(labelText(labels))?.value ?? 0;
  }

  render(): string {
    let text = header(this.name, 'counter', this.help);
    for (const [key, { value }] of this.#values) text += `${this.name}${key} ${numberText(value)}\n`;
    return text;
  }
}

/** A histogram without labels: cumulative buckets (`le`), their sum and their count. */
export class Histogram {
  readonly #bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    bounds: readonly number[],
  ) {
    this.#bounds = [...bounds].sort((a, b) => a - b);
    this.#counts = this.#bounds.map(() => 0);
  }

  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    // Counted in the first bucket that holds it; rendering makes the counts cumulative.
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.#counts[i]!++;
        return;
      }
    }
  }

  render(): string {
    let text = header(this.name, 'histogram', this.help);
    let cumulative = 0;
    this.#bounds.forEach((bound, i) => {
      cumulative += this.#counts[i]!;
      text += `${this.name}_bucket{le="${numberText(bound)}"} ${cumulative}\n`;
    });
    text += `${this.name}_bucket{le="+Inf"} ${this.#count}\n${this.name}_sum ${numberText(this.#sum)}\n${this.name}_count ${this.#count}\n`;
    return text;
  }
}

/** A gauge read at scrape time: one sample per label set. */
export function gaugeText(name: string, help: string, samples: ReadonlyArray<readonly [Labels, number]>): string {
  let text = header(name, 'gauge', help);
  for (const [labels, value] of samples) text += `${name}${labelText(labels)} ${numberText(value)}\n`;
  return text;
}
