import { delay, HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createMemoryLedger,
  createWebhookHandler,
  type DeliveryLogLine,
  type HandlerOptions,
} from '../handler.ts';
import { delivery, installEvent, SLACK_URL, sign, TEST_SECRET } from './support/deliveries.ts';

const slackPosts: unknown[] = [];
const slack = setupServer(
  http.post(SLACK_URL, async ({ request }) => {
    slackPosts.push(await request.json());
    return HttpResponse.text('ok');
  }),
);

beforeAll(() => slack.listen({ onUnhandledRequest: 'error' }));
afterEach(() => {
  slack.resetHandlers();
  slackPosts.length = 0;
});
afterAll(() => slack.close());

describe('POST /webhooks/platform', () => {
  it('posts the install to Slack as exactly this JSON', async () => {
    const { handler } = setup();
    const response = await handler.fetch(delivery(installEvent()));

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, outcome: 'posted' });
    expect(slackPosts).toEqual([
      { text: 'ada@example.com just installed Support Triage Pack', mrkdwn: false },
    ]);
  });

  it('escapes a buyer email that tries to mention the channel', async () => {
    const { handler } = setup();
    const event = installEvent({
      data: { buyer: { email: '<!channel>@x.io' }, pack: { name: '<https://evil|Free>' } },
    });
    await handler.fetch(delivery(event));
    expect(slackPosts).toEqual([
      { text: '&lt;!channel&gt;@x.io just installed &lt;https://evil|Free&gt;', mrkdwn: false },
    ]);
  });

  it('answers 401 missing_signature and posts nothing when the header is absent', async () => {
    const { handler } = setup();
    const response = await handler.fetch(delivery(installEvent(), { signature: null }));
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: 'missing_signature' });
    expect(slackPosts).toEqual([]);
  });

  it('answers 401 signature_mismatch for a body signed with another secret', async () => {
    const { handler } = setup();
    const response = await handler.fetch(delivery(installEvent(), { secret: 'nope' }));
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: 'signature_mismatch' });
  });

  it('answers 401 malformed_signature for a sha256= prefix', async () => {
    const { handler } = setup();
    const body = JSON.stringify(installEvent());
    const response = await handler.fetch(delivery(body, { signature: `sha256=${sign(body)}` }));
    expect(await response.json()).toMatchObject({ error: 'malformed_signature' });
  });

  it('verifies before parsing: unsigned junk is 401, not 400', async () => {
    const { handler } = setup();
    const response = await handler.fetch(delivery('not json', { signature: 'a'.repeat(64) }));
    expect(response.status).toBe(401);
  });

  it('answers 400 invalid_json for a signed body that is not JSON', async () => {
    const { handler } = setup();
    const response = await handler.fetch(delivery('not json'));
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_json' });
  });

  it('answers 400 invalid_event for a signed install without a buyer email', async () => {
    const { handler } = setup();
    const response = await handler.fetch(delivery(installEvent({ data: { pack: { name: 'P' } } })));
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_event' });
  });

  it('answers 413 for a body over the limit without reading it all', async () => {
    const { handler } = setup({ maxBodyBytes: 1024 });
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(512));
        if (pulled > 1000) controller.close();
      },
    });
    const response = await handler.fetch(streamedDelivery(endless));
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: 'body_too_large' });
    expect(pulled).toBeLessThan(10);
  });

  it('answers 413 from Content-Length alone when it is over the limit', async () => {
    const { handler } = setup({ maxBodyBytes: 1024 });
    const response = await handler.fetch(
      delivery(installEvent(), { headers: { 'content-length': String(1024 * 1024) } }),
    );
    expect(response.status).toBe(413);
  });

  it('answers 415 for a gzip-encoded body', async () => {
    const { handler } = setup();
    const response = await handler.fetch(
      delivery(installEvent(), { headers: { 'content-encoding': 'gzip' } }),
    );
    expect(response.status).toBe(415);
    expect(await response.json()).toMatchObject({ error: 'unsupported_encoding' });
  });

  it('answers 405 with Allow for another method', async () => {
    const { handler } = setup();
    const response = await handler.fetch(new Request('http://handler.test/webhooks/platform'));
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
  });

  it('answers 404 as JSON for an unknown path', async () => {
    const { handler } = setup();
    const response = await handler.fetch(new Request('http://handler.test/nope'));
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: 'not_found' });
  });

  it('acknowledges an unknown event type without posting', async () => {
    const { handler, lines } = setup();
    const response = await handler.fetch(delivery(installEvent({ type: 'pack.renamed' })));
    expect(await response.json()).toEqual({ ok: true, outcome: 'ignored' });
    expect(slackPosts).toEqual([]);
    expect(lines[0]).toMatchObject({ outcome: 'ignored', type: 'pack.renamed' });
  });

  it('logs daily usage without posting', async () => {
    const { handler } = setup();
    const event = installEvent({
      type: 'usage.metered.daily',
      data: { pack: { name: 'P' }, date: '2026-12-01', units: 3 },
    });
    expect(await (await handler.fetch(delivery(event))).json()).toMatchObject({
      outcome: 'logged',
    });
    expect(slackPosts).toEqual([]);
  });

  it('logs the message as not sent when no Slack URL is configured', async () => {
    const { handler, lines } = setup({ slackWebhookUrl: undefined });
    const response = await handler.fetch(delivery(installEvent()));
    expect(await response.json()).toEqual({ ok: true, outcome: 'not_sent' });
    expect(lines[0]).toMatchObject({
      outcome: 'not_sent',
      text: 'ada@example.com just installed Support Triage Pack',
    });
  });
});

