/**
 * Explaining a trace file: its records read as every command reads them
 * (../records.ts: bounded lines, each checked against its schema), fed to the
 * engine in order; the explanations in the order of their journeys' times.
 */
import { escapeText } from '../../output/escape.js';
import { Held } from '../held.js';
import { TraceFileError, readTrace } from '../records.js';
import { Explainer } from './engine.js';
import type { ExplanationRecord } from './inputs.js';

const byTime = (a: ExplanationRecord, b: ExplanationRecord) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0);

/** About the bytes an explanation holds. */
function bytesOf(e: ExplanationRecord): number {
  return 128 + e.sentence.length + e.flow.length + e.evidence.reduce((n, x) => n + 48 + x.text.length, 0);
}

/** Every explanation of a recorded trace, in the order of the journeys they explain. */
export async function explainFile(file: string): Promise<{ explanations: ExplanationRecord[]; lost: number }> {
  const out: ExplanationRecord[] = [];
  const held = new Held('its explanations');
  const explainer = new Explainer((e) => {
    out.push(e);
    held.bytes += bytesOf(e);
  });
  for await (const line of readTrace(file)) {
    switch (line.kind) {
      case 'header':
        explainer.header(line.record);
        break;
      case 'event':
        explainer.event(line.record);
        break;
      case 'settings':
        explainer.settings(line.record);
        break;
      case 'lost':
        explainer.lost(line.count);
        break;
      case 'normalized':
      case 'packet':
        throw new TraceFileError(file, line.line, 'a normalised trace: explain needs the recorded one (its events, with times)');
      case 'explanation':
        // A trace recorded with --explain: explained again from its events, the same way.
        break;
    }
    const over = held.over();
    if (over !== null) throw new TraceFileError(file, line.line, over);
  }
  explainer.end();
  return { explanations: out.sort(byTime), lost: explainer.ctx.lost };
}

/** One explanation for a person: the sentence, then its evidence indented, each line escaped (a trace's names are anyone's). */
export function explanationText(e: ExplanationRecord): string {
  let s = `${escapeText(e.cause)}: ${escapeText(e.sentence)}\n`;
  s += `    ${escapeText(e.flow || 'not IP')} (skb ${escapeText(e.skb)} at ${escapeText(e.time)})\n`;
  for (const x of e.evidence) s += `    ${x.time !== null ? `${escapeText(x.time.slice(11, 29))}  ` : ''}${escapeText(x.text)}\n`;
  return s;
}
