// Host veths are deleted off the event loop, in batches. The kernel deletes a veth inside sendmsg and then waits
// for RCU (rcu_barrier, ~20 ms here), and the netlink addon sends on the calling thread: on the main thread
// every DEL stalled the daemon, /healthz and every ADD with it. A worker thread with its own rtnetlink socket
// (reaper-worker.ts) does it instead, and deletes that queue up while one is in the kernel go together: each
// veth is put in the daemon's deleting group, then one RTM_DELLINK for the group pays one RCU wait for all.
// ENODEV means already gone. A crash mid-batch leaves veths in the deleting group: start-up finishes them.
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

export interface ReaperAnswer {
  id: number;
  /** true: deleted; false: it was already gone. */
  deleted?: boolean;
  error?: string;
  errno?: string;
}

export class LinkReaper {
  private readonly worker: Worker;
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (deleted: boolean) => void; reject: (err: Error) => void }>();

  constructor(group: number, onError: (err: Error) => void) {
    this.worker = new Worker(path.join(__dirname, 'reaper-worker.js'), { workerData: { group } });
    this.worker.on('message', (a: ReaperAnswer) => {
      if (a.id < 0) return onError(new Error(`the reaper's rtnetlink socket: ${a.error}`));
      const w = this.waiting.get(a.id);
      this.waiting.delete(a.id);
      if (!this.waiting.size) this.worker.unref();
      if (a.error === undefined) w?.resolve(a.deleted === true);
      else w?.reject(Object.assign(new Error(a.error), { errno: a.errno }));
    });
    this.worker.on('error', (err: Error) => {
      onError(err);
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    });
    this.worker.unref();
  }

  /** Deletes the link named `name` (a veth: the kernel deletes its peer); false when it was already gone. */
  delete(name: string): Promise<boolean> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // referenced while a delete is pending, so that a stopping daemon waits for it
      this.worker.ref();
      this.worker.postMessage({ id, name });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
