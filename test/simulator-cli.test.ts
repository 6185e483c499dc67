import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CliIo, main } from '../simulator/cli.ts';
import { readDeadLetters } from '../simulator/dlq.ts';
import {
  answerInTurn,
  createFakeClock,
  createFakeTarget,
  type Script,
  SECRET,
} from './simulator-fakes.ts';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'simulator-cli-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('simulate --help', () => {
  it('prints the usage and exits 0', async () => {
    const run = await simulate(['--help']);

    expect(run.code).toBe(0);
    expect(run.stdout.join('\n')).toMatchInlineSnapshot(`
      "Usage: npm run simulate -- [options]

      Play the Platform: sign fixture events and POST them to a webhook URL, retrying
      each up to 7 attempts with backoff, then appending it to a dead-letter file.

      Options:
        -u, --url URL          Webhook URL to POST to
                               (default http://127.0.0.1:3000/webhooks/platform;
                               $PORT, when set, replaces 3000)
        -s, --secret SECRET    Signing secret (default $PLATFORM_SIGNING_SECRET)
        -e, --event TYPE       Type to send, repeatable (default install.created)
        -f, --fixture FILE     Send the event in this JSON file; repeatable
        -n, --count N          Send N copies of each event (default 1)
        -c, --concurrency N    Keep up to N deliveries in flight (default 4)
        -t, --tamper           Also send one wrongly signed copy; it must get a 401
        -d, --dlq FILE         Append undelivered events to FILE (default dlq.jsonl)
        -r, --replay-dlq FILE  Resend FILE's dead letters, same ids; FILE is kept
        -x, --delay-scale X    Multiply retry delays by X, e.g. 0.001 (default 1)
        -k, --resend-id        Keep fixture ids and created_at (to test dedupe)
        -b, --unique-buyer     Tag each install's buyer email with its event id
            --timeout MS       Give up on an attempt after MS ms (default 10000)
            --duplicate X      Send a share X (0 to 1) of the events twice, same id
            --reorder          Send the events in a random order
            --delay X          Hold back a share X of attempts, up to 200 ms each
            --drop X           Hang up on a share X of attempts once sent, before the answer
        -j, --json             Print one JSON document: the summary and every result
        -h, --help             Show this help

      Event types:
        install.created, install.canceled, review.posted, skill.error,
        usage.metered.daily, payout.released, payout.paid

      Exit codes:
        0  every event delivered, and every tampered copy refused with 401
        1  anything else: an event dead-lettered, or a tampered copy accepted
        2  usage or input error: a bad flag, fixture or dead-letter file"
    `);
  });

  it('answers -h like --help, with no secret needed', async () => {
    const run = await simulate(['-h'], { env: {} });

    expect(run.code).toBe(0);
    expect(run.stdout[0]).toMatch(/^Usage: npm run simulate/);
  });
});

describe('simulate usage errors', () => {
  it.each([
    [['--frobnicate'], "Unknown option '--frobnicate'"],
    [['stray'], "Unexpected argument 'stray'"],
    [['--count', '0'], '--count "0" is not a whole number of 1 or more'],
    [['--count', 'many'], '--count "many" is not a whole number'],
    [['--concurrency=1.5'], '--concurrency "1.5" is not a whole number'],
    [['--timeout', '0'], '--timeout "0" is not a whole number'],
    [['--delay-scale', 'fast'], '--delay-scale "fast" is not a number of 0 or more'],
    [['--url', 'ftp://127.0.0.1/x'], 'is not an http(s) URL'],
    [['--replay-dlq', 'dlq.jsonl', '--event', 'skill.error'], '--event does not apply'],
  ])('exits 2 for %j and says what is wrong', async (argv, message) => {
    const run = await simulate(argv);

    expect(run.code).toBe(2);
    expect(run.stderr.join('\n')).toContain(message);
    expect(run.target.received).toHaveLength(0);
  });

  it('exits 2 for an unknown event type and lists the seven', async () => {
    const run = await simulate(['--event', 'install.exploded']);

    expect(run.code).toBe(2);
    expect(run.stderr[0]).toBe(
      'simulate: unknown event type "install.exploded". Use one of: install.created, ' +
        'install.canceled, review.posted, skill.error, usage.metered.daily, payout.released, ' +
        'payout.paid.',
    );
  });

  it('exits 2 with what to set when there is no secret', async () => {
    const run = await simulate([], { env: {} });

    expect(run.code).toBe(2);
    expect(run.stderr).toEqual([
      'simulate: no signing secret. Set PLATFORM_SIGNING_SECRET or pass --secret.',
    ]);
  });

  it('exits 2 for a fixture file that does not exist', async () => {
    const run = await simulate(['--fixture', join(dir, 'missing.json')]);

    expect(run.code).toBe(2);
    expect(run.stderr[0]).toMatch(/^simulate: Cannot read fixture .*missing\.json/);
  });
});

