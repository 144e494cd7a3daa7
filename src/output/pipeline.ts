/** The output pipeline: every event goes to every sink. */
import type { LostNotice, TraceEvent } from './event.js';
import type { SettingsNotice } from './settings.js';

export interface Sink {
  event(e: TraceEvent): void;
  lost(notice: LostNotice): void;
  /** A traced namespace's settings, as first read and whenever they change (sinks that show none leave it out). */
  settings?(notice: SettingsNotice): void;
  /** Flushes and releases; called once. */
  close(): Promise<void>;
}
