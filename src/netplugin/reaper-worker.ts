// The reaper's worker thread (reaper.ts): its own rtnetlink socket in the daemon's network namespace (a thread
// starts in its creator's; the daemon starts this one before it ever enters a pod's). Requests that arrive
// while a batch is in the kernel make the next batch.
import { parentPort, workerData } from 'node:worker_threads';
import { errnoOf, openSocket, REQUEST_TIMEOUT, request } from '../linux/rtnetlink';
import type { ReaperAnswer } from './reaper';

const { group } = workerData as { group: number };
const port = parentPort;
if (!port) throw new Error('reaper-worker runs as a worker thread');

// an overflowed receive buffer (ENOBUFS) is reported, not thrown: the requests it dropped fail by their timeout
const sock = openSocket((err) => port.postMessage({ id: -1, error: err.message } satisfies ReaperAnswer));
let queue: { id: number; name: string }[] = [];
let draining = false;

async function drain(): Promise<void> {
  draining = true;
  while (queue.length) {
    const batch = queue;
    queue = [];
    // each veth into the deleting group, the requests sent together
    const grouped = await Promise.allSettled(
      batch.map((b) => request(`mark ${b.name} for deletion`, sock.setLink({}, { ifname: b.name, group }, REQUEST_TIMEOUT))),
    );
    let failure: unknown;
    if (grouped.some((g) => g.status === 'fulfilled')) {
      try {
        await request('delete the deleting group', sock.delLink({}, { group }, REQUEST_TIMEOUT));
      } catch (err) {
        if (errnoOf(err) !== 'ENODEV') failure = err;
      }
    }
    batch.forEach((b, i) => {
      const g = grouped[i];
      let a: ReaperAnswer;
      if (g.status === 'rejected') {
        a = errnoOf(g.reason) === 'ENODEV' ? { id: b.id, deleted: false } : { id: b.id, error: String((g.reason as Error).message), errno: errnoOf(g.reason) };
      } else {
        a = failure ? { id: b.id, error: String((failure as Error).message), errno: errnoOf(failure) } : { id: b.id, deleted: true };
      }
      port?.postMessage(a);
    });
  }
  draining = false;
}

port.on('message', (m: { id: number; name: string }) => {
  queue.push(m);
  if (!draining) void drain();
});