describe('Slack failures', () => {
  it.each([500, 503])(
    'answers 503 when Slack answers %i, so the Platform retries',
    async (code) => {
      slack.use(http.post(SLACK_URL, () => new HttpResponse('oops', { status: code })));
      const { handler } = setup();
      const response = await handler.fetch(delivery(installEvent()));
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ error: 'slack_unavailable' });
    },
  );

  it('answers 503 past the retry budget for a 429, passing Retry-After on', async () => {
    slack.use(
      http.post(
        SLACK_URL,
        () => new HttpResponse('rate_limited', { status: 429, headers: { 'retry-after': '30' } }),
      ),
    );
    const { handler } = setup();
    const response = await handler.fetch(delivery(installEvent()));
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('30');
  });

  it('waits out a short Retry-After inside the request, then posts', async () => {
    slack.use(
      http.post(
        SLACK_URL,
        () => new HttpResponse('rate_limited', { status: 429, headers: { 'retry-after': '1' } }),
        { once: true },
      ),
    );
    const waits: number[] = [];
    const { handler } = setup({ sleep: async (ms) => void waits.push(ms) });
    const response = await handler.fetch(delivery(installEvent()));
    expect(response.status).toBe(200);
    expect(waits).toEqual([1000]);
    expect(slackPosts).toHaveLength(1);
  });

  it('stops waiting when Slack keeps answering Retry-After: 0', async () => {
    let calls = 0;
    slack.use(
      http.post(SLACK_URL, () => {
        calls++;
        return new HttpResponse('', { status: 429, headers: { 'retry-after': '0' } });
      }),
    );
    const { handler } = setup({ sleep: async () => {} });
    expect((await handler.fetch(delivery(installEvent()))).status).toBe(503);
    expect(calls).toBe(3);
  });

  it('answers 503 when Slack cannot be reached', async () => {
    slack.use(http.post(SLACK_URL, () => HttpResponse.error()));
    const { handler, lines } = setup();
    expect((await handler.fetch(delivery(installEvent()))).status).toBe(503);
    expect(lines[0]).toMatchObject({ detail: 'slack_unreachable' });
  });

  it('answers 503 when Slack is slower than the timeout', async () => {
    slack.use(
      http.post(SLACK_URL, async () => {
        await delay(500);
        return HttpResponse.text('ok');
      }),
    );
    const { handler, lines } = setup({ slackTimeoutMs: 20 });
    expect((await handler.fetch(delivery(installEvent()))).status).toBe(503);
    expect(lines[0]).toMatchObject({ detail: 'slack_timeout' });
  });

  it('answers 502 and logs Slack error text when Slack rejects the message for good', async () => {
    slack.use(http.post(SLACK_URL, () => new HttpResponse('no_service', { status: 404 })));
    const { handler, lines } = setup();
    const response = await handler.fetch(delivery(installEvent()));
    expect(response.status).toBe(502);
    expect(await response.json()).toMatchObject({ error: 'slack_rejected' });
    expect(lines[0]).toMatchObject({
      outcome: 'slack_rejected',
      detail: expect.stringContaining('no_service'),
    });
  });

  it('does not remember a failed post, so the retry posts', async () => {
    slack.use(http.post(SLACK_URL, () => new HttpResponse('', { status: 500 }), { once: true }));
    const { handler } = setup();
    expect((await handler.fetch(delivery(installEvent()))).status).toBe(503);
    expect((await handler.fetch(delivery(installEvent()))).status).toBe(200);
    expect(slackPosts).toHaveLength(1);
  });
});

