/** The package version (shared with the subtask's status file). */
export { packageVersion } from '../shared/version.js';
