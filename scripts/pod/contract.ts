// The pod contract (CLAUDE.md, "The pod contract" and "In-pod paths the CLI relies on"):
// the names and in-pod paths that the CLI, the template (container/k8s-pod.yaml) and the
// in-pod scripts (container/*.sh) agree on. Every TypeScript module takes them from here;
// the YAML and the shell scripts, which cannot import, spell the same values.
// Constants only, no imports: manifests stay pure, and the fast paths (sh, the mux
// client) can use it for free. Object names (trampoline-<instance>-ssh, ...) and labels
// are instance.ts's.

/** The pod's containers: the privileged daemon (what needs Nix's trust) and UID 1000's. */
export const DAEMON_CONTAINER = 'nix-daemon'
export const USER_CONTAINER = 'user'
/** The init container that prepares the store volume (main pod and farm workers). */
export const INIT_CONTAINER = 'store-init'

/**
 * The termination message of a container that stopped itself for idleness
 * (shutdown-monitor.sh): `idle: <reason>`. Such a pod ends Succeeded (pod/stopped.ts).
 */
export const IDLE_PREFIX = 'idle:'

/** The scripts ConfigMap's mount (also NIX_CONF_DIR: nix.conf is in it). */
export const SCRIPTS_DIR = '/opt/trampoline'
export const ENTRYPOINT_DAEMON = `${SCRIPTS_DIR}/entrypoint-daemon.sh`
/** receive (a git pack on stdin), state, adopt: the pod's side of push, diff and pull. */
export const PUSH_RECEIVE = `${SCRIPTS_DIR}/push-receive.sh`
/** GC + optimise; prints one JSON line {"before","after","freed"}. */
export const MAINTENANCE_SCRIPT = `${SCRIPTS_DIR}/maintenance.sh`
/** What `trampoline claude` runs in the user container. */
export const AGENT_SESSION_SCRIPT = `${SCRIPTS_DIR}/agent-session.sh`

/** emptyDir shared by both containers (shutdown handshake, sessions, sshd's files). */
export const RUN_DIR = '/run/trampoline'
/** shutdown-monitor.sh's report: activity, agents, idleness. */
export const MONITOR_FILE = `${RUN_DIR}/monitor.json`
/** sshd reads this copy (container/sshd_config); the entrypoint makes it at start. */
export const POD_AUTHORIZED_KEYS = `${RUN_DIR}/sshd/authorized_keys`

/**
 * The pushed project: a git work tree at this fixed path (Claude Code keys trust and
 * per-project settings on it), HEAD the pushed commit, refs/trampoline/pushed the pushed
 * tree; push-receive.sh updates it in place.
 */
export const WORKSPACE_SRC = '/workspace/src'
/** push-receive.sh's own files: the push lock, the switch journal, `pushed`. */
export const TREES_DIR = '/workspace/.trees'
/** Build results are symlinked here; the directory belongs to the user container's UID. */
export const GC_ROOTS_DIR = '/nix/var/nix/gcroots/trampoline'

/** Secret mounts: SSH and agent in the user container, signing and netrc in nix-daemon only. */
export const SSH_SECRET_DIR = '/etc/trampoline/ssh'
export const AGENT_SECRET_DIR = '/etc/trampoline/agent'
export const SIGNING_SECRET_DIR = '/etc/trampoline/signing'
/** Where the daemon container finds the signing key's secret half (SIGNING_KEY_ENV in the template). */
export const POD_SIGNING_KEY_FILE = `${SIGNING_SECRET_DIR}/secret-key`
export const NETRC_SECRET_DIR = '/etc/trampoline/netrc'

/**
 * Build farm: the farm Secret's client key, mounted into nix-daemon only, and a daemon-only
 * emptyDir where setup writes the machines file and ssh config (by exec, as root). Never
 * in RUN_DIR: the user container can write there, and a builders entry is trusted (a
 * remote build's outputs are taken as they come).
 */
export const FARM_KEY_DIR = '/etc/trampoline/farm'
export const FARM_RUN_DIR = '/run/trampoline-farm'
export const FARM_MACHINES_FILE = `${FARM_RUN_DIR}/machines`

/** Daemon container env: the signing key file entrypoint-daemon.sh passes to nix-daemon. */
export const SIGNING_KEY_ENV = 'TRAMPOLINE_SIGNING_KEY'
/** User container env: seconds without activity before the pod stops itself; 0 = never. */
export const IDLE_TIMEOUT_ENV = 'TRAMPOLINE_IDLE_TIMEOUT'
/** The daemon's binary caches, space-separated (entrypoint-daemon.sh passes them to nix-daemon). */
export const SUBSTITUTERS_ENV = 'TRAMPOLINE_SUBSTITUTERS'
export const TRUSTED_KEYS_ENV = 'TRAMPOLINE_TRUSTED_PUBLIC_KEYS'
/** entrypoint-daemon.sh sets `builders = @$TRAMPOLINE_FARM_MACHINES` when this is set. */
export const FARM_MACHINES_ENV = 'TRAMPOLINE_FARM_MACHINES'
