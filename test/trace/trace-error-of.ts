/** The TraceError the reader raises for a trace text (a test fails when it raises none). */
import { parseTraceText } from '../../src/trace/line-parser.js';
import { TraceError } from '../../src/trace/trace-error.js';

export function traceErrorOf(text: string): TraceError {
  try {
    parseTraceText(text, 'x.jsonl');
  } catch (e) {
    if (e instanceof TraceError) return e;
    throw e;
  }
  throw new Error('no error');
}
