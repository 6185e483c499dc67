import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDelivery,
  EVENT_TYPES,
  loadFixture,
  loadFixtureFile,
  type PlatformEvent,
} from '../simulator/events.ts';

describe('loadFixture', () => {
  it.each(EVENT_TYPES)('loads the %s fixture with its own type', async (type) => {
    const event = await loadFixture(type);

    expect(event.type).toBe(type);
    expect(event.id).toMatch(/^evt_/);
  });

  it('refuses an unknown type with unknown_event_type, naming the seven', async () => {
    const failure = loadFixture('install.exploded');

    await expect(failure).rejects.toMatchObject({ code: 'unknown_event_type' });
    await expect(failure).rejects.toThrow(/install\.created.*payout\.paid/);
  });
});

describe('loadFixtureFile', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'simulator-events-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads an event from any path', async () => {
    const path = join(dir, 'custom.json');
    const event = {
      id: 'evt_x',
      type: 'custom.thing',
      created_at: '2026-01-01T00:00:00Z',
      data: {},
    };
    await writeFile(path, JSON.stringify(event));

    expect(await loadFixtureFile(path)).toEqual(event);
  });

  it('reports a missing file as fixture_unreadable', async () => {
    await expect(loadFixtureFile(join(dir, 'nope.json'))).rejects.toMatchObject({
      code: 'fixture_unreadable',
    });
  });

  it('reports invalid JSON as fixture_invalid', async () => {
    const path = join(dir, 'broken.json');
    await writeFile(path, '{"id": ');

    await expect(loadFixtureFile(path)).rejects.toMatchObject({ code: 'fixture_invalid' });
  });

  it('reports JSON without the envelope fields as fixture_invalid', async () => {
    const path = join(dir, 'bare.json');
    await writeFile(path, JSON.stringify({ id: 'evt_x', data: {} }));

    await expect(loadFixtureFile(path)).rejects.toMatchObject({ code: 'fixture_invalid' });
  });
});

describe('createDelivery', () => {
  const now = () => Date.UTC(2026, 11, 24, 8, 30, 15, 678);
  const randomUUID = () => '0123abcd-4567-4ef0-8123-456789abcdef';

  it('gives a copy a fresh id and created_at in whole seconds', async () => {
    const copy = createDelivery(await loadFixture('install.created'), { now, randomUUID });

    expect(copy.id).toBe('evt_0123abcd45674ef08123');
    expect(copy.created_at).toBe('2026-12-24T08:30:15Z');
  });

  it('keeps the id and created_at when asked to resend the same event', async () => {
    const fixture = await loadFixture('review.posted');

    expect(createDelivery(fixture, { keepId: true, now, randomUUID })).toEqual(fixture);
  });

  it('tags the buyer email with the end of the event id when asked', async () => {
    const copy = createDelivery(await loadFixture('install.created'), {
      uniqueBuyer: true,
      now,
      randomUUID,
    });

    expect(copy.data.buyer).toMatchObject({ email: 'ada+4ef08123@example.com' });
    expect(copy.id.endsWith('4ef08123')).toBe(true);
  });

  it('leaves events without a buyer alone under uniqueBuyer', async () => {
    const fixture = await loadFixture('payout.paid');
    const copy = createDelivery(fixture, { uniqueBuyer: true, now, randomUUID });

    expect(copy.data).toEqual(fixture.data);
  });

  it('never changes the event it copies', async () => {
    const fixture = await loadFixture('install.created');
    const before = structuredClone(fixture);

    createDelivery(fixture, { uniqueBuyer: true });

    expect(fixture).toEqual(before);
  });

  it('always gives distinct ids to distinct copies', async () => {
    const fixture: PlatformEvent = await loadFixture('install.created');

    fc.assert(
      fc.property(fc.integer({ min: 2, max: 50 }), (count) => {
        const ids = Array.from({ length: count }, () => createDelivery(fixture).id);
        expect(new Set(ids).size).toBe(count);
      }),
      { numRuns: 50 },
    );
  });
});
