import { describe, expect, it } from 'vitest';
import { Counter } from './prometheus-text.js';

describe('Counter', () => {
  it('keeps one value per label set, in the order the labels are given', () => {
    const counter = new Counter('x_total', 'X.', [{ outcome: 'delivered' }]);
    counter.inc({ outcome: 'delivered' });
    counter.inc({ outcome: 'delivered' }, 2);
    counter.inc({ outcome: 'retry', origin: 'a' });
    expect(counter.value({ outcome: 'delivered' })).toBe(3);
    expect(counter.value({ outcome: 'retry', origin: 'a' })).toBe(1);
    expect(counter.render()).toBe('# HELP x_total X.\n# TYPE x_total counter\nx_total{outcome="delivered"} 3\nx_total{outcome="retry",origin="a"} 1\n');
  });

  it('counts without labels under the bare name', () => {
    const counter = new Counter('y_total', 'Y.');
    counter.inc();
    expect(counter.render()).toContain('\ny_total 1\n');
  });

  it('escapes backslash, double quote and line feed in label values, as the text format requires', () => {
    const counter = new Counter('z_total', 'Z.', []);
    counter.inc({ target: 'a\\b"c\nd' });
    expect(counter.render()).toContain('z_total{target="a\\\\b\\"c\\nd"} 1\n');
    expect(counter.value({ target: 'a\\b"c\nd' })).toBe(1);
  });
});

describe('Counter.labelled', () => {
  it('adds to the same count as inc() with those labels, and shows at 0 until then', () => {
    const counter = new Counter('w_total', 'W.', []);
    const queued = counter.labelled({ status: 'queued' });
    expect(counter.render()).toContain('w_total{status="queued"} 0\n');
    queued.inc();
    queued.inc(2);
    counter.inc({ status: 'queued' });
    expect(counter.value({ status: 'queued' })).toBe(4);
  });
});
