// Keep the instance's netrc Secret holding the file given to setup --netrc-file, written
// only when it changed. The file's content goes from disk to the API; never to logs.
import { readFileSync } from 'node:fs'
import type { CommandContext } from './context.ts'
import { ExitCode, UserError } from './errors.ts'
import { explainApiError } from './kube/client.ts'
import { readOptionalSecret } from './pod/objects.ts'
import { buildNetrcSecret, looksLikeNetrc, NETRC_FIELD } from './manifests/netrc-secret.ts'

export function readNetrcFile(path: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new UserError(`cannot read --netrc-file ${path}: ${(error as Error).message}`, { exitCode: ExitCode.local })
  }
  if (!looksLikeNetrc(text)) {
    throw new UserError(`--netrc-file ${path} holds no "machine <host>" entry`, {
      hint: 'It should look like: machine cache.example.org login <user> password <token>',
      exitCode: ExitCode.usage,
    })
  }
  return text
}

/** Create or update the Secret; returns what happened. */
export async function syncNetrc(context: Pick<CommandContext, 'cluster' | 'names' | 'labels'>, netrc: string): Promise<'created' | 'updated' | 'unchanged'> {
  const { cluster, names, labels } = context
  const body = buildNetrcSecret({ names, labels, netrc })
  const existing = await readOptionalSecret(cluster, names.netrcSecret)
  if (existing) {
    if (existing.data?.[NETRC_FIELD] === body.data?.[NETRC_FIELD]) return 'unchanged'
    try {
      await cluster.core.replaceNamespacedSecret({
        name: names.netrcSecret,
        namespace: cluster.namespace,
        body: { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion } },
      })
      return 'updated'
    } catch (error) {
      throw explainApiError(error, cluster, `update secret ${names.netrcSecret}`)
    }
  }
  try {
    await cluster.core.createNamespacedSecret({ namespace: cluster.namespace, body })
    return 'created'
  } catch (error) {
    throw explainApiError(error, cluster, `create secret ${names.netrcSecret}`)
  }
}
