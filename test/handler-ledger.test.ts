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
