import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryLedger, openFileLedger } from '../handler.ts';

describe('createMemoryLedger', () => {
  it('remembers an id it was given', async () => {
    const ledger = createMemoryLedger();
    await ledger.add('evt_1');
    expect(await ledger.has('evt_1')).toBe(true);
    expect(await ledger.has('evt_2')).toBe(false);
  });

  it('evicts the oldest id when over its count', async () => {
    const ledger = createMemoryLedger({ maxEntries: 2 });
    for (const id of ['a', 'b', 'c']) await ledger.add(id);
    expect([await ledger.has('a'), await ledger.has('b'), await ledger.has('c')]).toEqual([
      false,
      true,
      true,
    ]);
  });

  it('treats a re-added id as new, so the next eviction takes the next oldest', async () => {
    const ledger = createMemoryLedger({ maxEntries: 2 });
    for (const id of ['a', 'b', 'a', 'c']) await ledger.add(id);
    expect([await ledger.has('a'), await ledger.has('b'), await ledger.has('c')]).toEqual([
      true,
      false,
      true,
    ]);
    expect(ledger.entries().map(([id]) => id)).toEqual(['a', 'c']);
  });

  it('forgets an id once it is older than the age limit', async () => {
    let nowMs = 0;
    const ledger = createMemoryLedger({ maxAgeSeconds: 60, now: () => nowMs });
    await ledger.add('a');
    nowMs = 59_999;
    expect(await ledger.has('a')).toBe(true);
    nowMs = 60_000;
    expect(await ledger.has('a')).toBe(false);
  });

  it('never holds more than its count, whatever ids arrive', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.string({ maxLength: 3 }), { maxLength: 200 }),
        async (maxEntries, ids) => {
          const ledger = createMemoryLedger({ maxEntries });
          for (const id of ids) await ledger.add(id);
          expect(ledger.size).toBeLessThanOrEqual(maxEntries);
          // The newest id is always kept.
          if (ids.length > 0) expect(await ledger.has(ids.at(-1) ?? '')).toBe(true);
        },
      ),
    );
  });
});

