/**
 * Dedupe under any interleaving: fast-check's scheduler decides the order in which deliveries
 * reach the handler and Slack answers, and whether each answer is a success or a 500.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMemoryLedger, createWebhookHandler } from '../handler.ts';
import { delivery, installEvent, SLACK_URL, TEST_SECRET } from './support/deliveries.ts';

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('dedupe by event id', () => {
  it('posts at most once per id and answers 200 for every posted id afterwards', async () => {
    await fc.assert(
      fc
        .asyncProperty(
          fc.scheduler(),
          fc.array(fc.constantFrom('evt_a', 'evt_b', 'evt_c'), { minLength: 1, maxLength: 8 }),
          fc.array(fc.constantFrom('evt_a', 'evt_b', 'evt_c'), { maxLength: 8 }),
          fc.infiniteStream(fc.boolean()),
          async (scheduler, firstWave, laterWave, slackSucceeds) => {
            const ids = [...firstWave, ...laterWave];
            const postsById = new Map<string, number>();
            vi.stubGlobal('fetch', async (_url: string, init: RequestInit) => {
              const { text } = JSON.parse(String(init.body)) as { text: string };
              await scheduler.schedule(Promise.resolve(), `slack answers ${text}`);
              if (!slackSucceeds.next().value) return new Response('down', { status: 500 });
              postsById.set(text, (postsById.get(text) ?? 0) + 1);
              return new Response('ok');
            });
            const handler = createWebhookHandler({
              signingSecrets: [TEST_SECRET],
              slackWebhookUrl: SLACK_URL,
              ledger: createMemoryLedger(),
            });
            const send = (id: string) => handler.fetch(delivery(eventFor(id)));

            // The first wave is in flight together; each later copy arrives at a moment the
            // scheduler picks among Slack's answers.
            const answers = [
              ...firstWave.map(send),
              ...laterWave.map((id) =>
                scheduler.schedule(Promise.resolve(id), `deliver ${id}`).then(send),
              ),
            ];
            await settle(scheduler);
            await scheduler.waitFor(Promise.all(answers));

            for (const count of postsById.values()) expect(count).toBe(1);
            for (const id of new Set(ids)) {
              if (!postsById.has(messageFor(id))) continue;
              const again = await send(id);
              expect(await again.json()).toEqual({ ok: true, outcome: 'duplicate' });
            }
            for (const answer of await Promise.all(answers)) {
              expect([200, 503]).toContain(answer.status);
            }
          },
        )
        .beforeEach(() => vi.unstubAllGlobals()),
      { numRuns: 200 },
    );
  });
});

// Helpers

/**
 * Lets every copy of the first wave finish verifying (WebCrypto answers on a later turn of the
 * event loop) and reach a scheduled point, so they are all in flight before any answer.
 */
async function settle(scheduler: fc.Scheduler): Promise<void> {
  let stableTurns = 0;
  for (let turn = 0; turn < 200 && stableTurns < 5; turn++) {
    const before = scheduler.count();
    await new Promise((resolve) => setImmediate(resolve));
    stableTurns = scheduler.count() === before ? stableTurns + 1 : 0;
  }
}

function eventFor(id: string) {
  return installEvent({
    id,
    data: { buyer: { email: `${id}@example.com` }, pack: { name: 'Pack' } },
  });
}

function messageFor(id: string): string {
  return `${id}@example.com just installed Pack`;
}
