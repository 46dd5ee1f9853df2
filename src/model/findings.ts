/**
 * Findings: what replay reports. Each has a stable code, a severity, the seq
 * of the event it belongs to, a one-line message a person can act on, and
 * details.
 */
export type Severity = 'error' | 'warning' | 'info';

export const FINDING_CODES = {
  RET_MISMATCH: 'error',
  ACCT_LIMIT: 'warning',
  ACCT_LEAK: 'error',
  ACCT_UNDERFLOW: 'error',
  ACCT_MISMATCH: 'error',
  IOMMU_MISMATCH: 'error',
  ACCT_INCONSISTENT: 'error',
  ACCT_DOUBLE_CHARGE: 'error',
  ACCT_SHARED_FRAMES: 'warning',
  ACCT_EXEC: 'warning',
  PIN_LEAK: 'error',
  PIN_OUTSIDE_DMA: 'error',
  UNPIN_NOT_PINNED: 'error',
  DESIGN_DIVERGENCE: 'info',
  TRACE_UNKNOWN_CMD: 'info',
  TRACE_INCONSISTENT: 'error',
  TRACE_ATTACHED: 'warning',
  TRACE_KERNEL: 'warning',
} as const satisfies Record<string, Severity>;

export type FindingCode = keyof typeof FINDING_CODES;

export interface Finding {
  code: FindingCode;
  severity: Severity;
  seq: number;
  message: string;
  details: Record<string, unknown>;
}

/** Where the model reports findings; replay collects them per backend. */
export interface FindingSink {
  report(code: FindingCode, message: string, details?: Record<string, unknown>): void;
}
