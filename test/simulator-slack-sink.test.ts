import { describe, expect, it } from 'vitest';
import { listenLocal } from '../simulator/listen.ts';
import { createSlackSink, type SinkMessage, type SlackSink } from '../simulator/slack-sink.ts';

const HOOK = 'http://sink.test/services/T000/B000/XXXX';

describe('createSlackSink', () => {
  it('records a message with text and answers ok like Slack', async () => {
    const sink = createSlackSink();

    const response = await post(sink, { text: 'ada@example.com just installed', mrkdwn: true });

    expect(response.status).toBe(200);
    expect(await response.text()).toBe('ok');
    expect(sink.messages).toEqual([
      {
        path: '/services/T000/B000/XXXX',
        text: 'ada@example.com just installed',
        body: { text: 'ada@example.com just installed', mrkdwn: true },
        received_at: expect.any(String),
        answered_at: expect.any(String),
      },
    ]);
  });

  it('accepts a post to the root path too', async () => {
    const sink = createSlackSink();

    await sink.fetch(jsonRequest('http://sink.test/', { text: 'hi' }));

    expect(sink.messages.map((m) => m.path)).toEqual(['/']);
  });

  it.each([
    ['text that is not a string', { text: 42 }],
    ['no text', { blocks: [] }],
    ['a JSON array', ['text']],
  ])('answers 400 invalid_payload to %s and records no message', async (_name, body) => {
    const sink = createSlackSink();

    const response = await post(sink, body);

    expect(response.status).toBe(400);
    expect(await response.text()).toBe('invalid_payload');
    expect(sink.messages).toHaveLength(0);
    expect(sink.rejected).toHaveLength(1);
  });

  it('answers 400 invalid_payload to a body that is not JSON', async () => {
    const sink = createSlackSink();

    const response = await sink.fetch(new Request(HOOK, { method: 'POST', body: 'text=hi' }));

    expect(await response.text()).toBe('invalid_payload');
  });

  it('calls onMessage for each accepted message', async () => {
    const heard: SinkMessage[] = [];
    const sink = createSlackSink({ onMessage: (message) => heard.push(message) });

    await post(sink, { text: 'one' });
    await post(sink, { text: 'two' });

    expect(heard.map((m) => m.text)).toEqual(['one', 'two']);
  });

  it('fails the next `count` posts on command, then recovers', async () => {
    const sink = createSlackSink();
    sink.fail({ status: 500, count: 2 });

    const statuses = [];
    for (const text of ['a', 'b', 'c']) statuses.push((await post(sink, { text })).status);

    expect(statuses).toEqual([500, 500, 200]);
    expect(sink.messages.map((m) => m.text)).toEqual(['c']);
    expect(sink.rejected.map((r) => [r.status, JSON.parse(r.body).text])).toEqual([
      [500, 'a'],
      [500, 'b'],
    ]);
  });

  it('sends Retry-After with a scripted failure when given', async () => {
    const sink = createSlackSink();
    sink.fail({ status: 429, retryAfterSeconds: 7 });

    const response = await post(sink, { text: 'slow down' });

    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('7');
  });

  it('runs queued failures in the order given', async () => {
    const sink = createSlackSink();
    sink.fail({ status: 503 });
    sink.fail({ status: 404 });

    const first = await post(sink, { text: 'a' });
    const second = await post(sink, { text: 'b' });

    expect([first.status, second.status]).toEqual([503, 404]);
  });

  it('delays a post and then accepts it when only delayMs is given', async () => {
    const waits: number[] = [];
    const sink = createSlackSink({ sleep: async (ms) => void waits.push(ms) });
    sink.fail({ delayMs: 2500 });

    const response = await post(sink, { text: 'late' });

    expect(waits).toEqual([2500]);
    expect(response.status).toBe(200);
    expect(sink.messages).toHaveLength(1);
  });

  it('refuses a failure that is not an error status with invalid_option', () => {
    const sink = createSlackSink();

    expect(() => sink.fail({ status: 200 })).toThrow(
      expect.objectContaining({ code: 'invalid_option' }),
    );
    expect(() => sink.fail({})).toThrow(expect.objectContaining({ code: 'invalid_option' }));
  });

  it('forgets messages, rejections and pending failures on reset', async () => {
    const sink = createSlackSink();
    await post(sink, { text: 'kept?' });
    sink.fail({ status: 500, count: 3 });
    await post(sink, { text: 'x' });

    sink.reset();

    expect(sink.messages).toHaveLength(0);
    expect(sink.rejected).toHaveLength(0);
    expect((await post(sink, { text: 'fresh' })).status).toBe(200);
  });
});

