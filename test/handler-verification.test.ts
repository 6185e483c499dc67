import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createVerifier } from '../handler.ts';
import { sign, TEST_SECRET } from './support/deliveries.ts';

const encoder = new TextEncoder();
const body = encoder.encode('{"id":"evt_1","type":"install.created"}');
describe.each(['auto', 'webcrypto'] as const)('createVerifier with engine %s', (engine) => {
  const verify = createVerifier([TEST_SECRET], engine);

  it('accepts the signature of the exact body', async () => {
    expect(await verify(body, sign(body))).toEqual({ ok: true });
  });

  it('accepts uppercase hex', async () => {
    expect(await verify(body, sign(body).toUpperCase())).toEqual({ ok: true });
  });

  it('rejects a body signed with another secret', async () => {
    expect(await verify(body, sign(body, 'another-secret'))).toEqual({
      ok: false,
      reason: 'signature_mismatch',
    });
  });

  it('rejects a body changed after signing', async () => {
    const tampered = encoder.encode('{"id":"evt_2","type":"install.created"}');
    expect(await verify(tampered, sign(body))).toEqual({
      ok: false,
      reason: 'signature_mismatch',
    });
  });

  it('rejects a signature with one digit changed as a mismatch', async () => {
    const signature = sign(body);
    const flipped = (signature[0] === '0' ? '1' : '0') + signature.slice(1);
    expect(await verify(body, flipped)).toMatchObject({ reason: 'signature_mismatch' });
  });

  it('calls a missing or empty header missing', async () => {
    expect(await verify(body, null)).toMatchObject({ reason: 'missing_signature' });
    expect(await verify(body, '')).toMatchObject({ reason: 'missing_signature' });
  });

  it.each([
    ['a truncated signature', (s: string) => s.slice(0, 63)],
    ['a signature one digit too long', (s: string) => `${s}0`],
    ['a sha256= prefix', (s: string) => `sha256=${s}`],
    ['inner whitespace', (s: string) => `${s.slice(0, 32)} ${s.slice(32)}`],
    ['a non-hex digit', (s: string) => `g${s.slice(1)}`],
    ['the header sent twice (joined by the runtime)', (s: string) => `${s}, ${s}`],
  ])('calls %s malformed', async (_name, change) => {
    expect(await verify(body, change(sign(body)))).toMatchObject({
      reason: 'malformed_signature',
    });
  });

  it('accepts the previous secret during a rotation', async () => {
    const rotating = createVerifier(['new-secret', 'old-secret'], engine);
    expect(await rotating(body, sign(body, 'old-secret'))).toEqual({ ok: true });
    expect(await rotating(body, sign(body, 'new-secret'))).toEqual({ ok: true });
    expect(await rotating(body, sign(body, 'other'))).toMatchObject({ ok: false });
  });

  it('refuses to be built without a secret', () => {
    expect(() => createVerifier([])).toThrow(expect.objectContaining({ code: 'missing_secret' }));
  });

  describe('properties', () => {
    it('always accepts a body signed with its own secret, for any bytes and secret', async () => {
      await fc.assert(
        fc.asyncProperty(anyBody, anySecret, async (bytes, secret) => {
          expect(await createVerifier([secret], engine)(bytes, sign(bytes, secret))).toEqual({
            ok: true,
          });
        }),
      );
    });

    it('never accepts a body with any single byte changed', async () => {
      await fc.assert(
        fc.asyncProperty(
          anyBody.filter((b) => b.length > 0),
          fc.nat(),
          fc.integer({ min: 1, max: 255 }),
          async (bytes, at, delta) => {
            const signature = sign(bytes);
            const changed = bytes.slice();
            const index = at % changed.length;
            changed[index] = ((changed[index] ?? 0) + delta) % 256;
            expect(await verify(changed, signature)).toMatchObject({ ok: false });
          },
        ),
      );
    });

    it('never accepts a signature with any single hex digit changed', async () => {
      await fc.assert(
        fc.asyncProperty(anyBody, fc.nat({ max: 63 }), hexDigit, async (bytes, at, digit) => {
          const signature = sign(bytes);
          fc.pre(signature[at]?.toLowerCase() !== digit.toLowerCase());
          const changed = signature.slice(0, at) + digit + signature.slice(at + 1);
          expect(await verify(bytes, changed)).toEqual({ ok: false, reason: 'signature_mismatch' });
        }),
      );
    });

    it('never accepts a signature made with a different secret', async () => {
      await fc.assert(
        fc.asyncProperty(anyBody, anySecret, anySecret, async (bytes, mine, theirs) => {
          fc.pre(mine !== theirs);
          const result = await createVerifier([mine], engine)(bytes, sign(bytes, theirs));
          expect(result).toEqual({ ok: false, reason: 'signature_mismatch' });
        }),
      );
    });

    it('never throws on, and never accepts, an arbitrary header value', async () => {
      await fc.assert(
        fc.asyncProperty(anyBody, fc.string({ unit: 'binary' }), async (bytes, header) => {
          fc.pre(header.toLowerCase() !== sign(bytes));
          expect((await verify(bytes, header)).ok).toBe(false);
        }),
      );
    });

    it('verifies any Unicode text byte for byte, with no re-serialisation', async () => {
      await fc.assert(
        fc.asyncProperty(fc.string({ unit: 'grapheme' }), async (text) => {
          const json = JSON.stringify({ note: text });
          const bytes = encoder.encode(json);
          expect(await verify(bytes, sign(json))).toEqual({ ok: true });
        }),
      );
    });
  });
});

// Helpers

const anyBody = fc.uint8Array({ maxLength: 2048 });
const anySecret = fc.string({ minLength: 1, unit: 'binary' });
const hexDigit = fc.constantFrom(...'0123456789abcdefABCDEF');
