/**
 * The input space of the HTTP fuzz suites, as fast-check arbitraries. A signature is planned
 * rather than drawn, because the valid one depends on body bytes drawn alongside it: each plan
 * is turned into headers by `signatureHeaders` once the body is known.
 */
import fc from 'fast-check';
import { EVENT_TYPES } from '../../handler.ts';
import { sign } from './deliveries.ts';
import type { Framing, HttpInput } from './fuzz-http.ts';

export const WEBHOOK_PATH = '/webhooks/platform';

type Header = readonly [name: string, value: string];

/** How the signature header is sent; `valid` plans always verify, the others never do. */
export type SignaturePlan =
  | { kind: 'absent' }
  | { kind: 'literal'; value: string; name: string }
  | { kind: 'mangled'; how: Mangling; at: number; name: string }
  | { kind: 'twice'; first: SignaturePlan; second: SignaturePlan }
  | { kind: 'valid'; hexCase: 'lower' | 'upper' | 'mixed'; padding: string; name: string };

type Mangling =
  | 'sha256_prefix'
  | 'truncated'
  | 'extended'
  | 'non_hex'
  | 'inner_space'
  | 'joined_with_itself'
  | 'other_secret'
  | 'other_body';

/** The headers a plan stands for, for a body whose valid signature is `sign(body)`. */
export function signatureHeaders(plan: SignaturePlan, body: Uint8Array): Header[] {
  switch (plan.kind) {
    case 'absent':
      return [];
    case 'literal':
      return [[plan.name, plan.value]];
    case 'mangled':
      return [[plan.name, mangle(sign(body), plan.how, plan.at, body)]];
    case 'twice':
      return [...signatureHeaders(plan.first, body), ...signatureHeaders(plan.second, body)];
    case 'valid':
      return [[plan.name, `${plan.padding}${recase(sign(body), plan.hexCase)}${plan.padding}`]];
  }
}

/** The header name in any casing: header names are case-insensitive. */
export const signatureHeaderName: fc.Arbitrary<string> = fc
  .array(fc.boolean(), { minLength: 20, maxLength: 20 })
  .map((upper) =>
    Array.from('x-platform-signature', (char, i) => (upper[i] ? char.toUpperCase() : char)).join(
      '',
    ),
  );

/** A signature that verifies: either hex case, optional whitespace around it, any name casing. */
export const validSignature: fc.Arbitrary<SignaturePlan> = fc.record({
  kind: fc.constant('valid' as const),
  hexCase: fc.constantFrom('lower' as const, 'upper' as const, 'mixed' as const),
  // Leading and trailing whitespace is not part of a field value (RFC 9110, 5.5).
  padding: fc.constantFrom('', ' ', '\t', ' \t '),
  name: signatureHeaderName,
});

/** A signature header that is there but never verifies: junk, or the valid one mangled. */
export const presentInvalidSignature: fc.Arbitrary<SignaturePlan> = fc.oneof(
  fc.record({
    kind: fc.constant('literal' as const),
    value: junkSignature(),
    name: signatureHeaderName,
  }),
  fc.record({
    kind: fc.constant('mangled' as const),
    how: fc.constantFrom<Mangling>(
      'sha256_prefix',
      'truncated',
      'extended',
      'non_hex',
      'inner_space',
      'joined_with_itself',
      'other_secret',
      'other_body',
    ),
    at: fc.nat(63),
    name: signatureHeaderName,
  }),
);

/** A signature header set that never verifies, including a valid copy sent twice. */
export const invalidSignature: fc.Arbitrary<SignaturePlan> = fc.oneof(
  { weight: 1, arbitrary: fc.constant({ kind: 'absent' as const }) },
  { weight: 3, arbitrary: presentInvalidSignature },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('twice' as const),
      first: fc.oneof(validSignature, presentInvalidSignature),
      second: fc.oneof(validSignature, presentInvalidSignature),
    }),
  },
);

/** A valid signature sent twice, or with any other copy before or after it. */
export const validPlusAnotherCopy: fc.Arbitrary<SignaturePlan> = fc
  .record({
    valid: validSignature,
    other: fc.oneof(validSignature, presentInvalidSignature),
    validFirst: fc.boolean(),
  })
  .map(({ valid, other, validFirst }) => ({
    kind: 'twice' as const,
    first: validFirst ? valid : other,
    second: validFirst ? other : valid,
  }));

