/**
 * Phi accrual failure detection, computed in the wasm core.
 *
 * @module
 */
export {
  MAX_SAMPLE_SIZE,
  PHI_ACCRUAL_DEFAULTS,
  PhiAccrualDetector,
  type PhiAccrualOptions,
  type PhiEstimate,
  type PhiMemberOptions,
} from "./phi_accrual.ts";
