/**
 * What a restart does to deliveries, on each runtime: SIGTERM lets in-flight deliveries
 * finish, and the file ledger keeps a posted event from being posted again after a restart,
 * whether the process stopped cleanly or was killed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type LocalServer, listenLocal } from '../simulator/listen.ts';
import { createSlackSink } from '../simulator/slack-sink.ts';
import { installEvent, sign, TEST_SECRET } from './support/deliveries.ts';
import { type HandlerProcess, RUNTIMES, startHandler } from './support/runtimes.ts';

const sink = createSlackSink();
let sinkServer: LocalServer;
let folder: string;
let slackArrivals = 0;
const running: HandlerProcess[] = [];

beforeAll(async () => {
  sinkServer = await listenLocal((request) => {
    slackArrivals++;
    return sink.fetch(request);
  }, 0);
  folder = mkdtempSync(join(tmpdir(), 'lifecycle-'));
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((handler) => handler.stop('SIGKILL')));
  sink.reset();
});
afterAll(async () => {
  await sinkServer.close();
  rmSync(folder, { recursive: true, force: true });
});

describe.each(RUNTIMES)('handler.ts lifecycle on %s', (runtime) => {
  const start = async (extra: Record<string, string> = {}) => {
    const handler = await startHandler(runtime, {
      PLATFORM_SIGNING_SECRET: TEST_SECRET,
      SLACK_WEBHOOK_URL: `http://127.0.0.1:${sinkServer.port}/services/lifecycle`,
      ...extra,
    });
    running.push(handler);
    return handler;
  };

  it('finishes an in-flight delivery on SIGTERM, then exits 0', async () => {
    const handler = await start();
    sink.fail({ delayMs: 1_000 });
    const arrivalsBefore = slackArrivals;
    const answer = send(handler, `evt_drain_${runtime}`);
    await waitFor(() => slackArrivals > arrivalsBefore, 5_000);

    const exit = handler.stop('SIGTERM');
    expect((await answer).status).toBe(200);
    expect(await exit).toBe(0);
    expect(sink.messages.map((m) => m.text)).toEqual([
      `evt_drain_${runtime}@example.com just installed Lifecycle Pack`,
    ]);
  });

  it.each(['SIGTERM', 'SIGKILL'] as const)(
    'does not post an event again after a %s restart with DEDUPE_FILE',
    async (signal) => {
      const env = { DEDUPE_FILE: join(folder, `${runtime}-${signal}.jsonl`) };
      const first = await start(env);
      const id = `evt_restart_${runtime}_${signal}`;
      expect(await (await send(first, id)).json()).toEqual({ ok: true, outcome: 'posted' });
      await first.stop(signal);

      const second = await start(env);
      expect(await (await send(second, id)).json()).toEqual({ ok: true, outcome: 'duplicate' });
      expect(sink.messages).toHaveLength(1);
    },
  );
});

// Helpers

function send(handler: HandlerProcess, id: string): Promise<Response> {
  const event = installEvent({
    id,
    data: { buyer: { email: `${id}@example.com` }, pack: { name: 'Lifecycle Pack' } },
  });
  const body = JSON.stringify(event);
  return fetch(`${handler.origin}/webhooks/platform`, {
    method: 'POST',
    headers: { 'x-platform-signature': sign(body) },
    body,
  });
}

/** Waits until `done()` or `atMostMs` passes; the caller asserts what it needs afterwards. */
async function waitFor(done: () => boolean, atMostMs: number): Promise<void> {
  const deadline = Date.now() + atMostMs;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}
