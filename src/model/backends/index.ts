/** The backend designs pinledger replays, by name. */
import type { IommuDriver } from '../vfio/driver.js';
import { iommufdCompatDriver } from './iommufd-compat/index.js';
import { rfcV5Driver } from './rfc-v5/index.js';
import { upstreamDriver } from './upstream/index.js';

export const BACKENDS: Record<string, IommuDriver> = {
  upstream: upstreamDriver,
  'rfc-v5': rfcV5Driver,
  'iommufd-compat': iommufdCompatDriver,
};

export const BACKEND_NAMES = Object.keys(BACKENDS);
