// Follow one pod by name: list, then watch from the list's resourceVersion, and list
// again whenever the watch ends. client-node 2.0.1's Watch aborts after 30 s without
// data, so we ask the server to end each watch first (timeoutSeconds) and simply re-list:
// a fresh list can never miss a change, whatever happened to the stream.
import { Watch, type V1Pod } from '@kubernetes/client-node'
import type { Cluster } from './client.ts'
import { networkErrorCode } from './client.ts'

/** Shorter than the client's 30 s inactivity abort, so the server ends watches cleanly. */
const WATCH_SECONDS = 25
const MAX_CONSECUTIVE_FAILURES = 5

export interface PodListener {
  /** The pod as it is now; undefined when it does not exist (or was just deleted). */
  onChange(pod: V1Pod | undefined): void
  /** The API failed repeatedly (or in a way retrying cannot fix); following has stopped. */
  onError(error: unknown): void
}

/** Start following; returns the function that stops. */
export function followPod(cluster: Cluster, name: string, listener: PodListener): () => void {
  let stopped = false
  let controller: AbortController | undefined
  const namespace = cluster.namespace
  const fieldSelector = `metadata.name=${name}`

  const watchOnce = (resourceVersion: string | undefined) =>
    new Promise<void>((resolve, reject) => {
      const onEvent = (type: string, object: any) => {
        if (stopped) return
        // ERROR is a Status (410 Gone: our version is too old): the re-list below recovers.
        if (type === 'ADDED' || type === 'MODIFIED') listener.onChange(object as V1Pod)
        else if (type === 'DELETED') listener.onChange(undefined)
      }
      const onDone = (error: unknown) => {
        controller = undefined
        // Our own abort, the server's timeout and the client's inactivity abort all mean: re-list.
        if (!error || stopped || (error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError') resolve()
        else reject(error)
      }
      new Watch(cluster.kc)
        .watch(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, { fieldSelector, resourceVersion, allowWatchBookmarks: false, timeoutSeconds: WATCH_SECONDS }, onEvent, onDone)
        .then((c) => {
          controller = c
          if (stopped) c.abort()
        }, reject)
    })

  const run = async () => {
    let failures = 0
    while (!stopped) {
      try {
        const list = await cluster.core.listNamespacedPod({ namespace, fieldSelector })
        if (stopped) return
        listener.onChange(list.items[0])
        await watchOnce(list.metadata?.resourceVersion)
        failures = 0
      } catch (error) {
        if (stopped) return
        failures++
        // Network blips are retried; anything else (403, 404 namespace) will not get better.
        if (!isTransient(error) || failures >= MAX_CONSECUTIVE_FAILURES) {
          stopped = true
          listener.onError(error)
          return
        }
        await new Promise((resolve) => setTimeout(resolve, 500 * failures))
      }
    }
  }
  void run()

  return () => {
    stopped = true
    controller?.abort()
  }
}

function isTransient(error: unknown): boolean {
  if (networkErrorCode(error)) return true
  const status = (error as { statusCode?: number; code?: number }).statusCode ?? (error as { code?: number }).code
  return typeof status === 'number' && (status === 410 || status === 429 || status >= 500)
}
