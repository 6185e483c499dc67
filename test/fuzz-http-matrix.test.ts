/**
 * The behaviour matrix: a fixed list of named input classes sent over real HTTP to handler.ts
 * on each runtime, their answers compared across runtimes and kept in README.md.
 * After a deliberate change: UPDATE_MATRIX=1 npx vitest run test/fuzz-http-matrix
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { installEvent, sign, TEST_SECRET } from './support/deliveries.ts';
import {
  describeAnswer,
  encodeRequest,
  type Framing,
  type HttpInput,
  type SendOptions,
  type ServedSink,
  sendRaw,
  sendRefusedUpload,
  serveSlackSink,
  sleep,
} from './support/fuzz-http.ts';
import { WEBHOOK_PATH } from './support/fuzz-inputs.ts';
import { RUNTIMES, type Runtime, startHandler } from './support/runtimes.ts';

const README_FILE = new URL('../README.md', import.meta.url);
const MATRIX_START = '<!-- behaviour-matrix:start -->';
const MATRIX_END = '<!-- behaviour-matrix:end -->';
// A runtime's parser may answer before the handler is done: give a late Slack post time to land.
const SETTLE_MS = 150;
const TEN_MIB = 10 * 1024 * 1024;

/** One named input: the bytes to send, and whether they carry a valid signature. */
interface InputClass {
  name: string;
  signed: boolean;
  bytes: Uint8Array;
  options?: SendOptions;
  /** A large upload refused early: see sendRefusedUpload. */
  refusedUpload?: boolean;
}

/** Input classes every runtime must answer alike. Order matters: the redelivery follows. */
const AGREED: InputClass[] = [
  signed('valid signed install', 'evt_matrix_valid'),
  signed('the same delivery again', 'evt_matrix_valid'),
  unsigned('no signature', []),
  unsigned('empty signature', [['X-Platform-Signature', '']]),
  twice('signature twice, both copies valid', 'evt_matrix_twice', (valid) => [valid, valid]),
  twice('signature twice, valid then empty', 'evt_matrix_twice_empty', (valid) => [valid, '']),
  signed('uppercase hex', 'evt_matrix_upper', { signature: (s) => s.toUpperCase() }),
  signed('header name in odd casing', 'evt_matrix_casing', { name: 'x-PLATFORM-sIgNaTuRe' }),
  signed('spaces around the signature', 'evt_matrix_spaces', { signature: (s) => ` ${s}\t` }),
  signed('sha256= prefix', 'evt_matrix_prefix', { signature: (s) => `sha256=${s}` }, false),
  signed('63 hex digits', 'evt_matrix_short', { signature: (s) => s.slice(1) }, false),
  signed('a non-hex digit', 'evt_matrix_nonhex', { signature: (s) => `g${s.slice(1)}` }, false),
  unsigned('8 KiB signature', [['X-Platform-Signature', 'a'.repeat(8 * 1024)]]),
  signed('signed with another secret', 'evt_matrix_forged', { secret: 'whsec_forger' }, false),
  {
    name: 'gzip body, signed as sent',
    signed: true,
    bytes: request(gzipSync(eventBody('evt_matrix_gzip')), (body) => [
      ['X-Platform-Signature', sign(body)],
      ['Content-Encoding', 'gzip'],
    ]),
  },
  signed('Content-Encoding: identity', 'evt_matrix_identity', {
    headers: [['Content-Encoding', 'identity']],
  }),
  bodyClass('10 MiB body with Content-Length', new Uint8Array(TEN_MIB), { kind: 'length' }),
  bodyClass('10 MiB body, chunked', new Uint8Array(TEN_MIB), { kind: 'chunked', chunks: 160 }),
  signed('chunked, no Content-Length', 'evt_matrix_chunked', {
    framing: { kind: 'chunked', chunks: 7 },
  }),
  signedBytes('empty body, signed', new Uint8Array(0)),
  signedBytes('invalid UTF-8, signed', Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])),
  signedBytes('JSON nested 100,000 deep, signed', deepJson(100_000)),
  signed('unknown event type, signed', 'evt_matrix_unknown', { type: 'pack.renamed' }),
  unsigned(
    'binary body, unsigned',
    [],
    Uint8Array.from({ length: 256 }, (_, i) => i),
  ),
  route('GET on the webhook path', 'GET', WEBHOOK_PATH),
  route('HEAD on the webhook path', 'HEAD', WEBHOOK_PATH),
  route('PUT on the webhook path', 'PUT', WEBHOOK_PATH),
  route('POST to an unknown path', 'POST', '/webhooks/other'),
  route('POST with a trailing slash', 'POST', `${WEBHOOK_PATH}/`),
  route('GET /healthz', 'GET', '/healthz'),
  signed('dot segment in the path, signed', 'evt_matrix_dot', {
    target: '/webhooks/./platform',
  }),
  signed('percent-encoded dot segment, signed', 'evt_matrix_dot_encoded', {
    target: '/webhooks/%2e/platform',
  }),
  raw('HTTP/1.0 request', `POST ${WEBHOOK_PATH} HTTP/1.0\r\nContent-Length: 0\r\n\r\n`),
  raw('NUL in a header value', head(['X-Platform-Signature: a\0b', 'Content-Length: 0'])),
  raw('folded signature header', head(['X-Platform-Signature: abc', ' def', 'Content-Length: 0'])),
  raw(
    'Content-Length and chunked together',
    `${head(['Content-Length: 5', 'Transfer-Encoding: chunked'])}5\r\nhello\r\n0\r\n\r\n`,
  ),
];