describe('redeliveries', () => {
  it('answers a second delivery of a posted event 200 without posting again', async () => {
    const { handler } = setup();
    await handler.fetch(delivery(installEvent()));
    const again = await handler.fetch(delivery(installEvent()));
    expect(await again.json()).toEqual({ ok: true, outcome: 'duplicate' });
    expect(slackPosts).toHaveLength(1);
  });

  it('posts once when two copies of one event arrive together', async () => {
    slack.use(
      http.post(SLACK_URL, async ({ request }) => {
        await delay(30);
        slackPosts.push(await request.json());
        return HttpResponse.text('ok');
      }),
    );
    const { handler, lines } = setup();
    const answers = await Promise.all([
      handler.fetch(delivery(installEvent())),
      handler.fetch(delivery(installEvent())),
    ]);
    expect(answers.map((r) => r.status)).toEqual([200, 200]);
    expect(slackPosts).toHaveLength(1);
    // Regression: the joining copy was logged "posted" too, so logs over-counted messages.
    expect(lines.map((line) => [line.outcome, line.detail])).toEqual([
      ['posted', undefined],
      ['duplicate', 'joined_in_flight'],
    ]);
  });

  it('lets no forged copy join a genuine one in flight', async () => {
    const { handler } = setup();
    const [genuine, forged] = await Promise.all([
      handler.fetch(delivery(installEvent())),
      handler.fetch(delivery(installEvent(), { secret: 'forger' })),
    ]);
    expect([genuine.status, forged.status]).toEqual([200, 401]);
  });
});

describe('logging', () => {
  it('writes one line per delivery with id, type, outcome, status and duration', async () => {
    const { handler, lines } = setup();
    await handler.fetch(delivery(installEvent()));
    expect(lines).toEqual([
      {
        at: expect.any(String),
        event_id: 'evt_test_0001',
        type: 'install.created',
        outcome: 'posted',
        status: 200,
        duration_ms: expect.any(Number),
      },
    ]);
  });

  it('never logs the secret or the Slack URL, whatever happens', async () => {
    slack.use(http.post(SLACK_URL, () => new HttpResponse('invalid_token', { status: 403 })));
    const { handler, lines } = setup();
    await handler.fetch(delivery(installEvent()));
    await handler.fetch(delivery(installEvent(), { secret: 'x' }));
    await handler.fetch(delivery('junk'));
    const text = JSON.stringify(lines);
    expect(text).not.toContain(TEST_SECRET);
    expect(text).not.toContain('testtoken');
  });
});

describe('GET /healthz', () => {
  it('answers 200', async () => {
    const { handler } = setup();
    expect((await handler.fetch(new Request('http://handler.test/healthz'))).status).toBe(200);
  });
});

// Helpers

/** A POST whose body arrives as a stream, with no Content-Length, under a made-up signature. */
function streamedDelivery(body: ReadableStream<Uint8Array>): Request {
  return new Request('http://handler.test/webhooks/platform', {
    method: 'POST',
    headers: { 'x-platform-signature': 'a'.repeat(64) },
    body,
    duplex: 'half',
  } as RequestInit);
}

