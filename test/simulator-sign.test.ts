import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createSigner } from '../simulator/sign.ts';
import { SimulatorError } from '../simulator/simulator-error.ts';
import { hmacHex } from './simulator-fakes.ts';

describe('createSigner', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('matches HMAC-SHA256 hex from node:crypto for a known body', async () => {
    const body = '{"id":"evt_1","type":"install.created"}';
    const sign = createSigner('whsec_known');

    expect(await sign(body)).toBe(hmacHex('whsec_known', body));
  });

  it('gives lowercase hex of 64 characters', async () => {
    expect(await createSigner('s')('x')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('signs a string as its UTF-8 bytes', async () => {
    const sign = createSigner('clé');
    const body = '{"name":"Zoë ✓"}';

    expect(await sign(body)).toBe(await sign(new TextEncoder().encode(body)));
    expect(await sign(body)).toBe(hmacHex('clé', Buffer.from(body, 'utf8')));
  });

  it('imports the key once however many bodies it signs', async () => {
    const importKey = vi.spyOn(crypto.subtle, 'importKey');
    const sign = createSigner('once');

    await Promise.all(['a', 'b', 'c'].map((body) => sign(body)));

    expect(importKey).toHaveBeenCalledTimes(1);
  });

  it('refuses an empty secret with invalid_option', () => {
    expect(() => createSigner('')).toThrow(
      expect.objectContaining({ name: SimulatorError.name, code: 'invalid_option' }),
    );
  });

  it('always agrees with node:crypto', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1 }), fc.uint8Array(), async (secret, body) => {
        const bytes = new Uint8Array(body);
        expect(await createSigner(secret)(bytes)).toBe(hmacHex(secret, bytes));
      }),
      { numRuns: 100 },
    );
  });
});