describe('simulate faults', () => {
  it('sends a share of events twice with the same id, with --duplicate', async () => {
    const run = await simulate(['-n', '3', '--duplicate', '1']);
    const ids = run.target.received.map((r) => r.event.id);
    expect(ids).toHaveLength(6);
    expect(new Set(ids).size).toBe(3);
  });

  it('sends events out of order with --reorder', async () => {
    const types = ['install.created', 'review.posted', 'skill.error'];
    const run = await simulate([...types.flatMap((t) => ['-e', t]), '--reorder', '-c', '1']);
    expect(run.target.received.map((r) => r.event.type)).toEqual([
      'install.created',
      'skill.error',
      'review.posted',
    ]);
  });

  it.each(['--duplicate', '--delay', '--drop'])('refuses %s 2 as a share', async (flag) => {
    const run = await simulate([flag, '2']);
    expect(run.code).toBe(2);
    expect(run.stderr).toEqual([`simulate: ${flag} "2" is not a share from 0 to 1, e.g. 0.1.`]);
  });
});

describe('simulate', () => {
  it('sends one install.created to the default URL and exits 0', async () => {
    const run = await simulate([], { env: { PLATFORM_SIGNING_SECRET: SECRET, PORT: '4321' } });

    expect(run.code).toBe(0);
    expect(run.urls).toEqual(['http://127.0.0.1:4321/webhooks/platform']);
    expect(run.target.received.map((r) => r.event.type)).toEqual(['install.created']);
    expect(run.stderr).toEqual([
      expect.stringMatching(
        /^\d\d:\d\d:\d\d\.\d{3} install\.created evt_\w+ attempt 1\/7 -> 200 in 0ms, delivered$/,
      ),
    ]);
    expect(run.stdout[0]).toBe('1 sent, 1 delivered, 0 retried, 0 dead-lettered');
  });

  it('takes the secret from --secret over the environment', async () => {
    const run = await simulate(['--secret', 'other'], { env: {} });

    expect(run.target.received[0]?.signatureValid).toBe(false);
    expect(run.code).toBe(1);
  });

  it('sends --count copies of every --event and --fixture, each with a fresh id', async () => {
    const path = join(dir, 'custom.json');
    const custom = {
      id: 'evt_c',
      type: 'custom.kind',
      created_at: '2026-01-01T00:00:00Z',
      data: {},
    };
    await writeFile(path, JSON.stringify(custom));

    const run = await simulate(['-e', 'skill.error', '-e', 'payout.paid', '-f', path, '-n', '2']);

    const types = run.target.received.map((r) => r.event.type).sort();
    expect(types).toEqual([
      'custom.kind',
      'custom.kind',
      'payout.paid',
      'payout.paid',
      'skill.error',
      'skill.error',
    ]);
    expect(new Set(run.target.received.map((r) => r.event.id)).size).toBe(6);
  });

  it('keeps the fixture id with --resend-id', async () => {
    const run = await simulate(['--resend-id', '--count', '2']);

    expect(run.target.received.map((r) => r.event.id)).toEqual([
      'evt_install_created_0001',
      'evt_install_created_0001',
    ]);
  });

  it('prints a line per attempt with the delay before the retry', async () => {
    const run = await simulate([], { script: answerInTurn(503, 'down') });

    expect(run.stderr.map((line) => line.replace(/^\S+ \S+ \S+ /, ''))).toEqual([
      'attempt 1/7 -> 503 in 0ms, retry in 500ms',
      'attempt 2/7 -> error: fetch failed (ECONNREFUSED) in 0ms, retry in 1.0s',
      'at http://127.0.0.1:3000/webhooks/platform: is the handler running (npm start)?',
      'attempt 3/7 -> 200 in 0ms, delivered',
    ]);
    expect(run.stdout[0]).toBe('1 sent, 1 delivered, 1 retried, 0 dead-lettered');
  });

  it('says once, not per attempt, that the signature was refused', async () => {
    const run = await simulate(['-n', '2'], { script: answerInTurn(401, 401, 200, 200) });
    const hints = run.stderr.filter((line) => line.startsWith('simulate: the handler refused'));
    expect(hints).toEqual([
      'simulate: the handler refused the signature: --secret must equal its ' +
        'PLATFORM_SIGNING_SECRET.',
    ]);
  });

  it('scales retry delays with --delay-scale', async () => {
    const run = await simulate(['--delay-scale', '0.001'], { script: answerInTurn(500) });

    expect(run.sleeps).toEqual([0.5]);
  });

  it('dead-letters an event after 7 failures, says how to replay, and exits 1', async () => {
    const dlq = join(dir, 'dead.jsonl');

    const run = await simulate(['--dlq', dlq], {
      script: () => new Response(null, { status: 500 }),
    });

    expect(run.code).toBe(1);
    expect(run.stderr.at(-2)).toMatch(/attempt 7\/7 -> 500 in 0ms, dead-lettered$/);
    expect(run.stderr.at(-1)).toBe(
      `simulate: 1 dead-lettered, appended to ${dlq}; resend with --replay-dlq ${dlq}`,
    );
    const [record] = await readDeadLetters(dlq);
    expect(record?.attempts.map((a) => a.status)).toEqual([500, 500, 500, 500, 500, 500, 500]);
  });

  it('exits 0 with --tamper when the tampered copy is refused with 401', async () => {
    const run = await simulate(['--tamper']);

    expect(run.code).toBe(0);
    expect(run.target.received.map((r) => r.signatureValid)).toEqual([true, false]);
    expect(run.stderr.at(-1)).toMatch(/ tampered -> 401 in 0ms, refused as expected$/);
    expect(run.stdout.at(-1)).toBe('1 tampered, 1 refused with 401');
  });

  it('exits 1 with --tamper when the target accepts a bad signature', async () => {
    const run = await simulate(['--tamper'], { script: () => Response.json({ ok: true }) });

    expect(run.code).toBe(1);
    expect(run.stderr.at(-1)).toContain('NOT refused with 401');
  });

  it('prints one JSON document on stdout with --json', async () => {
    const run = await simulate(['--json', '--tamper'], { script: answerInTurn(503) });

    expect(run.stdout).toHaveLength(1);
    const document = JSON.parse(run.stdout[0] ?? '');
    expect(document.summary).toEqual({
      sent: 1,
      delivered: 1,
      retried: 1,
      dead_lettered: 0,
      latency_ms: { p50: 500, p95: 500, max: 500 },
    });
    expect(document.results[0]).toMatchObject({
      type: 'install.created',
      delivered: true,
      attempts: [{ status: 503 }, { status: 200 }],
    });
    expect(document.tampered[0]).toMatchObject({ status: 401, rejected: true });
    expect(document.dead_letter_file).toBeNull();
  });

  it('colours output only on a TTY without NO_COLOR', async () => {
    const env = { PLATFORM_SIGNING_SECRET: SECRET };
    const tty = { stdout: true, stderr: true };

    const coloured = await simulate([], { env, isTTY: tty });
    const noColor = await simulate([], { env: { ...env, NO_COLOR: '1' }, isTTY: tty });
    const piped = await simulate([], { env });

    expect(coloured.stderr[0]).toContain('\u001b[32mdelivered');
    for (const run of [noColor, piped]) {
      expect([...run.stdout, ...run.stderr].join('')).not.toContain('\u001b[');
    }
  });

  it('never prints the secret', async () => {
    const run = await simulate(['--tamper', '--json'], { script: answerInTurn(503) });

    expect([...run.stdout, ...run.stderr].join('\n')).not.toContain(SECRET);
  });
});

// Helpers

type SimulateOptions = Partial<Pick<CliIo, 'env' | 'isTTY'>> & { script?: Script };

async function simulate(argv: string[], options: SimulateOptions = {}) {
  const target = createFakeTarget(options.script);
  const clock = createFakeClock();
  const stdout: string[] = [];
  const stderr: string[] = [];
  const urls: string[] = [];
  const fetch: typeof globalThis.fetch = (input, init) => {
    urls.push(String(input));
    return target.fetch(input, init);
  };

  // Dead letters go to the test's own folder, never to dlq.jsonl in the working tree.
  const dlq = argv.includes('--dlq') ? [] : ['--dlq', join(dir, 'default.jsonl')];
  const code = await main([...argv, ...dlq], {
    stdout: (line) => stdout.push(line),
    stderr: (line) => stderr.push(line),
    env: options.env ?? { PLATFORM_SIGNING_SECRET: SECRET },
    isTTY: options.isTTY,
    fetch,
    random: () => 0.5,
    ...clock,
  });

  return { code, stdout, stderr, urls, target, sleeps: clock.sleeps };
}