/** Makes Slack hold every post until the returned function is called, then answer ok. */
function holdSlack(): () => void {
  let release = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  slack.use(
    http.post(SLACK_URL, async ({ request }) => {
      await held;
      slackPosts.push(await request.json());
      return HttpResponse.text('ok');
    }),
  );
  return release;
}

function setup(overrides: Partial<HandlerOptions> = {}) {
  const lines: DeliveryLogLine[] = [];
  const handler = createWebhookHandler({
    signingSecrets: [TEST_SECRET],
    slackWebhookUrl: SLACK_URL,
    ledger: createMemoryLedger(),
    log: (line) => lines.push(line),
    ...overrides,
  });
  return { handler, lines };
}

describe('a body that breaks off', () => {
  it('answers 400 body_unreadable when the stream errors mid-body', async () => {
    const { handler, lines } = setup();
    const broken = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"id":'));
        controller.error(new Error('socket hang up'));
      },
    });
    const response = await handler.fetch(streamedDelivery(broken));
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'body_unreadable' });
    expect(lines[0]).toMatchObject({ outcome: 'body_unreadable' });
  });
});

describe('shutting down', () => {
  it('waits for a delivery in flight, and is idle at once when none is', async () => {
    const releaseSlack = holdSlack();
    const { handler } = setup();
    expect(await handler.waitForIdle(10)).toBe(true);

    const answer = handler.fetch(delivery(installEvent()));
    expect(await handler.waitForIdle(20)).toBe(false);
    const idle = handler.waitForIdle(5_000);
    releaseSlack();
    expect((await answer).status).toBe(200);
    expect(await idle).toBe(true);
  });

  it('closes the connection of a delivery that finishes while draining', async () => {
    const { handler } = setup();
    const before = await handler.fetch(delivery(installEvent({ id: 'evt_before_drain' })));
    expect(before.status).toBe(200);
    expect(before.headers.get('connection')).toBeNull();

    const releaseSlack = holdSlack();
    const answer = handler.fetch(delivery(installEvent()));
    await new Promise((resolve) => setTimeout(resolve, 10));
    handler.stopAccepting();
    releaseSlack();
    const drained = await answer;
    expect(drained.status).toBe(200);
    expect(drained.headers.get('connection')).toBe('close');
  });

  it('answers 503 shutting_down to a delivery that arrives after stopAccepting', async () => {
    const { handler } = setup();
    handler.stopAccepting();
    const response = await handler.fetch(delivery(installEvent()));
    expect(response.status).toBe(503);
    expect(response.headers.get('connection')).toBe('close');
    expect(await response.json()).toMatchObject({ error: 'shutting_down' });
    expect(slackPosts).toEqual([]);
  });

  it('still answers /healthz while draining', async () => {
    const { handler } = setup();
    handler.stopAccepting();
    expect((await handler.fetch(new Request('http://handler.test/healthz'))).status).toBe(200);
  });
});

describe('readBodyWithin', () => {
  it('reassembles a body that arrives one byte at a time, byte for byte', async () => {
    const text = JSON.stringify(installEvent({ id: 'evt_trickled' }));
    const bytes = new TextEncoder().encode(text);
    let at = 0;
    const trickle = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at < bytes.length) controller.enqueue(bytes.slice(at, ++at));
        else controller.close();
      },
    });
    const request = new Request('http://handler.test/webhooks/platform', {
      method: 'POST',
      headers: { 'x-platform-signature': sign(text) },
      body: trickle,
      duplex: 'half',
    } as RequestInit);
    const { handler } = setup();
    expect(await (await handler.fetch(request)).json()).toEqual({ ok: true, outcome: 'posted' });
  });

  it('refuses the byte that takes a trickled body past the limit', async () => {
    const { readBodyWithin } = await import('../handler.ts');
    const chunks = [new Uint8Array(600), new Uint8Array(424), new Uint8Array(1)];
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    const request = new Request('http://x/', {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(await readBodyWithin(request, 1024)).toEqual({ ok: false, reason: 'body_too_large' });
  });
});
