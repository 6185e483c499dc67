/**
 * The simulator's default transport: one POST over node:http(s) with keep-alive agents. fetch
 * spends some 480 µs of CPU per POST on Node 20, mostly building web streams; this spends some
 * 130 µs (npm run bench:simulator), so the simulator can load a handler the way a load
 * generator does. It keeps what fetch does where the simulator can see it: the same request
 * headers, the same answers to redirects, the same error text, and a timeout that covers the
 * answer's body. URLs that fetch treats specially are left to fetch (see {@link canPostBytes}).
 */
import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** One POST: exact body bytes, the caller's headers, and how long the whole attempt may take. */
export type PostRequest = {
  url: URL;
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer>;
  timeoutMs: number;
};

/** What the simulator reads of an answer: its status, and Retry-After as fetch joins it. */
export type PostAnswer = { status: number; retryAfter: string | null };

// What fetch (undici) adds to every request on Node, so a target sees the same request
// whichever transport sent it.
const FETCH_HEADERS = {
  accept: '*/*',
  'accept-language': '*',
  'sec-fetch-mode': 'cors',
  'user-agent': 'node',
  'accept-encoding': 'gzip, deflate',
};

// Fetch standard, HTTP-redirect fetch: these answers are followed when they carry a Location.
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

// Fetch standard, "bad port": fetch refuses these without connecting (undici's list on Node 20).
const BAD_PORTS: ReadonlySet<string> = new Set(
  (
    '1 7 9 11 13 15 17 19 20 21 22 23 25 37 42 43 53 69 77 79 87 95 101 102 103 104 109 110 ' +
    '111 113 115 117 119 123 135 137 139 143 161 179 389 427 465 512 513 514 515 526 530 531 ' +
    '532 540 548 554 556 563 587 601 636 989 990 993 995 1719 1720 1723 2049 3659 4045 4190 ' +
    '5060 5061 6000 6566 6665 6666 6667 6668 6669 6679 6697 10080'
  ).split(' '),
);

/**
 * Whether {@link postBytes} sends to `url` as fetch would: plain http(s), no credentials in
 * the URL (fetch refuses them) and no port fetch blocks. Anything else is left to fetch.
 */
export function canPostBytes(url: URL): boolean {
  return (
    (url.protocol === 'http:' || url.protocol === 'https:') &&
    url.username === '' &&
    url.password === '' &&
    !BAD_PORTS.has(url.port)
  );
}

// Idle connections close after 4 s, or 1 s before the server's Keep-Alive hint, as undici's
// do: reusing one the server is about to close would fail an attempt for nothing.
const KEEP_ALIVE = { keepAlive: true, timeout: 4_000 };
const agents = { http: new HttpAgent(KEEP_ALIVE), https: new HttpsAgent(KEEP_ALIVE) };

/**
 * POSTs `body` once and resolves when the answer has been read to the end. Rejects as fetch
 * with `AbortSignal.timeout(timeoutMs)` would: with a TimeoutError DOMException once the time
 * is up, else a TypeError "fetch failed" whose `cause` carries the network error's code.
 */
export async function postBytes(request: PostRequest): Promise<PostAnswer> {
  const deadlineMs = performance.now() + request.timeoutMs;
  const outgoing = openPost(request);
  // One timer rather than an AbortSignal: a signal costs node:http some 20 µs per request.
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // Before the answer this fails the request; while its body is read, the read just ends.
    outgoing.destroy();
  }, request.timeoutMs);

  try {
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      outgoing.once('response', resolve);
      outgoing.once('error', (error) => reject(timedOut ? timeoutError() : asFetchError(error)));
    });
    const location = response.headers.location;
    const status = response.statusCode ?? 0;

    if (REDIRECT_STATUSES.has(status) && location !== undefined) {
      response.resume();
      const remainingMs = Math.max(0, Math.ceil(deadlineMs - performance.now()));
      return await followRedirect(request, status, location, remainingMs);
    }

    const retryAfter = response.headersDistinct['retry-after']?.join(', ') ?? null;
    // Read the answer to the end so the connection can be reused; its content is not needed,
    // and an answer cut off midway still counts, as with fetch's arrayBuffer() ignored.
    await new Promise<void>((resolve) => {
      response.once('end', resolve).once('close', resolve).once('error', resolve);
      response.resume();
    });
    return { status, retryAfter };
  } finally {
    clearTimeout(timer);
  }
}

function openPost(request: PostRequest): ClientRequest {
  const { url, body } = request;
  const isHttps = url.protocol === 'https:';
  const headers = {
    ...request.headers,
    ...FETCH_HEADERS,
    'content-length': String(body.byteLength),
  };
  const options = { method: 'POST', headers, agent: isHttps ? agents.https : agents.http };

  const outgoing = isHttps ? httpsRequest(url, options) : httpRequest(url, options);
  outgoing.end(body);
  return outgoing;
}

/**
 * Follows a redirect as fetch on Node 20 does: a 301, 302 or 303 turns the POST into a GET
 * without body or content-type, which fetch itself then sends and follows further. A 307 or
 * 308 fails as a network error, because fetch cannot send a Uint8Array body twice (it has
 * transferred the buffer): the Platform's retry policy then applies.
 */
async function followRedirect(
  request: PostRequest,
  status: number,
  location: string,
  remainingMs: number,
): Promise<PostAnswer> {
  let target: URL;
  try {
    target = new URL(location, request.url);
  } catch (error) {
    throw new TypeError('fetch failed', { cause: error });
  }
  if (status === 307 || status === 308) {
    const cause = new TypeError(`cannot resend the body after a ${status} redirect`);
    throw new TypeError('fetch failed', { cause });
  }

  const { 'content-type': _, ...headers } = request.headers;
  const signal = AbortSignal.timeout(remainingMs);
  const response = await fetch(target, { method: 'GET', headers, signal });
  await response.arrayBuffer().catch(() => undefined);
  return { status: response.status, retryAfter: response.headers.get('retry-after') };
}

/** What AbortSignal.timeout() aborts with, and what fetch then rejects with. */
export function timeoutError(): DOMException {
  return new DOMException('The operation was aborted due to timeout', 'TimeoutError');
}

// fetch wraps a network error as TypeError("fetch failed") with the error as its cause; it
// reports a connection closed before any answer as UND_ERR_SOCKET, where node:http says
// "socket hang up" with ECONNRESET.
function asFetchError(error: Error & { code?: string }): TypeError {
  const isHangUp = error.message === 'socket hang up';
  const cause = isHangUp
    ? Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })
    : error;
  return new TypeError('fetch failed', { cause });
}
