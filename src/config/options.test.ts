import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { resolveDeliveryOptions } from './options.js';

describe('delivery options: fairness knobs', () => {
  it('defaults: half the free slots per owner; a subscription may use as many attempts as its origin', () => {
    expect(resolveDeliveryOptions()).toMatchObject({ ownerShare: 0.5, connectionsPerOrigin: 16, concurrencyPerSubscription: 16 });
    expect(resolveDeliveryOptions({ connectionsPerOrigin: 4 })).toMatchObject({ concurrencyPerSubscription: 4 });
    expect(resolveDeliveryOptions({ concurrencyPerSubscription: 2, ownerShare: 1 })).toMatchObject({ concurrencyPerSubscription: 2, ownerShare: 1 });
  });

  it.each([0, -0.5, 1.5, Number.NaN])('ownerShare %s is refused at start-up', (ownerShare) => {
    expect(() => resolveDeliveryOptions({ ownerShare })).toThrow(ConfigError);
  });

  it('concurrencyPerSubscription must be a positive integer', () => {
    expect(() => resolveDeliveryOptions({ concurrencyPerSubscription: 0 })).toThrow(/delivery.concurrencyPerSubscription must be a positive integer/);
  });
});
