// Human-readable sizes and durations, for progress lines and status tables.

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-'
  if (seconds < 60) return `${Math.round(seconds)}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes}m`
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return `${hours}h${minutes % 60 ? `${minutes % 60}m` : ''}`
  return `${Math.floor(hours / 24)}d`
}

/** Parse "30m", "2h", "900s", "900" (seconds), "1h30m", "0" (disabled). */
export function parseDuration(text: string): number {
  const trimmed = text.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed)
  const pattern = /(\d+)\s*(d|h|m|s)/g
  let total = 0
  let consumed = ''
  for (const match of trimmed.matchAll(pattern)) {
    total += Number(match[1]) * { d: 86400, h: 3600, m: 60, s: 1 }[match[2] as 'd' | 'h' | 'm' | 's']
    consumed += match[0]
  }
  if (!consumed || consumed.replace(/\s/g, '') !== trimmed.replace(/\s/g, '')) {
    throw new Error(`"${text}" is not a duration (examples: 30m, 2h, 1h30m, 900s, 0)`)
  }
  return total
}
