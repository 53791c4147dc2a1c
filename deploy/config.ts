// /etc/pushtask/config.ts for deploy/pushtask.service (see README.md, "Running as a service").
// A plain object: an `import { defineConfig } from 'pushtask'` would have to be resolvable from
// /etc/pushtask. Secrets come from /etc/pushtask/pushtask.env through process.env.
export default {
  // Programs drop finished files here (write under a temporary name such as `x.csv.part`, then
  // rename); each one is uploaded once its size has been stable for a second.
  watch: [{ dir: '/var/lib/pushtask/outbox' }],
  transport: {
    type: 'sftp',
    host: 'data.example.org',
    username: 'logger',
    password: process.env.PUSHTASK_PASSWORD,
    // Pin the server's key (`ssh-keygen -lf` on the server's host key prints it), or 'accept-new'.
    hostKey: 'accept-new',
    remoteDir: 'incoming',
  },
  spoolDir: '/var/lib/pushtask/spool',
  // `pushtask monitor` on the server shows this client online while heartbeats keep coming.
  heartbeat: { intervalSec: 60 },
  // Console lines go to the journal (journalctl -u pushtask); JSON lines to the files.
  log: { dir: '/var/log/pushtask' },
};
