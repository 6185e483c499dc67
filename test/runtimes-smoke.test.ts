import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { installEvent, sign, TEST_SECRET } from './support/deliveries.ts';
import { type HandlerProcess, RUNTIMES, startHandler } from './support/runtimes.ts';

describe.each(RUNTIMES)('handler.ts on %s', (runtime) => {
  let handler: HandlerProcess;

  beforeAll(async () => {
    handler = await startHandler(runtime, { PLATFORM_SIGNING_SECRET: TEST_SECRET });
  });
  afterAll(async () => {
    await handler?.stop();
  });

  it('answers GET /healthz', async () => {
    expect((await fetch(`${handler.origin}/healthz`)).status).toBe(200);
  });

  it('accepts a signed install in dry run and logs it as not sent', async () => {
    const body = JSON.stringify(installEvent({ id: `evt_smoke_${runtime}` }));
    const response = await fetch(`${handler.origin}/webhooks/platform`, {
      method: 'POST',
      headers: { 'x-platform-signature': sign(body) },
      body,
    });
    expect(await response.json()).toEqual({ ok: true, outcome: 'not_sent' });
    // The log line travels through a pipe and can arrive after the answer.
    await vi.waitFor(() => expect(handler.deliveries()).toHaveLength(1), { timeout: 5_000 });
    expect(handler.deliveries()).toContainEqual(
      expect.objectContaining({ event_id: `evt_smoke_${runtime}`, outcome: 'not_sent' }),
    );
  });

  it('keeps one kept-alive connection through 401s and 413s for a declared length', async () => {
    // Regression: Deno closed the connection after a 413 whose body was left unread.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const oversized = Buffer.alloc(1024 * 1024 + 1, 0x61);
    const ports: number[] = [];
    try {
      for (const body of [oversized, Buffer.from('{}'), oversized, oversized]) {
        const answer = await post(agent, `${handler.origin}/webhooks/platform`, body);
        expect(answer.status).toBe(body === oversized ? 413 : 401);
        ports.push(answer.localPort);
      }
    } finally {
      agent.destroy();
    }
    expect(new Set(ports).size).toBe(1);
  });

  it('never processes a signed request sent inside the body of a refused one', async () => {
    const hidden = JSON.stringify(installEvent({ id: `evt_hidden_${runtime}` }));
    const inner =
      `POST /webhooks/platform HTTP/1.1\r\nHost: x\r\nContent-Length: ${hidden.length}\r\n` +
      `X-Platform-Signature: ${sign(hidden)}\r\n\r\n${hidden}`;
    // Declares far more than it sends, so every byte after the head belongs to the 2 MB body.
    const outer =
      'POST /webhooks/platform HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n' +
      `X-Platform-Signature: ${'a'.repeat(64)}\r\n\r\n`;
    const { port } = new URL(handler.origin);
    const socket = connect(Number(port), '127.0.0.1');
    socket.on('error', () => {}); // the runtime may reset the refused upload
    socket.write(outer + inner);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    socket.destroy();

    await vi.waitFor(() =>
      expect(handler.deliveries()).toContainEqual(
        expect.objectContaining({ outcome: 'body_too_large' }),
      ),
    );
    expect(handler.deliveries()).not.toContainEqual(
      expect.objectContaining({ event_id: `evt_hidden_${runtime}` }),
    );
  });

  it('exits 0 on SIGTERM', async () => {
    expect(await handler.stop('SIGTERM')).toBe(0);
  });
});

describe.each(RUNTIMES)('handler.ts start-up on %s', (runtime) => {
  it('exits 1 with one line when its port is taken', async () => {
    const first = await startHandler(runtime, { PLATFORM_SIGNING_SECRET: TEST_SECRET });
    try {
      const port = new URL(first.origin).port;
      await expect(
        startHandler(runtime, { PLATFORM_SIGNING_SECRET: TEST_SECRET, PORT: port }),
      ).rejects.toThrow(
        `exited with 1 before listening: handler: cannot listen on 127.0.0.1:${port} (EADDRINUSE).`,
      );
    } finally {
      await first.stop();
    }
  });

  it('starts from a folder whose path has a space in it', async () => {
    const project = copiedProject('', 'with space ');
    const handler = await startHandler(
      runtime,
      { PLATFORM_SIGNING_SECRET: TEST_SECRET },
      { cwd: project },
    );
    try {
      expect((await fetch(`${handler.origin}/healthz`)).status).toBe(200);
    } finally {
      await handler.stop();
      rmSync(project, { recursive: true, force: true });
    }
  });

  it('exits 1 with one line saying what to set when the secret is missing', async () => {
    await expect(startHandler(runtime, {})).rejects.toThrow(
      /exited with 1 before listening: handler: PLATFORM_SIGNING_SECRET is not set/,
    );
  });
});

describe.each(RUNTIMES)('handler.ts copied into another project, on %s', (runtime) => {
  it('honours a .env file in the working directory', async () => {
    const project = copiedProject(`PLATFORM_SIGNING_SECRET=from-dotenv\nPORT=0\n`);
    const handler = await startHandler(runtime, {}, { cwd: project, inheritDotEnv: true });
    try {
      const body = JSON.stringify(installEvent());
      const response = await fetch(`${handler.origin}/webhooks/platform`, {
        method: 'POST',
        headers: { 'x-platform-signature': sign(body, 'from-dotenv') },
        body,
      });
      expect(response.status).toBe(200);
    } finally {
      await handler.stop();
      rmSync(project, { recursive: true, force: true });
    }
  });
});

// Helpers

/** A fresh folder holding only a copy of handler.ts, a .env, and the dependencies. */
function copiedProject(dotEnv: string, prefix = 'copied-handler-'): string {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const project = mkdtempSync(join(tmpdir(), prefix));
  copyFileSync(join(root, 'handler.ts'), join(project, 'handler.ts'));
  copyFileSync(join(root, 'package.json'), join(project, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(project, 'node_modules'));
  writeFileSync(join(project, '.env'), dotEnv);
  return project;
}

/** POSTs `body` with a declared length through `agent`; resolves with the status and socket. */
function post(
  agent: Agent,
  url: string,
  body: Buffer,
): Promise<{ status: number; localPort: number }> {
  return new Promise((resolve, reject) => {
    const outgoing = request(url, {
      method: 'POST',
      agent,
      headers: { 'content-length': body.length, 'x-platform-signature': 'a'.repeat(64) },
    });
    outgoing.on('error', reject);
    outgoing.on('response', (response) => {
      const localPort = response.socket.localPort ?? -1;
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, localPort }));
    });
    outgoing.end(body);
  });
}
