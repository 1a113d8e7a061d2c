// A small file written into a container from exec's stdin. The command reads exactly the
// bytes it was told of instead of waiting for stdin's end: under load, the end of an exec's
// stdin can fail to reach the process (the runtime's CloseIO racing the process start),
// and a `cat > file` then waits forever. A short read is still caught: the size must match.

/** argv for `sh`: write stdin's first `content` bytes to `path` (0600, atomically by rename). */
export function writeFileArgv(path: string, content: string | Buffer): string[] {
  const bytes = Buffer.byteLength(content)
  const script = [
    'set -e',
    'umask 077',
    'mkdir -p "$(dirname "$1")"',
    'head -c "$2" > "$1.new"',
    'size=$(wc -c < "$1.new")',
    '[ "$size" -eq "$2" ] || { rm -f "$1.new"; echo "got $size of $2 bytes for $1" >&2; exit 1; }',
    'mv -f "$1.new" "$1"',
  ].join('\n')
  return ['sh', '-c', script, 'trampoline-write', path, String(bytes)]
}
