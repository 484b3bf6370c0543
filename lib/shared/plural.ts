/** `plural(1, 'request')` is "1 request", `plural(2, 'request')` "2 requests"; `many` for other plurals ("identifies"). */
export function plural (n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}
