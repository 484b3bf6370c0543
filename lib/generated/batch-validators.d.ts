// Types for the standalone body validators generated into batch-validators.js.
import type { Validator } from './validators'
export const profileBatch: Validator
export const accountBatch: Validator
