/** Stable codes for every failure the simulator reports; callers branch on these, not on text. */
export type SimulatorErrorCode =
  | 'invalid_option'
  | 'unknown_event_type'
  | 'fixture_unreadable'
  | 'fixture_invalid'
  | 'dlq_unreadable'
  | 'dlq_corrupt'
  | 'dlq_unwritable'
  | 'handler_unavailable';

/** The one error class of the simulator half; its message says what failed, why, and the fix. */
export class SimulatorError extends Error {
  readonly code: SimulatorErrorCode;

  constructor(code: SimulatorErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SimulatorError';
    this.code = code;
  }
}
