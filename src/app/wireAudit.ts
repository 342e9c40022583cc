import { AttackBlockAdmin } from '../audit/AttackBlockAdmin.js';
import { AttackBlocks, BlockIndex } from '../audit/AttackBlocks.js';
import { AuditReader } from '../audit/AuditReader.js';
import { AuditRecorder } from '../audit/AuditRecorder.js';
import type { IpKeys } from '../audit/ports.js';
import type { Config } from '../config.js';
import { FollowedCache } from '../core/FollowedCache.js';
import type { ChangeFeed } from '../core/ports.js';
import { auditHandlers } from '../grpc/auditHandlers.js';
import type { HandlerDeps } from '../grpc/HandlerDeps.js';
import { attackDetectionJob } from '../jobs/attackDetectionJob.js';
import { statsFlushJob } from '../jobs/statsFlushJob.js';
import { violationFlushJob } from '../jobs/violationFlushJob.js';
import { ipKey } from '../limits/canonicalIp.js';
import type { Logger } from '../log.js';
import type { GaugeSource } from '../metrics/GaugeSource.js';
import type { Database } from '../store/Database.js';
import { PgAttackStore } from '../store/PgAttackStore.js';
import { PgAuditReports } from '../store/PgAuditReports.js';
import { PgAuditStore } from '../store/PgAuditStore.js';
import { wire } from './Capability.js';

/**
 * The audit: the decision listener that counts statistics and buffers violations and identity
 * sightings (written by per-replica flush jobs), the cluster-wide attack detection, the blocks
 * every replica follows through the change feed, and GetViolations / GetStats / LiftBlock.
 */
export function wireAudit(
  config: Config,
  logger: Logger,
  db: Database,
  feed: ChangeFeed,
  deps: HandlerDeps,
) {
  return wire(logger, async (stops) => {
    const { audit } = config;
    const recorder = new AuditRecorder(new PgAuditStore(db), {
      enabled: audit.enabled,
      bufferSize: audit.bufferSize,
      windowMs: audit.attackWindowS * 1000,
      attackIdentities: audit.attackIdentities,
    });

    const attacks = new PgAttackStore(db);
    const blockCache = new FollowedCache(
      'attack blocks',
      async () => {
        const readAt = performance.now();
        return new BlockIndex(await attacks.activeBlocks(), readAt);
      },
      logger,
    );
    await blockCache.start(feed, 'attack_flags');
    stops.push(() => blockCache.stop());
    // Blocks may have changed while the database was away.
    db.on('up', () => void blockCache.reload());

    // Stamps what is recorded by the database clock from the first decision on (a failed
    // reading is taken again at the first flush).
    await recorder.syncClock();

    const bits = config.ipv6PrefixBits;
    const ipKeys: IpKeys = {
      ipv6PrefixBits: bits,
      keyOf: (address, field) => ipKey(address, bits, field),
    };
    const reports = new AuditReader(new PgAuditReports(db), ipKeys);
    const blockAdmin = new AttackBlockAdmin(attacks, blockCache, ipKeys);
    return {
      listener: recorder,
      blocks: new AttackBlocks(() => blockCache.value),
      reports,
      handlers: auditHandlers({ reports, blocks: blockAdmin }, deps),
      jobs: [
        violationFlushJob(recorder, logger),
        statsFlushJob(recorder, logger),
        attackDetectionJob(
          attacks,
          {
            windowS: audit.attackWindowS,
            denials: audit.attackDenials,
            identities: audit.attackIdentities,
            blockS: audit.blockS,
          },
          logger,
        ),
      ],
      health: [],
      gauges: auditGauges(recorder),
    };
  });
}

function auditGauges(recorder: AuditRecorder): GaugeSource[] {
  // Names ending in _total are counts since start that never go down: counters.
  const gauge = (name: string, help: string, read: () => number): GaugeSource => ({
    name,
    help,
    kind: name.endsWith('_total') ? 'counter' : 'gauge',
    read: () => [{ value: read() }],
  });
  const { violations, stats, identities } = recorder;
  return [
    gauge(
      'quota_audit_buffer_rows',
      'Violation rows waiting to be written (distinct rows, folded ones included, and those of a failed write)',
      () => violations.size + recorder.pendingViolations.rows,
    ),
    gauge(
      'quota_audit_violations_aggregated_total',
      'Denials counted in a buffered row of identical ones since start',
      () => violations.aggregated,
    ),
    gauge(
      'quota_audit_violations_folded_total',
      'Denials counted under their rule without details since start (buffer full)',
      () => violations.folded,
    ),
    gauge(
      'quota_audit_violations_dropped_total',
      'Denials not recorded since start (buffer and folded rows full); should stay 0',
      () => violations.dropped,
    ),
    gauge(
      'quota_audit_stats_rows',
      'Decision statistics rows waiting to be added (hours x rules and command types, and those of a failed write)',
      () => stats.size + recorder.pendingStats.rows,
    ),
    gauge(
      'quota_audit_batches_already_written_total',
      'Audit batches sent again after a failure that the database had committed (skipped by their id) since start',
      () => recorder.pendingViolations.alreadyWritten + recorder.pendingStats.alreadyWritten,
    ),
    gauge(
      'quota_audit_stats_folded_total',
      'Decisions counted under "(other)" since start: too many command types in one hour',
      () => stats.folded,
    ),
    gauge(
      'quota_audit_identities_tracked',
      'Identities (users, API keys) tracked for attack detection, of IPs seen with several',
      () => identities.size,
    ),
    gauge(
      'quota_audit_identity_single_ips',
      'IPs remembered with one user and/or one API key (not written)',
      () => identities.singleIps,
    ),
    gauge(
      'quota_audit_identities_evicted_total',
      'Identity sightings forgotten before leaving the window to make room for newer ones since start',
      () => identities.evicted,
    ),
  ];
}
