/** The output pipeline: every event goes to every sink. */
import type { LostNotice, TraceEvent } from './event.js';

export interface Sink {
  event(e: TraceEvent): void;
  lost(notice: LostNotice): void;
  /** Flushes and releases; called once. */
  close(): Promise<void>;
}
