/**
 * Remote temporary names: `.<name>.<tag>.pushtask-tmp` beside the target, where the tag is a hash
 * of (agent, remote path). The same agent uploading the same file always writes the same
 * temporary name, so an upload cut off by a crash or a power cut (whatever the file's size) is
 * replaced by the next upload of that file, which the spool retries at the next start. The
 * name is hidden, ends in `.pushtask-tmp` (so StrayTemps and drop folders know it), differs
 * between agents that share a folder, and stays short enough for any server's name limit.
 *
 * Two uploads of one file are never in flight at once in one agent (uploader.ts), and a failed
 * upload's temporary file is removed at the next connect before anything is uploaded again
 * (strayTemps.ts): a late write of the abandoned session lands in the removed file, not the new one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { shortenName } from '../shared/atomicCopy.js';

/** For transports built without an agent (tests, `pushtask monitor`): random per process. */
const processTag = randomBytes(8).toString('hex');

export function remoteTempName(target: string, agentTag: string = processTag): string {
  const tag = createHash('sha256').update(`${agentTag}\0${target}`).digest('hex').slice(0, 12);
  return posix.join(posix.dirname(target), `.${shortenName(posix.basename(target))}.${tag}.pushtask-tmp`);
}

/** A new agent's tag: random, kept in its spool (agent.ts) so it survives restarts. */
export function newAgentTag(): string {
  return randomBytes(8).toString('hex');
}