describe('createMemoryLedger against a plain model', () => {
  // The ledger keeps ids as bytes in typed arrays, with its own hash table; this model keeps
  // them as an array of records in the order they were made. Both must agree after every step.
  type Step =
    | { kind: 'add'; id: string; advanceMs: number }
    | { kind: 'restore'; id: string; atMs: number }
    | { kind: 'has'; id: string };

  class Model {
    records: { id: string; at: number }[] = [];
    readonly maxEntries: number;
    readonly maxAgeMs: number;
    constructor(maxEntries: number, maxAgeMs: number) {
      this.maxEntries = maxEntries;
      this.maxAgeMs = maxAgeMs;
    }
    record(id: string, at: number, nowMs: number): void {
      this.records = this.records.filter((record) => record.id !== id);
      if (this.records.length >= this.maxEntries) this.records.shift();
      this.records.push({ id, at });
      this.forget(nowMs);
    }
    forget(nowMs: number): void {
      while ((this.records[0]?.at ?? Number.POSITIVE_INFINITY) <= nowMs - this.maxAgeMs) {
        this.records.shift();
      }
    }
  }

  // Few distinct ids, so records are superseded often; long and non-ASCII ones, so the byte
  // log wraps, grows and rebuilds; the empty string and lone surrogates, which must round-trip.
  const ids = fc.oneof(
    fc.constantFrom('', 'a', 'b', 'evt_1', 'é', '\ud800', 'x\u0000y'),
    fc.string({ maxLength: 4, unit: 'binary' }),
    fc.string({ minLength: 1, maxLength: 40, size: 'max' }),
    fc.string({ minLength: 100, maxLength: 300, unit: 'grapheme' }),
  );
  const steps = fc.array(
    fc.oneof(
      fc.record({ kind: fc.constant('add'), id: ids, advanceMs: fc.integer({ min: 0, max: 40 }) }),
      fc.record({ kind: fc.constant('restore'), id: ids, atMs: fc.integer({ min: 0, max: 400 }) }),
      fc.record({ kind: fc.constant('has'), id: ids }),
    ) as fc.Arbitrary<Step>,
    { maxLength: 200, size: 'max' },
  );

  it('remembers, evicts and lists exactly what the model does', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 40 }), steps, async (maxEntries, plan) => {
        let nowMs = 0;
        const ledger = createMemoryLedger({ maxEntries, maxAgeSeconds: 0.2, now: () => nowMs });
        const model = new Model(maxEntries, 200);
        for (const step of plan) {
          if (step.kind === 'add') {
            nowMs += step.advanceMs;
            await ledger.add(step.id);
            model.record(step.id, nowMs, nowMs);
          } else if (step.kind === 'restore') {
            ledger.restore(step.id, step.atMs);
            model.record(step.id, step.atMs, nowMs);
          } else {
            model.forget(nowMs);
            const expected = model.records.some((record) => record.id === step.id);
            expect(await ledger.has(step.id)).toBe(expected);
          }
          model.forget(nowMs);
          // Every record the model holds must still be found: a lookup table that loses an
          // entry, or a byte log that overwrites one, shows here.
          for (const record of model.records) expect(await ledger.has(record.id)).toBe(true);
          expect(ledger.entries()).toEqual(model.records.map(({ id, at }) => [id, at]));
        }
      }),
      { numRuns: 100 },
    );
  });

  it('refuses a bound that is not a whole number of at least 1', () => {
    // 0 or a negative bound would evict forever, a fraction would index between slots.
    for (const maxEntries of [0, -1, 2.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => createMemoryLedger({ maxEntries }), String(maxEntries)).toThrow(RangeError);
    }
  });

  it('takes memory for the ids it holds, not for its bound', async () => {
    // Sized up front, a billion-entry bound would ask for gigabytes at start and fail.
    const before = process.memoryUsage().arrayBuffers;
    const ledger = createMemoryLedger({ maxEntries: 1_000_000_000 });
    for (let i = 0; i < 1000; i++) await ledger.add(`evt_${i}`);
    expect(await ledger.has('evt_999')).toBe(true);
    expect(ledger.size).toBe(1000);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1024 * 1024);
  });

  it('agrees with the model while its ring grows from a few slots to hundreds', async () => {
    // The ring starts at 64 slots and doubles on demand; a few hundred entries make it grow
    // several times, with superseded records and expiries mixed in.
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 60, max: 400 }),
        fc.array(fc.tuple(fc.nat({ max: 999 }), fc.nat({ max: 3 })), {
          minLength: 300,
          maxLength: 1500,
          size: 'max',
        }),
        async (maxEntries, plan) => {
          let nowMs = 0;
          const ledger = createMemoryLedger({ maxEntries, maxAgeSeconds: 5, now: () => nowMs });
          const model = new Model(maxEntries, 5000);
          for (const [n, advanceMs] of plan) {
            nowMs += advanceMs;
            const id = `evt_${n}_${'x'.repeat(n % 50)}`;
            await ledger.add(id);
            model.record(id, nowMs, nowMs);
          }
          expect(ledger.entries()).toEqual(model.records.map(({ id, at }) => [id, at]));
          for (const record of model.records) expect(await ledger.has(record.id)).toBe(true);
          for (let n = 0; n < 1000; n += 7) {
            const id = `evt_${n}_${'x'.repeat(n % 50)}`;
            expect(await ledger.has(id)).toBe(model.records.some((record) => record.id === id));
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('never writes an id over the oldest one when its byte log wraps', async () => {
    // Sized for the ledger's smallest byte log, 1,024 bytes: after the first id expires, the
    // fourth wraps to byte 0 and leaves exactly 100 bytes before the oldest live id.
    let nowMs = 0;
    const ledger = createMemoryLedger({ maxEntries: 10, maxAgeSeconds: 0.1, now: () => nowMs });
    await ledger.add('a'.repeat(400));
    nowMs = 60;
    await ledger.add('b'.repeat(400));
    await ledger.add('c'.repeat(200));
    nowMs = 110;
    await ledger.add('d'.repeat(300));
    await ledger.add('e'.repeat(101)); // one byte more than the gap
    await ledger.add('f'.repeat(100)); // exactly the gap, or whatever is free after a rebuild
    const live = [...'bcdef'].map((letter, i) => letter.repeat([400, 200, 300, 101, 100][i] ?? 0));
    expect(ledger.entries().map(([id]) => id)).toEqual(live);
    for (const id of live) expect(await ledger.has(id)).toBe(true);
    expect(await ledger.has('a'.repeat(400))).toBe(false);
  });

  it('tells apart two ids with the same hash', async () => {
    // These two share their 32-bit hash in the ledger's table (found by a birthday search),
    // so only the byte comparison keeps them apart. If the hash changes, pick a new pair.
    const [first, second] = ['evt_624828', 'evt_1153442'];
    const ledger = createMemoryLedger({ maxEntries: 3 });
    await ledger.add(first);
    expect(await ledger.has(second)).toBe(false);
    await ledger.add(second);
    expect([await ledger.has(first), await ledger.has(second)]).toEqual([true, true]);
    ledger.restore(first, Date.now()); // supersedes the first record, leaving the second
    await ledger.add('evt_other');
    await ledger.add('evt_another'); // evicts the second, the oldest live record
    expect([await ledger.has(first), await ledger.has(second)]).toEqual([true, false]);
    expect(ledger.entries().map(([id]) => id)).toEqual([first, 'evt_other', 'evt_another']);
  });

  it('agrees with the model at a thousand entries, past many wraps of its byte log', async () => {
    const maxEntries = 1000;
    const ledger = createMemoryLedger({ maxEntries });
    const model = new Model(maxEntries, Number.POSITIVE_INFINITY);
    // Lengths 1-128 in a fixed cycle, with every seventh id a repeat of a recent one.
    for (let i = 0; i < 20_000; i++) {
      const id = i % 7 === 0 ? `evt_${i - 700}` : `evt_${i}_${'x'.repeat((i * 37) % 120)}`;
      await ledger.add(id);
      model.record(id, 0, 0);
    }
    expect(ledger.size).toBe(maxEntries);
    expect(ledger.entries().map(([id]) => id)).toEqual(model.records.map(({ id }) => id));
    for (let i = 19_000; i < 20_000; i++) {
      const id = `evt_${i}_${'x'.repeat((i * 37) % 120)}`;
      expect(await ledger.has(id)).toBe(model.records.some((record) => record.id === id));
    }
  });
});

