import { appendFile, readFile } from 'node:fs/promises';
import type { Attempt, DeliveryResult } from './deliver.ts';
import { isPlatformEvent, type PlatformEvent } from './events.ts';
import { SimulatorError } from './simulator-error.ts';

/** One line of the dead-letter file: the event as sent and every attempt it got. */
export type DeadLetterRecord = {
  event: PlatformEvent;
  attempts: Attempt[];
  dead_lettered_at: string;
};

/** Turns an undelivered result into the record the dead-letter file keeps. */
export function createDeadLetterRecord(
  result: DeliveryResult,
  deadLetteredAt: Date,
): DeadLetterRecord {
  return {
    event: result.event,
    attempts: result.attempts,
    dead_lettered_at: deadLetteredAt.toISOString(),
  };
}

/** Appends one record to a JSONL dead-letter file, creating the file when it is missing. */
export async function appendDeadLetter(path: string, record: DeadLetterRecord): Promise<void> {
  try {
    // One write per record, opened for append, so concurrent workers do not interleave lines.
    await appendFile(path, `${JSON.stringify(record)}\n`, 'utf8');
  } catch (error) {
    const why = (error as Error).message;
    throw new SimulatorError(
      'dlq_unwritable',
      `Cannot append to dead-letter file ${path}: ${why}. Choose another with --dlq.`,
      { cause: error },
    );
  }
}

/** Reads every record of a dead-letter file; the file itself is never changed. */
export async function readDeadLetters(path: string): Promise<DeadLetterRecord[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const why = (error as Error).message;
    throw new SimulatorError(
      'dlq_unreadable',
      `Cannot read dead-letter file ${path}: ${why}. Check the path.`,
      { cause: error },
    );
  }

  return parseDeadLetters(text, path);
}

/** Parses JSONL dead letters; a corrupt line is an error naming its line, never skipped. */
export function parseDeadLetters(text: string, source: string): DeadLetterRecord[] {
  const records: DeadLetterRecord[] = [];
  const lines = text.split('\n');

  for (const [index, line] of lines.entries()) {
    // Blank lines hold no record (the file ends with a newline); they are not corruption.
    if (line.trim() === '') continue;

    const where = `${source} line ${index + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw corruptLine(where, `not valid JSON (${(error as Error).message})`, error);
    }

    if (!isDeadLetterRecord(value)) {
      throw corruptLine(
        where,
        'not a dead-letter record (needs event, attempts, dead_lettered_at)',
      );
    }
    records.push(value);
  }

  return records;
}

function corruptLine(where: string, why: string, cause?: unknown): SimulatorError {
  return new SimulatorError(
    'dlq_corrupt',
    `Corrupt dead letter at ${where}: ${why}. Fix or remove that line, then replay again.`,
    { cause },
  );
}

function isDeadLetterRecord(value: unknown): value is DeadLetterRecord {
  if (typeof value !== 'object' || value === null) return false;

  const record = value as Record<string, unknown>;
  return (
    isPlatformEvent(record.event) &&
    Array.isArray(record.attempts) &&
    typeof record.dead_lettered_at === 'string'
  );
}