/** Every Content-Encoding the suites send; only the identity forms may be read. */
export const CONTENT_ENCODINGS = [
  'identity',
  'IDENTITY',
  ' identity ',
  '',
  'gzip',
  'GZIP',
  'x-gzip',
  'deflate',
  'br',
  'zstd',
  'compress',
  'gzip, identity',
  'identity, gzip',
  'identity;q=1',
  '*',
] as const;

/** Headers besides the signature and Content-Encoding: common ones and odd ones. */
export const extraHeaders: fc.Arbitrary<Header[]> = fc.array(
  fc.oneof(
    fc.tuple(fc.constant('Content-Type'), fc.constantFrom(...contentTypes())),
    fc.tuple(
      fc.oneof(
        fc.constantFrom('User-Agent', 'Accept', 'X-Forwarded-For', 'Authorization', 'Cookie'),
        fc.stringMatching(/^X-[A-Za-z0-9-]{1,24}$/),
      ),
      headerValue(200),
    ),
  ),
  { maxLength: 6 },
);

/** No Content-Encoding header, or one of CONTENT_ENCODINGS. */
export const contentEncoding: fc.Arbitrary<string | null> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constantFrom(...CONTENT_ENCODINGS) },
);

/** True when a Content-Encoding value means the body is sent as is. */
export function isIdentityEncoding(value: string | null): boolean {
  return value === null || ['', 'identity'].includes(value.trim().toLowerCase());
}

/**
 * Bodies a stranger may send: valid events (what a forger wants through), event-like junk,
 * empty, binary, broken UTF-8, deep JSON and large bodies.
 */
export const hostileBody: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: deliverableEvent().map((event) => encode(JSON.stringify(event))) },
  { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 4096 }) },
  { weight: 3, arbitrary: fc.jsonValue().map((value) => encode(JSON.stringify(value) ?? 'null')) },
  { weight: 3, arbitrary: eventLike().map((event) => encode(JSON.stringify(event))) },
  { weight: 2, arbitrary: withInvalidUtf8(eventLike().map((event) => JSON.stringify(event))) },
  { weight: 2, arbitrary: deeplyNested() },
  { weight: 1, arbitrary: largeBody() },
);

/** A body for a valid signature; `deliverable` when it is an event the handler must accept. */
export interface SignedBody {
  bytes: Uint8Array;
  deliverable: boolean;
}

/** Event bodies to sign: mostly deliverable events with any text, some broken ones. */
export const signedBody: fc.Arbitrary<SignedBody> = fc.oneof(
  {
    weight: 5,
    arbitrary: deliverableEvent().map((event) => ({
      bytes: encode(JSON.stringify(event)),
      deliverable: true,
    })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('\ufeff', ' \n', '\t'), deliverableEvent())
      .map(([prefix, event]) => ({
        bytes: encode(`${prefix}${JSON.stringify(event)}`),
        // The BOM is dropped by the UTF-8 decoder, whitespace by JSON.parse.
        deliverable: true,
      })),
  },
  {
    // Not necessarily refused: a broken-looking event may still happen to be valid.
    weight: 2,
    arbitrary: fc
      .oneof(
        eventLike().map((event) => encode(JSON.stringify(event))),
        withInvalidUtf8(deliverableEvent().map((event) => JSON.stringify(event))),
        deeplyNested(),
        fc.uint8Array({ maxLength: 1024 }),
      )
      .map((bytes) => ({ bytes, deliverable: false })),
  },
);

/**
 * An honest framing: Content-Length, or up to 256 chunks with no length. More chunks would
 * be fair input too, but on Deno they cost 64 KiB each (see the one-byte-chunk test).
 */
export const honestFraming: fc.Arbitrary<Framing> = fc.oneof(
  fc.constant({ kind: 'length' as const }),
  fc.record({ kind: fc.constant('chunked' as const), chunks: fc.integer({ min: 1, max: 256 }) }),
);

/** A framing that lies: a Content-Length off either way, or no framing for a body. */
export const lyingFraming: fc.Arbitrary<Framing> = fc.oneof(
  fc.record({ kind: fc.constant('lying_length' as const), by: fc.integer({ min: 1, max: 4096 }) }),
  fc.record({
    kind: fc.constant('lying_length' as const),
    by: fc.integer({ min: -4096, max: -1 }),
  }),
  fc.constant({ kind: 'none' as const }),
);

/** Methods the three HTTP parsers all accept; the webhook takes POST only. */
export const method: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('POST') },
  { weight: 2, arbitrary: fc.constantFrom('GET', 'HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS') },
);

