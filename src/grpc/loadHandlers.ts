import type { LoadAdmin } from '../load/LoadAdmin.js';
import type { LoadHub } from '../load/LoadHub.js';
import type { AdminServiceServer } from '../../clients/typescript/src/gen/quota/v1/admin_service.js';
import type {
  LoadSnapshot,
  QuotaServiceServer,
  WatchLoadRequest,
} from '../../clients/typescript/src/gen/quota/v1/quota_service.js';
import { fromDuration } from './durations.js';
import { handleServerStream } from './handleServerStream.js';
import { handleUnary } from './handleUnary.js';
import type { HandlerDeps } from './HandlerDeps.js';
import {
  directionToProto,
  healthToProto,
  hostsFromProto,
  loadSnapshotToProto,
  reportFromProto,
  thresholdsFromProto,
} from './loadMapping.js';
import { ADMIN_SERVICE, QUOTA_SERVICE } from './services.js';

/** The host-load capability's methods of both services. */
export interface LoadHandlers {
  readonly quota: Pick<QuotaServiceServer, 'reportLoad' | 'watchLoad'>;
  readonly admin: Pick<
    AdminServiceServer,
    | 'setThrottleThresholds'
    | 'getThrottleThresholds'
    | 'getResourceHealth'
    | 'getLoadTrend'
    | 'getHourlySummary'
    | 'listThrottleEvents'
  >;
}

/** proto3 zero values that stand for a default. */
const DEFAULT_WATCH_MS = 1000;
const DEFAULT_TREND_MINUTES = 15;
const DEFAULT_SUMMARY_HOURS = 24;
const DEFAULT_EVENTS = 100;

/** Each handler maps the request, calls one domain function, maps the result. */
export function loadHandlers(
  services: { readonly hub: LoadHub; readonly admin: LoadAdmin },
  deps: HandlerDeps,
): LoadHandlers {
  const { hub, admin } = services;
  return {
    quota: {
      reportLoad: handleUnary(QUOTA_SERVICE, 'ReportLoad', deps, async (req) => ({
        throttleFactor: await hub.report(reportFromProto(req)),
      })),
      watchLoad: handleServerStream<WatchLoadRequest, LoadSnapshot>(
        QUOTA_SERVICE,
        'WatchLoad',
        deps,
        (req, ctx) =>
          hub.watch(
            fromDuration(req.interval) || DEFAULT_WATCH_MS,
            hostsFromProto(req.hosts),
            (l) => ctx.send(loadSnapshotToProto(l)),
            ctx.signal,
          ),
      ),
    },
    admin: {
      setThrottleThresholds: handleUnary(
        ADMIN_SERVICE,
        'SetThrottleThresholds',
        deps,
        async (req) => ({
          thresholds: await admin.setThresholds(thresholdsFromProto(req.thresholds)),
        }),
      ),
      getThrottleThresholds: handleUnary(
        ADMIN_SERVICE,
        'GetThrottleThresholds',
        deps,
        async () => ({
          thresholds: { ...admin.getThresholds() },
        }),
      ),
      getResourceHealth: handleUnary(ADMIN_SERVICE, 'GetResourceHealth', deps, async (req) => ({
        hosts: admin.health(hostsFromProto(req.hosts)).map((h) => ({
          host: h.host,
          state: healthToProto(h.state),
          reasons: [...h.reasons],
          throttleFactor: h.throttleFactor,
          at: h.at,
        })),
      })),
      getLoadTrend: handleUnary(ADMIN_SERVICE, 'GetLoadTrend', deps, async (req) => ({
        trends: (
          await admin.trend(req.minutes || DEFAULT_TREND_MINUTES, hostsFromProto(req.hosts))
        ).map((t) => ({ ...t, direction: directionToProto(t.direction) })),
      })),
      getHourlySummary: handleUnary(ADMIN_SERVICE, 'GetHourlySummary', deps, async (req) => ({
        hours: await admin.hourly(req.hours || DEFAULT_SUMMARY_HOURS, hostsFromProto(req.hosts)),
      })),
      listThrottleEvents: handleUnary(ADMIN_SERVICE, 'ListThrottleEvents', deps, async (req) => ({
        events: await admin.events(req.host || undefined, req.limit || DEFAULT_EVENTS),
      })),
    },
  };
}
