import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../simulator/cli.ts';
import { deliver } from '../simulator/deliver.ts';
import {
  appendDeadLetter,
  createDeadLetterRecord,
  parseDeadLetters,
  readDeadLetters,
} from '../simulator/dlq.ts';
import { loadFixture } from '../simulator/events.ts';
import { createSigner } from '../simulator/sign.ts';
import { answerInTurn, createFakeClock, createFakeTarget, SECRET } from './simulator-fakes.ts';

const URL = 'http://127.0.0.1:3000/webhooks/platform';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'simulator-dlq-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('appendDeadLetter', () => {
  it('writes one JSON line per event with every attempt it got', async () => {
    const path = join(dir, 'dlq.jsonl');
    const target = createFakeTarget(() => new Response('no', { status: 500 }));
    const event = await loadFixture('install.created');
    const result = await deliver(event, {
      url: URL,
      sign: createSigner(SECRET),
      fetch: target.fetch,
      ...createFakeClock(),
    });

    await appendDeadLetter(path, createDeadLetterRecord(result, new Date('2026-12-01T12:05:00Z')));

    const lines = (await readFile(path, 'utf8')).split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('');
    const record = JSON.parse(lines[0] ?? '');
    expect(record.event).toEqual(event);
    expect(record.dead_lettered_at).toBe('2026-12-01T12:05:00.000Z');
    expect(record.attempts).toHaveLength(7);
    for (const [index, attempt] of record.attempts.entries()) {
      expect(attempt).toEqual({
        attempt: index + 1,
        status: 500,
        error: null,
        at: expect.any(String),
        duration_ms: expect.any(Number),
      });
    }
  });

  it('appends to an existing file rather than replacing it', async () => {
    const path = join(dir, 'dlq.jsonl');
    const record = await deadLetter('payout.paid');

    await appendDeadLetter(path, record);
    await appendDeadLetter(path, record);

    expect(await readDeadLetters(path)).toEqual([record, record]);
  });

  it('reports an unwritable path as dlq_unwritable', async () => {
    const record = await deadLetter('payout.paid');

    await expect(
      appendDeadLetter(join(dir, 'no', 'such', 'dir.jsonl'), record),
    ).rejects.toMatchObject({ code: 'dlq_unwritable' });
  });
});

describe('readDeadLetters', () => {
  it('reads back what was appended, blank lines aside', async () => {
    const path = join(dir, 'dlq.jsonl');
    const first = await deadLetter('install.created');
    const second = await deadLetter('skill.error');
    await writeFile(path, `${JSON.stringify(first)}\n\n${JSON.stringify(second)}\n`);

    expect(await readDeadLetters(path)).toEqual([first, second]);
  });

  it('names the line of invalid JSON instead of skipping it', async () => {
    const path = join(dir, 'dlq.jsonl');
    const good = JSON.stringify(await deadLetter('install.created'));
    await writeFile(path, `${good}\n{"event": {"id": "evt_cut\n${good}\n`);

    const failure = readDeadLetters(path);

    await expect(failure).rejects.toMatchObject({ code: 'dlq_corrupt' });
    await expect(failure).rejects.toThrow(`${path} line 2`);
  });

  it('names the line of JSON that is not a record', () => {
    const text = `${JSON.stringify({ event: { id: 'evt_1' }, attempts: [] })}\n`;

    expect(() => parseDeadLetters(text, 'dlq.jsonl')).toThrow(
      expect.objectContaining({
        code: 'dlq_corrupt',
        message: expect.stringContaining('dlq.jsonl line 1'),
      }),
    );
  });

  it('reports a missing file as dlq_unreadable', async () => {
    await expect(readDeadLetters(join(dir, 'missing.jsonl'))).rejects.toMatchObject({
      code: 'dlq_unreadable',
    });
  });
});

