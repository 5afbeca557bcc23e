/**
 * Starting a process that this process may then trace: posix_spawn through libc, not
 * child_process, whose SIGCHLD handler in libuv would waitpid() the child and swallow its
 * ptrace stops. The child gets our stdin/stdout/stderr and environment, and no other fd.
 */
import { libc } from './libc.js';
import { errnoError } from './errno.js';

const posixSpawnp = libc.func('int posix_spawnp(_Out_ int *pid, const char *file, void *actions, void *attr, const char **argv, const char **envp)');
const actionsInit = libc.func('int posix_spawn_file_actions_init(void *actions)');
const actionsAddDup2 = libc.func('int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)');
const actionsDestroy = libc.func('int posix_spawn_file_actions_destroy(void *actions)');
const actionsAddCloseFrom = libc.func('int posix_spawn_file_actions_addclosefrom_np(void *actions, int from)');

/** sizeof(posix_spawn_file_actions_t) in glibc is 80; leave room. */
const FILE_ACTIONS_SIZE = 128;

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** An fd of ours to be the child's standard output instead of ours. */
  stdout?: number;
}

export function spawnProcess(file: string, args: string[], options: SpawnOptions = {}): number {
  const env = options.env ?? process.env;
  const pid = [0];
  const envp = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  const actions = Buffer.alloc(FILE_ACTIONS_SIZE);
  actionsInit(actions);
  try {
    // Node opens fds 0-2 close-on-exec; dup2(fd, fd) in a file action clears FD_CLOEXEC (glibc >= 2.29, POSIX 2017).
    for (const fd of [0, 1, 2]) actionsAddDup2(actions, fd === 1 && options.stdout !== undefined ? options.stdout : fd, fd);
    // Nothing else: descriptors this process inherited (a job runner's pipe, say) would
    // make the child uncheckpointable, with an end outside it (glibc >= 2.34).
    actionsAddCloseFrom(actions, 3);
    const rc = posixSpawnp(pid, file, actions, null, [file, ...args, null], [...envp, null]);
    // posix_spawn returns the error number rather than setting errno.
    if (rc !== 0) throw errnoError(rc, `posix_spawn ${file}`);
    return pid[0];
  } finally {
    actionsDestroy(actions);
  }
}
