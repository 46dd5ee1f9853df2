/** Replays a whole trace held in a string: the model tested on text alone. */
import { parseTraceText } from '../../trace/line-parser.js';
import type { IommuDriver } from '../vfio/driver.js';
import { type ReplayOptions, Replayer } from './replayer.js';

export function replayText(text: string, driver: IommuDriver, options: ReplayOptions = {}): Replayer {
  const { header, events } = parseTraceText(text);
  const r = new Replayer(driver, { keepOutcomes: true, ...options });
  const err = r.beginSegment(header);
  if (err) throw new Error(err);
  for (const e of events) r.apply(e);
  return r;
}
