import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { reconcile } from '../simulator/chaos.ts';
import type { DeliveryResult } from '../simulator/deliver.ts';
import type { PlatformEvent } from '../simulator/events.ts';
import {
  createFaultyFetch,
  createRandom,
  pickSlackFault,
  type SlackFaults,
  shuffle,
} from '../simulator/faults.ts';
import type { SinkMessage } from '../simulator/slack-sink.ts';

describe('reconcile', () => {
  const at = (ms: number) => new Date(ms).toISOString();
  const events = [install('evt_a'), install('evt_b'), install('evt_c')];

  it('passes when each event has exactly one message', () => {
    const report = reconcile(
      events,
      results(['evt_a', 'evt_b', 'evt_c']),
      [message('evt_a', 0), message('evt_b', 0), message('evt_c', 0)],
      [],
    );
    expect(report).toMatchObject({ lost: 0, duplicated: 0, in_doubt: 0, verdict: 'pass' });
  });

  it('counts a delivered event with no message as lost', () => {
    const report = reconcile(
      events,
      results(['evt_a', 'evt_b', 'evt_c']),
      [message('evt_a', 0), message('evt_b', 0)],
      [],
    );
    expect(report).toMatchObject({ lost: 1, verdict: 'fail' });
    expect(report.findings).toEqual([
      { id: 'evt_c', kind: 'lost', messages: 0, dead_lettered: false },
    ]);
  });

  it('does not count a dead-lettered event without a message as lost', () => {
    const report = reconcile(
      events,
      results(['evt_a', 'evt_b']),
      [message('evt_a', 0), message('evt_b', 0)],
      [],
    );
    expect(report).toMatchObject({ lost: 0, dead_lettered: 1, verdict: 'pass' });
  });

  it('counts two messages with no kill near the first as duplicated', () => {
    const messages = [message('evt_a', 1_000), message('evt_a', 5_000)];
    const kills = [{ killedAtMs: 3_000, restartedAtMs: 3_400 }];
    const report = reconcile(events.slice(0, 1), results(['evt_a']), messages, kills);
    expect(report).toMatchObject({ duplicated: 1, in_doubt: 0, verdict: 'fail' });
  });

  it.each([
    ['just before the kill', 950],
    ['after the kill, before the next handler listened', 1_300],
  ])('counts two messages as in doubt when the first reached Slack %s', (_when, ms) => {
    const messages = [message('evt_a', ms), message('evt_a', 5_000)];
    const kills = [{ killedAtMs: 1_000, restartedAtMs: 1_400 }];
    const report = reconcile(events.slice(0, 1), results(['evt_a']), messages, kills);
    expect(report).toMatchObject({ duplicated: 0, in_doubt: 1, verdict: 'pass' });
  });

  it('does not excuse a first post taken in after the next handler listened', () => {
    const messages = [message('evt_a', 1_500), message('evt_a', 5_000)];
    const kills = [{ killedAtMs: 1_000, restartedAtMs: 1_400 }];
    const report = reconcile(events.slice(0, 1), results(['evt_a']), messages, kills);
    expect(report).toMatchObject({ duplicated: 1, verdict: 'fail' });
  });

  // Helpers local to these examples.
  function install(id: string): PlatformEvent {
    return {
      id,
      type: 'install.created',
      created_at: at(0),
      data: { buyer: { email: `ada+${id}@example.com` }, pack: { name: 'P' } },
    };
  }
  function results(deliveredIds: string[]): DeliveryResult[] {
    return events.map((event) => ({
      event,
      delivered: deliveredIds.includes(event.id),
      attempts: [],
      duration_ms: 1,
    }));
  }
  function message(id: string, ms: number): SinkMessage {
    const text = `ada+${id}@example.com just installed P`;
    return { path: '/', text, body: { text }, received_at: at(ms), answered_at: at(ms + 1) };
  }
});

describe('pickSlackFault', () => {
  const faults: SlackFaults = {
    share500: 0.1,
    share429Short: 0.1,
    share429Long: 0.1,
    shareSlow: 0.1,
    slowMs: 500,
    longRetryAfterSeconds: 30,
  };

  it.each([
    [0.05, { status: 500 }],
    [0.15, { status: 429, retryAfterSeconds: 0 }],
    [0.25, { status: 429, retryAfterSeconds: 30 }],
    [0.35, { delayMs: 500 }],
    [0.5, null],
  ])('maps a roll of %d to its fault', (roll, expected) => {
    expect(pickSlackFault(faults, () => roll)).toEqual(expected);
  });
});

describe('createRandom', () => {
  it('gives the same sequence for the same seed, in [0, 1)', () => {
    fc.assert(
      fc.property(fc.nat(), (seed) => {
        const a = createRandom(seed);
        const b = createRandom(seed);
        for (let i = 0; i < 20; i++) {
          const value = a();
          expect(value).toBe(b());
          expect(value >= 0 && value < 1).toBe(true);
        }
      }),
    );
  });
});

describe('shuffle', () => {
  it('always keeps every item exactly once', () => {
    fc.assert(
      fc.property(fc.array(fc.integer()), fc.nat(), (items, seed) => {
        const shuffled = shuffle(items, createRandom(seed));
        expect([...shuffled].sort()).toEqual([...items].sort());
      }),
    );
  });
});

describe('createFaultyFetch', () => {
  it('sends a dropped attempt in full, then fails it although the target answered', async () => {
    const received: string[] = [];
    const server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => {
        body += chunk;
      });
      request.on('end', () => {
        received.push(body);
        response.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const faultyFetch = createFaultyFetch({ delayShare: 0, maxDelayMs: 0, dropShare: 1 }, () => 0);
    try {
      await expect(
        faultyFetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: 'hello' }),
      ).rejects.toThrow(/dropped/);
      expect(received).toEqual(['hello']);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
