import type { AjvError } from '../generated/validators'

// Field-specific wording for the checks whose Ajv message says little to a caller.
const FIELD_REASONS: Record<string, string> = {
  profile_id: 'must be a UUID like 3e6a2c18-3b02-40c4-b8d2-1842c193d3ba (the ko_id cookie value)',
  email: 'must be an email address',
  'traits.email': 'must be an email address',
  sent_at: 'must be an ISO 8601 date-time with a time zone (e.g. 2024-05-01T12:00:00.000Z) or a Date',
  domain: 'must be a domain name like example.com',
  account_id: 'must not be blank'
}

export function typeName (value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  try {
    if (Array.isArray(value)) return 'an array'
    if (typeof value === 'object') {
      const ctor = (value as { constructor?: { name?: unknown } }).constructor
      return typeof ctor?.name === 'string' && ctor.name !== 'Object' ? `a ${ctor.name}` : 'an object'
    }
  } catch {
    return 'an object that cannot be read' // a revoked Proxy, a throwing getter
  }
  return `a ${typeof value}`
}

function valueAt (data: unknown, pointer: string): unknown {
  let v = data
  for (const part of pointer.split('/').slice(1)) {
    v = (v as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')]
  }
  return v
}

/** Turns the first Ajv error into [field, reason] a caller can act on. */
export function describeAjvError (errors: AjvError[] | null | undefined, data: unknown, identityFields: [string, string]): [string, string] {
  const err = errors?.[0]
  if (err === undefined) return ['call', 'is invalid']
  if (err.instancePath === '' && err.keyword === 'required') {
    const missing = String(err.params.missingProperty)
    // anyOf over "required": neither identity field was given.
    if (!identityFields.includes(missing)) return [missing, 'is required']
    return [`${identityFields[0]} or ${identityFields[1]}`, 'is required']
  }
  if (err.instancePath === '' && err.keyword === 'anyOf') return [`${identityFields[0]} or ${identityFields[1]}`, 'is required']
  const field = err.instancePath.slice(1).replace(/\//g, '.')
  const value = valueAt(data, err.instancePath)
  switch (err.keyword) {
    case 'type': {
      const type = String(err.params.type)
      const want = type === 'object' ? 'a JSON object' : /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`
      // "must be an integer, got a number" would not say what is wrong with 12.5.
      return [field, `must be ${want}, got ${type === 'integer' && typeof value === 'number' ? String(value) : typeName(value)}`]
    }
    case 'minLength':
      return [field, 'must not be empty']
    case 'maxLength':
      return [field, `must be at most ${String(err.params.limit)} characters, got ${(value as string).length}`]
    case 'format':
    case 'pattern':
      return [field, FIELD_REASONS[field] ?? (String(err.params.pattern) === '\\S' ? 'must not be blank' : `must match ${String(err.params.format ?? err.params.pattern)}`)]
    default:
      return [field, err.message ?? 'is invalid']
  }
}
