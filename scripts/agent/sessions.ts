// Detachable Claude Code sessions in the pod: container/agent-session.sh runs each in a
// tmux server of its own; this module lists them, picks the one to reattach, and makes
// tmux available in the pod first. Parsing and formatting are pure (unit-tested); the two
// I/O functions are short execs in the user container.
import { PassThrough } from 'node:stream'
import type { CommandContext } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { showsProgress } from '../log.ts'
import { captureInPod, runInPod } from '../pod/run.ts'
import { formatDuration } from '../units.ts'
import { LIST_SESSIONS_ARGV, provideTmuxArgv } from './session.ts'
import { GC_ROOTS_DIR } from '../pod/contract.ts'

/**
 * What the pod realises when it has no tmux: nixpkgs' tmux, substituted through the
 * daemon from its binary caches (cache.nixos.org by default). Needs the pod to reach
 * GitHub (the flake) and the cache; --tmux or $TRAMPOLINE_TMUX name another.
 */
export const DEFAULT_TMUX_INSTALLABLE = 'nixpkgs#tmux'
export const TMUX_ENV = 'TRAMPOLINE_TMUX'
/** The provisioned tmux, GC-rooted so that maintenance keeps it. */
export const TMUX_ROOT = `${GC_ROOTS_DIR}/agent-tmux`

/** agent-session.sh's exit codes for sessions. */
export const NO_SUCH_SESSION_EXIT = 66
export const NO_TMUX_EXIT = 72

export interface AgentSession {
  id: string
  /** ISO 8601. */
  started: string
  /** A terminal shows it now. */
  attached: boolean
  /** How many terminals show it (tmux clients). */
  clients: number
  /** claude's command line in the pod. */
  command: string
}

/** agent-session.sh --list: a JSON array of {id, started (epoch s), attached (clients), command}; oldest first. */
export function parseSessions(stdout: string): AgentSession[] {
  const raw: unknown = JSON.parse(stdout)
  if (!Array.isArray(raw)) throw new Error('not a JSON array')
  return raw
    .map((entry: unknown) => {
      const e = entry as { id?: unknown; started?: unknown; attached?: unknown; command?: unknown }
      if (typeof e?.id !== 'string' || typeof e.started !== 'number' || typeof e.attached !== 'number') throw new Error(`unexpected entry ${JSON.stringify(entry)}`)
      return { epoch: e.started, session: { id: e.id, started: new Date(e.started * 1000).toISOString(), attached: e.attached > 0, clients: e.attached, command: String(e.command ?? '') } }
    })
    .sort((a, b) => a.epoch - b.epoch || a.session.id.localeCompare(b.session.id))
    .map((e) => e.session)
}

export function formatSessions(sessions: AgentSession[], now: number): string {
  const header = ['ID', 'STARTED', 'ATTACHED', 'COMMAND']
  const lines = sessions.map((s) => [
    s.id,
    `${formatDuration(Math.max(0, (now - Date.parse(s.started)) / 1000))} ago`,
    s.attached ? (s.clients > 1 ? `yes (${s.clients})` : 'yes') : 'no',
    s.command,
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  return [header, ...lines].map((cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n')
}

/** The session to reattach: `id`, or the newest. */
export function pickSession(sessions: AgentSession[], id: string | undefined, instance: string): AgentSession {
  if (!sessions.length) {
    throw new UserError(`no Claude Code session runs in instance ${instance}`, {
      hint: `trampoline sessions --name ${instance} lists them; trampoline claude --name ${instance} starts one.`,
      exitCode: ExitCode.notFound,
    })
  }
  if (id === undefined) return sessions[sessions.length - 1]
  const found = sessions.find((s) => s.id === id)
  if (found) return found
  throw new UserError(`no session ${id} in instance ${instance} (running: ${sessions.map((s) => s.id).join(', ')})`, {
    hint: `trampoline sessions --name ${instance} lists them.`,
    exitCode: ExitCode.notFound,
  })
}

export async function listSessions(context: CommandContext): Promise<AgentSession[]> {
  const { exitCode, stdout, stderr } = await captureInPod(context, [...LIST_SESSIONS_ARGV])
  if (exitCode === 2) {
    throw new UserError(`pod ${context.names.pod} runs scripts from an older trampoline, without detachable sessions`, {
      hint: `Run: trampoline setup --name ${context.names.instance}  (it updates the scripts; running work is kept)`,
      exitCode: ExitCode.notFound,
    })
  }
  if (exitCode !== 0) throw new UserError(`listing the sessions in pod ${context.names.pod} failed (exit ${exitCode}): ${stderr.trim()}`)
  try {
    return parseSessions(stdout)
  } catch (error) {
    throw new UserError(`pod ${context.names.pod} listed its sessions in a form this trampoline does not read: ${(error as Error).message}`, {
      hint: `Run: trampoline setup --name ${context.names.instance}  (it updates the pod's scripts)`,
    })
  }
}

/**
 * tmux in the pod, for a detachable session: the pod's own (provisioned earlier, or the
 * image's), else `installable` realised now; with `replace`, `installable` in any case.
 * Returns the tmux path in the pod.
 */
export async function provideTmux(context: CommandContext, installable: string, replace: boolean): Promise<string> {
  // The first time the pod realises tmux (a minute or so for nixpkgs#tmux): its progress
  // shows on a terminal; otherwise it is kept for the error.
  const out: Buffer[] = []
  const err: Buffer[] = []
  const live = showsProgress()
  const exitCode = await runInPod(context, {
    command: provideTmuxArgv(installable, replace),
    stdout: new PassThrough().on('data', (c: Buffer) => out.push(c)),
    stderr: live ? process.stderr : new PassThrough().on('data', (c: Buffer) => err.push(c)),
  })
  const path = Buffer.concat(out).toString('utf8').trim()
  if (exitCode === 0 && path) return path
  const tail = Buffer.concat(err).toString('utf8').trim().split('\n').slice(-8).join('\n')
  throw new UserError(`could not provide tmux in pod ${context.names.pod} for a detachable session (exit ${exitCode})${tail ? `:\n${tail}` : ''}`, {
    hint:
      `Name a tmux the pod can realise: --tmux <installable or /nix/store path> (or $${TMUX_ENV}), ` +
      'use an image with tmux, or run claude without one: trampoline claude --no-detachable',
  })
}