/** Request targets: the webhook path and near misses, /healthz, and arbitrary paths. */
export const target: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(WEBHOOK_PATH) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      `${WEBHOOK_PATH}?retry=1`,
      `${WEBHOOK_PATH}/`,
      '/WEBHOOKS/PLATFORM',
      '/webhooks/%70latform',
      '/webhooks%2Fplatform',
      `${WEBHOOK_PATH}%00`,
      '/webhooks//platform',
      '//webhooks/platform',
      '/webhooks/../webhooks/platform',
      `http://127.0.0.1${WEBHOOK_PATH}`,
      '/healthz',
      '/%68ealthz',
      '/',
      '/webhooks',
    ),
  },
  { weight: 2, arbitrary: fc.stringMatching(/^\/[A-Za-z0-9._~%!$&'()*+,;=:@/-]{0,60}$/) },
);

/** A deliverable event, as bytes: what a forger would want to get through. */
export const deliverableBody: fc.Arbitrary<Uint8Array> = deliverableEvent().map((event) =>
  encode(JSON.stringify(event)),
);

/** A request of any method, to any target, whose signature never verifies. */
export function unsignedRequest(): fc.Arbitrary<HttpInput> {
  return fc
    .record({
      method,
      target,
      plan: invalidSignature,
      extra: extraHeaders,
      encoding: contentEncoding,
      body: hostileBody,
      framing: honestFraming,
    })
    .map(({ plan, extra, encoding, ...rest }) => ({
      ...rest,
      headers: [
        ...shuffleIn(signatureHeaders(plan, rest.body), extra),
        ...encodingHeader(encoding),
      ],
    }));
}

/** The Content-Encoding header for `encoding`, or none for null. */
export function encodingHeader(encoding: string | null): Header[] {
  return encoding === null ? [] : [['Content-Encoding', encoding]];
}

// Helpers

function contentTypes(): string[] {
  return [
    'application/json',
    'application/json; charset=utf-8',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    '',
  ];
}

/** Signature values that are never the valid one: hex of any length, junk, or huge. */
function junkSignature(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.stringMatching(/^[0-9a-f]{64}$/),
    fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), maxLength: 130 }),
    headerValue(200),
    fc
      .tuple(fc.constantFrom('a', 'f', '0', ' a'), fc.integer({ min: 1_000, max: 8_000 }))
      .map(([unit, count]) => unit.repeat(count)),
  );
}

/** Field-value characters: visible ASCII, space, tab and obs-text (RFC 9110, 5.5). */
function headerValue(maxLength: number): fc.Arbitrary<string> {
  const unit = fc.oneof(
    fc.integer({ min: 0x20, max: 0x7e }),
    fc.constant(0x09),
    fc.integer({ min: 0x80, max: 0xff }),
  );
  return fc.string({ unit: unit.map((code) => String.fromCharCode(code)), maxLength });
}

function mangle(valid: string, how: Mangling, at: number, body: Uint8Array): string {
  switch (how) {
    case 'sha256_prefix':
      return `sha256=${valid}`;
    case 'truncated':
      return valid.slice(0, at);
    case 'extended':
      return `${valid}${valid.slice(0, (at % 8) + 1)}`;
    case 'non_hex':
      return `${valid.slice(0, at)}${'gz-+ xG'[at % 7]}${valid.slice(at + 1)}`;
    case 'inner_space':
      return `${valid.slice(0, at + 1)} ${valid.slice(at + 1)}`;
    case 'joined_with_itself':
      return `${valid}, ${valid}`;
    case 'other_secret':
      return sign(body, 'whsec_not_the_secret');
    case 'other_body':
      return sign(Buffer.concat([body, Buffer.from(' ')]));
  }
}

function recase(hex: string, hexCase: 'lower' | 'upper' | 'mixed'): string {
  if (hexCase === 'lower') return hex;
  if (hexCase === 'upper') return hex.toUpperCase();
  return Array.from(hex, (char, i) => (i % 2 ? char.toUpperCase() : char)).join('');
}

/** Puts the signature headers at a fixed spot among the others, so order varies by input. */
function shuffleIn(signature: Header[], extra: Header[]): Header[] {
  const at = extra.length === 0 ? 0 : signature.length % (extra.length + 1);
  return [...extra.slice(0, at), ...signature, ...extra.slice(at)];
}