describe('simulate --dlq', () => {
  it('writes every attempt of a dead letter with its own status, error and time', async () => {
    const path = join(dir, 'dlq.jsonl');
    const clock = createFakeClock();
    const startedMs = clock.now();
    const target = createFakeTarget(answerInTurn(503, 'down', 500, 'down', 429, 500, 502));

    const code = await main(['--event', 'payout.paid', '--dlq', path], {
      ...quietIo(),
      ...clock,
      fetch: target.fetch,
      // Each delay is then half its ceiling: 0.5, 1, 2, 4, 8 and 16 s.
      random: () => 0.5,
    });

    expect(code).toBe(1);
    const [record, ...others] = await readDeadLetters(path);
    expect(others).toEqual([]);
    expect(record?.event).toEqual(target.received[0]?.event);
    const refused = 'fetch failed (ECONNREFUSED)';
    const waitsMs = [0, 500, 1000, 2000, 4000, 8000, 16_000];
    const answers: [number | null, string | null][] = [
      [503, null],
      [null, refused],
      [500, null],
      [null, refused],
      [429, null],
      [500, null],
      [502, null],
    ];
    let atMs = startedMs;
    expect(record?.attempts).toEqual(
      answers.map(([status, error], index) => {
        atMs += waitsMs[index] ?? 0;
        const at = new Date(atMs).toISOString();
        return { attempt: index + 1, status, error, at, duration_ms: 0 };
      }),
    );
    expect(record?.dead_lettered_at).toBe(new Date(atMs).toISOString());
  });
});

describe('simulate --replay-dlq', () => {
  it('resends each dead letter with its own id and leaves the file as it was', async () => {
    const path = join(dir, 'dlq.jsonl');
    const records = [await deadLetter('install.created'), await deadLetter('review.posted')];
    const text = records.map((r) => `${JSON.stringify(r)}\n`).join('');
    await writeFile(path, text);
    const target = createFakeTarget();

    const code = await main(['--replay-dlq', path, '--dlq', join(dir, 'again.jsonl')], {
      ...quietIo(),
      fetch: target.fetch,
    });

    expect(code).toBe(0);
    expect(target.received.map((r) => r.event)).toEqual(records.map((r) => r.event));
    expect(await readFile(path, 'utf8')).toBe(text);
  });

  it('appends events that fail again to the --dlq file', async () => {
    const path = join(dir, 'dlq.jsonl');
    const again = join(dir, 'again.jsonl');
    const record = await deadLetter('install.created');
    await writeFile(path, `${JSON.stringify(record)}\n`);
    const target = createFakeTarget(() => new Response('no', { status: 503 }));

    const code = await main(['--replay-dlq', path, '--dlq', again], {
      ...quietIo(),
      ...createFakeClock(),
      fetch: target.fetch,
    });

    expect(code).toBe(1);
    const [replayed] = await readDeadLetters(again);
    expect(replayed?.event).toEqual(record.event);
    expect(replayed?.attempts).toHaveLength(7);
  });

  it('exits 2 on a corrupt dead-letter file and sends nothing', async () => {
    const path = join(dir, 'dlq.jsonl');
    await writeFile(path, 'not json\n');
    const target = createFakeTarget();
    const io = quietIo();

    const code = await main(['--replay-dlq', path], { ...io, fetch: target.fetch });

    expect(code).toBe(2);
    expect(io.errors.join('\n')).toContain('line 1');
    expect(target.received).toHaveLength(0);
  });
});

// Helpers

async function deadLetter(type: string) {
  const event = await loadFixture(type);
  const attempt = { attempt: 1, status: 500, error: null, at: '2026-12-01T12:00:00.000Z' };
  return {
    event,
    attempts: [{ ...attempt, duration_ms: 3 }],
    dead_lettered_at: '2026-12-01T12:01:03.000Z',
  };
}

function quietIo() {
  const errors: string[] = [];
  return {
    stdout: () => {},
    stderr: (line: string) => errors.push(line),
    env: { PLATFORM_SIGNING_SECRET: SECRET },
    errors,
  };
}
