// The exec store's fast path: two FIFOs in its directory between the local Nix's `ssh` (the
// shim, shim.ts) and this process. The shim joins Nix's pipes to them with two `cat`s, and
// this process relays them to an exec it opened itself. That saves what the general path
// (`trampoline store-stdio` through the mux helper) costs per copy: a second CLI start and
// two Node processes relaying every byte. One connection only; a second one (Nix opening
// the store again) takes the general path.
//
// This end opens both FIFOs read-write: neither open waits for the shim, and a copy whose
// Nix never connects leaves nothing blocked. So no EOF arrives from Nix's side: the caller
// ends the stream when its Nix command exits.
import { spawnSync } from 'node:child_process'
import { closeSync, constants, existsSync, openSync, renameSync, rmSync } from 'node:fs'
import { Socket } from 'node:net'
import { join } from 'node:path'

export interface FifoBridge {
  /** Where the shim reads what goes to Nix (the pod's stdout). */
  downPath: string
  /** Where the shim writes what Nix sends (to the pod's stdin). */
  upPath: string
  toNix: Socket
  fromNix: Socket
  /** Whether a shim took the bridge (made the claim directory). */
  claimed(): boolean
  close(): void
}

/** The FIFOs' names in the exec store's directory (the shim's script names them too). */
export const BRIDGE_DOWN = 'down'
export const BRIDGE_UP = 'up'
/** The shim makes this directory to claim the bridge: mkdir is atomic, so only one connection gets it. */
export const BRIDGE_CLAIM = 'claimed'

/** The bridge in `dir` (0700, ours), or undefined where FIFOs cannot be made (then the general path serves). */
export function openFifoBridge(dir: string): FifoBridge | undefined {
  const downPath = join(dir, BRIDGE_DOWN)
  const upPath = join(dir, BRIDGE_UP)
  const made = spawnSync('mkfifo', ['-m', '600', downPath, upPath], { stdio: 'ignore' })
  if (made.status !== 0) return undefined
  const fds: number[] = []
  try {
    for (const path of [downPath, upPath]) fds.push(openSync(path, constants.O_RDWR | constants.O_NONBLOCK))
  } catch {
    for (const fd of fds) closeSync(fd)
    return undefined
  }
  const toNix = new Socket({ fd: fds[0], readable: false, writable: true })
  const fromNix = new Socket({ fd: fds[1], readable: true, writable: false })
  // Nothing from these is worth an unhandled error: a copy whose reader went away ends
  // with its Nix command, which the caller waits for.
  toNix.on('error', () => {})
  fromNix.on('error', () => {})
  return {
    downPath,
    upPath,
    toNix,
    fromNix,
    claimed: () => existsSync(join(dir, BRIDGE_CLAIM)),
    close() {
      toNix.destroy()
      fromNix.destroy()
      // A shim that reached a FIFO only now would wait in open() for ever: let it through
      // (it then reads an end, or its write fails), after moving the FIFO out of reach.
      for (const [path, flags] of [
        [downPath, constants.O_WRONLY | constants.O_NONBLOCK],
        [upPath, constants.O_RDONLY | constants.O_NONBLOCK],
      ] as const) {
        const parked = `${path}.closed`
        try {
          renameSync(path, parked)
        } catch {
          continue
        }
        try {
          closeSync(openSync(parked, flags))
        } catch {
          // ENXIO: nobody was waiting to read.
        }
        rmSync(parked, { force: true })
      }
    },
  }
}
