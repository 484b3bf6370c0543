// Types for the standalone call validators generated into validators.js.
export interface AjvError {
  instancePath: string
  schemaPath: string
  keyword: string
  params: Record<string, unknown>
  message?: string
}
export interface Validator {
  /** `context` is Ajv's; the call validators read only its instancePath. */
  (data: unknown, context?: { readonly instancePath: string }): boolean
  errors?: AjvError[] | null
}
export const person: Validator
export const trackEvent: Validator
export const identifyCall: Validator
export const pageView: Validator
export const account: Validator
export const accountIdentifyCall: Validator
