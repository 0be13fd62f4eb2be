/**
 * Images that must outlive retention (numberOfRecentAmisToKeep): the ones an app pins
 * for its launches (PutServerLaunchOptions imageId) and the ones instances that are not
 * terminated boot from (their overlays read them).
 */
import { repositories, type SqlExecutor } from '../db/index.js';

export async function imagesInUse(x: SqlExecutor): Promise<ReadonlySet<string>> {
  const r = repositories(x);
  const out = new Set<string>();
  for (const i of await r.instances.all()) if (i.state !== 'terminated') out.add(i.imageId);
  for (const app of await r.apps.all()) {
    const body = app.body as { launchOptions?: Record<string, { imageId?: string }> };
    for (const o of Object.values(body.launchOptions ?? {})) if (o.imageId) out.add(o.imageId);
  }
  return out;
}
