// The netplugin's side of the DEL queue (src/api/del-queue.ts): each queued DEL is applied as a DelPod that
// never touches an attachment made after it was queued, then removed from the queue. One drain at a time.
import * as fs from 'node:fs';
import { listQueuedDels } from '../api/del-queue';
import type { Logger } from '../log/logger';
import type { Metrics } from './metrics';
import type { NetpluginService } from './service';

export class DelQueueApplier {
  private running?: Promise<void>;

  constructor(
    private readonly socket: string,
    private readonly service: Pick<NetpluginService, 'delPod'>,
    private readonly log: Pick<Logger, 'info' | 'warn' | 'error'>,
    private readonly metrics: Metrics,
  ) {}

  /** Applies what is queued now; a drain already running is joined, not doubled. */
  drain(): Promise<void> {
    this.running ??= this.drainNow().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Resolves when no drain is running. */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async drainNow(): Promise<void> {
    for (const { file, del, problem } of listQueuedDels(this.socket)) {
      if (!del) {
        // not something the adapter writes: kept aside for a human, never applied
        this.log.error('a file in the DEL queue is not a queued DEL; set aside', { file, problem });
        fs.renameSync(file, `${file}.invalid`);
        continue;
      }
      try {
        await this.service.delPod(
          {
            CNI_CONTAINERID: del.containerId,
            K8S_POD_INFRA_CONTAINER_ID: del.containerId,
            CNI_IFNAME: del.ifname,
            CNI_NETNS: '',
            K8S_POD_NAME: del.podName,
            K8S_POD_NAMESPACE: del.podNamespace,
          },
          { queuedAt: del.queuedAt },
        );
        fs.rmSync(file, { force: true });
        this.metrics.queuedDels.inc();
        this.log.info('applied a DEL queued while the netplugin was unreachable', { ...del, queuedAt: new Date(del.queuedAt).toISOString() });
      } catch (err) {
        this.log.warn('a queued DEL could not be applied yet; it stays queued', { file, error: (err as Error).message });
      }
    }
  }
}