describe('openFileLedger', () => {
  const folders: string[] = [];
  const tempFile = () => {
    const folder = mkdtempSync(join(tmpdir(), 'ledger-'));
    folders.push(folder);
    return join(folder, 'dedupe.jsonl');
  };
  afterEach(() => {
    for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
  });

  it('remembers ids across a reopen, as after a restart', async () => {
    const path = tempFile();
    const first = await openFileLedger({ path });
    await first.add('evt_1');
    await first.close();
    const second = await openFileLedger({ path });
    expect(await second.has('evt_1')).toBe(true);
    await second.close();
  });

  it('creates the folder of a DEDUPE_FILE that does not exist yet', async () => {
    const path = join(tempFile(), '..', 'new', 'deeper', 'dedupe.jsonl');
    const ledger = await openFileLedger({ path });
    await ledger.add('evt_1');
    await ledger.close();
    expect(readFileSync(path, 'utf8')).toContain('evt_1');
  });

  it('keeps what was appended even when never closed, as after SIGKILL', async () => {
    const path = tempFile();
    const killed = await openFileLedger({ path });
    await killed.add('evt_1');
    const reopened = await openFileLedger({ path });
    expect(await reopened.has('evt_1')).toBe(true);
    await reopened.close();
  });

  it('skips lines add() cannot write: a foreign id, or a time that is not finite', async () => {
    // An "at" of 1e999 parses as Infinity and would hold back every later expiry.
    const now = Date.now();
    const path = tempFile();
    const lines = [
      '{"id":"evt_1","at":1e999}',
      `{"id":"not an event id","at":${now}}`,
      `{"id":"${'é'.repeat(1000)}","at":${now}}`,
      `{"id":"evt_2","at":${now}}`,
    ];
    writeFileSync(path, lines.join('\n'));
    const ledger = await openFileLedger({ path });
    expect(ledger.entries().map(([id]) => id)).toEqual(['evt_2']);
    await ledger.close();
  });

  it('skips a half-written last line left by a crash', async () => {
    const path = tempFile();
    writeFileSync(path, `${JSON.stringify({ id: 'evt_1', at: Date.now() })}\n{"id":"evt_2","a`);
    const ledger = await openFileLedger({ path });
    expect([await ledger.has('evt_1'), await ledger.has('evt_2')]).toEqual([true, false]);
    await ledger.close();
  });

  it('drops expired ids when it compacts at start', async () => {
    const path = tempFile();
    const old = { id: 'evt_old', at: Date.now() - 10_000_000 };
    const fresh = { id: 'evt_new', at: Date.now() };
    writeFileSync(path, `${JSON.stringify(old)}\n${JSON.stringify(fresh)}\n`);
    const ledger = await openFileLedger({ path, maxAgeSeconds: 60 });
    await ledger.close();
    expect(readFileSync(path, 'utf8')).toBe(`${JSON.stringify(fresh)}\n`);
  });

  it('rewrites the file once it holds twice its count, keeping the newest ids', async () => {
    const path = tempFile();
    const ledger = await openFileLedger({ path, maxEntries: 3 });
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) await ledger.add(id);
    await ledger.close();
    const ids = readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line).id);
    expect(ids).toEqual(['e', 'f', 'g']);
  });

  it('serialises concurrent appends into whole lines', async () => {
    const path = tempFile();
    const ledger = await openFileLedger({ path });
    const ids = Array.from({ length: 200 }, (_, i) => `evt_${i}`);
    await Promise.all(ids.map((id) => ledger.add(id)));
    await ledger.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(lines.map((line) => JSON.parse(line).id).sort()).toEqual([...ids].sort());
  });
});
