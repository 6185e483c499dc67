import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EVENT_TYPES,
  escapeSlackText,
  formatSlackMessage,
  type PlatformEvent,
  parseEvent,
  SLACK_FIELD_MAX_CHARS,
  TRUNCATION_MARKER,
} from '../handler.ts';
import { installEvent } from './support/deliveries.ts';

const encoder = new TextEncoder();
const parse = (value: unknown) =>
  parseEvent(encoder.encode(typeof value === 'string' ? value : JSON.stringify(value)));

describe('parseEvent', () => {
  it.each(EVENT_TYPES)('accepts the %s fixture', (type) => {
    const fixture = readFileSync(new URL(`../fixtures/${type}.json`, import.meta.url));
    const result = parseEvent(fixture);
    expect(result).toMatchObject({ ok: true, event: { type } });
  });

  it('rejects text that is not JSON', () => {
    expect(parse('{"id":')).toMatchObject({ ok: false, reason: 'invalid_json' });
  });

  it('rejects invalid UTF-8 instead of replacing it', () => {
    const bytes = new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]);
    expect(parseEvent(bytes)).toMatchObject({ ok: false, reason: 'invalid_json' });
  });

  it.each([
    ['an array body', []],
    ['a missing id', { ...installEvent(), id: undefined }],
    ['an id with a space', installEvent({ id: 'evt 1' })],
    ['a missing type', { ...installEvent(), type: undefined }],
    ['a created_at that is not RFC 3339', installEvent({ created_at: 'yesterday' })],
    ['a data that is not an object', { ...installEvent(), data: 'x' }],
    ['an install without buyer.email', installEvent({ data: { pack: { name: 'P' } } })],
    ['an install without pack.name', installEvent({ data: { buyer: { email: 'a@b' } } })],
    [
      'a payout with a fractional amount',
      { ...installEvent({ type: 'payout.paid' }), data: { payout_id: 'p', amount_minor: 1.5 } },
    ],
    [
      'a review rated 6',
      {
        ...installEvent({ type: 'review.posted' }),
        data: { pack: { name: 'P' }, author: { display_name: 'A' }, rating: 6 },
      },
    ],
  ])('rejects %s as an invalid event', (_name, value) => {
    expect(parse(value)).toMatchObject({ ok: false, reason: 'invalid_event' });
  });

  it('accepts an unknown event type with a valid envelope', () => {
    expect(parse(installEvent({ type: 'pack.renamed', data: {} }))).toMatchObject({ ok: true });
  });

  it('answers deeply nested JSON without throwing', () => {
    const nested = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    expect(parse(nested).ok).toBe(false);
  });
});

describe('formatSlackMessage', () => {
  it('says who installed what', () => {
    expect(formatSlackMessage(installEvent())).toBe(
      'ada@example.com just installed Support Triage Pack',
    );
  });

  it.each([
    ['install.canceled', 'ada@example.com canceled Support Triage Pack'],
    ['review.posted', 'Ada L. rated Support Triage Pack 5/5'],
    ['payout.released', 'Payout po_3Fh8 of $482.50 was released'],
    ['payout.paid', 'Payout po_3Fh8 of $482.50 was paid'],
    ['skill.error', 'Support Triage Pack: skill classify-ticket failed (timeout)'],
  ])('gives %s a short line', (type, text) => {
    expect(formatSlackMessage(fixture(type))).toBe(text);
  });

  it('only logs daily usage', () => {
    expect(formatSlackMessage(fixture('usage.metered.daily'))).toBeNull();
  });

  it('formats amounts in the currency own minor unit', () => {
    const event = fixture('payout.paid');
    event.data = { ...event.data, amount_minor: 5000, currency: 'JPY' };
    expect(formatSlackMessage(event)).toBe('Payout po_3Fh8 of ¥5,000 was paid');
  });
});

describe('escapeSlackText', () => {
  it.each([
    ['<!channel>', '&lt;!channel&gt;'],
    ['<!here>', '&lt;!here&gt;'],
    ['<@U123>', '&lt;@U123&gt;'],
    ['<https://x|y>', '&lt;https://x|y&gt;'],
    ['&amp;', '&amp;amp;'],
    ['a\nb\u0000c\u007f', 'a\u240ab\u2400c\u2421'],
    ['left\u202eright', 'left\ufffdright'],
  ])('escapes %j so it renders literally', (input, expected) => {
    expect(escapeSlackText(input)).toBe(expected);
  });

  it('cuts long text at a code point boundary and marks the cut', () => {
    const text = '😀'.repeat(SLACK_FIELD_MAX_CHARS + 10);
    const escaped = escapeSlackText(text);
    expect(Array.from(escaped)).toHaveLength(SLACK_FIELD_MAX_CHARS);
    expect(escaped.endsWith(`😀${TRUNCATION_MARKER}`)).toBe(true);
  });

  describe('properties', () => {
    it('never leaves a raw <, > or control character for any input', () => {
      fc.assert(
        fc.property(fc.string({ unit: 'binary' }), (text) => {
          expect(escapeSlackText(text)).not.toMatch(/[<>\p{Cc}\p{Cs}]/u);
        }),
      );
    });

    it('renders as the literal input once Slack unescapes it', () => {
      fc.assert(
        fc.property(fc.string({ unit: 'grapheme', maxLength: SLACK_FIELD_MAX_CHARS }), (text) => {
          fc.pre(!/[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u.test(text));
          expect(unescapeLikeSlack(escapeSlackText(text, Number.POSITIVE_INFINITY))).toBe(text);
        }),
      );
    });

    it('never emits more than the field limit, in code points', () => {
      fc.assert(
        fc.property(fc.string({ unit: 'binary', maxLength: 1000 }), (text) => {
          expect(
            Array.from(escapeSlackText(text.replace(/[&<>]/g, ''))).length,
          ).toBeLessThanOrEqual(SLACK_FIELD_MAX_CHARS);
        }),
      );
    });
  });
});

// Helpers

function fixture(type: string): PlatformEvent {
  return JSON.parse(readFileSync(new URL(`../fixtures/${type}.json`, import.meta.url), 'utf8'));
}

/** Slack's own decoding of the three entities, done once as Slack does. */
function unescapeLikeSlack(text: string): string {
  return text.replace(/&(amp|lt|gt);/g, (_m, name: string) =>
    name === 'amp' ? '&' : name === 'lt' ? '<' : '>',
  );
}
