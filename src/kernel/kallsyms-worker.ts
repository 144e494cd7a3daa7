/** The thread of backgroundKallsyms(): reads and parses /proc/kallsyms, posts the table's arrays. */
import { parentPort, workerData } from 'node:worker_threads';
import { Kallsyms } from './kallsyms.js';

const parts = Kallsyms.load((workerData as { path: string }).path).parts();
const buffers = [parts.hi.buffer, parts.lo.buffer, parts.text.buffer, parts.spans.buffer] as ArrayBuffer[];
parentPort!.postMessage(parts, [...new Set(buffers)]);
