import { describe, expect, it } from 'vitest';
import { resolveDeliveryOptions } from '../config/options.js';
import { silentLogger } from '../logger.js';
import type { Admission, GatePass, GateRequest, ReceiverVerdict, SendGate } from '../queue/send-gate.js';
import type { ClaimedDelivery } from '../store/kysely-store.js';
import { AttemptRunner } from './attempt-runner.js';
import { Sender } from './sender.js';

/** A gate that admits everything and never confirms a finish (a shared gate still waiting to send it). */
class UnconfirmedGate implements SendGate {
  readonly finished: Array<{ pass: GatePass; verdict: ReceiverVerdict }> = [];
  #passes = 0;

  async admit(request: GateRequest): Promise<Admission> {
    return { admitted: true, pass: { id: `pass-${++this.#passes}`, request, probe: false } };
  }

  finish(pass: GatePass, verdict: ReceiverVerdict): Promise<void> {
    this.finished.push({ pass, verdict });
    return new Promise<void>(() => {});
  }
}

const claim: ClaimedDelivery = {
  id: 'dlv_1',
  eventId: 'evt_1',
  subscriptionId: 'sub_1',
  attempt: 1,
  leaseUntil: Date.now() + 60_000,
  body: null,
  event: { name: 'book.added', model: 'Book', action: 'created', owner: 'alice', allOwners: false, data: '{"id":1}', body: null, createdAt: Date.now() },
  subscription: { id: 'sub_1', owner: 'alice', event: 'book.added', target: 'https://receiver.test/hook', active: true, secret: 'whsec_test', previousSecrets: null, failingSince: null, maxPerSecond: null },
};

describe('AttemptRunner', () => {
  it("returns the attempt's record without waiting for the gate to confirm its finish (a shared gate sends it with its next admissions)", async () => {
    const gate = new UnconfirmedGate();
    const runner = new AttemptRunner({
      sender: new Sender(),
      options: resolveDeliveryOptions(),
      deliverer: async () => ({ statusCode: 200 }),
      wantsSentInfo: false,
      logger: silentLogger,
      gate,
    });
    const finished = await runner.run(claim, new AbortController().signal);
    expect(finished.record?.delivery).toMatchObject({ id: 'dlv_1', status: 'delivered', last_status_code: 200 });
    expect(gate.finished).toEqual([{ pass: expect.objectContaining({ id: 'pass-1' }), verdict: { kind: 'fine' } }]);
  });
});
