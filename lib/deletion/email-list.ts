import { emailProblem } from '../shared/email'

export interface EmailList {
  /** The values read, in order, not yet checked (planDeletion does that). */
  emails: string[]
  /** The 1-based line of each value, for messages. */
  lines: number[]
  /** The 0-based CSV column the emails were read from, or undefined for one email per line. */
  column: number | undefined
}

const HEADER = /^e-?mail(?:[ _-]?address)?$/i
const DELIMITERS = [',', ';', '\t']

/**
 * Reads an operator's list: one email per line, blank lines and `#` comments
 * skipped. A CSV export also works: when the first line holds a delimiter,
 * the column headed `email` is used, or else the first column whose first
 * value is an email.
 */
export function parseEmailList (text: string): EmailList {
  const rows: Array<{ line: number, text: string }> = []
  text.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((raw, i) => {
    const t = raw.trim()
    if (t !== '' && !t.startsWith('#')) rows.push({ line: i + 1, text: t })
  })
  const out: EmailList = { emails: [], lines: [], column: undefined }
  if (rows.length === 0) return out
  const delimiter = DELIMITERS.find(d => rows[0].text.includes(d))
  const cellsOf = (t: string): string[] => delimiter === undefined ? [unquote(t)] : splitRow(t, delimiter)
  const first = cellsOf(rows[0].text)
  let column = first.findIndex(c => HEADER.test(c))
  const header = column !== -1
  if (!header) column = Math.max(0, first.findIndex(c => emailProblem(c) === undefined))
  if (delimiter !== undefined) out.column = column
  for (const row of header ? rows.slice(1) : rows) {
    out.emails.push(cellsOf(row.text)[column] ?? '')
    out.lines.push(row.line)
  }
  return out
}

/** One row of a delimited file; a cell may be quoted ("a, b" and "" for a quote). */
function splitRow (row: string, delimiter: string): string[] {
  const cells: string[] = []
  let cell = ''
  let quoted = false
  for (let i = 0; i < row.length; i++) {
    const ch = row[i]
    if (quoted) {
      if (ch === '"' && row[i + 1] === '"') { cell += '"'; i++ } else if (ch === '"') quoted = false
      else cell += ch
    } else if (ch === '"') {
      quoted = true
    } else if (ch === delimiter) {
      cells.push(cell.trim())
      cell = ''
    } else {
      cell += ch
    }
  }
  cells.push(cell.trim())
  return cells
}

function unquote (cell: string): string {
  return cell.length >= 2 && cell.startsWith('"') && cell.endsWith('"') ? cell.slice(1, -1).trim() : cell
}
