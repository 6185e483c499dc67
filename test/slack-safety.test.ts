/**
 * Whatever a buyer or a forger puts in an email or a pack name, Slack shows it as typed: the
 * text posted, once unescaped the way Slack does, is the input after the handler's documented
 * mapping of control characters and its truncation, and carries no markup of its own.
 */
import fc from 'fast-check';
import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createMemoryLedger,
  createWebhookHandler,
  SLACK_FIELD_MAX_CHARS,
  TRUNCATION_MARKER,
} from '../handler.ts';
import { delivery, installEvent, SLACK_URL, TEST_SECRET } from './support/deliveries.ts';
import { fuzzSettings } from './support/fuzz-http.ts';

const { numRuns, seed } = fuzzSettings(300);

const posted: unknown[] = [];
const slack = setupServer(
  http.post(SLACK_URL, async ({ request }) => {
    posted.push(await request.json());
    return HttpResponse.text('ok');
  }),
);

beforeAll(() => {
  slack.listen({ onUnhandledRequest: 'error' });
  console.log(`slack-safety: ${numRuns} runs per property, seed ${seed}`);
});
afterEach(() => {
  posted.length = 0;
});
afterAll(() => slack.close());

describe('the Slack text of an install', () => {
  it.each([
    ['a channel mention', '<!channel>'],
    ['a here mention', '<!here>'],
    ['a user ping', '<@U123>'],
    ['a disguised link', '<https://x|y>'],
    ['an entity already escaped', '&amp;'],
    ['half a tag', 'a<b'],
  ])('shows %s literally', async (_name, text) => {
    const { raw, unescaped } = await postInstall('install.created', text, text);
    expect(raw).not.toMatch(/[<>]/);
    expect(unescaped).toBe(`${text} just installed ${text}`);
  });

  it('shows control and bidi characters as visible stand-ins', async () => {
    const { unescaped } = await postInstall(
      'install.created',
      'a\nb\u0000\u007f',
      'x\u202ey\u0085',
    );
    expect(unescaped).toBe('a\u240ab\u2400\u2421 just installed x\ufffdy\ufffd');
  });

  it('cuts a field past the limit in code points, ending it with the marker', async () => {
    const long = '😀'.repeat(SLACK_FIELD_MAX_CHARS + 1);
    const { unescaped } = await postInstall('install.canceled', 'ada@example.com', long);
    const cut = `${'😀'.repeat(SLACK_FIELD_MAX_CHARS - 1)}${TRUNCATION_MARKER}`;
    expect(unescaped).toBe(`ada@example.com canceled ${cut}`);
  });

  it('keeps a field of exactly the limit whole', async () => {
    const exact = '&'.repeat(SLACK_FIELD_MAX_CHARS);
    const { unescaped } = await postInstall('install.created', exact, 'P');
    expect(unescaped).toBe(`${exact} just installed P`);
  });

  it('renders any email and pack name as typed, once unescaped the way Slack does', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('install.created' as const, 'install.canceled' as const),
        fieldText,
        fieldText,
        async (type, email, pack) => {
          const { unescaped } = await postInstall(type, email, pack);
          const verb = type === 'install.created' ? 'just installed' : 'canceled';
          expect(unescaped).toBe(`${shownAs(email)} ${verb} ${shownAs(pack)}`);
        },
      ),
      { numRuns, seed },
    );
  });

  it('never sends a raw < or >, nor an & that does not start an entity', async () => {
    await fc.assert(
      fc.asyncProperty(fieldText, fieldText, async (email, pack) => {
        const { raw } = await postInstall('install.created', email, pack);
        expect(raw).not.toMatch(/[<>]/);
        expect(raw).not.toMatch(/&(?!amp;|lt;|gt;)/);
      }),
      { numRuns, seed },
    );
  });
});

// Helpers

let deliveries = 0;
const handler = createWebhookHandler({
  signingSecrets: [TEST_SECRET],
  slackWebhookUrl: SLACK_URL,
  ledger: createMemoryLedger(),
});

