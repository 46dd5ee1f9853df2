/** The backend designs pinledger replays, by name. */
import type { IommuDriver } from '../vfio/driver.js';
import { upstreamDriver } from './upstream/index.js';

export const BACKENDS: Record<string, IommuDriver> = {
  upstream: upstreamDriver,
};

export const BACKEND_NAMES = Object.keys(BACKENDS);
