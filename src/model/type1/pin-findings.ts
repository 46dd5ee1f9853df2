/** Findings about external pins that every type1-style design reports alike. */
import type { ModelEnv } from '../env.js';
import { hex } from '../units.js';

export function reportPinOutsideDma(env: ModelEnv, iova: bigint): void {
  env.report('PIN_OUTSIDE_DMA', `Cannot pin iova ${hex(iova)}: no mapping covers it`, { iova: hex(iova) });
}