describe('createSlackSink control routes', () => {
  it('takes a failure by POST /_sink/fail and lists messages at /_sink/messages', async () => {
    const sink = createSlackSink();

    const scripted = await sink.fetch(
      jsonRequest('http://sink.test/_sink/fail', { status: 503, retryAfterSeconds: 1 }),
    );
    const failed = await post(sink, { text: 'first' });
    await post(sink, { text: 'second' });
    const listed = await sink.fetch(new Request('http://sink.test/_sink/messages'));

    expect(scripted.status).toBe(200);
    expect(failed.status).toBe(503);
    expect((await listed.json()).map((m: SinkMessage) => m.text)).toEqual(['second']);
  });

  it('lists refused posts with GET /_sink/rejected', async () => {
    const sink = createSlackSink();
    await post(sink, { blocks: [] });

    const listed = await sink.fetch(new Request('http://sink.test/_sink/rejected'));

    expect(await listed.json()).toMatchObject([{ status: 400, body: '{"blocks":[]}' }]);
  });

  it('answers 400 invalid_failure to a script it cannot follow', async () => {
    const sink = createSlackSink();

    const response = await sink.fetch(
      jsonRequest('http://sink.test/_sink/fail', { status: 'broken' }),
    );

    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_failure' });
  });

  it('clears everything with POST /_sink/reset', async () => {
    const sink = createSlackSink();
    await post(sink, { text: 'gone soon' });

    await sink.fetch(new Request('http://sink.test/_sink/reset', { method: 'POST' }));

    expect(sink.messages).toHaveLength(0);
  });
});

describe('listenLocal', () => {
  it('serves the sink on 127.0.0.1 on a port the system picks', async () => {
    const sink = createSlackSink();
    const server = await listenLocal(sink.fetch, 0);

    try {
      const response = await fetch(`http://127.0.0.1:${server.port}/services/x`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'over the wire' }),
        signal: AbortSignal.timeout(5000),
      });

      expect(await response.text()).toBe('ok');
      expect(sink.messages.map((m) => m.text)).toEqual(['over the wire']);
    } finally {
      await server.close();
    }
  });
});

// Helpers

function post(sink: SlackSink, body: unknown): Promise<Response> {
  return Promise.resolve(sink.fetch(jsonRequest(HOOK, body)));
}

function jsonRequest(url: string, body: unknown): Request {
  return new Request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

describe('createSlackSink faults', () => {
  it('asks the faults hook about each post no scripted failure claims', async () => {
    const answers = [{ status: 500 }, null];
    const sink = createSlackSink({ faults: () => answers.shift() ?? null });
    const post = () =>
      sink.fetch(
        new Request('http://sink.test/services/x', {
          method: 'POST',
          body: JSON.stringify({ text: 'hi' }),
        }),
      );
    expect([(await post()).status, (await post()).status]).toEqual([500, 200]);
    expect(sink.messages.map((m) => m.text)).toEqual(['hi']);
  });

  it('drops a delayed post whose poster gave up, instead of recording it', async () => {
    const sink = createSlackSink({ sleep: async () => {} });
    sink.fail({ delayMs: 10 });
    const controller = new AbortController();
    controller.abort();
    const response = await sink.fetch(
      new Request('http://sink.test/services/x', {
        method: 'POST',
        body: JSON.stringify({ text: 'late' }),
        signal: controller.signal,
      }),
    );
    expect(response.status).toBe(503);
    expect(sink.messages).toEqual([]);
    expect(sink.rejected).toEqual([expect.objectContaining({ status: 499 })]);
  });
});