/** Text a buyer or a forger may put in a field: any Unicode plus Slack's markup. */
function fieldText(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.constantFrom('<!channel>', '<!here>', '<@U123>', '<https://x|y>', '&amp;', 'a\u202eb'),
  );
}

/** A valid event of any known type, with any non-empty text in every field it shows. */
function deliverableEvent(): fc.Arbitrary<Record<string, unknown>> {
  const text = fieldText().filter((value) => value !== '');
  return fc.record({
    id: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,128}$/),
    type: fc.constantFrom(...EVENT_TYPES),
    created_at: fc.constantFrom('2026-12-01T09:30:00Z', '2026-12-01 09:30:00.123456789+05:30'),
    data: fc.record({
      buyer: fc.record({ email: text }),
      pack: fc.record({ name: text }),
      author: fc.record({ display_name: text }),
      rating: fc.integer({ min: 1, max: 5 }),
      amount_minor: fc.maxSafeNat(),
      currency: fc.stringMatching(/^[A-Z]{3}$/),
      payout_id: text,
      skill: text,
      error: fc.record({ code: text }),
      date: text,
      units: fc.double({ noNaN: true, noDefaultInfinity: true }),
      extra: fc.jsonValue({ maxDepth: 3 }),
    }),
  });
}

/** Event-like objects: a known or unknown type, valid or broken data, extra deep fields. */
function eventLike(): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      id: fc.oneof(fc.stringMatching(/^evt_[A-Za-z0-9_]{6,20}$/), fc.jsonValue()),
      type: fc.oneof(fc.constantFrom(...EVENT_TYPES), fc.string({ maxLength: 30 })),
      created_at: fc.oneof(fc.constant('2026-12-01T09:30:00Z'), fc.string({ maxLength: 30 })),
      data: fc.oneof(
        { weight: 4, arbitrary: eventData() },
        { weight: 1, arbitrary: fc.jsonValue() },
      ),
      extra: fc.jsonValue({ maxDepth: 4 }),
    },
    { requiredKeys: ['id', 'type', 'created_at', 'data'] },
  );
}

function eventData(): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      buyer: fc.record({ email: fieldText() }),
      pack: fc.record({ name: fieldText() }),
      author: fc.record({ display_name: fieldText() }),
      rating: fc.oneof(fc.integer({ min: 0, max: 6 }), fc.double()),
      amount_minor: fc.oneof(fc.maxSafeNat(), fc.double(), fc.integer()),
      currency: fc.oneof(fc.stringMatching(/^[A-Z]{3}$/), fc.constantFrom('USD', 'JPY', 'BHD')),
      payout_id: fieldText(),
      skill: fieldText(),
      error: fc.record({ code: fieldText() }),
      date: fc.constant('2026-12-01'),
      units: fc.oneof(fc.integer(), fc.double()),
    },
    { requiredKeys: [] },
  );
}

/** `{"a":` or `[` nested up to 100,000 deep, closed or left open. */
function deeplyNested(): fc.Arbitrary<Uint8Array> {
  return fc
    .record({
      depth: fc.integer({ min: 1, max: 100_000 }),
      open: fc.constantFrom('[', '{"a":'),
      closed: fc.boolean(),
    })
    .map(({ depth, open, closed }) => {
      const close = open === '[' ? ']' : '}';
      return encode(`${open.repeat(depth)}1${closed ? close.repeat(depth) : ''}`);
    });
}

/** Bodies from 64 KiB to just past the 1 MiB default limit. */
function largeBody(): fc.Arbitrary<Uint8Array> {
  return fc
    .record({ size: fc.integer({ min: 64 * 1024, max: 1024 * 1024 + 4096 }), fill: fc.nat(255) })
    .map(({ size, fill }) => new Uint8Array(size).fill(fill));
}

/** Splices in a byte sequence no UTF-8 decoder may accept (RFC 3629, 3 and 10). */
function withInvalidUtf8(text: fc.Arbitrary<string>): fc.Arbitrary<Uint8Array> {
  const invalid = [
    [0xff],
    [0x80],
    [0xc0, 0xaf],
    [0xe0, 0x80, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
    [0xe2, 0x82],
  ];
  return fc
    .record({ text, at: fc.nat(), bad: fc.constantFrom(...invalid) })
    .map(({ text, at, bad }) => {
      const bytes = encode(text);
      const cut = bytes.byteLength === 0 ? 0 : at % bytes.byteLength;
      return Buffer.concat([bytes.subarray(0, cut), Buffer.from(bad), bytes.subarray(cut)]);
    });
}

function encode(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
