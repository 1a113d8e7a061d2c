// When setup fails in a way the cluster's set-up explains (rights, Pod Security, no
// StorageClass, no fitting node), its error also points at `trampoline doctor`, which
// checks all of those at once and says how to fix each. Pure.
import { ExitCode, UserError } from '../errors.ts'

export const DOCTOR_HINT = 'trampoline doctor checks what this cluster and namespace lack (rights, Pod Security, StorageClass, node architectures) and how to fix each.'

/** A pod failure the cluster's set-up explains: it cannot be scheduled, its volume does not bind, admission refused it. */
const CLUSTER_CAUSED = /cannot be scheduled|still (scheduling|binding the store volume)|store volume .*(cannot bind|StorageClass|waiting for)|StorageClass|PodSecurity|exceeded quota/

export function pointAtDoctor(error: unknown): unknown {
  if (!(error instanceof UserError)) return error
  const relevant = error.exitCode === ExitCode.forbidden || (error.exitCode === ExitCode.podFailed && CLUSTER_CAUSED.test(error.message))
  if (!relevant || error.hint?.includes('trampoline doctor')) return error
  return new UserError(error.message, {
    hint: error.hint ? `${error.hint}\n  ${DOCTOR_HINT}` : DOCTOR_HINT,
    exitCode: error.exitCode,
    cause: error,
  })
}
