// An SSH session to the pod with ssh2, riding a port-forward stream: no local port is
// opened, and the host key must equal the pinned one or the connection is refused.
import ssh2 from 'ssh2'
import os from 'node:os'
import type { Duplex } from 'node:stream'
import { publicKeyBlob, SSH_USER } from './config.ts'

const { Client } = ssh2

export interface SshCredentials {
  privateKey: string
  hostPublicKey: string
}

export function connectSsh(sock: Duplex, credentials: SshCredentials): Promise<ssh2.Client> {
  const pinned = publicKeyBlob(credentials.hostPublicKey)
  return new Promise((resolve, reject) => {
    const client = new Client()
    let hostKeyMismatch = false
    client
      .on('ready', () => resolve(client))
      .on('error', (error) => {
        reject(
          hostKeyMismatch
            ? new Error('the pod presented a host key that is not the pinned one; refusing to connect')
            : error,
        )
      })
      .connect({
        sock,
        username: SSH_USER,
        privateKey: credentials.privateKey,
        hostVerifier: (key: Buffer) => {
          hostKeyMismatch = !key.equals(pinned)
          return !hostKeyMismatch
        },
        keepaliveInterval: 30_000,
        readyTimeout: 30_000,
      })
  })
}

/** A shell's convention: 128 + the signal's number; 255 (ssh's own failure) if unknown. */
export function exitCodeForSignal(signal: string | undefined): number {
  const number = signal ? os.constants.signals[`SIG${signal}` as keyof typeof os.constants.signals] : undefined
  return number ? 128 + number : 255
}

export interface RemoteCommandResult {
  exitCode: number
  signal?: string
}

/**
 * Run a command (or a login shell when `command` is undefined) with the local stdio.
 * With a TTY we ask for a pty sized like the local terminal and follow its resizes.
 */
export function runSsh(client: ssh2.Client, command: string | undefined, tty: boolean): Promise<RemoteCommandResult> {
  return new Promise((resolve, reject) => {
    const pty = tty
      ? { term: process.env.TERM ?? 'xterm-256color', rows: process.stdout.rows ?? 24, cols: process.stdout.columns ?? 80 }
      : undefined
    const onChannel = (error: Error | undefined, channel: ssh2.ClientChannel) => {
      if (error) return reject(error)
      const onResize = () => channel.setWindow(process.stdout.rows ?? 24, process.stdout.columns ?? 80, 0, 0)
      if (tty) process.stdout.on('resize', onResize)
      let result: RemoteCommandResult = { exitCode: 255 }
      channel.on('exit', (code: number | null, signal?: string) => {
        result = { exitCode: code ?? exitCodeForSignal(signal), signal }
      })
      channel.on('close', () => {
        if (tty) process.stdout.off('resize', onResize)
        process.stdin.unpipe(channel)
        resolve(result)
      })
      channel.pipe(process.stdout, { end: false })
      channel.stderr.pipe(process.stderr, { end: false })
      process.stdin.pipe(channel)
    }
    if (command === undefined) client.shell(pty ?? false, onChannel)
    else client.exec(command, { pty: pty ?? false }, onChannel)
  })
}