/** Delivers an install with these fields and returns the text Slack got, raw and unescaped. */
async function postInstall(
  type: 'install.created' | 'install.canceled',
  email: string,
  pack: string,
): Promise<{ raw: string; unescaped: string }> {
  posted.length = 0;
  const event = installEvent({
    id: `evt_slack_safety_${++deliveries}`,
    type,
    data: { buyer: { email }, pack: { name: pack } },
  });
  const response = await handler.fetch(delivery(event));
  expect(await response.json()).toEqual({ ok: true, outcome: 'posted' });
  expect(posted).toEqual([{ text: expect.any(String), mrkdwn: false }]);
  const raw = (posted[0] as { text: string }).text;
  return { raw, unescaped: unescapeLikeSlack(raw) };
}

/** Slack's three entities, decoded in one pass so `&amp;lt;` stays `&lt;`. */
function unescapeLikeSlack(text: string): string {
  const entities: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>' };
  return text.replace(/&(?:amp|lt|gt);/g, (entity) => entities[entity] ?? entity);
}

/**
 * What the handler documents a field becomes, written out independently: C0 controls as
 * Control Pictures, DEL as ␡, C1 controls, lone surrogates and bidi controls as U+FFFD, then
 * a cut to SLACK_FIELD_MAX_CHARS code points ending with the marker.
 */
function shownAs(input: string): string {
  const points = Array.from(input, visibleForm);
  if (points.length <= SLACK_FIELD_MAX_CHARS) return points.join('');
  return [...points.slice(0, SLACK_FIELD_MAX_CHARS - 1), TRUNCATION_MARKER].join('');
}

// The explicit directional formatting characters of UAX #9, 2.
const BIDI_CONTROLS = new Set([
  0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069,
]);

function visibleForm(point: string): string {
  const code = point.codePointAt(0) ?? 0;
  if (code < 0x20) return String.fromCodePoint(0x2400 + code);
  if (code === 0x7f) return '\u2421';
  const isC1 = code >= 0x80 && code <= 0x9f;
  const isLoneSurrogate = code >= 0xd800 && code <= 0xdfff;
  return isC1 || isLoneSurrogate || BIDI_CONTROLS.has(code) ? '\ufffd' : point;
}

/** Pieces of Slack markup, entities, controls, bidi marks, lone surrogates and emoji. */
const trick = fc.constantFrom(
  '<!channel>',
  '<!here>',
  '<!everyone>',
  '<@U123>',
  '<#C123>',
  '<https://x|y>',
  '<mailto:a@b.c|boss>',
  '&amp;',
  '&lt;',
  '&gt;',
  '&',
  '<',
  '>',
  '*bold*',
  '\n',
  '\r\n',
  '\u0000',
  '\u001b[31m',
  '\u007f',
  '\u0085',
  '\u009b',
  '\u061c',
  '\u200f',
  '\u202e',
  '\u2066',
  '\ud800',
  '\udfff',
  '😀',
  '👩‍👩‍👧',
  'e\u0301',
);

const codePoint = (min: number, max: number) =>
  fc.integer({ min, max }).map((code) => String.fromCodePoint(code));

const unit = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.oneof(codePoint(0x00, 0x1f), codePoint(0x7f, 0x9f)) },
  { weight: 1, arbitrary: fc.constantFrom(...BIDI_CONTROLS).map((c) => String.fromCodePoint(c)) },
  { weight: 1, arbitrary: codePoint(0xd800, 0xdfff) },
  { weight: 2, arbitrary: trick },
);

/** Non-empty field text, from a few characters to well past the limit. */
const fieldText = fc.oneof(
  fc.string({ unit, minLength: 1, maxLength: 40 }),
  fc.string({ unit, minLength: SLACK_FIELD_MAX_CHARS - 20, maxLength: 3 * SLACK_FIELD_MAX_CHARS }),
);