/**
 * Malformed or ambiguous HTTP, mostly answered by the runtime's own parser before handler.ts
 * sees it. The runtimes differ here; the matrix records how, and checks the safety claims.
 * Left out because the answer races: bytes after the body on Node (its parser's 400 or the
 * handler's answer, whichever is first) and a broken chunk size on Deno (400 or a close).
 */
const RUNTIME_DEPENDENT: InputClass[] = [
  unsigned('64 KiB signature header', [['X-Platform-Signature', 'a'.repeat(64 * 1024)]]),
  raw('unknown method FOO', `FOO ${WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
  raw('OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
  raw('bare LF line endings', `POST ${WEBHOOK_PATH} HTTP/1.1\nHost: x\nContent-Length: 0\n\n`),
  raw('no Host header', `POST ${WEBHOOK_PATH} HTTP/1.1\r\nConnection: close\r\n\r\n`),
  signed('lowercase method post, signed', 'evt_matrix_lower', { method: 'post' }),
  signed('backslash in the path, signed', 'evt_matrix_backslash', {
    target: '/webhooks\\platform',
  }),
  signed('60 KiB query string, signed', 'evt_matrix_long_query', {
    target: `${WEBHOOK_PATH}?pad=${'x'.repeat(60 * 1024)}`,
  }),
  raw('CONNECT request', 'CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n'),
  raw(
    'Content-Length of 200 MB, no body sent',
    `POST ${WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 200000000\r\n` +
      'Connection: close\r\n\r\n',
  ),
  signed('Content-Length twice, same value, signed', 'evt_matrix_two_lengths', {
    twoLengths: true,
  }),
  {
    ...signed('Content-Length past the body, then EOF, signed', 'evt_matrix_lie_long', {
      framing: { kind: 'lying_length', by: 5 },
    }),
    options: { endAfterWrite: true },
  },
];

/** Cells that answer 5xx to bad input; each is a runtime bug, none is the handler's. */
const KNOWN_5XX: Record<string, Partial<Record<Runtime, string>>> = {
  // Bun says 505 HTTP Version Not Supported to a request line ending in a bare LF.
  'bare LF line endings': { bun: '505 (empty body)' },
};

type Answers = Map<string, Record<Runtime, string>>;

describe('the behaviour matrix over HTTP', () => {
  const answers: Answers = new Map();

  it.each(RUNTIMES)('records how handler.ts on %s answers each input class', async (runtime) => {
    const served = await serveSlackSink();
    const handler = await startHandler(runtime, {
      PLATFORM_SIGNING_SECRET: TEST_SECRET,
      SLACK_WEBHOOK_URL: served.webhookUrl,
    });
    try {
      for (const input of [...AGREED, ...RUNTIME_DEPENDENT]) {
        const settleMs = RUNTIME_DEPENDENT.includes(input) ? SETTLE_MS : 0;
        const cell = await answerOf(handler.origin, served, input, settleMs);
        const row = answers.get(input.name) ?? ({} as Record<Runtime, string>);
        row[runtime] = cell;
        answers.set(input.name, row);
      }
      expect(handler.child.exitCode).toBeNull();
    } finally {
      await handler.stop();
      await served.close();
    }
  });

  it('sees every runtime answer each agreed input class alike', () => {
    const disagreements = AGREED.filter(({ name }) => {
      const row = answers.get(name);
      return new Set(RUNTIMES.map((runtime) => row?.[runtime])).size !== 1;
    }).map(({ name }) => ({ name, ...answers.get(name) }));
    expect(disagreements).toEqual([]);
  });

  it('never answers 2xx nor posts to Slack for an input class without a valid signature', () => {
    const breaches = [...AGREED, ...RUNTIME_DEPENDENT]
      .filter((input) => !input.signed && input.name !== 'GET /healthz')
      .flatMap(({ name }) =>
        RUNTIMES.map((runtime) => ({ name, runtime, cell: answers.get(name)?.[runtime] ?? '' })),
      )
      .filter(({ cell }) => /^2\d\d /.test(cell) || cell.includes('Slack'));
    expect(breaches).toEqual([]);
  });

  it('answers no input class 5xx, apart from the known runtime bugs in KNOWN_5XX', () => {
    const fiveHundreds: Record<string, Partial<Record<Runtime, string>>> = {};
    for (const [name, row] of answers) {
      for (const runtime of RUNTIMES) {
        if (!/^5\d\d /.test(row[runtime])) continue;
        fiveHundreds[name] = { ...fiveHundreds[name], [runtime]: row[runtime] };
      }
    }
    expect(fiveHundreds).toEqual(KNOWN_5XX);
  });

  it('matches the matrix kept in README.md', () => {
    const rendered = renderMatrix(answers);
    const readme = readFileSync(README_FILE, 'utf8');
    const [before = '', rest = ''] = readme.split(MATRIX_START);
    const [kept = '', after = ''] = rest.split(MATRIX_END);
    if (process.env.UPDATE_MATRIX === '1') {
      writeFileSync(README_FILE, `${before}${MATRIX_START}\n${rendered}${MATRIX_END}${after}`);
      return;
    }
    expect(kept.trim()).toBe(rendered.trim());
  });
});

// Helpers

/** The answer as a cell, with a note when Slack's count disagrees with the answer. */
async function answerOf(
  origin: string,
  served: ServedSink,
  input: InputClass,
  settleMs: number,
): Promise<string> {
  const before = served.sink.messages.length;
  const answer = input.refusedUpload
    ? await sendRefusedUpload(origin, input.bytes)
    : await sendRaw(origin, input.bytes, input.options);
  await sleep(settleMs);
  const posts = served.sink.messages.length - before;
  const cell = describeAnswer(answer).replace(/^no answer \(closed\)$/, 'closed, no answer');
  const expectedPosts = cell === '200 posted' ? 1 : 0;
  if (posts === expectedPosts) return cell;
  return posts > expectedPosts ? `${cell}, yet posted to Slack` : `${cell}, not posted`;
}

function renderMatrix(answers: Answers): string {
  const table = (inputs: InputClass[]) =>
    [
      `| Input class | ${RUNTIMES.join(' | ')} |`,
      `| --- | ${RUNTIMES.map(() => '---').join(' | ')} |`,
      ...inputs.map(({ name }) => {
        const row = answers.get(name);
        return `| ${name} | ${RUNTIMES.map((runtime) => `\`${row?.[runtime]}\``).join(' | ')} |`;
      }),
    ].join('\n');
  return `${table(AGREED)}

**Where the runtimes differ.** Malformed or ambiguous HTTP. The runtime's own parser answers
most of these before handler.ts sees the request, with an empty body. None is answered 2xx
without a valid signature over the bytes the runtime passed on.

${table(RUNTIME_DEPENDENT)}
`;
}

interface SignedOptions {
  secret?: string;
  signature?: (valid: string) => string;
  name?: string;
  headers?: [string, string][];
  framing?: Framing;
  type?: string;
  method?: string;
  target?: string;
  twoLengths?: boolean;
}

/** An install event with `id`, signed (or mis-signed) as `options` say. */
function signed(name: string, id: string, options: SignedOptions = {}, isValid = true) {
  const body = eventBody(id, options.type);
  const valid = sign(body, options.secret);
  const signature = options.signature ? options.signature(valid) : valid;
  const headers: [string, string][] = [
    [options.name ?? 'X-Platform-Signature', signature],
    ...(options.headers ?? []),
  ];
  if (options.twoLengths) {
    headers.push(['Content-Length', String(body.byteLength)]);
    headers.push(['Content-Length', String(body.byteLength)]);
  }
  const input: HttpInput = {
    method: options.method ?? 'POST',
    target: options.target ?? WEBHOOK_PATH,
    headers,
    body,
    framing: options.twoLengths ? { kind: 'none' } : (options.framing ?? { kind: 'length' }),
  };
  return { name, signed: isValid && !options.secret, bytes: encodeRequest(input) };
}

function signedBytes(name: string, body: Uint8Array): InputClass {
  return { name, signed: true, bytes: request(body, (b) => [['X-Platform-Signature', sign(b)]]) };
}

function twice(name: string, id: string, copies: (valid: string) => string[]): InputClass {
  const body = eventBody(id);
  const headers = copies(sign(body)).map((value) => ['X-Platform-Signature', value] as const);
  return { name, signed: false, bytes: request(body, () => headers) };
}

function unsigned(
  name: string,
  headers: [string, string][],
  body: Uint8Array = eventBody('evt_matrix_unsigned'),
): InputClass {
  return { name, signed: false, bytes: request(body, () => headers) };
}

function bodyClass(name: string, body: Uint8Array, framing: Framing): InputClass {
  const headers: [string, string][] = [['X-Platform-Signature', sign(body)]];
  const input = { method: 'POST', target: WEBHOOK_PATH, headers, body, framing };
  return { name, signed: true, bytes: encodeRequest(input), refusedUpload: true };
}

function route(name: string, method: string, target: string): InputClass {
  const input = { method, target, headers: [], body: new Uint8Array(0), framing: { kind: 'none' } };
  return {
    name,
    signed: false,
    bytes: encodeRequest(input as HttpInput),
    options: { isHead: method === 'HEAD' },
  };
}

function raw(name: string, text: string): InputClass {
  return { name, signed: false, bytes: Buffer.from(text, 'latin1') };
}

/** A request head to the webhook path with these header lines, ready for a body. */
function head(lines: string[]): string {
  return [`POST ${WEBHOOK_PATH} HTTP/1.1`, 'Host: x', 'Connection: close', ...lines, '', ''].join(
    '\r\n',
  );
}

function request(
  body: Uint8Array,
  headers: (body: Uint8Array) => readonly (readonly [string, string])[],
): Uint8Array {
  const input = { method: 'POST', target: WEBHOOK_PATH, headers: headers(body), body };
  return encodeRequest({ ...input, framing: { kind: 'length' } });
}

function eventBody(id: string, type = 'install.created'): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(installEvent({ id, type })));
}

function deepJson(depth: number): Uint8Array {
  return new TextEncoder().encode(`${'['.repeat(depth)}${']'.repeat(depth)}`);
}
